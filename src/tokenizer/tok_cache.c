/*
 * tok_cache.c — a small shared cache of word -> token ids.
 *
 * BPE works word by word (and SentencePiece segment by segment), and the ids
 * of a word depend only on its bytes, so natural text — where a few thousand
 * words make up most of the running text — repeats the same merge work over
 * and over. The cache is direct-mapped (a new word simply replaces the old
 * one in its slot), holds words up to TOK_CACHE_WORD bytes giving at most
 * TOK_CACHE_IDS ids, and is guarded by striped mutexes so one tokenizer can
 * still be used from several threads at once. Cost: ~2.4 MiB per tokenizer.
 */
#include "tokenizer/tok_internal.h"

#include <pthread.h>
#include <string.h>

#define TOK_CACHE_SLOTS 32768   /* power of two */
#define TOK_CACHE_STRIPES 64

typedef struct cache_ent {
    uint64_t h;
    uint8_t wlen;            /* 0 = empty */
    uint8_t nids;
    char w[TOK_CACHE_WORD];
    int32_t ids[TOK_CACHE_IDS];
} cache_ent;

struct tok_cache {
    pthread_mutex_t lock[TOK_CACHE_STRIPES];
    cache_ent e[TOK_CACHE_SLOTS];
};

cairn_status tok_cache_new(tok_cache **out)
{
    tok_cache *c = cairn_calloc(1, sizeof *c);
    if (!c)
        return cairn_fail(CAIRN_ERR_NOMEM, "tokenizer: out of memory for the word cache");
    for (int i = 0; i < TOK_CACHE_STRIPES; i++)
        pthread_mutex_init(&c->lock[i], NULL);
    *out = c;
    return CAIRN_OK;
}

void tok_cache_free(tok_cache *c)
{
    if (!c)
        return;
    for (int i = 0; i < TOK_CACHE_STRIPES; i++)
        pthread_mutex_destroy(&c->lock[i]);
    cairn_free(c);
}

bool tok_cache_get(tok_cache *c, const char *w, size_t n, uint64_t h, int32_t *ids, size_t *nids)
{
    if (n == 0 || n > TOK_CACHE_WORD)
        return false;
    size_t slot = h & (TOK_CACHE_SLOTS - 1);
    pthread_mutex_t *m = &c->lock[slot % TOK_CACHE_STRIPES];
    const cache_ent *e = &c->e[slot];
    bool hit = false;
    pthread_mutex_lock(m);
    if (e->h == h && e->wlen == n && memcmp(e->w, w, n) == 0) {
        memcpy(ids, e->ids, e->nids * sizeof *ids);
        *nids = e->nids;
        hit = true;
    }
    pthread_mutex_unlock(m);
    return hit;
}

void tok_cache_put(tok_cache *c, const char *w, size_t n, uint64_t h, const int32_t *ids, size_t nids)
{
    if (n == 0 || n > TOK_CACHE_WORD || nids > TOK_CACHE_IDS)
        return;
    size_t slot = h & (TOK_CACHE_SLOTS - 1);
    pthread_mutex_t *m = &c->lock[slot % TOK_CACHE_STRIPES];
    cache_ent *e = &c->e[slot];
    pthread_mutex_lock(m);
    e->h = h;
    e->wlen = (uint8_t)n;
    e->nids = (uint8_t)nids;
    memcpy(e->w, w, n);
    memcpy(e->ids, ids, nids * sizeof *ids);
    pthread_mutex_unlock(m);
}
