/* test_store.c — the SQLite store: create/open, schema version refusal,
 * document put/replace with stable chunk ids, deletion log, removal by
 * path, metadata round trip, stats, allocation failures. */
#include "t.h"
#include "store/store.h"
#include <sqlite3.h>
#include <sys/stat.h>

static char store_path[1200];

static void fresh_store(const char *name)
{
    const char *dir = t_tmpdir(name);
    snprintf(store_path, sizeof store_path, "%s/.cairn", dir);
    CHECK_OK(store_create(store_path));
}

static void make_chunks(chunk_list *cl, const char *const *texts, size_t n)
{
    memset(cl, 0, sizeof *cl);
    ingest_doc d;
    ingest_doc_init(&d);
    d.key = cairn_strdup("");
    d.title = cairn_strdup("T");
    d.type = "text";
    for (size_t i = 0; i < n; i++)
        CHECK_OK(ingest_doc_add_block(&d, BLOCK_PARAGRAPH, 0, 0, texts[i], strlen(texts[i])));
    chunk_options o = {.max_tokens = 16, .overlap_tokens = 0};
    CHECK_OK(chunk_doc(&d, &o, cl));
    ingest_doc_free(&d);
}

typedef struct collect { int64_t ids[64]; int n; } collect;

static cairn_status collect_chunk(void *ctx, const store_chunk_row *r)
{
    collect *c = ctx;
    if (c->n < 64)
        c->ids[c->n++] = r->id;
    return CAIRN_OK;
}

static cairn_status collect_del(void *ctx, int64_t seq, int64_t id)
{
    (void)seq;
    collect *c = ctx;
    if (c->n < 64)
        c->ids[c->n++] = id;
    return CAIRN_OK;
}

static store_doc_in doc_in(const char *path, const char *hash, const meta_list *m, const chunk_list *cl)
{
    store_doc_in in = {.path = path, .rkey = "", .type = "text", .title = "T", .size = 10, .mtime_ns = 1000000000LL,
                       .content_hash = hash, .doc_hash = hash, .ingested_at_ns = cairn_now_ns(), .sync_gen = 1,
                       .meta = m, .chunks = cl};
    return in;
}

static void test_create_open(void)
{
    fresh_store("store_create");
    store *s = NULL;
    CHECK_OK(store_open(store_path, &s));
    CHECK(s != NULL);
    CHECK(store_create(store_path) == CAIRN_ERR_INVALID);   /* exists */
    int64_t v;
    CHECK_OK(store_state_get(s, "schema_version", 0, &v));
    CHECK_EQ_INT(v, STORE_SCHEMA_VERSION);
    CHECK_OK(store_state_set(s, "bm25.mark", 42));
    CHECK_OK(store_state_get(s, "bm25.mark", 0, &v));
    CHECK_EQ_INT(v, 42);
    CHECK_OK(store_state_get(s, "absent", -7, &v));
    CHECK_EQ_INT(v, -7);
    store_close(s);
    CHECK(store_open("/nonexistent/dir/.cairn", &s) == CAIRN_ERR_NOT_FOUND);
}

