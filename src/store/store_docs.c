/* store_docs.c — writing files, documents, metadata and chunks. Every
 * function here is atomic (a savepoint inside the caller's transaction, or
 * its own transaction) and logs every chunk it deletes. */
#include "store/store_int.h"
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TRY_TXN(s, expr) do { cairn_status st_ = (expr); if (st_ != CAIRN_OK) { store_rollback(s); return st_; } } while (0)

/* ---- sources ---- */
cairn_status store_source_upsert(store *s, const char *root, const char *options, int64_t ttl_s, int64_t *id)
{
    sqlite3_stmt *st;
    CAIRN_TRY(store_stmt(s, STMT_SOURCE_UPSERT, &st));
    sqlite3_bind_text(st, 1, root, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, options ? options : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, ttl_s);
    sqlite3_bind_int64(st, 4, cairn_now_ns());
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *id = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    if (rc != SQLITE_ROW)
        return store_sql_fail(s, CAIRN_ERR_IO, "recording a source");
    return CAIRN_OK;
}

cairn_status store_source_touch(store *s, int64_t id, int64_t now_ns)
{
    sqlite3_stmt *st;
    CAIRN_TRY(store_stmt(s, STMT_SOURCE_TOUCH, &st));
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, now_ns);
    return store_step_done(s, st, "updating a source");
}

/* Is `p` equal to `root` or under `root/`? ("" is the root of everything) */
static bool path_within(const char *p, const char *root)
{
    size_t n = strlen(root);
    if (!n)
        return true;
    return !strncmp(p, root, n) && (p[n] == 0 || p[n] == '/');
}

/* A glob that matches exactly `path` (fnmatch metacharacters escaped). */
static char *glob_escape(const char *path)
{
    size_t n = strlen(path);
    char *o = cairn_malloc(2 * n + 1), *q = o;
    if (!o)
        return NULL;
    for (const char *c = path; *c; c++) {
        if (*c == '*' || *c == '?' || *c == '[' || *c == ']' || *c == '\\')
            *q++ = '\\';
        *q++ = *c;
    }
    *q = 0;
    return o;
}

static cairn_status add_exclude(store *s, int64_t id, const char *options, const char *path)
{
    cJSON *j = options && *options ? cJSON_Parse(options) : NULL;
    if (!j || !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        j = cJSON_CreateObject();
    }
    char *g = glob_escape(path);
    cJSON *ex = j ? cJSON_GetObjectItemCaseSensitive(j, "exclude") : NULL;
    if (j && !cJSON_IsArray(ex)) {
        cJSON_DeleteItemFromObjectCaseSensitive(j, "exclude");
        ex = cJSON_AddArrayToObject(j, "exclude");
    }
    bool present = false;
    const cJSON *e;
    if (ex)
        cJSON_ArrayForEach(e, ex) present |= cJSON_IsString(e) && g && !strcmp(e->valuestring, g);
    cairn_status st = CAIRN_OK;
    if (!j || !ex || !g || (!present && !cJSON_AddItemToArray(ex, cJSON_CreateString(g))))
        st = cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
    char *txt = st == CAIRN_OK ? cJSON_PrintUnformatted(j) : NULL;
    if (st == CAIRN_OK && !txt)
        st = cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
    if (st == CAIRN_OK) {
        sqlite3_stmt *q;
        if (sqlite3_prepare_v2(s->db, "UPDATE sources SET options = ?2 WHERE id = ?1", -1, &q, NULL) != SQLITE_OK)
            st = store_sql_fail(s, CAIRN_ERR_IO, "updating a source");
        else {
            sqlite3_bind_int64(q, 1, id);
            sqlite3_bind_text(q, 2, txt, -1, SQLITE_STATIC);
            st = store_step_done(s, q, "updating a source");
            sqlite3_finalize(q);
        }
    }
    cJSON_free(txt);
    cJSON_Delete(j);
    cairn_free(g);
    return st;
}

