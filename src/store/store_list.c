/* store_list.c — documents, problem files and chunks for `cairn ls` and
 * `cairn show` (see store_list.h). */
#include "store/store_list.h"
#include <sqlite3.h>
#include <string.h>

static const char *col(sqlite3_stmt *q, int i)
{
    const unsigned char *t = sqlite3_column_text(q, i);
    return t ? (const char *)t : "";
}

#define DOC_COLS                                                                                                   \
    "SELECT d.id, d.path, d.rkey, d.type, d.title, d.nchunks, d.nbytes, d.ingested_at_ns, d.expires_at,"         \
    " CASE WHEN f.state = 0 THEN 'partial' ELSE 'ok' END FROM docs d LEFT JOIN files f ON f.id = d.file_id "

static cairn_status run_docs(store *s, const char *sql, int64_t id, const char *path, store_doc_row_fn fn, void *ctx,
                             size_t *n)
{
    sqlite3 *db = store_db(s);
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK)
        return cairn_fail(CAIRN_ERR_IO, "store: %s", sqlite3_errmsg(db));
    if (path)
        sqlite3_bind_text(q, 1, path, -1, SQLITE_TRANSIENT);
    else if (id)
        sqlite3_bind_int64(q, 1, id);
    cairn_status st = CAIRN_OK;
    size_t count = 0;
    int rc;
    while (st == CAIRN_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        store_doc_row r = {sqlite3_column_int64(q, 0), col(q, 1), col(q, 2), col(q, 3),
                           sqlite3_column_type(q, 4) == SQLITE_NULL ? NULL : col(q, 4), col(q, 9),
                           sqlite3_column_int64(q, 5), sqlite3_column_int64(q, 6), sqlite3_column_int64(q, 7),
                           sqlite3_column_int64(q, 8)};
        count++;
        st = fn(ctx, &r);
    }
    if (st == CAIRN_OK && rc != SQLITE_DONE)
        st = cairn_fail(CAIRN_ERR_IO, "store: reading documents: %s", sqlite3_errmsg(db));
    sqlite3_finalize(q);
    if (n)
        *n = count;
    return st;
}

cairn_status store_list_docs(store *s, store_doc_row_fn fn, void *ctx)
{
    return run_docs(s, DOC_COLS "ORDER BY d.path, d.rkey", 0, NULL, fn, ctx, NULL);
}

cairn_status store_doc_row_get(store *s, int64_t doc_id, store_doc_row_fn fn, void *ctx)
{
    size_t n;
    CAIRN_TRY(run_docs(s, DOC_COLS "WHERE d.id = ?1", doc_id, NULL, fn, ctx, &n));
    return n ? CAIRN_OK : cairn_fail(CAIRN_ERR_NOT_FOUND, "no document with id %lld", (long long)doc_id);
}

cairn_status store_docs_of_path(store *s, const char *path, store_doc_row_fn fn, void *ctx, size_t *n)
{
    return run_docs(s, DOC_COLS "WHERE d.path = ?1 ORDER BY d.rkey", 0, path, fn, ctx, n);
}

cairn_status store_list_problem_files(store *s, store_file_row_fn fn, void *ctx)
{
    sqlite3 *db = store_db(s);
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(db,
                           "SELECT path, type, reason, CASE state WHEN 2 THEN 'skipped' ELSE 'partial' END, size,"
                           " ingested_at_ns FROM files WHERE state != 1 ORDER BY state DESC, path",
                           -1, &q, NULL) != SQLITE_OK)
        return cairn_fail(CAIRN_ERR_IO, "store: %s", sqlite3_errmsg(db));
    cairn_status st = CAIRN_OK;
    int rc;
    while (st == CAIRN_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        store_file_row r = {col(q, 0), col(q, 1), col(q, 2), col(q, 3), sqlite3_column_int64(q, 4),
                            sqlite3_column_int64(q, 5)};
        st = fn(ctx, &r);
    }
    if (st == CAIRN_OK && rc != SQLITE_DONE)
        st = cairn_fail(CAIRN_ERR_IO, "store: reading files: %s", sqlite3_errmsg(db));
    sqlite3_finalize(q);
    return st;
}

cairn_status store_doc_chunks(store *s, int64_t doc_id, store_chunk_info_fn fn, void *ctx)
{
    sqlite3 *db = store_db(s);
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(db, "SELECT id, ord, page, ntokens, heading_path, text FROM chunks WHERE doc_id = ?1 ORDER BY ord",
                           -1, &q, NULL) != SQLITE_OK)
        return cairn_fail(CAIRN_ERR_IO, "store: %s", sqlite3_errmsg(db));
    sqlite3_bind_int64(q, 1, doc_id);
    cairn_status st = CAIRN_OK;
    int rc;
    while (st == CAIRN_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        store_chunk_info c = {sqlite3_column_int64(q, 0), sqlite3_column_int(q, 1), sqlite3_column_int(q, 2),
                              sqlite3_column_int(q, 3), col(q, 4), col(q, 5)};
        st = fn(ctx, &c);
    }
    if (st == CAIRN_OK && rc != SQLITE_DONE)
        st = cairn_fail(CAIRN_ERR_IO, "store: reading chunks: %s", sqlite3_errmsg(db));
    sqlite3_finalize(q);
    return st;
}
