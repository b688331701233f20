/*
 * api_cairn.c — cairn's own endpoints: /v1/search, /v1/documents (upload,
 * list, delete), /v1/ask and the grounded "cairn-rag" chat model; and
 * /v1/embeddings, /v1/rerank over the embedder (model/embed.h).
 *
 * Uploads are confined to STORE/uploads: a name is one path component
 * (no '/', no "..", no leading '.', no control bytes, valid UTF-8), the
 * directory is opened with O_NOFOLLOW and the file is created relative to
 * it with O_NOFOLLOW | O_EXCL under a temporary name, then renamed: neither
 * a crafted name nor a symbolic link planted in the store can make the
 * server write (or read) outside it. No endpoint takes a server path.
 */
#include "filter/filter.h"
#include "ingest/pipeline.h"
#include "model/embed.h"
#include "rag/rag.h"
#include "server/server_int.h"
#include "server/store_pool.h"
#include "server/util.h"

#include <errno.h>
#include <sqlite3.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_SEARCH_K 1000
#define MAX_EMBED_INPUTS 2048
#define MAX_RAG_K 64
#define MAX_LIST 1000

static int64_t now_s(void) { return cairn_now_ns() / 1000000000LL; }

static void iso_time(int64_t ns, char *out, size_t n)
{
    time_t t = (time_t)(ns / 1000000000);
    struct tm tm;
    if (ns <= 0 || !gmtime_r(&t, &tm) || !strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(out, n, "%s", "");
}

/* ---- open / close ---- */

static void model_id(const char *path, char *out, size_t cap)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    size_t l = strlen(b);
    if (l > 5 && !strcmp(b + l - 5, ".gguf"))
        l -= 5;
    snprintf(out, cap, "%.*s", (int)CAIRN_MIN(l, cap - 1), b);
}

cairn_status server_open_extras(cairn_server *S)
{
    const server_opts *o = &S->o;
    if (o->embed_model || o->rerank_model) {
        embed_opts eo = {.n_threads = o->n_threads > 0 ? o->n_threads : 2};
        if (o->embed_model) {
            CAIRN_TRY(embedder_load(o->embed_model, &eo, &S->emb));
            model_id(o->embed_model, S->embed_id, sizeof S->embed_id);
        }
        if (o->rerank_model) {
            CAIRN_TRY(embedder_load(o->rerank_model, &eo, &S->rerank));
            model_id(o->rerank_model, S->rerank_id, sizeof S->rerank_id);
        }
    }
    if (o->db) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        CAIRN_TRY(store_pool_new(o->db, (int)CAIRN_MAX(2, CAIRN_MIN(2 * n, 8)), &S->stores));
    }
    return CAIRN_OK;
}

void server_close_extras(cairn_server *S)
{
    store_pool_free(S->stores);
    S->stores = NULL;
    embedder_free(S->emb);
    embedder_free(S->rerank);
    S->emb = S->rerank = NULL;
}

/* ---- search ---- */

static cJSON *hit_json(const search_result *res, bool with_text)
{
    const store_hit *h = &res->hit;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "chunk_id", (double)h->chunk_id);
    cJSON_AddNumberToObject(o, "doc_id", (double)h->doc_id);
    cJSON_AddNumberToObject(o, "score", res->score);
    cJSON_AddStringToObject(o, "path", h->path ? h->path : "");
    if (h->rkey && *h->rkey)
        cJSON_AddStringToObject(o, "record", h->rkey);
    cJSON_AddStringToObject(o, "title", h->title ? h->title : "");
    cJSON_AddStringToObject(o, "heading_path", h->heading_path ? h->heading_path : "");
    if (h->page > 0)
        cJSON_AddNumberToObject(o, "page", h->page);
    char t[32];
    iso_time(h->ingested_at_ns, t, sizeof t);
    cJSON_AddStringToObject(o, "ingested_at", t);
    if (res->snippet)
        cJSON_AddStringToObject(o, "snippet", res->snippet);
    if (with_text)
        cJSON_AddStringToObject(o, "text", h->text ? h->text : "");
    cJSON *meta = h->meta_json ? cJSON_Parse(h->meta_json) : NULL;
    if (meta)
        cJSON_AddItemToObject(o, "metadata", meta);
    return o;
}

/* Run a BM25 search with an optional filter on a borrowed handle. */
static cairn_status run_search(srv_store *h, const char *query, const char *filter, size_t k, bool by_doc,
                               search_results *res)
{
    filter_node *f = NULL;
    filter_bits bits = {0};
    bool everything = true;
    int64_t now = now_s();
    /* one read transaction for the whole request: SQLite takes its locks
     * once, not once per statement of the filter and the ten result rows */
    bool txn = sqlite3_exec(store_db(h->s), "BEGIN", NULL, NULL, NULL) == SQLITE_OK;
    cairn_status st = CAIRN_OK;
    if (filter && *filter)
        st = filter_compile(h->s, filter, now, &f);
    if (st == CAIRN_OK)
        st = filter_allowed(h->s, f, 0, now, &bits, &everything);
    bm25_allowed allowed = {bits.bits, bits.nbits};
    if (st == CAIRN_OK)
        st = (by_doc ? search_run_docs : search_run)(h->e, query, everything ? NULL : &allowed, k, res);
    if (txn)
        sqlite3_exec(store_db(h->s), "COMMIT", NULL, NULL, NULL);
    filter_bits_free(&bits);
    filter_free(f);
    return st;
}

