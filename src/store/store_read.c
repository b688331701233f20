/* store_read.c — reading chunks for derived indexes, results for display,
 * metadata and statistics. */
#include "store/store_int.h"
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

cairn_status store_chunks_since(store *s, int64_t after_id, size_t limit, store_chunk_fn fn, void *ctx)
{
    sqlite3_stmt *st;
    /* A private statement: the callback may use the cached ones. */
    if (sqlite3_prepare_v2(s->db,
                           "SELECT c.id, c.doc_id, d.title, c.heading_path, c.text, c.page, c.ntokens"
                           " FROM chunks c JOIN docs d ON d.id = c.doc_id WHERE c.id > ?1 ORDER BY c.id LIMIT ?2",
                           -1, &st, NULL) != SQLITE_OK)
        return store_sql_fail(s, CAIRN_ERR_IO, "reading chunks");
    sqlite3_bind_int64(st, 1, after_id);
    sqlite3_bind_int64(st, 2, limit ? (int64_t)limit : -1);
    int rc;
    cairn_status r = CAIRN_OK;
    while (r == CAIRN_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        store_chunk_row row;
        row.id = sqlite3_column_int64(st, 0);
        row.doc_id = sqlite3_column_int64(st, 1);
        row.title = (const char *)sqlite3_column_text(st, 2);
        row.heading_path = (const char *)sqlite3_column_text(st, 3);
        if (!row.heading_path)
            row.heading_path = "";
        row.text = (const char *)sqlite3_column_text(st, 4);
        row.text_len = (size_t)sqlite3_column_bytes(st, 4);
        if (!row.text) {
            row.text = "";
            row.text_len = 0;
        }
        row.page = sqlite3_column_int(st, 5);
        row.ntokens = sqlite3_column_int(st, 6);
        r = fn(ctx, &row);
    }
    if (r == CAIRN_OK && rc != SQLITE_DONE)
        r = store_sql_fail(s, CAIRN_ERR_IO, "reading chunks");
    sqlite3_finalize(st);
    return r;
}

cairn_status store_deletions_since(store *s, int64_t after_seq, store_deletion_fn fn, void *ctx)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT seq, chunk_id FROM chunk_deletions WHERE seq > ?1 ORDER BY seq", -1, &st,
                           NULL) != SQLITE_OK)
        return store_sql_fail(s, CAIRN_ERR_IO, "reading deletions");
    sqlite3_bind_int64(st, 1, after_seq);
    int rc;
    cairn_status r = CAIRN_OK;
    while (r == CAIRN_OK && (rc = sqlite3_step(st)) == SQLITE_ROW)
        r = fn(ctx, sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1));
    if (r == CAIRN_OK && rc != SQLITE_DONE)
        r = store_sql_fail(s, CAIRN_ERR_IO, "reading deletions");
    sqlite3_finalize(st);
    return r;
}

cairn_status store_deletions_trim(store *s, int64_t upto_seq)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "DELETE FROM chunk_deletions WHERE seq <= ?1", -1, &st, NULL) != SQLITE_OK)
        return store_sql_fail(s, CAIRN_ERR_IO, "trimming deletions");
    sqlite3_bind_int64(st, 1, upto_seq);
    cairn_status r = store_step_done(s, st, "trimming deletions");
    sqlite3_finalize(st);
    return r;
}

cairn_status store_deletions_ack(store *s, const char *consumer, int64_t applied_seq)
{
    char key[128];
    if (!consumer || !*consumer || snprintf(key, sizeof key, "deletions_ack.%s", consumer) >= (int)sizeof key)
        return cairn_fail(CAIRN_ERR_INVALID, "deletion log consumer name \"%s\"", consumer ? consumer : "");
    CAIRN_TRY(store_begin(s));
    cairn_status r = store_state_set(s, key, applied_seq);
    sqlite3_stmt *st = NULL;
    int64_t upto = 0;
    bool any = false;
    if (r == CAIRN_OK &&
        sqlite3_prepare_v2(s->db, "SELECT min(CAST(value AS INTEGER)) FROM meta WHERE key LIKE 'deletions!_ack.%' ESCAPE '!'",
                           -1, &st, NULL) != SQLITE_OK)
        r = store_sql_fail(s, CAIRN_ERR_IO, "trimming deletions");
    if (r == CAIRN_OK) {
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
            upto = sqlite3_column_int64(st, 0);
            any = true;
        } else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
            r = store_sql_fail(s, CAIRN_ERR_IO, "trimming deletions");
        }
    }
    sqlite3_finalize(st);
    if (r == CAIRN_OK && any && upto > 0)
        r = store_deletions_trim(s, upto);
    if (r == CAIRN_OK)
        r = store_commit(s);
    else
        store_rollback(s);
    return r;
}

