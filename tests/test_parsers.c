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
        {"doc.docx", "PK\x03\x04\x14\0\6\0", 8, "office", NULL},   /* office.c looks inside (test_formats.c) */
        {"a.zip", "PK\x03\x04\x14\0\6\0", 8, NULL, "zip"},
        {"a.rtf", "{\\rtf1 hi}", 9, "rtf", NULL},
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
    /* a legacy windows-1252 page is converted, a UTF-8 page that says latin-1 is left alone */
    CHECK_OK(run(&ingest_parser_html, "old.html",
                 "<html><head><meta http-equiv=Content-Type content=\"text/html; charset=ISO-8859-1\"></head>"
                 "<body><p>Caf\xe9 \x93quoted\x94 \x81</p></body></html>", NULL, &out));
    CHECK(out.n == 1 && find_block(&out.d[0], "Caf") &&
          strcmp(find_block(&out.d[0], "Caf")->text, "Caf\xc3\xa9 \xe2\x80\x9cquoted\xe2\x80\x9d \xef\xbf\xbd") == 0);
    docs_free(&out);
    CHECK_OK(run(&ingest_parser_html, "mislabeled.html", "<meta charset=latin1><p>Caf\xc3\xa9</p>", NULL, &out));
    CHECK(out.n == 1 && find_block(&out.d[0], "Caf") && strcmp(find_block(&out.d[0], "Caf")->text, "Caf\xc3\xa9") == 0);
    docs_free(&out);
    /* chrome marked by class/id names on plain divs; whole tokens only */
    CHECK_OK(run(&ingest_parser_html, "divs.html",
                 "<body><div class=\"top header\">HDRCHROME</div><div id=sidebar>SIDECHROME</div>"
                 "<div class=\"navy-text\">navy kept</div><div class=\"content\"><p>body kept</p>"
                 "<ul class=\"Breadcrumb\"><li>CRUMB</li></ul></div>"
                 "<article><div class=header><h1>article header kept</h1></div></article>"
                 "<div id=footer>FOOTCHROME</div></body>", NULL, &out));
    CHECK(out.n == 1);
    if (out.n == 1) {
        CHECK(any_block_has(&out.d[0], "navy kept") && any_block_has(&out.d[0], "body kept") &&
              any_block_has(&out.d[0], "article header kept"));
        CHECK(!any_block_has(&out.d[0], "HDRCHROME") && !any_block_has(&out.d[0], "SIDECHROME") &&
              !any_block_has(&out.d[0], "CRUMB") && !any_block_has(&out.d[0], "FOOTCHROME"));
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


/* ---- JSON ---- */
static double meta_num(const ingest_doc *d, const char *key, meta_type want)
{
    const meta_value *v = meta_get(&d->meta, key);
    return v && v->type == want ? v->n : -12345.0;
}

static void test_json_record_and_generic(void)
{
    docs out;
    /* one object with a text field: one record document */
    CHECK_OK(run(&ingest_parser_json, "r.json",
                 "{\"_id\": \"d1\", \"title\": \" A Title \", \"text\": \"Para one.\\n\\nPara two.\", "
                 "\"year\": 2021, \"ok\": true, \"when\": \"2024-03-05\", \"tags\": [\"x\", \"y\", 3], "
                 "\"meta\": {\"lang\": \"en\", \"n\": 2, \"deep\": {\"deeper\": {\"deepest\": {\"x\": 1}}}}, "
                 "\"nothing\": null, \"code\": \"123\"}",
                 NULL, &out));
    CHECK_EQ_INT(out.n, 1);
    if (out.n == 1) {
        ingest_doc *d = &out.d[0];
        CHECK_EQ_STR(d->key, "");
        CHECK_EQ_STR(d->type, "json");
        CHECK_EQ_STR(d->title, "A Title");
        CHECK_EQ_INT(d->n_blocks, 2);
        if (d->n_blocks == 2) {
            CHECK_EQ_STR(d->blocks[0].text, "Para one.");
            CHECK_EQ_STR(d->blocks[1].text, "Para two.");
        }
        CHECK_EQ_STR(meta_str(d, "id"), "d1");
        CHECK_NEAR(meta_num(d, "year", META_NUMBER), 2021, 0);
        CHECK_NEAR(meta_num(d, "ok", META_BOOL), 1, 0);
        CHECK(meta_get(&d->meta, "when") && meta_get(&d->meta, "when")->type == META_DATE);
        const meta_value *tags = meta_get(&d->meta, "tags");
        CHECK(tags && tags->type == META_LIST && tags->n_items == 3 && strcmp(tags->items[2], "3") == 0);
        CHECK_EQ_STR(meta_str(d, "meta.lang"), "en");
        CHECK_NEAR(meta_num(d, "meta.n", META_NUMBER), 2, 0);
        CHECK(meta_get(&d->meta, "meta.deep.deeper.deepest.x") == NULL); /* depth-capped */
        CHECK(meta_get(&d->meta, "nothing") == NULL);
        CHECK_EQ_STR(meta_str(d, "code"), "123"); /* a JSON string stays a string */
        CHECK(meta_get(&d->meta, "text") == NULL && meta_get(&d->meta, "title") == NULL);
    }
    docs_free(&out);
    /* a generic value: leaves become "path: value" blocks, top-level scalars metadata */
    CHECK_OK(run(&ingest_parser_json, "cfg.json",
                 "{\"name\": \"cairn\", \"version\": 2, \"server\": {\"host\": \"localhost\", \"ports\": [80, 443]}}",
                 NULL, &out));
    CHECK_EQ_INT(out.n, 1);
    if (out.n == 1) {
        ingest_doc *d = &out.d[0];
        CHECK(any_block_has(d, "name: cairn"));
        CHECK(any_block_has(d, "server.host: localhost"));
        CHECK(any_block_has(d, "server.ports: 443"));
        CHECK_EQ_STR(meta_str(d, "name"), "cairn");
        CHECK_NEAR(meta_num(d, "version", META_NUMBER), 2, 0);
    }
    docs_free(&out);
    CHECK_OK(run(&ingest_parser_json, "s.json", "\"just a string\"", NULL, &out));
    CHECK(out.n == 1 && any_block_has(&out.d[0], "just a string"));
    docs_free(&out);
}

static void test_json_array(void)
{
    docs out;
    CHECK_OK(run(&ingest_parser_json, "a.json",
                 "\xef\xbb\xbf[{\"id\": 7, \"title\": \"Seven\", \"text\": \"seven text\"},"
                 " {\"title\": \"No id\", \"body\": \"body as text\", \"n\": 1.5},"
                 " {\"id\": 7, \"text\": \"dup id\"}]",
                 NULL, &out));
    CHECK_EQ_INT(out.n, 3);
    if (out.n == 3) {
        CHECK_EQ_STR(out.d[0].key, "7");
        CHECK_EQ_STR(out.d[0].title, "Seven");
        CHECK_EQ_STR(out.d[1].key, "item:2");
        CHECK(any_block_has(&out.d[1], "body: body as text")); /* no text field: string fields are text */
        CHECK_NEAR(meta_num(&out.d[1], "n", META_NUMBER), 1.5, 0);
        CHECK_EQ_STR(out.d[2].key, "7@item:3"); /* keys stay unique */
    }
    docs_free(&out);
    /* a mixed array is one document */
    CHECK_OK(run(&ingest_parser_json, "m.json", "[{\"a\": \"x\"}, \"y\"]", NULL, &out));
    CHECK(out.n == 1 && strcmp(out.d[0].key, "") == 0);
    docs_free(&out);
}

static void test_json_malformed(void)
{
    struct { const char *data; const char *want; } bad[] = {
        {"", "ends early"},
        {"{\"a\": 1", "ends early"},
        {"{\"a\": 1,\n \"b\": tru }", "line 2"},
        {"[1, 2] trailing", "after the value"},
        {"{\"a\": \"unterminated", "JSON"},
        {"nul", "JSON"},
    };
    for (size_t i = 0; i < CAIRN_ARRAY_LEN(bad); i++) {
        docs out;
        cairn_status st = run(&ingest_parser_json, "bad.json", bad[i].data, NULL, &out);
        CHECKF(st == CAIRN_ERR_CORRUPT, "case %zu: status %s", i, cairn_status_str(st));
        CHECKF(strstr(cairn_last_error(), "bad.json") && strstr(cairn_last_error(), bad[i].want), "case %zu: %s", i,
               cairn_last_error());
        CHECK_EQ_INT(out.total, 0);
        docs_free(&out);
    }
    /* hostile nesting: refused by the parser's depth limit, no crash */
    char *deep = repeat("[", 500000, "");
    docs out;
    CHECK(run(&ingest_parser_json, "deep.json", deep, NULL, &out) == CAIRN_ERR_CORRUPT);
    docs_free(&out);
    free(deep);
    /* deep but allowed nesting is flattened with a depth cap, no crash */
    char *ok = malloc(2000 + 64);
    size_t k = 0;
    for (int i = 0; i < 900; i++) ok[k++] = '[';
    k += (size_t)sprintf(ok + k, "\"leaf\"");
    for (int i = 0; i < 900; i++) ok[k++] = ']';
    ok[k] = 0;
    CHECK_OK(run(&ingest_parser_json, "deepok.json", ok, NULL, &out));
    CHECK_EQ_INT(out.n, 1);
    docs_free(&out);
    free(ok);
    /* a .json file holding JSON Lines is read as JSONL */
    CHECK_OK(run(&ingest_parser_json, "lines.json", "{\"_id\": \"a\", \"text\": \"A\"}\n{\"_id\": \"b\", \"text\": \"B\"}\n",
                 NULL, &out));
    CHECK(out.n == 2 && strcmp(out.d[1].key, "b") == 0);
    docs_free(&out);
}

/* ---- JSONL ---- */
static void test_jsonl_beir(void)
{
    const char *corpus =
        "{\"_id\": \"doc1\", \"title\": \"Flow\", \"text\": \"experimental investigation of the aerodynamics.\", \"metadata\": {}}\n"
        "\r\n"
        "{\"_id\": \"doc2\", \"title\": \"\", \"text\": \"second text\", \"metadata\": {\"url\": \"http://x\"}}\r\n"
        "   \n"
        "{\"_id\": 3, \"text\": \"numeric id\"}\n"
        "{\"_id\": \"t\", \"title\": \"Title Only Record\", \"text\": \"\"}";
    docs out;
    CHECK_OK(run(&ingest_parser_jsonl, "corpus.jsonl", corpus, NULL, &out));
    CHECK_EQ_INT(out.n, 4);
    if (out.n == 4) {
        /* a record with only a title is findable by its title */
        CHECK(out.d[3].n_blocks == 1 && strcmp(out.d[3].blocks[0].text, "Title Only Record") == 0);
        CHECK_EQ_STR(out.d[0].key, "doc1");
        CHECK_EQ_STR(out.d[0].type, "jsonl");
        CHECK_EQ_STR(out.d[0].title, "Flow");
        CHECK(out.d[0].n_blocks == 1 && strcmp(out.d[0].blocks[0].text, "experimental investigation of the aerodynamics.") == 0);
        CHECK_EQ_STR(out.d[1].key, "doc2");
        CHECK(out.d[1].title == NULL);
        CHECK_EQ_STR(meta_str(&out.d[1], "metadata.url"), "http://x");
        CHECK_EQ_STR(out.d[2].key, "3");
    }
    docs_free(&out);
}

static void test_jsonl_options_and_bad_lines(void)
{
    ingest_options o;
    ingest_options_default(&o);
    o.json_id_field = "pid";
    o.json_title_field = "headline";
    o.json_text_field = "body";
    cairn_log_level lvl = cairn_log_get_level();
    cairn_log_set_level(CAIRN_LOG_ERROR);
    const char *data =
        "{\"pid\": \"p1\", \"headline\": \"H1\", \"body\": \"B1\", \"_id\": \"ignored\", \"score\": 0.5}\n"
        "{\"pid\": \"p2\", \"headline\": \"H2\", \"body\": [\"B2a\", \"B2b\"]}\n"
        "{not json}\n"
        "[1, 2]\n"
        "{\"pid\": \"p3\"} extra\n"
        "{\"headline\": \"no id\", \"body\": \"B6\"}\n"
        "{\"pid\": \"p1\", \"body\": \"duplicate\"}\n"
        "{\"pid\": \"p8\", \"body\": \"trunc";
    docs out;
    CHECK_OK(run(&ingest_parser_jsonl, "c.jsonl", data, &o, &out));
    CHECK_EQ_INT(out.n, 4);
    if (out.n == 4) {
        CHECK_EQ_STR(out.d[0].key, "p1");
        CHECK_EQ_STR(out.d[0].title, "H1");
        CHECK_EQ_STR(meta_str(&out.d[0], "_id"), "ignored");
        CHECK_NEAR(meta_num(&out.d[0], "score", META_NUMBER), 0.5, 0);
        CHECK(out.d[1].n_blocks == 2);
        CHECK_EQ_STR(out.d[2].key, "line:6");
        CHECK_EQ_STR(out.d[3].key, "p1@line:7");
    }
    docs_free(&out);
    /* nothing valid at all: the file fails, naming the first bad line */
    cairn_status st = run(&ingest_parser_jsonl, "junk.jsonl", "\n\nthis is not json\n{\"a\":\n", NULL, &out);
    CHECK(st == CAIRN_ERR_CORRUPT);
    CHECKF(strstr(cairn_last_error(), "junk.jsonl") && strstr(cairn_last_error(), "line 3"), "%s", cairn_last_error());
    docs_free(&out);
    /* empty file: no documents, no error */
    CHECK_OK(run(&ingest_parser_jsonl, "empty.jsonl", "", NULL, &out));
    CHECK_EQ_INT(out.total, 0);
    docs_free(&out);
    cairn_log_set_level(lvl);
}

static cairn_status count_only(void *ctx, ingest_doc *doc)
{
    size_t *n = ctx;
    (*n)++;
    (void)doc;
    return CAIRN_OK;
}

static cairn_status stop_after_two(void *ctx, ingest_doc *doc)
{
    size_t *n = ctx;
    (void)doc;
    return ++(*n) >= 2 ? cairn_fail(CAIRN_ERR_INTERRUPTED, "stop") : CAIRN_OK;
}

static void test_jsonl_large_and_emit_error(void)
{
    /* 200k records (~14 MB): linear time, every record emitted */
    size_t n = 200000;
    cairn_buf b;
    cairn_buf_init(&b, 0);
    cairn_status bst = CAIRN_OK;
    for (size_t i = 0; i < n && bst == CAIRN_OK; i++)
        bst = cairn_buf_printf(&b, "{\"_id\": \"d%zu\", \"title\": \"t\", \"text\": \"word %zu and some more words\"}\n", i, i);
    CHECK_OK(bst);
    ingest_options o;
    ingest_options_default(&o);
    size_t count = 0;
    CHECK_OK(ingest_parser_jsonl.parse("big.jsonl", b.data, b.len, &o, count_only, &count));
    CHECK_EQ_INT(count, n);
    /* an error from the callback stops the parse and is returned */
    count = 0;
    CHECK(ingest_parser_jsonl.parse("big.jsonl", b.data, b.len, &o, stop_after_two, &count) == CAIRN_ERR_INTERRUPTED);
    CHECK_EQ_INT(count, 2);
    cairn_buf_free(&b);
}

static void test_jsonl_shared_beir(void)
{
    const char *shared = cairn_test_shared_dir();
    if (!shared) {
        fprintf(stderr, "(shared assets absent: BEIR corpus check skipped)\n");
        return;
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/data/ir/cranfield/corpus.jsonl", shared);
    char *data;
    size_t len;
    if (cairn_file_read_all(path, (size_t)1 << 30, &data, &len) != CAIRN_OK) {
        fprintf(stderr, "(no %s: skipped)\n", path);
        return;
    }
    size_t lines = 0;
    for (size_t i = 0; i < len; i++)
        lines += data[i] == '\n';
    if (len && data[len - 1] != '\n')
        lines++;
    ingest_options o;
    ingest_options_default(&o);
    size_t count = 0;
    CHECK_OK(ingest_parser_jsonl.parse(path, data, len, &o, count_only, &count));
    CHECK_EQ_INT(count, lines);
    cairn_free(data);
}

/* ---- CSV ---- */
static void test_csv_rows(void)
{
    const char *data =
        "\xef\xbb\xbfid,title,body,year,published,flag\r\n"
        "r1,First,\"Hello, world\",1999,2001-02-03,true\r\n"
        "\r\n"
        "r2,\"Second \"\"quoted\"\"\",\"multi\nline\nbody\",2005,,false\r\n"
        ",No id,short,,,\n"
        "r4,Ragged\n"
        "r5,Extra,b,1,2,3,EXTRA\n";
    docs out;
    CHECK_OK(run(&ingest_parser_csv, "t.csv", data, NULL, &out));
    CHECK_EQ_INT(out.n, 5);
    if (out.n == 5) {
        ingest_doc *d = &out.d[0];
        CHECK_EQ_STR(d->type, "csv");
        CHECK_EQ_STR(d->key, "r1");
        CHECK_EQ_STR(d->title, "First");
        CHECK(d->n_blocks == 1 && strstr(d->blocks[0].text, "body: Hello, world") &&
              strstr(d->blocks[0].text, "year: 1999"));
        CHECK(!strstr(d->blocks[0].text, "r1")); /* the id column is not text */
        CHECK_NEAR(meta_num(d, "year", META_NUMBER), 1999, 0);
        CHECK(meta_get(&d->meta, "published") && meta_get(&d->meta, "published")->type == META_DATE);
        CHECK_NEAR(meta_num(d, "flag", META_BOOL), 1, 0);
        CHECK_EQ_STR(out.d[1].title, "Second \"quoted\"");
        CHECK(any_block_has(&out.d[1], "multi\nline\nbody"));
        CHECK(meta_get(&out.d[1].meta, "published") == NULL); /* empty cells are not metadata */
        CHECK_EQ_STR(out.d[2].key, "row:3");
        CHECK_EQ_STR(out.d[3].key, "r4");
        CHECK_EQ_STR(out.d[4].key, "r5");
        CHECK(any_block_has(&out.d[4], "column_7: EXTRA"));
    }
    docs_free(&out);
}

static void test_csv_options(void)
{
    ingest_options o;
    ingest_options_default(&o);
    o.csv_text_columns = "Body, summary";
    const char *data = "name,body,summary,score\nAnn,the body,the summary,3.5\nBob,b2,,4\n";
    docs out;
    CHECK_OK(run(&ingest_parser_csv, "t.csv", data, &o, &out));
    CHECK_EQ_INT(out.n, 2);
    if (out.n == 2) {
        ingest_doc *d = &out.d[0];
        CHECK_EQ_INT(d->n_blocks, 2);
        if (d->n_blocks == 2) {
            CHECK_EQ_STR(d->blocks[0].text, "the body");
            CHECK_EQ_STR(d->blocks[1].text, "the summary");
        }
        CHECK_EQ_STR(meta_str(d, "name"), "Ann");
        CHECK_NEAR(meta_num(d, "score", META_NUMBER), 3.5, 0);
        CHECK(meta_get(&d->meta, "body") == NULL);
        CHECK_EQ_STR(d->key, "row:1");
    }
    docs_free(&out);
    o.csv_text_columns = "nope";
    cairn_status st = run(&ingest_parser_csv, "t.csv", data, &o, &out);
    CHECK(st == CAIRN_ERR_INVALID);
    CHECK(strstr(cairn_last_error(), "nope") != NULL);
    docs_free(&out);
    /* one document per file */
    o.csv_text_columns = NULL;
    o.csv_row_per_doc = false;
    CHECK_OK(run(&ingest_parser_csv, "t.csv", data, &o, &out));
    CHECK_EQ_INT(out.n, 1);
    if (out.n == 1) {
        ingest_doc *d = &out.d[0];
        CHECK_EQ_STR(d->key, "");
        CHECK_EQ_INT(d->n_blocks, 2);
        if (d->n_blocks == 2) {
            CHECK_EQ_INT(d->blocks[0].kind, BLOCK_TABLE_ROW);
            CHECK_EQ_STR(d->blocks[0].text, "name: Ann | body: the body | summary: the summary | score: 3.5");
            CHECK_EQ_STR(d->blocks[1].text, "name: Bob | body: b2 | score: 4");
        }
        CHECK_NEAR(meta_num(d, "rows", META_NUMBER), 2, 0);
        const meta_value *cols = meta_get(&d->meta, "columns");
        CHECK(cols && cols->type == META_LIST && cols->n_items == 4);
    }
    docs_free(&out);
}

static void test_csv_delimiters_and_malformed(void)
{
    docs out;
    CHECK_OK(run(&ingest_parser_csv, "t.tsv", "a\tb\nx,y\tz\n", NULL, &out));
    CHECK(out.n == 1 && any_block_has(&out.d[0], "a: x,y"));
    docs_free(&out);
    CHECK_OK(run(&ingest_parser_csv, "semi.csv", "a;b;c\n1,5;2;3\n", NULL, &out));
    CHECK(out.n == 1 && any_block_has(&out.d[0], "a: 1,5"));
    docs_free(&out);
    cairn_log_level lvl = cairn_log_get_level();
    cairn_log_set_level(CAIRN_LOG_ERROR);
    /* the file ends inside quotes: earlier rows are kept, the broken one dropped */
    CHECK_OK(run(&ingest_parser_csv, "q.csv", "a,b\n1,2\n3,\"never closed\n4,5\n", NULL, &out));
    CHECK_EQ_INT(out.n, 1);
    docs_free(&out);
    cairn_status st = run(&ingest_parser_csv, "q.csv", "a,\"b\n1,2\n", NULL, &out);
    CHECK(st == CAIRN_ERR_CORRUPT && strstr(cairn_last_error(), "q.csv") && strstr(cairn_last_error(), "line 1"));
    docs_free(&out);
    st = run(&ingest_parser_csv, "q.csv", "a,b\n\"x\n\n", NULL, &out);
    CHECK(st == CAIRN_ERR_CORRUPT && strstr(cairn_last_error(), "line 2"));
    docs_free(&out);
    cairn_log_set_level(lvl);
    /* lenient quirks: text after a closing quote, a stray quote inside a field */
    CHECK_OK(run(&ingest_parser_csv, "l.csv", "a,b\n\"x\"y,ab\"c\n", NULL, &out));
    CHECK(out.n == 1 && any_block_has(&out.d[0], "a: xy") && any_block_has(&out.d[0], "b: ab\"c"));
    docs_free(&out);
    /* header only, empty file, duplicate and empty header names */
    CHECK_OK(run(&ingest_parser_csv, "h.csv", "a,b\n", NULL, &out));
    CHECK_EQ_INT(out.total, 0);
    docs_free(&out);
    CHECK_OK(run(&ingest_parser_csv, "e.csv", "", NULL, &out));
    CHECK_EQ_INT(out.total, 0);
    docs_free(&out);
    CHECK_OK(run(&ingest_parser_csv, "d.csv", "a,a,\n1,2,3\n", NULL, &out));
    CHECK(out.n == 1 && any_block_has(&out.d[0], "a: 1") && any_block_has(&out.d[0], "column_2: 2") &&
          any_block_has(&out.d[0], "column_3: 3"));
    docs_free(&out);
    /* too many columns */
    char *wide = repeat("x,", 10000, "x\n1\n");
    CHECK(run(&ingest_parser_csv, "w.csv", wide, NULL, &out) == CAIRN_ERR_CORRUPT);
    docs_free(&out);
    free(wide);
}

/* Values the metadata layer refuses (non-finite numbers, absurd keys) are
 * left out of the metadata; they never fail the record or the file. */
static void test_odd_values(void)
{
    docs out;
    CHECK_OK(run(&ingest_parser_csv, "n.csv", "id,a,b,c,d\nr1,1e999,inf,nan,-inf\n", NULL, &out));
    CHECK_EQ_INT(out.n, 1);
    docs_free(&out);
    /* the id column missing from a short row */
    CHECK_OK(run(&ingest_parser_csv, "s.csv", "text,id\nonly text\n", NULL, &out));
    CHECK(out.n == 1 && strcmp(out.d[0].key, "row:1") == 0);
    docs_free(&out);
    /* numbers a double would change stay strings; cells are trimmed */
    CHECK_OK(run(&ingest_parser_csv, "z.csv", "id,zip,long,n,neg\n r7 ,02139,12345678901234567890, 42 ,-0.5\n", NULL, &out));
    CHECK_EQ_INT(out.n, 1);
    if (out.n == 1) {
        CHECK_EQ_STR(out.d[0].key, "r7");
        CHECK_EQ_STR(meta_str(&out.d[0], "zip"), "02139");
        CHECK_EQ_STR(meta_str(&out.d[0], "long"), "12345678901234567890");
        CHECK_NEAR(meta_num(&out.d[0], "n", META_NUMBER), 42, 0);
        CHECK_NEAR(meta_num(&out.d[0], "neg", META_NUMBER), -0.5, 0);
    }
    docs_free(&out);
    char *longkey = repeat("k", 5000, "");
    cairn_buf b;
    cairn_buf_init(&b, 0);
    CHECK_OK(cairn_buf_printf(&b, "{\"_id\": \"x\", \"text\": \"t\", \"big\": 1e999, \"%s\": 1, \"o\": {\"%s\": {\"%s\": 2}}}\n"
                                  "{\"_id\": \"y\", \"text\": \"u\"}\n", longkey, longkey, longkey));
    CHECK_OK(run(&ingest_parser_jsonl, "n.jsonl", b.data, NULL, &out));
    CHECK_EQ_INT(out.n, 2);
    if (out.n == 2)
        CHECK(meta_get(&out.d[0].meta, "big") == NULL);
    docs_free(&out);
    /* a generic JSON value with very long keys and a non-finite number */
    cairn_buf_reset(&b);
    CHECK_OK(cairn_buf_printf(&b, "{\"%s\": {\"%s\": {\"%s\": \"deep\"}}, \"n\": -1e999}", longkey, longkey, longkey));
    CHECK_OK(run(&ingest_parser_json, "n.json", b.data, NULL, &out));
    CHECK(out.n == 1 && any_block_has(&out.d[0], "deep"));
    docs_free(&out);
    cairn_buf_free(&b);
    free(longkey);
}

/* ---- PDF ---- */
/* A minimal but valid PDF: catalog, pages, a standard font, an info
 * dictionary, optionally an /Encrypt dictionary; a correct xref table. */
static char *make_pdf(const char *const *pages, int npages, const char *info, bool encrypted, size_t *len)
{
    cairn_buf b;
    cairn_buf_init(&b, 0);
    size_t off[64] = {0};
    int nobj = 5 + 2 * npages;
    cairn_buf_puts(&b, "%PDF-1.4\n%\xe2\xe3\xcf\xd3\n");
    off[1] = b.len;
    cairn_buf_puts(&b, "1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n");
    off[2] = b.len;
    cairn_buf_puts(&b, "2 0 obj\n<< /Type /Pages /Kids [");
    for (int i = 0; i < npages; i++)
        cairn_buf_printf(&b, "%d 0 R ", 6 + 2 * i);
    cairn_buf_printf(&b, "] /Count %d >>\nendobj\n", npages);
    off[3] = b.len;
    cairn_buf_puts(&b, "3 0 obj\n<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>\nendobj\n");
    off[4] = b.len;
    cairn_buf_printf(&b, "4 0 obj\n<< %s >>\nendobj\n", info ? info : "");
    off[5] = b.len;
    if (encrypted) /* RC4 40-bit; the /U check fails for the empty password */
        cairn_buf_puts(&b, "5 0 obj\n<< /Filter /Standard /V 1 /R 2 /Length 40 /P -44 "
                           "/O <6f6e652074776f2074687265652066f7572206669766520736978207365766e> "
                           "/U <0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef> >>\nendobj\n");
    else
        cairn_buf_puts(&b, "5 0 obj\n<< >>\nendobj\n");
    for (int i = 0; i < npages; i++) {
        off[6 + 2 * i] = b.len;
        cairn_buf_printf(&b, "%d 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
                             "/Resources << /Font << /F1 3 0 R >> >> >>\nendobj\n", 6 + 2 * i, 7 + 2 * i);
        off[7 + 2 * i] = b.len;
        cairn_buf_printf(&b, "%d 0 obj\n<< /Length %zu >>\nstream\n%s\nendstream\nendobj\n", 7 + 2 * i,
                         strlen(pages[i]), pages[i]);
    }
    size_t xref = b.len;
    cairn_buf_printf(&b, "xref\n0 %d\n0000000000 65535 f \n", nobj);
    for (int i = 1; i < nobj; i++)
        cairn_buf_printf(&b, "%010zu 00000 n \n", off[i]);
    cairn_buf_printf(&b, "trailer\n<< /Size %d /Root 1 0 R /Info 4 0 R%s >>\nstartxref\n%zu\n%%%%EOF\n", nobj,
                     encrypted ? " /Encrypt 5 0 R /ID [<00112233445566778899aabbccddeeff> <00112233445566778899aabbccddeeff>]" : "",
                     xref);
    *len = b.len;
    return cairn_buf_take(&b);
}

static const char *pdf_page1 =
    "BT /F1 12 Tf 14 TL 72 720 Td (The first paragraph starts here and) Tj T* (continues on a well-known hyphen-) Tj "
    "T* (ated second line.) Tj 0 -40 Td (A second paragraph after a gap.) Tj ET";
static const char *pdf_page2 = "BT /F1 12 Tf 72 720 Td (Page two text.) Tj ET";

/* Run a parse with stderr captured; returns what was printed (caller frees). */
static char *parse_capturing_stderr(const ingest_parser *p, const char *path, const char *data, size_t len,
                                    cairn_status *st, docs *out)
{
    char tmpl[] = "/tmp/cairn_stderr_XXXXXX";
    int fd = mkstemp(tmpl);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    *st = run_n(p, path, data, len, out);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    off_t n = lseek(fd, 0, SEEK_END);
    char *buf = calloc(1, (size_t)n + 1);
    if (pread(fd, buf, (size_t)n, 0) < 0)
        buf[0] = 0;
    close(fd);
    unlink(tmpl);
    return buf;
}

static void test_pdf_text_and_info(void)
{
    const char *pages[] = {pdf_page1, pdf_page2};
    size_t len;
    char *pdf = make_pdf(pages, 2, "/Title (Test Title) /Author (Ann Author) /Keywords (one, two; three) "
                                   "/CreationDate (D:20240102030405Z)", false, &len);
    docs out;
    CHECK_OK(run_n(&ingest_parser_pdf, "t.pdf", pdf, len, &out));
    CHECK_EQ_INT(out.n, 1);
    if (out.n == 1) {
        ingest_doc *d = &out.d[0];
        CHECK_EQ_STR(d->type, "pdf");
        CHECK_EQ_STR(d->key, "");
        CHECK_EQ_STR(d->title, "Test Title");
        CHECK_EQ_STR(meta_str(d, "author"), "Ann Author");
        CHECK_NEAR(meta_num(d, "pages", META_NUMBER), 2, 0);
        CHECK_NEAR(meta_num(d, "created", META_DATE), 1704164645, 0);
        const meta_value *kw = meta_get(&d->meta, "keywords");
        CHECK(kw && kw->type == META_LIST && kw->n_items == 3);
        CHECK_EQ_INT(d->n_blocks, 3);
        if (d->n_blocks == 3) {
            CHECK_EQ_STR(d->blocks[0].text,
                         "The first paragraph starts here and continues on a well-known hyphenated second line.");
            CHECK_EQ_INT(d->blocks[0].page, 1);
            CHECK_EQ_STR(d->blocks[1].text, "A second paragraph after a gap.");
            CHECK_EQ_INT(d->blocks[1].page, 1);
            CHECK_EQ_STR(d->blocks[2].text, "Page two text.");
            CHECK_EQ_INT(d->blocks[2].page, 2);
        }
    }
    docs_free(&out);
    cairn_free(pdf);
}

static void test_pdf_headings(void)
{
    const char *pages[] = {
        "BT /F1 24 Tf 72 720 Td (Document Title) Tj /F1 16 Tf 0 -40 Td (1 Introduction) Tj "
        "/F1 10 Tf 12 TL 0 -30 Td (Body line one of the text that goes on and on.) Tj T* "
        "(Body line two continues here too, and on.) Tj T* (Body line three ends the paragraph and) Tj T* "
        "(body line four is also here.) Tj /F1 13 Tf 0 -30 Td (1.1 Subsection) Tj "
        "/F1 10 Tf 0 -24 Td (More body text.) Tj ET"};
    size_t len;
    char *pdf = make_pdf(pages, 1, NULL, false, &len);
    docs out;
    CHECK_OK(run_n(&ingest_parser_pdf, "h.pdf", pdf, len, &out));
    CHECK_EQ_INT(out.n, 1);
    if (out.n == 1) {
        ingest_doc *d = &out.d[0];
        const ingest_block *b = find_block(d, "Document Title");
        CHECK(b && b->kind == BLOCK_HEADING && b->level == 1 && strcmp(b->text, "Document Title") == 0);
        b = find_block(d, "1 Introduction");
        CHECK(b && b->kind == BLOCK_HEADING && b->level == 2 && strcmp(b->text, "1 Introduction") == 0);
        b = find_block(d, "Body line one");
        CHECK(b && b->kind == BLOCK_PARAGRAPH && strstr(b->text, "body line four is also here."));
        b = find_block(d, "1.1 Subsection");
        CHECK(b && b->kind == BLOCK_HEADING && b->level == 3);
        b = find_block(d, "More body text.");
        CHECK(b && b->kind == BLOCK_PARAGRAPH);
        for (size_t i = 0; i < d->n_blocks; i++)
            CHECK_EQ_INT(d->blocks[i].page, 1);
    }
    docs_free(&out);
    cairn_free(pdf);
}

static void test_pdf_bad(void)
{
    const char *pages[] = {pdf_page1, pdf_page2};
    size_t len;
    char *good = make_pdf(pages, 2, "/Title (T)", false, &len);
    docs out;
    cairn_status st;
    char *err;

    /* encrypted, needs a password */
    size_t elen;
    char *enc = make_pdf(pages, 2, NULL, true, &elen);
    err = parse_capturing_stderr(&ingest_parser_pdf, "secret.pdf", enc, elen, &st, &out);
    CHECKF(st == CAIRN_ERR_UNSUPPORTED, "%s: %s", cairn_status_str(st), cairn_last_error());
    CHECK(strstr(cairn_last_error(), "secret.pdf") && strstr(cairn_last_error(), "encrypted"));
    CHECKF(err[0] == 0, "poppler printed: %s", err);
    CHECK_EQ_INT(out.total, 0);
    free(err);
    docs_free(&out);
    cairn_free(enc);

    /* not a PDF at all */
    err = parse_capturing_stderr(&ingest_parser_pdf, "fake.pdf", "hello world, not a pdf", 22, &st, &out);
    CHECK(st == CAIRN_ERR_CORRUPT && strstr(cairn_last_error(), "fake.pdf"));
    free(err);
    docs_free(&out);

    /* header then garbage */
    const char *garbage = "%PDF-1.7\n\x01\x02 garbage garbage 1 0 obj << /Type /Catalog >> trailer <<>>";
    err = parse_capturing_stderr(&ingest_parser_pdf, "garbage.pdf", garbage, strlen(garbage), &st, &out);
    CHECKF(st == CAIRN_ERR_CORRUPT, "%s: %s", cairn_status_str(st), cairn_last_error());
    CHECK(strstr(cairn_last_error(), "garbage.pdf") != NULL);
    CHECKF(err[0] == 0, "poppler printed: %s", err);
    free(err);
    docs_free(&out);

    /* truncated at many points: a clear status each time, never a crash */
    for (size_t cut = 9; cut < len; cut += len / 23) {
        err = parse_capturing_stderr(&ingest_parser_pdf, "cut.pdf", good, cut, &st, &out);
        CHECKF(st == CAIRN_OK || st == CAIRN_ERR_CORRUPT || st == CAIRN_ERR_UNSUPPORTED, "cut %zu: %s", cut,
               cairn_status_str(st));
        CHECKF(err[0] == 0, "cut %zu: poppler printed: %s", cut, err);
        free(err);
        docs_free(&out);
    }

    /* byte flips (deterministic): never a crash */
    uint64_t seed = 0x9E3779B97F4A7C15ull;
    char *m = malloc(len);
    for (int it = 0; it < 150; it++) {
        memcpy(m, good, len);
        for (int f = 0; f < 4; f++) {
            seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17;
            m[seed % len] = (char)(seed >> 32);
        }
        st = run_n(&ingest_parser_pdf, "flip.pdf", m, len, &out);
        CHECKF(st == CAIRN_OK || st == CAIRN_ERR_CORRUPT || st == CAIRN_ERR_UNSUPPORTED, "flip %d: %s", it,
               cairn_status_str(st));
        docs_free(&out);
    }
    free(m);

    /* pages without text (a scan): skipped with a reason */
    const char *blank[] = {"0 0 m 100 100 l S"};
    size_t blen;
    char *bl = make_pdf(blank, 1, NULL, false, &blen);
    st = run_n(&ingest_parser_pdf, "scan.pdf", bl, blen, &out);
    CHECK(st == CAIRN_ERR_UNSUPPORTED && strstr(cairn_last_error(), "no extractable text"));
    docs_free(&out);
    cairn_free(bl);
    cairn_free(good);
}

/* ---- allocation failures: every one gives NOMEM cleanly (ASan checks leaks) ---- */
static void test_alloc_failures(void)
{
    const char *pages[] = {pdf_page1, pdf_page2};
    size_t plen;
    char *pdf = make_pdf(pages, 2, "/Title (T) /Author (A) /Keywords (k1, k2)", false, &plen);
    ingest_options file_mode;
    ingest_options_default(&file_mode);
    file_mode.csv_row_per_doc = false;
    ingest_options text_cols;
    ingest_options_default(&text_cols);
    text_cols.csv_text_columns = "b";
    struct { const ingest_parser *p; const char *path; const char *data; size_t len; const ingest_options *opt; } cases[] = {
        {&ingest_parser_html, "a.html", "<html lang=en><head><title>T</title><meta name=keywords content='a,b'>"
         "<meta name=description content=d></head><body><h1>H</h1><p>p <b>q</b></p><ul><li>i</li></ul>"
         "<table><tr><td>a</td><td>b</td></tr></table><pre>c\n d</pre></body></html>", 0, NULL},
        {&ingest_parser_html, "deep.html", NULL, 0, NULL},
        {&ingest_parser_html, "old.html", "<meta charset=cp1252><h2>Caf\xe9</h2><p>\x93x\x94</p>", 0, NULL},
        {&ingest_parser_json, "a.json", "[{\"_id\":\"x\",\"title\":\"t\",\"text\":\"a\\n\\nb\",\"n\":1,\"l\":[1,\"2\"],"
         "\"o\":{\"p\":true}},{\"_id\":\"x\",\"text\":\"c\"}]", 0, NULL},
        {&ingest_parser_json, "g.json", "{\"a\":{\"b\":[\"c\",1,true]},\"d\":\"2020-01-01\"}", 0, NULL},
        {&ingest_parser_jsonl, "a.jsonl", "{\"_id\":\"x\",\"text\":\"a\"}\nbad\n{\"_id\":\"x\",\"title\":\"t\",\"m\":{\"k\":1}}\n", 0, NULL},
        {&ingest_parser_csv, "a.csv", "id,title,b,c\n1,t,\"x,y\",2\n2,u,z,\n", 0, NULL},
        {&ingest_parser_csv, "a.csv", "id,title,b,c\n1,t,\"x,y\",2\n2,u,z,,extra\n", 0, &file_mode},
        {&ingest_parser_csv, "a.csv", "id,title,b,c\n1,t,\"x,y\",2\n", 0, &text_cols},
        {&ingest_parser_pdf, "a.pdf", pdf, plen, NULL},
    };
    char *deep = repeat("<div>", 5000, "<p>deep</p>");
    cases[1].data = deep;
    cairn_log_level lvl = cairn_log_get_level();
    cairn_log_set_level(CAIRN_LOG_QUIET);
    for (size_t c = 0; c < CAIRN_ARRAY_LEN(cases); c++) {
        size_t len = cases[c].len ? cases[c].len : strlen(cases[c].data);
        ingest_options o;
        ingest_options_default(&o);
        const ingest_options *opt = cases[c].opt ? cases[c].opt : &o;
        bool finished = false;
        for (long n = 0; n < 5000 && !finished; n++) {
            docs out;
            memset(&out, 0, sizeof out);
            cairn_alloc_fail_after(n, false);
            cairn_status st = cases[c].p->parse(cases[c].path, cases[c].data, len, opt, collect, &out);
            long injected = cairn_alloc_injected_failures();
            cairn_alloc_fail_after(-1, false);
            if (injected == 0) {
                CHECKF(st == CAIRN_OK, "case %zu: %s", c, cairn_last_error());
                finished = true;
            } else {
                CHECKF(st == CAIRN_ERR_NOMEM, "case %zu, failing allocation %ld: %s (%s)", c, n,
                       cairn_status_str(st), cairn_last_error());
            }
            docs_free(&out);
        }
        CHECKF(finished, "case %zu never finished", c);
    }
    cairn_log_set_level(lvl);
    free(deep);
    cairn_free(pdf);
}

int main(void)
{
    RUN(test_detect);
    RUN(test_html_structure);
    RUN(test_html_title_fallback_and_breaks);
    RUN(test_html_malformed);
    RUN(test_html_hostile);
    RUN(test_json_record_and_generic);
    RUN(test_json_array);
    RUN(test_json_malformed);
    RUN(test_jsonl_beir);
    RUN(test_jsonl_options_and_bad_lines);
    RUN(test_jsonl_large_and_emit_error);
    RUN(test_jsonl_shared_beir);
    RUN(test_csv_rows);
    RUN(test_csv_options);
    RUN(test_csv_delimiters_and_malformed);
    RUN(test_odd_values);
    RUN(test_pdf_text_and_info);
    RUN(test_pdf_headings);
    RUN(test_pdf_bad);
    RUN(test_alloc_failures);
    return t_done();
}