static bool str_field(http_req *r, const cJSON *j, const char *name, bool required, const char **out,
                      enum MHD_Result *ret)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, name);
    *out = NULL;
    if (!v || cJSON_IsNull(v)) {
        if (required)
            *ret = reply_error(r, 400, "missing_field", name, "'%s' is required", name);
        return !required;
    }
    if (!cJSON_IsString(v)) {
        *ret = reply_error(r, 400, "invalid_type", name, "'%s' must be a string", name);
        return false;
    }
    *out = v->valuestring;
    return true;
}

static bool int_field(http_req *r, const cJSON *j, const char *name, long lo, long hi, long *out, enum MHD_Result *ret)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, name);
    if (!v || cJSON_IsNull(v))
        return true;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < lo || v->valuedouble > hi) {
        *ret = reply_error(r, 400, "invalid_value", name, "'%s' must be an integer in [%ld, %ld]", name, lo, hi);
        return false;
    }
    *out = (long)v->valuedouble;
    return true;
}

static enum MHD_Result no_store(http_req *r)
{
    return reply_error(r, 404, "no_store", NULL, "this server has no store (run it inside a cairn store, or --db DIR)");
}

enum MHD_Result api_search(http_req *r)
{
    cairn_server *S = r->S;
    if (!S->stores)
        return no_store(r);
    enum MHD_Result ret = MHD_YES;
    cJSON *j = body_json(r, &ret);
    if (!j)
        return ret;
    const char *query, *filter, *mode, *group;
    long k = 10;
    if (!str_field(r, j, "query", true, &query, &ret) || !str_field(r, j, "filter", false, &filter, &ret) ||
        !str_field(r, j, "mode", false, &mode, &ret) || !str_field(r, j, "group", false, &group, &ret) ||
        !int_field(r, j, "k", 1, MAX_SEARCH_K, &k, &ret))
        goto out;
    if (mode && strcmp(mode, "bm25")) {
        ret = reply_error(r, 400, "unsupported_mode", "mode",
                          strcmp(mode, "dense") && strcmp(mode, "hybrid") ? "'mode' must be bm25, dense or hybrid"
                                                                          : "mode '%s' needs a vector index, which this store does not have",
                          mode);
        goto out;
    }
    if (group && strcmp(group, "chunk") && strcmp(group, "doc")) {
        ret = reply_error(r, 400, "invalid_value", "group", "'group' must be chunk or doc");
        goto out;
    }
    srv_store *h;
    cairn_status st = store_pool_get(S->stores, &h);
    if (st != CAIRN_OK) {
        ret = reply_status(r, st, "search");
        goto out;
    }
    search_results res = {0};
    st = run_search(h, query, filter, (size_t)k, group && !strcmp(group, "doc"), &res);
    store_pool_put(S->stores, h);
    if (st != CAIRN_OK) {
        ret = reply_status(r, st, filter ? "search (filter)" : "search");
        goto out;
    }
    cJSON *o = cJSON_CreateObject(), *a = cJSON_AddArrayToObject(o, "results");
    cJSON_AddStringToObject(o, "object", "search.results");
    cJSON_AddStringToObject(o, "query", query);
    cJSON_AddStringToObject(o, "mode", "bm25");
    cJSON_AddNumberToObject(o, "took_ms", res.took_ms);
    for (size_t i = 0; i < res.n; i++)
        cJSON_AddItemToArray(a, hit_json(&res.r[i], true));
    search_results_free(&res);
    ret = reply_json(r, 200, o);
out:
    cJSON_Delete(j);
    return ret;
}

/* ---- documents ---- */

/* Write data to STORE/uploads/name without following links; *path (cairn_free) is where. */
static cairn_status write_upload(const char *db, const char *name, const char *data, size_t len, char **path)
{
    *path = NULL;
    char dir[4096];
    if (snprintf(dir, sizeof dir, "%s/uploads", db) >= (int)sizeof dir)
        return cairn_fail(CAIRN_ERR_TOO_LARGE, "upload: store path too long");
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return cairn_fail(CAIRN_ERR_IO, "upload: cannot create %s: %s", dir, strerror(errno));
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0)
        return cairn_fail(CAIRN_ERR_IO, "upload: %s is not a plain directory: %s", dir, strerror(errno));
    char tmp[64];
    snprintf(tmp, sizeof tmp, ".upload-%d-%llx.tmp", (int)getpid(), (unsigned long long)cairn_mono_ns());
    int fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
        close(dfd);
        return cairn_fail(CAIRN_ERR_IO, "upload: cannot create a file in %s: %s", dir, strerror(errno));
    }
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    bool ok = off == len && fsync(fd) == 0;
    close(fd);
    /* renameat replaces a symlink named `name` itself, never its target */
    if (!ok || renameat(dfd, tmp, dfd, name) != 0) {
        int e = errno;
        unlinkat(dfd, tmp, 0);
        close(dfd);
        return cairn_fail(CAIRN_ERR_IO, "upload: cannot store %s: %s", name, strerror(e));
    }
    close(dfd);
    size_t pl = strlen(dir) + strlen(name) + 2;
    *path = cairn_malloc(pl);
    if (!*path)
        return cairn_fail(CAIRN_ERR_NOMEM, "upload: out of memory");
    snprintf(*path, pl, "%s/%s", dir, name);
    return CAIRN_OK;
}