static cairn_status query_int(store *s, const char *sql, int64_t *out)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return store_sql_fail(s, CAIRN_ERR_IO, "querying");
    int rc = sqlite3_step(st);
    *out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return store_sql_fail(s, CAIRN_ERR_IO, "querying");
    return CAIRN_OK;
}

cairn_status store_marks(store *s, int64_t *max_chunk_id, int64_t *max_deletion_seq)
{
    /* sqlite_sequence holds the AUTOINCREMENT high-water marks even when the
     * newest rows were deleted. */
    if (max_chunk_id)
        CAIRN_TRY(query_int(s, "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'chunks'), 0)", max_chunk_id));
    if (max_deletion_seq)
        CAIRN_TRY(query_int(s, "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'chunk_deletions'), 0)",
                            max_deletion_seq));
    return CAIRN_OK;
}

static char *col_dup(sqlite3_stmt *st, int i)
{
    const char *t = (const char *)sqlite3_column_text(st, i);
    return t ? cairn_strdup(t) : NULL;
}

void store_hit_free(store_hit *h)
{
    cairn_free(h->path);
    cairn_free(h->rkey);
    cairn_free(h->title);
    cairn_free(h->type);
    cairn_free(h->heading_path);
    cairn_free(h->text);
    cairn_free(h->meta_json);
    memset(h, 0, sizeof *h);
}

cairn_status store_doc_meta(store *s, int64_t doc_id, meta_list *out)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT key, type, s, n FROM doc_meta WHERE doc_id = ?1 ORDER BY key, ord", -1, &st,
                           NULL) != SQLITE_OK)
        return store_sql_fail(s, CAIRN_ERR_IO, "reading metadata");
    sqlite3_bind_int64(st, 1, doc_id);
    int rc;
    cairn_status r = CAIRN_OK;
    /* list items arrive as consecutive rows of one key */
    char *list_key = NULL;
    char **items = NULL;
    size_t n_items = 0;
    while (r == CAIRN_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *key = (const char *)sqlite3_column_text(st, 0);
        int type = sqlite3_column_int(st, 1);
        const char *sv = (const char *)sqlite3_column_text(st, 2);
        double n = sqlite3_column_double(st, 3);
        if (!key)
            continue;
        if (list_key && (type != META_LIST || strcmp(key, list_key))) {
            r = meta_set_list(out, list_key, (const char *const *)items, n_items);
            for (size_t i = 0; i < n_items; i++)
                cairn_free(items[i]);
            cairn_free(items);
            cairn_free(list_key);
            items = NULL;
            n_items = 0;
            list_key = NULL;
            if (r != CAIRN_OK)
                break;
        }
        switch (type) {
        case META_STRING: r = meta_set_string(out, key, sv ? sv : ""); break;
        case META_NUMBER: r = meta_set_number(out, key, n); break;
        case META_DATE: r = meta_set_date(out, key, n); break;
        case META_BOOL: r = meta_set_bool(out, key, n != 0); break;
        case META_LIST:
            if (!list_key && !(list_key = cairn_strdup(key))) {
                r = cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
                break;
            }
            if (sv) {
                char **ni = cairn_reallocarray(items, n_items + 1, sizeof *ni);
                if (!ni) {
                    r = cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
                    break;
                }
                items = ni;
                if (!(items[n_items] = cairn_strdup(sv))) {
                    r = cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
                    break;
                }
                n_items++;
            }
            break;
        default: r = cairn_fail(CAIRN_ERR_CORRUPT, "metadata %s has unknown type %d", key, type); break;
        }
    }
    if (r == CAIRN_OK && rc != SQLITE_DONE)
        r = store_sql_fail(s, CAIRN_ERR_IO, "reading metadata");
    if (r == CAIRN_OK && list_key)
        r = meta_set_list(out, list_key, (const char *const *)items, n_items);
    for (size_t i = 0; i < n_items; i++)
        cairn_free(items[i]);
    cairn_free(items);
    cairn_free(list_key);
    sqlite3_finalize(st);
    return r;
}

/* Metadata as a JSON object: strings, numbers, booleans, arrays; dates as
 * ISO 8601 strings. */
cairn_status store_meta_json(const meta_list *m, char **out)
{
    *out = NULL;
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
    bool ok = true;
    for (size_t i = 0; ok && i < m->n; i++) {
        const meta_value *v = &m->e[i].v;
        cJSON *j = NULL;
        char date[32];
        switch (v->type) {
        case META_STRING: j = cJSON_CreateString(v->s ? v->s : ""); break;
        case META_NUMBER: j = cJSON_CreateNumber(v->n); break;
        case META_BOOL: j = cJSON_CreateBool(v->n != 0); break;
        case META_DATE:
            meta_format_date(v->n, date);
            j = cJSON_CreateString(date);
            break;
        case META_LIST:
            j = cJSON_CreateArray();
            for (size_t k = 0; j && k < v->n_items; k++) {
                cJSON *it = cJSON_CreateString(v->items[k]);
                if (!it || !cJSON_AddItemToArray(j, it)) {
                    cJSON_Delete(it);
                    ok = false;
                }
            }
            break;
        }
        if (!j || !cJSON_AddItemToObject(o, m->e[i].key, j)) {
            cJSON_Delete(j);
            ok = false;
        }
    }
    char *txt = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (!txt)
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
    *out = cairn_strdup(txt);
    cJSON_free(txt);
    return *out ? CAIRN_OK : cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
}

