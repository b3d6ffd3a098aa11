// A program built without optimisation runs cellflow some 30x slower (CMake's default when no
// build type is given). The first forward pass of such a build says so once on stderr:
//
//   cellflow: this program was compiled without optimisation (no -O2): cellflow runs about 30x
//   slower. Build with -O2 (CMake: -DCMAKE_BUILD_TYPE=Release). ...
//
// Silence it with -DCELLFLOW_ALLOW_UNOPTIMIZED at compile time, or CELLFLOW_ALLOW_UNOPTIMIZED=1
// in the environment. Optimised builds (GCC and Clang define __OPTIMIZE__ from -O1 up) compile
// it to nothing.
#pragma once

#include <cstdio>
#include <cstdlib>

namespace cellflow::detail {

/// Whether this translation unit was compiled with optimisation (GCC/Clang: -O1 and up; other
/// compilers: assumed yes).
constexpr bool built_optimized() {
#if defined(__GNUC__) && !defined(__OPTIMIZE__)
  return false;
#else
  return true;
#endif
}

/// Prints the unoptimised-build notice once per process (see the top of this header).
inline void warn_if_unoptimized() {
#ifndef CELLFLOW_ALLOW_UNOPTIMIZED
  if constexpr (!built_optimized()) {
    static const bool once = [] {
      const char* quiet = std::getenv("CELLFLOW_ALLOW_UNOPTIMIZED");
      if (quiet == nullptr || *quiet == '\0' || *quiet == '0')
        std::fprintf(stderr,
                     "cellflow: this program was compiled without optimisation (no -O2): cellflow runs about 30x "
                     "slower. Build with -O2 (CMake: -DCMAKE_BUILD_TYPE=Release). Silence this with "
                     "-DCELLFLOW_ALLOW_UNOPTIMIZED or CELLFLOW_ALLOW_UNOPTIMIZED=1 in the environment.\n");
      return true;
    }();
    (void)once;
  }
#endif
}

}  // namespace cellflow::detail
