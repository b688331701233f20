/* test_ingest_text.c — typed metadata, UTF-8 repair, and the plain text,
 * source code and Markdown parsers. */
#include "t.h"
#include "ingest/ingest.h"

/* ---- capture emitted documents ---- */
typedef struct cap { ingest_doc docs[4]; int n; } cap;

static cairn_status capture(void *ctx, ingest_doc *d)
{
    cap *c = ctx;
    if (c->n >= 4)
        return CAIRN_ERR_INTERNAL;
    /* take ownership by moving the struct; leave the caller an empty doc */
    c->docs[c->n++] = *d;
    ingest_doc_init(d);
    return CAIRN_OK;
}

static void cap_free(cap *c)
{
    for (int i = 0; i < c->n; i++)
        ingest_doc_free(&c->docs[i]);
    c->n = 0;
}

static ingest_doc *parse(const ingest_parser *p, const char *path, const char *text, cap *c)
{
    ingest_options o;
    ingest_options_default(&o);
    c->n = 0;
    cairn_status st = p->parse(path, text, strlen(text), &o, capture, c);
    CHECK_OK(st);
    CHECK_EQ_INT(c->n, 1);
    return c->n ? &c->docs[0] : NULL;
}

static void test_meta_typed(void)
{
    meta_list m = {0};
    CHECK_OK(meta_set_parsed(&m, "n", "42"));
    CHECK_OK(meta_set_parsed(&m, "f", "-3.5e2"));
    CHECK_OK(meta_set_parsed(&m, "zip", "007"));
    CHECK_OK(meta_set_parsed(&m, "d", "2025-03-01"));
    CHECK_OK(meta_set_parsed(&m, "dt", "2025-03-01T12:30:15Z"));
    CHECK_OK(meta_set_parsed(&m, "tz", "2025-03-01T12:30+02:00"));
    CHECK_OK(meta_set_parsed(&m, "bad", "2025-02-30"));
    CHECK_OK(meta_set_parsed(&m, "b", "true"));
    CHECK_OK(meta_set_parsed(&m, "s", "hello world"));
    CHECK_OK(meta_set_parsed(&m, "v", "1.2.3"));
    const meta_value *v;
    CHECK((v = meta_get(&m, "n")) && v->type == META_NUMBER && v->n == 42);
    CHECK((v = meta_get(&m, "f")) && v->type == META_NUMBER && v->n == -350);
    CHECK((v = meta_get(&m, "zip")) && v->type == META_STRING && !strcmp(v->s, "007"));
    CHECK((v = meta_get(&m, "d")) && v->type == META_DATE && v->n == 1740787200);
    CHECK((v = meta_get(&m, "dt")) && v->type == META_DATE && v->n == 1740787200 + 12 * 3600 + 30 * 60 + 15);
    CHECK((v = meta_get(&m, "tz")) && v->type == META_DATE && v->n == 1740787200 + 10 * 3600 + 30 * 60);
    CHECK((v = meta_get(&m, "bad")) && v->type == META_STRING);
    CHECK((v = meta_get(&m, "b")) && v->type == META_BOOL && v->n == 1);
    CHECK((v = meta_get(&m, "s")) && v->type == META_STRING);
    CHECK((v = meta_get(&m, "v")) && v->type == META_STRING);
    /* replace keeps one entry */
    size_t n = m.n;
    CHECK_OK(meta_set_string(&m, "n", "now a string"));
    CHECK_EQ_INT(m.n, n);
    CHECK((v = meta_get(&m, "n")) && v->type == META_STRING);
    CHECK(meta_set_string(&m, "", "x") == CAIRN_ERR_INVALID);
    const char *items[] = {"a", "b", "c"};
    CHECK_OK(meta_set_list(&m, "tags", items, 3));
    CHECK((v = meta_get(&m, "tags")) && v->type == META_LIST && v->n_items == 3 && !strcmp(v->items[2], "c"));
    char buf[32];
    meta_format_date(1740787200, buf);
    CHECK_EQ_STR(buf, "2025-03-01");
    meta_format_date(1740787200 + 61, buf);
    CHECK_EQ_STR(buf, "2025-03-01T00:01:01Z");
    meta_list_free(&m);
    /* allocation failures leave the list valid */
    for (long k = 0; k < 12; k++) {
        meta_list x = {0};
        cairn_alloc_fail_after(k, false);
        cairn_status st = meta_set_list(&x, "tags", items, 3);
        if (st == CAIRN_OK)
            st = meta_set_string(&x, "s", "v");
        cairn_alloc_fail_after(-1, false);
        CHECK(st == CAIRN_OK || st == CAIRN_ERR_NOMEM);
        meta_list_free(&x);
    }
}

