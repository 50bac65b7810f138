/* SPDX-License-Identifier: MIT */
/*
 * everyinsn: a signal at every instruction of the library (SPEC
 * guarantee 2).
 *
 * The test forks a child (no exec: every address is the same in both), which
 * stops itself under PTRACE_TRACEME and then runs a scripted sequence on a
 * pool: fast-path alloc/free, first allocations of classes in a fresh pool
 * and more blocks than a span holds (spans carved), large blocks (slots),
 * bad frees that are reported, realloc grow and shrink, the default pool
 * through the context.  The parent single-steps it.  Whenever the child's
 * instruction pointer lies in the library's code, the script is armed and
 * the child is not already in the test's handler, the parent injects
 * SIGUSR1 with that step (at most DEFAULT_CAP times per address).
 *
 * The handler (plain sigaction) allocates and frees from the same pool and
 * the default pool (see inject_handler() for how it makes a stale view in
 * the interrupted code show), checks that nothing it got overlaps a block
 * the script or an earlier run holds, and that every such block keeps its
 * pattern.  It runs at full speed (PTRACE_CONT) and raises SIGUSR2 at its
 * end; the parent then puts a breakpoint on the interrupted instruction,
 * lets the child run back to it, and resumes stepping.  Finally the child
 * checks its blocks, the pools' statistics and the report lines, and exits
 * 0; the parent checks the exit, that the handler ran once per injection,
 * and that enough distinct library instructions were injected.
 *
 * Library code: the FUNC symbols named sigsafe_* and the local functions of
 * the library's source files (SIGSAFE_LIB_SOURCES), from the ELF symbol
 * table of /proc/self/exe plus the load bias (PIE).
 *
 * Skipped (with a message) where ptrace is refused, on other
 * architectures, and under TSan, which defers asynchronous signals to its
 * own safe points so that the handler never runs inside the library.  An
 * rseq critical section in the library would restart forever under
 * single-stepping: MAX_STOPS turns that into a failure, not a hang.
 */
#include "support.h"

#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "tcache.h"

#if defined(__x86_64__) || defined(__aarch64__)
#define EI_SUPPORTED 1
#else
#define EI_SUPPORTED 0
#endif

/* At most this many injections at one instruction address (each address
 * is injected at the first visits; loops would otherwise multiply the run
 * time).  SIGSAFE_EVERYINSN_CAP overrides. */
#define DEFAULT_CAP 6
#define MIN_DISTINCT 400          /* distinct addresses that must be hit */
#define MAX_STOPS 40000000ul      /* no progress: fail rather than hang */
#define EXIT_NO_PTRACE 77

/* ============================================================== child */

/* Shared with the parent by address (fork without exec). */
static sigsafe_pool *pool;
static sigsafe_pool *pool2; /* the script's alone: record takeover */
static sigsafe_pool *defpool;
static struct {
    volatile int armed;      /* the script runs: inject */
    volatile int in_handler; /* the test's handler runs: do not inject */
} __attribute__((aligned(8))) flags;
static volatile unsigned long handler_runs;
static volatile int handler_fail; /* first failure code in the handler */

/* The script's live blocks, published after they are filled. */
enum { MAXLIVE = 64 };
typedef struct live {
    unsigned char *p;
    size_t n;
    uint64_t seed;
} live;
static live lv[MAXLIVE];
static volatile int nlive;

/* Cheap patterns for the stepped script: 8-byte words at every 256 bytes
 * and the last word (each byte stepped costs a ptrace round trip). */
static uint64_t word_at(const void *p, size_t off, uint64_t seed)
{
    return ((uint64_t)(uintptr_t)p + off) * 0x9E3779B97F4A7C15ull ^ seed;
}

static void wfill(void *p, size_t n, uint64_t seed)
{
    unsigned char *b = p;
    for (size_t off = 0; off + 8 <= n; off += 256)
        memcpy(b + off, &(uint64_t){word_at(p, off, seed)}, 8);
    if (n >= 8)
        memcpy(b + n - 8, &(uint64_t){word_at(p, n - 8, seed)}, 8);
}

static int wcheck(const void *p, size_t n, uint64_t seed)
{
    const unsigned char *b = p;
    uint64_t w;
    for (size_t off = 0; off + 8 <= n; off += 256) {
        memcpy(&w, b + off, 8);
        if (w != word_at(p, off, seed))
            return 0;
    }
    if (n >= 8) {
        memcpy(&w, b + n - 8, 8);
        if (w != word_at(p, n - 8, seed))
            return 0;
    }
    return 1;
}

static void hfail(int code)
{
    if (!handler_fail)
        handler_fail = code;
}

/*
 * The injected handler.  Full speed; AS-safe calls only.  It takes two
 * blocks of every class the script uses (so that it meets the interrupted
 * operation's class whatever it is), frees them first-in first-out (so a
 * free list does not return to the state the interrupted code read, as a
 * balanced LIFO alloc/free would leave it), and first takes one block of
 * every class that it keeps for its next KEEP runs: the head each list had
 * when the signal landed stays live after the handler returns, through all
 * the injections at the following instructions of the same operation, so
 * an interrupted push or pop that then installs a stale head puts a live
 * block on a list (the library reports the corrupt list, or hands the
 * block out twice, which the handler or the script sees as an overlap).
 */
