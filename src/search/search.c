/* search.c — index catch-up from the store, query execution, result assembly. */
#include "search/search.h"
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CATCHUP_BATCH 20000

/* ---- settings ---- */

static cairn_status num_setting(const store_config *c, const char *sec, const char *key, double lo, double hi,
                                double *v)
{
    const char *s = store_config_get(c, sec, key);
    if (!s)
        return CAIRN_OK;
    char *e;
    double x = strtod(s, &e);
    if (e == s || *e || !(x >= lo && x <= hi))
        return cairn_fail(CAIRN_ERR_INVALID, "config [%s] %s = %s: expected a number in [%g, %g]", sec, key, s, lo, hi);
    *v = x;
    return CAIRN_OK;
}

cairn_status search_settings_load(store *s, search_settings *out)
{
    text_config_default(&out->analyzer);
    bm25_params_default(&out->params);
    out->title_weight = 2;
    const store_config *c = store_get_config(s);
    static const char *keys[] = {"stemmer", "stop", "accents"};
    for (size_t i = 0; i < CAIRN_ARRAY_LEN(keys); i++) {
        const char *v = store_config_get(c, "analyzer", keys[i]);
        if (v && text_config_set(&out->analyzer, keys[i], v) != CAIRN_OK)
            return cairn_fail_wrap(CAIRN_ERR_INVALID, "config [analyzer]");
    }
    double k1 = out->params.k1, b = out->params.b, tw = out->title_weight, fm = 64;
    CAIRN_TRY(num_setting(c, "bm25", "flush_mb", 4, 4096, &fm));
    out->flush_mb = (uint32_t)fm;
    CAIRN_TRY(num_setting(c, "bm25", "k1", 0, 100, &k1));
    CAIRN_TRY(num_setting(c, "bm25", "b", 0, 1, &b));
    CAIRN_TRY(num_setting(c, "bm25", "title_weight", 0, 100, &tw));
    out->params.k1 = (float)k1;
    out->params.b = (float)b;
    out->title_weight = (uint32_t)tw;
    return CAIRN_OK;
}

static void index_dir(store *s, char *out, size_t n)
{
    snprintf(out, n, "%s/index", store_dir(s));
}

/* ---- catch-up ---- */

typedef struct cu_ctx {
    bm25_writer *w;
    uint32_t title_weight;
    int64_t last_id, max_seq, first_seq;
    size_t n;
    char *buf;
    size_t cap;
} cu_ctx;

static cairn_status cu_deletion(void *ctx, int64_t seq, int64_t chunk_id)
{
    cu_ctx *c = ctx;
    if (seq > c->max_seq)
        c->max_seq = seq;
    if (c->first_seq == 0)
        c->first_seq = seq;
    c->n++;
    return chunk_id > 0 ? bm25_writer_delete(c->w, (uint64_t)chunk_id) : CAIRN_OK;
}

static cairn_status cu_chunk(void *ctx, const store_chunk_row *r)
{
    cu_ctx *c = ctx;
    /* Fields: the chunk text, and the document title + heading path as a
     * context field with its own weight. */
    bm25_field f[3];
    size_t nf = 0;
    f[nf++] = (bm25_field){r->text, r->text_len, 1};
    if (c->title_weight) {
        if (r->title && *r->title)
            f[nf++] = (bm25_field){r->title, strlen(r->title), c->title_weight};
        if (r->heading_path && *r->heading_path)
            f[nf++] = (bm25_field){r->heading_path, strlen(r->heading_path), c->title_weight};
    }
    c->last_id = r->id;
    c->n++;
    return bm25_writer_add(c->w, (uint64_t)r->id, f, nf);
}

cairn_status search_catch_up(store *s, search_catchup_stats *stats)
{
    search_settings set;
    CAIRN_TRY(search_settings_load(s, &set));
    return search_catch_up_with(s, &set, NULL, stats);
}

