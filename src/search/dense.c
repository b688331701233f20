/* dense.c — embeddings kept with the store (vectors.db), the derived vector
 * index (vectors.idx), and dense queries. See dense.h for the rules. */
#include "search/dense.h"
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define DENSE_MAX_TEXT (1u << 20)   /* bytes of one chunk handed to the embedder */

/* ---- settings ---- */

static cairn_status num(const store_config *c, const char *sec, const char *key, double lo, double hi, double *v)
{
    const char *s = store_config_get(c, sec, key);
    if (!s)
        return CAIRN_OK;
    char *e;
    double x = strtod(s, &e);
    if (e == s || *e || !(x >= lo && x <= hi) || x != (double)(long long)x)
        return cairn_fail(CAIRN_ERR_INVALID, "config [%s] %s = %s: expected a whole number in [%g, %g]", sec, key, s,
                          lo, hi);
    *v = x;
    return CAIRN_OK;
}

void dense_settings_free(dense_settings *d)
{
    cairn_free(d->model);
    cairn_free(d->query_prefix);
    cairn_free(d->doc_prefix);
    memset(d, 0, sizeof *d);
}

cairn_status dense_settings_load(store *s, dense_settings *out)
{
    memset(out, 0, sizeof *out);
    vec_params_default(&out->params);
    out->threads = 1;
    out->batch = 64;
    const store_config *c = store_get_config(s);
    const char *m = getenv("CAIRN_EMBED_MODEL");
    if (!m || !*m)
        m = store_config_get(c, "embed", "model");
    cairn_status st = CAIRN_OK;
    if (m && *m) {
        if (m[0] == '/') {
            out->model = cairn_strdup(m);
        } else {
            size_t n = strlen(store_root(s)) + strlen(m) + 2;
            out->model = cairn_malloc(n);
            if (out->model)
                snprintf(out->model, n, "%s/%s", store_root(s), m);
        }
        if (!out->model)
            st = cairn_fail(CAIRN_ERR_NOMEM, "config [embed]");
    }
    const char *qp = store_config_get(c, "embed", "query_prefix"), *dp = store_config_get(c, "embed", "doc_prefix");
    if (st == CAIRN_OK && qp && !(out->query_prefix = cairn_strdup(qp)))
        st = cairn_fail(CAIRN_ERR_NOMEM, "config [embed]");
    if (st == CAIRN_OK && dp && !(out->doc_prefix = cairn_strdup(dp)))
        st = cairn_fail(CAIRN_ERR_NOMEM, "config [embed]");
    double th = out->threads, b = out->batch, M = out->params.M, efc = out->params.ef_construction,
           ef = out->params.ef_search;
    if (st == CAIRN_OK)
        st = num(c, "embed", "threads", 1, 64, &th);
    if (st == CAIRN_OK)
        st = num(c, "embed", "batch", 1, 4096, &b);
    if (st == CAIRN_OK)
        st = num(c, "vector", "M", 2, 128, &M);
    if (st == CAIRN_OK)
        st = num(c, "vector", "ef_construction", 8, 4096, &efc);
    if (st == CAIRN_OK)
        st = num(c, "vector", "ef_search", 8, 65536, &ef);
    if (st != CAIRN_OK) {
        dense_settings_free(out);
        return st;
    }
    out->threads = (int)th;
    out->batch = (uint32_t)b;
    out->params.M = (uint32_t)M;
    out->params.ef_construction = (uint32_t)efc;
    out->params.ef_search = (uint32_t)ef;
    return CAIRN_OK;
}

/* ---- vectors.db ---- */

static cairn_status vfail(sqlite3 *db, const char *what)
{
    return cairn_fail(CAIRN_ERR_IO, "vectors.db: %s: %s", what, db ? sqlite3_errmsg(db) : "cannot open");
}

static cairn_status vexec(sqlite3 *db, const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
        cairn_status st = cairn_fail(CAIRN_ERR_IO, "vectors.db: %s", err ? err : "error");
        sqlite3_free(err);
        return st;
    }
    return CAIRN_OK;
}

