/* test_ingest_stream.c — record files read through the bounded window
 * (src/ingest/stream.c) yield exactly the documents, keys, warnings and
 * errors of parsing the whole buffer, whatever the window boundaries (reads
 * of 1, 2, 3, 7, 61 and 4096 bytes); the record cap; the content hash
 * check; ingest_probe. */
#include "t.h"
#include "ingest/stream.h"
#include <stdio.h>
#include <string.h>

/* Every emitted document serialised, to compare runs byte for byte. */
static cairn_status dump(void *ctx, ingest_doc *d)
{
    cairn_buf *b = ctx;
    CAIRN_TRY(cairn_buf_printf(b, "[%s|%s|%s|%d]", d->key ? d->key : "-", d->title ? d->title : "-",
                               d->type ? d->type : "-", (int)d->utf8_repaired));
    for (size_t i = 0; i < d->n_blocks; i++)
        CAIRN_TRY(cairn_buf_printf(b, "<%d,%d:%s>", (int)d->blocks[i].kind, d->blocks[i].level, d->blocks[i].text));
    for (size_t i = 0; i < d->meta.n; i++) {
        const meta_value *v = &d->meta.e[i].v;
        CAIRN_TRY(cairn_buf_printf(b, "{%s=%d:%s:%.17g:%zu}", d->meta.e[i].key, (int)v->type, v->s ? v->s : "",
                                   v->n, v->n_items));
    }
    return cairn_buf_putc(b, '\n');
}

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void rnd_words(cairn_buf *b, int n)
{
    static const char *w[] = {"alpha", "beta", "stone", "river", "caf\xc3\xa9", "na\xc3\xafve", "x", "longerword"};
    for (int i = 0; i < n; i++) {
        if (i)
            cairn_buf_putc(b, rnd() % 9 == 0 ? '.' : ' ');
        cairn_buf_puts(b, w[rnd() % 8]);
    }
}

static const char *write_file(const char *dir, const char *name, const cairn_buf *b)
{
    static char path[1200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(b->data, 1, b->len, f) == b->len);
    if (f)
        fclose(f);
    return path;
}

/* Parse `path` whole (ingest_buffer) and streamed at several read sizes;
 * all must give the same documents and the same status. */
static void same_whole_and_streamed(const char *path, const cairn_buf *content, const ingest_options *opt,
                                    const ingest_parser *parser, size_t expect_docs)
{
    cairn_buf whole;
    cairn_buf_init(&whole, 0);
    cairn_status sw = ingest_buffer(path, content->data, content->len, opt, dump, &whole);
    size_t ndocs = 0;
    for (size_t i = 0; i < whole.len; i++)
        ndocs += whole.data[i] == '\n' && i + 1 < whole.len && whole.data[i + 1] == '[';
    ndocs += whole.len > 0;
    CHECKF(sw != CAIRN_OK || ndocs == expect_docs, "%s: %zu documents, expected %zu", path, ndocs, expect_docs);
    char h[33];
    cairn_hash128_hex(content->data, content->len, h);
    static const size_t sizes[] = {1, 2, 3, 7, 61, 4096, 0};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        rstream_set_read_size_for_tests(sizes[k]);
        cairn_buf st;
        cairn_buf_init(&st, 0);
        cairn_status ss = ingest_stream_file(path, parser, h, opt, dump, &st);
        CHECKF(ss == sw, "%s read %zu: status %d vs %d (%s)", path, sizes[k], ss, sw, cairn_last_error());
        CHECKF(st.len == whole.len && (!st.len || memcmp(st.data, whole.data, st.len) == 0),
               "%s read %zu: streamed documents differ (%zu vs %zu bytes)", path, sizes[k], st.len, whole.len);
        cairn_buf_free(&st);
    }
    rstream_set_read_size_for_tests(0);
    cairn_buf_free(&whole);
}

