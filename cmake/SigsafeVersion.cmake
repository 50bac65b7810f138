# SPDX-License-Identifier: MIT
# The version lives in two places: project(VERSION) and the
# SIGSAFE_VERSION_MAJOR/MINOR/PATCH macros of include/sigsafe.h.  These
# functions read the header so that configuring fails when the two differ.
# Usable from a project and from cmake -P scripts.

# sigsafe_header_version(<header> <out-var>)
# Sets <out-var> to "MAJOR.MINOR.PATCH" as defined in <header>, or to ""
# when one of the three macros is missing.
function(sigsafe_header_version header out)
    file(STRINGS "${header}" lines
        REGEX "^#[ \t]*define[ \t]+SIGSAFE_VERSION_(MAJOR|MINOR|PATCH)[ \t]")
    set(version "")
    foreach(part MAJOR MINOR PATCH)
        set(value "")
        foreach(line IN LISTS lines)
            if(line MATCHES
                    "^#[ \t]*define[ \t]+SIGSAFE_VERSION_${part}[ \t]+([0-9]+)")
                set(value "${CMAKE_MATCH_1}")
            endif()
        endforeach()
        if(value STREQUAL "")
            set(${out} "" PARENT_SCOPE)
            return()
        endif()
        list(APPEND version "${value}")
    endforeach()
    list(JOIN version "." version)
    set(${out} "${version}" PARENT_SCOPE)
endfunction()

# sigsafe_check_header_version(<header> <version>)
# Fails (FATAL_ERROR) unless <header> defines exactly <version>.
function(sigsafe_check_header_version header version)
    sigsafe_header_version("${header}" found)
    if(NOT found STREQUAL version)
        if(found STREQUAL "")
            set(found "no complete SIGSAFE_VERSION_MAJOR/MINOR/PATCH")
        endif()
        message(FATAL_ERROR "sigsafe: version mismatch: the project is "
            "${version} but ${header} has ${found}; update both together "
            "(and CHANGELOG.md)")
    endif()
endfunction()