static const size_t hsizes[] = {1,   24,  32,  48,   56,   64,    80,
                                100, 150, 200, 300,  600,  700,   3000,
                                8000, 16000, 20000, 40000};
enum { NH = sizeof hsizes / sizeof hsizes[0], NCTX = 3 };
static const size_t ctx_sizes[NCTX] = {48, 80, 150};
enum { KEEP = 8 };
static unsigned char *carry[KEEP][NH]; /* kept from the last runs */
/* One more block, of a size that changes from run to run and kept until
 * the next: each run leaves the pool's byte count different, so a count
 * that an interrupted operation overwrites with a stale value shows. */
static unsigned char *wobble;
static size_t wobble_n;

static int overlaps(const unsigned char *p, size_t n, const unsigned char *q,
                    size_t m)
{
    return p < q + m && q < p + n;
}

static void hfill(unsigned char *p, size_t n, uint64_t seed)
{
    if (n > 4096)
        st_fill_sparse(p, n, seed);
    else
        st_fill(p, n, seed);
}

static int hcheck(const unsigned char *p, size_t n, uint64_t seed)
{
    return (n > 4096 ? st_check_sparse(p, n, seed) : st_check(p, n, seed)) ==
           SIZE_MAX;
}

static void inject_handler(int signo)
{
    (void)signo;
    int saved = errno;
    flags.in_handler = 1;
    unsigned long run = ++handler_runs;
    enum { NB = NH + 2 * NH + 2 * NCTX };
    unsigned char *b[NB];
    size_t n[NB];
    int k = 0;
    /* The context: the default pool, or the pool while the script is
     * between its context_enter and context_leave. */
    sigsafe_pool *ctx = sigsafe_current_pool();
    if (ctx != pool && ctx != defpool)
        hfail(2);
    /* First the blocks kept until the next run: each class's head when
     * the signal landed stays live.  Taken in a context of our own on top
     * of the interrupted one, as a trampoline would push it: it serves,
     * and leaving restores. */
    sigsafe_context_enter(pool);
    if (sigsafe_current_pool() != pool)
        hfail(6);
    for (int i = 0; i < NH; i++, k++) {
        n[k] = hsizes[i];
        b[k] = sigsafe_alloc(n[k]);
        if (b[k] && sigsafe_pool_of(b[k]) != pool)
            hfail(6);
    }
    sigsafe_context_leave();
    if (sigsafe_current_pool() != ctx)
        hfail(7);
    /* Then two of each, freed first in, first out below. */
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < NH; i++, k++) {
            n[k] = hsizes[i];
            b[k] = sigsafe_pool_alloc(pool, n[k]);
            if (b[k] && sigsafe_pool_of(b[k]) != pool)
                hfail(2);
        }
        for (int i = 0; i < NCTX; i++, k++) {
            n[k] = ctx_sizes[i];
            b[k] = sigsafe_alloc(n[k]);
            if (b[k] && sigsafe_pool_of(b[k]) != ctx)
                hfail(2);
        }
    }
    for (int i = 0; i < k; i++) {
        if (!b[i]) {
            hfail(1);
            continue;
        }
        /* Nothing handed out twice: not a block the script holds, not
         * one kept from the last run, not one taken here already. */
        for (int j = 0; j < nlive; j++)
            if (lv[j].p && overlaps(b[i], n[i], lv[j].p, lv[j].n))
                hfail(3);
        for (int r = 0; r < KEEP; r++)
            for (int j = 0; j < NH; j++)
                if (carry[r][j] &&
                    overlaps(b[i], n[i], carry[r][j], hsizes[j]))
                    hfail(3);
        for (int j = 0; j < i; j++)
            if (b[j] && overlaps(b[i], n[i], b[j], n[j]))
                hfail(3);
        hfill(b[i], n[i], run * NB + (uint64_t)i);
    }
    for (int i = 0; i < nlive; i++)
        if (lv[i].p && !wcheck(lv[i].p, lv[i].n, lv[i].seed))
            hfail(4);
    for (int r = 0; r < KEEP; r++)
        for (int j = 0; j < NH; j++)
            if (carry[r][j] && !hcheck(carry[r][j], hsizes[j], 0xCA77 + r))
                hfail(4);
    for (int i = 0; i < k; i++)
        if (b[i] && !hcheck(b[i], n[i], run * NB + (uint64_t)i))
            hfail(5);
    unsigned char *w = NULL;
    size_t wn = hsizes[(run * 7) % NH];
    if (wobble && !hcheck(wobble, wobble_n, 0x3090B))
        hfail(4);
    w = sigsafe_pool_alloc(pool, wn);
    if (!w)
        hfail(1);
    else
        hfill(w, wn, 0x3090B);
    sigsafe_free(wobble);
    wobble = w;
    wobble_n = wn;
    /* First in, first out; then the blocks kept KEEP runs ago. */
    for (int i = NH; i < k; i++)
        sigsafe_free(b[i]);
    int r = (int)(run % KEEP);
    for (int j = 0; j < NH; j++) {
        sigsafe_free(carry[r][j]);
        carry[r][j] = b[j];
        if (carry[r][j])
            hfill(carry[r][j], hsizes[j], 0xCA77 + r);
    }
    raise(SIGUSR2); /* tells the tracer: step again from here */
    flags.in_handler = 0;
    errno = saved;
}