static cairn_status sources_after_remove(store *s, const char *path, bool add_excludes, size_t *forgotten,
                                         size_t *excluded)
{
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(s->db, "SELECT id, root, options FROM sources", -1, &q, NULL) != SQLITE_OK)
        return store_sql_fail(s, CAIRN_ERR_IO, "listing sources");
    int64_t *drop = NULL;
    size_t nd = 0, cap = 0;
    cairn_status st = CAIRN_OK;
    int rc;
    while (st == CAIRN_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(q, 0);
        const char *root = (const char *)sqlite3_column_text(q, 1);
        const char *opt = (const char *)sqlite3_column_text(q, 2);
        if (!root)
            continue;
        if (path_within(root, path)) {
            if (nd == cap) {
                size_t nc = cap ? cap * 2 : 8;
                int64_t *nn = cairn_reallocarray(drop, nc, sizeof *nn);
                if (!nn) {
                    st = cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
                    break;
                }
                drop = nn;
                cap = nc;
            }
            drop[nd++] = id;
        } else if (add_excludes && path_within(path, root)) {
            st = add_exclude(s, id, opt, path);
            if (st == CAIRN_OK && excluded)
                (*excluded)++;
        }
    }
    if (st == CAIRN_OK && rc != SQLITE_DONE)
        st = store_sql_fail(s, CAIRN_ERR_IO, "listing sources");
    sqlite3_finalize(q);
    for (size_t i = 0; st == CAIRN_OK && i < nd; i++) {
        if (sqlite3_prepare_v2(s->db, "DELETE FROM sources WHERE id = ?1", -1, &q, NULL) != SQLITE_OK) {
            st = store_sql_fail(s, CAIRN_ERR_IO, "forgetting a source");
            break;
        }
        sqlite3_bind_int64(q, 1, drop[i]);
        st = store_step_done(s, q, "forgetting a source");
        sqlite3_finalize(q);
    }
    if (st == CAIRN_OK && forgotten)
        *forgotten = nd;
    cairn_free(drop);
    return st;
}

cairn_status store_sources_after_remove(store *s, const char *path, size_t *forgotten, size_t *excluded)
{
    if (forgotten)
        *forgotten = 0;
    if (excluded)
        *excluded = 0;
    CAIRN_TRY(store_begin(s));
    cairn_status st = sources_after_remove(s, path, true, forgotten, excluded);
    if (st != CAIRN_OK) {
        store_rollback(s);
        return st;
    }
    return store_commit(s);
}

cairn_status store_sources_forget_under(store *s, const char *path, size_t *forgotten)
{
    if (forgotten)
        *forgotten = 0;
    CAIRN_TRY(store_begin(s));
    cairn_status st = sources_after_remove(s, path, false, forgotten, NULL);
    if (st != CAIRN_OK) {
        store_rollback(s);
        return st;
    }
    return store_commit(s);
}

/* ---- files ---- */
void store_file_free(store_file *f)
{
    cairn_free(f->path);
    memset(f, 0, sizeof *f);
}

static cairn_status file_row(sqlite3_stmt *st, store_file *f)
{
    memset(f, 0, sizeof *f);
    f->id = sqlite3_column_int64(st, 0);
    const char *p = (const char *)sqlite3_column_text(st, 1);
    f->path = cairn_strdup(p ? p : "");
    if (!f->path)
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
    f->source_id = sqlite3_column_int64(st, 2);
    f->size = sqlite3_column_int64(st, 3);
    f->mtime_ns = sqlite3_column_int64(st, 4);
    const char *h = (const char *)sqlite3_column_text(st, 5);
    snprintf(f->content_hash, sizeof f->content_hash, "%s", h ? h : "");
    f->state = (store_file_state)sqlite3_column_int(st, 6);
    f->ndocs = sqlite3_column_int64(st, 7);
    f->sync_gen = sqlite3_column_int64(st, 8);
    const char *mh = (const char *)sqlite3_column_text(st, 9);
    snprintf(f->meta_hash, sizeof f->meta_hash, "%s", mh ? mh : "");
    f->ndocs_stored = sqlite3_column_count(st) > 10 ? sqlite3_column_int64(st, 10) : -1;
    return CAIRN_OK;
}