typedef struct upload_events { const char *outcome; char reason[256]; size_t docs, chunks; } upload_events;

static void on_upload_event(void *ctx, const pipe_event *ev)
{
    upload_events *u = ctx;
    switch (ev->outcome) {
    case PIPE_ADDED: u->outcome = "added"; break;
    case PIPE_UPDATED: u->outcome = "updated"; break;
    case PIPE_UNCHANGED: u->outcome = "unchanged"; break;
    case PIPE_SKIPPED: u->outcome = "skipped"; break;
    case PIPE_FAILED: u->outcome = "failed"; break;
    case PIPE_WARNING: return;
    }
    u->docs += ev->docs;
    u->chunks += ev->chunks;
    if (ev->reason)
        snprintf(u->reason, sizeof u->reason, "%s", ev->reason);
}

enum MHD_Result api_docs_post(http_req *r)
{
    cairn_server *S = r->S;
    if (!S->stores)
        return no_store(r);
    enum MHD_Result ret = MHD_YES;
    const char *ct = req_header(r, "Content-Type");
    bool is_json = ct && !strncasecmp(ct, "application/json", 16);
    cJSON *j = NULL;
    const char *name = NULL, *data = NULL;
    char *decoded = NULL;
    size_t len = 0;
    if (is_json) {
        if (!(j = body_json(r, &ret)))
            return ret;
        const char *text, *b64;
        if (!str_field(r, j, "name", true, &name, &ret) || !str_field(r, j, "text", false, &text, &ret) ||
            !str_field(r, j, "content_base64", false, &b64, &ret))
            goto out;
        if (!!text == !!b64) {
            ret = reply_error(r, 400, "invalid_value", "text", "give exactly one of 'text' and 'content_base64'");
            goto out;
        }
        if (text) {
            data = text;
            len = strlen(text);
        } else {
            cairn_status st = srv_base64_decode(b64, strlen(b64), S->o.max_upload, &decoded, &len);
            if (st != CAIRN_OK) {
                ret = reply_error(r, 400, "invalid_value", "content_base64", "%s", cairn_last_error());
                goto out;
            }
            data = decoded;
        }
    } else {                     /* raw bytes; the name in ?name= */
        name = req_arg(r, "name");
        if (!name) {
            ret = reply_error(r, 400, "missing_field", "name", "a raw upload needs ?name=FILE (or send JSON)");
            goto out;
        }
        data = r->body.data ? r->body.data : "";
        len = r->body.len;
    }
    if (!srv_upload_name_ok(name, strlen(name))) {
        ret = reply_error(r, 400, "invalid_name", "name",
                          "'name' must be a plain file name (no '/', '\\', '..' or leading '.', no control characters, "
                          "at most 200 bytes of UTF-8)");
        goto out;
    }
    store_pool_write_begin(S->stores);
    char *path = NULL;
    upload_events ev = {0};
    srv_store *h = NULL;
    cairn_status st = write_upload(store_pool_dir(S->stores), name, data, len, &path);
    if (st == CAIRN_OK)
        st = store_pool_get(S->stores, &h);
    pipeline *pl = NULL;
    if (st == CAIRN_OK) {
        pipe_options po;
        pipeline_options_from_config(h->s, &po);
        po.on_event = on_upload_event;
        po.event_ctx = &ev;
        st = pipeline_new(h->s, &po, &pl);
        if (st == CAIRN_OK)
            st = pipeline_add_path(pl, path);
        if (st == CAIRN_OK)
            st = pipeline_finish(pl);
        pipeline_free(pl);
        if (st == CAIRN_OK)
            st = store_update_derived(h->s);
    }
    char *key = NULL;
    if (st == CAIRN_OK)
        st = store_path_key(h->s, path, &key);
    store_pool_put(S->stores, h);
    store_pool_write_end(S->stores, st == CAIRN_OK);
    if (st != CAIRN_OK) {
        ret = reply_status(r, st, "upload");
    } else if (ev.outcome && !strcmp(ev.outcome, "failed")) {
        ret = reply_error(r, 422, "ingest_failed", NULL, "%s: %s", name, ev.reason);
    } else {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "object", "document.upload");
        cJSON_AddStringToObject(o, "path", key ? key : "");
        cJSON_AddStringToObject(o, "outcome", ev.outcome ? ev.outcome : "unchanged");
        if (*ev.reason)
            cJSON_AddStringToObject(o, "reason", ev.reason);
        cJSON_AddNumberToObject(o, "documents", (double)ev.docs);
        cJSON_AddNumberToObject(o, "chunks", (double)ev.chunks);
        cJSON_AddNumberToObject(o, "bytes", (double)len);
        ret = reply_json(r, ev.outcome && !strcmp(ev.outcome, "added") ? 201 : 200, o);
    }
    cairn_free(key);
    cairn_free(path);
out:
    cairn_free(decoded);
    cJSON_Delete(j);
    return ret;
}

