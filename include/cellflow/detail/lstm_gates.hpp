// The elementwise part of an LSTM step for float cells with the default tanh activation, fused
// into one pass per row (detail::LSTMCore calls it; other scalar types and activations run the
// same formulas as Eigen expressions, one pass per formula).
//
// Forward, per row, on the gate pre-activations z = [i | j | f | o] (in place) and c_prev:
//   i = sigmoid(z_i [+ w_i * c_prev])   j = tanh(z_j)   f = sigmoid(z_f + forget_bias [+ w_f * c_prev])
//   c = f * c_prev + i * j  (c_raw := c, then clipped to [-cell_clip, cell_clip] with cell_clip)
//   o = sigmoid(z_o [+ w_o * c])   tanh_c = tanh(c)   out = o * tanh_c  (h, or m with a projection)
// Backward, per row, from dm (the gradient of out) and dc_next (of c, from step t + 1):
//   d_o = dm * tanh_c * o * (1 - o)
//   dc  = dc_next + dm * o * (1 - tanh_c^2) [+ d_o * w_o]   (zero where |c_raw| > cell_clip)
//   di = dc * j * i * (1 - i)   dj = dc * i * (1 - j^2)   df = dc * c_prev * f * (1 - f)
//   dc_prev = dc * f [+ di * w_i + df * w_f]
//
// Why: the Eigen expressions make about eight passes over each step's [batch, 4 * num_units]
// block; a step of training is then about a fifth elementwise work (perf, 1 thread, 3 x
// LSTM(150), batch 150), most of it waiting for the block's rows. One pass reads each row once.
//
// Every element goes through the same SIMD packet code: a row's last, partial packet is copied
// into zero-padded buffers, computed as a whole packet and copied back. The results therefore do
// not depend on where a row lies in memory (a stream and a whole-sequence run agree bitwise), and
// they are those of Eigen's packet functions (the logistic and tanh of x.logistic(), x.tanh()).
#pragma once

#include "cellflow/detail/row_packets.hpp"