static void marker_handler(int signo)
{
    (void)signo; /* the tracer suppresses SIGUSR2; untraced it lands here */
}

static int script_fail;
#define SCRIPT_CHECK(cond, code)                                             \
    do {                                                                     \
        if (!(cond) && !script_fail)                                         \
            script_fail = (code);                                            \
    } while (0)

static uint64_t seed_next = 1;

/*
 * The live table, as the handler on this thread may see it at any moment:
 * an entry is written with its pointer cleared (the handler skips it) and
 * the pointer set last; the count covers only complete entries.
 */
static void lv_set(int i, unsigned char *p, size_t n, uint64_t seed)
{
    lv[i].p = NULL;
    /* signal fence: the handler sees no pointer before its size, seed. */
    atomic_signal_fence(memory_order_seq_cst);
    lv[i].n = n;
    lv[i].seed = seed;
    atomic_signal_fence(memory_order_seq_cst);
    lv[i].p = p;
    atomic_signal_fence(memory_order_seq_cst);
}

/* Fill a block and publish it as live. */
static void publish(unsigned char *p, size_t n)
{
    if (nlive >= MAXLIVE) {
        SCRIPT_CHECK(0, 12);
        return;
    }
    uint64_t seed = seed_next++;
    wfill(p, n, seed);
    lv_set(nlive, p, n, seed);
    nlive++;
}

/* Unpublish entry i (the block stays live until the caller frees it). */
static live drop(int i)
{
    live l = lv[i];
    live last = lv[nlive - 1];
    lv_set(i, last.p, last.n, last.seed); /* listed twice for a moment */
    nlive--;
    atomic_signal_fence(memory_order_seq_cst);
    return l;
}

/* Allocate from the pool (or the context when from_ctx), fill, publish. */
static unsigned char *take(size_t n, int from_ctx)
{
    unsigned char *p =
        from_ctx ? sigsafe_alloc(n) : sigsafe_pool_alloc(pool, n);
    SCRIPT_CHECK(p != NULL, 10);
    if (!p)
        return NULL;
    SCRIPT_CHECK(sigsafe_pool_of(p) == (from_ctx ? defpool : pool), 11);
    publish(p, n);
    return p;
}

/* Unpublish and check live block i, then free it. */
static void give(int i)
{
    live l = drop(i);
    SCRIPT_CHECK(wcheck(l.p, l.n, l.seed), 13);
    sigsafe_free(l.p);
}

static int find_live(const void *p)
{
    for (int i = 0; i < nlive; i++)
        if (lv[i].p == p)
            return i;
    return -1;
}

static unsigned expected_pool_rejects, expected_default_rejects;

/* This thread's record in pool2, with blocks of `size` bytes in its bins,
 * made to look like one that a vanished thread left (keyed by `key`, not
 * our token), and unbound from TLS.  Not stepped further than its calls. */
static void forge_vanished(size_t size, uint64_t key)
{
    void *q[6];
    for (int i = 0; i < 6; i++)
        q[i] = sigsafe_pool_alloc(pool2, size);
    for (int i = 0; i < 6; i++)
        sigsafe_free(q[i]);
    uint64_t me = atomic_load(&sigsafe__tls.token);
    for (unsigned i = 0; me && i < SS_TC_RECORDS; i++) {
        uint64_t k = me;
        if (atomic_compare_exchange_strong(&ss_tc_record(pool2, i)->key, &k, key))
            break;
    }
    sigsafe__tls.bind[0].pool = NULL;
    sigsafe__tls.bind[1].pool = NULL;
}

