# ctest compile_fail_<name>: tests/compile_fail/<name>.cpp must NOT compile, and the compiler must
# say why in the words of the cell contract (the text after "expect: " in the source), in fewer
# than MAX_LINES lines of output: a readable message, not a page of template errors. The same
# source compiled with -DCELLFLOW_COMPILE_FAIL_CONTROL (nothing removed) must compile, so that the
# failure is the missing member's and nothing else's.
#   cmake -DCXX=... "-DINCLUDES=dir;dir" -DSOURCE=... [-DMAX_LINES=60] -P check_compile_fail.cmake
if(NOT MAX_LINES)
  set(MAX_LINES 60)
endif()
set(include_flags)
foreach(dir IN LISTS INCLUDES)
  list(APPEND include_flags -I${dir})
endforeach()
file(STRINGS ${SOURCE} expect_lines REGEX "^// expect: ")
list(LENGTH expect_lines n)
if(NOT n EQUAL 1)
  message(FATAL_ERROR "${SOURCE}: needs exactly one '// expect: <text>' line, has ${n}")
endif()
string(REGEX REPLACE "^// expect: " "" expect "${expect_lines}")
string(REPLACE "\\;" ";" expect "${expect}")  # file(STRINGS) escapes the semicolons of a line
set(flags -std=c++17 -fsyntax-only -Wall -Wextra -Wpedantic ${include_flags})

execute_process(COMMAND ${CXX} ${flags} -DCELLFLOW_COMPILE_FAIL_CONTROL ${SOURCE}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${SOURCE} with CELLFLOW_COMPILE_FAIL_CONTROL (nothing removed) must compile:\n${out}")
endif()

execute_process(COMMAND ${CXX} ${flags} ${SOURCE} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(rc EQUAL 0)
  message(FATAL_ERROR "${SOURCE} compiled, but a cell without that member must be refused")
endif()
string(FIND "${out}" "${expect}" at)
if(at EQUAL -1)
  message(FATAL_ERROR "the compiler's output does not say \"${expect}\":\n${out}")
endif()
string(REGEX MATCHALL "\n" newlines "${out}")
list(LENGTH newlines lines)
if(NOT lines LESS MAX_LINES)
  message(FATAL_ERROR "${lines} lines of compiler output (at most ${MAX_LINES} expected):\n${out}")
endif()
message(STATUS "refused with \"${expect}\" in ${lines} lines of compiler output")
