/* test_analyzer.c — the text analyzer: segmentation, normalization, stop
 * words, stemming, offsets, configuration, allocation failures. */
#include "t.h"
#include "text/analyzer.h"

typedef struct collect {
    char out[4096];
    size_t len;
    uint32_t pos[64];
    size_t start[64], end[64];
    int n;
} collect;

static cairn_status on_term(void *ctx, const char *t, size_t len, uint32_t pos, size_t s, size_t e)
{
    collect *c = ctx;
    if (c->len + len + 2 >= sizeof c->out)
        return CAIRN_ERR_TOO_LARGE;
    if (c->len)
        c->out[c->len++] = ' ';
    memcpy(c->out + c->len, t, len);
    c->len += len;
    c->out[c->len] = 0;
    if (c->n < 64) {
        c->pos[c->n] = pos;
        c->start[c->n] = s;
        c->end[c->n] = e;
    }
    c->n++;
    return CAIRN_OK;
}

static const char *analyze(const char *cfgs, const char *text, collect *c)
{
    text_config cfg;
    text_config_default(&cfg);
    if (cfgs && text_config_parse(&cfg, cfgs) != CAIRN_OK)
        return "(bad config)";
    text_analyzer *a;
    if (text_analyzer_new(&cfg, &a) != CAIRN_OK)
        return "(no analyzer)";
    memset(c, 0, sizeof *c);
    cairn_status st = text_analyze(a, text, strlen(text), on_term, c);
    text_analyzer_free(a);
    return st == CAIRN_OK ? c->out : "(failed)";
}

static void test_basic_english(void)
{
    collect c;
    CHECK_EQ_STR(analyze("stop=lucene", "The Quick Brown Foxes jumped over the lazy dogs.", &c),
                 "quick brown fox jump over lazi dog");
    /* positions count stop words; offsets point at the original words */
    CHECK_EQ_INT(c.pos[0], 1);
    CHECK_EQ_INT(c.start[0], 4);
    CHECK_EQ_INT(c.end[0], 9);
    CHECK_EQ_STR(analyze(NULL, "running runs ran", &c), "run run ran");
}

static void test_stop_lists(void)
{
    collect c;
    CHECK_EQ_STR(analyze("stop=none stemmer=none", "the cat is on a mat", &c), "the cat is on a mat");
    CHECK_EQ_STR(analyze("stop=lucene stemmer=none", "the cat is on a mat", &c), "cat mat");
    CHECK_EQ_STR(analyze("stop=english stemmer=none", "what about those cats", &c), "cats");
    CHECK_EQ_STR(analyze("stop=lucene stemmer=none", "what about those cats", &c), "what about those cats");
}

static void test_unicode(void)
{
    collect c;
    /* NFKC: ligature and full-width forms; case folding incl. sharp s */
    CHECK_EQ_STR(analyze("stemmer=none", "\xEF\xAC\x81nance \xEF\xBC\xA1\xEF\xBC\xA2\xEF\xBC\xA3", &c), "finance abc");
    CHECK_EQ_STR(analyze("stemmer=none", "STRASSE Stra\xC3\x9F" "e", &c), "strasse strasse");
    /* accents kept by default, stripped on request */
    CHECK_EQ_STR(analyze("stemmer=none", "Caf\xC3\xA9", &c), "caf\xC3\xA9");
    CHECK_EQ_STR(analyze("stemmer=none accents=strip", "Caf\xC3\xA9 CAFE\xCC\x81", &c), "cafe cafe");
    /* composed and decomposed forms meet */
    CHECK_EQ_STR(analyze("stemmer=none", "caf\xC3\xA9 cafe\xCC\x81", &c), "caf\xC3\xA9 caf\xC3\xA9");
    /* CJK ideographs are words of their own */
    CHECK_EQ_STR(analyze("stemmer=none", "\xE4\xB8\xAD\xE6\x96\x87 text", &c), "\xE4\xB8\xAD \xE6\x96\x87 text");
    /* Greek and Cyrillic letters fold */
    CHECK_EQ_STR(analyze("stemmer=none", "\xCE\xA3\xCE\x9F\xCE\xA6\xCE\x99\xCE\x91 \xD0\x9C\xD0\x98\xD0\xA0", &c),
                 "\xCF\x83\xCE\xBF\xCF\x86\xCE\xB9\xCE\xB1 \xD0\xBC\xD0\xB8\xD1\x80");
}

