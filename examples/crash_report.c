/* SPDX-License-Identifier: MIT */
/*
 * crash_report: the handler side of the example crash reporter (see
 * crash_report.h).
 *
 * Everything below the "AS-safe" banner runs inside a signal handler that
 * may have interrupted malloc while it held its lock, or that runs after the
 * heap was corrupted.  It therefore uses only:
 *   - sigsafe's allocator, for every buffer (the report, the backtrace, the
 *     maps-reading buffers), so no size has to be guessed at compile time;
 *   - functions on POSIX's async-signal-safe list (open, read, write, fsync,
 *     close, rename, sigaction, pthread_sigmask, raise, clock_gettime,
 *     nanosleep), plus gettid;
 *   - libgcc's _Unwind_Backtrace, warmed up once at install so that its lazy
 *     initialisation never runs in the handler.  With glibc 2.35+ and GCC 12+
 *     it finds unwind tables through _dl_find_object, which takes no lock;
 *   - a small number formatter of its own (no printf).
 * errno is saved on entry and restored before the handler returns.
 *
 * GNU libsigsegv serves two purposes here, through one SIGSEGV/SIGBUS
 * handler of its own: sigsafe_guard_watch() (a one-line report naming the
 * block behind a guard-page fault) and stack-overflow detection
 * (stackoverflow_install_handler).  Our handler goes on top of it:
 *   1. sigsafe_guard_watch(), then stackoverflow_install_handler() on the
 *      alternate stack, install libsigsegv's handler;
 *   2. we keep that handler, then sigsafe_sigaction() installs ours for the
 *      six crash signals;
 *   3. on a fault raised by the kernel, on_crash() first calls libsigsegv's
 *      handler: a guard page gets its line, a stack overflow goes to
 *      on_stack_overflow() (which reports and dies), anything else comes
 *      straight back.  Then on_crash() reports.
 * So every crash, including a SIGSEGV sent with kill(2) or raise(3), reaches
 * on_crash().  Installed the other way round (libsigsegv on top), libsigsegv
 * would hand other faults on only by re-running the faulting instruction,
 * which a SIGSEGV from kill(2) never does: the signal would be lost.
 */
#include "crash_report.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h> /* rename(2) only: no stdio stream is used */
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>
#include <unwind.h>

#include <sigsegv.h>
#include <sigsafe_guard.h>

#define DEFAULT_CAPACITY ((size_t)1 << 20)
#define DEFAULT_ALTSTACK ((size_t)64 << 10)
#define MAX_FRAMES 64
#define MAX_COUNTED 1000000 /* frames counted beyond MAX_FRAMES, at most */
#define MAX_MODULES 32
#define MODULE_PATH 256
#define MAPS_CONTEXT 2 /* lines of /proc/self/maps shown either side */
#define LINE_MAX_BYTES 512 /* longer maps lines are cut */
#define PATH_BYTES 4096
#define OTHER_THREAD_WAIT_MS 10000 /* how long a second crashing thread waits */

static const int crash_signals[] = {SIGSEGV, SIGBUS, SIGILL,
                                    SIGFPE,  SIGABRT, SIGTRAP};
#define NSIGNALS (sizeof crash_signals / sizeof crash_signals[0])

/* Set at install, read-only afterwards (the handler only reads them). */
static sigsafe_pool *pool;
static char report_path[PATH_BYTES];   /* "" = no file */
static char report_tmp[PATH_BYTES + 8]; /* report_path + ".tmp" */
static char program[64];
static size_t altstack_size = DEFAULT_ALTSTACK;

/* libsigsegv's handlers, called first by ours (see above). */
static struct sigaction chain_segv, chain_bus;

/* The thread writing a report (0 = none). */
static atomic_long reporter;

/* ================================================================ AS-safe */

/* ------------------------------------------------------------ formatting */

/* A growing text buffer in sigsafe memory from the current context. */
typedef struct text {
    char *buf;
    size_t len, cap;
    int truncated; /* an append did not fit and was dropped */
} text;

static int text_room(text *t, size_t more)
{
    if (t->len + more <= t->cap)
        return 1;
    size_t cap = t->cap ? t->cap : 4096;
    while (cap < t->len + more)
        cap *= 2;
    char *grown = sigsafe_realloc(t->buf, cap); /* NULL: t->buf intact */
    if (!grown) {
        t->truncated = 1;
        return 0;
    }
    t->buf = grown;
    t->cap = sigsafe_usable_size(grown); /* at least cap: use it all */
    return 1;
}