static void script(void)
{
    /* Fresh classes, which the handler never takes: each first
     * allocation carves a span (or, for 30000, a slot). */
    static const size_t fresh[] = {1000, 5000, 12000, 30000};
    for (size_t i = 0; i < sizeof fresh / sizeof fresh[0]; i++)
        take(fresh[i], 0);
    /* Refill: more blocks of one class than a span holds (7 of 8 KiB),
     * a class the handler takes too. */
    for (int i = 0; i < 9; i++)
        take(8000, 0);
    for (int i = 0; i < 9; i++)
        give(nlive - 1);
    take(1, 0);
    /* The fast path: one class, allocate and free over and over. */
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 4; i++)
            take(32, 0);
        for (int i = 0; i < 4; i++)
            give(nlive - 1);
    }
    /* Record takeover, in a pool of its own (the handler never uses it,
     * so it cannot take the record over first at full speed): this
     * thread's record there, with blocks in its bins, made to look like
     * one a vanished thread left on this TLS block (a token that is not
     * ours) and unbound from TLS.  The next allocation takes it over and
     * salvages it, stepped: handlers land in the claim and the salvage. */
    void *q[7];
    uint64_t me = atomic_load(&sigsafe__tls.token);
    forge_vanished(48, me + 1000000);
    for (int i = 0; i < 7; i++)
        q[i] = sigsafe_pool_alloc(pool2, 48);
    int forged = 0, mine = 0, twice = 0;
    for (unsigned i = 0; i < SS_TC_RECORDS; i++) {
        uint64_t k = atomic_load(&ss_tc_record(pool2, i)->key);
        forged += k == me + 1000000;
        mine += k == me;
    }
    for (int i = 0; i < 7; i++)
        for (int j = 0; j < i; j++)
            twice += !q[i] || q[i] == q[j];
    SCRIPT_CHECK(me && !forged && mine == 1 && !twice, 31);
    for (int i = 0; i < 7; i++)
        sigsafe_free(q[i]);
    /* Large blocks: carve a slot, free it, reuse it. */
    take(20000, 0);
    take(40000, 0);
    give(nlive - 1);
    take(40000, 0);
    give(nlive - 2);
    /* Bad frees: an interior pointer and a double free (the pool's),
     * a pointer in no pool (the default pool's). */
    unsigned char *victim = take(64, 0);
    if (victim) {
        sigsafe_free(victim + 16);
        expected_pool_rejects++;
        give(find_live(victim));
        sigsafe_free(victim);
        expected_pool_rejects++;
    }
    static char not_ours[64];
    sigsafe_free(not_ours + 8);
    expected_default_rejects++;
    /* realloc: grow (moves), shrink (stays), NULL and 0. */
    unsigned char *r = take(24, 0);
    if (r) {
        live l = drop(find_live(r));
        unsigned char *g = sigsafe_realloc(r, 600);
        SCRIPT_CHECK(g != NULL && g != r, 20);
        if (g) {
            /* The old contents moved along (patterns name the old place). */
            uint64_t w0, w1;
            memcpy(&w0, g, 8);
            memcpy(&w1, g + l.n - 8, 8);
            SCRIPT_CHECK(w0 == word_at(r, 0, l.seed) &&
                             w1 == word_at(r, l.n - 8, l.seed),
                         21);
            SCRIPT_CHECK(sigsafe_pool_of(g) == pool, 22);
            unsigned char *s = sigsafe_pool_realloc(pool, g, 100);
            SCRIPT_CHECK(s == g, 23);
            publish(s, 100);
        }
    }
    unsigned char *fromnull = sigsafe_pool_realloc(pool, NULL, 200);
    SCRIPT_CHECK(fromnull != NULL, 24);
    if (fromnull) {
        unsigned char *zero = sigsafe_realloc(fromnull, 0);
        SCRIPT_CHECK(zero == NULL, 25);
    }
    /* The context's pool: alloc, calloc, aligned, usable_size. */
    take(80, 1);
    unsigned char *c = sigsafe_calloc(3, 50);
    SCRIPT_CHECK(c != NULL && st_first_nonzero(c, 150) == SIZE_MAX, 26);
    if (c)
        publish(c, 150);
    unsigned char *a = sigsafe_pool_aligned_alloc(pool, 256, 300);
    SCRIPT_CHECK(a != NULL && (uintptr_t)a % 256 == 0, 27);
    if (a) {
        SCRIPT_CHECK(sigsafe_usable_size(a) >= 300, 28);
        publish(a, 300);
    }
    sigsafe_context_enter(pool);
    take(56, 0);
    SCRIPT_CHECK(sigsafe_current_pool() == pool, 29);
    sigsafe_context_leave();
    sigsafe_stats st;
    SCRIPT_CHECK(sigsafe_pool_stats(pool, &st) == 0, 30);
    /* Leave some blocks live for the final checks; free the rest. */
    while (nlive > 6)
        give(0);
    /* A vanished thread's record salvaged as in a fork child, then this
     * thread's own records given back as its exit hook does (its cache
     * is off from here on, so the rest takes the shared path): stepped
     * like everything else. */
    forge_vanished(64, me + 2000000);
    sigsafe__tc_after_fork();
    int left = 0;
    for (unsigned i = 0; i < SS_TC_RECORDS; i++)
        left += atomic_load(&ss_tc_record(pool2, i)->key) == me + 2000000;
    SCRIPT_CHECK(left == 0, 32);
    sigsafe__tc_thread_exit();
    for (unsigned i = 0; i < SS_TC_RECORDS; i++)
        left += atomic_load(&ss_tc_record(pool, i)->key) == me ||
                atomic_load(&ss_tc_record(pool2, i)->key) == me;
    SCRIPT_CHECK(left == 0, 33);
    take(48, 0); /* the shared path now */
}

