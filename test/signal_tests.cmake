# SPDX-License-Identifier: MIT
# Signal-context suites: per-signal pools, the torture and every-instruction
# tests, fork, and guarded alternate stacks.  Included from CMakeLists.txt;
# uses its sigsafe_add_check().

# The crash-handler test faults on purpose: the sanitizers must not catch it.
set(no_segv "ASAN_OPTIONS=handle_segv=0;TSAN_OPTIONS=handle_segv=0")
list(APPEND no_segv "UBSAN_OPTIONS=handle_segv=0")
sigsafe_add_check(context   LABELS signal TIMEOUT 120 ENVIRONMENT ${no_segv})

# About 3 s; the long variant (label stress, outside the default run) goes
# on until 10^6 handler runs.
sigsafe_add_check(torture   LABELS signal TIMEOUT 120)
add_test(NAME sigsafe.torture_long COMMAND check_torture --long)
set_tests_properties(sigsafe.torture_long PROPERTIES
    LABELS stress TIMEOUT 1200)

# Single-steps a child under ptrace: seconds here, tens of seconds with ASan.
# It finds the library's static functions by their source files' names.
sigsafe_add_check(everyinsn LABELS signal TIMEOUT 300)
# Under an emulator it prints why it cannot run: ctest shows it skipped.
set_tests_properties(sigsafe.everyinsn PROPERTIES
    SKIP_REGULAR_EXPRESSION "everyinsn: skipped under")
# White-box: the script forges a vanished thread's record (tcache.h).
target_include_directories(check_everyinsn PRIVATE ${PROJECT_SOURCE_DIR}/lib)
set(lib_sources "")
foreach(t sigsafe_as sigsafe)
    get_target_property(srcs ${t} SOURCES)
    foreach(src IN LISTS srcs)
        if(src MATCHES "\\.[cSs]$")
            get_filename_component(name ${src} NAME)
            string(APPEND lib_sources " ${name}")
        endif()
    endforeach()
endforeach()
target_compile_definitions(check_everyinsn PRIVATE
    "SIGSAFE_LIB_SOURCES=\"${lib_sources} \"")

sigsafe_add_check(fork      LABELS signal TIMEOUT 120)

# The sanitizers' own alternate stacks would make install return EEXIST,
# and the overrun test dies of SIGSEGV on the guard page.
set(no_altstack "handle_segv=0:use_sigaltstack=0")
sigsafe_add_check(altstack  LABELS signal TIMEOUT 120 ENVIRONMENT
    "ASAN_OPTIONS=${no_altstack}" "TSAN_OPTIONS=${no_altstack}"
    "UBSAN_OPTIONS=${no_altstack}")