static void path_in(const store *s, const char *name, char *out, size_t n)
{
    snprintf(out, n, "%s/%s", store_dir(s), name);
}

static cairn_status vdb_open(store *s, bool create, sqlite3 **out)
{
    *out = NULL;
    char p[4200];
    path_in(s, "vectors.db", p, sizeof p);
    if (!create && access(p, F_OK) != 0)
        return cairn_fail(CAIRN_ERR_NOT_FOUND, "no vectors.db");
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(p, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        cairn_status st = vfail(db, "open");
        sqlite3_close(db);
        return st;
    }
    sqlite3_busy_timeout(db, 10000);
    cairn_status st = vexec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                                "CREATE TABLE IF NOT EXISTS vec_state(key TEXT PRIMARY KEY, value);"
                                "CREATE TABLE IF NOT EXISTS vecs(chunk_id INTEGER PRIMARY KEY, v BLOB NOT NULL);");
    if (st != CAIRN_OK) {
        sqlite3_close(db);
        return cairn_fail_wrap(CAIRN_ERR_CORRUPT, "%s (delete it: it is rebuilt by re-embedding)", p);
    }
    *out = db;
    return CAIRN_OK;
}

static int64_t vstate_int(sqlite3 *db, const char *key, int64_t def)
{
    sqlite3_stmt *q;
    int64_t v = def;
    if (sqlite3_prepare_v2(db, "SELECT value FROM vec_state WHERE key = ?", -1, &q, NULL) != SQLITE_OK)
        return def;
    sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
    if (sqlite3_step(q) == SQLITE_ROW)
        v = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    return v;
}

static void vstate_text(sqlite3 *db, const char *key, char *out, size_t n)
{
    sqlite3_stmt *q;
    out[0] = 0;
    if (sqlite3_prepare_v2(db, "SELECT value FROM vec_state WHERE key = ?", -1, &q, NULL) != SQLITE_OK)
        return;
    sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
    if (sqlite3_step(q) == SQLITE_ROW && sqlite3_column_text(q, 0))
        snprintf(out, n, "%s", (const char *)sqlite3_column_text(q, 0));
    sqlite3_finalize(q);
}

static cairn_status vstate_set(sqlite3 *db, const char *key, const char *text, int64_t v)
{
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO vec_state(key, value) VALUES(?, ?)", -1, &q, NULL) !=
        SQLITE_OK)
        return vfail(db, "state");
    sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
    if (text)
        sqlite3_bind_text(q, 2, text, -1, SQLITE_STATIC);
    else
        sqlite3_bind_int64(q, 2, v);
    int rc = sqlite3_step(q);
    sqlite3_finalize(q);
    return rc == SQLITE_DONE ? CAIRN_OK : vfail(db, "state");
}

static int64_t vcount(sqlite3 *db)
{
    sqlite3_stmt *q;
    int64_t n = 0;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM vecs", -1, &q, NULL) == SQLITE_OK) {
        if (sqlite3_step(q) == SQLITE_ROW)
            n = sqlite3_column_int64(q, 0);
        sqlite3_finalize(q);
    }
    return n;
}

/* ---- the lock (embedding and writing vectors.idx: one process at a time) ---- */

