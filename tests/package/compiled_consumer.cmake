# ctest package_compiled (only when the build has cellflow::compiled): tests/package/compiled, a
# project that links cellflow::compiled from the install tree made by package_install
# (find_package(cellflow COMPONENTS compiled)), builds consumer/main.cpp, which must print exactly
# consumer/expected_lstm.txt; and its object file must leave dynamic_rnn's body for the
# MultiRNNCell<double> it runs undefined (nm): the explicit instantiation declarations took
# effect and the library's copy is the one that ran.
#
#   cmake -DSOURCE_DIR=... -DWORK=<scratch dir> -DPREFIX=<install tree> -DVERSION=<x.y.z> -DCXX=...
#         [-DGENERATOR=... -DMAKE_PROGRAM=...] -P compiled_consumer.cmake
cmake_minimum_required(VERSION 3.16)
include(${CMAKE_CURRENT_LIST_DIR}/common.cmake)
foreach(var SOURCE_DIR WORK PREFIX VERSION CXX)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "compiled_consumer.cmake: -D${var}=... is required")
  endif()
endforeach()
file(REMOVE_RECURSE "${WORK}")
set(build "${WORK}/build")
cellflow_generator_args(gen)
cellflow_run("configuring tests/package/compiled"
  ${CMAKE_COMMAND} -S "${SOURCE_DIR}/tests/package/compiled" -B "${build}" ${gen} -DCMAKE_BUILD_TYPE=Release
  "-DCMAKE_PREFIX_PATH=${PREFIX}" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)
cellflow_run("building tests/package/compiled" ${CMAKE_COMMAND} --build "${build}")

file(GLOB_RECURSE program LIST_DIRECTORIES FALSE "${build}/consumer_compiled" "${build}/consumer_compiled.exe")
if(NOT program)
  message(FATAL_ERROR "no consumer_compiled program in ${build}")
endif()
list(GET program 0 program)
execute_process(COMMAND "${program}" WORKING_DIRECTORY "${WORK}" RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
file(READ "${SOURCE_DIR}/tests/package/consumer/expected_lstm.txt" expected)
set(CELLFLOW_VERSION "${VERSION}")
string(CONFIGURE "${expected}" expected @ONLY)
if(NOT rc EQUAL 0 OR NOT out STREQUAL expected)
  message(FATAL_ERROR "consumer_compiled exited ${rc} and printed:\n${out}${err}\nexpected:\n${expected}")
endif()

find_program(NM NAMES nm)
file(GLOB_RECURSE objects "${build}/*main.cpp.o" "${build}/*main.cpp.obj")
if(NM AND objects)
  list(GET objects 0 object)
  cellflow_run("nm ${object}" "${NM}" -C "${object}")
  string(REGEX MATCH "\n *U [^\n]*dynamic_rnn_impl<cellflow::MultiRNNCell<double> >" undefined "\n${CELLFLOW_RUN_OUTPUT}")
  string(REGEX MATCH "\n[0-9a-fA-F]+ [TtWw] [^\n]*dynamic_rnn_impl<cellflow::MultiRNNCell<double> >" defined "\n${CELLFLOW_RUN_OUTPUT}")
  if(NOT undefined OR defined)
    message(FATAL_ERROR "consumer_compiled's object compiled dynamic_rnn for MultiRNNCell<double> itself "
                        "(CELLFLOW_EXTERN_TEMPLATES without effect?):\n${CELLFLOW_RUN_OUTPUT}")
  endif()
  message(STATUS "consumer_compiled printed exactly expected_lstm.txt; dynamic_rnn for MultiRNNCell<double> came from cellflow::compiled")
else()
  message(STATUS "consumer_compiled printed exactly expected_lstm.txt (nm or the object not found: symbols not checked)")
endif()
