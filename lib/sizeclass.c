/* SPDX-License-Identifier: MIT */
/*
 * Shared (AS-safe): the size-class table.
 *
 * Classes 0..7 step by 16 bytes (16 .. 128).  Above 128 there are four
 * classes per power of two: 2^k * {5/4, 6/4, 7/4, 8/4}, so a request never
 * wastes more than 20% of its block.  Classes up to 16 KiB live in 64 KiB
 * spans; larger ones (all page multiples) in slots of their own.
 */
#include "internal.h"

_Static_assert(SS_NCLASSES <= 120, "class sizes must fit in 2^35");

/* Every class size is a multiple of 16, and classes 36 and up of 4096. */
_Static_assert(SS_NSMALL == 36, "the small classes end at 16 KiB");
