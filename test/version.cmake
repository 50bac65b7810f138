# SPDX-License-Identifier: MIT
# sigsafe.version: the version is the same in project(VERSION), the
# SIGSAFE_VERSION_* macros of sigsafe.h and CHANGELOG.md, and the configure
# check that compares the first two really fails on a mismatch.
#
#   cmake -DSOURCE_DIR=<sigsafe source> -DVERSION=<x.y.z> -DWORK_DIR=<dir>
#         -P version.cmake
cmake_minimum_required(VERSION 3.21)

foreach(var SOURCE_DIR VERSION WORK_DIR)
    if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
        message(FATAL_ERROR "version.cmake: -D${var}=... is required")
    endif()
endforeach()
include(${SOURCE_DIR}/cmake/SigsafeVersion.cmake)

sigsafe_header_version(${SOURCE_DIR}/include/sigsafe.h header)
if(NOT header STREQUAL VERSION)
    message(FATAL_ERROR "sigsafe.h says '${header}', the project ${VERSION}")
endif()

# CHANGELOG.md (Keep a Changelog) has an entry for this version.
string(REPLACE "." "\\." version_re "${VERSION}")
file(STRINGS ${SOURCE_DIR}/CHANGELOG.md entry
    REGEX "^## \\[${version_re}\\]")
if(NOT entry)
    message(FATAL_ERROR "CHANGELOG.md has no '## [${VERSION}]' entry")
endif()

# The configure check must reject a header whose version differs, and one
# that lacks a macro.
file(MAKE_DIRECTORY ${WORK_DIR})
file(WRITE ${WORK_DIR}/good.h "#define SIGSAFE_VERSION_MAJOR 1\n"
    "#  define SIGSAFE_VERSION_MINOR 22\n#define SIGSAFE_VERSION_PATCH 333\n")
file(WRITE ${WORK_DIR}/bad.h "#define SIGSAFE_VERSION_MAJOR 1\n"
    "#define SIGSAFE_VERSION_MINOR 22\n#define SIGSAFE_VERSION_PATCH 334\n")
file(WRITE ${WORK_DIR}/partial.h "#define SIGSAFE_VERSION_MAJOR 1\n"
    "#define SIGSAFE_VERSION_PATCH 333\n")
foreach(case good bad partial)
    file(WRITE ${WORK_DIR}/${case}.cmake
        "include(${SOURCE_DIR}/cmake/SigsafeVersion.cmake)\n"
        "sigsafe_check_header_version(${WORK_DIR}/${case}.h 1.22.333)\n")
    execute_process(COMMAND ${CMAKE_COMMAND} -P ${WORK_DIR}/${case}.cmake
        RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE err)
    if(case STREQUAL "good" AND NOT rc EQUAL 0)
        message(FATAL_ERROR "check rejected a matching header:\n${err}")
    elseif(NOT case STREQUAL "good" AND rc EQUAL 0)
        message(FATAL_ERROR "check accepted ${case}.h for 1.22.333")
    endif()
endforeach()
message(STATUS "version ${VERSION}: sigsafe.h, CHANGELOG.md agree")