cairn_status search_catch_up_with(store *s, const search_settings *setp, const char *ixdir,
                                  search_catchup_stats *stats)
{
    search_catchup_stats local;
    if (!stats)
        stats = &local;
    memset(stats, 0, sizeof *stats);
    search_settings set = *setp;
    int64_t max_chunk, max_seq;
    CAIRN_TRY(store_marks(s, &max_chunk, &max_seq));
    char dir[4096];
    if (ixdir)
        snprintf(dir, sizeof dir, "%s", ixdir);
    else
        index_dir(s, dir, sizeof dir);
    bm25_index *ix;
    bool mismatch;
    cairn_status st = bm25_open(dir, &set.analyzer, &ix, &mismatch);
    if (st == CAIRN_ERR_CORRUPT) {
        /* Derived data: rebuild it from the store rather than fail. */
        CAIRN_WARN("%s; rebuilding the index from the store", cairn_last_error());
        CAIRN_TRY(bm25_destroy(dir));
        st = bm25_open(dir, &set.analyzer, &ix, &mismatch);
    }
    if (st != CAIRN_OK)
        return st;
    if (!mismatch && bm25_hwm(ix) >= (uint64_t)max_chunk && bm25_del_hwm(ix) >= (uint64_t)max_seq) {
        bm25_close(ix);     /* up to date: the common case costs one SELECT + a MANIFEST read */
        return CAIRN_OK;
    }
    bm25_writer *w;
    st = bm25_writer_open(ix, &w);
    if (st == CAIRN_ERR_BUSY) {
        bm25_close(ix);
        cairn_clear_error();
        stats->busy = true;
        return CAIRN_OK;
    }
    if (st != CAIRN_OK) {
        bm25_close(ix);
        return st;
    }
    /* bm25_writer_open reloaded the MANIFEST: re-check the configuration. */
    char a[256], b[256];
    text_config_str(&set.analyzer, a, sizeof a);
    text_config_str(bm25_config(ix), b, sizeof b);
    bool rebuild = strcmp(a, b) != 0;
    if (rebuild) {
        st = bm25_writer_reset(w, &set.analyzer);
        stats->rebuilt = true;
    }
    uint64_t from_chunk = rebuild ? 0 : bm25_hwm(ix);
    uint64_t from_seq = rebuild ? 0 : bm25_del_hwm(ix);
    bm25_set_flush_bytes((size_t)set.flush_mb << 20);
    cu_ctx c = {.w = w, .title_weight = set.title_weight, .last_id = (int64_t)from_chunk, .max_seq = (int64_t)from_seq};
    /* Deletions first, then chunks: a chunk deleted in between is either not
     * read, or its deletion has a higher seq and is applied next time. */
    /* An empty index (new, or its files deleted) has nothing to tombstone:
     * it reads the live chunks, like a rebuild. */
    bool empty = !rebuild && from_chunk == 0 && from_seq == 0 && bm25_n_segments(ix) == 0;
    if (st == CAIRN_OK && !rebuild && !empty)
        st = store_deletions_since(s, (int64_t)from_seq, cu_deletion, &c);
    /* The log's first entry must follow our mark (seqs are AUTOINCREMENT,
     * max_seq is its high-water mark); if entries we never saw were trimmed,
     * rebuild rather than keep chunks that are gone. */
    if (st == CAIRN_OK && !rebuild && !empty && max_seq > (int64_t)from_seq &&
        (c.first_seq == 0 || c.first_seq > (int64_t)from_seq + 1)) {
        CAIRN_WARN("%s: the store's deletion log was trimmed past the index; rebuilding the index", dir);
        st = bm25_writer_reset(w, &set.analyzer);
        rebuild = stats->rebuilt = true;
        from_chunk = 0;
        c.last_id = 0;
    }
    if (st == CAIRN_OK && (rebuild || empty))
        c.max_seq = max_seq;    /* a rebuild reads only live chunks */
    stats->deleted = c.n;
    c.n = 0;
    for (;;) {
        if (st != CAIRN_OK)
            break;
        size_t before = c.n;
        st = store_chunks_since(s, c.last_id, CATCHUP_BATCH, cu_chunk, &c);
        if (c.n - before < CATCHUP_BATCH)
            break;
    }
    stats->added = c.n;
    if (st == CAIRN_OK)
        st = bm25_writer_commit(w, (uint64_t)c.last_id, (uint64_t)c.max_seq);
    bm25_set_flush_bytes(0);
    /* The store's own index has applied the deletion log up to max_seq: the
     * log can be trimmed that far (store_deletions_ack keeps entries other
     * consumers still need). Housekeeping: a failure (e.g. the store busy
     * with another writer) leaves the log for the next catch-up. The eval
     * index (its own directory) is rebuilt per run and is no consumer. */
    if (st == CAIRN_OK && !ixdir) {
        /* Trimming the log writes the store: only under the writer lock (a
         * reader's catch-up takes it if free, else leaves it to the writer). */
        bool mine = !store_is_locked(s);
        cairn_status lk = mine ? store_lock_writer(s, "cairn search (index catch-up)", false) : CAIRN_OK;
        if (lk != CAIRN_OK || store_deletions_ack(s, "bm25", c.max_seq) != CAIRN_OK)
            cairn_clear_error();
        if (mine && lk == CAIRN_OK)
            store_unlock_writer(s);
    }
    bm25_writer_free(w);
    bm25_close(ix);
    return st == CAIRN_OK ? CAIRN_OK : cairn_fail_wrap(st, "updating the search index");
}