static void put_mem(text *t, const char *s, size_t n)
{
    if (text_room(t, n)) {
        memcpy(t->buf + t->len, s, n);
        t->len += n;
    }
}

static void put(text *t, const char *s)
{
    put_mem(t, s, strlen(s));
}

static void put_char(text *t, char c)
{
    put_mem(t, &c, 1);
}

/* v in base 10 or 16, at least `width` digits (zero-padded). */
static void put_num(text *t, uint64_t v, unsigned base, int width)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    while (n < width && n < (int)sizeof tmp)
        tmp[n++] = '0';
    while (n)
        put_char(t, tmp[--n]);
}

static void put_dec(text *t, uint64_t v)
{
    put_num(t, v, 10, 0);
}

static void put_sdec(text *t, int64_t v)
{
    if (v < 0) {
        put_char(t, '-');
        put_dec(t, (uint64_t)0 - (uint64_t)v);
    } else {
        put_dec(t, (uint64_t)v);
    }
}

static void put_hex(text *t, uint64_t v)
{
    put(t, "0x");
    put_num(t, v, 16, 0);
}

static void put_addr(text *t, uint64_t v) /* fixed width, for columns */
{
    put(t, "0x");
    put_num(t, v, 16, 2 * (int)sizeof(void *));
}

/* s, then spaces up to `width` characters. */
static void put_padded(text *t, const char *s, size_t width)
{
    size_t n = strlen(s);
    put(t, s);
    while (n++ < width)
        put_char(t, ' ');
}

/* ----------------------------------------------------------- signal names */

typedef struct code_name {
    int sig; /* 0: any signal */
    int code;
    const char *name, *what;
} code_name;

static const code_name codes[] = {
    {SIGSEGV, SEGV_MAPERR, "SEGV_MAPERR", "address not mapped"},
    {SIGSEGV, SEGV_ACCERR, "SEGV_ACCERR", "invalid permissions"},
    {SIGBUS, BUS_ADRALN, "BUS_ADRALN", "invalid address alignment"},
    {SIGBUS, BUS_ADRERR, "BUS_ADRERR", "nonexistent physical address"},
    {SIGBUS, BUS_OBJERR, "BUS_OBJERR", "object-specific hardware error"},
    {SIGILL, ILL_ILLOPC, "ILL_ILLOPC", "illegal opcode"},
    {SIGILL, ILL_ILLOPN, "ILL_ILLOPN", "illegal operand"},
    {SIGILL, ILL_ILLADR, "ILL_ILLADR", "illegal addressing mode"},
    {SIGILL, ILL_ILLTRP, "ILL_ILLTRP", "illegal trap"},
    {SIGILL, ILL_PRVOPC, "ILL_PRVOPC", "privileged opcode"},
    {SIGILL, ILL_PRVREG, "ILL_PRVREG", "privileged register"},
    {SIGILL, ILL_COPROC, "ILL_COPROC", "coprocessor error"},
    {SIGILL, ILL_BADSTK, "ILL_BADSTK", "internal stack error"},
    {SIGFPE, FPE_INTDIV, "FPE_INTDIV", "integer divide by zero"},
    {SIGFPE, FPE_INTOVF, "FPE_INTOVF", "integer overflow"},
    {SIGFPE, FPE_FLTDIV, "FPE_FLTDIV", "floating-point divide by zero"},
    {SIGFPE, FPE_FLTOVF, "FPE_FLTOVF", "floating-point overflow"},
    {SIGFPE, FPE_FLTUND, "FPE_FLTUND", "floating-point underflow"},
    {SIGFPE, FPE_FLTRES, "FPE_FLTRES", "floating-point inexact result"},
    {SIGFPE, FPE_FLTINV, "FPE_FLTINV", "invalid floating-point operation"},
    {SIGFPE, FPE_FLTSUB, "FPE_FLTSUB", "subscript out of range"},
    {SIGTRAP, TRAP_BRKPT, "TRAP_BRKPT", "breakpoint"},
    {SIGTRAP, TRAP_TRACE, "TRAP_TRACE", "trace trap"},
    {0, SI_USER, "SI_USER", "sent by kill"},
    {0, SI_QUEUE, "SI_QUEUE", "sent by sigqueue"},
    {0, SI_TKILL, "SI_TKILL", "sent by tkill or raise"},
    {0, SI_KERNEL, "SI_KERNEL", "sent by the kernel"},
};