/* After the script (not stepped): the blocks and the statistics. */
static int verify(void)
{
    if (script_fail)
        return script_fail;
    if (handler_fail)
        return 40 + handler_fail;
    for (int r = 0; r < KEEP; r++)
        for (int j = 0; j < NH; j++) {
            if (carry[r][j] && !hcheck(carry[r][j], hsizes[j], 0xCA77 + r))
                return 30;
            sigsafe_free(carry[r][j]);
            carry[r][j] = NULL;
        }
    if (wobble && !hcheck(wobble, wobble_n, 0x3090B))
        return 30;
    sigsafe_free(wobble);
    wobble = NULL;
    size_t in_pool = 0, bytes = 0, in_def = 0;
    for (int i = 0; i < nlive; i++) {
        if (!wcheck(lv[i].p, lv[i].n, lv[i].seed))
            return 31;
        if (sigsafe_pool_of(lv[i].p) == pool) {
            in_pool++;
            bytes += sigsafe_usable_size(lv[i].p);
        } else {
            in_def++;
        }
    }
    sigsafe_stats s, d;
    if (sigsafe_pool_stats(pool, &s) != 0 ||
        sigsafe_pool_stats(defpool, &d) != 0)
        return 32;
    if (s.allocs != s.frees + in_pool)
        return 33;
    if (s.bytes_in_use != bytes)
        return 34;
    if (s.rejected_frees != expected_pool_rejects)
        return 35;
    if (s.failed_allocs != 0 || d.failed_allocs != 0)
        return 36;
    if (d.allocs != d.frees + in_def)
        return 37;
    if (d.rejected_frees != expected_default_rejects)
        return 38;
    while (nlive > 0)
        give(0);
    if (sigsafe_pool_stats(pool, &s) != 0 || s.bytes_in_use != 0 ||
        s.allocs != s.frees)
        return 39;
    return 0;
}

static int report_pipe[2];

static void child_main(void)
{
    if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) != 0)
        _exit(EXIT_NO_PTRACE);
    sigsafe_pool_config cfg = {.name = "everyinsn", .capacity = 8 * ST_MIB};
    if (sigsafe_pool_create(&cfg, &pool) != 0)
        _exit(2);
    sigsafe_pool_config cfg2 = {.name = "everyinsn-2", .capacity = 2 * ST_MIB};
    if (sigsafe_pool_create(&cfg2, &pool2) != 0)
        _exit(2);
    defpool = sigsafe_default_pool();
    if (!defpool)
        _exit(3);
    sigsafe_set_report_fd(report_pipe[1]);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = inject_handler;
    if (sigaction(SIGUSR1, &sa, NULL) != 0)
        _exit(4);
    sa.sa_handler = marker_handler;
    if (sigaction(SIGUSR2, &sa, NULL) != 0)
        _exit(5);
    raise(SIGSTOP); /* the tracer takes over */
    flags.armed = 1;
    script();
    flags.armed = 0;
    raise(SIGUSR2); /* script done: the tracer stops stepping */
    int rc = verify();
    /* Exactly one report line per bad free. */
    char buf[4096];
    ssize_t n = read(report_pipe[0], buf, sizeof buf);
    int lines = 0;
    for (ssize_t i = 0; i < n; i++)
        lines += buf[i] == '\n';
    int want = (int)(expected_pool_rejects + expected_default_rejects);
    if (!rc && lines != want) {
        static const char msg[] = "everyinsn child: unexpected reports:\n";
        (void)!write(2, msg, sizeof msg - 1);
        if (n > 0)
            (void)!write(2, buf, (size_t)n);
        rc = 50;
    }
    _exit(rc);
}

/* ============================================================= parent */

typedef struct range {
    uintptr_t lo, hi;
} range;

typedef struct code_map {
    range *r;
    size_t n, cap;
    uintptr_t bias;
} code_map;

/* Basenames of the library's sources, space-separated, for their static
 * functions: from the build (test/signal_tests.cmake), else this list. */
#ifndef SIGSAFE_LIB_SOURCES
#define SIGSAFE_LIB_SOURCES                                                  \
    " alloc.c free.c realloc.c lookup.c span.c context.c stats.c report.c "  \
    "sizeclass.c sys_linux.c pool.c signal.c "
#endif

static int is_lib_file(const char *name)
{
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    size_t n = strlen(base);
    static const char list[] = " " SIGSAFE_LIB_SOURCES;
    if (n == 0)
        return 0;
    for (const char *at = strstr(list, base); at; at = strstr(at + 1, base))
        if (at > list && at[-1] == ' ' && at[n] == ' ')
            return 1;
    return 0;
}

static int phdr_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    *(uintptr_t *)data = info->dlpi_addr;
    return 1; /* the first object is the executable */
}

static void add_range(code_map *m, uintptr_t lo, uintptr_t hi)
{
    if (m->n == m->cap) {
        m->cap = m->cap ? 2 * m->cap : 256;
        m->r = realloc(m->r, m->cap * sizeof *m->r);
        ck_assert_ptr_nonnull(m->r);
    }
    m->r[m->n].lo = lo;
    m->r[m->n].hi = hi;
    m->n++;
}