cairn_status search_derived_hook(store *s, void *ctx)
{
    (void)ctx;
    return search_catch_up(s, NULL);
}

/* ---- engine ---- */

static cairn_status snippet_impl(text_analyzer *a, const bm25_query *q, const char *text, size_t len, size_t words,
                                 int sentences, char **out, size_t **hl, size_t *n_hl);

struct search_engine {
    store *s;
    search_settings set;
    bm25_index *ix;
    text_analyzer *an;
    int32_t *doc_of;        /* chunk id -> document id (search_run_docs) */
    bm25_groups *groups;
    int context;            /* search_set_context: sentences around the snippet */
};

void search_set_context(search_engine *e, int sentences) { e->context = sentences > 0 ? sentences : 0; }

cairn_status search_open(store *s, search_engine **out)
{
    *out = NULL;
    search_engine *e = cairn_calloc(1, sizeof *e);
    if (!e)
        return cairn_fail(CAIRN_ERR_NOMEM, "search: out of memory");
    e->s = s;
    cairn_status st = search_settings_load(s, &e->set);
    if (st == CAIRN_OK) {
        st = search_catch_up(s, NULL);
        /* A catch-up that cannot write (a full disk, an I/O error) leaves
         * the last committed index intact: serve that, and say it is
         * behind, rather than fail every search. */
        if (st == CAIRN_ERR_IO || st == CAIRN_ERR_TOO_LARGE || st == CAIRN_ERR_BUSY) {
            CAIRN_WARN("%s; searching the last committed index (it may lack the newest changes)", cairn_last_error());
            cairn_clear_error();
            st = CAIRN_OK;
        }
    }
    char dir[4096];
    index_dir(s, dir, sizeof dir);
    bool mismatch;
    if (st == CAIRN_OK)
        st = bm25_open(dir, &e->set.analyzer, &e->ix, &mismatch);
    /* Queries must be analyzed like the index was (a rebuild may be pending
     * behind another writer). */
    if (st == CAIRN_OK)
        st = text_analyzer_new(bm25_config(e->ix), &e->an);
    if (st != CAIRN_OK) {
        search_close(e);
        return st;
    }
    *out = e;
    return CAIRN_OK;
}

void search_close(search_engine *e)
{
    if (!e)
        return;
    bm25_groups_free(e->groups);
    cairn_free(e->doc_of);
    bm25_close(e->ix);
    text_analyzer_free(e->an);
    cairn_free(e);
}

const bm25_index *search_index(const search_engine *e) { return e->ix; }
const search_settings *search_get_settings(const search_engine *e) { return &e->set; }

void search_results_free(search_results *r)
{
    for (size_t i = 0; i < r->n; i++) {
        store_hit_free(&r->r[i].hit);
        cairn_free(r->r[i].snippet);
        cairn_free(r->r[i].hl);
        for (size_t j = 0; j < r->r[i].n_dup_paths; j++)
            cairn_free(r->r[i].dup_paths[j]);
        cairn_free(r->r[i].dup_paths);
    }
    cairn_free(r->r);
    memset(r, 0, sizeof *r);
}

/* Append the stored row of a hit with its snippet to out->r (room for it is
 * there); a chunk deleted since the index was opened is skipped. */
static cairn_status add_result(search_engine *e, const bm25_query *q, uint64_t chunk_id, float score,
                               search_results *out)
{
    search_result *r = &out->r[out->n];
    cairn_status hs = store_hit_get(e->s, (int64_t)chunk_id, &r->hit);
    if (hs == CAIRN_ERR_NOT_FOUND) {
        cairn_clear_error();
        return CAIRN_OK;
    }
    if (hs == CAIRN_ERR_CORRUPT) {
        /* A damaged row is never shown: say so and go on with the rest. */
        CAIRN_WARN("%s", cairn_last_error());
        cairn_clear_error();
        return CAIRN_OK;
    }
    if (hs != CAIRN_OK)
        return hs;
    r->score = score;
    out->n++;
    return snippet_impl(e->an, q, r->hit.text, strlen(r->hit.text), 40, e->context, &r->snippet, &r->hl, &r->n_hl);
}

