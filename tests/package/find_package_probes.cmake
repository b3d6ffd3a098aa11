# ctest package_find_package_probes: what find_package(cellflow ...) accepts from the install tree
# made by package_install. Version: SameMinorVersion (before 1.0 a minor version may change the
# API) and ARCH_INDEPENDENT (a 32-bit consumer accepts it); components: io when zlib is there, mpi
# when MPI is, unknown components refused with a message; zlib (MPI) missing on the consumer's
# side hides cellflow::io (cellflow::mpi) and leaves the other targets, and requiring io (mpi)
# then fails.
#
#   cmake -DSOURCE_DIR=... -DPREFIX=<install tree> -DWORK=<scratch dir> -DVERSION=<x.y.z>
#         -DHAS_IO=<ON|OFF> -DHAS_MPI=<ON|OFF> -DGENERATOR=... -DCXX=... [-DMAKE_PROGRAM=...]
#         -P find_package_probes.cmake
cmake_minimum_required(VERSION 3.16)
include(${CMAKE_CURRENT_LIST_DIR}/common.cmake)
foreach(var SOURCE_DIR PREFIX WORK VERSION HAS_IO HAS_MPI GENERATOR CXX)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "find_package_probes.cmake: -D${var}=... is required")
  endif()
endforeach()
file(MAKE_DIRECTORY "${WORK}")

string(REPLACE "." ";" parts "${VERSION}")
list(GET parts 0 major)
list(GET parts 1 minor)
list(GET parts 2 patch)
math(EXPR next_major "${major} + 1")
math(EXPR next_minor "${minor} + 1")
math(EXPR next_patch "${patch} + 1")
set(cmake_dir "${PREFIX}/share/cellflow/cmake")

# Accepted requests.
foreach(request "" "${major}.${minor}" "${VERSION}")
  cellflow_probe(p PREFIX "${PREFIX}" LANGUAGES NONE REQUEST "${request}")
  if(NOT (p_FOUND AND p_VERSION STREQUAL VERSION))
    message(FATAL_ERROR "find_package(cellflow ${request} CONFIG): found=${p_FOUND} version='${p_VERSION}', expected version ${VERSION}\n${p_LOG}")
  endif()
  get_filename_component(found_dir "${p_DIR}" REALPATH)
  get_filename_component(want_dir "${cmake_dir}" REALPATH)
  if(NOT (found_dir STREQUAL want_dir))
    message(FATAL_ERROR "find_package(cellflow ${request} CONFIG) used ${p_DIR}, expected the install tree's ${cmake_dir}")
  endif()
endforeach()
cellflow_probe(p PREFIX "${PREFIX}" LANGUAGES NONE REQUEST "${VERSION}" ARGS EXACT)
if(NOT (p_FOUND))
  message(FATAL_ERROR "find_package(cellflow ${VERSION} EXACT CONFIG) did not accept version ${VERSION}\n${p_LOG}")
endif()

# Refused requests: a newer patch, the next minor, the next major (and an older minor, if any).
set(refused "${major}.${minor}.${next_patch}" "${major}.${next_minor}" "${next_major}.0")
if(minor GREATER 0)
  math(EXPR prev_minor "${minor} - 1")
  list(APPEND refused "${major}.${prev_minor}")
endif()
foreach(request IN LISTS refused)
  cellflow_probe(p PREFIX "${PREFIX}" LANGUAGES NONE REQUEST "${request}")
  if(p_FOUND)
    message(FATAL_ERROR "find_package(cellflow ${request} CONFIG) accepted version ${p_VERSION}; SameMinorVersion should refuse it")
  endif()
endforeach()

# ARCH_INDEPENDENT: a consumer whose pointers are 4 bytes still accepts the package; unless it
# holds cellflow::compiled (HAS_COMPILED), a library built for this build's pointer size.
cellflow_probe(p PREFIX "${PREFIX}" LANGUAGES NONE REQUEST "${major}.${minor}" DEFINES -DCMAKE_SIZEOF_VOID_P=4)
if(HAS_COMPILED AND p_FOUND)
  message(FATAL_ERROR "with CMAKE_SIZEOF_VOID_P=4 find_package(cellflow) accepted a package that holds cellflow::compiled "
                      "(a static library for another pointer size)\n${p_LOG}")
