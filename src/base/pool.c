/*
 * pool.c — persistent worker threads for compute kernels.
 *
 * Decode runs ~200 short matmuls per token (tens of microseconds each), so a
 * job must start and finish in well under a microsecond of overhead: workers
 * never exit between jobs. A job is published by bumping `gen`; workers spin
 * on it briefly, then yield (cheap when the core is free, and lets a
 * preempted thread run when cores are oversubscribed) for up to SPIN_NS,
 * then sleep on a futex, so an idle pool costs no CPU. The caller runs share
 * 0 itself, then waits for the workers that joined.
 *
 * Joining: `gate` holds the job's generation (high 32 bits), a CLOSED bit and
 * the number of workers that joined. A worker joins by CAS only while the
 * gate shows the generation it woke for and is open, then reads fn/arg (the
 * CAS acquires what the caller wrote before opening the gate). For
 * cairn_pool_run the gate stays open until all n-1 workers joined and
 * finished. For cairn_pool_run_dynamic the caller closes the gate as soon as
 * its own call returns and waits only for the workers already in: a worker
 * the OS has not scheduled yet costs nothing, instead of a whole time slice.
 * A late worker sees a closed gate or a newer generation and skips the job.
 * Such a miss means the machine is oversubscribed: for the next 256 jobs
 * waiting workers yield instead of busy-spinning (`contended`).
 *
 * Sleep/wake handshake: a worker increments `sleepers` before futex_wait(gen,
 * seen); the caller bumps gen before reading `sleepers` (both seq_cst), so
 * either the caller sees the sleeper and wakes it, or the worker's futex_wait
 * sees the new gen and returns at once. No lost wake-ups.
 *
 * Not reentrant: one run at a time per pool.
 */
#include "base/pool.h"
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define SPIN_NS 2000000   /* keep polling this long after a job before sleeping */
#define SPIN_PAUSES 1024  /* pure spinning before polling turns to sched_yield */
#define GATE_CLOSED 0x80000000u

struct cairn_pool {
    int n;                       /* threads including the caller */
    pthread_t *threads;          /* n - 1 workers */
    cairn_pool_fn fn;
    void *arg;
    _Alignas(64) _Atomic uint32_t gen;
    _Alignas(64) _Atomic uint64_t gate;   /* gen << 32 | CLOSED | joined */
    _Alignas(64) _Atomic int done;
    _Alignas(64) _Atomic int sleepers;
    _Atomic int contended;       /* > 0: recent jobs closed before all workers joined */
    _Atomic bool stop;
};

typedef struct { cairn_pool *p; int ith; } worker_arg;