cairn_status store_file_get(store *s, const char *path, store_file *out)
{
    sqlite3_stmt *st;
    memset(out, 0, sizeof *out);
    CAIRN_TRY(store_stmt(s, STMT_FILE_GET, &st));
    sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    cairn_status r = CAIRN_OK;
    if (rc == SQLITE_ROW)
        r = file_row(st, out);
    else if (rc == SQLITE_DONE)
        r = CAIRN_ERR_NOT_FOUND;
    else
        r = store_sql_fail(s, CAIRN_ERR_IO, "reading a file record");
    sqlite3_reset(st);
    return r;
}

cairn_status store_file_put(store *s, store_file *f, const char *type, const char *reason)
{
    sqlite3_stmt *st;
    CAIRN_TRY(store_stmt(s, f->id ? STMT_FILE_UPDATE : STMT_FILE_INSERT, &st));
    if (f->id)
        sqlite3_bind_int64(st, 1, f->id);
    else
        sqlite3_bind_text(st, 1, f->path, -1, SQLITE_STATIC);
    if (f->source_id)
        sqlite3_bind_int64(st, 2, f->source_id);
    sqlite3_bind_int64(st, 3, f->size);
    sqlite3_bind_int64(st, 4, f->mtime_ns);
    sqlite3_bind_text(st, 5, f->content_hash, -1, SQLITE_STATIC);
    if (type)
        sqlite3_bind_text(st, 6, type, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 7, (int)f->state);
    if (reason)
        sqlite3_bind_text(st, 8, reason, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 9, f->ndocs);
    sqlite3_bind_int64(st, 10, cairn_now_ns());
    sqlite3_bind_int64(st, 11, f->sync_gen);
    sqlite3_bind_text(st, 12, f->meta_hash, -1, SQLITE_STATIC);
    CAIRN_TRY(store_step_done(s, st, "writing a file record"));
    if (!f->id)
        f->id = sqlite3_last_insert_rowid(s->db);
    return CAIRN_OK;
}

cairn_status store_file_touch(store *s, int64_t file_id, int64_t mtime_ns, int64_t sync_gen)
{
    sqlite3_stmt *st;
    CAIRN_TRY(store_stmt(s, STMT_FILE_TOUCH, &st));
    sqlite3_bind_int64(st, 1, file_id);
    sqlite3_bind_int64(st, 2, mtime_ns);
    sqlite3_bind_int64(st, 3, sync_gen);
    return store_step_done(s, st, "updating a file record");
}

/* Collect ids from a one-column query (bound by the caller). */
typedef struct idvec { int64_t *v; size_t n, cap; } idvec;

static cairn_status idvec_push(idvec *iv, int64_t id)
{
    if (iv->n == iv->cap) {
        size_t nc = iv->cap ? iv->cap * 2 : 32;
        int64_t *nv = cairn_reallocarray(iv->v, nc, sizeof *nv);
        if (!nv)
            return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
        iv->v = nv;
        iv->cap = nc;
    }
    iv->v[iv->n++] = id;
    return CAIRN_OK;
}

static cairn_status collect_ids(store *s, sqlite3_stmt *st, idvec *iv)
{
    int rc;
    cairn_status r = CAIRN_OK;
    while (r == CAIRN_OK && (rc = sqlite3_step(st)) == SQLITE_ROW)
        r = idvec_push(iv, sqlite3_column_int64(st, 0));
    if (r == CAIRN_OK && rc != SQLITE_DONE)
        r = store_sql_fail(s, CAIRN_ERR_IO, "listing records");
    sqlite3_reset(st);
    return r;
}

/* Delete one document inside an open transaction. */
static cairn_status doc_delete_in_txn(store *s, int64_t doc_id)
{
    static const store_stmt_id seq[] = {STMT_CHUNK_LOG_DOC, STMT_CHUNK_DELETE_DOC, STMT_META_DELETE, STMT_DOC_DELETE};
    for (size_t i = 0; i < CAIRN_ARRAY_LEN(seq); i++) {
        sqlite3_stmt *st;
        CAIRN_TRY(store_stmt(s, seq[i], &st));
        sqlite3_bind_int64(st, 1, doc_id);
        CAIRN_TRY(store_step_done(s, st, "deleting a document"));
    }
    return CAIRN_OK;
}