static int cmp_range(const void *a, const void *b)
{
    const range *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* Read the ELF symbol table of the running executable. */
static void load_code_map(code_map *m)
{
    memset(m, 0, sizeof *m);
    int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    ck_assert_msg(fd >= 0, "open /proc/self/exe: %s", strerror(errno));
    struct stat sb;
    ck_assert_int_eq(fstat(fd, &sb), 0);
    unsigned char *img = malloc((size_t)sb.st_size);
    ck_assert_ptr_nonnull(img);
    size_t got = 0;
    while (got < (size_t)sb.st_size) {
        ssize_t r = read(fd, img + got, (size_t)sb.st_size - got);
        ck_assert_msg(r > 0, "read /proc/self/exe: %s", strerror(errno));
        got += (size_t)r;
    }
    close(fd);
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)img;
    ck_assert_msg(memcmp(eh->e_ident, ELFMAG, SELFMAG) == 0 &&
                      eh->e_ident[EI_CLASS] == ELFCLASS64,
                  "/proc/self/exe is not ELF64");
    const Elf64_Shdr *sh = (const Elf64_Shdr *)(img + eh->e_shoff);
    for (int i = 0; i < eh->e_shnum; i++) {
        if (sh[i].sh_type != SHT_SYMTAB)
            continue;
        const Elf64_Sym *sym = (const Elf64_Sym *)(img + sh[i].sh_offset);
        size_t nsym = sh[i].sh_size / sizeof *sym;
        const char *str = (const char *)(img + sh[sh[i].sh_link].sh_offset);
        int in_lib_file = 0;
        for (size_t k = 0; k < nsym; k++) {
            const char *name = str + sym[k].st_name;
            int type = ELF64_ST_TYPE(sym[k].st_info);
            if (type == STT_FILE) {
                in_lib_file = is_lib_file(name);
                continue;
            }
            if (type != STT_FUNC || sym[k].st_size == 0 ||
                sym[k].st_shndx == SHN_UNDEF)
                continue;
            int local = ELF64_ST_BIND(sym[k].st_info) == STB_LOCAL;
            if (strncmp(name, "sigsafe_", 8) == 0 || (local && in_lib_file))
                add_range(m, sym[k].st_value, sym[k].st_value + sym[k].st_size);
        }
    }
    int pie = eh->e_type == ET_DYN;
    free(img);
    ck_assert_msg(m->n > 0, "no sigsafe_ functions in the symbol table "
                            "(stripped executable?)");
    uintptr_t bias = 0;
    if (pie)
        dl_iterate_phdr(phdr_cb, &bias);
    m->bias = bias;
    for (size_t i = 0; i < m->n; i++) {
        m->r[i].lo += bias;
        m->r[i].hi += bias;
    }
    qsort(m->r, m->n, sizeof *m->r, cmp_range);
}

static int in_code(const code_map *m, uintptr_t ip)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (ip < m->r[mid].lo)
            hi = mid;
        else if (ip >= m->r[mid].hi)
            lo = mid + 1;
        else
            return 1;
    }
    return 0;
}

/* Open-addressing map: instruction address -> injections there. */
typedef struct addr_set {
    uintptr_t *key;
    unsigned *val;
    size_t cap, n;
} addr_set;

static unsigned *addr_slot(addr_set *s, uintptr_t a)
{
    if (2 * (s->n + 1) > s->cap) {
        addr_set t = {calloc(s->cap ? 2 * s->cap : 4096, sizeof(uintptr_t)),
                      calloc(s->cap ? 2 * s->cap : 4096, sizeof(unsigned)),
                      s->cap ? 2 * s->cap : 4096, 0};
        ck_assert(t.key && t.val);
        for (size_t i = 0; i < s->cap; i++)
            if (s->key[i])
                *addr_slot(&t, s->key[i]) = s->val[i];
        free(s->key);
        free(s->val);
        *s = t;
    }
    size_t i = (size_t)(a * 0x9E3779B97F4A7C15ull >> 20) & (s->cap - 1);
    while (s->key[i] && s->key[i] != a)
        i = (i + 1) & (s->cap - 1);
    if (!s->key[i]) {
        s->key[i] = a;
        s->n++;
    }
    return &s->val[i];
}

static uintptr_t child_ip(pid_t pid)
{
#if defined(__x86_64__)
    struct user_regs_struct regs;
    ck_assert_msg(ptrace(PTRACE_GETREGS, pid, NULL, &regs) == 0,
                  "PTRACE_GETREGS: %s", strerror(errno));
    return (uintptr_t)regs.rip;
#elif defined(__aarch64__)
    struct user_regs_struct regs; /* regs[31], sp, pc, pstate */
    struct iovec iov = {&regs, sizeof regs};
    ck_assert_msg(ptrace(PTRACE_GETREGSET, pid, (void *)NT_PRSTATUS, &iov) == 0,
                  "PTRACE_GETREGSET: %s", strerror(errno));
    return (uintptr_t)regs.pc;
#else
    (void)pid;
    return 0;
#endif
}

/* After the handler: a breakpoint where it will return, so that its last
 * instructions and the sigreturn run at full speed instead of stepped. */
typedef struct bkpt {
    uintptr_t addr, word_addr;
    long saved;
} bkpt;

#if defined(__x86_64__)
static void set_child_ip(pid_t pid, uintptr_t ip)
{
    struct user_regs_struct regs;
    ck_assert(ptrace(PTRACE_GETREGS, pid, NULL, &regs) == 0);
    regs.rip = ip;
    ck_assert_msg(ptrace(PTRACE_SETREGS, pid, NULL, &regs) == 0,
                  "PTRACE_SETREGS: %s", strerror(errno));
}
#endif

