// The elementwise parts of a GRU step for float cells with the default tanh candidate, fused into
// one pass per row between the products (detail::GRUCore, GRUCell and CudnnCompatibleGRUCell call
// them; other scalar types and activations run the same formulas as Eigen expressions).
//
// Forward, per row (r, u: the gates; hp: h_prev; c: the candidate):
//   after the gates' product:     r = sigmoid(z_r)  u = sigmoid(z_u)  [rh = r * hp  (GRUCell)]
//   after the candidate's product: c = tanh(z_c [+ r * hh  (CudnnCompatibleGRUCell)])
//                                  h = u * hp + (1 - u) * c   (and a copy of h as the output)
// Backward, per row, from dh = dh_next [+ dy]:
//   du = dh * (hp - c) * u * (1 - u)   dc = dh * (1 - u) * (1 - c^2)   dh_prev = dh * u
//   then from d (GRUCell: drh, the gradient of r * hp; CudnnCompatibleGRUCell: dc) and x (hp;
//   hh): dr = d * x * r * (1 - r), and d * r added to dh_prev (GRUCell) or stored as the hidden
//   projection's gradient (CudnnCompatibleGRUCell).
//
// Why: as Eigen expressions these are eight passes over a step's blocks, each reading rows that
// the previous one has just evicted from L1 (perf, 1 thread, 3 x GRU(150), batch 150: about an
// eighth of a training step). Every element goes through the same packet code, a row's partial
// packet through zero-padded buffers (detail/row_packets.hpp), so a row's results do not depend
// on where it lies: a stream and a whole-sequence run still agree bitwise.
#pragma once

#include "cellflow/detail/row_packets.hpp"

