/* test_filter_store.c — filters evaluated against a real store must select
 * exactly the documents the reference evaluator (filter_match over each
 * document's stored metadata) selects: hand-written cases plus randomly
 * generated filters over randomly generated metadata. */
#include "t.h"
#include "filter/filter.h"
#include "store/store.h"

#define NDOCS 300
#define NOW 1767225600

static uint64_t rng = 88172645463325252ull;
static uint64_t rnd(void) { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return rng; }
static int rn(int n) { return (int)(rnd() % (uint64_t)n); }

static const char *langs[] = {"en", "de", "fr", "es-MX", "zh"};
static const char *tagv[] = {"rust", "c", "go", "db", "ml", "web"};

static store *make_store(void)
{
    const char *dir = t_tmpdir("filter_store");
    char path[1200];
    snprintf(path, sizeof path, "%s/.cairn", dir);
    CHECK_OK(store_create(path));
    store *s = NULL;
    CHECK_OK(store_open(path, &s));
    CHECK_OK(store_begin(s));
    for (int i = 0; i < NDOCS; i++) {
        meta_list m = {0};
        if (rn(5)) CHECK_OK(meta_set_string(&m, "lang", langs[rn(5)]));
        if (rn(4)) CHECK_OK(meta_set_number(&m, "year", 2000 + rn(26)));
        if (rn(3)) CHECK_OK(meta_set_bool(&m, "draft", rn(2)));
        if (rn(4)) CHECK_OK(meta_set_date(&m, "due", NOW + (rn(200) - 100) * 86400.0));
        if (rn(3)) {
            const char *t[3] = {tagv[rn(6)], tagv[rn(6)], tagv[rn(6)]};
            CHECK_OK(meta_set_list(&m, "tags", t, 1 + (size_t)rn(3)));
        }
        /* a field with mixed types across documents */
        if (rn(2)) CHECK_OK(rn(2) ? meta_set_number(&m, "version", rn(4)) : meta_set_string(&m, "version", rn(2) ? "beta" : "1"));
        char p[64], text[64], hash[40];
        snprintf(p, sizeof p, "%s/f%03d.%s", rn(2) ? "docs" : "src/lib", i, rn(2) ? "md" : "txt");
        snprintf(text, sizeof text, "document number %d about things", i);
        snprintf(hash, sizeof hash, "h%d", i);
        ingest_doc d;
        ingest_doc_init(&d);
        d.key = cairn_strdup("");
        d.type = "text";
        CHECK_OK(ingest_doc_add_block(&d, BLOCK_PARAGRAPH, 0, 0, text, strlen(text)));
        chunk_list cl = {0};
        chunk_options co;
        chunk_options_default(&co);
        CHECK_OK(chunk_doc(&d, &co, &cl));
        store_doc_in in = {.path = p, .rkey = "", .type = "text", .title = "T", .size = 100 + i,
                           .mtime_ns = (int64_t)(NOW - i * 3600) * 1000000000LL, .content_hash = hash,
                           .doc_hash = hash, .ingested_at_ns = (int64_t)NOW * 1000000000LL, .sync_gen = 1,
                           .meta = &m, .chunks = &cl};
        store_put_result r;
        CHECK_OK(store_doc_put(s, &in, &r));
        chunk_list_free(&cl);
        ingest_doc_free(&d);
        meta_list_free(&m);
    }
    CHECK_OK(store_commit(s));
    return s;
}

/* Compare store evaluation with the reference over every document. */
static int compare(store *s, const char *src, bool must_parse)
{
    filter_node *f = NULL;
    cairn_status st = filter_compile(s, src, NOW, &f);
    if (st != CAIRN_OK) {
        CHECKF(!must_parse, "%s: %s", src, cairn_last_error());
        return -1;
    }
    filter_idset got;
    CHECK_OK(filter_docs(s, f, &got));
    int matched = 0;
    for (int64_t id = 1; id <= NDOCS; id++) {
        meta_list m = {0};
        CHECK_OK(store_doc_meta(s, id, &m));
        bool want = filter_match(f, &m);
        matched += want;
        CHECKF(want == filter_idset_has(&got, id), "%s: doc %lld: reference %d, store %d", src, (long long)id, want, !want);
        meta_list_free(&m);
    }
    CHECK_EQ_INT(got.n, matched);
    filter_idset f_chunks;
    CHECK_OK(filter_chunks(s, f, &f_chunks));
    CHECK(f_chunks.n >= got.n); /* every document has at least one chunk */
    filter_idset_free(&f_chunks);
    filter_idset_free(&got);
    filter_free(f);
    return matched;
}

