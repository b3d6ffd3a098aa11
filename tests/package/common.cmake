# Helpers shared by the package tests' scripts (run with cmake -P by ctest; see the end of
# tests/CMakeLists.txt). Every failure is a FATAL_ERROR saying what was expected and what was found.

# The environment must not add flags of its own: the tests check that cellflow forces none.
foreach(var CXXFLAGS CPPFLAGS LDFLAGS CMAKE_PREFIX_PATH CMAKE_BUILD_TYPE CMAKE_GENERATOR)
  unset(ENV{${var}})
endforeach()

# cellflow_run(<what> <command...>): runs the command; on a non-zero exit stops with its output.
# The output is left in CELLFLOW_RUN_OUTPUT.
function(cellflow_run what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    string(REPLACE ";" " " cmd "${ARGN}")
    message(FATAL_ERROR "${what} failed (exit ${rc}):\n  ${cmd}\n${out}")
  endif()
  set(CELLFLOW_RUN_OUTPUT "${out}" PARENT_SCOPE)
endfunction()

# The generator and compiler of the main build, for every project configured here.
function(cellflow_generator_args out_var)
  set(args -G "${GENERATOR}" "-DCMAKE_CXX_COMPILER=${CXX}")
  if(MAKE_PROGRAM)
    list(APPEND args "-DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM}")
  endif()
  set(${out_var} "${args}" PARENT_SCOPE)
endfunction()

# cellflow_probe(<out> PREFIX <dir> LANGUAGES <NONE|CXX> [REQUEST <version>] [ARGS <find_package args>]
#                [DEFINES <-D...>]): configures tests/package/probe, which calls
# find_package(cellflow <REQUEST> CONFIG <ARGS>) against the install tree <dir>, and sets
# <out>_FOUND, <out>_VERSION, <out>_DIR, <out>_TARGETS (the cellflow:: targets defined) and
# <out>_MESSAGE (cellflow_NOT_FOUND_MESSAGE), <out>_LOG (the configure output).
function(cellflow_probe out)
  cmake_parse_arguments(P "" "PREFIX;LANGUAGES;REQUEST" "ARGS;DEFINES" ${ARGN})
  string(MAKE_C_IDENTIFIER "${out}" id)
  set(dir "${WORK}/probe-${id}")
  file(REMOVE_RECURSE "${dir}")
  cellflow_generator_args(gen)
  string(REPLACE ";" "|" args "${P_ARGS}")  # one command-line argument; the probe splits it again
  execute_process(
    COMMAND ${CMAKE_COMMAND} -S "${SOURCE_DIR}/tests/package/probe" -B "${dir}" ${gen}
      "-DCMAKE_PREFIX_PATH=${P_PREFIX}" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
      "-DPROBE_LANGUAGES=${P_LANGUAGES}" "-DPROBE_REQUEST=${P_REQUEST}" "-DPROBE_ARGS=${args}"
      "-DPROBE_OUT=${dir}/result.cmake" ${P_DEFINES}
    RESULT_VARIABLE rc OUTPUT_VARIABLE log ERROR_VARIABLE log)
  if(NOT rc EQUAL 0 OR NOT EXISTS "${dir}/result.cmake")
    message(FATAL_ERROR "probe ${out}: configuring tests/package/probe failed (exit ${rc}):\n${log}")
  endif()
  include("${dir}/result.cmake")  # sets PROBE_FOUND, PROBE_VERSION, PROBE_DIR, PROBE_TARGETS, PROBE_MESSAGE
  foreach(v FOUND VERSION DIR TARGETS MESSAGE)
    set(${out}_${v} "${PROBE_${v}}" PARENT_SCOPE)
  endforeach()
  set(${out}_LOG "${log}" PARENT_SCOPE)
  file(REMOVE_RECURSE "${dir}")
endfunction()
