# SPDX-License-Identifier: MIT
# sigsafe.exports: every global symbol that libsigsafe.a defines starts with
# sigsafe_ (public sigsafe_*, internal sigsafe__*).
#
#   cmake -DNM=nm -DLIBRARY=libsigsafe.a [-DSANITIZE=...] -P exports.cmake
cmake_minimum_required(VERSION 3.21)

foreach(var NM LIBRARY)
    if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
        message(FATAL_ERROR "exports.cmake: -D${var}=... is required")
    endif()
endforeach()

execute_process(COMMAND ${NM} -A -g --defined-only ${LIBRARY}
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
    message(FATAL_ERROR "nm failed (${rc}): ${err}")
endif()

# Symbols the compiler itself emits under sanitizers (ASan ODR indicators,
# module constructors) are not ours to name.
set(tool_prefixes)
if(SANITIZE)
    set(tool_prefixes __odr_asan __asan_ __ubsan_ __tsan_ __sanitizer_)
endif()

string(REPLACE "\n" ";" lines "${out}")
set(bad)
set(count 0)
foreach(line IN LISTS lines)
    if(NOT line MATCHES "^(.*): *([0-9a-fA-F]+ )?([A-Za-z]) ([^ ]+)$")
        continue()
    endif()
    set(where "${CMAKE_MATCH_1}")
    set(type "${CMAKE_MATCH_3}")
    set(sym "${CMAKE_MATCH_4}")
    math(EXPR count "${count} + 1")
    string(FIND "${sym}" "sigsafe_" pos)
    if(pos EQUAL 0)
        continue()
    endif()
    set(tool FALSE)
    foreach(p IN LISTS tool_prefixes)
        string(FIND "${sym}" "${p}" pp)
        if(pp EQUAL 0)
            set(tool TRUE)
        endif()
    endforeach()
    if(NOT tool)
        list(APPEND bad "  ${sym} (${type}, ${where})")
    endif()
endforeach()

if(count EQUAL 0)
    message(FATAL_ERROR "no global definitions found in ${LIBRARY}")
endif()
if(bad)
    list(JOIN bad "\n" text)
    message(FATAL_ERROR "libsigsafe.a defines globals without the sigsafe_ prefix:\n${text}")
endif()
message(STATUS "exports: ok (${count} global definitions, all sigsafe_*)")