static void test_hand_written(store *s)
{
    const char *cases[] = {
        "lang = en", "lang != en", "NOT lang = en", "lang IN (en, de)", "year >= 2010 AND year < 2015",
        "draft = true", "draft != true", "tags CONTAINS rust", "tags IN (go, db)", "HAS due",
        "due < now", "due >= now - 30d AND due <= now + 30d", "path ^= \"docs/\"", "path GLOB \"*.md\"",
        "path GLOB \"src/*/f0[0-4]?.txt\"", "version = 1", "version = \"1\"", "version = beta OR version > 2",
        "type = text", "size > 250", "modified > 2025-12-31", "(lang = en OR lang = fr) AND NOT tags CONTAINS c",
        "ingested >= 2026-01-01", "NOT HAS lang OR lang = zh",
    };
    int nonempty = 0;
    for (size_t i = 0; i < CAIRN_ARRAY_LEN(cases); i++)
        nonempty += compare(s, cases[i], true) > 0;
    CHECK(nonempty >= 20); /* the corpus exercises the cases */
    /* errors, not empty results */
    filter_node *f = NULL;
    CHECK(filter_compile(s, "colour = red", NOW, &f) == CAIRN_ERR_INVALID);
    CHECK(strstr(cairn_last_error(), "unknown field 'colour'") != NULL);
    CHECK(filter_compile(s, "due > tomorrow", NOW, &f) == CAIRN_ERR_INVALID);
    CHECK(strstr(cairn_last_error(), "type mismatch") != NULL);
}

static void random_value(cairn_buf *b, const char *field)
{
    if (!strcmp(field, "lang") || !strcmp(field, "tags"))
        cairn_buf_printf(b, rn(2) ? "%s" : "\"%s\"", !strcmp(field, "lang") ? langs[rn(5)] : tagv[rn(6)]);
    else if (!strcmp(field, "year"))
        cairn_buf_printf(b, "%d", 2000 + rn(26));
    else if (!strcmp(field, "draft"))
        cairn_buf_puts(b, rn(2) ? "true" : "false");
    else if (!strcmp(field, "due"))
        cairn_buf_printf(b, "now %c %dd", rn(2) ? '+' : '-', rn(100));
    else
        cairn_buf_puts(b, rn(2) ? "2" : "beta");
}

static void random_expr(cairn_buf *b, int depth)
{
    static const char *fields[] = {"lang", "year", "draft", "due", "tags", "version"};
    static const char *ops[] = {"=", "!=", "<", "<=", ">", ">="};
    int k = depth > 3 ? 3 + rn(3) : rn(6);
    if (k == 0 || k == 1) {
        cairn_buf_puts(b, "(");
        random_expr(b, depth + 1);
        cairn_buf_puts(b, k ? " OR " : " AND ");
        random_expr(b, depth + 1);
        cairn_buf_puts(b, ")");
        return;
    }
    if (k == 2) {
        cairn_buf_puts(b, "NOT ");
        random_expr(b, depth + 1);
        return;
    }
    const char *fld = fields[rn(6)];
    if (!strcmp(fld, "tags")) {
        cairn_buf_puts(b, "tags CONTAINS ");
        random_value(b, fld);
    } else if (k == 3) {
        cairn_buf_printf(b, "HAS %s", fld);
    } else if (k == 4) {
        cairn_buf_printf(b, "%s IN (", fld);
        random_value(b, fld);
        cairn_buf_puts(b, ", ");
        random_value(b, fld);
        cairn_buf_puts(b, ")");
    } else {
        const char *op = !strcmp(fld, "draft") ? ops[rn(2)] : ops[rn(6)];
        cairn_buf_printf(b, "%s %s ", fld, op);
        random_value(b, fld);
    }
}

static void test_random(store *s)
{
    int parsed = 0;
    for (int i = 0; i < 300; i++) {
        cairn_buf b;
        cairn_buf_init(&b, 0);
        random_expr(&b, 0);
        parsed += compare(s, b.data, false) >= 0;
        cairn_buf_free(&b);
    }
    CHECK(parsed >= 250); /* a few may be type errors (e.g. version < beta is fine; nothing else) */
}

int main(void)
{
    store *s = make_store();
    if (!s)
        return 1;
    t_current = "hand_written";
    test_hand_written(s);
    t_current = "random";
    test_random(s);
    store_close(s);
    return t_done();
}
