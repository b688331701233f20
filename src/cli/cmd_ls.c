/* cmd_ls.c — cairn ls (documents with state, chunks and age; skipped and
 * unfinished files with their reasons) and cairn show (one document: its
 * metadata and its chunks with where each came from). What a user would
 * otherwise open the SQLite file for. Reads through store/store_list.h. */
#include "cli/cli_store.h"
#include "cli/cli_util.h"
#include "cli/commands.h"
#include "filter/filter.h"
#include "store/store_list.h"
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void age(int64_t ns, char *out, size_t n)
{
    int64_t s = ns ? (cairn_now_ns() - ns) / 1000000000LL : -1;
    if (s < 0)
        snprintf(out, n, "-");
    else if (s < 120)
        snprintf(out, n, "%llds", (long long)s);
    else if (s < 7200)
        snprintf(out, n, "%lldm", (long long)(s / 60));
    else if (s < 172800)
        snprintf(out, n, "%lldh", (long long)(s / 3600));
    else
        snprintf(out, n, "%lldd", (long long)(s / 86400));
}

static void iso(int64_t ns, char *out, size_t n)
{
    time_t t = (time_t)(ns / 1000000000LL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

typedef struct ls_ctx {
    const filter_idset *only;
    cJSON *arr;
    size_t docs, chunks, skipped, partial;
} ls_ctx;

static cairn_status ls_doc(void *ctx, const store_doc_row *r)
{
    ls_ctx *c = ctx;
    if (c->only && !filter_idset_has(c->only, r->id))
        return CAIRN_OK;
    c->docs++;
    c->chunks += (size_t)r->nchunks;
    if (c->arr) {
        cJSON *o = cJSON_CreateObject();
        if (!o)
            return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
        cJSON_AddItemToArray(c->arr, o);
        char ts[40];
        iso(r->ingested_at_ns, ts, sizeof ts);
        cJSON_AddNumberToObject(o, "doc_id", (double)r->id);
        cJSON_AddStringToObject(o, "path", r->path);
        cJSON_AddStringToObject(o, "key", r->rkey);
        cJSON_AddStringToObject(o, "type", r->type);
        cJSON_AddStringToObject(o, "state", r->state);
        cJSON_AddNumberToObject(o, "chunks", (double)r->nchunks);
        cJSON_AddNumberToObject(o, "bytes", (double)r->nbytes);
        cJSON_AddStringToObject(o, "ingested_at", ts);
        return CAIRN_OK;
    }
    char a[16];
    age(r->ingested_at_ns, a, sizeof a);
    printf("%-8s %7lld %5s  %-9s %s%s%s\n", r->state, (long long)r->nchunks, a, r->type, r->path, *r->rkey ? "#" : "",
           r->rkey);
    return CAIRN_OK;
}

static cairn_status ls_file(void *ctx, const store_file_row *r)
{
    ls_ctx *c = ctx;
    if (!strcmp(r->state, "skipped"))
        c->skipped++;
    else
        c->partial++;
    const char *why = *r->reason ? r->reason
                      : !strcmp(r->state, "partial") ? "not finished (failed or interrupted): retried on the next add or sync"
                                                     : "";
    if (c->arr) {
        cJSON *o = cJSON_CreateObject();
        if (!o)
            return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
        cJSON_AddItemToArray(c->arr, o);
        cJSON_AddStringToObject(o, "path", r->path);
        cJSON_AddStringToObject(o, "state", r->state);
        cJSON_AddStringToObject(o, "reason", why);
        cJSON_AddNumberToObject(o, "bytes", (double)r->size);
        return CAIRN_OK;
    }
    char a[16];
    age(r->ingested_at_ns, a, sizeof a);
    printf("%-8s %7s %5s  %-9s %s: %s\n", r->state, "-", a, *r->type ? r->type : "-", r->path, why);
    return CAIRN_OK;
}

static void ls_usage(FILE *f)
{
    fprintf(f, "usage: cairn ls [--where FILTER] [--json] [--db DIR]\n"
               "  Every document (state, chunks, age, type, path#key), then the files that were\n"
               "  skipped or did not finish, with their reasons. --where keeps the documents\n"
               "  matching a filter (docs/filters.md) and leaves out the files.\n");
}

int cmd_ls(int argc, char **argv)
{
    const char *db = NULL, *where = NULL;
    bool json = false;
    if (!cli_take_db(&argc, argv, &db))
        return 2;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            ls_usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--json")) {
            json = true;
        } else if (!strcmp(argv[i], "--where") || !strcmp(argv[i], "-w")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "cairn ls: --where needs a filter expression (see docs/filters.md)\n");
                return 2;
            }
            where = argv[++i];
        } else {
            fprintf(stderr, "cairn ls: unknown argument '%s'\n", argv[i]);
            ls_usage(stderr);
            return 2;
        }
    }
    store *s = NULL;
    filter_node *f = NULL;
    filter_idset ids = {0};
    cairn_status st = cli_open_store(db, &s);
    if (st == CAIRN_OK && where)
        st = filter_compile(s, where, cairn_now_ns() / 1000000000LL, &f);
    if (st == CAIRN_OK && where)
        st = filter_docs(s, f, &ids);
    ls_ctx c = {where ? &ids : NULL, NULL, 0, 0, 0, 0};
    cJSON *root = NULL, *files = NULL;
    if (st == CAIRN_OK && json) {
        root = cJSON_CreateObject();
        c.arr = cJSON_AddArrayToObject(root, "documents");
        if (!root || !c.arr)
            st = cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
    }
    if (st == CAIRN_OK && !json)
        printf("%-8s %7s %5s  %-9s %s\n", "STATE", "CHUNKS", "AGE", "TYPE", "PATH");
    if (st == CAIRN_OK)
        st = store_list_docs(s, ls_doc, &c);
    if (st == CAIRN_OK && !where) {
        if (json && !(c.arr = files = cJSON_AddArrayToObject(root, "files")))
            st = cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
        if (st == CAIRN_OK)
            st = store_list_problem_files(s, ls_file, &c);
    }
    int rc = 0;
    if (st != CAIRN_OK) {
        cli_error("ls", st);
        rc = 1;
    } else if (json) {
        rc = cli_print_json(root);
        root = NULL;
    } else if (where) {
        printf("%zu documents, %zu chunks (matching the filter)\n", c.docs, c.chunks);
    } else {
        printf("%zu documents, %zu chunks; %zu files skipped, %zu not finished\n", c.docs, c.chunks, c.skipped,
               c.partial);
    }
    cJSON_Delete(root);
    filter_idset_free(&ids);
    filter_free(f);
    store_close(s);
    return rc;
}