cairn_status store_doc_find(store *s, const char *path, const char *rkey, int64_t *id, char doc_hash[33])
{
    sqlite3_stmt *st;
    CAIRN_TRY(store_stmt(s, STMT_DOC_FIND, &st));
    sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, rkey ? rkey : "", -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    cairn_status r = CAIRN_OK;
    if (rc == SQLITE_ROW) {
        *id = sqlite3_column_int64(st, 0);
        const char *h = (const char *)sqlite3_column_text(st, 1);
        snprintf(doc_hash, 33, "%s", h ? h : "");
    } else if (rc == SQLITE_DONE) {
        r = CAIRN_ERR_NOT_FOUND;
    } else {
        r = store_sql_fail(s, CAIRN_ERR_IO, "looking up a document");
    }
    sqlite3_reset(st);
    return r;
}

cairn_status store_doc_delete(store *s, int64_t doc_id)
{
    CAIRN_TRY(store_begin(s));
    TRY_TXN(s, doc_delete_in_txn(s, doc_id));
    return store_commit(s);
}

static cairn_status delete_listed(store *s, store_stmt_id q, int64_t file_id, int64_t gen, size_t *removed)
{
    sqlite3_stmt *st;
    idvec iv = {0};
    cairn_status r = store_stmt(s, q, &st);
    if (r == CAIRN_OK) {
        sqlite3_bind_int64(st, 1, file_id);
        if (q == STMT_FILE_STALE_DOCS)
            sqlite3_bind_int64(st, 2, gen);
        r = collect_ids(s, st, &iv);
    }
    for (size_t i = 0; r == CAIRN_OK && i < iv.n; i++)
        r = doc_delete_in_txn(s, iv.v[i]);
    if (removed)
        *removed = r == CAIRN_OK ? iv.n : 0;
    cairn_free(iv.v);
    return r;
}

cairn_status store_file_count_docs(store *s, int64_t file_id, int64_t *n)
{
    sqlite3_stmt *st;
    CAIRN_TRY(store_stmt(s, STMT_FILE_COUNT_DOCS, &st));
    sqlite3_bind_int64(st, 1, file_id);
    int rc = sqlite3_step(st);
    *n = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    if (rc != SQLITE_ROW)
        return store_sql_fail(s, CAIRN_ERR_IO, "counting documents");
    return CAIRN_OK;
}

cairn_status store_file_prune_docs(store *s, int64_t file_id, int64_t gen, size_t *removed)
{
    CAIRN_TRY(store_begin(s));
    TRY_TXN(s, delete_listed(s, STMT_FILE_STALE_DOCS, file_id, gen, removed));
    return store_commit(s);
}

static cairn_status file_delete_in_txn(store *s, int64_t file_id, size_t *docs)
{
    CAIRN_TRY(delete_listed(s, STMT_FILE_DOCS, file_id, 0, docs));
    sqlite3_stmt *st;
    CAIRN_TRY(store_stmt(s, STMT_FILE_DELETE, &st));
    sqlite3_bind_int64(st, 1, file_id);
    return store_step_done(s, st, "deleting a file record");
}

cairn_status store_file_delete(store *s, int64_t file_id)
{
    CAIRN_TRY(store_begin(s));
    TRY_TXN(s, file_delete_in_txn(s, file_id, NULL));
    return store_commit(s);
}

cairn_status store_file_move(store *s, int64_t file_id, const char *new_path)
{
    static const store_stmt_id seq[] = {STMT_FILE_MOVE, STMT_DOCS_MOVE, STMT_META_MOVE};
    CAIRN_TRY(store_begin(s));
    for (size_t i = 0; i < CAIRN_ARRAY_LEN(seq); i++) {
        sqlite3_stmt *st;
        TRY_TXN(s, store_stmt(s, seq[i], &st));
        sqlite3_bind_int64(st, 1, file_id);
        sqlite3_bind_text(st, 2, new_path, -1, SQLITE_STATIC);
        TRY_TXN(s, store_step_done(s, st, "moving a file"));
    }
    return store_commit(s);
}

