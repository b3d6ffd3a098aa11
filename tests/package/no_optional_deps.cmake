# ctest package_no_optional_deps: cellflow configured where neither zlib nor MPI is found
# (CMAKE_DISABLE_FIND_PACKAGE_ZLIB, CMAKE_DISABLE_FIND_PACKAGE_MPI) still installs a working
# package, without cellflow::io and cellflow::mpi: configuring says that each is not available,
# find_package(cellflow) succeeds with cellflow::cellflow only, asking for the io or the mpi
# component fails with a message saying why, and the consumer project configures without its
# .npz and MPI programs.
#
# Both optional dependencies are left out by one configure and install: the two are handled by
# independent code (one if() each in CMakeLists.txt and cellflowConfig.cmake), and a second
# configure + install + consumer configure would cost time on every CI run for nothing the other
# tests miss (measured alone on the 2-core CI machine: this test 2.3 s; the former
# package_no_zlib, MPI found, 4.4 s, FindMPI taking most of the difference). That one missing dependency does not take the other component with it is
# checked elsewhere: find_package_probes.cmake hides zlib, then MPI, from a consumer of the full
# installation and expects the other component to stay; scripts/test.sh's sanitizer build has
# zlib but not MPI, and builds and runs the whole suite, io tests included.
#
#   cmake -DSOURCE_DIR=... -DWORK=<scratch dir> -DVERSION=<x.y.z> -DGENERATOR=... -DCXX=...
#         [-DMAKE_PROGRAM=...] -P no_optional_deps.cmake
cmake_minimum_required(VERSION 3.16)
include(${CMAKE_CURRENT_LIST_DIR}/common.cmake)
foreach(var SOURCE_DIR WORK VERSION GENERATOR CXX)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "no_optional_deps.cmake: -D${var}=... is required")
  endif()
endforeach()
file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}")
set(PREFIX "${WORK}/prefix")

cellflow_generator_args(gen)
cellflow_run("configuring cellflow without zlib and MPI"
  ${CMAKE_COMMAND} -S "${SOURCE_DIR}" -B "${WORK}/cellflow" ${gen} -DCMAKE_DISABLE_FIND_PACKAGE_ZLIB=ON
  -DCMAKE_DISABLE_FIND_PACKAGE_MPI=ON -DCELLFLOW_BUILD_TESTS=OFF -DCELLFLOW_BUILD_EXAMPLES=OFF
  -DCELLFLOW_BUILD_BENCHMARKS=OFF)
foreach(said "cellflow::io \\(IDX file readers\\) is not available"
             "cellflow: MPI not found; cellflow::mpi \\(data-parallel training\\) is not available")
  if(NOT (CELLFLOW_RUN_OUTPUT MATCHES "${said}"))
    message(FATAL_ERROR "configuring cellflow without zlib and MPI did not say '${said}':\n${CELLFLOW_RUN_OUTPUT}")
  endif()
endforeach()
cellflow_run("cmake --install (without zlib and MPI)" ${CMAKE_COMMAND} --install "${WORK}/cellflow" --prefix "${PREFIX}")
if(NOT (EXISTS "${PREFIX}/share/cellflow/cmake/cellflowConfig.cmake"))
  message(FATAL_ERROR "no cellflowConfig.cmake in ${PREFIX}")
endif()
foreach(targets_file Io Mpi)
  if(EXISTS "${PREFIX}/share/cellflow/cmake/cellflow${targets_file}Targets.cmake")
    message(FATAL_ERROR "cellflow${targets_file}Targets.cmake installed by a build without zlib and MPI")
  endif()
endforeach()

cellflow_probe(p PREFIX "${PREFIX}" LANGUAGES CXX)
if(NOT (p_FOUND AND p_VERSION STREQUAL VERSION AND p_TARGETS STREQUAL "cellflow::cellflow"))
  message(FATAL_ERROR "find_package(cellflow CONFIG) on an installation without io and mpi: found=${p_FOUND} version='${p_VERSION}' targets='${p_TARGETS}'\n${p_LOG}")
endif()
cellflow_probe(p PREFIX "${PREFIX}" LANGUAGES CXX ARGS COMPONENTS io)
if(p_FOUND OR NOT (p_MESSAGE STREQUAL "cellflow component io is not in this installation: zlib was not found when it was built"))
  message(FATAL_ERROR "find_package(cellflow CONFIG COMPONENTS io) on an installation without io: found=${p_FOUND}, message '${p_MESSAGE}'")
endif()
cellflow_probe(p PREFIX "${PREFIX}" LANGUAGES CXX ARGS COMPONENTS mpi)
if(p_FOUND OR NOT (p_MESSAGE STREQUAL "cellflow component mpi is not in this installation: MPI was not found when it was built"))
  message(FATAL_ERROR "find_package(cellflow CONFIG COMPONENTS mpi) on an installation without mpi: found=${p_FOUND}, message '${p_MESSAGE}'")
endif()

# The consumer configures (its io and MPI programs left out); building it is package_find_package's job.
set(build "${WORK}/consumer")
file(WRITE "${build}/.cmake/api/v1/query/codemodel-v2" "")
cellflow_run("configuring the consumer against the installation without io"
  ${CMAKE_COMMAND} -S "${SOURCE_DIR}/tests/package/consumer" -B "${build}" ${gen}
  "-DCMAKE_PREFIX_PATH=${PREFIX}" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF -DCELLFLOW_CONSUME=find_package)
file(GLOB lstm "${build}/.cmake/api/v1/reply/target-consumer_lstm-*.json")
file(GLOB npz "${build}/.cmake/api/v1/reply/target-consumer_npz-*.json")
file(GLOB mpi "${build}/.cmake/api/v1/reply/target-consumer_mpi-*.json")
if(NOT (lstm AND NOT npz AND NOT mpi))
  message(FATAL_ERROR "the consumer without cellflow::io and cellflow::mpi: consumer_lstm '${lstm}' (expected), "
                      "consumer_npz '${npz}', consumer_mpi '${mpi}' (not expected)")
endif()
message(STATUS "without zlib and MPI: cellflow::cellflow only, io and mpi refused with a reason, the consumer configures")