/* ---- show ---- */
typedef struct show_ctx {
    store *s;
    size_t n;
    int64_t first_id;
    bool list;          /* several documents: one line each */
    bool json;
    cJSON *root;
    int chunk_chars;
} show_ctx;

static void print_value(const meta_value *v)
{
    char d[32];
    switch (v->type) {
    case META_STRING: printf("%s", v->s); break;
    case META_NUMBER: printf("%.15g", v->n); break;
    case META_DATE:
        meta_format_date(v->n, d);
        printf("%s", d);
        break;
    case META_BOOL: printf("%s", v->n ? "true" : "false"); break;
    case META_LIST:
        for (size_t i = 0; i < v->n_items; i++)
            printf("%s%s", i ? ", " : "", v->items[i]);
        break;
    }
}

static cairn_status show_chunk(void *ctx, const store_chunk_info *c)
{
    show_ctx *sc = ctx;
    if (sc->json) {
        cJSON *arr = cJSON_GetObjectItem(sc->root, "chunks");
        cJSON *o = cJSON_CreateObject();
        if (!arr || !o) {
            cJSON_Delete(o);
            return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
        }
        cJSON_AddItemToArray(arr, o);
        cJSON_AddNumberToObject(o, "ord", c->ord);
        cJSON_AddNumberToObject(o, "chunk_id", (double)c->id);
        cJSON_AddStringToObject(o, "heading_path", c->heading_path);
        cJSON_AddNumberToObject(o, "page", c->page);
        cJSON_AddNumberToObject(o, "tokens", c->ntokens);
        cJSON_AddStringToObject(o, "text", c->text);
        return CAIRN_OK;
    }
    printf("  #%-4d chunk %-8lld %4d tokens", c->ord, (long long)c->id, c->ntokens);
    if (*c->heading_path)
        printf("  \xE2\x80\xBA %s", c->heading_path);
    if (c->page > 0)
        printf("  p. %d", c->page);
    printf("\n      ");
    /* the start of the text, on one line, cut at a character boundary */
    int shown = 0;
    const unsigned char *p = (const unsigned char *)c->text;
    for (; *p; p++) {
        if ((*p & 0xC0) != 0x80 && shown++ == sc->chunk_chars)
            break;
        putchar(*p < 0x20 ? ' ' : *p);
    }
    printf("%s\n", *p ? " \xE2\x80\xA6" : "");
    return CAIRN_OK;
}

