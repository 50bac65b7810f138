# SPDX-License-Identifier: MIT
# The guard component's suite (libsigsegv): faults happen in forked
# children, so the sanitizers must leave SIGSEGV alone.
if(TARGET sigsafe_guard)
    sigsafe_add_check(watch LABELS guard TIMEOUT 120
        ENVIRONMENT "ASAN_OPTIONS=handle_segv=0:use_sigaltstack=0;TSAN_OPTIONS=handle_segv=0;UBSAN_OPTIONS=handle_segv=0")
    target_link_libraries(check_watch PRIVATE sigsafe::guard)
endif()