static void test_utf8_repair(void)
{
    char *out;
    size_t ol;
    bool rep;
    CHECK_OK(utf8_repair("plain \xC3\xA9t\xC3\xA9", 11, &out, &ol, &rep));
    CHECK(out == NULL && !rep);
    const char bad[] = "ok \xFF\xFE then \xC3 end \xED\xA0\x80 sur \xF0\x9F\x98\x80";
    CHECK_OK(utf8_repair(bad, sizeof bad - 1, &out, &ol, &rep));
    CHECK(rep && out != NULL);
    CHECK_EQ_STR(out, "ok \xEF\xBF\xBD\xEF\xBF\xBD then \xEF\xBF\xBD end \xEF\xBF\xBD sur \xF0\x9F\x98\x80");
    CHECK_EQ_INT(ol, strlen(out));
    cairn_free(out);
    /* a broken sequence (here a surrogate) becomes one U+FFFD */
    /* overlong encoding of '/' */
    CHECK_OK(utf8_repair("\xC0\xAF", 2, &out, &ol, &rep));
    CHECK(rep);
    cairn_free(out);
}

static void test_text_parser(void)
{
    cap c = {0};
    ingest_doc *d = parse(&ingest_parser_text, "dir/notes.txt",
                          "First line\nstill first para.\n\n  \nSecond para.\r\n\n\n\nThird.\n", &c);
    if (d) {
        CHECK_EQ_STR(d->type, "text");
        CHECK_EQ_STR(d->title, "notes.txt");
        CHECK_EQ_STR(d->key, "");
        CHECK_EQ_INT(d->n_blocks, 3);
        CHECK_EQ_STR(d->blocks[0].text, "First line\nstill first para.");
        CHECK_EQ_STR(d->blocks[1].text, "Second para.");
        CHECK_EQ_INT(d->blocks[0].page, 0);
    }
    cap_free(&c);
    d = parse(&ingest_parser_text, "p.txt", "page one\fpage two\n\nmore two\f\fpage four", &c);
    if (d) {
        CHECK_EQ_INT(d->n_blocks, 4);
        CHECK_EQ_INT(d->blocks[0].page, 1);
        CHECK_EQ_INT(d->blocks[1].page, 2);
        CHECK_EQ_INT(d->blocks[2].page, 2);
        CHECK_EQ_INT(d->blocks[3].page, 4);
    }
    cap_free(&c);
    d = parse(&ingest_parser_text, "empty.txt", "", &c);
    if (d)
        CHECK_EQ_INT(d->n_blocks, 0);
    cap_free(&c);
}

static void test_code_parser(void)
{
    cap c = {0};
    ingest_doc *d = parse(&ingest_parser_code, "src/x.py", "def f():\n    return 1\n\n\nclass A:\n    pass\n", &c);
    if (d) {
        CHECK_EQ_STR(d->type, "code");
        CHECK_EQ_INT(d->n_blocks, 2);
        CHECK_EQ_STR(d->blocks[0].text, "def f():\n    return 1");
        CHECK(d->blocks[0].kind == BLOCK_CODE);
        const meta_value *v = meta_get(&d->meta, "language");
        CHECK(v && !strcmp(v->s, "python"));
    }
    cap_free(&c);
    CHECK_EQ_STR(ingest_code_language("a/Makefile"), "make");
    CHECK(ingest_code_language("README") == NULL);
}