static void futex_wait(_Atomic uint32_t *addr, uint32_t val)
{
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static void futex_wake_all(_Atomic uint32_t *addr)
{
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL, 0);
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Wait until gen != seen: spin, then yield, then after SPIN_NS sleep. Returns the new gen. */
static uint32_t wait_gen(cairn_pool *p, uint32_t seen)
{
    int64_t t0 = 0;
    for (unsigned i = 0;; i++) {
        uint32_t g = atomic_load_explicit(&p->gen, memory_order_acquire);
        if (g != seen)
            return g;
        /* busy-spinning only pays when we get a core of our own: on an
         * oversubscribed machine it burns CPU time our caller needs */
        if (i < SPIN_PAUSES && !atomic_load_explicit(&p->contended, memory_order_relaxed))
            cpu_relax();
        else
            sched_yield();
        if ((i & 255) == 255) {
            int64_t t = now_ns();
            if (!t0) {
                t0 = t;
            } else if (t - t0 > SPIN_NS) {
                atomic_fetch_add(&p->sleepers, 1);
                futex_wait(&p->gen, seen);
                atomic_fetch_sub(&p->sleepers, 1);
                t0 = 0;
            }
        }
    }
}

/* Join job `g` if its gate is still open for it. */
static bool try_join(cairn_pool *p, uint32_t g)
{
    uint64_t v = atomic_load_explicit(&p->gate, memory_order_acquire);
    for (;;) {
        if ((uint32_t)(v >> 32) != g || (v & GATE_CLOSED))
            return false;
        if (atomic_compare_exchange_weak_explicit(&p->gate, &v, v + 1, memory_order_acq_rel, memory_order_acquire))
            return true;
    }
}

static void *worker_main(void *v)
{
    worker_arg wa = *(worker_arg *)v;
    cairn_free(v);
    cairn_pool *p = wa.p;
    uint32_t seen = 0;
    for (;;) {
        seen = wait_gen(p, seen);
        if (atomic_load_explicit(&p->stop, memory_order_acquire))
            return NULL;
        if (!try_join(p, seen))
            continue;                                  /* closed without us, or superseded */
        p->fn(p->arg, wa.ith, p->n);
        atomic_fetch_add_explicit(&p->done, 1, memory_order_release);
    }
}

cairn_status cairn_pool_new(int n_threads, cairn_pool **out)
{
    *out = NULL;
    if (n_threads < 1 || n_threads > 1024)
        return cairn_fail(CAIRN_ERR_INVALID, "thread pool: %d threads (1..1024)", n_threads);
    cairn_pool *p = cairn_calloc(1, sizeof *p);
    if (!p)
        return cairn_fail(CAIRN_ERR_NOMEM, "thread pool: out of memory");
    p->n = 1;
    if (n_threads > 1) {
        p->threads = cairn_calloc((size_t)n_threads - 1, sizeof *p->threads);
        if (!p->threads) {
            cairn_free(p);
            return cairn_fail(CAIRN_ERR_NOMEM, "thread pool: out of memory");
        }
    }
    for (int i = 1; i < n_threads; i++) {
        worker_arg *wa = cairn_malloc(sizeof *wa);
        int rc = wa ? 0 : ENOMEM;
        if (wa) {
            wa->p = p;
            wa->ith = i;
            rc = pthread_create(&p->threads[i - 1], NULL, worker_main, wa);
            if (rc)
                cairn_free(wa);
        }
        if (rc) {
            cairn_pool_free(p);   /* joins the p->n - 1 started so far */
            return cairn_fail(rc == ENOMEM ? CAIRN_ERR_NOMEM : CAIRN_ERR_INTERNAL,
                              "thread pool: cannot start thread %d of %d", i, n_threads);
        }
        p->n = i + 1;
    }
    *out = p;
    return CAIRN_OK;
}

void cairn_pool_free(cairn_pool *p)
{
    if (!p)
        return;
    if (p->n > 1) {
        atomic_store(&p->stop, true);
        atomic_fetch_add(&p->gen, 1);
        futex_wake_all(&p->gen);
        for (int i = 0; i < p->n - 1; i++)
            pthread_join(p->threads[i], NULL);
    }
    cairn_free(p->threads);
    cairn_free(p);
}

int cairn_pool_size(const cairn_pool *p) { return p ? p->n : 1; }

static void wait_done(cairn_pool *p, int want)
{
    for (unsigned i = 0; atomic_load_explicit(&p->done, memory_order_acquire) != want; i++) {
        if (i < SPIN_PAUSES && !atomic_load_explicit(&p->contended, memory_order_relaxed))
            cpu_relax();
        else
            sched_yield();                        /* oversubscribed machine: let workers run */
    }
}

static void run(cairn_pool *p, cairn_pool_fn fn, void *arg, bool dynamic)
{
    if (!p || p->n == 1) {
        fn(arg, 0, 1);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    atomic_store_explicit(&p->done, 0, memory_order_relaxed);
    uint32_t g = atomic_load_explicit(&p->gen, memory_order_relaxed) + 1;
    atomic_store_explicit(&p->gate, (uint64_t)g << 32, memory_order_release);   /* open for job g */
    atomic_store(&p->gen, g);                     /* seq_cst: ordered before reading sleepers */
    if (atomic_load(&p->sleepers) > 0)
        futex_wake_all(&p->gen);
    fn(arg, 0, p->n);
    if (dynamic) {
        uint64_t v = atomic_fetch_or_explicit(&p->gate, GATE_CLOSED, memory_order_acq_rel);
        int joined = (int)(v & 0x7fffffffu);
        /* a worker that missed the job was not running: the machine is
         * oversubscribed, so workers poll politely for the next 256 jobs */
        int c = atomic_load_explicit(&p->contended, memory_order_relaxed);
        if (joined < p->n - 1)
            atomic_store_explicit(&p->contended, 256, memory_order_relaxed);
        else if (c > 0)
            atomic_store_explicit(&p->contended, c - 1, memory_order_relaxed);
        wait_done(p, joined);
    } else {
        wait_done(p, p->n - 1);
    }
}

void cairn_pool_run(cairn_pool *p, cairn_pool_fn fn, void *arg) { run(p, fn, arg, false); }
void cairn_pool_run_dynamic(cairn_pool *p, cairn_pool_fn fn, void *arg) { run(p, fn, arg, true); }