namespace cellflow::detail {

// (Packet types as template arguments: GCC says the vector type's attributes are ignored there,
// as it does inside Eigen, whose headers silence it the same way. And GCC 12 at -O2 and above
// flags the AVX-512 min/max intrinsics inside Eigen's logistic and tanh, inlined here, with a
// false -Wuninitialized: their unused merge operand is _mm512_undefined_ps().)
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wignored-attributes"
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#endif

/// One row of the forward pass. Gate pointers point at the row's i, j, f, o blocks (U each).
struct LSTMForwardRow {
  float *zi, *zj, *zf, *zo;  ///< in: pre-activations; out: i, j, f, o
  const float* c_prev;       ///< [U]
  float* c;                  ///< [U] the new c (clipped)
  float* tanh_c;             ///< [U]
  float* out;                ///< [U] o * tanh_c
  float* out2;               ///< [U] a second copy of out, or null
  float* c_raw;              ///< [U] c before the clip, or null (no cell_clip)
};

/// One row of the backward pass.
struct LSTMBackwardRow {
  const float *i, *j, *f, *o;  ///< the step's activations
  const float* tanh_c;         ///< [U]
  const float* c_prev;         ///< [U]
  const float* c_raw;          ///< [U] c before the clip, or null (no cell_clip)
  const float* dm;             ///< [U] gradient of out
  const float* dm2;            ///< [U] added to dm (the step's output gradient), or null
  const float* dc_next;        ///< [U]
  float *di, *dj, *df, *d_o;   ///< out: gradients of the gate pre-activations
  float* dc_prev;              ///< [U] out
};

/// The cell's constants for the passes: peephole diagonals (null without), forget bias, and the
/// cell clip (used where a row has c_raw, i.e. with cell_clip).
struct LSTMGateConstants {
  const float *w_i = nullptr, *w_f = nullptr, *w_o = nullptr;
  float forget_bias = 0;
  float cell_clip = 0;
};

namespace lstm_gates_impl {

using namespace row_packets;

// Elements [u, u + L) of a forward row.
inline void forward_packet(const LSTMForwardRow& r, const LSTMGateConstants& k, Index u) {
  using namespace Eigen::internal;
  const P cp = ld(r.c_prev + u);
  P zi = ld(r.zi + u), zf = ld(r.zf + u), zo = ld(r.zo + u);
  if (k.w_i) {
    zi = padd(zi, pmul(cp, ld(k.w_i + u)));
    zf = padd(zf, pmul(cp, ld(k.w_f + u)));
  }
  const P i = sigmoid(zi), j = tanh(ld(r.zj + u)), f = sigmoid(padd(zf, pset1<P>(k.forget_bias)));
  P c = padd(pmul(f, cp), pmul(i, j));
  if (r.c_raw) {
    st(r.c_raw + u, c);
    c = pmin(pmax(c, pset1<P>(-k.cell_clip)), pset1<P>(k.cell_clip));
  }
  if (k.w_o) zo = padd(zo, pmul(c, ld(k.w_o + u)));
  const P o = sigmoid(zo), tc = tanh(c), out = pmul(o, tc);
  st(r.zi + u, i);
  st(r.zj + u, j);
  st(r.zf + u, f);
  st(r.zo + u, o);
  st(r.c + u, c);
  st(r.tanh_c + u, tc);
  st(r.out + u, out);
  if (r.out2) st(r.out2 + u, out);
}

// Elements [u, u + L) of a backward row.
inline void backward_packet(const LSTMBackwardRow& r, const LSTMGateConstants& k, Index u) {
  using namespace Eigen::internal;
  const P one = pset1<P>(1.0f);
  const P i = ld(r.i + u), j = ld(r.j + u), f = ld(r.f + u), o = ld(r.o + u), tc = ld(r.tanh_c + u);
  P dm = ld(r.dm + u);
  if (r.dm2) dm = padd(dm, ld(r.dm2 + u));
  const P d_o = pmul(pmul(pmul(dm, tc), o), psub(one, o));
  P dc = padd(ld(r.dc_next + u), pmul(pmul(dm, o), psub(one, pmul(tc, tc))));
  if (k.w_o) dc = padd(dc, pmul(d_o, ld(k.w_o + u)));
  if (r.c_raw) {
    const P keep = pcmp_le(pabs(ld(r.c_raw + u)), pset1<P>(k.cell_clip));
    dc = pand(dc, keep);  // all-ones lanes keep dc, all-zeros lanes become +0
  }
  const P di = pmul(pmul(pmul(dc, j), i), psub(one, i));
  const P dj = pmul(pmul(dc, i), psub(one, pmul(j, j)));
  const P df = pmul(pmul(pmul(dc, ld(r.c_prev + u)), f), psub(one, f));
  P dcp = pmul(dc, f);
  if (k.w_i) dcp = padd(dcp, padd(pmul(di, ld(k.w_i + u)), pmul(df, ld(k.w_f + u))));
  st(r.di + u, di);
  st(r.dj + u, dj);
  st(r.df + u, df);
  st(r.d_o + u, d_o);
  st(r.dc_prev + u, dcp);
}

}  // namespace lstm_gates_impl

/// The forward pass of one row of U units.
CELLFLOW_FLATTEN inline void lstm_forward_row(const LSTMForwardRow& r, const LSTMGateConstants& k, Index U) {
  using namespace lstm_gates_impl;
  const Index full = U / L * L, w = U - full;
  for (Index u = 0; u < full; u += L) forward_packet(r, k, u);
  if (w == 0) return;
  alignas(64) float b[13][L];
  LSTMForwardRow t{pad(b[0], r.zi, full, w),
                   pad(b[1], r.zj, full, w),
                   pad(b[2], r.zf, full, w),
                   pad(b[3], r.zo, full, w),
                   pad(b[4], r.c_prev, full, w),
                   b[5],
                   b[6],
                   b[7],
                   r.out2 ? b[8] : nullptr,
                   r.c_raw ? b[9] : nullptr};
  LSTMGateConstants kt = k;
  kt.w_i = pad(b[10], k.w_i, full, w);
  kt.w_f = pad(b[11], k.w_f, full, w);
  kt.w_o = pad(b[12], k.w_o, full, w);
  forward_packet(t, kt, 0);
  unpad(r.zi, t.zi, full, w);
  unpad(r.zj, t.zj, full, w);
  unpad(r.zf, t.zf, full, w);
  unpad(r.zo, t.zo, full, w);
  unpad(r.c, t.c, full, w);
  unpad(r.tanh_c, t.tanh_c, full, w);
  unpad(r.out, t.out, full, w);
  if (r.out2) unpad(r.out2, t.out2, full, w);
  if (r.c_raw) unpad(r.c_raw, t.c_raw, full, w);
}

/// The backward pass of one row of U units.
CELLFLOW_FLATTEN inline void lstm_backward_row(const LSTMBackwardRow& r, const LSTMGateConstants& k, Index U) {
  using namespace lstm_gates_impl;
  const Index full = U / L * L, w = U - full;
  for (Index u = 0; u < full; u += L) backward_packet(r, k, u);
  if (w == 0) return;
  alignas(64) float b[16][L];
  LSTMBackwardRow t{pad(b[0], r.i, full, w),
                    pad(b[1], r.j, full, w),
                    pad(b[2], r.f, full, w),
                    pad(b[3], r.o, full, w),
                    pad(b[4], r.tanh_c, full, w),
                    pad(b[5], r.c_prev, full, w),
                    pad(b[6], r.c_raw, full, w),
                    pad(b[7], r.dm, full, w),
                    pad(b[8], r.dm2, full, w),
                    pad(b[9], r.dc_next, full, w),
                    b[10],
                    b[11],
                    b[12],
                    b[13],
                    b[14]};
  LSTMGateConstants kt = k;
  alignas(64) float wb[3][L];
  kt.w_i = pad(wb[0], k.w_i, full, w);
  kt.w_f = pad(wb[1], k.w_f, full, w);
  kt.w_o = pad(wb[2], k.w_o, full, w);
  backward_packet(t, kt, 0);
  unpad(r.di, t.di, full, w);
  unpad(r.dj, t.dj, full, w);
  unpad(r.df, t.df, full, w);
  unpad(r.d_o, t.d_o, full, w);
  unpad(r.dc_prev, t.dc_prev, full, w);
}

#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

}  // namespace cellflow::detail
