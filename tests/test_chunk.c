/* test_chunk.c — the structure-aware chunker: windows and overlap, heading
 * paths, never splitting words, code lines, pages, stable keys. */
#include "t.h"
#include "chunk/chunk.h"

static void doc_init(ingest_doc *d, const char *key)
{
    ingest_doc_init(d);
    d->key = cairn_strdup(key);
    d->title = cairn_strdup("Title");
    d->type = "markdown";
}

static void add(ingest_doc *d, block_kind k, int level, const char *text)
{
    CHECK_OK(ingest_doc_add_block(d, k, level, 0, text, strlen(text)));
}

static void test_token_estimate(void)
{
    CHECK_EQ_INT(chunk_count_tokens("hello world", 11), 2);
    CHECK_EQ_INT(chunk_count_tokens("Hello, world!", 13), 4);
    CHECK_EQ_INT(chunk_count_tokens("", 0), 0);
    /* a 20-byte word counts 3 (one per started 8 bytes) */
    CHECK_EQ_INT(chunk_count_tokens("abcdefghijklmnopqrst", 20), 3);
    /* CJK: one per character */
    const char *cjk = "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E";
    CHECK_EQ_INT(chunk_count_tokens(cjk, strlen(cjk)), 3);
}

static void test_options(void)
{
    chunk_options o;
    chunk_options_default(&o);
    CHECK_OK(chunk_options_check(&o));
    o.overlap_tokens = o.max_tokens;
    CHECK(chunk_options_check(&o) == CAIRN_ERR_INVALID);
    o.max_tokens = 3;
    o.overlap_tokens = 0;
    CHECK(chunk_options_check(&o) == CAIRN_ERR_INVALID);
}

/* every word of the source appears whole in some chunk, and no chunk exceeds the window */
static void check_words_whole(const chunk_list *cl, const char *src, size_t max)
{
    for (size_t i = 0; i < cl->n; i++) {
        CHECKF((size_t)cl->c[i].ntokens <= max, "chunk %zu has %d tokens", i, cl->c[i].ntokens);
        CHECK_EQ_INT(chunk_count_tokens(cl->c[i].text, cl->c[i].len), cl->c[i].ntokens);
        /* first and last word of each chunk must be whole words of the source */
        const char *t = cl->c[i].text;
        size_t n = strcspn(t, " \n");
        char w[64];
        snprintf(w, sizeof w, "%.*s", (int)(n < 63 ? n : 63), t);
        CHECKF(strstr(src, w) != NULL, "word '%s' not in source", w);
        const char *sp = strrchr(t, ' ');
        const char *last = sp ? sp + 1 : t;
        /* the source contains it preceded by a space or at start */
        char pat[80];
        snprintf(pat, sizeof pat, " %s", last);
        CHECKF(strstr(src, pat) != NULL || !strncmp(src, last, strlen(last)), "last word '%s' is cut", last);
    }
}

