/* check.c — cairn check: see repair.h. Reads only (a deferred read
 * transaction gives every store query one snapshot). Cost: one pass over
 * the database pages (quick_check), one over the chunk texts (checksums),
 * one bit per chunk id for the index comparison, and a walk of the sources
 * (a stat per file). */
#include "repair/repair.h"
#include "search/search.h"
#include "store/store.h"
#include "sync/sync.h"
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_LISTED 20   /* findings of one kind listed before "... and N more" */

typedef struct ck {
    check_report_fn fn;
    void *ctx;
    check_result *res;
} ck;

static void report(ck *c, check_level lvl, const char *area, const char *fmt, ...) CAIRN_PRINTF(4, 5);
static void report(ck *c, check_level lvl, const char *area, const char *fmt, ...)
{
    char msg[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (lvl == CHECK_PROBLEM)
        c->res->problems++;
    else
        c->res->notes++;
    if (c->fn)
        c->fn(c->ctx, lvl, area, msg);
}

/* The next row of q while *rc (from prepare or the last step) is fine;
 * *rc ends as SQLITE_DONE or the error. */
static bool step_row(sqlite3_stmt *q, int *rc)
{
    if (*rc != SQLITE_OK && *rc != SQLITE_ROW)
        return false;
    *rc = sqlite3_step(q);
    return *rc == SQLITE_ROW;
}

/* One integer from a query; a failing query is itself a finding. */
static bool count_of(ck *c, sqlite3 *db, const char *sql, int64_t *out)
{
    sqlite3_stmt *q = NULL;
    *out = 0;
    int rc = sqlite3_prepare_v2(db, sql, -1, &q, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(q);
        if (rc == SQLITE_ROW)
            *out = sqlite3_column_int64(q, 0);
    }
    bool ok = rc == SQLITE_ROW || rc == SQLITE_DONE;
    if (!ok)
        report(c, CHECK_PROBLEM, "store", "reading the store failed (%s): %s", sqlite3_errmsg(db), sql);
    sqlite3_finalize(q);
    return ok;
}

static void invariant(ck *c, sqlite3 *db, const char *what, const char *sql)
{
    int64_t n;
    if (count_of(c, db, sql, &n) && n)
        report(c, CHECK_PROBLEM, "store", "%lld %s", (long long)n, what);
}

static void integrity(ck *c, sqlite3 *db, bool full)
{
    sqlite3_stmt *q = NULL;
    int rc = sqlite3_prepare_v2(db, full ? "PRAGMA integrity_check(100)" : "PRAGMA quick_check(100)", -1, &q, NULL);
    size_t bad = 0;
    while (step_row(q, &rc)) {
        const char *m = (const char *)sqlite3_column_text(q, 0);
        if (m && !strcmp(m, "ok"))
            continue;
        if (++bad <= MAX_LISTED)
            report(c, CHECK_PROBLEM, "store", "SQLite %s: %s", full ? "integrity_check" : "quick_check", m ? m : "?");
    }
    if (rc != SQLITE_DONE && rc != SQLITE_OK)
        report(c, CHECK_PROBLEM, "store", "SQLite %s failed: %s", full ? "integrity_check" : "quick_check",
               sqlite3_errmsg(db));
    else if (bad > MAX_LISTED)
        report(c, CHECK_PROBLEM, "store", "... and %zu more integrity findings", bad - MAX_LISTED);
    sqlite3_finalize(q);
}

/* Every chunk's text against its checksum (rows from before schema v3
 * carry none). */
static void checksums(ck *c, sqlite3 *db)
{
    sqlite3_stmt *q = NULL;
    int rc = sqlite3_prepare_v2(db,
                                "SELECT c.id, c.text, c.text_hash, d.path FROM chunks c LEFT JOIN docs d ON d.id = c.doc_id"
                                " WHERE c.text_hash IS NOT NULL ORDER BY c.id",
                                -1, &q, NULL);
    size_t bad = 0;
    while (step_row(q, &rc)) {
        const char *t = (const char *)sqlite3_column_text(q, 1);
        size_t n = (size_t)sqlite3_column_bytes(q, 1);
        c->res->chunks_verified++;
        if (store_text_hash(t ? t : "", t ? n : 0) == sqlite3_column_int64(q, 2))
            continue;
        if (++bad <= MAX_LISTED) {
            const char *p = (const char *)sqlite3_column_text(q, 3);
            report(c, CHECK_PROBLEM, "store", "chunk %lld (of %s): its text does not match its checksum (damaged)",
                   (long long)sqlite3_column_int64(q, 0), p ? p : "?");
        }
    }
    if (rc != SQLITE_DONE && rc != SQLITE_OK)
        report(c, CHECK_PROBLEM, "store", "reading chunk texts failed: %s", sqlite3_errmsg(db));
    else if (bad > MAX_LISTED)
        report(c, CHECK_PROBLEM, "store", "... and %zu more damaged chunks", bad - MAX_LISTED);
    sqlite3_finalize(q);
}

static void notes_on_files(ck *c, sqlite3 *db)
{
    int64_t n;
    if (count_of(c, db, "SELECT count(*) FROM files WHERE state = 0", &n) && n)
        report(c, CHECK_NOTE, "store", "%lld file%s partially ingested (an interrupted run): the next add or sync finishes them",
               (long long)n, n == 1 ? "" : "s");
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(db, "SELECT path, reason FROM files WHERE state = 3 ORDER BY path", -1, &q, NULL) != SQLITE_OK)
        return;
    size_t k = 0;
    while (sqlite3_step(q) == SQLITE_ROW) {
        if (++k > MAX_LISTED)
            continue;
        const char *p = (const char *)sqlite3_column_text(q, 0), *r = (const char *)sqlite3_column_text(q, 1);
        report(c, CHECK_NOTE, "store", "%s failed to parse: %s (retried when it changes)", p ? p : "?", r ? r : "");
    }
    if (k > MAX_LISTED)
        report(c, CHECK_NOTE, "store", "... and %zu more files that failed to parse", k - MAX_LISTED);
    sqlite3_finalize(q);
}

