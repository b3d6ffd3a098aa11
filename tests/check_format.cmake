# ctest format_check: every C++ source of the project is formatted by .clang-format.
#   cmake -DCLANG_FORMAT=... -DROOT=<source dir> -P check_format.cmake
file(GLOB_RECURSE sources
  ${ROOT}/include/*.hpp ${ROOT}/tests/*.cpp ${ROOT}/tests/*.hpp ${ROOT}/examples/*.cpp ${ROOT}/examples/*.hpp
  ${ROOT}/benchmarks/*.cpp ${ROOT}/src/*.cpp)
list(FILTER sources EXCLUDE REGEX "/tests/(docs|package)/")
execute_process(COMMAND ${CLANG_FORMAT} --style=file --dry-run -Werror ${sources}
  WORKING_DIRECTORY ${ROOT} RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "not formatted by .clang-format (run clang-format -i on these):\n${err}")
endif()
list(LENGTH sources n)
message(STATUS "${n} files formatted")