static void test_newer_schema_refused(void)
{
    fresh_store("store_newer");
    char db[1300];
    snprintf(db, sizeof db, "%s/store.db", store_path);
    sqlite3 *h;
    CHECK(sqlite3_open(db, &h) == SQLITE_OK);
    CHECK(sqlite3_exec(h, "UPDATE meta SET value = 99 WHERE key = 'schema_version'", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(h);
    store *s = NULL;
    CHECK(store_open(store_path, &s) == CAIRN_ERR_VERSION);
    CHECK(s == NULL);
    CHECK(strstr(cairn_last_error(), "newer") != NULL);
}

static void test_not_a_store(void)
{
    const char *dir = t_tmpdir("store_garbage");
    char p[1300];
    snprintf(p, sizeof p, "%s/.cairn", dir);
    CHECK(mkdir(p, 0755) == 0);
    snprintf(p, sizeof p, "%s/.cairn/store.db", dir);
    FILE *f = fopen(p, "w");
    fputs("this is not a database, just text padding padding padding padding padding padding padding padding", f);
    fclose(f);
    snprintf(p, sizeof p, "%s/.cairn", dir);
    store *s = NULL;
    cairn_status st = store_open(p, &s);
    CHECK(st == CAIRN_ERR_CORRUPT);
    CHECK(s == NULL);
}

static void test_put_replace_stable_ids(void)
{
    fresh_store("store_put");
    store *s;
    CHECK_OK(store_open(store_path, &s));
    const char *v1[] = {"Alpha paragraph one has several words in it here.", "Beta paragraph two has several words in it here.", "Gamma paragraph three has several words in it here."};
    chunk_list cl;
    make_chunks(&cl, v1, 3);
    CHECK_EQ_INT(cl.n, 3);
    meta_list m = {0};
    CHECK_OK(meta_set_string(&m, "lang", "en"));
    const char *tags[] = {"x", "y"};
    CHECK_OK(meta_set_list(&m, "tags", tags, 2));
    CHECK_OK(meta_set_number(&m, "path", 5));   /* builtin name: ignored */
    store_doc_in in = doc_in("a.txt", "h1", &m, &cl);
    store_put_result r;
    CHECK_OK(store_doc_put(s, &in, &r));
    CHECK_EQ_INT(r.chunks_added, 3);
    int64_t doc = r.doc_id;
    collect c = {0};
    CHECK_OK(store_chunks_since(s, 0, 0, collect_chunk, &c));
    CHECK_EQ_INT(c.n, 3);
    int64_t first_ids[3] = {c.ids[0], c.ids[1], c.ids[2]};

    /* same hash: unchanged */
    CHECK_OK(store_doc_put(s, &in, &r));
    CHECK(r.unchanged);
    CHECK_EQ_INT(r.doc_id, doc);

    /* edit the middle paragraph: the other two chunks keep their ids */
    chunk_list cl2;
    const char *v2[] = {"Alpha paragraph one has several words in it here.", "Beta paragraph CHANGED has several words in it here.", "Gamma paragraph three has several words in it here."};
    make_chunks(&cl2, v2, 3);
    in = doc_in("a.txt", "h2", &m, &cl2);
    CHECK_OK(store_doc_put(s, &in, &r));
    CHECK(!r.unchanged);
    CHECK_EQ_INT(r.doc_id, doc);
    CHECK_EQ_INT(r.chunks_kept, 2);
    CHECK_EQ_INT(r.chunks_added, 1);
    CHECK_EQ_INT(r.chunks_removed, 1);
    c.n = 0;
    CHECK_OK(store_chunks_since(s, 0, 0, collect_chunk, &c));
    CHECK_EQ_INT(c.n, 3);
    CHECK_EQ_INT(c.ids[0], first_ids[0]);
    CHECK_EQ_INT(c.ids[1], first_ids[2]);
    CHECK(c.ids[2] > first_ids[2]);   /* new chunk gets a new, higher id */
    collect d = {0};
    CHECK_OK(store_deletions_since(s, 0, collect_del, &d));
    CHECK_EQ_INT(d.n, 1);
    CHECK_EQ_INT(d.ids[0], first_ids[1]);

    /* hit: path, text, metadata JSON */
    store_hit h;
    CHECK_OK(store_hit_get(s, first_ids[0], &h));
    CHECK_EQ_STR(h.path, "a.txt");
    CHECK_EQ_STR(h.text, "Alpha paragraph one has several words in it here.");
    CHECK(strstr(h.meta_json, "\"tags\":[\"x\",\"y\"]") != NULL);
    CHECK(strstr(h.meta_json, "\"lang\":\"en\"") != NULL);
    CHECK(strstr(h.meta_json, "\"path\":\"a.txt\"") != NULL);
    CHECK(strstr(h.meta_json, "\"modified\":\"1970-01-01T00:00:01Z\"") != NULL);
    store_hit_free(&h);
    CHECK(store_hit_get(s, first_ids[1], &h) == CAIRN_ERR_NOT_FOUND);

    /* typed metadata round trip */
    meta_list back = {0};
    CHECK_OK(store_doc_meta(s, doc, &back));
    const meta_value *tv = meta_get(&back, "tags");
    CHECK(tv && tv->type == META_LIST && tv->n_items == 2 && !strcmp(tv->items[1], "y"));
    const meta_value *sz = meta_get(&back, "size");
    CHECK(sz && sz->type == META_NUMBER && sz->n == 10);
    const meta_value *pv = meta_get(&back, "path");
    CHECK(pv && pv->type == META_STRING);
    meta_list_free(&back);

    /* marks */
    int64_t mc, md;
    CHECK_OK(store_marks(s, &mc, &md));
    CHECK_EQ_INT(mc, c.ids[2]);
    CHECK_EQ_INT(md, 1);

    /* delete: all chunk deletions logged */
    CHECK_OK(store_doc_delete(s, doc));
    d.n = 0;
    CHECK_OK(store_deletions_since(s, 1, collect_del, &d));
    CHECK_EQ_INT(d.n, 3);
    store_stats st;
    CHECK_OK(store_get_stats(s, &st));
    CHECK_EQ_INT(st.docs, 0);
    CHECK_EQ_INT(st.chunks, 0);
    CHECK_OK(store_deletions_trim(s, 4));
    d.n = 0;
    CHECK_OK(store_deletions_since(s, 0, collect_del, &d));
    CHECK_EQ_INT(d.n, 0);
    chunk_list_free(&cl);
    chunk_list_free(&cl2);
    meta_list_free(&m);
    store_close(s);
}

static void put_file(store *s, const char *path, chunk_list *cl)
{
    store_file f = {0};
    f.path = (char *)path;
    f.size = 10;
    f.state = STORE_FILE_OK;
    snprintf(f.content_hash, sizeof f.content_hash, "%s", "abc");
    CHECK_OK(store_file_put(s, &f, "text", NULL));
    store_doc_in in = doc_in(path, path, NULL, cl);
    in.file_id = f.id;
    CHECK_OK(store_doc_put(s, &in, NULL));
}

static cairn_status count_file(void *ctx, const store_file *f)
{
    (void)f;
    (*(int *)ctx)++;
    return CAIRN_OK;
}

static void test_remove_under(void)
{
    fresh_store("store_rm");
    store *s;
    CHECK_OK(store_open(store_path, &s));
    const char *v[] = {"Some text here."};
    chunk_list cl;
    make_chunks(&cl, v, 1);
    put_file(s, "docs/a.md", &cl);
    put_file(s, "docs/sub/b.md", &cl);
    put_file(s, "docs2/c.md", &cl);
    put_file(s, "docsx.md", &cl);
    int n = 0;
    CHECK_OK(store_files_under(s, "docs", count_file, &n));
    CHECK_EQ_INT(n, 2);
    size_t nf, nd;
    CHECK_OK(store_remove_under(s, "docs/", &nf, &nd));
    CHECK_EQ_INT(nf, 2);
    CHECK_EQ_INT(nd, 2);
    store_file f;
    CHECK(store_file_get(s, "docs/a.md", &f) == CAIRN_ERR_NOT_FOUND);
    CHECK_OK(store_file_get(s, "docs2/c.md", &f));
    store_file_free(&f);
    /* move keeps chunks, changes path metadata */
    CHECK_OK(store_file_get(s, "docsx.md", &f));
    CHECK_OK(store_file_move(s, f.id, "moved/x.md"));
    store_file_free(&f);
    collect c = {0};
    CHECK_OK(store_chunks_since(s, 0, 0, collect_chunk, &c));
    CHECK_EQ_INT(c.n, 2);
    store_hit h;
    CHECK_OK(store_hit_get(s, c.ids[1], &h));
    CHECK_EQ_STR(h.path, "moved/x.md");
    CHECK(strstr(h.meta_json, "\"path\":\"moved/x.md\"") != NULL);
    store_hit_free(&h);
    CHECK_OK(store_remove_under(s, "", &nf, &nd));
    CHECK_EQ_INT(nf, 2);
    chunk_list_free(&cl);
    store_close(s);
}

static void test_paths(void)
{
    fresh_store("store_paths");
    store *s;
    CHECK_OK(store_open(store_path, &s));
    char *k, *a;
    char in[1400];
    snprintf(in, sizeof in, "%s/../docs/./x/../a.md", store_path);
    CHECK_OK(store_path_key(s, in, &k));
    CHECK_EQ_STR(k, "docs/a.md");
    CHECK_OK(store_path_abs(s, k, &a));
    CHECK(strstr(a, "/docs/a.md") != NULL && a[0] == '/');
    cairn_free(k);
    cairn_free(a);
    CHECK_OK(store_path_key(s, "/elsewhere/file.txt", &k));
    CHECK_EQ_STR(k, "/elsewhere/file.txt");
    cairn_free(k);
    store_close(s);
}

static void test_nested_rollback(void)
{
    fresh_store("store_txn");
    store *s;
    CHECK_OK(store_open(store_path, &s));
    CHECK_OK(store_begin(s));
    CHECK_OK(store_state_set(s, "a", 1));
    CHECK_OK(store_begin(s));
    CHECK_OK(store_state_set(s, "b", 2));
    store_rollback(s);            /* inner only */
    CHECK_OK(store_commit(s));
    int64_t v;
    CHECK_OK(store_state_get(s, "a", 0, &v));
    CHECK_EQ_INT(v, 1);
    CHECK_OK(store_state_get(s, "b", 0, &v));
    CHECK_EQ_INT(v, 0);
    store_close(s);
}

static void test_alloc_failures(void)
{
    fresh_store("store_alloc");
    const char *v[] = {"First sentence of text that is long enough to fill.", "Second paragraph text that is long enough to fill."};
    chunk_list cl;
    make_chunks(&cl, v, 2);
    meta_list m = {0};
    CHECK_OK(meta_set_string(&m, "k", "v"));
    for (long n = 0; n < 60; n++) {
        store *s = NULL;
        cairn_alloc_fail_after(n, true);
        cairn_status st = store_open(store_path, &s);
        if (st == CAIRN_OK) {
            store_doc_in in = doc_in("f.txt", "hh", &m, &cl);
            st = store_doc_put(s, &in, NULL);
        }
        cairn_alloc_fail_after(-1, false);
        store_close(s);
        /* whatever failed, the store is consistent: either the document is
         * there with both chunks, or not at all */
        CHECK_OK(store_open(store_path, &s));
        store_stats o;
        CHECK_OK(store_get_stats(s, &o));
        CHECK((o.docs == 0 && o.chunks == 0) || (o.docs == 1 && o.chunks == 2));
        store_close(s);
    }
    chunk_list_free(&cl);
    meta_list_free(&m);
}

static void test_config(void)
{
    store_config c;
    store_config_default(&c);
    const char *ini = "# comment\n[chunk]\nsize = 300 ; inline\n overlap=20\n\n[analyzer]\nstemmer = porter # x\n"
                      "[ingest]\nmax_file_mb = 2\n";
    CHECK_OK(store_config_parse(&c, "cfg", ini, strlen(ini)));
    CHECK_EQ_INT(c.chunk_tokens, 300);
    CHECK_EQ_INT(c.chunk_overlap, 20);
    CHECK_EQ_INT(c.max_file_bytes, 2 << 20);
    CHECK_EQ_STR(store_config_get(&c, "analyzer", "stemmer"), "porter");
    CHECK(store_config_get(&c, "analyzer", "nope") == NULL);
    store_config_free(&c);
    static const char *bad[] = {"[chunk\nsize=1\n", "[chunk]\nsize\n", "[chunk]\nsize = 12x\n", "[chunk]\nsize = 8\n",
                                "[chunk]\nsize = 100\noverlap = 60\n", "[ingest]\nmax_file_mb = -1\n", "[chunk]\n = 3\n"};
    for (size_t i = 0; i < CAIRN_ARRAY_LEN(bad); i++) {
        store_config_default(&c);
        cairn_status st = store_config_parse(&c, "cfg", bad[i], strlen(bad[i]));
        CHECKF(st == CAIRN_ERR_INVALID, "config %zu accepted", i);
        CHECK(strstr(cairn_last_error(), "cfg") != NULL);
        store_config_free(&c);
    }
    /* environment overrides the file */
    const char *dir = t_tmpdir("store_cfg");
    char p[1300];
    snprintf(p, sizeof p, "%s/config", dir);
    FILE *f = fopen(p, "w");
    fputs("[chunk]\nsize = 300\n", f);
    fclose(f);
    setenv("CAIRN_CHUNK_SIZE", "128", 1);
    store_config_default(&c);
    CHECK_OK(store_config_load(&c, p));
    CHECK_EQ_INT(c.chunk_tokens, 128);
    store_config_free(&c);
    unsetenv("CAIRN_CHUNK_SIZE");
    /* a missing file is the defaults */
    snprintf(p, sizeof p, "%s/absent", dir);
    store_config_default(&c);
    CHECK_OK(store_config_load(&c, p));
    CHECK_EQ_INT(c.chunk_tokens, CHUNK_DEFAULT_TOKENS);
    store_config_free(&c);
}

/* store_deletions_ack: the log is trimmed to what every consumer applied. */
static int64_t log_rows(store *s)
{
    collect d = {0};
    CHECK_OK(store_deletions_since(s, 0, collect_del, &d));
    return d.n;
}

static void test_deletions_ack(void)
{
    fresh_store("store_ack");
    store *s;
    CHECK_OK(store_open(store_path, &s));
    const char *v[] = {"One paragraph of text.", "Another paragraph here.", "A third one follows."};
    chunk_list cl;
    make_chunks(&cl, v, 3);
    put_file(s, "a.txt", &cl);
    put_file(s, "b.txt", &cl);
    size_t nf, nd;
    CHECK_OK(store_remove_under(s, "a.txt", &nf, &nd));
    CHECK_OK(store_remove_under(s, "b.txt", &nf, &nd));
    int64_t max_chunk, max_seq;
    CHECK_OK(store_marks(s, &max_chunk, &max_seq));
    int64_t logged = log_rows(s);
    CHECK(logged >= 2 && logged == max_seq);
    /* one consumer: trimmed to its position */
    CHECK_OK(store_deletions_ack(s, "bm25", 1));
    CHECK_EQ_INT(log_rows(s), logged - 1);
    /* a second consumer behind it holds the log back */
    CHECK_OK(store_deletions_ack(s, "vectors", 1));
    CHECK_OK(store_deletions_ack(s, "bm25", max_seq));
    CHECK_EQ_INT(log_rows(s), logged - 1);
    int64_t v1;
    CHECK_OK(store_state_get(s, "deletions_ack.bm25", 0, &v1));
    CHECK_EQ_INT(v1, max_seq);
    /* everyone caught up: empty; the sequence keeps counting */
    CHECK_OK(store_deletions_ack(s, "vectors", max_seq));
    CHECK_EQ_INT(log_rows(s), 0);
    int64_t mc2, ms2;
    CHECK_OK(store_marks(s, &mc2, &ms2));
    CHECK_EQ_INT(ms2, max_seq);
    CHECK(store_deletions_ack(s, "", 1) == CAIRN_ERR_INVALID);
    chunk_list_free(&cl);
    store_close(s);
}

int main(void)
{
    RUN(test_config);
    RUN(test_create_open);
    RUN(test_newer_schema_refused);
    RUN(test_not_a_store);
    RUN(test_put_replace_stable_ids);
    RUN(test_remove_under);
    RUN(test_paths);
    RUN(test_nested_rollback);
    RUN(test_alloc_failures);
    RUN(test_deletions_ack);
    return t_done();
}
