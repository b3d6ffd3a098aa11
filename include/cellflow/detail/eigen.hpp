// The one place cellflow includes Eigen. Everything else includes this header.
#pragma once

#include <Eigen/Core>
#include <unsupported/Eigen/CXX11/Tensor>

#if !EIGEN_VERSION_AT_LEAST(3, 4, 0)
#error "cellflow needs Eigen 3.4 or newer"
#endif