static void test_jsonl_windows(void)
{
    const char *dir = t_tmpdir("ingest_stream_jsonl");
    ingest_options opt;
    ingest_options_default(&opt);
    cairn_buf b;
    cairn_buf_init(&b, 0);
    cairn_buf_puts(&b, "\xEF\xBB\xBF");   /* a BOM */
    size_t good = 0;
    for (int i = 1; i <= 300; i++) {
        int kind = (int)(rnd() % 20);
        if (kind == 0) {
            cairn_buf_puts(&b, "{\"_id\": \"broken\", \"text\": \"no end\n");
        } else if (kind == 1) {
            cairn_buf_puts(&b, "   \r\n");   /* blank */
        } else if (kind == 2) {
            cairn_buf_printf(&b, "{\"_id\": \"dup\", \"text\": \"same id %d\"}\r\n", i);   /* CRLF, repeated id */
            good++;
        } else if (kind == 3) {
            cairn_buf_puts(&b, "{\"text\": \"bad utf8 \xff\xfe here\"}\n");
            good++;
        } else {
            cairn_buf_printf(&b, "{\"_id\": \"d%d\", \"title\": \"T %d\", \"text\": \"", i, i);
            rnd_words(&b, 1 + (int)(rnd() % 200));
            cairn_buf_printf(&b, "\", \"metadata\": {\"n\": %d, \"tags\": [\"a\", \"b\"]}}\n", i);
            good++;
        }
    }
    cairn_buf_puts(&b, "{\"_id\": \"last\", \"text\": \"no final newline\"}");
    good++;
    const char *path = write_file(dir, "c.jsonl", &b);
    same_whole_and_streamed(path, &b, &opt, &ingest_parser_jsonl, good);

    /* over-long lines: skipped with a warning, the rest kept (both ways) */
    opt.max_record_bytes = 300;
    size_t kept;
    cairn_buf c;
    cairn_buf_init(&c, 0);
    cairn_buf_puts(&c, "{\"_id\": \"a\", \"text\": \"short\"}\n{\"_id\": \"big\", \"text\": \"");
    for (int i = 0; i < 2000; i++)
        cairn_buf_puts(&c, "word ");
    cairn_buf_puts(&c, "\"}\n{\"_id\": \"b\", \"text\": \"after the long line\"}\n");
    kept = 2;
    path = write_file(dir, "long.jsonl", &c);
    same_whole_and_streamed(path, &c, &opt, &ingest_parser_jsonl, kept);
    cairn_buf out;
    cairn_buf_init(&out, 0);
    rstream_set_read_size_for_tests(7);
    CHECK_OK(ingest_stream_file(path, &ingest_parser_jsonl, NULL, &opt, dump, &out));
    rstream_set_read_size_for_tests(0);
    CHECK(out.len && strstr(out.data, "[a|") && strstr(out.data, "[b|") && !strstr(out.data, "[big|"));
    cairn_buf_free(&out);
    cairn_buf_free(&c);

    /* a file of only bad lines fails, naming the first bad line */
    cairn_buf_init(&c, 0);
    cairn_buf_puts(&c, "\n\nnot json\n[1]\n");
    path = write_file(dir, "bad.jsonl", &c);
    cairn_buf_init(&out, 0);
    CHECK_EQ_INT(ingest_stream_file(path, &ingest_parser_jsonl, NULL, &opt, dump, &out), CAIRN_ERR_CORRUPT);
    CHECKF(strstr(cairn_last_error(), "line 3"), "%s", cairn_last_error());
    cairn_buf_free(&out);
    cairn_buf_free(&c);
    cairn_buf_free(&b);
}

static void test_csv_windows(void)
{
    const char *dir = t_tmpdir("ingest_stream_csv");
    ingest_options opt;
    ingest_options_default(&opt);
    cairn_buf b;
    cairn_buf_init(&b, 0);
    cairn_buf_puts(&b, "id,title,body,year\r\n");
    size_t rows = 0;
    for (int i = 1; i <= 250; i++) {
        int kind = (int)(rnd() % 10);
        if (kind == 0) {
            cairn_buf_puts(&b, "\r\n\n");   /* blank lines */
            continue;
        }
        cairn_buf_printf(&b, "r%d,Row %d,", i, i);
        if (kind < 4) {
            cairn_buf_puts(&b, "\"quoted, with \"\"quotes\"\"\nand a\r\nnewline ");
            rnd_words(&b, (int)(rnd() % 50));
            cairn_buf_puts(&b, "\"");
        } else {
            rnd_words(&b, 1 + (int)(rnd() % 60));
        }
        cairn_buf_printf(&b, ",%d%s", 1990 + i % 30, kind == 5 ? "\n" : "\r\n");
        rows++;
    }
    cairn_buf_puts(&b, "r999,last,\"ends inside quotes");   /* dropped with a warning */
    const char *path = write_file(dir, "c.csv", &b);
    same_whole_and_streamed(path, &b, &opt, &ingest_parser_csv, rows);

    /* tab separated, no final newline */
    cairn_buf t;
    cairn_buf_init(&t, 0);
    cairn_buf_puts(&t, "id\ttext\n1\tone\n2\t\"two\nlines\"\n3\tthree");
    path = write_file(dir, "t.tsv", &t);
    same_whole_and_streamed(path, &t, &opt, &ingest_parser_csv, 3);
    cairn_buf_free(&t);

    /* a row over the record cap is skipped (quotes followed across
     * windows); the rows after it are kept; a header that long fails */
    opt.max_record_bytes = 100;
    cairn_buf c;
    cairn_buf_init(&c, 0);
    cairn_buf_puts(&c, "id,body\n1,short\n2,\"");
    for (int i = 0; i < 100; i++)
        cairn_buf_puts(&c, "long\n");
    cairn_buf_puts(&c, "\"\"\"\" tail \"\n3,\"after, \"\"the\"\" long row\"\n4,last\n");
    path = write_file(dir, "long.csv", &c);
    for (size_t rs = 1; rs <= 4096; rs *= 8) {
        rstream_set_read_size_for_tests(rs);
        cairn_buf out;
        cairn_buf_init(&out, 0);
        CHECK_OK(ingest_stream_file(path, &ingest_parser_csv, NULL, &opt, dump, &out));
        CHECKF(out.len && strstr(out.data, "[1|") && !strstr(out.data, "[2|") && strstr(out.data, "[3|") &&
                   strstr(out.data, "after, \"the\" long row") && strstr(out.data, "[4|"),
               "read %zu: %s", rs, out.data ? out.data : "");
        cairn_buf_free(&out);
    }
    rstream_set_read_size_for_tests(0);
    cairn_buf_reset(&c);
    cairn_buf_puts(&c, "id,");
    for (int i = 0; i < 50; i++)
        cairn_buf_puts(&c, "headername,");
    cairn_buf_puts(&c, "x\n1,2\n");
    path = write_file(dir, "longhead.csv", &c);
    cairn_buf out;
    cairn_buf_init(&out, 0);
    CHECK_EQ_INT(ingest_stream_file(path, &ingest_parser_csv, NULL, &opt, dump, &out), CAIRN_ERR_TOO_LARGE);
    CHECKF(strstr(cairn_last_error(), "line 1: row longer than the record cap"), "%s", cairn_last_error());
    cairn_buf_free(&out);
    cairn_buf_free(&c);
    cairn_buf_free(&b);
}

