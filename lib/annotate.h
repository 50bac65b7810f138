/* SPDX-License-Identifier: MIT */
/*
 * Shared: hooks that tell memory checkers about sigsafe's blocks.  Memory
 * from raw mmap is invisible to them otherwise.  Compiled to nothing unless
 * a build option asks for them.
 *
 *   SS_ANNOTATE_ALLOC(pool, p, size)   block p handed out; size requested
 *   SS_ANNOTATE_FREE(pool, p, usable)  block p returned to its pool
 *   SS_ANNOTATE_POOL_CREATE(pool)      pool built, no block handed out yet
 *   SS_ANNOTATE_POOL_DESTROY(pool)     pool about to be unmapped
 */
#ifndef SS_ANNOTATE_H
#define SS_ANNOTATE_H

#define SS_ANNOTATE_ALLOC(pool, p, size) ((void)(pool), (void)(p), (void)(size))
#define SS_ANNOTATE_FREE(pool, p, usable) ((void)(pool), (void)(p), (void)(usable))
#define SS_ANNOTATE_POOL_CREATE(pool) ((void)(pool))
#define SS_ANNOTATE_POOL_DESTROY(pool) ((void)(pool))

#endif /* SS_ANNOTATE_H */
