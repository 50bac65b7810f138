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

typedef struct line {
    char buf[192];
    size_t n;
} line;

static void put(line *l, const char *s)
{
    while (*s && l->n < sizeof l->buf - 1)
        l->buf[l->n++] = *s++;
}

static void put_hex(line *l, uint64_t v)
{
    char tmp[16];
    int n = 0;
    do {
        tmp[n++] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v);
    put(l, "0x");
    while (n && l->n < sizeof l->buf - 1)
        l->buf[l->n++] = tmp[--n];
}

static void put_dec(line *l, uint64_t v)
{
    char tmp[20];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n && l->n < sizeof l->buf - 1)
        l->buf[l->n++] = tmp[--n];
}

static void start(line *l, const sigsafe_pool *pool)
{
    l->n = 0;
    put(l, "sigsafe: pool \"");
    put(l, pool->name[0] ? pool->name : "(unnamed)");
    put(l, "\": ");
}

static void emit(line *l)
{
    l->buf[l->n++] = '\n';
    /* relaxed: the fd is a setting; any recent value will do. */
    int fd = ss_load_relaxed(&sigsafe__report_fd);
    if (fd >= 0)
        (void)sigsafe__sys_write(fd, l->buf, l->n);
}

void sigsafe__report_reject(sigsafe_pool *pool, const void *p, const char *why)
{
    line l;
    start(&l, pool);
    put(&l, "rejected free of ");
    put_hex(&l, (uintptr_t)p);
    put(&l, ": ");
    put(&l, why);
    emit(&l);
}

void sigsafe__report_corrupt(sigsafe_pool *pool, unsigned cls, uint32_t id)
{
    line l;
    start(&l, pool);
    put(&l, "corrupt free list of class ");
    put_dec(&l, cls);
    put(&l, " (");
    put_dec(&l, ss_class_size(cls));
    put(&l, " bytes) at block id ");
    put_hex(&l, id);
    put(&l, ": list abandoned");
    emit(&l);
}