static bool parse_long_arg(const char *s, long lo, long hi, long *out)
{
    if (!s)
        return true;
    char *e;
    errno = 0;
    long v = strtol(s, &e, 10);
    if (errno || e == s || *e || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

enum MHD_Result api_docs_get(http_req *r)
{
    cairn_server *S = r->S;
    if (!S->stores)
        return no_store(r);
    long limit = 100, offset = 0;
    if (!parse_long_arg(req_arg(r, "limit"), 1, MAX_LIST, &limit) ||
        !parse_long_arg(req_arg(r, "offset"), 0, 1L << 40, &offset))
        return reply_error(r, 400, "invalid_value", "limit", "limit must be 1..%d and offset >= 0", MAX_LIST);
    const char *filter = req_arg(r, "filter");
    if (filter && !srv_utf8_valid(filter, strlen(filter)))
        return reply_error(r, 400, "invalid_encoding", "filter", "the filter is not valid UTF-8");
    srv_store *h;
    cairn_status st = store_pool_get(S->stores, &h);
    if (st != CAIRN_OK)
        return reply_status(r, st, "documents");
    filter_node *f = NULL;
    filter_idset ids = {0};
    cJSON *o = NULL;
    sqlite3_stmt *q = NULL;
    if (filter && *filter && (st = filter_compile(h->s, filter, now_s(), &f)) == CAIRN_OK)
        st = filter_docs(h->s, f, &ids);
    if (st == CAIRN_OK) {
        o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "object", "list");
        cJSON *a = cJSON_AddArrayToObject(o, "data");
        const char *sql = "SELECT id, path, rkey, type, title, size, ingested_at_ns,"
                          " (SELECT count(*) FROM chunks c WHERE c.doc_id = d.id) FROM docs d"
                          " WHERE id > ?1 ORDER BY id LIMIT ?2";
        int64_t total = 0;
        if (sqlite3_prepare_v2(store_db(h->s), sql, -1, &q, NULL) != SQLITE_OK) {
            st = cairn_fail(CAIRN_ERR_IO, "documents: %s", sqlite3_errmsg(store_db(h->s)));
        } else if (f) {
            total = (int64_t)ids.n;
            for (size_t i = (size_t)offset; i < ids.n && i < (size_t)offset + (size_t)limit; i++) {
                sqlite3_reset(q);
                sqlite3_bind_int64(q, 1, ids.ids[i] - 1);
                sqlite3_bind_int64(q, 2, 1);
                if (sqlite3_step(q) == SQLITE_ROW && sqlite3_column_int64(q, 0) == ids.ids[i]) {
                    cJSON *d = cJSON_CreateObject();
                    cJSON_AddNumberToObject(d, "id", (double)sqlite3_column_int64(q, 0));
                    cJSON_AddStringToObject(d, "path", (const char *)sqlite3_column_text(q, 1));
                    cJSON_AddItemToArray(a, d);
                }
            }
        } else {
            sqlite3_stmt *c = NULL;
            if (sqlite3_prepare_v2(store_db(h->s), "SELECT count(*) FROM docs", -1, &c, NULL) == SQLITE_OK &&
                sqlite3_step(c) == SQLITE_ROW)
                total = sqlite3_column_int64(c, 0);
            sqlite3_finalize(c);
            /* offset paging by rank: the id of the offset-th document first */
            int64_t after = 0;
            if (offset > 0) {
                sqlite3_stmt *c2 = NULL;
                if (sqlite3_prepare_v2(store_db(h->s), "SELECT id FROM docs ORDER BY id LIMIT 1 OFFSET ?1", -1, &c2,
                                       NULL) == SQLITE_OK) {
                    sqlite3_bind_int64(c2, 1, offset - 1);
                    after = sqlite3_step(c2) == SQLITE_ROW ? sqlite3_column_int64(c2, 0) : INT64_MAX;
                }
                sqlite3_finalize(c2);
            }
            sqlite3_bind_int64(q, 1, after);
            sqlite3_bind_int64(q, 2, limit);
            while (sqlite3_step(q) == SQLITE_ROW) {
                cJSON *d = cJSON_CreateObject();
                cJSON_AddNumberToObject(d, "id", (double)sqlite3_column_int64(q, 0));
                cJSON_AddStringToObject(d, "path", (const char *)sqlite3_column_text(q, 1));
                cJSON_AddItemToArray(a, d);
            }
        }
        /* the remaining columns for every listed document */
        cJSON *d;
        cJSON_ArrayForEach(d, a) {
            int64_t id = (int64_t)cJSON_GetObjectItem(d, "id")->valuedouble;
            sqlite3_reset(q);
            sqlite3_bind_int64(q, 1, id - 1);
            sqlite3_bind_int64(q, 2, 1);
            if (sqlite3_step(q) != SQLITE_ROW)
                continue;
            const char *rk = (const char *)sqlite3_column_text(q, 2);
            if (rk && *rk)
                cJSON_AddStringToObject(d, "record", rk);
            cJSON_AddStringToObject(d, "type", (const char *)sqlite3_column_text(q, 3));
            const char *title = (const char *)sqlite3_column_text(q, 4);
            cJSON_AddStringToObject(d, "title", title ? title : "");
            cJSON_AddNumberToObject(d, "bytes", (double)sqlite3_column_int64(q, 5));
            char t[32];
            iso_time(sqlite3_column_int64(q, 6), t, sizeof t);
            cJSON_AddStringToObject(d, "ingested_at", t);
            cJSON_AddNumberToObject(d, "chunks", (double)sqlite3_column_int64(q, 7));
        }
        cJSON_AddNumberToObject(o, "total", (double)total);
        cJSON_AddNumberToObject(o, "offset", (double)offset);
        cJSON_AddNumberToObject(o, "limit", (double)limit);
    }
    sqlite3_finalize(q);
    filter_idset_free(&ids);
    filter_free(f);
    store_pool_put(S->stores, h);
    if (st != CAIRN_OK) {
        cJSON_Delete(o);
        return reply_status(r, st, filter ? "documents (filter)" : "documents");
    }
    return reply_json(r, 200, o);
}

enum MHD_Result api_docs_delete(http_req *r)
{
    cairn_server *S = r->S;
    if (!S->stores)
        return no_store(r);
    const char *ids = r->url + strlen("/v1/documents/");
    long id = 0;
    if (!parse_long_arg(ids, 1, INT64_MAX / 2, &id) || !id)
        return reply_error(r, 400, "invalid_value", "id", "DELETE /v1/documents/ID takes a document id (an integer)");
    store_pool_write_begin(S->stores);
    srv_store *h = NULL;
    cairn_status st = store_pool_get(S->stores, &h);
    bool found = false;
    if (st == CAIRN_OK) {
        sqlite3_stmt *q = NULL;
        if (sqlite3_prepare_v2(store_db(h->s), "SELECT 1 FROM docs WHERE id = ?1", -1, &q, NULL) == SQLITE_OK) {
            sqlite3_bind_int64(q, 1, id);
            found = sqlite3_step(q) == SQLITE_ROW;
        }
        sqlite3_finalize(q);
        if (found && (st = store_begin(h->s)) == CAIRN_OK) {
            st = store_doc_delete(h->s, id);
            if (st == CAIRN_OK)
                st = store_commit(h->s);
            else
                store_rollback(h->s);
            if (st == CAIRN_OK)
                st = store_update_derived(h->s);
        }
    }
    store_pool_put(S->stores, h);
    store_pool_write_end(S->stores, found && st == CAIRN_OK);
    if (st != CAIRN_OK)
        return reply_status(r, st, "delete");
    if (!found)
        return reply_error(r, 404, "document_not_found", "id", "no document %ld", id);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", (double)id);
    cJSON_AddStringToObject(o, "object", "document");
    cJSON_AddBoolToObject(o, "deleted", true);
    return reply_json(r, 200, o);
}

/* ---- grounded answers (src/rag) ---- */

/* The sources of a context, as the response's `sources` field, each with
 * its document's metadata: the gateway decides from it whether a passage
 * is private (tag `private`), so a document whose metadata cannot be read
 * gets {"private": null}, which the gateway treats as private (fail
 * closed). */
static cJSON *sources_json(store *s, const rag_context *c)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < c->n; i++) {
        const rag_passage *p = &c->p[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "marker", p->marker);
        cJSON_AddNumberToObject(o, "doc_id", (double)p->doc_id);
        cJSON *ids = cJSON_AddArrayToObject(o, "chunk_ids");
        for (size_t j = 0; j < p->n_chunks; j++)
            cJSON_AddItemToArray(ids, cJSON_CreateNumber((double)p->chunk_ids[j]));
        cJSON_AddStringToObject(o, "path", p->path ? p->path : "");
        if (p->rkey && *p->rkey)
            cJSON_AddStringToObject(o, "record", p->rkey);
        cJSON_AddStringToObject(o, "title", p->title ? p->title : "");
        cJSON_AddStringToObject(o, "heading_path", p->heading_path ? p->heading_path : "");
        if (p->page > 0)
            cJSON_AddNumberToObject(o, "page", p->page);
        cJSON_AddNumberToObject(o, "score", p->best_score);
        char t[32];
        iso_time(p->ingested_at_ns, t, sizeof t);
        cJSON_AddStringToObject(o, "ingested_at", t);
        cJSON_AddStringToObject(o, "staleness", rag_staleness_name(p->stale));
        meta_list m = {0};
        char *mj = NULL;
        cJSON *meta = NULL;
        if (store_doc_meta(s, p->doc_id, &m) == CAIRN_OK && store_meta_json(&m, &mj) == CAIRN_OK)
            meta = cJSON_Parse(mj);
        meta_list_free(&m);
        cairn_free(mj);
        if (!meta && (meta = cJSON_CreateObject()))
            cJSON_AddNullToObject(meta, "private");
        cJSON_AddItemToObject(o, "metadata", meta);
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

/* Retrieve for `question` and build the numbered context (adjacent chunks
 * merged, cut to budget tokens of the model's tokenizer). A 4xx has been
 * queued when false. */
static bool rag_context_for(http_req *r, const cJSON *body, const char *question, size_t budget, rag_context *ctx,
                            cJSON **sources, enum MHD_Result *ret)
{
    cairn_server *S = r->S;
    const char *filter, *mode;
    long k = 5;
    if (!str_field(r, body, "filter", false, &filter, ret) || !str_field(r, body, "mode", false, &mode, ret) ||
        !int_field(r, body, "k", 1, MAX_RAG_K, &k, ret))
        return false;
    rag_query q = {.text = question, .where = filter, .k = (size_t)k, .mode = RAG_MODE_BM25};
    if (mode && rag_mode_from_name(mode, &q.mode) != CAIRN_OK) {
        *ret = reply_error(r, 400, "invalid_value", "mode", "%s", cairn_last_error());
        return false;
    }
    srv_store *h;
    cairn_status st = store_pool_get(S->stores, &h);
    if (st != CAIRN_OK) {
        *ret = reply_status(r, st, "retrieval");
        return false;
    }
    search_results res = {0};
    st = rag_retrieve(h->s, h->e, &q, &res);
    rag_context_opts co = {.budget_tokens = budget, .tok = S->eng ? engine_tokenizer(S->eng) : NULL};
    if (st == CAIRN_OK)
        st = rag_context_build(h->s, &res, &co, ctx);
    if (st == CAIRN_OK)
        ctx->retrieval_ms = res.took_ms;
    if (st == CAIRN_OK && !(*sources = sources_json(h->s, ctx))) {
        rag_context_free(ctx);
        st = cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
    }
    search_results_free(&res);
    store_pool_put(S->stores, h);
    if (st != CAIRN_OK) {
        *ret = st == CAIRN_ERR_UNSUPPORTED ? reply_error(r, 400, "unsupported_mode", "mode", "%s", cairn_last_error())
                                           : reply_status(r, st, filter ? "retrieval (filter)" : "retrieval");
        return false;
    }
    return true;
}

cJSON *rag_prepare(http_req *r, const cJSON *body, chat_msg **msgs, int *n_msgs, cairn_buf *arena,
                   enum MHD_Result *ret);

/* cairn-rag and /v1/ask: the last user message is the question; it is
 * replaced by the numbered context + the question (rag_user_message:
 * chat markers in documents are neutralized), under the client's system
 * message or rag's default one. Returns the sources. */
cJSON *rag_prepare(http_req *r, const cJSON *body, chat_msg **msgs, int *n_msgs, cairn_buf *arena,
                   enum MHD_Result *ret)
{
    cairn_server *S = r->S;
    int qi = -1;
    for (int i = *n_msgs - 1; i >= 0 && qi < 0; i--)
        if (!strcmp((*msgs)[i].role, "user"))
            qi = i;
    if (qi < 0 || !*(*msgs)[qi].content) {
        *ret = reply_error(r, 400, "invalid_value", "messages", "a grounded answer needs a user message");
        return NULL;
    }
    rag_context ctx = {0};
    cJSON *src = NULL;
    /* the passages take at most half of a slot's context */
    if (!rag_context_for(r, body, (*msgs)[qi].content, (size_t)engine_n_ctx(S->eng) / 2, &ctx, &src, ret))
        return NULL;
    cairn_buf user;
    cairn_buf_init(&user, 0);
    chat_msg *nm = cairn_calloc((size_t)*n_msgs + 1, sizeof *nm);
    size_t *offs = cairn_calloc((size_t)*n_msgs + 2, sizeof *offs);
    bool has_system = *n_msgs > 0 && !strcmp((*msgs)[0].role, "system");
    bool ok = nm && offs && rag_user_message(&ctx, (*msgs)[qi].content, &user) == CAIRN_OK;
    for (int i = 0; ok && i < *n_msgs; i++)   /* texts live in the arena, which may move */
        offs[i] = (size_t)((*msgs)[i].content - arena->data);
    size_t at_user = arena->len, at_sys = 0;
    ok = ok && cairn_buf_append(arena, user.data ? user.data : "", user.len) == CAIRN_OK &&
         cairn_buf_putc(arena, '\0') == CAIRN_OK;
    if (ok && !has_system) {
        at_sys = arena->len;
        ok = cairn_buf_puts(arena, rag_default_system_prompt) == CAIRN_OK && cairn_buf_putc(arena, '\0') == CAIRN_OK;
    }
    cairn_buf_free(&user);
    if (!ok) {
        cairn_free(nm);
        cairn_free(offs);
        rag_context_free(&ctx);
        cJSON_Delete(src);
        *ret = reply_error(r, 500, NULL, NULL, "out of memory");
        return NULL;
    }
    int n = 0;
    if (!has_system)
        nm[n++] = (chat_msg){"system", arena->data + at_sys};
    for (int i = 0; i < *n_msgs; i++)
        nm[n++] = (chat_msg){(*msgs)[i].role, arena->data + (i == qi ? at_user : offs[i])};
    cairn_free(offs);
    cairn_free(*msgs);
    *msgs = nm;
    *n_msgs = n;
    rag_context_free(&ctx);
    return src;
}

/* /v1/ask without a chat model: the extractive answer (best sentences of
 * the passages, with their markers). */
enum MHD_Result ask_extractive(http_req *r, const cJSON *body, const char *question);

enum MHD_Result ask_extractive(http_req *r, const cJSON *body, const char *question)
{
    cairn_server *S = r->S;
    enum MHD_Result ret = MHD_YES;
    rag_context ctx = {0};
    cJSON *src = NULL;
    if (!rag_context_for(r, body, question, 1500, &ctx, &src, &ret))
        return ret;
    srv_store *h;
    cairn_status st = store_pool_get(S->stores, &h);
    char *text = NULL;
    rag_sentence *sent = NULL;
    size_t n_sent = 0;
    if (st == CAIRN_OK) {
        st = rag_extract(h->e, &ctx, question, NULL, &sent, &n_sent, &text);
        store_pool_put(S->stores, h);
    }
    if (st != CAIRN_OK) {
        rag_context_free(&ctx);
        cJSON_Delete(src);
        return reply_status(r, st, "extractive answer");
    }
    cJSON *o = cJSON_CreateObject();
    char id[48];
    srv_new_id(S, "ask", id, sizeof id);
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "object", "answer");
    cJSON_AddStringToObject(o, "kind", "extractive");
    cJSON_AddStringToObject(o, "answer", text ? text : "");
    cJSON_AddItemToObject(o, "sources", src);
    cJSON *t = cJSON_AddObjectToObject(o, "timings");
    cJSON_AddNumberToObject(t, "retrieval_ms", ctx.retrieval_ms);
    cairn_free(text);
    cairn_free(sent);
    rag_context_free(&ctx);
    return reply_json(r, 200, o);
}

