# SPDX-License-Identifier: MIT
# Verification tests (docs/testing.md): the no-syscall proof, the fuzz
# target and its regression replay, the memory-checker hooks shown to catch
# planted bugs, and valgrind memcheck runs of the suites.  Included from
# CMakeLists.txt; uses its sigsafe_add_check() and
# sigsafe_test_target_setup().

# sigsafe.nosyscall: 10^5 operations, from normal code and from handlers,
# under a seccomp filter that kills on any system call the library could
# make (NO_SYSCALLS|PREFAULT pools, SPEC guarantee 1).
sigsafe_add_check(nosyscall LABELS unit TIMEOUT 120)

# sigsafe.corrupt: free-list metadata overwritten (white-box: it writes
# through lib/internal.h's layout); reported, abandoned, never followed.
sigsafe_add_check(corrupt LABELS unit TIMEOUT 60)
target_include_directories(check_corrupt PRIVATE ${PROJECT_SOURCE_DIR}/lib)

# sigsafe.tcache: the per-thread cache's tables and counts (white-box).
sigsafe_add_check(tcache LABELS unit TIMEOUT 60 MAPPED)
target_include_directories(check_tcache PRIVATE ${PROJECT_SOURCE_DIR}/lib)
# sigsafe.records: records whose owner vanished (fork, siglongjmp, thread
# exit on a stack of its own) are salvaged, never trusted (white-box).  The
# stress variant runs each scenario 10,000 rounds.
sigsafe_add_check(records LABELS signal TIMEOUT 300)
target_include_directories(check_records PRIVATE ${PROJECT_SOURCE_DIR}/lib)
add_test(NAME sigsafe.records.long COMMAND check_records)
set_tests_properties(sigsafe.records.long PROPERTIES LABELS stress
    TIMEOUT 1800 ENVIRONMENT "SIGSAFE_RECORD_ROUNDS=10000")
target_compile_definitions(check_tcache PRIVATE
    $<$<NOT:$<BOOL:${SIGSAFE_CONTEXT_TLS}>>:SIGSAFE_CONTEXT_TLS=0>)

# sigsafe.recover: guard faults recovered in the test's own process (the
# watch's report path and GUARD_EACH reuse, which other suites reach only
# in children that die).
if(TARGET sigsafe_guard)
    set(recover_env "ASAN_OPTIONS=handle_segv=0:use_sigaltstack=0"
        "TSAN_OPTIONS=handle_segv=0" "UBSAN_OPTIONS=handle_segv=0")
    sigsafe_add_check(recover LABELS guard TIMEOUT 60
        ENVIRONMENT ${recover_env})
    target_link_libraries(check_recover PRIVATE sigsafe::guard)
endif()

# ----------------------------------------------------------------- fuzz

# The fuzz target's checks (shadow model, and ASan's shadow when the
# library poisons) need to know whether the library poisons.
set(fuzz_defs)
if(SIGSAFE_ASAN_POISON_ENABLED)
    list(APPEND fuzz_defs SIGSAFE_ASAN_POISON=1)
endif()

# sigsafe.fuzz_replay: every build runs the fuzz target over the seed
# corpus and the regressions (inputs that once failed), without libFuzzer.
add_executable(fuzz_replay fuzz/fuzz_pools.c fuzz/replay.c)
sigsafe_test_target_setup(fuzz_replay)
target_compile_definitions(fuzz_replay PRIVATE ${fuzz_defs})
set(fuzz_inputs ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus
    ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/regressions)
add_test(NAME sigsafe.fuzz_replay COMMAND fuzz_replay ${fuzz_inputs})
set_tests_properties(sigsafe.fuzz_replay PROPERTIES LABELS "unit;fuzz"
    TIMEOUT 120)

# The libFuzzer target (SIGSAFE_BUILD_FUZZ, clang): tools/test.sh fuzz runs
# it for a bounded time; sigsafe.fuzz_corpus runs its inputs once.
if(SIGSAFE_BUILD_FUZZ)
    add_executable(fuzz_pools fuzz/fuzz_pools.c)
    sigsafe_test_target_setup(fuzz_pools)
    target_compile_definitions(fuzz_pools PRIVATE ${fuzz_defs})
    target_link_options(fuzz_pools PRIVATE -fsanitize=fuzzer)
    add_test(NAME sigsafe.fuzz_corpus COMMAND fuzz_pools -runs=0
        ${fuzz_inputs})
    set_tests_properties(sigsafe.fuzz_corpus PROPERTIES LABELS fuzz
        TIMEOUT 120)
endif()

# ------------------------------------------------- memory-checker hooks