int64_t store_text_hash(const char *text, size_t len) { return (int64_t)cairn_hash64(text, len); }

cairn_status store_hit_get(store *s, int64_t chunk_id, store_hit *out)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st;
    CAIRN_TRY(store_stmt(s, STMT_HIT, &st));
    sqlite3_bind_int64(st, 1, chunk_id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(st);
        return cairn_fail(CAIRN_ERR_NOT_FOUND, "chunk %lld no longer exists", (long long)chunk_id);
    }
    if (rc != SQLITE_ROW) {
        cairn_status r = store_sql_fail(s, CAIRN_ERR_IO, "reading a chunk");
        sqlite3_reset(st);
        return r;
    }
    out->chunk_id = sqlite3_column_int64(st, 0);
    out->doc_id = sqlite3_column_int64(st, 1);
    out->path = col_dup(st, 2);
    out->rkey = col_dup(st, 3);
    out->title = col_dup(st, 4);
    out->type = col_dup(st, 5);
    out->heading_path = col_dup(st, 6);
    out->text = col_dup(st, 7);
    out->page = sqlite3_column_int(st, 8);
    out->ingested_at_ns = sqlite3_column_int64(st, 9);
    out->mtime_ns = sqlite3_column_int64(st, 10);
    out->expires_at = sqlite3_column_int64(st, 11);
    bool hashed = sqlite3_column_type(st, 12) != SQLITE_NULL;
    int64_t want = sqlite3_column_int64(st, 12);
    size_t tlen = (size_t)sqlite3_column_bytes(st, 7);
    sqlite3_reset(st);
    if (out->text && hashed && store_text_hash(out->text, tlen) != want) {
        cairn_status r = cairn_fail(CAIRN_ERR_CORRUPT,
                                    "store %s: chunk %lld of %s is damaged (its text does not match its checksum); "
                                    "run `cairn check` and `cairn repair`",
                                    s->dir, (long long)chunk_id, out->path ? out->path : "?");
        store_hit_free(out);
        return r;
    }
    if (!out->path || !out->rkey || !out->type || !out->heading_path || !out->text) {
        store_hit_free(out);
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
    }
    meta_list m = {0};
    cairn_status r = store_doc_meta(s, out->doc_id, &m);
    if (r == CAIRN_OK)
        r = store_meta_json(&m, &out->meta_json);
    meta_list_free(&m);
    if (r != CAIRN_OK)
        store_hit_free(out);
    return r;
}

static int64_t file_size(const char *dir, const char *name)
{
    char p[4096];
    struct stat sb;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return stat(p, &sb) == 0 ? (int64_t)sb.st_size : 0;
}

cairn_status store_get_stats(store *s, store_stats *o)
{
    memset(o, 0, sizeof *o);
    CAIRN_TRY(query_int(s, "SELECT count(*) FROM files WHERE state = 1", &o->files));
    CAIRN_TRY(query_int(s, "SELECT count(*) FROM files WHERE state = 2", &o->files_skipped));
    CAIRN_TRY(query_int(s, "SELECT count(*) FROM files WHERE state = 0", &o->files_partial));
    CAIRN_TRY(query_int(s, "SELECT count(*) FROM files WHERE state = 3", &o->files_failed));
    CAIRN_TRY(query_int(s, "SELECT count(*) FROM docs", &o->docs));
    CAIRN_TRY(query_int(s, "SELECT count(*) FROM chunks", &o->chunks));
    CAIRN_TRY(query_int(s, "SELECT coalesce(sum(size), 0) FROM files WHERE state = 1", &o->bytes));
    CAIRN_TRY(query_int(s, "SELECT coalesce(sum(nbytes), 0) FROM docs", &o->text_bytes));
    CAIRN_TRY(query_int(s, "SELECT coalesce(max(ingested_at_ns), 0) FROM files", &o->last_sync_ns));
    CAIRN_TRY(query_int(s, "SELECT coalesce(min(ingested_at_ns), 0) FROM docs", &o->oldest_ingest_ns));
    CAIRN_TRY(store_state_get(s, "sync_gen", 0, &o->sync_gen));
    o->db_bytes = file_size(s->dir, STORE_DB_NAME) + file_size(s->dir, STORE_DB_NAME "-wal");
    return CAIRN_OK;
}
