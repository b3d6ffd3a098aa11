// cellflow's version, for code that must know which release it is compiled against.
//
// This header is the single source of the version: the top-level CMakeLists.txt reads the three
// numbers below into project(cellflow VERSION ...), which also fills the CMake package version
// file and cellflow.pc, and the ctest `package_version` checks that they agree. Bump them here.
//
//   #if CELLFLOW_VERSION_AT_LEAST(0, 2, 0)
//     ... use something 0.2.0 added ...
//   #endif
//
// Semantic versioning: before 1.0.0 a new minor version may change the API, so the CMake package
// accepts `find_package(cellflow 0.1)` only from 0.1.x (SameMinorVersion).
#pragma once

/// Major version number (semantic versioning).
#define CELLFLOW_VERSION_MAJOR 0
/// Minor version number; before 1.0.0 a new minor version may change the API.
#define CELLFLOW_VERSION_MINOR 1
/// Patch version number: fixes within one minor version.
#define CELLFLOW_VERSION_PATCH 0

/// "MAJOR.MINOR.PATCH", the same three numbers as a string literal.
#define CELLFLOW_VERSION_STRING "0.1.0"

/// True (1) when the cellflow being compiled is version maj.min.pat or later; usable in #if.
#define CELLFLOW_VERSION_AT_LEAST(maj, min, pat) \
  (CELLFLOW_VERSION_MAJOR > (maj) ||             \
   (CELLFLOW_VERSION_MAJOR == (maj) &&           \
    (CELLFLOW_VERSION_MINOR > (min) || (CELLFLOW_VERSION_MINOR == (min) && CELLFLOW_VERSION_PATCH >= (pat)))))