typedef struct del_ctx { uint64_t *bits; uint64_t nbits; } del_ctx;

static cairn_status on_deletion(void *ctx, int64_t seq, int64_t chunk_id)
{
    (void)seq;
    del_ctx *d = ctx;
    if (chunk_id > 0 && (uint64_t)chunk_id < d->nbits)
        d->bits[chunk_id >> 6] |= 1ull << (chunk_id & 63);
    return CAIRN_OK;
}

/* The index against the store. ix is opened before the store snapshot, so
 * it can only be behind it. */
static cairn_status index_vs_store(ck *c, store *s, bm25_index *ix)
{
    sqlite3 *db = store_db(s);
    int64_t max_chunk = 0, max_seq = 0;
    if (store_marks(s, &max_chunk, &max_seq) != CAIRN_OK) {
        report(c, CHECK_PROBLEM, "index", "cannot read the store's marks: %s", cairn_last_error());
        return CAIRN_OK;
    }
    uint64_t hwm = bm25_hwm(ix), del_hwm = bm25_del_hwm(ix);
    if (hwm > (uint64_t)max_chunk || del_hwm > (uint64_t)max_seq) {
        report(c, CHECK_PROBLEM, "index", "the index covers chunks up to %llu and deletions up to %llu, past the store "
                                          "(%lld, %lld): it belongs to another store; cairn repair rebuilds it",
               (unsigned long long)hwm, (unsigned long long)del_hwm, (long long)max_chunk, (long long)max_seq);
        return CAIRN_OK;
    }
    if (hwm < (uint64_t)max_chunk || del_hwm < (uint64_t)max_seq)
        report(c, CHECK_NOTE, "index", "the index is behind the store (chunks %llu of %lld, deletions %llu of %lld): "
                                       "the next search catches it up",
               (unsigned long long)hwm, (long long)max_chunk, (unsigned long long)del_hwm, (long long)max_seq);
    uint64_t nbits = hwm + 1, words = (nbits + 63) / 64;
    uint64_t *in_store = cairn_calloc(words, 8), *pending = cairn_calloc(words, 8);
    if (!in_store || !pending) {
        cairn_free(in_store);
        cairn_free(pending);
        return cairn_fail(CAIRN_ERR_NOMEM, "check: out of memory");
    }
    sqlite3_stmt *q = NULL;
    int rc = sqlite3_prepare_v2(db, "SELECT id FROM chunks WHERE id <= ?1", -1, &q, NULL);
    if (rc == SQLITE_OK)
        sqlite3_bind_int64(q, 1, (int64_t)hwm);
    while (step_row(q, &rc)) {
        int64_t id = sqlite3_column_int64(q, 0);
        if (id > 0 && (uint64_t)id < nbits)
            in_store[id >> 6] |= 1ull << (id & 63);
    }
    sqlite3_finalize(q);
    bool ok = rc == SQLITE_DONE || rc == SQLITE_OK;
    if (!ok)
        report(c, CHECK_PROBLEM, "store", "reading chunk ids failed: %s", sqlite3_errmsg(db));
    del_ctx d = {pending, nbits};
    if (ok && store_deletions_since(s, (int64_t)del_hwm, on_deletion, &d) != CAIRN_OK) {
        report(c, CHECK_PROBLEM, "store", "reading the deletion log failed: %s", cairn_last_error());
        ok = false;
    }
    size_t extra = 0, missing = 0;
    for (uint64_t id = 1; ok && id < nbits; id++) {
        bool st = (in_store[id >> 6] >> (id & 63)) & 1, pd = (pending[id >> 6] >> (id & 63)) & 1;
        bool live = bm25_is_live(ix, id);
        if (live && !st && !pd && ++extra <= MAX_LISTED)
            report(c, CHECK_PROBLEM, "index", "chunk %llu is in the index but not in the store", (unsigned long long)id);
        if (!live && st && ++missing <= MAX_LISTED)
            report(c, CHECK_PROBLEM, "index", "chunk %llu is in the store but missing from the index", (unsigned long long)id);
    }
    if (extra > MAX_LISTED || missing > MAX_LISTED)
        report(c, CHECK_PROBLEM, "index", "... %zu chunks only in the index, %zu only in the store in all", extra, missing);
    cairn_free(in_store);
    cairn_free(pending);
    return CAIRN_OK;
}

