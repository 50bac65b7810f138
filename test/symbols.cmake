# SPDX-License-Identifier: MIT
# sigsafe.symbols: the AS-safe objects (sigsafe_as) and the whole static
# library may only leave allowlisted symbols undefined.
#
#   cmake -DNM=nm -DAS_OBJECTS="a.o|b.o" -DLIBRARY=libsigsafe.a
#         -DARCH=x86_64 [-DSANITIZE=address,undefined] [-DCOVERAGE=ON]
#         -P symbols.cmake
#
# A symbol that one object references and another object of the same set
# defines is internal and fine. For the AS-safe set that means defined by
# another AS-safe object: an AS-safe file calling into a set-up file
# (pool.c, signal.c) is reported too.
#
# The set-up objects in the static library (pool.c, signal.c) may also call
# the few libc functions named in `setup_allowed`, each a deliberate
# decision: installing handlers and alternate stacks (sigaction,
# sigaltstack, getauxval), keeping errno as it was (__errno_location), and
# glibc's thread-exit hook, referenced weakly, to free alternate stacks,
# pthread_atfork, so that a fork child salvages the other threads'
# cache records at once, and a pthread key (once, create, get, set) whose
# destructor gives a thread's cached blocks back when it exits.
cmake_minimum_required(VERSION 3.21)

foreach(var NM AS_OBJECTS LIBRARY)
    if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
        message(FATAL_ERROR "symbols.cmake: -D${var}=... is required")
    endif()
endforeach()
string(REPLACE "|" ";" AS_OBJECTS "${AS_OBJECTS}")

set(allowed memcpy memset memmove __stack_chk_fail
    # Provided by the linker (PIC code addressing TLS or the GOT); no code.
    _GLOBAL_OFFSET_TABLE_)
set(allowed_prefixes)
if(ARCH MATCHES "aarch64|arm64")
    # glibc's aarch64 stack protector reads a global canary (a plain load).
    list(APPEND allowed __stack_chk_guard)
endif()
if(SANITIZE)
    list(APPEND allowed_prefixes __asan_ __ubsan_ __tsan_ __sanitizer_
        __lsan_ __msan_)
    # ASan's ODR indicators and init hooks.
    list(APPEND allowed_prefixes __odr_asan)
endif()
if(COVERAGE)
    # gcov's hooks in SIGSAFE_COVERAGE builds: registration at load and the
    # dump at exit, never on an AS-safe path (counters are plain stores).
    list(APPEND allowed_prefixes __gcov_)
endif()

# Named here so that the failure message says why, not just "not allowed".
set(forbidden_regex
    "^(malloc|free|calloc|realloc|reallocarray|aligned_alloc|posix_memalign|memalign|valloc|pvalloc|strdup|strndup)$"
    "^(v?s?n?printf|v?fprintf|v?dprintf|puts|fputs|fputc|putc|putchar|fwrite|fflush|fopen|fclose|perror|stdout|stderr|stdin)$"
    "^(_IO_|__printf|__fprintf|__sprintf|__snprintf|__vfprintf|__fwrite)"
    "^pthread_"
    "^__atomic_"
    # libgcc's aarch64 outline atomics: sigsafe builds with
    # -mno-outline-atomics so that every atomic is inline (docs/design.md,
    # "Platforms").
    "^__aarch64_"
    "^__sync_"
    "^__tls_get_addr$"
    "^__errno_location$"
    "^errno$"
    "^(syscall|abort|exit|_exit|raise|sigaction|sigprocmask|sigaltstack|getauxval|sysconf|mmap|munmap|mprotect|madvise|prctl|write|writev)$")

function(run_nm out_var)
    execute_process(COMMAND ${NM} -A ${ARGN}
        RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
    if(NOT rc EQUAL 0)
        message(FATAL_ERROR "nm ${ARGN} failed (${rc}): ${err}")
    endif()
    set(${out_var} "${out}" PARENT_SCOPE)
endfunction()

# Parse `nm -A` lines "file[:member]: [value] TYPE name" into two lists:
# names and "name<TAB>file" pairs.
function(parse_nm text names_var where_var)
    string(REPLACE "\n" ";" lines "${text}")
    set(names)
    set(where)
    foreach(line IN LISTS lines)
        if(line MATCHES "^(.*): *([0-9a-fA-F]+ )?([A-Za-z?]) ([^ ]+)$")
            list(APPEND names "${CMAKE_MATCH_4}")
            list(APPEND where "${CMAKE_MATCH_4} (${CMAKE_MATCH_1})")
        endif()
    endforeach()
    set(${names_var} "${names}" PARENT_SCOPE)
    set(${where_var} "${where}" PARENT_SCOPE)
endfunction()

function(check_set label)
    run_nm(undef_text -u ${ARGN})
    run_nm(def_text --defined-only -g ${ARGN})
    parse_nm("${undef_text}" undef undef_where)
    parse_nm("${def_text}" defined defined_where)
    set(bad)
    set(i 0)
    list(LENGTH undef n)
    while(i LESS n)
        list(GET undef ${i} sym)
        list(GET undef_where ${i} where)
        math(EXPR i "${i} + 1")
        if(sym IN_LIST defined)
            continue()
        endif()
        if(sym IN_LIST allowed)
            continue()
        endif()
        set(ok FALSE)
        foreach(p IN LISTS allowed_prefixes)
            string(FIND "${sym}" "${p}" pos)
            if(pos EQUAL 0)
                set(ok TRUE)
                break()
            endif()
        endforeach()
        if(ok)
            continue()
        endif()
        set(why "not in the allowlist")
        foreach(re IN LISTS forbidden_regex)
            if(sym MATCHES "${re}")
                set(why "forbidden")
                break()
            endif()
        endforeach()
        list(APPEND bad "  ${where}: ${why}")
    endwhile()
    if(bad)
        list(REMOVE_DUPLICATES bad)
        list(JOIN bad "\n" text)
        message(SEND_ERROR "${label}: undefined symbols outside the allowlist:\n${text}")
        set(failed TRUE PARENT_SCOPE)
    else()
        list(LENGTH undef nu)
        message(STATUS "${label}: ok (${nu} undefined references checked)")
    endif()
endfunction()

set(setup_allowed sigaction sigaltstack getauxval __errno_location
    __cxa_thread_atexit_impl __dso_handle pthread_atfork pthread_once
    pthread_key_create pthread_getspecific pthread_setspecific)

set(failed FALSE)
check_set("sigsafe_as (AS-safe objects)" ${AS_OBJECTS})
list(APPEND allowed ${setup_allowed})
check_set("libsigsafe.a (all objects)" ${LIBRARY})
if(failed)
    message(FATAL_ERROR "sigsafe.symbols failed")
endif()
