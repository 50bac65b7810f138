# SPDX-License-Identifier: MIT
# sigsafe.spdx: every source file carries an SPDX-License-Identifier line
# near its top (the license is in LICENSE).
#
#   cmake -DSOURCE_DIR=<sigsafe source> -P spdx.cmake
#
# Source files: C sources and headers, CMake files, templates (*.in), and
# scripts (*.sh, *.py, or anything starting with #!) under the directories
# below, plus the top-level CMakeLists.txt and .ci/.  Data files (fuzz
# corpora, suppression lists, JSON, Markdown) are not sources.
cmake_minimum_required(VERSION 3.21)

if(NOT DEFINED SOURCE_DIR OR SOURCE_DIR STREQUAL "")
    message(FATAL_ERROR "spdx.cmake: -DSOURCE_DIR=... is required")
endif()

set(dirs include lib examples test bench tools cmake docs .ci)
set(source_regex
    "(\\.(c|h|cc|cpp|hpp|cmake|in|sh|py)|/CMakeLists\\.txt)$")

set(files ${SOURCE_DIR}/CMakeLists.txt)
foreach(dir IN LISTS dirs)
    if(IS_DIRECTORY ${SOURCE_DIR}/${dir})
        file(GLOB_RECURSE found LIST_DIRECTORIES false ${SOURCE_DIR}/${dir}/*)
        list(APPEND files ${found})
    endif()
endforeach()

set(missing)
set(count 0)
foreach(file IN LISTS files)
    file(READ ${file} head LIMIT 512)
    if(NOT file MATCHES "${source_regex}" AND NOT head MATCHES "^#!")
        continue()
    endif()
    math(EXPR count "${count} + 1")
    if(NOT head MATCHES "SPDX-License-Identifier: [A-Za-z0-9.-]+")
        file(RELATIVE_PATH rel ${SOURCE_DIR} ${file})
        list(APPEND missing ${rel})
    endif()
endforeach()

if(count EQUAL 0)
    message(FATAL_ERROR "no source files found under ${SOURCE_DIR}")
endif()
if(missing)
    list(JOIN missing "\n  " missing)
    message(FATAL_ERROR "source files without an SPDX-License-Identifier "
        "line in their first 512 bytes:\n  ${missing}")
endif()
message(STATUS "${count} source files carry an SPDX line")