static cairn_status show_doc(void *ctx, const store_doc_row *r)
{
    show_ctx *sc = ctx;
    if (sc->n++ == 0)
        sc->first_id = r->id;
    if (sc->list) {
        printf("  %-8lld %-24s %6lld chunks  %s\n", (long long)r->id, *r->rkey ? r->rkey : "(whole file)",
               (long long)r->nchunks, r->title ? r->title : "");
        return CAIRN_OK;
    }
    char ts[40];
    iso(r->ingested_at_ns, ts, sizeof ts);
    meta_list m = {0};
    CAIRN_TRY(store_doc_meta(sc->s, r->id, &m));
    if (sc->json) {
        cJSON *o = sc->root = cJSON_CreateObject();
        char *mj = NULL;
        cairn_status st = o ? store_meta_json(&m, &mj) : cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
        meta_list_free(&m);
        CAIRN_TRY(st);
        cJSON_AddNumberToObject(o, "doc_id", (double)r->id);
        cJSON_AddStringToObject(o, "path", r->path);
        cJSON_AddStringToObject(o, "key", r->rkey);
        cJSON_AddStringToObject(o, "type", r->type);
        if (r->title)
            cJSON_AddStringToObject(o, "title", r->title);
        cJSON_AddStringToObject(o, "state", r->state);
        cJSON_AddStringToObject(o, "ingested_at", ts);
        cJSON_AddNumberToObject(o, "bytes", (double)r->nbytes);
        cJSON *mo = mj ? cJSON_Parse(mj) : NULL;
        cJSON_AddItemToObject(o, "metadata", mo ? mo : cJSON_CreateObject());
        cairn_free(mj);
        cJSON_AddArrayToObject(o, "chunks");
        return store_doc_chunks(sc->s, r->id, show_chunk, sc);
    }
    printf("document %lld: %s%s%s\n", (long long)r->id, r->path, *r->rkey ? "#" : "", r->rkey);
    printf("  type:      %s\n  title:     %s\n  state:     %s\n  ingested:  %s\n  bytes:     %lld\n  chunks:    %lld\n",
           r->type, r->title ? r->title : "", r->state, ts, (long long)r->nbytes, (long long)r->nchunks);
    if (r->expires_at > 0) {
        char ex[40];
        iso(r->expires_at * 1000000000LL, ex, sizeof ex);
        printf("  expires:   %s\n", ex);
    }
    printf("metadata:\n");
    for (size_t i = 0; i < m.n; i++) {
        printf("  %s: ", m.e[i].key);
        print_value(&m.e[i].v);
        printf("\n");
    }
    meta_list_free(&m);
    printf("chunks (order, id, tokens, heading path, page):\n");
    return store_doc_chunks(sc->s, r->id, show_chunk, sc);
}