static const char *signal_name(int sig)
{
    switch (sig) {
    case SIGSEGV: return "SIGSEGV";
    case SIGBUS: return "SIGBUS";
    case SIGILL: return "SIGILL";
    case SIGFPE: return "SIGFPE";
    case SIGABRT: return "SIGABRT";
    case SIGTRAP: return "SIGTRAP";
    default: return "signal";
    }
}

static const code_name *code_of(int sig, int code)
{
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        if ((codes[i].sig == sig || codes[i].sig == 0) && codes[i].code == code)
            return &codes[i];
    return NULL;
}

/* -------------------------------------------------------------- registers */

static uintptr_t context_pc(const ucontext_t *uc)
{
#if defined(__x86_64__)
    return (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
#elif defined(__aarch64__)
    return (uintptr_t)uc->uc_mcontext.pc;
#else
    (void)uc;
    return 0;
#endif
}

#if defined(__x86_64__)
static const struct {
    const char *name;
    int index;
} x86_regs[] = {
    {"rip", REG_RIP}, {"rsp", REG_RSP},       {"rbp", REG_RBP},
    {"rax", REG_RAX}, {"rbx", REG_RBX},       {"rcx", REG_RCX},
    {"rdx", REG_RDX}, {"rsi", REG_RSI},       {"rdi", REG_RDI},
    {"r8", REG_R8},   {"r9", REG_R9},         {"r10", REG_R10},
    {"r11", REG_R11}, {"r12", REG_R12},       {"r13", REG_R13},
    {"r14", REG_R14}, {"r15", REG_R15},       {"eflags", REG_EFL},
    {"cr2", REG_CR2}, {"trapno", REG_TRAPNO}, {"err", REG_ERR},
};
#endif

static void put_reg(text *t, int *col, const char *name, uint64_t v)
{
    put(t, "  ");
    put_padded(t, name, 7);
    put_addr(t, v);
    if (++*col == 3) {
        put_char(t, '\n');
        *col = 0;
    }
}

static void put_registers(text *t, const ucontext_t *uc)
{
    int col = 0;
    put(t, "registers:\n");
#if defined(__x86_64__)
    for (size_t i = 0; i < sizeof x86_regs / sizeof x86_regs[0]; i++)
        put_reg(t, &col, x86_regs[i].name,
                (uint64_t)uc->uc_mcontext.gregs[x86_regs[i].index]);
#elif defined(__aarch64__)
    put_reg(t, &col, "pc", uc->uc_mcontext.pc);
    put_reg(t, &col, "sp", uc->uc_mcontext.sp);
    put_reg(t, &col, "pstate", uc->uc_mcontext.pstate);
    for (int i = 0; i < 31; i++) {
        char name[4] = {'x', 0, 0, 0};
        if (i == 29) {
            name[0] = 'f', name[1] = 'p';
        } else if (i == 30) {
            name[0] = 'l', name[1] = 'r';
        } else if (i < 10) {
            name[1] = (char)('0' + i);
        } else {
            name[1] = (char)('0' + i / 10), name[2] = (char)('0' + i % 10);
        }
        put_reg(t, &col, name, uc->uc_mcontext.regs[i]);
    }
    put_reg(t, &col, "fault", uc->uc_mcontext.fault_address);
#else
    (void)uc;
    put(t, "  (not decoded on this architecture)");
    col = 1;
#endif
    if (col)
        put_char(t, '\n');
}

/* -------------------------------------------------------------- backtrace */

typedef struct frame {
    uintptr_t pc;     /* as the unwinder gave it */
    uintptr_t lookup; /* pc, or pc - 1 for a return address (the call) */
    uintptr_t offset; /* lookup's offset in its module's file */
    int module;       /* index in the module table; -1: in no file */
} frame;

typedef struct frames {
    frame *f;
    int n;
    int first;     /* index of the interrupted frame, -1 if not found */
    long deeper;   /* frames beyond MAX_FRAMES, counted, not kept */
} frames;

static _Unwind_Reason_Code unwind_step(struct _Unwind_Context *ctx, void *arg)
{
    frames *fs = arg;
    int before_insn = 0;
    uintptr_t ip = (uintptr_t)_Unwind_GetIPInfo(ctx, &before_insn);
    if (!ip)
        return _URC_END_OF_STACK;
    if (fs->n == MAX_FRAMES) /* count the rest (a stack overflow) */
        return ++fs->deeper < MAX_COUNTED ? _URC_NO_REASON : _URC_END_OF_STACK;
    /* A frame whose ip is not a return address is the one the signal
     * interrupted: the frames before it are this handler's own. */
    if (before_insn && fs->first < 0)
        fs->first = fs->n;
    fs->f[fs->n++] = (frame){ip, before_insn ? ip : ip - 1, 0, -1};
    return _URC_NO_REASON;
}

/* The interrupted frame and its callers.  If the unwinder cannot cross the
 * signal frame, the pc from the context stands alone. */
static void capture(frames *fs, uintptr_t pc)
{
    fs->f = sigsafe_calloc(MAX_FRAMES, sizeof(frame));
    fs->n = 0;
    fs->first = -1;
    fs->deeper = 0;
    if (!fs->f)
        return;
    _Unwind_Backtrace(unwind_step, fs);
    if (fs->first >= 0) {
        memmove(fs->f, fs->f + fs->first,
                (size_t)(fs->n - fs->first) * sizeof(frame));
        fs->n -= fs->first;
    } else {
        fs->f[0] = (frame){pc, pc, 0, -1};
        fs->n = 1;
    }
}

/* ------------------------------------------------------ /proc/self/maps */

/*
 * One pass over /proc/self/maps, streamed through a small buffer (a big
 * process has megabytes of it): it finds each frame's module and offset,
 * and keeps the lines around `addr`.
 */
typedef struct module {
    char path[MODULE_PATH];
} module;

typedef struct scan {
    frames *fs;
    module *mods;
    int nmods;
    uintptr_t addr;
    text *around;                      /* the lines around addr */
    char prev[MAPS_CONTEXT][LINE_MAX_BYTES]; /* the last lines below addr */
    size_t prev_n[MAPS_CONTEXT];
    int nprev, placed, after;
} scan;

static uintptr_t parse_hex(const char **p, const char *end)
{
    uintptr_t v = 0;
    for (; *p < end; (*p)++) {
        char c = **p;
        unsigned d;
        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (unsigned)(c - 'a' + 10);
        else
            break;
        v = v * 16 + d;
    }
    return v;
}

static const char *next_field(const char *p, const char *end)
{
    while (p < end && *p != ' ')
        p++;
    while (p < end && *p == ' ')
        p++;
    return p;
}

static int module_index(scan *s, const char *path, size_t n)
{
    if (!n || path[0] != '/')
        return -1; /* anonymous, [stack], [vdso]: no file to look in */
    if (n >= MODULE_PATH)
        n = MODULE_PATH - 1;
    for (int i = 0; i < s->nmods; i++)
        if (!strncmp(s->mods[i].path, path, n) && !s->mods[i].path[n])
            return i;
    if (s->nmods == MAX_MODULES)
        return -1;
    memcpy(s->mods[s->nmods].path, path, n);
    s->mods[s->nmods].path[n] = '\0';
    return s->nmods++;
}

static void put_map_line(text *t, const char *mark, const char *l, size_t n)
{
    put(t, mark);
    put_mem(t, l, n);
    put_char(t, '\n');
}

static void flush_prev(scan *s)
{
    for (int i = 0; i < s->nprev; i++)
        put_map_line(s->around, "     ", s->prev[i], s->prev_n[i]);
    s->nprev = 0;
}

static void put_nowhere(scan *s, const char *where)
{
    put(s->around, "  => ");
    put_hex(s->around, s->addr);
    put(s->around, where);
}

static void on_map_line(scan *s, const char *l, size_t n)
{
    const char *p = l, *e = l + n;
    uintptr_t lo = parse_hex(&p, e);
    p += p < e && *p == '-';
    uintptr_t hi = parse_hex(&p, e);
    p = next_field(next_field(p, e), e); /* past the perms */
    uintptr_t off = parse_hex(&p, e);
    p = next_field(next_field(next_field(p, e), e), e); /* past dev, inode */
    for (int i = 0; i < s->fs->n; i++) {
        frame *f = &s->fs->f[i];
        if (f->module < 0 && f->lookup >= lo && f->lookup < hi) {
            f->module = module_index(s, p, (size_t)(e - p));
            f->offset = f->lookup - lo + off;
        }
    }
    if (s->placed) {
        if (s->after > 0) {
            put_map_line(s->around, "     ", l, n);
            s->after--;
        }
    } else if (s->addr >= lo && s->addr < hi) {
        flush_prev(s);
        put_map_line(s->around, "  => ", l, n);
        s->placed = 1;
        s->after = MAPS_CONTEXT;
    } else if (lo > s->addr) {
        flush_prev(s);
        put_nowhere(s, " is in no mapping\n");
        put_map_line(s->around, "     ", l, n);
        s->placed = 1;
        s->after = MAPS_CONTEXT - 1;
    } else {
        if (s->nprev == MAPS_CONTEXT) { /* drop the oldest */
            for (int i = 1; i < MAPS_CONTEXT; i++) {
                memcpy(s->prev[i - 1], s->prev[i], s->prev_n[i]);
                s->prev_n[i - 1] = s->prev_n[i];
            }
            s->nprev--;
        }
        if (n > LINE_MAX_BYTES)
            n = LINE_MAX_BYTES;
        memcpy(s->prev[s->nprev], l, n);
        s->prev_n[s->nprev++] = n;
    }
}

static int scan_maps(scan *s)
{
    char *chunk = sigsafe_alloc(4096), *line = sigsafe_alloc(LINE_MAX_BYTES);
    int fd = chunk && line ? open("/proc/self/maps", O_RDONLY | O_CLOEXEC)
                           : -1;
    size_t len = 0;
    if (fd >= 0) {
        for (;;) {
            ssize_t got = read(fd, chunk, 4096);
            if (got < 0 && errno == EINTR)
                continue;
            if (got <= 0)
                break;
            for (ssize_t i = 0; i < got; i++) {
                if (chunk[i] == '\n') {
                    on_map_line(s, line, len);
                    len = 0;
                } else if (len < LINE_MAX_BYTES) {
                    line[len++] = chunk[i]; /* longer lines are cut */
                }
            }
        }
        close(fd);
        if (!s->placed) {
            flush_prev(s);
            put_nowhere(s, " is above every mapping\n");
        }
    }
    sigsafe_free(line);
    sigsafe_free(chunk);
    return fd >= 0 ? 0 : -1;
}

static const char *base_name(const char *path)
{
    const char *b = path;
    for (; *path; path++)
        if (*path == '/')
            b = path + 1;
    return b;
}

static void put_backtrace(text *t, const frames *fs, const module *mods)
{
    put(t, fs->first < 0 ? "backtrace: (the unwinder did not reach the "
                           "signal frame: pc only)\n"
                         : "backtrace:\n");
    for (int i = 0; i < fs->n; i++) {
        const frame *f = &fs->f[i];
        int same = 0; /* identical frames that follow (deep recursion) */
        while (i + same + 1 < fs->n && fs->f[i + same + 1].pc == f->pc)
            same++;
        put(t, i < 10 ? "  #" : " #");
        put_dec(t, (uint64_t)i);
        put(t, "  ");
        put_addr(t, f->pc);
        put(t, "  ");
        if (f->module >= 0) {
            put(t, base_name(mods[f->module].path));
            put(t, "+");
            put_hex(t, f->offset);
        } else {
            put(t, "?");
        }
        put_char(t, '\n');
        if (same) {
            put(t, "      ... the same frame ");
            put_dec(t, (uint64_t)same);
            put(t, " more times (#");
            put_dec(t, (uint64_t)i + 1);
            put(t, " to #");
            put_dec(t, (uint64_t)(i + same));
            put(t, ")\n");
            i += same;
        }
    }
    if (fs->deeper) {
        put(t, "  ... ");
        put_dec(t, (uint64_t)fs->deeper);
        put(t, fs->deeper < MAX_COUNTED - 1 ? " deeper frames not shown\n"
                                            : " or more deeper frames\n");
    }
}

static void put_modules(text *t, const module *mods, int n)
{
    /* Offsets are file offsets of the pc, or of the call for a return
     * address: what addr2line -f -e PATH OFFSET expects. */
    put(t, "modules:\n");
    for (int i = 0; i < n; i++) {
        put(t, "  ");
        put(t, mods[i].path);
        put_char(t, '\n');
    }
}

/* ------------------------------------------------------------- the report */

typedef struct crash {
    int sig, code;
    int has_addr;
    uintptr_t addr;      /* si_addr */
    pid_t sender;        /* for SI_USER, SI_TKILL, SI_QUEUE */
    const ucontext_t *uc;
    const char *cause;   /* NULL, or what we know beyond the signal */
} crash;

static void put_header(text *t, const crash *c, long tid)
{
    put(t, "*** crash report: ");
    put(t, program);
    put(t, " (pid ");
    put_dec(t, (uint64_t)getpid());
    put(t, ", thread ");
    put_dec(t, (uint64_t)tid);
    put(t, ") ***\nsignal:   ");
    put(t, signal_name(c->sig));
    put(t, " (");
    put_dec(t, (uint64_t)c->sig);
    put(t, "), ");
    const code_name *cn = code_of(c->sig, c->code);
    if (cn) {
        put(t, cn->name);
        put(t, " (");
        put(t, cn->what);
        put(t, ")");
    } else {
        put(t, "code ");
        put_sdec(t, c->code);
    }
    if (c->code == SI_USER || c->code == SI_TKILL || c->code == SI_QUEUE) {
        put(t, " from pid ");
        put_dec(t, (uint64_t)c->sender);
    }
    put_char(t, '\n');
    if (c->has_addr) {
        put(t, c->sig == SIGSEGV || c->sig == SIGBUS ? "address:  "
                                                      : "at:       ");
        put_hex(t, c->addr);
        put_char(t, '\n');
    }
    if (c->cause) {
        put(t, "cause:    ");
        put(t, c->cause);
        put_char(t, '\n');
    }
    struct timespec now;
    if (clock_gettime(CLOCK_REALTIME, &now) == 0) {
        put(t, "time:     ");
        put_dec(t, (uint64_t)now.tv_sec);
        put_char(t, '.');
        put_num(t, (uint64_t)now.tv_nsec / 1000000, 10, 3);
        put(t, " s since the epoch\n");
    }
}

static void put_pool_stats(text *t)
{
    sigsafe_stats st;
    if (sigsafe_pool_stats(pool, &st) != 0)
        return;
    put(t, "pool \"crash\" (this report's memory): capacity ");
    put_dec(t, st.capacity);
    put(t, ", in use ");
    put_dec(t, st.bytes_in_use);
    put(t, ", peak ");
    put_dec(t, st.peak_bytes_in_use);
    put(t, ", mapped ");
    put_dec(t, st.bytes_mapped);
    put(t, ",\n  allocs ");
    put_dec(t, st.allocs);
    put(t, ", frees ");
    put_dec(t, st.frees);
    put(t, ", failed allocs ");
    put_dec(t, st.failed_allocs);
    put(t, ", rejected frees ");
    put_dec(t, st.rejected_frees);
    put_char(t, '\n');
}

static void write_all(int fd, const char *s, size_t n)
{
    while (n) {
        ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

static void write_str(int fd, const char *s)
{
    write_all(fd, s, strlen(s));
}

/* The file: a temporary name, then rename(2), so a reader never sees half
 * a report.  Returns 0 once the report is in place. */
static int save(const char *s, size_t n)
{
    if (!report_path[0])
        return -1;
    int fd = open(report_tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    write_all(fd, s, n);
    int ok = fsync(fd) == 0;
    ok &= close(fd) == 0;
    if (!ok || rename(report_tmp, report_path) != 0) {
        unlink(report_tmp);
        return -1;
    }
    return 0;
}

static void report(const crash *c, long tid)
{
    text t = {0}, around = {0};
    uintptr_t pc = c->uc ? context_pc(c->uc) : 0;
    frames fs;
    capture(&fs, pc);
    /* Around the fault address; for a signal without one, around the pc. */
    int data_fault = c->has_addr && (c->sig == SIGSEGV || c->sig == SIGBUS);
    scan *s = sigsafe_calloc(1, sizeof *s);
    module *mods = sigsafe_calloc(MAX_MODULES, sizeof *mods);
    int maps_ok = -1;
    if (s && mods && fs.f) {
        s->fs = &fs;
        s->mods = mods;
        s->addr = data_fault ? c->addr : pc;
        s->around = &around;
        maps_ok = scan_maps(s);
    }

    put_header(&t, c, tid);
    if (c->uc)
        put_registers(&t, c->uc);
    if (fs.f)
        put_backtrace(&t, &fs, mods);
    else
        put(&t, "backtrace: (no memory)\n");
    put(&t, "memory map around ");
    put_hex(&t, data_fault ? c->addr : pc);
    put(&t, maps_ok == 0 ? ":\n" : ": (/proc/self/maps unreadable)\n");
    if (around.buf)
        put_mem(&t, around.buf, around.len);
    if (s && mods)
        put_modules(&t, mods, s->nmods);
    put_pool_stats(&t);
    if (t.truncated || around.truncated)
        put(&t, "(report truncated: the crash pool ran out)\n");
    put(&t, "*** end of crash report ***\n");

    if (t.buf) {
        write_all(2, t.buf, t.len);
        if (save(t.buf, t.len) == 0) {
            write_str(2, "crash report saved to ");
            write_str(2, report_path);
            write_str(2, "\n");
        }
    } else {
        write_str(2, "*** crash report: no memory left in the crash pool "
                     "***\n");
    }
    sigsafe_free(mods);
    sigsafe_free(s);
    sigsafe_free(fs.f);
    sigsafe_free(around.buf);
    sigsafe_free(t.buf);
}

/* ----------------------------------------------------------- dying right */

/* Die of sig with the default action.  A fault that the kernel raised runs
 * again once we return, now without a handler: the exit status and a core
 * dump show the original instruction.  Anything else is raised again. */
static void die(int sig, int refault)
{
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, NULL);
    if (refault)
        return;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    raise(sig); /* pending while blocked in this handler ... */
    pthread_sigmask(SIG_UNBLOCK, &set, NULL); /* ... delivered here */
    _exit(128 + sig);                         /* not reached */
}

/* Only one report per process.  Another thread that crashes meanwhile waits
 * (a bounded time) for the first report to end the process. */
static int claim(long tid)
{
    long expect = 0;
    /* relaxed: the word only elects one reporter; it publishes nothing. */
    if (atomic_compare_exchange_strong_explicit(&reporter, &expect, tid,
                                                memory_order_relaxed,
                                                memory_order_relaxed))
        return 1;
    if (expect != tid) {
        struct timespec ms = {0, 1000000};
        for (int i = 0; i < OTHER_THREAD_WAIT_MS; i++)
            nanosleep(&ms, NULL);
    }
    return 0;
}

static void on_crash(int sig, siginfo_t *info, void *uctx)
{
    int saved = errno;
    long tid = syscall(SYS_gettid);
    int from_kernel = info && info->si_code > 0;
    int refault = from_kernel && sig != SIGTRAP && sig != SIGABRT;
    /* libsigsegv first: the guard line, or the stack-overflow report. */
    const struct sigaction *chain = sig == SIGSEGV ? &chain_segv
                                    : sig == SIGBUS ? &chain_bus
                                                    : NULL;
    if (from_kernel && chain && (chain->sa_flags & SA_SIGINFO) &&
        chain->sa_sigaction)
        chain->sa_sigaction(sig, info, uctx);
    if (claim(tid)) {
        crash c = {.sig = sig,
                   .code = info ? info->si_code : 0,
                   .has_addr = from_kernel && sig != SIGABRT,
                   .addr = info ? (uintptr_t)info->si_addr : 0,
                   .sender = info && !from_kernel ? info->si_pid : 0,
                   .uc = uctx,
                   .cause = NULL};
        report(&c, tid);
    }
    die(sig, refault);
    errno = saved;
}

/* Called by libsigsegv, on the alternate stack, for a stack overflow of the
 * thread that installed it.  Not through sigsafe_sigaction(), so it enters
 * the crash pool's context itself.  Must not return. */
static void on_stack_overflow(int emergency, stackoverflow_context_t uc)
{
    (void)emergency;
    long tid = syscall(SYS_gettid);
    uintptr_t addr = 0;
#if defined(__x86_64__)
    addr = (uintptr_t)uc->uc_mcontext.gregs[REG_CR2];
#elif defined(__aarch64__)
    addr = (uintptr_t)uc->uc_mcontext.fault_address;
#endif
    if (claim(tid)) {
        crash c = {.sig = SIGSEGV,
                   .code = SEGV_MAPERR,
                   .has_addr = addr != 0,
                   .addr = addr,
                   .uc = uc,
                   .cause = "stack overflow (caught by libsigsegv)"};
        sigsafe_context_enter(pool);
        report(&c, tid);
        sigsafe_context_leave();
    }
    die(SIGSEGV, 0);
}

/* ======================================================== set-up (not AS) */

static _Unwind_Reason_Code warm_step(struct _Unwind_Context *ctx, void *arg)
{
    (void)ctx;
    ++*(int *)arg;
    return _URC_NO_REASON;
}

static int copy_str(char *dst, size_t size, const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    if (na + nb + 1 > size)
        return ENAMETOOLONG;
    memcpy(dst, a, na);
    memcpy(dst + na, b, nb + 1);
    return 0;
}

static void remember_program(void)
{
    char buf[sizeof program] = "";
    int fd = open("/proc/self/comm", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n > 0)
            buf[n - (buf[n - 1] == '\n')] = '\0';
    }
    copy_str(program, sizeof program, buf[0] ? buf : "program", "");
}

int crash_report_thread_init(void)
{
    int err = sigsafe_altstack_install(altstack_size);
    /* EEXIST: the thread already has an alternate stack (a sanitizer's,
     * or the application's): use it rather than replace it. */
    return err == EEXIST ? 0 : err;
}

int crash_report_install(const crash_report_config *cfg)
{
    crash_report_config c = cfg ? *cfg : (crash_report_config){0};
    struct sigaction sa, old[NSIGNALS];
    size_t installed = 0;
    int err;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    if (pool)
        return EBUSY;
    report_path[0] = '\0';
    if (c.path && c.path[0]) {
        if ((err = copy_str(report_path, sizeof report_path, c.path, "")) ||
            (err = copy_str(report_tmp, sizeof report_tmp, c.path, ".tmp")))
            return err;
    }
    remember_program();

    /* 0. A pool of its own, so that a runaway profiler or a full default
     * pool cannot starve it, whose allocations never enter the kernel.  Its
     * pages fault in on first use (a page fault, not a system call); see
     * bytes_mapped before choosing SIGSAFE_POOL_PREFAULT, which commits
     * every size class up front. */
    sigsafe_pool_config pc = {
        .name = "crash",
        .capacity = c.capacity ? c.capacity : DEFAULT_CAPACITY,
        .flags = SIGSAFE_POOL_NO_SYSCALLS};
    if ((err = sigsafe_pool_create(&pc, &pool)))
        return err;
    altstack_size = c.altstack_size ? c.altstack_size : DEFAULT_ALTSTACK;
    if ((err = crash_report_thread_init()))
        goto destroy;

    /* libgcc initialises its unwinder on first use (pthread_once, and
     * possibly malloc): do it here, not in the handler. */
    int depth = 0;
    _Unwind_Backtrace(warm_step, &depth);

    /* 1. libsigsegv: the guard line, and stack overflow on the alternate
     * stack installed above. */
    if ((err = sigsafe_guard_watch()))
        goto destroy;
    stack_t ss;
    int overflow_watched =
        sigaltstack(NULL, &ss) == 0 && !(ss.ss_flags & SS_DISABLE) &&
        stackoverflow_install_handler(on_stack_overflow, ss.ss_sp,
                                      ss.ss_size) == 0;

    /* 2. Keep libsigsegv's handler, then put ours on top, bound to the
     * pool, on the alternate stack.  While it runs the other crash signals
     * wait: a fault in the handler itself kills the process at once
     * instead of recursing. */
    sigaction(SIGSEGV, NULL, &chain_segv);
    sigaction(SIGBUS, NULL, &chain_bus);
    sa.sa_sigaction = on_crash;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    for (size_t i = 0; i < NSIGNALS; i++)
        sigaddset(&sa.sa_mask, crash_signals[i]);
    for (; installed < NSIGNALS; installed++) {
        int sig = crash_signals[installed];
        if ((err = sigsafe_bind_signal(sig, pool)) ||
            (err = sigsafe_sigaction(sig, &sa, &old[installed])))
            goto restore;
    }
    return 0;

restore:
    for (size_t i = 0; i < NSIGNALS; i++) {
        if (i < installed)
            sigsafe_sigaction(crash_signals[i], &old[i], NULL);
        sigsafe_bind_signal(crash_signals[i], NULL);
    }
    if (overflow_watched) /* it also switches the alternate stack off */
        stackoverflow_deinstall_handler();
    sigsafe_guard_unwatch();
    sigsafe_altstack_uninstall();
destroy:
    sigsafe_pool_destroy(pool);
    pool = NULL;
    return err;
}

sigsafe_pool *crash_report_pool(void)
{
    return pool;
}
