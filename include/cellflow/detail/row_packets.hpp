// What the fused elementwise passes of the float cells (detail/lstm_gates.hpp,
// detail/gru_gates.hpp) share: Eigen's float packet, its loads and stores, the packet logistic
// and tanh (the functions of x.logistic() and x.tanh()), and the zero-padded buffers through
// which a row's last, partial packet goes, so that every element of a row is computed by the
// same packet code whatever the row's address.
#pragma once

#include <algorithm>

#include "cellflow/core/types.hpp"

// Everything a pass calls is inlined into it (Eigen's logistic and tanh included), so that the
// pragmas of the pass's header cover all of its code, and the pass is one loop without calls.
#if defined(__GNUC__)
#define CELLFLOW_FLATTEN __attribute__((flatten))
#else
#define CELLFLOW_FLATTEN
#endif

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wignored-attributes"  // packet types as template arguments, as in Eigen
#endif

namespace cellflow::detail::row_packets {

using P = Eigen::internal::packet_traits<float>::type;
constexpr int L = Eigen::internal::packet_traits<float>::size;

inline P ld(const float* p) { return Eigen::internal::ploadu<P>(p); }
inline void st(float* p, const P& v) { Eigen::internal::pstoreu(p, v); }
inline P sigmoid(const P& x) { return Eigen::internal::scalar_logistic_op<float>().packetOp(x); }
inline P tanh(const P& x) { return Eigen::internal::scalar_tanh_op<float>().packetOp(x); }

// Copies the w < L elements at p + u into a zero-padded buffer and returns it (or null for null).
inline float* pad(float* buf, const float* p, Index u, Index w) {
  if (!p) return nullptr;
  std::fill(buf, buf + L, 0.0f);
  std::copy(p + u, p + u + w, buf);
  return buf;
}
inline void unpad(float* p, const float* buf, Index u, Index w) {
  if (p) std::copy(buf, buf + w, p + u);
}

}  // namespace cellflow::detail::row_packets

#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