/* Chunk -> document map over the index's ids, from the store. */
static cairn_status load_groups(search_engine *e)
{
    uint64_t n_ids = bm25_hwm(e->ix) + 1;
    if (n_ids > (1ull << 31))
        return cairn_fail(CAIRN_ERR_TOO_LARGE, "search: chunk ids up to %llu", (unsigned long long)n_ids);
    e->doc_of = cairn_calloc(n_ids, sizeof *e->doc_of);
    if (!e->doc_of)
        return cairn_fail(CAIRN_ERR_NOMEM, "search: out of memory");
    for (uint64_t i = 0; i < n_ids; i++)
        e->doc_of[i] = -1;
    sqlite3 *db = store_db(e->s);
    sqlite3_stmt *q;
    /* No WHERE: the covering index chunks(doc_id, ord) answers this without
     * reading the chunks' text (a rowid range would scan the table). */
    if (sqlite3_prepare_v2(db, "SELECT id, doc_id FROM chunks", -1, &q, NULL) != SQLITE_OK)
        return cairn_fail(CAIRN_ERR_IO, "search: %s", sqlite3_errmsg(db));
    int64_t max_doc = -1;
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        int64_t c = sqlite3_column_int64(q, 0), d = sqlite3_column_int64(q, 1);
        if (c >= 0 && (uint64_t)c < n_ids && d >= 0 && d < INT32_MAX) {
            e->doc_of[c] = (int32_t)d;
            if (d > max_doc)
                max_doc = d;
        }
    }
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE)
        return cairn_fail(CAIRN_ERR_IO, "search: reading chunks: %s", sqlite3_errmsg(db));
    return bm25_groups_new(e->ix, e->doc_of, n_ids, (uint32_t)(max_doc + 1), &e->groups);
}

static cairn_status count_word(void *ctx, const char *t, size_t len, uint32_t pos, size_t s, size_t e)
{
    (void)t;
    (void)len;
    (void)pos;
    (void)s;
    (void)e;
    (*(size_t *)ctx)++;
    return CAIRN_OK;
}

/* Chunk search, or with `docs` document-level search shown by each
 * document's best chunk: the same steps around a different index call. */
static cairn_status run(search_engine *e, const char *query, const bm25_allowed *allowed, size_t k,
                        search_results *out, bool docs)
{
    memset(out, 0, sizeof *out);
    if (k == 0)
        return CAIRN_OK;
    if (k > 100000)
        return cairn_fail(CAIRN_ERR_INVALID, "k = %zu is too large (at most 100000)", k);
    int64_t t0 = cairn_mono_ns();
    if (docs && !e->groups)
        CAIRN_TRY(load_groups(e));
    bm25_query q = {0};
    cairn_status st = bm25_query_parse(&q, e->an, query, strlen(query));
    if (st == CAIRN_OK && q.n == 0) {
        /* words that all analyze away ("the who") are said so, not just "no results" */
        size_t words = 0;
        st = text_analyze_words(e->an, query, strlen(query), count_word, &words);
        out->only_stop_words = words > 0;
    }
    /* A few extra hits cover chunks deleted since the index was opened. */
    size_t want = k + 8;
    bm25_hit *hits = cairn_calloc(want, sizeof *hits);
    bm25_group_hit *ghits = docs ? cairn_calloc(want, sizeof *ghits) : NULL;
    size_t nh = 0;
    if (st == CAIRN_OK && (!hits || (docs && !ghits)))
        st = cairn_fail(CAIRN_ERR_NOMEM, "search: out of memory");
    if (st == CAIRN_OK && docs) {
        st = bm25_search_groups(e->ix, e->groups, &q, &e->set.params, 0, allowed, want, ghits, &nh);
        for (size_t i = 0; i < nh; i++) {
            hits[i].chunk_id = ghits[i].best_chunk;
            hits[i].score = ghits[i].score;
        }
    } else if (st == CAIRN_OK) {
        st = bm25_search(e->ix, &q, &e->set.params, allowed, want, hits, &nh, &out->stats);
    }
    if (st == CAIRN_OK && nh && !(out->r = cairn_calloc(nh, sizeof *out->r)))
        st = cairn_fail(CAIRN_ERR_NOMEM, "search: out of memory");
    for (size_t i = 0; i < nh && out->n < k && st == CAIRN_OK; i++)
        st = add_result(e, &q, hits[i].chunk_id, hits[i].score, out);
    out->took_ms = (double)(cairn_mono_ns() - t0) / 1e6;
    bm25_query_free(&q);
    cairn_free(hits);
    cairn_free(ghits);
    if (st != CAIRN_OK)
        search_results_free(out);
    return st;
}

