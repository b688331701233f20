/*
 * pool.h — a fixed thread pool for compute kernels.
 *
 * cairn_pool_run(pool, fn, arg) runs fn(arg, ith, nth) on every thread
 * (the caller is thread 0) and returns when all are done. Work inside fn is
 * usually split by an atomic chunk counter so fast threads take more.
 */
#ifndef CAIRN_POOL_H
#define CAIRN_POOL_H

#include "base/base.h"

typedef struct cairn_pool cairn_pool;
typedef void (*cairn_pool_fn)(void *arg, int ith, int nth);

cairn_status cairn_pool_new(int n_threads, cairn_pool **out);
void cairn_pool_free(cairn_pool *p);
int cairn_pool_size(const cairn_pool *p);
void cairn_pool_run(cairn_pool *p, cairn_pool_fn fn, void *arg);
/* For fn that claims all its work from a shared counter, so any thread can
 * do any part: returns as soon as the caller's own fn(arg, 0, nth) returned
 * and the workers that had already started are done. Workers that were not
 * running yet (descheduled on a busy machine) skip the job instead of
 * delaying it. fn must therefore be correct for any subset of ith values
 * that includes 0; nth is still the pool size. */
void cairn_pool_run_dynamic(cairn_pool *p, cairn_pool_fn fn, void *arg);

#endif
