# SPDX-License-Identifier: MIT
# sigsafe.headers: each public header compiles on its own (included first,
# and twice, to check its guard) as C11 and as C++11.
#
#   cmake -DCC=cc -DCXX=c++ -DINCLUDE_DIR=include -DWORK_DIR=dir
#         -P headers.cmake
cmake_minimum_required(VERSION 3.21)

foreach(var CC INCLUDE_DIR WORK_DIR)
    if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
        message(FATAL_ERROR "headers.cmake: -D${var}=... is required")
    endif()
endforeach()

file(GLOB headers RELATIVE ${INCLUDE_DIR} ${INCLUDE_DIR}/*.h)
if(NOT headers)
    message(FATAL_ERROR "no headers in ${INCLUDE_DIR}")
endif()
file(MAKE_DIRECTORY ${WORK_DIR})

set(failed FALSE)
function(try_compile_tu label)
    execute_process(COMMAND ${ARGN}
        RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
    if(rc EQUAL 0)
        message(STATUS "${label}: ok")
    else()
        message(SEND_ERROR "${label}: failed\n${out}${err}")
        set(failed TRUE PARENT_SCOPE)
    endif()
endfunction()

foreach(h IN LISTS headers)
    string(MAKE_C_IDENTIFIER "${h}" id)
    set(tu ${WORK_DIR}/${id}_alone.c)
    file(WRITE ${tu} "#include <${h}>\n#include <${h}>\n")
    try_compile_tu("${h} as C11" ${CC} -std=c11 -pedantic -Wall -Wextra
        -Werror -fsyntax-only -I${INCLUDE_DIR} ${tu})
    if(CXX)
        try_compile_tu("${h} as C++11" ${CXX} -x c++ -std=c++11 -pedantic
            -Wall -Wextra -Werror -fsyntax-only -I${INCLUDE_DIR} ${tu})
    else()
        message(STATUS "${h} as C++11: skipped, no C++ compiler found")
    endif()
endforeach()

if(failed)
    message(FATAL_ERROR "sigsafe.headers failed")
endif()
