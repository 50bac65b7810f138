/* SPDX-License-Identifier: MIT */
/* Shared: compiler attributes used by every internal header. */
#ifndef SS_INTERNAL_ATTRS_H
#define SS_INTERNAL_ATTRS_H

#define SS_HIDDEN __attribute__((visibility("hidden")))
#define SS_NOINLINE __attribute__((noinline))
#define SS_INLINE static inline __attribute__((always_inline))
#define SS_LIKELY(x) __builtin_expect(!!(x), 1)
#define SS_UNLIKELY(x) __builtin_expect(!!(x), 0)

#endif /* SS_INTERNAL_ATTRS_H */