static int lock_take(store *s)
{
    char p[4200];
    path_in(s, "vectors.lock", p, sizeof p);
    int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void lock_drop(int fd)
{
    if (fd >= 0)
        close(fd);
}

/* ---- deletions ---- */

typedef struct del_ctx {
    int64_t first, last, upto;
    uint64_t *ids;
    size_t n, cap;
} del_ctx;

static cairn_status on_del(void *ctx, int64_t seq, int64_t chunk_id)
{
    del_ctx *d = ctx;
    if (seq > d->upto)
        return CAIRN_OK;    /* logged after the snapshot: next time */
    if (!d->first)
        d->first = seq;
    d->last = seq;
    if (d->n == d->cap) {
        size_t nc = d->cap ? d->cap * 2 : 256;
        uint64_t *a = cairn_reallocarray(d->ids, nc, sizeof *a);
        if (!a)
            return cairn_fail(CAIRN_ERR_NOMEM, "vector catch-up: deletions");
        d->ids = a;
        d->cap = nc;
    }
    d->ids[d->n++] = (uint64_t)chunk_id;
    return CAIRN_OK;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Deleted chunk ids logged in (after, upto]; *trimmed when entries after
 * `after` were dropped from the log (the caller then cannot trust deltas). */
static cairn_status deletions(store *s, int64_t after, int64_t upto, del_ctx *d, bool *trimmed)
{
    memset(d, 0, sizeof *d);
    d->upto = upto;
    *trimmed = false;
    if (upto <= after)
        return CAIRN_OK;
    CAIRN_TRY(store_deletions_since(s, after, on_del, d));
    *trimmed = d->first == 0 || d->first > after + 1;
    qsort(d->ids, d->n, sizeof *d->ids, cmp_u64);
    return CAIRN_OK;
}

static bool del_has(const del_ctx *d, uint64_t id)
{
    return d->n && bsearch(&id, d->ids, d->n, sizeof id, cmp_u64) != NULL;
}

/* Remove vectors of deleted chunks from vectors.db (under the lock). */
static cairn_status vdb_gc(store *s, sqlite3 *db, int64_t max_seq, uint64_t *removed)
{
    int64_t from = vstate_int(db, "del_seq", 0);
    if (from >= max_seq)
        return CAIRN_OK;
    del_ctx d;
    bool trimmed;
    cairn_status st = deletions(s, from, max_seq, &d, &trimmed);
    sqlite3_stmt *del = NULL;
    if (st == CAIRN_OK)
        st = vexec(db, "BEGIN IMMEDIATE");
    if (st == CAIRN_OK && sqlite3_prepare_v2(db, "DELETE FROM vecs WHERE chunk_id = ?", -1, &del, NULL) != SQLITE_OK)
        st = vfail(db, "delete");
    for (size_t i = 0; st == CAIRN_OK && i < d.n; i++) {
        sqlite3_bind_int64(del, 1, (int64_t)d.ids[i]);
        if (sqlite3_step(del) != SQLITE_DONE)
            st = vfail(db, "delete");
        *removed += (uint64_t)sqlite3_changes(db);
        sqlite3_reset(del);
    }
    if (st == CAIRN_OK && trimmed) {
        /* log entries we never saw were trimmed: keep only vectors of live chunks */
        sqlite3_stmt *all = NULL, *live = NULL;
        if (sqlite3_prepare_v2(db, "SELECT chunk_id FROM vecs", -1, &all, NULL) != SQLITE_OK ||
            sqlite3_prepare_v2(store_db(s), "SELECT 1 FROM chunks WHERE id = ?", -1, &live, NULL) != SQLITE_OK)
            st = vfail(db, "scan");
        uint64_t *gone = NULL;
        size_t ng = 0, cap = 0;
        while (st == CAIRN_OK && sqlite3_step(all) == SQLITE_ROW) {
            int64_t id = sqlite3_column_int64(all, 0);
            sqlite3_bind_int64(live, 1, id);
            bool alive = sqlite3_step(live) == SQLITE_ROW;
            sqlite3_reset(live);
            if (alive)
                continue;
            if (ng == cap) {
                cap = cap ? cap * 2 : 256;
                uint64_t *a = cairn_reallocarray(gone, cap, sizeof *a);
                if (!a) {
                    st = cairn_fail(CAIRN_ERR_NOMEM, "vectors.db scan");
                    break;
                }
                gone = a;
            }
            gone[ng++] = (uint64_t)id;
        }
        sqlite3_finalize(all);
        sqlite3_finalize(live);
        for (size_t i = 0; st == CAIRN_OK && i < ng; i++) {
            sqlite3_bind_int64(del, 1, (int64_t)gone[i]);
            if (sqlite3_step(del) != SQLITE_DONE)
                st = vfail(db, "delete");
            *removed += (uint64_t)sqlite3_changes(db);
            sqlite3_reset(del);
        }
        cairn_free(gone);
    }
    sqlite3_finalize(del);
    if (st == CAIRN_OK)
        st = vstate_set(db, "del_seq", NULL, max_seq);
    if (st == CAIRN_OK)
        st = vexec(db, "COMMIT");
    else
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    cairn_free(d.ids);
    return st;
}

/* ---- embedding ---- */

typedef struct emb_batch {
    const dense_settings *set;
    const char *prefix;
    char **texts;
    size_t *lens;
    int64_t *ids;
    int n, cap;
} emb_batch;

static cairn_status on_chunk(void *ctx, const store_chunk_row *r)
{
    emb_batch *b = ctx;
    if (b->n == b->cap)
        return CAIRN_OK;
    cairn_buf t;
    cairn_buf_init(&t, DENSE_MAX_TEXT);
    cairn_status st = cairn_buf_puts(&t, b->prefix);
    /* the document title and heading path give a chunk its context, as the
     * title field does for BM25 */
    if (st == CAIRN_OK && r->title && *r->title)
        st = cairn_buf_printf(&t, "%s. ", r->title);
    if (st == CAIRN_OK && r->heading_path && *r->heading_path)
        st = cairn_buf_printf(&t, "%s. ", r->heading_path);
    if (st == CAIRN_OK)
        st = cairn_buf_append(&t, r->text, CAIRN_MIN(r->text_len, (size_t)DENSE_MAX_TEXT - t.len - 1));
    if (st == CAIRN_OK && !t.data)
        st = cairn_buf_puts(&t, "");
    if (st != CAIRN_OK) {
        cairn_buf_free(&t);
        if (st == CAIRN_ERR_TOO_LARGE) {
            cairn_clear_error();
            return CAIRN_OK;    /* cannot happen: capped above */
        }
        return st;
    }
    b->lens[b->n] = t.len;
    b->texts[b->n] = cairn_buf_take(&t);
    b->ids[b->n] = r->id;
    b->n++;
    return CAIRN_OK;
}

static void batch_clear(emb_batch *b)
{
    for (int i = 0; i < b->n; i++)
        cairn_free(b->texts[i]);
    b->n = 0;
}

static cairn_status embed_missing(store *s, sqlite3 *db, const dense_settings *set, cairn_embedder *e,
                                  dense_progress_fn fn, void *fn_ctx, dense_stats *stats)
{
    int64_t mark = vstate_int(db, "mark", 0);
    sqlite3_stmt *q;
    int64_t todo = 0;
    if (sqlite3_prepare_v2(store_db(s), "SELECT count(*) FROM chunks WHERE id > ?", -1, &q, NULL) != SQLITE_OK)
        return cairn_fail(CAIRN_ERR_IO, "store: %s", sqlite3_errmsg(store_db(s)));
    sqlite3_bind_int64(q, 1, mark);
    if (sqlite3_step(q) == SQLITE_ROW)
        todo = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    stats->to_embed = (uint64_t)todo;
    if (todo == 0)
        return CAIRN_OK;
    int dim = embedder_dim(e);
    int cap = (int)set->batch;
    emb_batch b = {.set = set, .cap = cap,
                   .prefix = set->doc_prefix ? set->doc_prefix : embedder_doc_prefix(e)};
    b.texts = cairn_calloc((size_t)cap, sizeof *b.texts);
    b.lens = cairn_calloc((size_t)cap, sizeof *b.lens);
    b.ids = cairn_calloc((size_t)cap, sizeof *b.ids);
    float *out = cairn_calloc((size_t)cap * (size_t)dim, sizeof *out);
    sqlite3_stmt *ins = NULL;
    cairn_status st = CAIRN_OK;
    if (!b.texts || !b.lens || !b.ids || !out)
        st = cairn_fail(CAIRN_ERR_NOMEM, "embedding: out of memory");
    if (st == CAIRN_OK &&
        sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO vecs(chunk_id, v) VALUES(?, ?)", -1, &ins, NULL) != SQLITE_OK)
        st = vfail(db, "insert");
    uint64_t done = 0;
    if (fn && st == CAIRN_OK)
        fn(fn_ctx, 0, (uint64_t)todo);
    while (st == CAIRN_OK) {
        batch_clear(&b);
        st = store_chunks_since(s, mark, (size_t)cap, on_chunk, &b);
        if (st != CAIRN_OK || b.n == 0)
            break;
        embed_stats es;
        st = embedder_embed(e, NULL, (const char *const *)b.texts, b.lens, b.n, out, &es);
        if (st != CAIRN_OK)
            break;
        stats->truncated += es.n_truncated;
        /* one transaction per batch: vectors and the mark together, so a
         * killed run resumes after the last committed batch */
        st = vexec(db, "BEGIN IMMEDIATE");
        for (int i = 0; st == CAIRN_OK && i < b.n; i++) {
            sqlite3_bind_int64(ins, 1, b.ids[i]);
            sqlite3_bind_blob(ins, 2, out + (size_t)i * dim, (int)(dim * sizeof *out), SQLITE_STATIC);
            if (sqlite3_step(ins) != SQLITE_DONE)
                st = vfail(db, "insert");
            sqlite3_reset(ins);
        }
        mark = b.ids[b.n - 1];
        if (st == CAIRN_OK)
            st = vstate_set(db, "mark", NULL, mark);
        if (st == CAIRN_OK)
            st = vexec(db, "COMMIT");
        else
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        done += (uint64_t)b.n;
        stats->embedded += (uint64_t)b.n;
        if (fn && st == CAIRN_OK)
            fn(fn_ctx, done, (uint64_t)todo > done ? (uint64_t)todo : done);
        if (b.n < cap)
            break;
    }
    batch_clear(&b);
    sqlite3_finalize(ins);
    cairn_free(b.texts);
    cairn_free(b.lens);
    cairn_free(b.ids);
    cairn_free(out);
    if (stats->truncated)
        CAIRN_WARN("embedding: %llu of %llu chunks were longer than the model's %d-token context and were truncated",
                   (unsigned long long)stats->truncated, (unsigned long long)stats->embedded, embedder_n_ctx(e));
    return st;
}

/* ---- the index ---- */

/* Bring ix (loaded from vectors.idx, or NULL) up to date with vectors.db and
 * the store's deletion log up to max_seq. *changed when it differs from the
 * file. */
static cairn_status index_catch_up(store *s, sqlite3 *db, const dense_settings *set, const char *model, int dim,
                                   int64_t max_seq, vec_index **ixp, vec_file_info *info, bool *changed,
                                   dense_stats *stats)
{
    char p[4200];
    path_in(s, "vectors.idx", p, sizeof p);
    vec_index *ix = NULL;
    cairn_status st = vec_index_load(p, &ix, info);
    bool rebuild = false;
    if (st == CAIRN_ERR_NOT_FOUND) {
        cairn_clear_error();
        rebuild = true;
        st = CAIRN_OK;
    } else if (st == CAIRN_ERR_CORRUPT) {
        CAIRN_WARN("%s; rebuilding the vector index from vectors.db", cairn_last_error());
        cairn_clear_error();
        rebuild = stats->index_rebuilt = true;
        st = CAIRN_OK;
    } else if (st != CAIRN_OK) {
        return st;
    } else if (strcmp(info->model, model) != 0 || (int)vec_index_dim(ix) != dim) {
        CAIRN_WARN("%s: built with %s (dimension %u), the vectors are %s (dimension %d); rebuilding the vector index",
                   p, info->model, vec_index_dim(ix), model, dim);
        rebuild = stats->index_rebuilt = true;
    }
    del_ctx d = {0};
    bool trimmed = false;
    if (!rebuild) {
        st = deletions(s, (int64_t)info->del_hwm, max_seq, &d, &trimmed);
        if (st == CAIRN_OK && trimmed) {
            CAIRN_WARN("%s: the store's deletion log was trimmed past the vector index; rebuilding it", p);
            rebuild = stats->index_rebuilt = true;
        }
    }
    if (st == CAIRN_OK && rebuild) {
        vec_index_free(ix);
        ix = NULL;
        memset(info, 0, sizeof *info);
        st = vec_index_new((uint32_t)dim, &set->params, &ix);
        *changed = true;
        cairn_free(d.ids);
        memset(&d, 0, sizeof d);
    }
    for (size_t i = 0; st == CAIRN_OK && i < d.n; i++) {
        bool found;
        st = vec_index_delete(ix, d.ids[i], &found);
        *changed |= found;
    }
    if (st == CAIRN_OK && (int64_t)info->del_hwm != max_seq && max_seq > (int64_t)info->del_hwm)
        *changed = true;
    sqlite3_stmt *q = NULL;
    if (st == CAIRN_OK &&
        sqlite3_prepare_v2(db, "SELECT chunk_id, v FROM vecs WHERE chunk_id > ? ORDER BY chunk_id", -1, &q, NULL) !=
            SQLITE_OK)
        st = vfail(db, "read");
    uint64_t hwm = info->hwm;
    if (st == CAIRN_OK)
        sqlite3_bind_int64(q, 1, (int64_t)info->hwm);
    int rc = SQLITE_DONE;
    while (st == CAIRN_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        uint64_t id = (uint64_t)sqlite3_column_int64(q, 0);
        const void *v = sqlite3_column_blob(q, 1);
        int n = sqlite3_column_bytes(q, 1);
        if (n != dim * (int)sizeof(float) || !v) {
            st = cairn_fail(CAIRN_ERR_CORRUPT, "vectors.db: chunk %llu has a vector of %d bytes, expected %d "
                                               "(delete .cairn/vectors.db to re-embed)",
                            (unsigned long long)id, n, dim * (int)sizeof(float));
            break;
        }
        hwm = id;
        if (del_has(&d, id) || vec_index_contains(ix, id))
            continue;   /* deleted since it was embedded */
        float buf[4096];
        memcpy(buf, v, (size_t)n);
        st = vec_index_add(ix, id, buf);
        *changed = true;
    }
    if (st == CAIRN_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
        st = vfail(db, "read");
    sqlite3_finalize(q);
    cairn_free(d.ids);
    if (st == CAIRN_OK && vec_index_dead_ratio(ix) > 0.3) {
        st = vec_index_compact(ix);
        *changed = true;
    }
    if (st != CAIRN_OK) {
        vec_index_free(ix);
        return st;
    }
    info->hwm = hwm;
    if (max_seq > (int64_t)info->del_hwm)
        info->del_hwm = (uint64_t)max_seq;
    snprintf(info->model, sizeof info->model, "%s", model);
    *ixp = ix;
    return CAIRN_OK;
}

/* Deletions to vectors.db, embedding (when e), the index; keeps the index
 * when ixp. */
static cairn_status catch_up(store *s, const dense_settings *set, cairn_embedder *e, dense_progress_fn fn,
                             void *fn_ctx, dense_stats *stats, vec_index **ixp)
{
    sqlite3 *db = NULL;
    CAIRN_TRY(vdb_open(s, true, &db));
    int lock = lock_take(s);
    stats->busy = lock < 0;
    int64_t max_chunk, max_seq;
    cairn_status st = store_marks(s, &max_chunk, &max_seq);
    char model[128];
    vstate_text(db, "model", model, sizeof model);
    int dim = (int)vstate_int(db, "dim", 0);
    if (st == CAIRN_OK && e && lock >= 0) {
        const char *id = embedder_id(e);
        if (!*model || strcmp(model, id) != 0) {
            if (*model) {
                CAIRN_WARN("the embedding model changed (%s -> %s): re-embedding all %llu chunks", model, id,
                           (unsigned long long)vcount(db));
                stats->model_changed = true;
            }
            st = vexec(db, "BEGIN IMMEDIATE");
            if (st == CAIRN_OK)
                st = vexec(db, "DELETE FROM vecs");
            if (st == CAIRN_OK)
                st = vstate_set(db, "model", id, 0);
            if (st == CAIRN_OK)
                st = vstate_set(db, "dim", NULL, embedder_dim(e));
            if (st == CAIRN_OK)
                st = vstate_set(db, "mark", NULL, 0);
            if (st == CAIRN_OK)
                st = vstate_set(db, "del_seq", NULL, max_seq);
            if (st == CAIRN_OK)
                st = vexec(db, "COMMIT");
            else
                sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            snprintf(model, sizeof model, "%s", id);
            dim = embedder_dim(e);
        }
    } else if (st == CAIRN_OK && e && *model && strcmp(model, embedder_id(e)) != 0) {
        st = cairn_fail(CAIRN_ERR_BUSY, "the store's vectors are being re-embedded by another process");
    }
    if (st == CAIRN_OK && lock >= 0 && *model)
        st = vdb_gc(s, db, max_seq, &stats->deleted);
    if (st == CAIRN_OK && e && lock >= 0)
        st = embed_missing(s, db, set, e, fn, fn_ctx, stats);
    vec_index *ix = NULL;
    vec_file_info info;
    bool changed = false;
    if (st == CAIRN_OK && *model && dim > 0)
        st = index_catch_up(s, db, set, model, dim, max_seq, &ix, &info, &changed, stats);
    if (st == CAIRN_OK && ix && changed && lock >= 0) {
        char p[4200];
        path_in(s, "vectors.idx", p, sizeof p);
        st = vec_index_save(ix, p, &info);
        if (st == CAIRN_OK && store_deletions_ack(s, "vec", (int64_t)info.del_hwm) != CAIRN_OK)
            cairn_clear_error();    /* housekeeping: the log is trimmed next time */
    }
    lock_drop(lock);
    sqlite3_close(db);
    if (st == CAIRN_OK && ixp)
        *ixp = ix;
    else
        vec_index_free(ix);
    return st == CAIRN_OK ? CAIRN_OK : cairn_fail_wrap(st, "dense index");
}

cairn_status dense_catch_up(store *s, const dense_settings *set, cairn_embedder *e, dense_progress_fn fn,
                            void *fn_ctx, dense_stats *st)
{
    dense_stats local;
    if (!st)
        st = &local;
    memset(st, 0, sizeof *st);
    return catch_up(s, set, e, fn, fn_ctx, st, NULL);
}

/* ---- queries ---- */

struct dense_engine {
    dense_settings set;
    bool own_set, own_e;
    cairn_embedder *e;
    vec_index *ix;
    char *prefix;
};

cairn_status dense_open_with(store *s, const dense_settings *set, cairn_embedder *e, dense_engine **out)
{
    *out = NULL;
    dense_engine *d = cairn_calloc(1, sizeof *d);
    if (!d)
        return cairn_fail(CAIRN_ERR_NOMEM, "dense search");
    d->set = *set;
    d->e = e;
    sqlite3 *db = NULL;
    cairn_status st = vdb_open(s, true, &db);
    char model[128] = "";
    if (st == CAIRN_OK) {
        vstate_text(db, "model", model, sizeof model);
        sqlite3_close(db);
    }
    if (st == CAIRN_OK && *model && strcmp(model, embedder_id(e)) != 0)
        st = cairn_fail(CAIRN_ERR_INVALID, "the store's vectors were made with %s, not %s: run 'cairn sync' to "
                                           "re-embed them", model, embedder_id(e));
    dense_stats ds = {0};
    if (st == CAIRN_OK)
        st = catch_up(s, set, NULL, NULL, NULL, &ds, &d->ix);
    if (st == CAIRN_OK && !d->ix)
        st = vec_index_new((uint32_t)embedder_dim(e), &set->params, &d->ix);   /* nothing embedded yet */
    if (st != CAIRN_OK) {
        d->own_set = false;
        dense_close(d);
        return st;
    }
    *out = d;
    return CAIRN_OK;
}

cairn_status dense_open(store *s, dense_engine **out)
{
    *out = NULL;
    dense_settings set;
    CAIRN_TRY(dense_settings_load(s, &set));
    if (!set.model) {
        dense_settings_free(&set);
        return cairn_fail(CAIRN_ERR_INVALID, "this store has no embedding model: set one with 'cairn init "
                                             "--embed-model PATH' or [embed] model = PATH in .cairn/config");
    }
    embed_opts eo = {.n_threads = set.threads};
    cairn_embedder *e = NULL;
    cairn_status st = embedder_load(set.model, &eo, &e);
    if (st != CAIRN_OK) {
        dense_settings_free(&set);
        return cairn_fail_wrap(st, "embedding model");
    }
    st = dense_open_with(s, &set, e, out);
    if (st != CAIRN_OK) {
        embedder_free(e);
        dense_settings_free(&set);
        return st;
    }
    (*out)->own_set = (*out)->own_e = true;
    return CAIRN_OK;
}

void dense_close(dense_engine *d)
{
    if (!d)
        return;
    vec_index_free(d->ix);
    if (d->own_e)
        embedder_free(d->e);
    if (d->own_set)
        dense_settings_free(&d->set);
    cairn_free(d->prefix);
    cairn_free(d);
}

cairn_embedder *dense_embedder(dense_engine *d) { return d->e; }
vec_index *dense_index(dense_engine *d) { return d->ix; }

cairn_status dense_search(dense_engine *d, const char *query, const bm25_allowed *allowed, size_t k, vec_hit *out,
                          size_t *n_out)
{
    *n_out = 0;
    const char *pre = d->set.query_prefix ? d->set.query_prefix : embedder_query_prefix(d->e);
    cairn_buf t;
    cairn_buf_init(&t, DENSE_MAX_TEXT);
    cairn_status st = cairn_buf_puts(&t, pre);
    if (st == CAIRN_OK)
        st = cairn_buf_puts(&t, query);
    int dim = embedder_dim(d->e);
    float *q = cairn_calloc((size_t)dim, sizeof *q);
    if (st == CAIRN_OK && !q)
        st = cairn_fail(CAIRN_ERR_NOMEM, "dense search");
    if (st == CAIRN_OK) {
        const char *texts[1] = {t.data};
        size_t lens[1] = {t.len};
        st = embedder_embed(d->e, NULL, texts, lens, 1, q, NULL);
    }
    if (st == CAIRN_OK && (int)vec_index_dim(d->ix) != dim)
        st = cairn_fail(CAIRN_ERR_INVALID, "the vector index has dimension %u, the model %d",
                        vec_index_dim(d->ix), dim);
    if (st == CAIRN_OK) {
        vec_search_opts o = {.allowed = allowed, .mode = VEC_SEARCH_AUTO};
        st = vec_index_search(d->ix, q, k, &o, out, n_out, NULL);
    }
    cairn_free(q);
    cairn_buf_free(&t);
    return st;
}

/* ---- status ---- */

cairn_status dense_get_status(store *s, dense_status *out)
{
    memset(out, 0, sizeof *out);
    dense_settings set;
    CAIRN_TRY(dense_settings_load(s, &set));
    out->enabled = set.model != NULL;
    dense_settings_free(&set);
    char p[4200];
    struct stat sb;
    path_in(s, "vectors.db", p, sizeof p);
    if (stat(p, &sb) == 0) {
        out->db_bytes = (uint64_t)sb.st_size;
        char w[4300];
        snprintf(w, sizeof w, "%s-wal", p);
        if (stat(w, &sb) == 0)
            out->db_bytes += (uint64_t)sb.st_size;
        sqlite3 *db;
        if (vdb_open(s, false, &db) == CAIRN_OK) {
            vstate_text(db, "model", out->model, sizeof out->model);
            out->embedded = (uint64_t)vcount(db);
            sqlite3_close(db);
        }
        cairn_clear_error();
    }
    path_in(s, "vectors.idx", p, sizeof p);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        unsigned char h[40];
        if (fstat(fd, &sb) == 0)
            out->index_bytes = (uint64_t)sb.st_size;
        if (pread(fd, h, sizeof h, 0) == (ssize_t)sizeof h && !memcmp(h, "CAIRNVEC", 8)) {
            uint32_t n, dead;
            memcpy(&n, h + 32, 4);
            memcpy(&dead, h + 36, 4);
            out->index_vectors = n >= dead ? n - dead : 0;
        }
        close(fd);
    }
    return CAIRN_OK;
}
