/* test_parsers.c — format detection and the html/pdf/json/jsonl/csv parsers,
 * with hand-made, malformed, truncated and hostile inputs. */
#include "ingest/ingest.h"
#include "t.h"

/* ---- collecting emitted documents ---- */
typedef struct docs { ingest_doc d[64]; size_t n; size_t total; } docs;

static cairn_status collect(void *ctx, ingest_doc *doc)
{
    docs *c = ctx;
    c->total++;
    if (c->n < CAIRN_ARRAY_LEN(c->d)) {
        c->d[c->n++] = *doc; /* take ownership; the caller then frees an empty doc */
        ingest_doc_init(doc);
    }
    return CAIRN_OK;
}

static void docs_free(docs *c)
{
    for (size_t i = 0; i < c->n; i++)
        ingest_doc_free(&c->d[i]);
    c->n = c->total = 0;
}

static cairn_status run(const ingest_parser *p, const char *path, const char *data, const ingest_options *opt, docs *out)
{
    memset(out, 0, sizeof *out);
    ingest_options o;
    if (!opt) {
        ingest_options_default(&o);
        opt = &o;
    }
    /* the contract: data is NUL-terminated; hand over a private copy so ASan sees overreads */
    size_t len = strlen(data);
    char *copy = malloc(len + 1);
    memcpy(copy, data, len + 1);
    cairn_status st = p->parse(path, copy, len, opt, collect, out);
    free(copy);
    return st;
}

/* Same, with explicit length (binary data). */
__attribute__((unused)) static cairn_status run_n(const ingest_parser *p, const char *path, const char *data, size_t len, docs *out)
{
    memset(out, 0, sizeof *out);
    ingest_options o;
    ingest_options_default(&o);
    char *copy = malloc(len + 1);
    memcpy(copy, data, len);
    copy[len] = 0;
    cairn_status st = p->parse(path, copy, len, &o, collect, out);
    free(copy);
    return st;
}

static const ingest_block *find_block(const ingest_doc *d, const char *needle)
{
    for (size_t i = 0; i < d->n_blocks; i++)
        if (strstr(d->blocks[i].text, needle))
            return &d->blocks[i];
    return NULL;
}

static bool any_block_has(const ingest_doc *d, const char *needle) { return find_block(d, needle) != NULL; }

static const char *meta_str(const ingest_doc *d, const char *key)
{
    const meta_value *v = meta_get(&d->meta, key);
    return v && v->type == META_STRING ? v->s : NULL;
}