typedef struct pick_ctx {
    const char *want_key;   /* NULL: every document of the path counts */
    size_t n;
    int64_t id;
} pick_ctx;

static cairn_status pick_doc(void *ctx, const store_doc_row *r)
{
    pick_ctx *p = ctx;
    if (p->want_key && strcmp(p->want_key, r->rkey))
        return CAIRN_OK;
    if (p->n++ == 0)
        p->id = r->id;
    return CAIRN_OK;
}

static bool all_digits(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

int cmd_show(int argc, char **argv)
{
    const char *db = NULL, *what = NULL;
    bool json = false;
    if (!cli_take_db(&argc, argv, &db))
        return 2;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: cairn show PATH|PATH#KEY|DOC_ID [--json] [--db DIR]\n"
                   "  One document: its fields, metadata and chunks (order, id, tokens, heading path,\n"
                   "  page, the start of the text). A file of many records lists them; show one by\n"
                   "  its DOC_ID or PATH#KEY.\n");
            return 0;
        } else if (!strcmp(argv[i], "--json")) {
            json = true;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "cairn show: unknown option '%s'\n", argv[i]);
            return 2;
        } else if (what) {
            fprintf(stderr, "cairn show: one PATH or DOC_ID at a time\n");
            return 2;
        } else {
            what = argv[i];
        }
    }
    if (!what) {
        fprintf(stderr, "usage: cairn show PATH|PATH#KEY|DOC_ID [--json] [--db DIR]\n");
        return 2;
    }
    store *s = NULL;
    cairn_status st = cli_open_store(db, &s);
    show_ctx sc = {s, 0, 0, false, json, NULL, 100};
    char *key = NULL;
    int rc = 1;
    if (st == CAIRN_OK && all_digits(what)) {
        st = store_doc_row_get(s, strtoll(what, NULL, 10), show_doc, &sc);
        if (st == CAIRN_ERR_NOT_FOUND)
            cairn_clear_error(); /* maybe a file named 123 */
    }
    if (st == CAIRN_OK && !sc.n) {
        /* PATH, or PATH#KEY for one record of a JSONL/CSV file */
        pick_ctx pk = {NULL, 0, 0};
        st = store_path_key(s, what, &key);
        if (st == CAIRN_OK)
            st = store_docs_of_path(s, key, pick_doc, &pk, &pk.n);
        const char *hash = strrchr(what, '#');
        if (st == CAIRN_OK && pk.n == 0 && hash) {
            char *base = cairn_strndup(what, (size_t)(hash - what));
            cairn_free(key);
            key = NULL;
            pk.want_key = hash + 1;
            st = base ? store_path_key(s, base, &key) : cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
            cairn_free(base);
            size_t all = 0;
            pk.n = 0;
            if (st == CAIRN_OK)
                st = store_docs_of_path(s, key, pick_doc, &pk, &all);
        }
        if (st == CAIRN_OK && pk.n == 0)
            st = cairn_fail(CAIRN_ERR_NOT_FOUND, "no document for %s (see cairn ls)", what);
        else if (st == CAIRN_OK && pk.n == 1)
            st = store_doc_row_get(s, pk.id, show_doc, &sc);
        else if (st == CAIRN_OK) {
            printf("%s holds %zu documents (show one by its id or as PATH#KEY):\n", key, pk.n);
            sc.list = true;
            st = store_docs_of_path(s, key, show_doc, &sc, NULL);
        }
    }
    if (st != CAIRN_OK)
        cli_error("show", st);
    else if (json && sc.root) {
        rc = cli_print_json(sc.root);
        sc.root = NULL;
    } else
        rc = 0;
    cJSON_Delete(sc.root);
    cairn_free(key);
    store_close(s);
    return rc;
}