static void test_windows_and_overlap(void)
{
    /* 60 sentences of 6 words + '.' = 7 tokens each */
    char src[8192] = "";
    for (int i = 0; i < 60; i++) {
        char s[96];
        snprintf(s, sizeof s, "%sSentence number w%d has some words.", i ? " " : "", i);
        strcat(src, s);
    }
    ingest_doc d;
    doc_init(&d, "");
    add(&d, BLOCK_PARAGRAPH, 0, src);
    chunk_options o = {.max_tokens = 64, .overlap_tokens = 14};
    chunk_list cl = {0};
    CHECK_OK(chunk_doc(&d, &o, &cl));
    CHECK(cl.n >= 7);
    check_words_whole(&cl, src, 64);
    for (size_t i = 0; i < cl.n; i++) {
        CHECK_EQ_INT(cl.c[i].ord, i);
        /* windows end at sentence boundaries */
        CHECK(cl.c[i].text[cl.c[i].len - 1] == '.');
        CHECK(cl.c[i].ntokens >= 32 || i == cl.n - 1);
    }
    /* overlap: the last two sentences of chunk i start chunk i+1 */
    for (size_t i = 0; i + 1 < cl.n; i++) {
        const char *next = cl.c[i + 1].text;
        size_t nl = strcspn(next, ".");
        char first[128];
        snprintf(first, sizeof first, "%.*s.", (int)nl, next);
        CHECKF(strstr(cl.c[i].text, first) != NULL, "chunk %zu does not overlap the next", i);
    }
    /* everything is covered: last sentence in the last chunk */
    CHECK(strstr(cl.c[cl.n - 1].text, "w59 has some words.") != NULL);
    chunk_list_free(&cl);
    /* no overlap: chunks are disjoint and concatenate to the source */
    o.overlap_tokens = 0;
    CHECK_OK(chunk_doc(&d, &o, &cl));
    cairn_buf b;
    cairn_buf_init(&b, 0);
    for (size_t i = 0; i < cl.n; i++) {
        if (i)
            cairn_buf_putc(&b, ' ');
        cairn_buf_append(&b, cl.c[i].text, cl.c[i].len);
    }
    CHECK_EQ_STR(b.data, src);
    cairn_buf_free(&b);
    chunk_list_free(&cl);
    ingest_doc_free(&d);
}

static void test_headings_and_blocks(void)
{
    ingest_doc d;
    doc_init(&d, "");
    add(&d, BLOCK_HEADING, 1, "Guide");
    add(&d, BLOCK_PARAGRAPH, 0, "Intro text.");
    add(&d, BLOCK_HEADING, 2, "Install");
    add(&d, BLOCK_LIST_ITEM, 1, "first step");
    add(&d, BLOCK_LIST_ITEM, 1, "second step");
    add(&d, BLOCK_HEADING, 3, "Details");
    add(&d, BLOCK_CODE, 0, "make\nmake install");
    add(&d, BLOCK_HEADING, 2, "Usage");
    add(&d, BLOCK_PARAGRAPH, 0, "Run it.");
    chunk_options o = {.max_tokens = 128, .overlap_tokens = 16};
    chunk_list cl = {0};
    CHECK_OK(chunk_doc(&d, &o, &cl));
    CHECK_EQ_INT(cl.n, 4);
    if (cl.n == 4) {
        CHECK_EQ_STR(cl.c[0].heading_path, "Guide");
        CHECK_EQ_STR(cl.c[0].text, "Intro text.");
        CHECK_EQ_STR(cl.c[1].heading_path, "Guide > Install");
        CHECK_EQ_STR(cl.c[1].text, "- first step\n- second step");
        CHECK_EQ_STR(cl.c[2].heading_path, "Guide > Install > Details");
        CHECK_EQ_STR(cl.c[2].text, "make\nmake install");
        CHECK_EQ_STR(cl.c[3].heading_path, "Guide > Usage");   /* level-3 heading dropped */
    }
    chunk_list_free(&cl);
    ingest_doc_free(&d);
}