static void sources_vs_disk(ck *c, store *s)
{
    char **roots = NULL;
    size_t n = 0;
    if (sync_sources(s, &roots, &n) != CAIRN_OK) {
        report(c, CHECK_PROBLEM, "sources", "cannot read the sources: %s", cairn_last_error());
        return;
    }
    for (size_t i = 0; i < n; i++) {
        struct stat sb;
        if (stat(roots[i], &sb) != 0)
            report(c, CHECK_NOTE, "sources", "%s is gone from disk: the next sync removes its documents", roots[i]);
        cairn_free(roots[i]);
    }
    cairn_free(roots);
    sync_stale_report st;
    if (sync_stale(s, &st) != CAIRN_OK) {
        report(c, CHECK_PROBLEM, "sources", "comparing the sources with the disk failed: %s", cairn_last_error());
        return;
    }
    if (st.new_files + st.changed_files + st.missing_files)
        report(c, CHECK_NOTE, "sources", "%zu new, %zu changed, %zu deleted on disk since the last sync: run cairn sync",
               st.new_files, st.changed_files, st.missing_files);
}

cairn_status store_check(const char *store_dir, const check_options *o, check_report_fn fn, void *ctx,
                         check_result *res)
{
    check_options def = {0};
    if (!o)
        o = &def;
    memset(res, 0, sizeof *res);
    ck c = {fn, ctx, res};
    /* The index first: opened before the store's snapshot, it can only lag. */
    char ixdir[4200];
    snprintf(ixdir, sizeof ixdir, "%s/index", store_dir);
    store *s = NULL;
    cairn_status st = store_open(store_dir, &s);
    if (st == CAIRN_ERR_NOMEM)
        return st;
    if (st != CAIRN_OK) {
        report(&c, CHECK_PROBLEM, "store", "the store cannot be opened: %s", cairn_last_error());
        return CAIRN_OK;
    }
    search_settings set;
    bm25_index *ix = NULL;
    bool mismatch = false, ix_ok = false;
    st = search_settings_load(s, &set);
    if (st == CAIRN_OK) {
        st = bm25_open(ixdir, &set.analyzer, &ix, &mismatch);
        if (st == CAIRN_ERR_NOMEM) {
            store_close(s);
            return st;
        }
        if (st != CAIRN_OK)
            report(&c, CHECK_PROBLEM, "index", "%s (the next search rebuilds it; so does cairn repair)", cairn_last_error());
        else
            ix_ok = true;
    } else {
        report(&c, CHECK_PROBLEM, "store", "the store's configuration is invalid: %s", cairn_last_error());
    }
    st = CAIRN_OK;   /* reported */
    sqlite3 *db = store_db(s);
    bool txn = sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK;
    integrity(&c, db, o->full);
    count_of(&c, db, "SELECT count(*) FROM docs", &res->docs);
    count_of(&c, db, "SELECT count(*) FROM chunks", &res->chunks);
    invariant(&c, db, "documents whose chunk count differs from their chunks",
              "SELECT count(*) FROM docs d WHERE d.nchunks != (SELECT count(*) FROM chunks c WHERE c.doc_id = d.id)");
    invariant(&c, db, "chunks without their document",
              "SELECT count(*) FROM chunks c WHERE NOT EXISTS (SELECT 1 FROM docs d WHERE d.id = c.doc_id)");
    invariant(&c, db, "metadata rows without their document",
              "SELECT count(*) FROM (SELECT DISTINCT doc_id FROM doc_meta) m WHERE NOT EXISTS (SELECT 1 FROM docs d WHERE d.id = m.doc_id)");
    invariant(&c, db, "files recorded complete whose documents are missing (the next add or sync redoes them)",
              "SELECT count(*) FROM files f WHERE f.state = 1 AND f.ndocs != (SELECT count(*) FROM docs d WHERE d.file_id = f.id)");
    invariant(&c, db, "documents of a file that is not recorded",
              "SELECT count(*) FROM docs d WHERE d.file_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM files f WHERE f.id = d.file_id)");
    checksums(&c, db);
    notes_on_files(&c, db);
    if (mismatch)
        report(&c, CHECK_NOTE, "index", "the index was built with another analyzer configuration: the next search rebuilds it");
    else if (ix_ok)
        st = index_vs_store(&c, s, ix);
    if (txn)
        sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    if (st == CAIRN_OK && !o->no_sources)
        sources_vs_disk(&c, s);
    bm25_close(ix);
    store_close(s);
    return st == CAIRN_ERR_NOMEM ? st : CAIRN_OK;
}