static const char md_doc[] =
    "---\n"
    "title: \"My Guide\"\n"
    "tags: [alpha, \"beta, gamma\"]\n"
    "date: 2024-05-06\n"
    "draft: false\n"
    "weight: 3\n"
    "authors:\n"
    "  - Ann\n"
    "  - Bob\n"
    "---\n"
    "# Heading One #\n"
    "\n"
    "Some *text* with a [link](http://x.y) and `code` and **bold**.\n"
    "Continued line.\n"
    "\n"
    "Setext Two\n"
    "----------\n"
    "\n"
    "- item one\n"
    "  continued\n"
    "- [x] item two\n"
    "   1. nested ordered\n"
    "\n"
    "```c\n"
    "int main(void)\n"
    "{\n"
    "\n"
    "    return 0;\n"
    "}\n"
    "```\n"
    "\n"
    "> quoted\n"
    "> text\n"
    "\n"
    "| a | b |\n"
    "|---|:-:|\n"
    "| 1 | 2 |\n"
    "\n"
    "<!-- hidden\n"
    "comment -->\n"
    "[ref]: http://example.com\n"
    "***\n"
    "    indented code\n"
    "\n"
    "### Three\n"
    "Last.";

static void test_markdown_parser(void)
{
    cap c = {0};
    ingest_doc *d = parse(&ingest_parser_markdown, "g.md", md_doc, &c);
    if (!d)
        return;
    CHECK_EQ_STR(d->type, "markdown");
    CHECK_EQ_STR(d->title, "My Guide");
    const meta_value *v;
    CHECK((v = meta_get(&d->meta, "tags")) && v->type == META_LIST && v->n_items == 2 &&
          !strcmp(v->items[0], "alpha") && !strcmp(v->items[1], "beta, gamma"));
    CHECK((v = meta_get(&d->meta, "date")) && v->type == META_DATE);
    CHECK((v = meta_get(&d->meta, "draft")) && v->type == META_BOOL && v->n == 0);
    CHECK((v = meta_get(&d->meta, "weight")) && v->type == META_NUMBER && v->n == 3);
    CHECK((v = meta_get(&d->meta, "authors")) && v->type == META_LIST && v->n_items == 2 && !strcmp(v->items[1], "Bob"));
    CHECK((v = meta_get(&d->meta, "title")) && v->type == META_STRING);
    struct { block_kind k; int level; const char *text; } want[] = {
        {BLOCK_HEADING, 1, "Heading One"},
        {BLOCK_PARAGRAPH, 0, "Some *text* with a link and code and bold.\nContinued line."},
        {BLOCK_HEADING, 2, "Setext Two"},
        {BLOCK_LIST_ITEM, 1, "item one\ncontinued"},
        {BLOCK_LIST_ITEM, 1, "item two"},
        {BLOCK_LIST_ITEM, 2, "nested ordered"},
        {BLOCK_CODE, 0, "int main(void)\n{\n\n    return 0;\n}"},
        {BLOCK_QUOTE, 0, "quoted\ntext"},
        {BLOCK_TABLE_ROW, 0, "a | b"},
        {BLOCK_TABLE_ROW, 0, "1 | 2"},
        {BLOCK_CODE, 0, "indented code"},
        {BLOCK_HEADING, 3, "Three"},
        {BLOCK_PARAGRAPH, 0, "Last."},
    };
    CHECK_EQ_INT(d->n_blocks, CAIRN_ARRAY_LEN(want));
    for (size_t i = 0; i < d->n_blocks && i < CAIRN_ARRAY_LEN(want); i++) {
        CHECKF(d->blocks[i].kind == want[i].k, "block %zu kind %d", i, (int)d->blocks[i].kind);
        CHECKF(d->blocks[i].level == want[i].level, "block %zu level %d", i, d->blocks[i].level);
        CHECK_EQ_STR(d->blocks[i].text, want[i].text);
    }
    cap_free(&c);

    /* no front matter: title from the first H1; '---' alone is a break */
    d = parse(&ingest_parser_markdown, "dir/x.md", "intro\n\n---\n\n# The Title\n\ntext\n", &c);
    if (d) {
        CHECK_EQ_STR(d->title, "The Title");
        CHECK_EQ_INT(d->n_blocks, 3);
    }
    cap_free(&c);
    /* unterminated front matter is just text; no H1: file name */
    d = parse(&ingest_parser_markdown, "dir/y.md", "---\nnot: closed\n", &c);
    if (d) {
        CHECK_EQ_STR(d->title, "y.md");
        CHECK(meta_get(&d->meta, "not") == NULL);
    }
    cap_free(&c);
    /* unterminated fence keeps its code */
    d = parse(&ingest_parser_markdown, "z.md", "```\ncode line", &c);
    if (d) {
        CHECK_EQ_INT(d->n_blocks, 1);
        CHECK_EQ_STR(d->blocks[0].text, "code line");
    }
    cap_free(&c);
}