static long peek(pid_t pid, const volatile void *addr);

static void bkpt_set(pid_t pid, bkpt *b, uintptr_t addr)
{
    b->addr = addr;
    b->word_addr = addr & ~(uintptr_t)7; /* never crosses a page */
    b->saved = peek(pid, (const void *)b->word_addr);
    long w = b->saved;
    unsigned char *bytes = (unsigned char *)&w;
    size_t off = addr - b->word_addr;
#if defined(__x86_64__)
    bytes[off] = 0xCC; /* int3 */
#elif defined(__aarch64__)
    uint32_t brk = 0xd4200000u; /* brk #0 */
    memcpy(bytes + off, &brk, 4);
#endif
    ck_assert_msg(ptrace(PTRACE_POKETEXT, pid, (void *)b->word_addr,
                         (void *)w) == 0,
                  "PTRACE_POKETEXT: %s", strerror(errno));
}

/* The child trapped on the breakpoint: undo it and put the instruction
 * pointer back on the instruction.  Returns 0 if it trapped elsewhere. */
static int bkpt_hit(pid_t pid, bkpt *b)
{
    uintptr_t ip = child_ip(pid);
    ck_assert_msg(ptrace(PTRACE_POKETEXT, pid, (void *)b->word_addr,
                         (void *)b->saved) == 0,
                  "PTRACE_POKETEXT: %s", strerror(errno));
#if defined(__x86_64__)
    if (ip != b->addr + 1) /* int3 traps after itself */
        return 0;
    set_child_ip(pid, b->addr);
#else
    if (ip != b->addr) /* brk traps on itself */
        return 0;
#endif
    return 1;
}

static long peek(pid_t pid, const volatile void *addr)
{
    errno = 0;
    long v = ptrace(PTRACE_PEEKDATA, pid, (void *)addr, NULL);
    ck_assert_msg(errno == 0, "PTRACE_PEEKDATA: %s", strerror(errno));
    return v;
}

static void resume(int req, pid_t pid, int sig)
{
    ck_assert_msg(ptrace(req, pid, NULL, (void *)(uintptr_t)sig) == 0,
                  "ptrace resume(%d, sig %d): %s", req, sig, strerror(errno));
}

static int wait_stop(pid_t pid)
{
    int status;
    pid_t w;
    while ((w = waitpid(pid, &status, __WALL)) < 0 && errno == EINTR)
        ;
    ck_assert_msg(w == pid, "waitpid: %s", strerror(errno));
    return status;
}

enum mode { STEP, ENTERING, IN_HANDLER, RETURNING, FREE_RUN };