static void test_hash_and_probe(void)
{
    const char *dir = t_tmpdir("ingest_stream_probe");
    ingest_options opt;
    ingest_options_default(&opt);
    cairn_buf b;
    cairn_buf_init(&b, 0);
    for (int i = 0; i < 3000; i++)
        cairn_buf_printf(&b, "{\"id\": %d, \"text\": \"record number %d with some words\"}\n", i, i);
    CHECK(b.len > 65536);
    const char *path = write_file(dir, "noext", &b);   /* sniffed, not named */
    const ingest_parser *p;
    bool streamed;
    CHECK_OK(ingest_probe(path, &opt, &p, &streamed, NULL));
    CHECK(p == &ingest_parser_jsonl && streamed);
    /* the whole-file hash of base/file.c equals the one-shot hash */
    char h1[33], h2[33];
    uint64_t n;
    CHECK_OK(cairn_file_hash128_hex(path, b.len, h1, &n));
    cairn_hash128_hex(b.data, b.len, h2);
    CHECK_EQ_STR(h1, h2);
    CHECK_EQ_INT(n, b.len);
    CHECK_EQ_INT(cairn_file_hash128_hex(path, b.len - 1, h1, &n), CAIRN_ERR_TOO_LARGE);
    /* a hash that does not match what is read: the file changed */
    cairn_buf out;
    cairn_buf_init(&out, 0);
    CHECK_EQ_INT(ingest_stream_file(path, p, "00000000000000000000000000000000", &opt, dump, &out), CAIRN_ERR_CORRUPT);
    CHECKF(strstr(cairn_last_error(), "changed while it was being read"), "%s", cairn_last_error());
    cairn_buf_free(&out);
    cairn_buf_init(&out, 0);
    CHECK_OK(ingest_stream_file(path, p, h2, &opt, dump, &out));
    cairn_buf_free(&out);
    /* ingest_file: a streamed format over its own cap is refused; under it, read
     * even when larger than the whole-file cap */
    opt.max_file_bytes = 1000;
    opt.max_stream_bytes = 1000;
    cairn_buf_init(&out, 0);
    CHECK_EQ_INT(ingest_file(path, &opt, dump, &out), CAIRN_ERR_TOO_LARGE);
    opt.max_stream_bytes = (size_t)1 << 30;
    CHECK_OK(ingest_file(path, &opt, dump, &out));
    CHECK(out.len && strstr(out.data, "[2999|"));
    cairn_buf_free(&out);
    /* CSV as one document per file is not streamed (it is one document) */
    cairn_buf_reset(&b);
    cairn_buf_puts(&b, "a,b\n1,2\n");
    path = write_file(dir, "x.csv", &b);
    opt.csv_row_per_doc = false;
    CHECK_OK(ingest_probe(path, &opt, &p, &streamed, NULL));
    CHECK(p == &ingest_parser_csv && !streamed);
    opt.csv_row_per_doc = true;
    CHECK_OK(ingest_probe(path, &opt, &p, &streamed, NULL));
    CHECK(p == &ingest_parser_csv && streamed);
    cairn_buf_free(&b);
}

