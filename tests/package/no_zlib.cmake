# ctest package_no_zlib: cellflow configured where zlib is not found (CMAKE_DISABLE_FIND_PACKAGE_ZLIB)
# still installs a working package without cellflow::io: find_package(cellflow) succeeds with
# cellflow::cellflow only, asking for the io component fails with a message saying why, and the
# consumer project configures without its .npz program.
#
#   cmake -DSOURCE_DIR=... -DWORK=<scratch dir> -DVERSION=<x.y.z> -DGENERATOR=... -DCXX=...
#         [-DMAKE_PROGRAM=...] -P no_zlib.cmake
cmake_minimum_required(VERSION 3.16)
include(${CMAKE_CURRENT_LIST_DIR}/common.cmake)
foreach(var SOURCE_DIR WORK VERSION GENERATOR CXX)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "no_zlib.cmake: -D${var}=... is required")
  endif()
endforeach()
file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}")
set(PREFIX "${WORK}/prefix")

cellflow_generator_args(gen)
cellflow_run("configuring cellflow without zlib"
  ${CMAKE_COMMAND} -S "${SOURCE_DIR}" -B "${WORK}/cellflow" ${gen} -DCMAKE_DISABLE_FIND_PACKAGE_ZLIB=ON
  -DCELLFLOW_BUILD_TESTS=OFF -DCELLFLOW_BUILD_EXAMPLES=OFF -DCELLFLOW_BUILD_BENCHMARKS=OFF)
if(NOT (CELLFLOW_RUN_OUTPUT MATCHES "cellflow::io \\(IDX file readers\\) is not available"))
  message(FATAL_ERROR "configuring cellflow without zlib did not say that cellflow::io is not available:\n${CELLFLOW_RUN_OUTPUT}")
endif()
cellflow_run("cmake --install (without zlib)" ${CMAKE_COMMAND} --install "${WORK}/cellflow" --prefix "${PREFIX}")
if(NOT (EXISTS "${PREFIX}/share/cellflow/cmake/cellflowConfig.cmake"))
  message(FATAL_ERROR "no cellflowConfig.cmake in ${PREFIX}")
endif()
if(EXISTS "${PREFIX}/share/cellflow/cmake/cellflowIoTargets.cmake")
  message(FATAL_ERROR "cellflowIoTargets.cmake installed by a build without zlib")
endif()

cellflow_probe(p PREFIX "${PREFIX}" LANGUAGES CXX)
if(NOT (p_FOUND AND p_VERSION STREQUAL VERSION AND p_TARGETS STREQUAL "cellflow::cellflow"))
  message(FATAL_ERROR "find_package(cellflow CONFIG) on an installation without io: found=${p_FOUND} version='${p_VERSION}' targets='${p_TARGETS}'\n${p_LOG}")
endif()
cellflow_probe(p PREFIX "${PREFIX}" LANGUAGES CXX ARGS COMPONENTS io)
if(p_FOUND OR NOT (p_MESSAGE STREQUAL "cellflow component io is not in this installation: zlib was not found when it was built"))
  message(FATAL_ERROR "find_package(cellflow CONFIG COMPONENTS io) on an installation without io: found=${p_FOUND}, message '${p_MESSAGE}'")
endif()

# The consumer configures (its io program left out); building it is package_find_package's job.
set(build "${WORK}/consumer")
file(WRITE "${build}/.cmake/api/v1/query/codemodel-v2" "")
cellflow_run("configuring the consumer against the installation without io"
  ${CMAKE_COMMAND} -S "${SOURCE_DIR}/tests/package/consumer" -B "${build}" ${gen}
  "-DCMAKE_PREFIX_PATH=${PREFIX}" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF -DCELLFLOW_CONSUME=find_package)
file(GLOB lstm "${build}/.cmake/api/v1/reply/target-consumer_lstm-*.json")
file(GLOB npz "${build}/.cmake/api/v1/reply/target-consumer_npz-*.json")
if(NOT (lstm AND NOT npz))
  message(FATAL_ERROR "the consumer without cellflow::io: consumer_lstm '${lstm}' (expected), consumer_npz '${npz}' (not expected)")
endif()
message(STATUS "without zlib: cellflow::cellflow only, io refused with a reason, the consumer configures")
