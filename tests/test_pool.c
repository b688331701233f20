/* test_pool.c — the compute thread pool: every thread runs every job, jobs
 * see each other's writes, many back-to-back jobs, sleep/wake, failures. */
#include "t.h"
#include "base/pool.h"
#include <stdatomic.h>

typedef struct {
    int nth_seen[64];
    int calls[64];
    _Atomic long sum;
    _Atomic long next;
    long n;
} job;

static void each(void *arg, int ith, int nth)
{
    job *j = arg;
    j->nth_seen[ith] = nth;
    j->calls[ith]++;
}

static void sum_chunks(void *arg, int ith, int nth)
{
    job *j = arg;
    for (;;) {
        long c = atomic_fetch_add(&j->next, 1);
        if (c >= j->n)
            return;
        atomic_fetch_add(&j->sum, c);
    }
}

static void test_every_thread_runs(void)
{
    for (int n = 1; n <= 5; n++) {
        cairn_pool *p = NULL;
        CHECK_OK(cairn_pool_new(n, &p));
        CHECK_EQ_INT(cairn_pool_size(p), n);
        job j = {0};
        for (int k = 0; k < 100; k++)
            cairn_pool_run(p, each, &j);
        for (int i = 0; i < n; i++) {
            CHECK_EQ_INT(j.calls[i], 100);
            CHECK_EQ_INT(j.nth_seen[i], n);
        }
        CHECK_EQ_INT(j.calls[n], 0);
        cairn_pool_free(p);
    }
    job j = {0};
    cairn_pool_run(NULL, each, &j);   /* NULL pool: caller only */
    CHECK_EQ_INT(j.calls[0], 1);
    CHECK_EQ_INT(cairn_pool_size(NULL), 1);
}

static void test_many_jobs(void)
{
    cairn_pool *p = NULL;
    CHECK_OK(cairn_pool_new(3, &p));
    int bad = 0;
    for (int k = 0; k < 3000; k++) {
        job j = {.n = k % 50};
        cairn_pool_run(p, sum_chunks, &j);
        bad += atomic_load(&j.sum) != j.n * (j.n - 1) / 2;
    }
    CHECK_EQ_INT(bad, 0);
    /* let the workers fall asleep on the futex, then wake them */
    usleep(30 * 1000);
    job j = {.n = 1000};
    cairn_pool_run(p, sum_chunks, &j);
    CHECK_EQ_INT(atomic_load(&j.sum), 1000L * 999 / 2);
    cairn_pool_free(p);
    cairn_pool_free(NULL);
}

/* Dynamic jobs: the caller always runs, workers may skip, the work is done
 * exactly once; interleaved with static jobs that still reach every thread. */
static void test_dynamic(void)
{
    for (int n = 1; n <= 4; n++) {
        cairn_pool *p = NULL;
        CHECK_OK(cairn_pool_new(n, &p));
        int bad = 0, bad_static = 0;
        for (int k = 0; k < 3000; k++) {
            job j = {.n = k % 97};
            cairn_pool_run_dynamic(p, sum_chunks, &j);
            bad += atomic_load(&j.sum) != j.n * (j.n - 1) / 2;
            if (k % 10 == 0) {
                job e = {0};
                cairn_pool_run(p, each, &e);
                for (int i = 0; i < n; i++)
                    bad_static += e.calls[i] != 1;
            }
        }
        job e = {0};
        for (int k = 0; k < 50; k++)
            cairn_pool_run_dynamic(p, each, &e);
        CHECK_EQ_INT(e.calls[0], 50);
        for (int i = 1; i < n; i++)
            CHECK(e.calls[i] <= 50);
        CHECK_EQ_INT(bad, 0);
        CHECK_EQ_INT(bad_static, 0);
        cairn_pool_free(p);
    }
}

static void test_errors(void)
{
    cairn_pool *p = (cairn_pool *)1;
    CHECK(cairn_pool_new(0, &p) == CAIRN_ERR_INVALID && p == NULL);
    for (long n = 0; n < 6; n++) {
        cairn_alloc_fail_after(n, false);
        cairn_status st = cairn_pool_new(4, &p);
        long inj = cairn_alloc_injected_failures();
        cairn_alloc_fail_after(-1, false);
        if (inj) {
            CHECK(st == CAIRN_ERR_NOMEM && p == NULL);
        } else {
            CHECK_OK(st);
            job j = {.n = 10};
            cairn_pool_run(p, sum_chunks, &j);
            CHECK_EQ_INT(atomic_load(&j.sum), 45);
            cairn_pool_free(p);
        }
    }
}

int main(void)
{
    RUN(test_every_thread_runs);
    RUN(test_many_jobs);
    RUN(test_dynamic);
    RUN(test_errors);
    return t_done();
}
