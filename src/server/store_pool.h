/* store_pool.h — store + search handles lent to connection threads (store_pool.c). */
#ifndef CAIRN_SERVER_STORE_POOL_H
#define CAIRN_SERVER_STORE_POOL_H

#include "search/search.h"
#include "store/store.h"

#include <pthread.h>

typedef struct srv_store {
    store *s;
    search_engine *e;
    uint64_t gen;
    bool busy;
} srv_store;

typedef struct srv_store_pool srv_store_pool;

cairn_status store_pool_new(const char *db, int n, srv_store_pool **out);
void store_pool_free(srv_store_pool *p);
const char *store_pool_dir(const srv_store_pool *p);
/* Borrow a handle (blocks while all are lent); its engine sees every write
 * finished before the call. */
cairn_status store_pool_get(srv_store_pool *p, srv_store **out);
void store_pool_put(srv_store_pool *p, srv_store *h);
/* Writers: one at a time; `changed` makes every handle reopen its engine. */
void store_pool_write_begin(srv_store_pool *p);
void store_pool_write_end(srv_store_pool *p, bool changed);

#endif
