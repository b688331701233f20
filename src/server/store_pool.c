/*
 * store_pool.c — store and search handles for the connection threads.
 *
 * A store handle (SQLite connection) and a search engine are used by one
 * thread at a time, so the server keeps a few of each and lends them out
 * (blocking while all are lent). Writes (uploads, deletes) take the write
 * lock, change the store, bring the derived index up to date, then bump
 * the generation: each handle reopens its search engine on its next loan,
 * so a search after a write sees it.
 */
#include "server/store_pool.h"
#include "search/search.h"

#include <string.h>

/* Derived indexes catch up here after the server changed the store. */
static cairn_status derived_update(store *s, void *ctx)
{
    (void)ctx;
    return search_catch_up(s, NULL);
}

struct srv_store_pool {
    pthread_mutex_t mu, write_mu;
    pthread_cond_t cv;
    srv_store *h;
    int n;
    uint64_t gen;
    char *db;
};

cairn_status store_pool_new(const char *db, int n, srv_store_pool **out)
{
    *out = NULL;
    srv_store_pool *p = cairn_calloc(1, sizeof *p);
    if (!p)
        return cairn_fail(CAIRN_ERR_NOMEM, "serve: out of memory");
    pthread_mutex_init(&p->mu, NULL);
    pthread_mutex_init(&p->write_mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->n = n;
    p->gen = 1;
    p->db = cairn_strdup(db);
    p->h = cairn_calloc((size_t)n, sizeof *p->h);
    cairn_status st = p->db && p->h ? CAIRN_OK : cairn_fail(CAIRN_ERR_NOMEM, "serve: out of memory");
    for (int i = 0; st == CAIRN_OK && i < n; i++) {
        if ((st = store_open(db, &p->h[i].s)) == CAIRN_OK)
            store_set_derived_hook(p->h[i].s, derived_update, NULL);
        if (st == CAIRN_OK)
            st = search_open(p->h[i].s, &p->h[i].e);
        p->h[i].gen = p->gen;
    }
    if (st != CAIRN_OK) {
        store_pool_free(p);
        return st;
    }
    *out = p;
    return CAIRN_OK;
}

void store_pool_free(srv_store_pool *p)
{
    if (!p)
        return;
    for (int i = 0; p->h && i < p->n; i++) {
        search_close(p->h[i].e);
        store_close(p->h[i].s);
    }
    cairn_free(p->h);
    cairn_free(p->db);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    pthread_mutex_destroy(&p->write_mu);
    cairn_free(p);
}

const char *store_pool_dir(const srv_store_pool *p) { return p->db; }

cairn_status store_pool_get(srv_store_pool *p, srv_store **out)
{
    *out = NULL;
    pthread_mutex_lock(&p->mu);
    srv_store *h = NULL;
    for (;;) {
        for (int i = 0; i < p->n && !h; i++)
            if (!p->h[i].busy)
                h = &p->h[i];
        if (h)
            break;
        pthread_cond_wait(&p->cv, &p->mu);
    }
    h->busy = true;
    uint64_t gen = p->gen;
    pthread_mutex_unlock(&p->mu);
    if (h->gen != gen || !h->e) {           /* the store changed since this engine opened */
        search_close(h->e);
        h->e = NULL;
        cairn_status st = search_open(h->s, &h->e);
        if (st != CAIRN_OK) {
            store_pool_put(p, h);
            return st;
        }
        h->gen = gen;
    }
    *out = h;
    return CAIRN_OK;
}

void store_pool_put(srv_store_pool *p, srv_store *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&p->mu);
    h->busy = false;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

void store_pool_write_begin(srv_store_pool *p) { pthread_mutex_lock(&p->write_mu); }

void store_pool_write_end(srv_store_pool *p, bool changed)
{
    if (changed) {
        pthread_mutex_lock(&p->mu);
        p->gen++;
        pthread_mutex_unlock(&p->mu);
    }
    pthread_mutex_unlock(&p->write_mu);
}