/* Bind the prefix range for "path = p OR path under p/". */
static cairn_status bind_prefix(sqlite3_stmt *st, const char *prefix, char **lo, char **hi)
{
    size_t n = strlen(prefix);
    /* strip a trailing slash so "docs/" and "docs" mean the same */
    while (n > 1 && prefix[n - 1] == '/')
        n--;
    *lo = cairn_malloc(n + 2);
    *hi = cairn_malloc(n + 2);
    if (!*lo || !*hi)
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
    memcpy(*lo, prefix, n);
    memcpy(*hi, prefix, n);
    (*lo)[n] = '/';
    (*hi)[n] = '/' + 1;
    (*lo)[n + 1] = (*hi)[n + 1] = 0;
    sqlite3_bind_text(st, 1, prefix, (int)n, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, *lo, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, *hi, -1, SQLITE_STATIC);
    return CAIRN_OK;
}

cairn_status store_files_under(store *s, const char *prefix, store_file_fn fn, void *ctx)
{
    sqlite3_stmt *st;
    /* The callback may read from the store with other cached statements,
     * so use a private statement for the iteration. */
    if (sqlite3_prepare_v2(s->db,
                           "SELECT id, path, source_id, size, mtime_ns, content_hash, state, ndocs, sync_gen, meta_hash FROM files"
                           " WHERE ?1 = '' OR path = ?1 OR (path >= ?2 AND path < ?3) ORDER BY path",
                           -1, &st, NULL) != SQLITE_OK)
        return store_sql_fail(s, CAIRN_ERR_IO, "listing files");
    char *lo = NULL, *hi = NULL;
    cairn_status r = bind_prefix(st, prefix, &lo, &hi);
    int rc = SQLITE_DONE;
    while (r == CAIRN_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        store_file f;
        r = file_row(st, &f);
        if (r == CAIRN_OK)
            r = fn(ctx, &f);
        store_file_free(&f);
    }
    if (r == CAIRN_OK && rc != SQLITE_DONE)
        r = store_sql_fail(s, CAIRN_ERR_IO, "listing files");
    sqlite3_finalize(st);
    cairn_free(lo);
    cairn_free(hi);
    return r;
}

cairn_status store_remove_under(store *s, const char *path, size_t *files, size_t *docs)
{
    if (files)
        *files = 0;
    if (docs)
        *docs = 0;
    idvec fids = {0}, dids = {0};
    char *lo = NULL, *hi = NULL, *lo2 = NULL, *hi2 = NULL;
    sqlite3_stmt *st;
    cairn_status r = store_begin(s);
    if (r != CAIRN_OK)
        return r;
    r = store_stmt(s, STMT_FILES_UNDER, &st);
    if (r == CAIRN_OK)
        r = bind_prefix(st, path, &lo, &hi);
    if (r == CAIRN_OK)
        r = collect_ids(s, st, &fids);
    if (r == CAIRN_OK)
        r = store_stmt(s, STMT_DOCS_UNDER_NOFILE, &st);
    if (r == CAIRN_OK)
        r = bind_prefix(st, path, &lo2, &hi2);
    if (r == CAIRN_OK)
        r = collect_ids(s, st, &dids);
    size_t nd = 0;
    for (size_t i = 0; r == CAIRN_OK && i < fids.n; i++) {
        size_t k = 0;
        r = file_delete_in_txn(s, fids.v[i], &k);
        nd += k;
    }
    for (size_t i = 0; r == CAIRN_OK && i < dids.n; i++)
        r = doc_delete_in_txn(s, dids.v[i]);
    if (r == CAIRN_OK)
        r = store_commit(s);
    else
        store_rollback(s);
    if (r == CAIRN_OK) {
        if (files)
            *files = fids.n;
        if (docs)
            *docs = nd + dids.n;
    }
    cairn_free(fids.v);
    cairn_free(dids.v);
    cairn_free(lo);
    cairn_free(hi);
    cairn_free(lo2);
    cairn_free(hi2);
    return r;
}

/* ---- documents ---- */
static cairn_status meta_insert(store *s, int64_t doc_id, const char *key, int type, const char *str, double n,
                                bool has_n, int ord)
{
    sqlite3_stmt *st;
    CAIRN_TRY(store_stmt(s, STMT_META_INSERT, &st));
    sqlite3_bind_int64(st, 1, doc_id);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, type);
    if (str)
        sqlite3_bind_text(st, 4, str, -1, SQLITE_STATIC);
    if (has_n)
        sqlite3_bind_double(st, 5, n);
    sqlite3_bind_int(st, 6, ord);
    return store_step_done(s, st, "writing metadata");
}