namespace cellflow::detail {

// (See detail/lstm_gates.hpp: packet types as template arguments, and GCC 12's false
// -Wuninitialized from the AVX-512 min/max inside Eigen's logistic and tanh.)
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wignored-attributes"
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#endif

/// One row after the gates' product.
struct GRUGatesRow {
  float *zr, *zu;  ///< [U] each, in: pre-activations; out: r, u
  const float* h;  ///< [U] h_prev
  float* rh;       ///< [U] out: r * h_prev, or null
};

/// One row after the candidate's product.
struct GRUUpdateRow {
  float* c;             ///< [U] in: the candidate's pre-activation (less r * hh); out: c~
  const float *r, *hh;  ///< [U] r and the hidden projection (CudnnCompatibleGRUCell), or both null
  const float *u, *h;   ///< [U] the update gate and h_prev
  float *h_new, *y;     ///< [U] out: the new h, and a copy of it (or null)
};

/// One row of the backward pass's first part.
struct GRUBackwardUpdateRow {
  const float *dh_next, *dy;  ///< [U] the running gradient and the step's output gradient (or null)
  const float *h, *u, *c;     ///< [U] h_prev, u, c~
  float *du, *dc, *dh_prev;   ///< [U] out
};

/// One row of the backward pass's reset-gate part.
struct GRUBackwardResetRow {
  const float *d, *x, *r;  ///< [U] d: drh or dc; x: h_prev or hh
  float* dr;               ///< [U] out: d * x * r * (1 - r)
  float* dh_prev;          ///< [U] += d * r, or null
  float* dhh;              ///< [U] out: d * r, or null
};

namespace gru_gates_impl {

using namespace row_packets;

inline void gates_packet(const GRUGatesRow& a, Index k) {
  const P r = sigmoid(ld(a.zr + k));
  st(a.zr + k, r);
  st(a.zu + k, sigmoid(ld(a.zu + k)));
  if (a.rh) st(a.rh + k, Eigen::internal::pmul(r, ld(a.h + k)));
}

inline void update_packet(const GRUUpdateRow& a, Index k) {
  using namespace Eigen::internal;
  P c = ld(a.c + k);
  if (a.hh) c = padd(c, pmul(ld(a.r + k), ld(a.hh + k)));
  c = tanh(c);
  const P u = ld(a.u + k);
  const P h = padd(pmul(u, ld(a.h + k)), pmul(psub(pset1<P>(1.0f), u), c));
  st(a.c + k, c);
  st(a.h_new + k, h);
  if (a.y) st(a.y + k, h);
}

inline void backward_update_packet(const GRUBackwardUpdateRow& a, Index k) {
  using namespace Eigen::internal;
  const P one = pset1<P>(1.0f);
  P dh = ld(a.dh_next + k);
  if (a.dy) dh = padd(dh, ld(a.dy + k));
  const P u = ld(a.u + k), c = ld(a.c + k);
  st(a.du + k, pmul(pmul(pmul(dh, psub(ld(a.h + k), c)), u), psub(one, u)));
  st(a.dc + k, pmul(pmul(dh, psub(one, u)), psub(one, pmul(c, c))));
  st(a.dh_prev + k, pmul(dh, u));
}

inline void backward_reset_packet(const GRUBackwardResetRow& a, Index k) {
  using namespace Eigen::internal;
  const P d = ld(a.d + k), r = ld(a.r + k);
  st(a.dr + k, pmul(pmul(pmul(d, ld(a.x + k)), r), psub(pset1<P>(1.0f), r)));
  if (a.dh_prev) st(a.dh_prev + k, padd(ld(a.dh_prev + k), pmul(d, r)));
  if (a.dhh) st(a.dhh + k, pmul(d, r));
}

}  // namespace gru_gates_impl

/// After the gates' product, one row of U units.
CELLFLOW_FLATTEN inline void gru_gates_row(const GRUGatesRow& a, Index U) {
  using namespace gru_gates_impl;
  const Index full = U / L * L, w = U - full;
  for (Index k = 0; k < full; k += L) gates_packet(a, k);
  if (w == 0) return;
  alignas(64) float b[4][L];
  const GRUGatesRow t{pad(b[0], a.zr, full, w), pad(b[1], a.zu, full, w), pad(b[2], a.h, full, w),
                      a.rh ? b[3] : nullptr};
  gates_packet(t, 0);
  unpad(a.zr, t.zr, full, w);
  unpad(a.zu, t.zu, full, w);
  unpad(a.rh, t.rh, full, w);
}

/// After the candidate's product, one row of U units.
CELLFLOW_FLATTEN inline void gru_update_row(const GRUUpdateRow& a, Index U) {
  using namespace gru_gates_impl;
  const Index full = U / L * L, w = U - full;
  for (Index k = 0; k < full; k += L) update_packet(a, k);
  if (w == 0) return;
  alignas(64) float b[7][L];
  const GRUUpdateRow t{pad(b[0], a.c, full, w), pad(b[1], a.r, full, w), pad(b[2], a.hh, full, w),
                       pad(b[3], a.u, full, w), pad(b[4], a.h, full, w), b[5],
                       a.y ? b[6] : nullptr};
  update_packet(t, 0);
  unpad(a.c, t.c, full, w);
  unpad(a.h_new, t.h_new, full, w);
  unpad(a.y, t.y, full, w);
}

/// The backward pass's first part, one row of U units.
CELLFLOW_FLATTEN inline void gru_backward_update_row(const GRUBackwardUpdateRow& a, Index U) {
  using namespace gru_gates_impl;
  const Index full = U / L * L, w = U - full;
  for (Index k = 0; k < full; k += L) backward_update_packet(a, k);
  if (w == 0) return;
  alignas(64) float b[8][L];
  const GRUBackwardUpdateRow t{pad(b[0], a.dh_next, full, w),
                               pad(b[1], a.dy, full, w),
                               pad(b[2], a.h, full, w),
                               pad(b[3], a.u, full, w),
                               pad(b[4], a.c, full, w),
                               b[5],
                               b[6],
                               b[7]};
  backward_update_packet(t, 0);
  unpad(a.du, t.du, full, w);
  unpad(a.dc, t.dc, full, w);
  unpad(a.dh_prev, t.dh_prev, full, w);
}

/// The backward pass's reset-gate part, one row of U units.
CELLFLOW_FLATTEN inline void gru_backward_reset_row(const GRUBackwardResetRow& a, Index U) {
  using namespace gru_gates_impl;
  const Index full = U / L * L, w = U - full;
  for (Index k = 0; k < full; k += L) backward_reset_packet(a, k);
  if (w == 0) return;
  alignas(64) float b[6][L];
  const GRUBackwardResetRow t{pad(b[0], a.d, full, w),       pad(b[1], a.x, full, w), pad(b[2], a.r, full, w), b[3],
                              pad(b[4], a.dh_prev, full, w), a.dhh ? b[5] : nullptr};
  backward_reset_packet(t, 0);
  unpad(a.dr, t.dr, full, w);
  unpad(a.dh_prev, t.dh_prev, full, w);
  unpad(a.dhh, t.dhh, full, w);
}

#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

}  // namespace cellflow::detail