elseif(NOT HAS_COMPILED AND NOT p_FOUND)
  message(FATAL_ERROR "with CMAKE_SIZEOF_VOID_P=4 find_package(cellflow) refused the package: its version file is not ARCH_INDEPENDENT\n${p_LOG}")
endif()

# Unknown component.
cellflow_probe(p PREFIX "${PREFIX}" LANGUAGES NONE ARGS COMPONENTS bogus)
if(p_FOUND OR NOT (p_MESSAGE MATCHES "cellflow has no component 'bogus' \\(it has: io, mpi, compiled\\)"))
  message(FATAL_ERROR "find_package(cellflow CONFIG COMPONENTS bogus): found=${p_FOUND}, message '${p_MESSAGE}'")
endif()

# Components and their dependencies (a C++ project, so that find_package(ZLIB) searches the
# multiarch lib dirs and FindMPI has a C++ compiler to ask). Every component the installation
# has, asked for together, defines every target.
set(all_targets cellflow::cellflow)
set(built)
foreach(component io mpi)
  string(TOUPPER "${component}" upper)
  if(HAS_${upper})
    list(APPEND built ${component})
    list(APPEND all_targets cellflow::${component})
  endif()
endforeach()
if(built)
  cellflow_probe(p PREFIX "${PREFIX}" LANGUAGES CXX ARGS COMPONENTS ${built})
  if(NOT (p_FOUND AND p_TARGETS STREQUAL "${all_targets}"))
    message(FATAL_ERROR "find_package(cellflow CONFIG COMPONENTS ${built}): found=${p_FOUND} targets='${p_TARGETS}', expected ${all_targets}\n${p_LOG}")
  endif()
endif()
# Then each component's dependency missing on the consumer's side (zlib for io, MPI for mpi).
foreach(component io mpi)
  string(TOUPPER "${component}" upper)
  if(component STREQUAL "io")
    set(dependency ZLIB)
  else()
    set(dependency MPI)
  endif()
  if(HAS_${upper})
    # The consumer has no ${dependency}: the other targets still work, cellflow::${component} is
    # not defined ...
    set(others ${all_targets})
    list(REMOVE_ITEM others cellflow::${component})
    cellflow_probe(p PREFIX "${PREFIX}" LANGUAGES CXX DEFINES -DCMAKE_DISABLE_FIND_PACKAGE_${dependency}=ON)
    if(NOT (p_FOUND AND p_TARGETS STREQUAL "${others}"))
      message(FATAL_ERROR "without ${dependency}, find_package(cellflow CONFIG): found=${p_FOUND} targets='${p_TARGETS}', expected ${others}\n${p_LOG}")
    endif()
    # ... and asking for it is an error naming the dependency.
    cellflow_probe(p PREFIX "${PREFIX}" LANGUAGES CXX ARGS COMPONENTS ${component}
                   DEFINES -DCMAKE_DISABLE_FIND_PACKAGE_${dependency}=ON)
    if(p_FOUND OR NOT (p_MESSAGE MATCHES "${dependency}"))
      message(FATAL_ERROR "without ${dependency}, find_package(cellflow CONFIG COMPONENTS ${component}): found=${p_FOUND}, message '${p_MESSAGE}', expected not found because of ${dependency}")
    endif()
  else()
    cellflow_probe(p PREFIX "${PREFIX}" LANGUAGES CXX ARGS COMPONENTS ${component})
    if(p_FOUND OR NOT (p_MESSAGE MATCHES "cellflow component ${component} is not in this installation"))
      message(FATAL_ERROR "find_package(cellflow CONFIG COMPONENTS ${component}) on an installation without ${component}: found=${p_FOUND}, message '${p_MESSAGE}'")
    endif()
  endif()
endforeach()
message(STATUS "find_package(cellflow): versions, ARCH_INDEPENDENT and components behave as documented")