static const char *const builtin_keys[] = {"path", "type", "title", "size", "modified", "ingested", "content_hash", "expires"};

bool store_meta_is_builtin(const char *key)
{
    for (size_t i = 0; i < CAIRN_ARRAY_LEN(builtin_keys); i++)
        if (!strcmp(key, builtin_keys[i]))
            return true;
    return false;
}

static cairn_status meta_write(store *s, int64_t doc_id, const store_doc_in *in)
{
    sqlite3_stmt *st;
    CAIRN_TRY(store_stmt(s, STMT_META_DELETE, &st));
    sqlite3_bind_int64(st, 1, doc_id);
    CAIRN_TRY(store_step_done(s, st, "replacing metadata"));
    CAIRN_TRY(meta_insert(s, doc_id, "path", META_STRING, in->path, 0, false, 0));
    CAIRN_TRY(meta_insert(s, doc_id, "type", META_STRING, in->type, 0, false, 0));
    if (in->title)
        CAIRN_TRY(meta_insert(s, doc_id, "title", META_STRING, in->title, 0, false, 0));
    CAIRN_TRY(meta_insert(s, doc_id, "size", META_NUMBER, NULL, (double)in->size, true, 0));
    CAIRN_TRY(meta_insert(s, doc_id, "modified", META_DATE, NULL, (double)in->mtime_ns / 1e9, true, 0));
    CAIRN_TRY(meta_insert(s, doc_id, "ingested", META_DATE, NULL, (double)in->ingested_at_ns / 1e9, true, 0));
    if (in->content_hash)
        CAIRN_TRY(meta_insert(s, doc_id, "content_hash", META_STRING, in->content_hash, 0, false, 0));
    if (in->expires_at)
        CAIRN_TRY(meta_insert(s, doc_id, "expires", META_DATE, NULL, (double)in->expires_at, true, 0));
    const meta_list *m = in->meta;
    for (size_t i = 0; m && i < m->n; i++) {
        const meta_entry *e = &m->e[i];
        if (store_meta_is_builtin(e->key))
            continue;
        switch (e->v.type) {
        case META_STRING:
            CAIRN_TRY(meta_insert(s, doc_id, e->key, META_STRING, e->v.s ? e->v.s : "", 0, false, 0));
            break;
        case META_NUMBER:
        case META_DATE:
        case META_BOOL:
            CAIRN_TRY(meta_insert(s, doc_id, e->key, (int)e->v.type, NULL, e->v.n, true, 0));
            break;
        case META_LIST:
            for (size_t k = 0; k < e->v.n_items; k++)
                CAIRN_TRY(meta_insert(s, doc_id, e->key, META_LIST, e->v.items[k], 0, false, (int)k));
            if (!e->v.n_items)   /* an empty list still marks the field as present */
                CAIRN_TRY(meta_insert(s, doc_id, e->key, META_LIST, NULL, 0, false, -1));
            break;
        default:
            return cairn_fail(CAIRN_ERR_INVALID, "metadata %s: unknown type %d", e->key, (int)e->v.type);
        }
    }
    return CAIRN_OK;
}

typedef struct old_chunk { int64_t key, id; int ord; bool used; } old_chunk;