/* The full path repairs invalid UTF-8 in emitted documents. */
static void test_buffer_repairs(void)
{
    cap c = {0};
    ingest_options o;
    ingest_options_default(&o);
    /* (plain text that is not UTF-8 is converted instead: test_formats.c
     * test_charsets; JSON is UTF-8 by its spec, so it is repaired) */
    const char txt[] = "{\"text\": \"caf\xE9 au lait\"}";
    CHECK_OK(ingest_buffer("x.json", txt, sizeof txt - 1, &o, capture, &c));
    CHECK_EQ_INT(c.n, 1);
    if (c.n) {
        CHECK(c.docs[0].utf8_repaired);
        CHECK_EQ_STR(c.docs[0].blocks[0].text, "caf\xEF\xBF\xBD au lait");
    }
    cap_free(&c);
    const char bin[] = "ELF\0\0\0binary";
    cairn_status st = ingest_buffer("x.bin", bin, sizeof bin - 1, &o, capture, &c);
    CHECK(st == CAIRN_ERR_UNSUPPORTED);
    CHECK(strstr(cairn_last_error(), "binary") != NULL);
    CHECK_EQ_INT(c.n, 0);
}

/* Parsers never crash on arbitrary bytes (a small deterministic fuzz). */
static void test_markdown_noise(void)
{
    static const char *frags[] = {"#", "# ", "---\n", "```", "~~~", "\n", "    ", "- ", "1. ", "> ", "|", "|-|\n",
                                  "[a](", ")", "<!--", "-->", "**", "`", "\t", "x", "\r\n", "title: ", "[", "]"};
    uint64_t r = 88172645463325252ull;
    for (int it = 0; it < 3000; it++) {
        char buf[512];
        size_t n = 0;
        int parts = (int)(r % 40);
        for (int k = 0; k < parts; k++) {
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            const char *f = frags[r % CAIRN_ARRAY_LEN(frags)];
            size_t fl = strlen(f);
            if (n + fl >= sizeof buf)
                break;
            memcpy(buf + n, f, fl);
            n += fl;
        }
        r ^= r << 13;
        buf[n] = 0;
        cap c = {0};
        ingest_options o;
        ingest_options_default(&o);
        cairn_status st = ingest_parser_markdown.parse("f.md", buf, n, &o, capture, &c);
        CHECK_OK(st);
        for (int i = 0; i < c.n; i++)
            for (size_t b = 0; b < c.docs[i].n_blocks; b++)
                CHECK(strlen(c.docs[i].blocks[b].text) == c.docs[i].blocks[b].len);
        cap_free(&c);
    }
}

/* Arbitrary bytes through detection and the parsers: skipped as binary or
 * parsed into documents whose text is valid UTF-8 without NULs. */