/* ---- embeddings ---- */

/* The inputs of an embeddings request: a string or an array of strings. */
static bool embed_inputs(http_req *r, const cJSON *in, const char ***texts, size_t **lens, int *n, enum MHD_Result *ret)
{
    int cnt = cJSON_IsString(in) ? 1 : cJSON_IsArray(in) ? cJSON_GetArraySize(in) : -1;
    if (cnt < 1 || cnt > MAX_EMBED_INPUTS) {
        *ret = reply_error(r, 400, "invalid_value", "input", "'input' must be a string or an array of 1..%d strings",
                           MAX_EMBED_INPUTS);
        return false;
    }
    *texts = cairn_calloc((size_t)cnt, sizeof **texts);
    *lens = cairn_calloc((size_t)cnt, sizeof **lens);
    if (!*texts || !*lens) {
        *ret = reply_error(r, 500, NULL, NULL, "out of memory");
        return false;
    }
    for (int i = 0; i < cnt; i++) {
        const cJSON *t = cJSON_IsString(in) ? in : cJSON_GetArrayItem(in, i);
        if (!cJSON_IsString(t)) {
            *ret = reply_error(r, 400, "invalid_value", "input", "input[%d] must be a string (token arrays are not accepted)", i);
            return false;
        }
        (*texts)[i] = t->valuestring;
        (*lens)[i] = strlen(t->valuestring);
    }
    *n = cnt;
    return true;
}