cairn_status search_assemble(search_engine *e, const char *query, const uint64_t *ids, const float *scores,
                             size_t n, size_t k, search_results *out)
{
    memset(out, 0, sizeof *out);
    bm25_query q = {0};
    cairn_status st = bm25_query_parse(&q, e->an, query, strlen(query));
    if (st == CAIRN_OK && n && !(out->r = cairn_calloc(n, sizeof *out->r)))
        st = cairn_fail(CAIRN_ERR_NOMEM, "search: out of memory");
    for (size_t i = 0; i < n && out->n < k && st == CAIRN_OK; i++)
        st = add_result(e, &q, ids[i], scores[i], out);
    bm25_query_free(&q);
    if (st != CAIRN_OK)
        search_results_free(out);
    return st;
}

store *search_store(const search_engine *e) { return e->s; }

cairn_status search_bm25_hits(search_engine *e, const char *query, const bm25_allowed *allowed, size_t k,
                              bm25_hit *out, size_t *n_out)
{
    *n_out = 0;
    bm25_query q = {0};
    cairn_status st = bm25_query_parse(&q, e->an, query, strlen(query));
    if (st == CAIRN_OK)
        st = bm25_search(e->ix, &q, &e->set.params, allowed, k, out, n_out, NULL);
    bm25_query_free(&q);
    return st;
}

cairn_status search_run(search_engine *e, const char *query, const bm25_allowed *allowed, size_t k,
                        search_results *out)
{
    return run(e, query, allowed, k, out, false);
}

cairn_status search_run_docs(search_engine *e, const char *query, const bm25_allowed *allowed, size_t k,
                             search_results *out)
{
    return run(e, query, allowed, k, out, true);
}

size_t search_collapse_fetch(size_t k)
{
    size_t fetch = k * 3 + 16;
    if (fetch > k + 300)
        fetch = k + 300;
    if (k == 0 || k > 100000)
        fetch = k;
    return fetch;
}

cairn_status search_run_collapsed(search_engine *e, const char *query, const bm25_allowed *allowed, size_t k,
                                  bool docs, search_results *out)
{
    CAIRN_TRY(run(e, query, allowed, search_collapse_fetch(k), out, docs));
    cairn_status st = search_collapse(out, k);
    if (st != CAIRN_OK)
        search_results_free(out);
    return st;
}

/* ---- snippets ---- */

typedef struct wspan { size_t s, e; bool hit; } wspan;
typedef struct words_ctx { wspan *w; size_t n, cap; const bm25_query *q; } words_ctx;

static cairn_status on_word(void *ctx, const char *t, size_t len, uint32_t pos, size_t s, size_t e)
{
    words_ctx *c = ctx;
    if (c->n == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 256;
        wspan *w = cairn_reallocarray(c->w, nc, sizeof *w);
        if (!w)
            return cairn_fail(CAIRN_ERR_NOMEM, "snippet: out of memory");
        c->w = w;
        c->cap = nc;
    }
    bool hit = false;
    for (size_t i = 0; len && i < c->q->n && !hit; i++)
        hit = c->q->terms[i].len == len && !memcmp(c->q->terms[i].term, t, len);
    c->w[c->n++] = (wspan){s, e, hit};
    return CAIRN_OK;
}

/* A sentence ends at . ! ? followed by whitespace, or at a blank line. */
static bool sentence_end(const char *t, size_t len, size_t i)
{
    if ((t[i] == '.' || t[i] == '!' || t[i] == '?') && (i + 1 >= len || t[i + 1] == ' ' || t[i + 1] == '\n'))
        return true;
    return t[i] == '\n' && i + 1 < len && t[i + 1] == '\n';
}

