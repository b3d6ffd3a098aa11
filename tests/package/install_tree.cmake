# ctest package_install: `cmake --install <BUILD_DIR> --prefix <PREFIX>` of the current build, then
# checks the tree: every public header (and nothing else) under include/, byte for byte; the CMake
# package, cellflow.pc and the docs under share/; nothing under lib/ but the static library of cellflow::compiled when it was built. The other
# package tests use this tree (ctest fixture cellflow_install).
#
#   cmake -DSOURCE_DIR=<cellflow source> -DBUILD_DIR=<its build> -DPREFIX=<install tree>
#         -DHAS_IO=<ON|OFF> -DHAS_MPI=<ON|OFF> [-DHAS_COMPILED=<ON|OFF>] [-DCONFIG=<config>] -P install_tree.cmake
cmake_minimum_required(VERSION 3.16)
include(${CMAKE_CURRENT_LIST_DIR}/common.cmake)
foreach(var SOURCE_DIR BUILD_DIR PREFIX HAS_IO HAS_MPI)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "install_tree.cmake: -D${var}=... is required")
  endif()
endforeach()

file(REMOVE_RECURSE "${PREFIX}")
set(config_args)
if(CONFIG)
  set(config_args --config "${CONFIG}")
endif()
cellflow_run("cmake --install" ${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${PREFIX}" ${config_args})

# Header-only: include/ and share/ only; and the companion static library when it was built
# (HAS_COMPILED, -DCELLFLOW_COMPILED=ON), the only file under the library directory.
file(GLOB top RELATIVE "${PREFIX}" "${PREFIX}/*")
list(SORT top)
if(HAS_COMPILED)
  list(FILTER top EXCLUDE REGEX "^lib(32|64|x32)?$")  # GNUInstallDirs' CMAKE_INSTALL_LIBDIR
  file(GLOB_RECURSE libs RELATIVE "${PREFIX}" "${PREFIX}/lib*/*")
  if(NOT (libs MATCHES "^lib[^;]*/libcellflow_compiled\\.a$"))
    message(FATAL_ERROR "install tree ${PREFIX}: the library directory holds '${libs}', expected libcellflow_compiled.a alone")
  endif()
endif()
if(NOT ("${top}" STREQUAL "include;share"))
  message(FATAL_ERROR "install tree ${PREFIX}: top-level entries are '${top}', expected 'include;share' (and the library directory with cellflow::compiled)")
endif()

# Every public header, identical, and nothing else.
file(GLOB_RECURSE src_headers RELATIVE "${SOURCE_DIR}/include" "${SOURCE_DIR}/include/cellflow/*.hpp")
file(GLOB_RECURSE inst_files RELATIVE "${PREFIX}/include" "${PREFIX}/include/*")
list(SORT src_headers)
list(SORT inst_files)
if(NOT src_headers STREQUAL inst_files)
  set(missing ${src_headers})
  list(REMOVE_ITEM missing ${inst_files})
  set(extra ${inst_files})
  list(REMOVE_ITEM extra ${src_headers})
  message(FATAL_ERROR "install tree ${PREFIX}/include: headers not installed: '${missing}'; files that are not public headers: '${extra}'")
endif()
list(LENGTH src_headers n_headers)
if(NOT (n_headers GREATER 20))
  message(FATAL_ERROR "found only ${n_headers} headers under ${SOURCE_DIR}/include/cellflow")
endif()
foreach(h IN LISTS src_headers)
  file(SHA256 "${SOURCE_DIR}/include/${h}" a)
  file(SHA256 "${PREFIX}/include/${h}" b)
  if(NOT (a STREQUAL b))
    message(FATAL_ERROR "installed ${h} differs from the source's")
  endif()
endforeach()
if(NOT (EXISTS "${PREFIX}/include/cellflow/version.hpp"))
  message(FATAL_ERROR "cellflow/version.hpp is not installed")
endif()

# The CMake package, cellflow.pc and the docs.
set(required
  share/cellflow/cmake/cellflowConfig.cmake
  share/cellflow/cmake/cellflowConfigVersion.cmake
  share/cellflow/cmake/cellflowTargets.cmake
  share/pkgconfig/cellflow.pc
  share/doc/cellflow/README.md
  share/doc/cellflow/LICENSE)
file(GLOB src_docs RELATIVE "${SOURCE_DIR}" "${SOURCE_DIR}/docs/*.md" "${SOURCE_DIR}/docs/images/*.svg")
foreach(d IN LISTS src_docs)
  list(APPEND required "share/doc/cellflow/${d}")
endforeach()
foreach(f IN LISTS required)
  if(NOT (EXISTS "${PREFIX}/${f}"))
    message(FATAL_ERROR "install tree ${PREFIX}: ${f} is missing")
  endif()
endforeach()
# The optional components' export files: there exactly when the component was built.
foreach(component io mpi compiled)
  string(TOUPPER "${component}" upper)             # HAS_IO, HAS_MPI, HAS_COMPILED
  string(SUBSTRING "${upper}" 0 1 first)
  string(SUBSTRING "${component}" 1 -1 rest)
  set(targets "${PREFIX}/share/cellflow/cmake/cellflow${first}${rest}Targets.cmake")  # cellflowIoTargets.cmake
  if(HAS_${upper} AND NOT EXISTS "${targets}")
    message(FATAL_ERROR "cellflow::${component} was built but ${targets} is not installed")
  elseif(NOT HAS_${upper} AND EXISTS "${targets}")
    message(FATAL_ERROR "cellflow::${component} was not built but ${targets} is installed")
  endif()
endforeach()
list(LENGTH required n_files)
message(STATUS "install tree ${PREFIX}: ${n_headers} headers, ${n_files} package and doc files, io=${HAS_IO}, mpi=${HAS_MPI}, compiled=${HAS_COMPILED}")
