/* SPDX-License-Identifier: MIT */
/*
 * Shared (AS-safe): the size-class table.
 *
 * Classes 0..7 step by 16 bytes (16 .. 128).  Above 128 there are four
 * classes per power of two: 2^k * {5/4, 6/4, 7/4, 8/4}, so a request never
 * wastes more than 20% of its block.  The 36 classes, up to 16 KiB, live
 * in 64 KiB spans; larger blocks are whole pages of the large area
 * (large.c), which has no classes.
 */
#include "internal.h"

/* Every class size is a multiple of 16; the last is the small maximum. */
_Static_assert(SS_NSMALL == 36, "the small classes end at 16 KiB");
_Static_assert(SS_SMALL_MAX == 16384, "the small classes end at 16 KiB");