static int old_cmp(const void *a, const void *b)
{
    const old_chunk *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static cairn_status chunk_insert(store *s, int64_t doc_id, const chunk *c)
{
    sqlite3_stmt *st;
    CAIRN_TRY(store_stmt(s, STMT_CHUNK_INSERT, &st));
    sqlite3_bind_int64(st, 1, doc_id);
    sqlite3_bind_int(st, 2, c->ord);
    sqlite3_bind_int64(st, 3, (int64_t)c->key);
    sqlite3_bind_text(st, 4, c->heading_path ? c->heading_path : "", -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 5, c->page);
    sqlite3_bind_text(st, 6, c->text, (int)c->len, SQLITE_STATIC);
    sqlite3_bind_int(st, 7, c->ntokens);
    sqlite3_bind_int64(st, 8, store_text_hash(c->text, c->len));
    return store_step_done(s, st, "writing a chunk");
}

/* Replace the chunks of an existing document, keeping rows whose key is
 * unchanged. */
static cairn_status chunks_replace(store *s, int64_t doc_id, const chunk_list *cl, store_put_result *res)
{
    sqlite3_stmt *st;
    old_chunk *old = NULL;
    size_t n = 0, cap = 0;
    CAIRN_TRY(store_stmt(s, STMT_CHUNK_KEYS, &st));
    sqlite3_bind_int64(st, 1, doc_id);
    int rc;
    cairn_status r = CAIRN_OK;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 64;
            old_chunk *no = cairn_reallocarray(old, nc, sizeof *no);
            if (!no) {
                r = cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
                break;
            }
            old = no;
            cap = nc;
        }
        old[n++] = (old_chunk){sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 0), sqlite3_column_int(st, 2), false};
    }
    if (r == CAIRN_OK && rc != SQLITE_DONE)
        r = store_sql_fail(s, CAIRN_ERR_IO, "reading chunks");
    sqlite3_reset(st);
    if (n)
        qsort(old, n, sizeof *old, old_cmp);
    for (size_t i = 0; r == CAIRN_OK && cl && i < cl->n; i++) {
        const chunk *c = &cl->c[i];
        old_chunk probe = {(int64_t)c->key, INT64_MIN, 0, false};
        size_t lo = 0, hi = n;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (old_cmp(&old[mid], &probe) < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        while (lo < n && old[lo].key == (int64_t)c->key && old[lo].used)
            lo++;
        if (lo < n && old[lo].key == (int64_t)c->key) {
            old[lo].used = true;
            res->chunks_kept++;
            if (old[lo].ord != c->ord) {
                r = store_stmt(s, STMT_CHUNK_SET_ORD, &st);
                if (r == CAIRN_OK) {
                    sqlite3_bind_int64(st, 1, old[lo].id);
                    sqlite3_bind_int(st, 2, c->ord);
                    r = store_step_done(s, st, "reordering a chunk");
                }
            }
        } else {
            r = chunk_insert(s, doc_id, c);
            res->chunks_added++;
        }
    }
    for (size_t i = 0; r == CAIRN_OK && i < n; i++) {
        if (old[i].used)
            continue;
        r = store_stmt(s, STMT_CHUNK_LOG, &st);
        if (r == CAIRN_OK) {
            sqlite3_bind_int64(st, 1, old[i].id);
            sqlite3_bind_int64(st, 2, doc_id);
            r = store_step_done(s, st, "logging a chunk deletion");
        }
        if (r == CAIRN_OK)
            r = store_stmt(s, STMT_CHUNK_DELETE, &st);
        if (r == CAIRN_OK) {
            sqlite3_bind_int64(st, 1, old[i].id);
            r = store_step_done(s, st, "deleting a chunk");
        }
        res->chunks_removed++;
    }
    cairn_free(old);
    return r;
}

static char *doc_key(const char *path, const char *rkey)
{
    if (!rkey || !*rkey)
        return cairn_strdup(path);
    size_t a = strlen(path), b = strlen(rkey);
    char *k = cairn_malloc(a + b + 2);
    if (!k)
        return NULL;
    memcpy(k, path, a);
    k[a] = '#';
    memcpy(k + a + 1, rkey, b + 1);
    return k;
}

