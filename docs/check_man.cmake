# SPDX-License-Identifier: MIT
# sigsafe.man: every function that the public headers declare has a man
# page, docs/man/man3/<function>.3 (a page of its own or a link to the page
# that documents it), whose NAME section names it; with groff present, each
# page also formats without warnings.
#   cmake -DINCLUDE_DIR=... -DMAN_DIR=... [-DGROFF=...] -P check_man.cmake
file(GLOB headers ${INCLUDE_DIR}/*.h)
set(functions)
foreach(h IN LISTS headers)
    file(READ ${h} text)
    string(REGEX MATCHALL "[ *](sigsafe_[a-z_]+)\\(" found "${text}")
    foreach(f IN LISTS found)
        string(REGEX REPLACE "^[ *]|\\($" "" f "${f}")
        list(APPEND functions ${f})
    endforeach()
endforeach()
list(REMOVE_DUPLICATES functions)
list(LENGTH functions n)
if(n LESS 20)
    message(FATAL_ERROR "found only ${n} functions in ${INCLUDE_DIR}")
endif()

set(bad)
foreach(f IN LISTS functions)
    set(page ${MAN_DIR}/man3/${f}.3)
    if(NOT EXISTS ${page})
        list(APPEND bad "${f}: no ${page}")
        continue()
    endif()
    file(READ ${page} text)
    string(REGEX MATCH "\n\\.SH NAME\n[^.]*" name "${text}")
    string(REPLACE "\\-" "-" name "${name}")
    if(NOT name MATCHES "[\n ,]${f}[,\n ]")
        list(APPEND bad "${f}: ${page} does not name it")
    endif()
endforeach()

if(GROFF)
    file(GLOB pages LIST_DIRECTORIES false ${MAN_DIR}/man3/*.3)
    foreach(page IN LISTS pages)
        execute_process(COMMAND ${GROFF} -man -ww -z ${page}
            RESULT_VARIABLE rc ERROR_VARIABLE err)
        if(NOT rc EQUAL 0 OR err)
            list(APPEND bad "${page}: groff: ${err}")
        endif()
    endforeach()
endif()

if(bad)
    list(JOIN bad "\n  " bad)
    message(FATAL_ERROR "man pages:\n  ${bad}")
endif()
message(STATUS "man pages: all ${n} public functions documented")