static void test_joiners(void)
{
    collect c;
    CHECK_EQ_STR(analyze("stemmer=none stop=lucene", "John's book, don't O'Neil", &c), "john book dont oneil");
    CHECK_EQ_STR(analyze("stemmer=none stop=english", "John's book, don't O'Neil", &c), "john book oneil");
    CHECK_EQ_STR(analyze("stemmer=none", "pi is 3.14 and 1,000 items; end. 5.", &c), "pi 3.14 1000 items end 5");
    CHECK_EQ_STR(analyze("stemmer=none", "state-of-the-art e-mail foo_bar", &c), "state art e mail foo bar");
    CHECK_EQ_STR(analyze("stemmer=none", "  ...  ", &c), "");
}

static void test_invalid_utf8_and_long_words(void)
{
    collect c;
    CHECK_EQ_STR(analyze("stemmer=none", "ab\xFF\xFE" "cd \xC3 ef", &c), "ab cd ef");
    char longw[300];
    memset(longw, 'x', sizeof longw - 1);
    longw[sizeof longw - 1] = 0;
    char text[400];
    snprintf(text, sizeof text, "short %s word", longw);
    CHECK_EQ_STR(analyze("stemmer=none", text, &c), "short word");
}

static void test_config(void)
{
    text_config c;
    text_config_default(&c);
    char s[128];
    text_config_str(&c, s, sizeof s);
    CHECK_EQ_STR(s, "stemmer=english stop=english accents=keep");
    CHECK(text_config_set(&c, "stemmer", "klingon") == CAIRN_ERR_INVALID);
    CHECK(text_config_set(&c, "stop", "some") == CAIRN_ERR_INVALID);
    CHECK(text_config_set(&c, "colour", "red") == CAIRN_ERR_INVALID);
    CHECK_OK(text_config_parse(&c, "stemmer=porter stop=english accents=strip"));
    text_config_str(&c, s, sizeof s);
    CHECK_EQ_STR(s, "stemmer=porter stop=english accents=strip");
    CHECK(text_config_parse(&c, "stemmer") == CAIRN_ERR_INVALID);
}

static void test_memo_consistency(void)
{
    /* The stem memo must give the same answer as a fresh analyzer, also
     * after it has been cleared by many distinct words. */
    text_config cfg;
    text_config_default(&cfg);
    text_analyzer *a;
    CHECK_OK(text_analyzer_new(&cfg, &a));
    char word[32];
    collect c;
    for (int i = 0; i < 40000; i++) {
        int n = snprintf(word, sizeof word, "walkings%c%c%c", 'a' + i % 26, 'a' + (i / 26) % 26, 'a' + (i / 676) % 26);
        memset(&c, 0, sizeof c);
        CHECK_OK(text_analyze(a, word, (size_t)n, on_term, &c));
    }
    memset(&c, 0, sizeof c);
    CHECK_OK(text_analyze(a, "connections connected", 21, on_term, &c));
    CHECK_EQ_STR(c.out, "connect connect");
    text_analyzer_free(a);
}

static void test_alloc_failures(void)
{
    text_config cfg;
    text_config_default(&cfg);
    for (long n = 0; n < 4; n++) {
        text_analyzer *a = NULL;
        cairn_alloc_fail_after(n, false);
        cairn_status st = text_analyzer_new(&cfg, &a);
        cairn_alloc_fail_after(-1, false);
        if (st == CAIRN_OK)
            text_analyzer_free(a);
        else
            CHECK(st == CAIRN_ERR_NOMEM && a == NULL);
    }
}

int main(void)
{
    RUN(test_basic_english);
    RUN(test_stop_lists);
    RUN(test_unicode);
    RUN(test_joiners);
    RUN(test_invalid_utf8_and_long_words);
    RUN(test_config);
    RUN(test_memo_consistency);
    RUN(test_alloc_failures);
    return t_done();
}
