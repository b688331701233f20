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

#endif