START_TEST(every_instruction)
{
    if (!EI_SUPPORTED) {
        printf("everyinsn: skipped: needs x86-64 or aarch64\n");
        return;
    }
    if (st_under_emulator()) {
        printf("everyinsn: skipped under qemu-user: it implements no ptrace, "
               "so nothing can single-step the child\n");
        return;
    }
    if (st_under_tsan()) {
        printf("everyinsn: skipped under TSan: it defers asynchronous "
               "signals to its own safe points, so no handler would run "
               "inside the library\n");
        return;
    }
    const char *capenv = getenv("SIGSAFE_EVERYINSN_CAP");
    unsigned cap = capenv ? (unsigned)strtoul(capenv, NULL, 10) : DEFAULT_CAP;
    if (cap == 0)
        cap = DEFAULT_CAP;

    code_map cm;
    load_code_map(&cm);
    /* Sanity of the map and the bias: the entry points are inside. */
    ck_assert(in_code(&cm, (uintptr_t)&sigsafe_pool_alloc));
    ck_assert(in_code(&cm, (uintptr_t)&sigsafe_free));
    ck_assert(!in_code(&cm, (uintptr_t)&inject_handler));
    ck_assert(!in_code(&cm, (uintptr_t)&st_fill));

    ck_assert_int_eq(pipe2(report_pipe, O_NONBLOCK | O_CLOEXEC), 0);
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        child_main(); /* never returns */

    int status = wait_stop(pid);
    if (WIFEXITED(status) && WEXITSTATUS(status) == EXIT_NO_PTRACE) {
        printf("everyinsn: skipped: ptrace(PTRACE_TRACEME) refused\n");
        return;
    }
    ck_assert_msg(WIFSTOPPED(status) && WSTOPSIG(status) == SIGSTOP,
                  "child did not stop itself (status %#x)", status);
    ck_assert_msg(ptrace(PTRACE_SETOPTIONS, pid, NULL,
                         (void *)(uintptr_t)(PTRACE_O_EXITKILL |
                                             PTRACE_O_TRACEEXIT)) == 0,
                  "PTRACE_SETOPTIONS: %s", strerror(errno));

    addr_set hits = {0}, seen = {0};
    unsigned long stops = 0, steps = 0, lib_steps = 0, injections = 0;
    unsigned long entered_at_handler = 0, child_runs = 0;
    long child_fail = -1;
    uintptr_t skip_ip = 0; /* just returned here from a handler */
    uintptr_t inject_ip = 0;
    bkpt bp = {0, 0, 0};
    enum mode mode = STEP;
    resume(PTRACE_SINGLESTEP, pid, 0); /* swallow the SIGSTOP */
    for (;;) {
        status = wait_stop(pid);
        if (WIFEXITED(status) || WIFSIGNALED(status))
            break;
        ck_assert(WIFSTOPPED(status));
        if (++stops > MAX_STOPS) {
            kill(pid, SIGKILL);
            wait_stop(pid);
            ck_abort_msg("no end after %lu ptrace stops (an rseq-style "
                         "restart loop under single-stepping?)", stops);
        }
        int sig = WSTOPSIG(status);
        if (status >> 8 == (SIGTRAP | (PTRACE_EVENT_EXIT << 8))) {
            child_runs = (unsigned long)peek(pid, &handler_runs);
            child_fail = peek(pid, &handler_fail);
            resume(PTRACE_CONT, pid, 0);
            continue;
        }
        switch (mode) {
        case STEP:
            if (sig == SIGUSR2) { /* script done: run to the end */
                mode = FREE_RUN;
                resume(PTRACE_CONT, pid, 0);
                continue;
            }
            if (sig != SIGTRAP) { /* a real fault: let it happen */
                resume(PTRACE_CONT, pid, sig);
                mode = FREE_RUN;
                continue;
            }
            steps++;
            uintptr_t ip = child_ip(pid);
            if (ip != skip_ip)
                skip_ip = 0;
            if (in_code(&cm, ip)) {
                lib_steps++;
                long f = peek(pid, &flags);
                int fl[2];
                memcpy(fl, &f, sizeof fl);
                int armed = fl[0], busy = fl[1];
                if (armed && !busy)
                    (void)addr_slot(&seen, ip);
                if (armed && !busy && ip != skip_ip) {
                    unsigned *count = addr_slot(&hits, ip);
                    if (*count < cap) {
                        ++*count;
                        injections++;
                        inject_ip = ip;
                        mode = ENTERING;
                        resume(PTRACE_SINGLESTEP, pid, SIGUSR1);
                        continue;
                    }
                }
            }
            resume(PTRACE_SINGLESTEP, pid, 0);
            continue;
        case ENTERING: /* the step into the handler's first instruction */
            if (sig == SIGTRAP) {
                if (child_ip(pid) == (uintptr_t)&inject_handler)
                    entered_at_handler++;
                mode = IN_HANDLER;
                resume(PTRACE_CONT, pid, 0);
            } else {
                mode = FREE_RUN;
                resume(PTRACE_CONT, pid, sig);
            }
            continue;
        case IN_HANDLER:
            if (sig == SIGUSR2) { /* the handler is done: run it out */
                bkpt_set(pid, &bp, inject_ip);
                mode = RETURNING;
                resume(PTRACE_CONT, pid, 0);
            } else {
                mode = FREE_RUN;
                resume(PTRACE_CONT, pid, sig);
            }
            continue;
        case RETURNING: /* back where the signal landed: step again */
            if (sig == SIGTRAP && bkpt_hit(pid, &bp)) {
                skip_ip = inject_ip; /* not injected twice in a row */
                mode = STEP;
                resume(PTRACE_SINGLESTEP, pid, 0);
            } else {
                ck_abort_msg("child stopped with signal %d at %#lx, not at "
                             "the breakpoint %#lx after its handler",
                             sig, (unsigned long)child_ip(pid),
                             (unsigned long)bp.addr);
            }
            continue;
        case FREE_RUN:
            resume(PTRACE_CONT, pid,
                   sig == SIGUSR2 || sig == SIGTRAP ? 0 : sig);
            continue;
        }
    }
    close(report_pipe[0]);
    close(report_pipe[1]);

    printf("everyinsn: %lu steps (%lu in the library, %zu code ranges); "
           "%lu injections at %zu distinct library instruction addresses "
           "(of %zu executed by the script; at most %u each); "
           "%lu handler runs\n",
           steps, lib_steps, cm.n, injections, hits.n, seen.n, cap,
           child_runs);
    fflush(stdout);
    ck_assert_msg(!WIFSIGNALED(status), "child killed by signal %d",
                  WTERMSIG(status));
    ck_assert_msg(WEXITSTATUS(status) == 0,
                  "child failed check %d (1x: script, 3x: final checks, "
                  "4x: in the handler, 50: report lines); handler code %ld",
                  WEXITSTATUS(status), child_fail);
    ck_assert_uint_eq(child_runs, injections);
    ck_assert_uint_eq(entered_at_handler, injections);
    ck_assert_msg(hits.n >= MIN_DISTINCT,
                  "only %zu distinct library instructions were injected",
                  hits.n);
    free(hits.key);
    free(hits.val);
    free(seen.key);
    free(seen.val);
    free(cm.r);
}
END_TEST

Suite *everyinsn_suite(void)
{
    Suite *s = suite_create("everyinsn");
    TCase *tc = tcase_create("everyinsn");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, every_instruction);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return st_run_suite(everyinsn_suite());
}
