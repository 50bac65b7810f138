# SPDX-License-Identifier: MIT
# Verification builds (docs/testing.md): memory-checker hooks, coverage and
# the fuzzer.  Included from the top-level CMakeLists.txt after the
# sigsafe_flags target exists.  Sets SIGSAFE_ANNOTATE_DEFINITIONS for
# lib/CMakeLists.txt: the macros that switch lib/annotate.h's hooks on.
include(CheckIncludeFile)

set(SIGSAFE_ANNOTATE_DEFINITIONS)
set(sigsafe_has_address FALSE)
if(SIGSAFE_SANITIZE MATCHES "(^|,)address(,|$)")
    set(sigsafe_has_address TRUE)
endif()

# SIGSAFE_ASAN_POISON: AUTO follows SIGSAFE_SANITIZE.
string(TOUPPER "${SIGSAFE_ASAN_POISON}" sigsafe_poison)
if(sigsafe_poison STREQUAL "AUTO")
    set(sigsafe_poison ${sigsafe_has_address})
endif()
if(sigsafe_poison)
    if(NOT sigsafe_has_address)
        message(FATAL_ERROR "SIGSAFE_ASAN_POISON needs SIGSAFE_SANITIZE "
            "with address")
    endif()
    list(APPEND SIGSAFE_ANNOTATE_DEFINITIONS SIGSAFE_ASAN_POISON=1)
endif()
set(SIGSAFE_ASAN_POISON_ENABLED ${sigsafe_poison})

if(SIGSAFE_VALGRIND)
    if(SIGSAFE_SANITIZE)
        message(FATAL_ERROR "SIGSAFE_VALGRIND and SIGSAFE_SANITIZE exclude "
            "each other (valgrind cannot run sanitized programs)")
    endif()
    check_include_file(valgrind/memcheck.h SIGSAFE_HAVE_MEMCHECK_H)
    if(NOT SIGSAFE_HAVE_MEMCHECK_H)
        message(FATAL_ERROR "SIGSAFE_VALGRIND needs valgrind/memcheck.h "
            "(Debian: apt-get install valgrind)")
    endif()
    list(APPEND SIGSAFE_ANNOTATE_DEFINITIONS SIGSAFE_VALGRIND=1)
endif()

if(SIGSAFE_COVERAGE)
    if(NOT CMAKE_C_COMPILER_ID STREQUAL "GNU")
        message(FATAL_ERROR "SIGSAFE_COVERAGE needs gcc (gcov, gcovr)")
    endif()
    # -fprofile-update=atomic: the suites run many threads, and counts lost
    # to races would make gcov's derived branch counts negative.  The
    # counters are then lock-free atomic adds (inline on x86-64, libgcc's
    # __aarch64_* helpers on aarch64): no lock, no libatomic call.
    target_compile_options(sigsafe_flags INTERFACE --coverage
        -fprofile-update=atomic)
    target_link_options(sigsafe_flags INTERFACE --coverage)
endif()

if(SIGSAFE_BUILD_FUZZ)
    if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
        message(FATAL_ERROR "SIGSAFE_BUILD_FUZZ needs clang (libFuzzer): "
            "configure with CC=clang")
    endif()
    if(NOT sigsafe_has_address)
        message(FATAL_ERROR "SIGSAFE_BUILD_FUZZ needs "
            "SIGSAFE_SANITIZE=address,undefined")
    endif()
    # Coverage feedback from the library and everything else; the fuzz
    # target alone links libFuzzer's main.
    target_compile_options(sigsafe_flags INTERFACE -fsanitize=fuzzer-no-link)
endif()