cairn_status search_snippet(text_analyzer *a, const bm25_query *q, const char *text, size_t len, size_t words,
                            char **out, size_t **hl, size_t *n_hl)
{
    return snippet_impl(a, q, text, len, words, 0, out, hl, n_hl);
}

cairn_status search_snippet_context(text_analyzer *a, const bm25_query *q, const char *text, size_t len,
                                    size_t words, int sentences, char **out, size_t **hl, size_t *n_hl)
{
    return snippet_impl(a, q, text, len, words, sentences, out, hl, n_hl);
}

static cairn_status snippet_impl(text_analyzer *a, const bm25_query *q, const char *text, size_t len, size_t words,
                                 int sentences, char **out, size_t **hl, size_t *n_hl)
{
    *out = NULL;
    *hl = NULL;
    *n_hl = 0;
    words_ctx c = {.q = q};
    cairn_status st = text_analyze_words(a, text, len, on_word, &c);
    if (st != CAIRN_OK) {
        cairn_free(c.w);
        return st;
    }
    /* the window of `words` words with the most hits (first wins) */
    size_t best = 0, best_hits = 0, cur = 0;
    for (size_t i = 0; i < c.n; i++) {
        cur += c.w[i].hit;
        if (i >= words)
            cur -= c.w[i - words].hit;
        if (cur > best_hits) {
            best_hits = cur;
            best = i + 1 >= words ? i + 1 - words : 0;
        }
    }
    /* start a few words before the window's first hit */
    size_t ws = best;
    if (best_hits) {
        size_t fh = best;
        while (fh < c.n && !c.w[fh].hit)
            fh++;
        ws = fh >= 3 ? fh - 3 : 0;
    }
    size_t we = CAIRN_MIN(c.n, ws + words);
    size_t from = c.n ? c.w[ws].s : 0, to = c.n ? c.w[we - 1].e : CAIRN_MIN(len, (size_t)200);
    if (sentences > 0 && c.n) {
        /* -C N: out to the start of the window's sentence and N before it,
         * and to the end of its last sentence and N after it */
        int k = 0;
        while (from > 0) {
            if (sentence_end(text, len, from - 1) && k++ == sentences)
                break;
            from--;
        }
        while (from < len && (text[from] == ' ' || text[from] == '\n'))
            from++;
        k = 0;
        size_t i = to ? to - 1 : 0;
        while (i < len && !(sentence_end(text, len, i) && k++ == sentences))
            i++;
        to = i < len ? i + 1 : len;
        ws = 0;
        while (ws < c.n && c.w[ws].s < from)
            ws++;
        we = ws;
        while (we < c.n && c.w[we].e <= to)
            we++;
    }
    cairn_buf b;
    cairn_buf_init(&b, 0);
    size_t *h = cairn_calloc(2 * (we - ws) + 2, sizeof *h);
    size_t nh = 0;
    if (!h)
        st = cairn_fail(CAIRN_ERR_NOMEM, "snippet: out of memory");
    if (st == CAIRN_OK && from > 0)
        st = cairn_buf_puts(&b, "\xE2\x80\xA6 ");
    size_t wi = ws;
    bool space = false;
    for (size_t i = from; i < to && st == CAIRN_OK; i++) {
        char ch = text[i];
        if (wi < we && i == c.w[wi].s && c.w[wi].hit) {
            if (space)
                st = cairn_buf_putc(&b, ' ');
            space = false;
            h[nh++] = b.len;
        }
        if (ch == ' ' || ch == '\n' || ch == '\t' || ch == '\r') {
            space = b.len > 0;
        } else {
            if (space)
                st = cairn_buf_putc(&b, ' ');
            space = false;
            if (st == CAIRN_OK)
                st = cairn_buf_putc(&b, ch);
        }
        if (wi < we && i + 1 == c.w[wi].e) {
            if (c.w[wi].hit)
                h[nh++] = b.len;
            wi++;
        }
    }
    if (st == CAIRN_OK && to < len)
        st = cairn_buf_puts(&b, " \xE2\x80\xA6");
    if (st == CAIRN_OK && !b.data)
        st = cairn_buf_puts(&b, "");
    cairn_free(c.w);
    if (st != CAIRN_OK) {
        cairn_free(h);
        cairn_buf_free(&b);
        return st;
    }
    *out = cairn_buf_take(&b);
    *hl = h;
    *n_hl = nh / 2;
    return CAIRN_OK;
}
