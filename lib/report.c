/* SPDX-License-Identifier: MIT */
/*
 * AS-safe: report lines.  Each report is formatted into a stack buffer by
 * hand (no stdio) and written with a single write(2), so lines from
 * concurrent reporters never interleave (a pipe or file write of this size
 * is atomic) and errno is untouched (raw syscall).
 */
#include "internal.h"
#include "sys.h"

ss_aint sigsafe__report_fd = 2;

void sigsafe__line_put(ss_line *l, const char *s)
{
    while (*s && l->n < sizeof l->buf - 1)
        l->buf[l->n++] = *s++;
}

void sigsafe__line_num(ss_line *l, uint64_t v, unsigned base)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    if (base == 16)
        sigsafe__line_put(l, "0x");
    while (n && l->n < sizeof l->buf - 1)
        l->buf[l->n++] = tmp[--n];
}

void sigsafe__line_emit(ss_line *l)
{
    l->buf[l->n++] = '\n';
    /* relaxed: the fd is a setting; any recent value will do. */
    int fd = ss_load_relaxed(&sigsafe__report_fd);
    if (fd >= 0)
        (void)sigsafe__sys_write(fd, l->buf, l->n);
}

static void start(ss_line *l, const sigsafe_pool *pool)
{
    l->n = 0;
    sigsafe__line_put(l, "sigsafe: pool \"");
    sigsafe__line_put(l, pool->name[0] ? pool->name : "(unnamed)");
    sigsafe__line_put(l, "\": ");
}

void sigsafe__report_reject(sigsafe_pool *pool, const void *p, const char *why)
{
    ss_line l;
    start(&l, pool);
    sigsafe__line_put(&l, "rejected free of ");
    sigsafe__line_num(&l, (uintptr_t)p, 16);
    sigsafe__line_put(&l, ": ");
    sigsafe__line_put(&l, why);
    sigsafe__line_emit(&l);
}

void sigsafe__report_corrupt(sigsafe_pool *pool, unsigned cls, uint32_t id)
{
    ss_line l;
    start(&l, pool);
    sigsafe__line_put(&l, "corrupt free list of class ");
    sigsafe__line_num(&l, cls, 10);
    sigsafe__line_put(&l, " (");
    sigsafe__line_num(&l, ss_class_size(cls), 10);
    sigsafe__line_put(&l, " bytes) at block id ");
    sigsafe__line_num(&l, id, 16);
    sigsafe__line_put(&l, ": list abandoned");
    sigsafe__line_emit(&l);
}