/* Random inputs over an alphabet of the bytes that matter to the two
 * parsers (quotes, delimiters, CR/LF, braces): whole and streamed must
 * agree byte for byte at every read size. */
static void test_random_differential(void)
{
    const char *dir = t_tmpdir("ingest_stream_random");
    static const char csv_alpha[] = "\"\"\",,\n\n\r ab;\tx";
    static const char *jsonl_pieces[] = {"{\"_id\": \"k\", \"text\": \"t u\"}", "{\"text\": \"\\\"q\\\"\"}", "\n",
                                         "\r\n", "  ", "{", "}", "[1]", "\"", "{\"id\": 3}", "x"};
    ingest_options opt;
    ingest_options_default(&opt);
    cairn_buf b;
    cairn_buf_init(&b, 0);
    for (int round = 0; round < 150; round++) {
        cairn_buf_reset(&b);
        bool csv = round & 1;
        size_t n = 1 + rnd() % 400;
        if (csv) {
            cairn_buf_puts(&b, "id,a,b\n");
            for (size_t i = 0; i < n; i++)
                cairn_buf_putc(&b, csv_alpha[rnd() % (sizeof csv_alpha - 1)]);
        } else {
            for (size_t i = 0; i < n / 4 + 1; i++)
                cairn_buf_puts(&b, jsonl_pieces[rnd() % (sizeof jsonl_pieces / sizeof *jsonl_pieces)]);
        }
        const char *path = write_file(dir, csv ? "r.csv" : "r.jsonl", &b);
        cairn_buf whole;
        cairn_buf_init(&whole, 0);
        cairn_status sw = ingest_buffer(path, b.data, b.len, &opt, dump, &whole);
        static const size_t sizes[] = {1, 2, 5, 64};
        for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
            rstream_set_read_size_for_tests(sizes[k]);
            cairn_buf st;
            cairn_buf_init(&st, 0);
            cairn_status ss =
                ingest_stream_file(path, csv ? &ingest_parser_csv : &ingest_parser_jsonl, NULL, &opt, dump, &st);
            CHECKF(ss == sw && st.len == whole.len && (!st.len || memcmp(st.data, whole.data, st.len) == 0),
                   "round %d (%s, read %zu): status %d vs %d, %zu vs %zu bytes", round, csv ? "csv" : "jsonl",
                   sizes[k], ss, sw, st.len, whole.len);
            cairn_buf_free(&st);
        }
        rstream_set_read_size_for_tests(0);
        cairn_buf_free(&whole);
    }
    cairn_buf_free(&b);
}

/* With caller_unique_keys the parsers keep no key set: a repeated id comes
 * out as it is, with its position in key_alt (the pipeline renames it). */
typedef struct keys_seen { char key[8][32], alt[8][48]; int n; } keys_seen;
static cairn_status grab_key(void *ctx, ingest_doc *d)
{
    keys_seen *k = ctx;
    if (k->n < 8) {
        snprintf(k->key[k->n], sizeof k->key[0], "%s", d->key ? d->key : "");
        snprintf(k->alt[k->n], sizeof k->alt[0], "%s", d->key_alt);
        k->n++;
    }
    return CAIRN_OK;
}

static void test_caller_unique_keys(void)
{
    ingest_options opt;
    ingest_options_default(&opt);
    const char *j = "{\"_id\": \"a\", \"text\": \"x\"}\n{\"_id\": \"a\", \"text\": \"y\"}\n{\"text\": \"z\"}\n";
    keys_seen k = {0};
    CHECK_OK(ingest_buffer("k.jsonl", j, strlen(j), &opt, grab_key, &k));
    CHECK(k.n == 3 && !strcmp(k.key[1], "a@line:2") && k.alt[1][0] == 0);
    opt.caller_unique_keys = true;
    memset(&k, 0, sizeof k);
    CHECK_OK(ingest_buffer("k.jsonl", j, strlen(j), &opt, grab_key, &k));
    CHECK(k.n == 3 && !strcmp(k.key[0], "a") && !strcmp(k.key[1], "a") && !strcmp(k.alt[1], "line:2"));
    CHECK(!strcmp(k.key[2], "line:3") && !strcmp(k.alt[2], "line:3"));
    const char *c = "id,text\nr1,x\nr1,y\n";
    memset(&k, 0, sizeof k);
    CHECK_OK(ingest_buffer("k.csv", c, strlen(c), &opt, grab_key, &k));
    CHECK(k.n == 2 && !strcmp(k.key[1], "r1") && !strcmp(k.alt[1], "row:2"));
}

int main(void)
{
    cairn_log_set_level(CAIRN_LOG_ERROR);
    RUN(test_jsonl_windows);
    RUN(test_csv_windows);
    RUN(test_hash_and_probe);
    RUN(test_caller_unique_keys);
    RUN(test_random_differential);
    return t_done();
}