static void test_giant_word_and_code(void)
{
    char big[3000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    ingest_doc d;
    doc_init(&d, "");
    add(&d, BLOCK_PARAGRAPH, 0, big);
    chunk_options o = {.max_tokens = 32, .overlap_tokens = 0};
    chunk_list cl = {0};
    CHECK_OK(chunk_doc(&d, &o, &cl));
    size_t total = 0;
    for (size_t i = 0; i < cl.n; i++) {
        CHECK(cl.c[i].ntokens <= 32);
        total += cl.c[i].len;
    }
    CHECK_EQ_INT(total, sizeof big - 1);
    chunk_list_free(&cl);
    ingest_doc_free(&d);

    /* code: break between lines, keep indentation */
    char code[4096] = "";
    for (int i = 0; i < 40; i++) {
        char l[64];
        snprintf(l, sizeof l, "%s    x%d = compute(a, b);", i ? "\n" : "", i);
        strcat(code, l);
    }
    doc_init(&d, "");
    add(&d, BLOCK_CODE, 0, code);
    o.max_tokens = 50;
    CHECK_OK(chunk_doc(&d, &o, &cl));
    CHECK(cl.n > 1);
    for (size_t i = 0; i < cl.n; i++) {
        CHECK(!strncmp(cl.c[i].text, "    x", 5));
        CHECK(cl.c[i].text[cl.c[i].len - 1] == ';');
    }
    chunk_list_free(&cl);
    ingest_doc_free(&d);
}

static void test_pages(void)
{
    ingest_doc d;
    doc_init(&d, "");
    CHECK_OK(ingest_doc_add_block(&d, BLOCK_PARAGRAPH, 0, 3, "On page three.", 14));
    CHECK_OK(ingest_doc_add_block(&d, BLOCK_PARAGRAPH, 0, 4, "On page four.", 13));
    chunk_options o = {.max_tokens = 16, .overlap_tokens = 0};
    chunk_list cl = {0};
    CHECK_OK(chunk_doc(&d, &o, &cl));
    CHECK(cl.n >= 1);
    CHECK_EQ_INT(cl.c[0].page, 3);
    chunk_list_free(&cl);
    ingest_doc_free(&d);
}

static void test_stable_keys(void)
{
    ingest_doc a, b;
    doc_init(&a, "rec1");
    doc_init(&b, "rec1");
    add(&a, BLOCK_HEADING, 1, "H");
    add(&a, BLOCK_PARAGRAPH, 0, "Same paragraph.");
    add(&a, BLOCK_HEADING, 1, "H");
    add(&a, BLOCK_PARAGRAPH, 0, "Same paragraph.");   /* duplicate content */
    /* b: a new paragraph at the top; the others keep their keys */
    add(&b, BLOCK_HEADING, 1, "New");
    add(&b, BLOCK_PARAGRAPH, 0, "Inserted.");
    add(&b, BLOCK_HEADING, 1, "H");
    add(&b, BLOCK_PARAGRAPH, 0, "Same paragraph.");
    add(&b, BLOCK_HEADING, 1, "H");
    add(&b, BLOCK_PARAGRAPH, 0, "Same paragraph.");
    chunk_options o;
    chunk_options_default(&o);
    chunk_list ca = {0}, cb = {0}, ca2 = {0};
    CHECK_OK(chunk_doc(&a, &o, &ca));
    CHECK_OK(chunk_doc(&a, &o, &ca2));
    CHECK_OK(chunk_doc(&b, &o, &cb));
    CHECK_EQ_INT(ca.n, 2);
    CHECK_EQ_INT(cb.n, 3);
    if (ca.n == 2 && cb.n == 3) {
        CHECK(ca.c[0].key != ca.c[1].key);     /* duplicates disambiguated */
        CHECK(ca.c[0].key == ca2.c[0].key && ca.c[1].key == ca2.c[1].key);
        CHECK(cb.c[1].key == ca.c[0].key);
        CHECK(cb.c[2].key == ca.c[1].key);
    }
    char hex[17];
    chunk_key_hex(0x0123456789abcdefull, hex);
    CHECK_EQ_STR(hex, "0123456789abcdef");
    /* a different record key changes the keys */
    ingest_doc c;
    doc_init(&c, "rec2");
    add(&c, BLOCK_HEADING, 1, "H");
    add(&c, BLOCK_PARAGRAPH, 0, "Same paragraph.");
    chunk_list cc = {0};
    CHECK_OK(chunk_doc(&c, &o, &cc));
    CHECK(cc.n == 1 && cc.c[0].key != ca.c[0].key);
    chunk_list_free(&ca);
    chunk_list_free(&ca2);
    chunk_list_free(&cb);
    chunk_list_free(&cc);
    ingest_doc_free(&a);
    ingest_doc_free(&b);
    ingest_doc_free(&c);
}

static void test_alloc_failures(void)
{
    ingest_doc d;
    doc_init(&d, "");
    add(&d, BLOCK_HEADING, 1, "H");
    for (int i = 0; i < 20; i++)
        add(&d, BLOCK_PARAGRAPH, 0, "Some words in a sentence. And another sentence here.");
    chunk_options o = {.max_tokens = 24, .overlap_tokens = 6};
    for (long n = 0; n < 200; n++) {
        chunk_list cl = {0};
        cairn_alloc_fail_after(n, false);
        cairn_status st = chunk_doc(&d, &o, &cl);
        cairn_alloc_fail_after(-1, false);
        CHECK(st == CAIRN_OK || (st == CAIRN_ERR_NOMEM && cl.n == 0));
        chunk_list_free(&cl);
    }
    ingest_doc_free(&d);
}

static uint64_t xorshift(uint64_t *r)
{
    *r ^= *r << 13;
    *r ^= *r >> 7;
    *r ^= *r << 17;
    return *r;
}

/* Random documents of random blocks, chunked with random windows: every
 * chunk is within its window, non-empty, and covers only source words. */
static void test_random_docs(void)
{
    static const char *words[] = {"alpha", "be", "gamma.", "delta!", "e.g.", "Dr.", "x", "verylongwordwithoutanyspaces",
                                  "\xE6\x97\xA5\xE6\x9C\xAC", "caf\xC3\xA9", "(paren)", "end?", "\n", "  ", "-", "#", "1.5"};
    uint64_t r = 0x243F6A8885A308D3ull;
#define NEXT() xorshift(&r)
    for (int it = 0; it < 400; it++) {
        ingest_doc d;
        doc_init(&d, it % 2 ? "k" : "");
        int nb = (int)(NEXT() % 12);
        for (int b = 0; b < nb; b++) {
            char buf[2048];
            size_t n = 0;
            int nw = (int)(NEXT() % 120);
            for (int w = 0; w < nw; w++) {
                const char *wd = words[NEXT() % CAIRN_ARRAY_LEN(words)];
                size_t wl = strlen(wd);
                if (n + wl + 2 >= sizeof buf)
                    break;
                memcpy(buf + n, wd, wl);
                n += wl;
                buf[n++] = ' ';
            }
            block_kind k = (block_kind)(1 + NEXT() % 6);
            CHECK_OK(ingest_doc_add_block(&d, k, 1 + (int)(NEXT() % 6), (int)(NEXT() % 3), buf, n));
        }
        chunk_options o = {.max_tokens = 16 + NEXT() % 100, .overlap_tokens = 0};
        o.overlap_tokens = NEXT() % (o.max_tokens / 2 + 1);
        chunk_list cl = {0};
        CHECK_OK(chunk_doc(&d, &o, &cl));
        for (size_t i = 0; i < cl.n; i++) {
            CHECK(cl.c[i].len > 0 && strlen(cl.c[i].text) == cl.c[i].len);
            /* the "- " / "> " prefix may add a token beyond the window */
            CHECKF((size_t)cl.c[i].ntokens <= o.max_tokens, "%d > %zu", cl.c[i].ntokens, o.max_tokens);
            CHECK(chunk_count_tokens(cl.c[i].text, cl.c[i].len) <= o.max_tokens + 2);
        }
        chunk_list_free(&cl);
        ingest_doc_free(&d);
    }
#undef NEXT
}

int main(void)
{
    RUN(test_random_docs);
    RUN(test_token_estimate);
    RUN(test_options);
    RUN(test_windows_and_overlap);
    RUN(test_headings_and_blocks);
    RUN(test_giant_word_and_code);
    RUN(test_pages);
    RUN(test_stable_keys);
    RUN(test_alloc_failures);
    return t_done();
}