/* ---- detection ---- */
static void test_detect(void)
{
    struct { const char *path; const char *data; size_t len; const char *parser; const char *why; } cases[] = {
        {"a.html", "<p>x</p>", 8, "html", NULL},
        {"a.HTM", "<p>x</p>", 8, "html", NULL},
        {"noext", "<!DOCTYPE html><html><body>x</body></html>", 42, "html", NULL},
        {"a.pdf", "%PDF-1.4\n%...", 13, "pdf", NULL},
        {"misnamed.txt", "%PDF-1.7\n1 0 obj", 16, "pdf", NULL},
        {"a.json", "{\"a\":1}", 7, "json", NULL},
        {"a.jsonl", "{\"a\":1}\n", 8, "jsonl", NULL},
        {"a.ndjson", "{\"a\":1}\n", 8, "jsonl", NULL},
        {"records", "{\"a\":1}\n{\"a\":2}\n", 16, "jsonl", NULL},
        {"blob", "[1, 2, 3]", 9, "json", NULL},
        {"a.csv", "a,b\n1,2\n", 8, "csv", NULL},
        {"a.tsv", "a\tb\n1\t2\n", 8, "csv", NULL},
        {"README", "Hello there.\n", 13, "text", NULL},
        {"notes.txt", "Hello there.\n", 13, "text", NULL},
        {"x.md", "# T\n", 4, "markdown", NULL},
        {"x.c", "int x;\n", 7, "code", NULL},
        {"Makefile", "all:\n", 5, "code", NULL},
        {"run", "#!/bin/sh\necho hi\n", 18, "code", NULL},
        {"empty.txt", "", 0, "text", NULL},
        {"img.txt", "\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16, NULL, "PNG"},
        {"a.bin", "\x7f" "ELF\2\1\1\0\0\0", 10, NULL, "ELF"},
        {"doc.docx", "PK\x03\x04\x14\0\6\0", 8, NULL, "zip"},
        {"a.gz", "\x1f\x8b\x08\0\0\0", 6, NULL, "gzip"},
        {"a.gguf", "GGUF\3\0\0\0", 8, NULL, "GGUF"},
        {"db.sqlite", "SQLite format 3\0\x10\0", 18, NULL, "SQLite"},
        {"nul.txt", "abc\0def", 7, NULL, "NUL"},
        {"u16.txt", "\xff\xfeh\0i\0", 6, NULL, "UTF-16"},
        {"ctl.txt", "\x01\x02\x03\x04\x05\x06\x07\x08\x0e\x0f\x10\x11\x12\x13", 14, NULL, "control"},
        {"pic.jpg", "not really a jpeg, just text", 28, NULL, "image"},
        {"x.xlsx", "whatever", 8, NULL, "xlsx"},
        {"MZ.txt", "MZ is a text file here", 22, "text", NULL},
    };
    for (size_t i = 0; i < CAIRN_ARRAY_LEN(cases); i++) {
        const char *why = "unset";
        const ingest_parser *p = ingest_detect(cases[i].path, cases[i].data, cases[i].len, &why);
        if (cases[i].parser) {
            CHECKF(p && strcmp(p->name, cases[i].parser) == 0, "%s: got %s (%s)", cases[i].path,
                   p ? p->name : "NULL", why ? why : "");
            CHECK(why == NULL);
        } else {
            CHECKF(!p, "%s: expected skip, got %s", cases[i].path, p ? p->name : "");
            CHECKF(why && strstr(why, cases[i].why), "%s: reason \"%s\"", cases[i].path, why ? why : "(null)");
        }
    }
}

/* ---- HTML ---- */
static void test_html_structure(void)
{
    const char *page =
        "<!DOCTYPE html><html lang=\"en\"><head><title>  The   Page\n Title </title>"
        "<meta name=\"description\" content=\"A page about testing.\">"
        "<meta name=\"keywords\" content=\"alpha, beta ,, gamma\">"
        "<meta name=\"author\" content=\"Ada Lovelace\">"
        "<style>body { color: red }</style><script>var secret = 'SCRIPTTEXT';</script></head>"
        "<body><header><a href=/>HEADERCHROME</a></header>"
        "<nav><ul><li>NAVCHROME</li></ul></nav>"
        "<main><article><header><h1>Main &amp; Heading</h1></header>"
        "<p>First <b>bold</b>word and <i>italic</i> text.</p>"
        "<h2>Sub heading</h2>"
        "<div>A div paragraph<br>with a break.</div>"
        "<ul><li>item one<ul><li>nested item</li></ul></li><li><p>item two</p></li></ul>"
        "<pre><code>int main(void)\n{\n    return 0;\n}\n</code></pre>"
        "<table><tr><th>Name</th><th>Age</th></tr><tr><td>Bob</td><td><p>42</p></td></tr></table>"
        "<blockquote><p>Quoted words.</p></blockquote>"
        "<div hidden>HIDDEN1</div><div style=\"DISPLAY : none\">HIDDEN2</div><span aria-hidden=\"true\">HIDDEN3</span>"
        "<form><label>FORMCHROME</label><input value=x></form>"
        "<aside>ASIDECHROME</aside><noscript>NOSCRIPTCHROME</noscript>"
        "<p>Caf\xc3\xa9 &lt;ok&gt; &#x263A;</p>"
        "</article></main><footer>FOOTERCHROME</footer></body></html>";
    docs out;
    CHECK_OK(run(&ingest_parser_html, "t.html", page, NULL, &out));
    CHECK_EQ_INT(out.n, 1);
    if (out.n != 1)
        return;
    ingest_doc *d = &out.d[0];
    CHECK_EQ_STR(d->type, "html");
    CHECK_EQ_STR(d->key, "");
    CHECK_EQ_STR(d->title, "The Page Title");
    CHECK_EQ_STR(meta_str(d, "description"), "A page about testing.");
    CHECK_EQ_STR(meta_str(d, "author"), "Ada Lovelace");
    CHECK_EQ_STR(meta_str(d, "lang"), "en");
    const meta_value *kw = meta_get(&d->meta, "keywords");
    CHECK(kw && kw->type == META_LIST && kw->n_items == 3);
    if (kw && kw->n_items == 3) {
        CHECK_EQ_STR(kw->items[0], "alpha");
        CHECK_EQ_STR(kw->items[1], "beta");
        CHECK_EQ_STR(kw->items[2], "gamma");
    }
    const char *chrome[] = {"SCRIPTTEXT", "color: red", "HEADERCHROME", "NAVCHROME", "HIDDEN1", "HIDDEN2",
                            "HIDDEN3", "FORMCHROME", "ASIDECHROME", "NOSCRIPTCHROME", "FOOTERCHROME"};
    for (size_t i = 0; i < CAIRN_ARRAY_LEN(chrome); i++)
        CHECKF(!any_block_has(d, chrome[i]), "chrome text kept: %s", chrome[i]);
    const ingest_block *b = find_block(d, "Main & Heading");
    CHECK(b && b->kind == BLOCK_HEADING && b->level == 1);
    b = find_block(d, "Sub heading");
    CHECK(b && b->kind == BLOCK_HEADING && b->level == 2);
    b = find_block(d, "First");
    CHECK(b && b->kind == BLOCK_PARAGRAPH);
    if (b)
        CHECK_EQ_STR(b->text, "First boldword and italic text.");
    b = find_block(d, "A div paragraph");
    CHECK(b && strcmp(b->text, "A div paragraph with a break.") == 0);
    b = find_block(d, "item one");
    CHECK(b && b->kind == BLOCK_LIST_ITEM && b->level == 1 && strcmp(b->text, "item one") == 0);
    b = find_block(d, "nested item");
    CHECK(b && b->kind == BLOCK_LIST_ITEM && b->level == 2);
    b = find_block(d, "item two");
    CHECK(b && b->kind == BLOCK_LIST_ITEM && b->level == 1);
    b = find_block(d, "int main");
    CHECK(b && b->kind == BLOCK_CODE);
    if (b)
        CHECK_EQ_STR(b->text, "int main(void)\n{\n    return 0;\n}");
    b = find_block(d, "Name");
    CHECK(b && b->kind == BLOCK_TABLE_ROW && strcmp(b->text, "Name | Age") == 0);
    b = find_block(d, "Bob");
    CHECK(b && b->kind == BLOCK_TABLE_ROW && strcmp(b->text, "Bob | 42") == 0);
    b = find_block(d, "Quoted words.");
    CHECK(b && b->kind == BLOCK_QUOTE);
    b = find_block(d, "Caf");
    CHECK(b && strcmp(b->text, "Caf\xc3\xa9 <ok> \xe2\x98\xba") == 0);
    for (size_t i = 0; i < d->n_blocks; i++) {
        CHECK(d->blocks[i].len == strlen(d->blocks[i].text));
        CHECK(d->blocks[i].len > 0);
        CHECK(d->blocks[i].page == 0);
    }
    docs_free(&out);
}

static void test_html_title_fallback_and_breaks(void)
{
    docs out;
    CHECK_OK(run(&ingest_parser_html, "t.html",
                 "<body><h1>Only  Heading</h1><p>line one<br><br>line two</p><h3>Deep</h3></body>", NULL, &out));
    CHECK_EQ_INT(out.n, 1);
    if (out.n == 1) {
        CHECK_EQ_STR(out.d[0].title, "Only Heading");
        const ingest_block *a = find_block(&out.d[0], "line one"), *b = find_block(&out.d[0], "line two");
        CHECK(a && b && a != b); /* a double <br> breaks the paragraph */
        const ingest_block *h = find_block(&out.d[0], "Deep");
        CHECK(h && h->kind == BLOCK_HEADING && h->level == 3);
    }
    docs_free(&out);
    /* og:title when there is no <title> */
    CHECK_OK(run(&ingest_parser_html, "t.html",
                 "<html><head><meta property=\"og:title\" content=\"OG Title\"></head><body>x</body></html>", NULL, &out));
    CHECK(out.n == 1 && out.d[0].title && strcmp(out.d[0].title, "OG Title") == 0);
    docs_free(&out);
}

static void test_html_malformed(void)
{
    const char *bad[] = {
        "",
        "<",
        "<<<>>>",
        "<div><p>hello <b>wor",
        "<html><head><title>unterminated",
        "<table><td>cell<tr><td>x</table></table></div>",
        "<p>a</b></i></p></p></div>text after",
        "<!-- never closed comment <p>x</p>",
        "<script>never closed script",
        "<![CDATA[x]]><?php echo 1 ?><svg><p>in svg</p></svg>",
        "<p title=\"unterminated attribute>text",
        "&#xFFFFFFFF; &#0; &#55296; &bogus; &",
        "\xef\xbb\xbf<p>bom</p>",
        "<p>\xff\xfe invalid utf8 \xc3</p>",
    };
    for (size_t i = 0; i < CAIRN_ARRAY_LEN(bad); i++) {
        docs out;
        cairn_status st = run(&ingest_parser_html, "bad.html", bad[i], NULL, &out);
        CHECKF(st == CAIRN_OK, "case %zu: %s", i, cairn_last_error());
        CHECK_EQ_INT(out.n, 1);
        docs_free(&out);
    }
    docs out;
    CHECK_OK(run(&ingest_parser_html, "bad.html", "<div><p>hello <b>wor", NULL, &out));
    CHECK(out.n == 1 && any_block_has(&out.d[0], "hello wor"));
    docs_free(&out);
}

static char *repeat(const char *unit, size_t times, const char *tail)
{
    size_t ul = strlen(unit), tl = strlen(tail);
    char *s = malloc(ul * times + tl + 1);
    for (size_t i = 0; i < times; i++)
        memcpy(s + i * ul, unit, ul);
    memcpy(s + ul * times, tail, tl + 1);
    return s;
}

static void test_html_hostile(void)
{
    /* 200k nested elements: gumbo would take minutes (quadratic); we must
     * fall back to the linear extractor and still find the text. */
    cairn_log_level lvl = cairn_log_get_level();
    cairn_log_set_level(CAIRN_LOG_ERROR);
    const char *units[] = {"<div>", "<ul>", "<b><i><u>x</b>", "<table><tr><td>"};
    for (size_t u = 0; u < CAIRN_ARRAY_LEN(units); u++) {
        char *s = repeat(units[u], 200000, "<title>Deep</title>deep text &amp; more");
        docs out;
        CHECK_OK(run(&ingest_parser_html, "deep.html", s, NULL, &out));
        CHECK_EQ_INT(out.n, 1);
        if (out.n == 1)
            CHECKF(any_block_has(&out.d[0], "deep text & more"), "unit %s", units[u]);
        docs_free(&out);
        free(s);
    }
    /* one tag with 100k distinct attributes (quadratic in gumbo) */
    size_t n = 100000;
    char *s = malloc(n * 12 + 64);
    size_t k = (size_t)sprintf(s, "<div");
    for (size_t i = 0; i < n; i++)
        k += (size_t)sprintf(s + k, " a%zu=1", i);
    sprintf(s + k, ">attr text</div>");
    docs out;
    CHECK_OK(run(&ingest_parser_html, "attrs.html", s, NULL, &out));
    CHECK(out.n == 1 && any_block_has(&out.d[0], "attr text"));
    docs_free(&out);
    free(s);
    /* moderately deep but legitimate nesting keeps full structure */
    s = repeat("<div>", 2000, "<h2>Kept heading</h2>");
    CHECK_OK(run(&ingest_parser_html, "ok.html", s, NULL, &out));
    const ingest_block *b = out.n == 1 ? find_block(&out.d[0], "Kept heading") : NULL;
    CHECK(b && b->kind == BLOCK_HEADING);
    docs_free(&out);
    free(s);
    cairn_log_set_level(lvl);
}

int main(void)
{
    RUN(test_detect);
    RUN(test_html_structure);
    RUN(test_html_title_fallback_and_breaks);
    RUN(test_html_malformed);
    RUN(test_html_hostile);
    return t_done();
}