# annotate_bug (planted bugs) is built against the library with the hooks
# and against the same sources without them (sigsafe_plain), to show that
# each checker now reports what it missed before.
find_program(SIGSAFE_VALGRIND_PROGRAM valgrind)
if(SIGSAFE_ASAN_POISON_ENABLED OR SIGSAFE_VALGRIND)
    set(plain_sources)
    foreach(t sigsafe_as sigsafe)
        get_target_property(srcs ${t} SOURCES)
        foreach(src IN LISTS srcs)
            if(NOT src MATCHES "^\\$<")
                list(APPEND plain_sources ${PROJECT_SOURCE_DIR}/lib/${src})
            endif()
        endforeach()
    endforeach()
    add_library(sigsafe_plain STATIC ${plain_sources})
    set_target_properties(sigsafe_plain PROPERTIES C_STANDARD 11
        C_STANDARD_REQUIRED ON C_EXTENSIONS OFF C_VISIBILITY_PRESET hidden)
    target_compile_definitions(sigsafe_plain PRIVATE _GNU_SOURCE)
    target_include_directories(sigsafe_plain PUBLIC
        ${PROJECT_SOURCE_DIR}/include)
    target_compile_options(sigsafe_plain PRIVATE -fno-strict-aliasing)
    target_link_libraries(sigsafe_plain PRIVATE sigsafe_flags)

    add_executable(annotate_bug annotate_bug.c)
    add_executable(annotate_bug_plain annotate_bug.c)
    target_link_libraries(annotate_bug PRIVATE sigsafe::sigsafe sigsafe_flags)
    target_link_libraries(annotate_bug_plain PRIVATE sigsafe_plain
        sigsafe_flags)
endif()

# sigsafe_bug_test(<name> <label> <case> <expect> [prefix...]): runs
# annotate_bug <case> (and annotate_bug_plain <case>, as <name>_plain) under
# the prefix command. <expect>: the checker's report that the annotated run
# must print; the plain run must exit 0 without it.
function(sigsafe_bug_test name label case expect)
    add_test(NAME ${name} COMMAND ${ARGN} $<TARGET_FILE:annotate_bug> ${case})
    set_tests_properties(${name} PROPERTIES LABELS ${label} TIMEOUT 120
        PASS_REGULAR_EXPRESSION "${expect}")
    add_test(NAME ${name}_plain COMMAND ${ARGN}
        $<TARGET_FILE:annotate_bug_plain> ${case})
    set_tests_properties(${name}_plain PROPERTIES LABELS ${label} TIMEOUT 120
        FAIL_REGULAR_EXPRESSION "${expect}")
endfunction()

if(SIGSAFE_ASAN_POISON_ENABLED)
    sigsafe_bug_test(sigsafe.asan.uaf asan uaf
        "AddressSanitizer: use-after-poison")
    sigsafe_bug_test(sigsafe.asan.overflow asan overflow
        "AddressSanitizer: use-after-poison")
    # Correct use: the hooks report nothing.
    add_test(NAME sigsafe.asan.ok COMMAND annotate_bug ok)
    set_tests_properties(sigsafe.asan.ok PROPERTIES LABELS asan TIMEOUT 120)
endif()

if(SIGSAFE_VALGRIND)
    if(NOT SIGSAFE_VALGRIND_PROGRAM)
        message(FATAL_ERROR "SIGSAFE_VALGRIND: the valgrind program is "
            "missing (Debian: apt-get install valgrind)")
    endif()
    set(memcheck ${SIGSAFE_VALGRIND_PROGRAM} --tool=memcheck
        --error-exitcode=99 --leak-check=full
        --errors-for-leak-kinds=definite --show-leak-kinds=definite)
    sigsafe_bug_test(sigsafe.valgrind.uaf valgrind uaf
        "Invalid write of size 1" ${memcheck})
    sigsafe_bug_test(sigsafe.valgrind.overflow valgrind overflow
        "Invalid write of size 1" ${memcheck})
    sigsafe_bug_test(sigsafe.valgrind.leak valgrind leak
        "blocks are definitely lost" ${memcheck})
    add_test(NAME sigsafe.valgrind.ok COMMAND ${memcheck}
        $<TARGET_FILE:annotate_bug> ok)
    set_tests_properties(sigsafe.valgrind.ok PROPERTIES LABELS valgrind
        TIMEOUT 120)

    # sigsafe.memcheck.<suite>: the suites under memcheck, clean (no error,
    # no definitely lost block but those memcheck.supp explains).  Check's
    # fork mode stays on: valgrind follows each forked test.  Check's
    # timeouts are stretched for valgrind's slowdown.  Left out, with the
    # reason:
    #   everyinsn   single-steps a child with ptrace: valgrind runs the
    #               client on a JIT, so there is no client instruction to
    #               step
    #   altstack    its overrun test traces a child with ptrace (a stopped
    #               child under valgrind never resumes)
    #   stress      several threads hammering for seconds: valgrind runs one
    #               thread at a time, so it proves nothing and takes minutes
    #   torture     a signal storm aiming at every instruction: valgrind
    #               delivers signals only between its translated blocks
    #   signal      its thread and timer storms, likewise
    #   *.mapped    the same code as the suites, laid out as at create
    list(APPEND memcheck
        --suppressions=${CMAKE_CURRENT_SOURCE_DIR}/memcheck.supp)
    set(memcheck_suites alloc realloc free pool lookup stats errno guard
        corrupt nosyscall context fork)
    foreach(suite IN LISTS memcheck_suites)
        add_test(NAME sigsafe.memcheck.${suite} COMMAND ${memcheck}
            $<TARGET_FILE:check_${suite}>)
        set_tests_properties(sigsafe.memcheck.${suite} PROPERTIES
            LABELS memcheck TIMEOUT 900
            ENVIRONMENT "CK_TIMEOUT_MULTIPLIER=20")
    endforeach()
    add_test(NAME sigsafe.memcheck.fuzz_replay COMMAND ${memcheck}
        $<TARGET_FILE:fuzz_replay> ${fuzz_inputs})
    set_tests_properties(sigsafe.memcheck.fuzz_replay PROPERTIES
        LABELS memcheck TIMEOUT 900)
endif()