/* A float array printed with %.9g: enough digits that each value parses
 * back to the same float (the vector does not change on the wire). */
static cJSON *float_array(const float *v, int n)
{
    cairn_buf b;
    cairn_buf_init(&b, 0);
    cairn_status st = cairn_buf_putc(&b, '[');
    for (int i = 0; st == CAIRN_OK && i < n; i++)
        st = cairn_buf_printf(&b, i ? ",%.9g" : "%.9g", (double)v[i]);
    if (st == CAIRN_OK)
        st = cairn_buf_putc(&b, ']');
    cJSON *j = st == CAIRN_OK ? cJSON_CreateRaw(b.data) : NULL;
    cairn_buf_free(&b);
    return j;
}

enum MHD_Result api_embeddings(http_req *r)
{
    cairn_server *S = r->S;
    enum MHD_Result ret = MHD_YES;
    cJSON *j = body_json(r, &ret);
    if (!j)
        return ret;
    const char **texts = NULL, *model, *fmt;
    size_t *lens = NULL;
    float *out = NULL;
    int n = 0;
    long dims = 0;
    if (!str_field(r, j, "model", true, &model, &ret) || !str_field(r, j, "encoding_format", false, &fmt, &ret) ||
        !int_field(r, j, "dimensions", 1, 1 << 20, &dims, &ret))
        goto out;
    if (!S->emb || strcmp(model, S->embed_id)) {
        ret = reply_error(r, 404, "model_not_found", "model", S->emb ? "the embedding model is '%s'" : "this server has no embedding model%s",
                          S->emb ? S->embed_id : " (cairn serve --embed-model MODEL)");
        goto out;
    }
    bool b64 = fmt && !strcmp(fmt, "base64");
    if (fmt && !b64 && strcmp(fmt, "float")) {
        ret = reply_error(r, 400, "invalid_value", "encoding_format", "'encoding_format' must be float or base64");
        goto out;
    }
    int dim = embedder_dim(S->emb);
    if (dims && dims != dim) {
        ret = reply_error(r, 400, "invalid_value", "dimensions", "this model gives %d dimensions", dim);
        goto out;
    }
    if (!embed_inputs(r, cJSON_GetObjectItemCaseSensitive(j, "input"), &texts, &lens, &n, &ret))
        goto out;
    out = cairn_calloc((size_t)n * (size_t)dim, sizeof *out);
    if (!out) {
        ret = reply_error(r, 500, NULL, NULL, "out of memory");
        goto out;
    }
    embed_stats es = {0};
    pthread_mutex_lock(&S->emb_mu);
    cairn_status st = embedder_embed(S->emb, NULL, texts, lens, n, out, &es);
    pthread_mutex_unlock(&S->emb_mu);
    if (st != CAIRN_OK) {
        ret = reply_status(r, st, "embeddings");
        goto out;
    }
    if (es.n_truncated) {
        ret = reply_error(r, 400, "context_length_exceeded", "input",
                          "%llu of the inputs exceed the embedding model's context of %d tokens",
                          (unsigned long long)es.n_truncated, embedder_n_ctx(S->emb));
        goto out;
    }
    cJSON *o = cJSON_CreateObject(), *a = cJSON_AddArrayToObject(o, "data");
    cJSON_AddStringToObject(o, "object", "list");
    cJSON_AddStringToObject(o, "model", S->embed_id);
    for (int i = 0; i < n; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "object", "embedding");
        cJSON_AddNumberToObject(e, "index", i);
        if (b64) {
            cairn_buf b;
            cairn_buf_init(&b, 0);
            if (srv_base64_encode(out + (size_t)i * dim, (size_t)dim * sizeof(float), &b) == CAIRN_OK &&
                cairn_buf_putc(&b, '\0') == CAIRN_OK)
                cJSON_AddStringToObject(e, "embedding", b.data);
            cairn_buf_free(&b);
        } else {
            cJSON_AddItemToObject(e, "embedding", float_array(out + (size_t)i * dim, dim));
        }
        cJSON_AddItemToArray(a, e);
    }
    cJSON *u = cJSON_AddObjectToObject(o, "usage");
    cJSON_AddNumberToObject(u, "prompt_tokens", (double)es.n_tokens);
    cJSON_AddNumberToObject(u, "total_tokens", (double)es.n_tokens);
    metrics_tokens(S->metrics, es.n_tokens, 0, 0, false);
    ret = reply_json(r, 200, o);