static void test_random_bytes(void)
{
    static const char *names[] = {"f.md", "f.txt", "f.c", "noext"};
    uint64_t r = 0x9E3779B97F4A7C15ull;
    for (int it = 0; it < 1500; it++) {
        char buf[600];
        size_t n = 0;
        r ^= r << 13;
        r ^= r >> 7;
        r ^= r << 17;
        size_t len = r % sizeof buf;
        bool printable = it % 3 != 0;
        for (; n < len; n++) {
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            unsigned char c = (unsigned char)(r >> 24);
            if (printable && c < 0x20 && c != '\n')
                c = (unsigned char)(' ' + c);
            buf[n] = (char)c;
        }
        buf[n] = 0;
        cap c = {0};
        ingest_options o;
        ingest_options_default(&o);
        cairn_status st = ingest_buffer(names[it % 4], buf, n, &o, capture, &c);
        CHECK(st == CAIRN_OK || st == CAIRN_ERR_UNSUPPORTED);
        for (int i = 0; i < c.n; i++) {
            for (size_t b = 0; b < c.docs[i].n_blocks; b++) {
                const ingest_block *bl = &c.docs[i].blocks[b];
                char *fixed;
                bool rep;
                CHECK(strlen(bl->text) == bl->len);
                CHECK_OK(utf8_repair(bl->text, bl->len, &fixed, NULL, &rep));
                CHECK(fixed == NULL && !rep);
                cairn_free(fixed);
            }
        }
        cap_free(&c);
    }
}

/* meta_add_tag: typed first value, repeated keys make lists of text forms. */
static void test_meta_add_tag(void)
{
    meta_list m = {0};
    CHECK_OK(meta_add_tag(&m, "year=2024"));
    const meta_value *v = meta_get(&m, "year");
    CHECK(v && v->type == META_NUMBER && v->n == 2024);
    CHECK_OK(meta_add_tag(&m, "team=search"));
    CHECK_OK(meta_add_tag(&m, "team=infer"));
    CHECK_OK(meta_add_tag(&m, "team=eval=x"));      /* the value keeps its '=' */
    v = meta_get(&m, "team");
    CHECK(v && v->type == META_LIST && v->n_items == 3);
    if (v && v->type == META_LIST && v->n_items == 3) {
        CHECK_EQ_STR(v->items[0], "search");
        CHECK_EQ_STR(v->items[1], "infer");
        CHECK_EQ_STR(v->items[2], "eval=x");
    }
    CHECK_OK(meta_add_tag(&m, "year=2025"));
    v = meta_get(&m, "year");
    CHECK(v && v->type == META_LIST && v->n_items == 2);
    if (v && v->type == META_LIST && v->n_items == 2) {
        CHECK_EQ_STR(v->items[0], "2024");
        CHECK_EQ_STR(v->items[1], "2025");
    }
    CHECK_OK(meta_add_tag(&m, "due=2024-05-01"));
    CHECK_OK(meta_add_tag(&m, "due=later"));
    v = meta_get(&m, "due");
    CHECK(v && v->type == META_LIST && v->n_items == 2 && !strcmp(v->items[0], "2024-05-01"));
    CHECK_OK(meta_add_tag(&m, "ok=true"));
    CHECK_OK(meta_add_tag(&m, "ok=no"));
    v = meta_get(&m, "ok");
    CHECK(v && v->type == META_LIST && v->n_items == 2 && !strcmp(v->items[0], "true"));
    CHECK(meta_add_tag(&m, "novalue") == CAIRN_ERR_INVALID);
    CHECK(meta_add_tag(&m, "=x") == CAIRN_ERR_INVALID);
    char big[400];
    memset(big, 'k', 300);
    strcpy(big + 300, "=v");
    CHECK(meta_add_tag(&m, big) == CAIRN_ERR_INVALID);
    meta_list_free(&m);
}

int main(void)
{
    RUN(test_random_bytes);
    RUN(test_meta_typed);
    RUN(test_meta_add_tag);
    RUN(test_utf8_repair);
    RUN(test_text_parser);
    RUN(test_code_parser);
    RUN(test_markdown_parser);
    RUN(test_buffer_repairs);
    RUN(test_markdown_noise);
    return t_done();
}