static cairn_status doc_put_in_txn(store *s, const store_doc_in *in, store_put_result *res)
{
    const char *rkey = in->rkey ? in->rkey : "";
    sqlite3_stmt *st;
    CAIRN_TRY(store_stmt(s, STMT_DOC_FIND, &st));
    sqlite3_bind_text(st, 1, in->path, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, rkey, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int64_t id = 0;
    bool same = false;
    if (rc == SQLITE_ROW) {
        id = sqlite3_column_int64(st, 0);
        const char *h = (const char *)sqlite3_column_text(st, 1);
        same = h && in->doc_hash && !strcmp(h, in->doc_hash);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return store_sql_fail(s, CAIRN_ERR_IO, "looking up a document");
    res->doc_id = id;
    if (same) {
        /* Content and metadata unchanged: refresh stat data only. */
        res->unchanged = true;
        CAIRN_TRY(store_stmt(s, STMT_DOC_TOUCH, &st));
        sqlite3_bind_int64(st, 1, id);
        if (in->file_id)
            sqlite3_bind_int64(st, 2, in->file_id);
        if (in->source_id)
            sqlite3_bind_int64(st, 3, in->source_id);
        sqlite3_bind_int64(st, 4, in->size);
        sqlite3_bind_int64(st, 5, in->mtime_ns);
        sqlite3_bind_text(st, 6, in->content_hash ? in->content_hash : "", -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 7, in->sync_gen);
        CAIRN_TRY(store_step_done(s, st, "updating a document"));
        static const char *const touched[] = {"size", "modified", "content_hash"};
        for (size_t i = 0; i < CAIRN_ARRAY_LEN(touched); i++) {
            CAIRN_TRY(store_stmt(s, STMT_META_DELETE_KEY, &st));
            sqlite3_bind_int64(st, 1, id);
            sqlite3_bind_text(st, 2, touched[i], -1, SQLITE_STATIC);
            CAIRN_TRY(store_step_done(s, st, "updating metadata"));
        }
        CAIRN_TRY(meta_insert(s, id, "size", META_NUMBER, NULL, (double)in->size, true, 0));
        CAIRN_TRY(meta_insert(s, id, "modified", META_DATE, NULL, (double)in->mtime_ns / 1e9, true, 0));
        if (in->content_hash)
            CAIRN_TRY(meta_insert(s, id, "content_hash", META_STRING, in->content_hash, 0, false, 0));
        return CAIRN_OK;
    }
    char *key = doc_key(in->path, rkey);
    if (!key)
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
    int64_t nbytes = 0;
    size_t nchunks = in->chunks ? in->chunks->n : 0;
    for (size_t i = 0; i < nchunks; i++)
        nbytes += (int64_t)in->chunks->c[i].len;
    cairn_status r = store_stmt(s, id ? STMT_DOC_UPDATE : STMT_DOC_INSERT, &st);
    if (r == CAIRN_OK) {
        if (in->file_id)
            sqlite3_bind_int64(st, 1, in->file_id);
        if (in->source_id)
            sqlite3_bind_int64(st, 2, in->source_id);
        sqlite3_bind_text(st, 3, in->path, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, key, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, rkey, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 6, in->type ? in->type : "text", -1, SQLITE_STATIC);
        if (in->title)
            sqlite3_bind_text(st, 7, in->title, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 8, in->size);
        sqlite3_bind_int64(st, 9, in->mtime_ns);
        sqlite3_bind_text(st, 10, in->content_hash ? in->content_hash : "", -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 11, in->doc_hash ? in->doc_hash : "", -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 12, in->ingested_at_ns);
        sqlite3_bind_int64(st, 13, in->sync_gen);
        sqlite3_bind_int64(st, 14, in->expires_at);
        sqlite3_bind_int64(st, 15, (int64_t)nchunks);
        sqlite3_bind_int64(st, 16, nbytes);
        if (id)
            sqlite3_bind_int64(st, 17, id);
        r = store_step_done(s, st, "writing a document");
    }
    cairn_free(key);
    CAIRN_TRY(r);
    if (!id) {
        id = sqlite3_last_insert_rowid(s->db);
        res->doc_id = id;
        for (size_t i = 0; i < nchunks; i++) {
            CAIRN_TRY(chunk_insert(s, id, &in->chunks->c[i]));
            res->chunks_added++;
        }
    } else {
        CAIRN_TRY(chunks_replace(s, id, in->chunks, res));
    }
    return meta_write(s, id, in);
}

cairn_status store_doc_put(store *s, const store_doc_in *in, store_put_result *res)
{
    store_put_result local;
    if (!res)
        res = &local;
    memset(res, 0, sizeof *res);
    if (!in->path || !in->type)
        return cairn_fail(CAIRN_ERR_INVALID, "store_doc_put: path and type are required");
    CAIRN_TRY(store_begin(s));
    cairn_status r = doc_put_in_txn(s, in, res);
    if (r != CAIRN_OK) {
        store_rollback(s);
        memset(res, 0, sizeof *res);
        return r;
    }
    return store_commit(s);
}