out:
    cairn_free(out);
    cairn_free(texts);
    cairn_free(lens);
    cJSON_Delete(j);
    return ret;
}

typedef struct ranked { int index; float score; } ranked;

static int by_score(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    return x->score < y->score ? 1 : x->score > y->score ? -1 : x->index - y->index;
}

/* POST /v1/rerank {model, query, documents: [string], top_n?} — the shape
 * of the common rerank APIs: results by relevance_score, highest first. */
enum MHD_Result api_rerank(http_req *r)
{
    cairn_server *S = r->S;
    enum MHD_Result ret = MHD_YES;
    cJSON *j = body_json(r, &ret);
    if (!j)
        return ret;
    const char **docs = NULL, *model, *query;
    size_t *lens = NULL;
    float *scores = NULL;
    ranked *rk = NULL;
    int n = 0;
    long top_n = 0;
    if (!str_field(r, j, "model", true, &model, &ret) || !str_field(r, j, "query", true, &query, &ret) ||
        !int_field(r, j, "top_n", 1, MAX_EMBED_INPUTS, &top_n, &ret))
        goto out;
    if (!S->rerank || strcmp(model, S->rerank_id)) {
        ret = reply_error(r, 404, "model_not_found", "model", "%s", S->rerank ? "unknown reranker" : "this server has no reranker (--rerank-model)");
        goto out;
    }
    if (!embed_inputs(r, cJSON_GetObjectItemCaseSensitive(j, "documents"), &docs, &lens, &n, &ret))
        goto out;
    scores = cairn_calloc((size_t)n, sizeof *scores);
    rk = cairn_calloc((size_t)n, sizeof *rk);
    if (!scores || !rk) {
        ret = reply_error(r, 500, NULL, NULL, "out of memory");
        goto out;
    }
    embed_stats es = {0};
    pthread_mutex_lock(&S->emb_mu);
    cairn_status st = embedder_rerank(S->rerank, NULL, query, strlen(query), docs, lens, n, scores, &es);
    pthread_mutex_unlock(&S->emb_mu);
    if (st != CAIRN_OK) {
        ret = reply_status(r, st, "rerank");
        goto out;
    }
    for (int i = 0; i < n; i++)
        rk[i] = (ranked){i, scores[i]};
    qsort(rk, (size_t)n, sizeof *rk, by_score);
    cJSON *o = cJSON_CreateObject(), *a = cJSON_AddArrayToObject(o, "results");
    cJSON_AddStringToObject(o, "object", "list");
    cJSON_AddStringToObject(o, "model", S->rerank_id);
    for (int i = 0; i < (top_n ? CAIRN_MIN(n, (int)top_n) : n); i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "index", rk[i].index);
        cJSON_AddNumberToObject(e, "relevance_score", rk[i].score);
        cJSON *d = cJSON_AddObjectToObject(e, "document");
        cJSON_AddStringToObject(d, "text", docs[rk[i].index]);
        cJSON_AddItemToArray(a, e);
    }
    cJSON *u = cJSON_AddObjectToObject(o, "usage");
    cJSON_AddNumberToObject(u, "total_tokens", (double)es.n_tokens);
    ret = reply_json(r, 200, o);
out:
    cairn_free(scores);
    cairn_free(rk);
    cairn_free(docs);
    cairn_free(lens);
    cJSON_Delete(j);
    return ret;
}
