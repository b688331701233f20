/*
 * test_server_util.c — the server's wire helpers (src/server/util.c):
 * UTF-8 validity (overlongs, surrogates, > U+10FFFF, truncation), the
 * streaming "ready" cut, U+FFFD repair, constant-time key compare, base64,
 * request-body checks and upload names; each allocation failing in turn.
 */
#include "server/util.h"
#include "t.h"

static void test_utf8(void)
{
    static const struct { const char *s; bool ok; } cases[] = {
        {"", true}, {"plain", true}, {"caf\xc3\xa9", true}, {"\xe2\x82\xac", true}, {"\xf0\x9f\x98\x80", true},
        {"\xc3", false}, {"\xc0\xaf", false}, {"\xe0\x80\xaf", false}, {"\xed\xa0\x80", false},
        {"\xf4\x90\x80\x80", false}, {"\xff", false}, {"\x80", false}, {"a\xe2\x82", false},
    };
    for (size_t i = 0; i < CAIRN_ARRAY_LEN(cases); i++)
        CHECKF(srv_utf8_valid(cases[i].s, strlen(cases[i].s)) == cases[i].ok, "case %zu", i);
    /* ready: an incomplete character at the end is held, ill-formed bytes are not */
    CHECK_EQ_INT(srv_utf8_ready("ab\xe2\x82", 4), 2);
    CHECK_EQ_INT(srv_utf8_ready("ab\xf0\x9f\x98", 5), 2);
    CHECK_EQ_INT(srv_utf8_ready("ab\xe2\x82\xac", 5), 5);
    CHECK_EQ_INT(srv_utf8_ready("ab\xff", 3), 3);
    cairn_buf b;
    cairn_buf_init(&b, 0);
    CHECK_OK(srv_utf8_append(&b, "a\xff" "b\xc3", 4));
    CHECK(b.len == 8 && !memcmp(b.data, "a\xef\xbf\xbd" "b\xef\xbf\xbd", 8));
    CHECK(srv_utf8_valid(b.data, b.len));
    cairn_buf_reset(&b);
    CHECK_OK(srv_utf8_append(&b, "caf\xc3\xa9", 5));
    CHECK(b.len == 5 && !memcmp(b.data, "caf\xc3\xa9", 5));
    cairn_buf_free(&b);
}

static void test_secret(void)
{
    CHECK(srv_secret_equal("k3y", 3, "k3y", 3));
    CHECK(!srv_secret_equal("k3y", 3, "k3", 2));
    CHECK(!srv_secret_equal("k3y", 3, "k3yy", 4));
    CHECK(!srv_secret_equal("k3y", 3, "k3z", 3));
    CHECK(!srv_secret_equal("k3y", 3, "", 0));
    CHECK(!srv_secret_equal("", 0, "", 0));         /* an empty key never matches */
    CHECK(!srv_secret_equal("abab", 4, "ab", 2));   /* the repeated shorter input is not a match */
}

static void test_base64(void)
{
    const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    const char *want[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (size_t i = 0; i < CAIRN_ARRAY_LEN(in); i++) {
        cairn_buf b;
        cairn_buf_init(&b, 0);
        CHECK_OK(srv_base64_encode(in[i], strlen(in[i]), &b));
        CHECK(b.len == strlen(want[i]) && (!b.len || !memcmp(b.data, want[i], b.len)));
        char *d = NULL;
        size_t n = 0;
        CHECK_OK(srv_base64_decode(want[i], strlen(want[i]), 64, &d, &n));
        CHECK(d && n == strlen(in[i]) && !memcmp(d, in[i], n));
        cairn_free(d);
        cairn_buf_free(&b);
    }
    char *d = NULL;
    size_t n = 0;
    CHECK(srv_base64_decode("Zm9v!", 5, 64, &d, &n) == CAIRN_ERR_INVALID && !d);
    CHECK(srv_base64_decode("Z", 1, 64, &d, &n) == CAIRN_ERR_INVALID && !d);
    CHECK(srv_base64_decode("Zm9vYmFy", 8, 4, &d, &n) == CAIRN_ERR_TOO_LARGE && !d);
}

static void test_body(void)
{
    const char *code;
    char msg[256];
    static const struct { const char *body; const char *code; } bad[] = {
        {"", "invalid_json"}, {"{", "invalid_json"}, {"[1]", "invalid_json"}, {"\"s\"", "invalid_json"},
        {"{\"a\":\"\xff\"}", "invalid_encoding"}, {"{\"a\":\"x\\u0000y\"}", "invalid_value"},
    };
    for (size_t i = 0; i < CAIRN_ARRAY_LEN(bad); i++) {
        cJSON *j = srv_parse_body(bad[i].body, strlen(bad[i].body), &code, msg, sizeof msg);
        CHECKF(!j && !strcmp(code, bad[i].code), "body %zu: %s", i, j ? "parsed" : code);
        cJSON_Delete(j);
    }
    const char *ok = "{\"a\":\"\\\\u0000 is text\",\"b\":[1,2]}";   /* an escaped backslash, then text */
    cJSON *j = srv_parse_body(ok, strlen(ok), &code, msg, sizeof msg);
    CHECK(j && cJSON_IsArray(cJSON_GetObjectItem(j, "b")));
    cJSON_Delete(j);
}

static void test_names(void)
{
    const char *good[] = {"notes.md", "a b.txt", "r\xc3\xa9sum\xc3\xa9.pdf", "x..y"};
    const char *bad[] = {"", ".", "..", ".hidden", "../x", "a/b", "a\\b", "/abs", "ctl\x01", "del\x7f", "\xff.md"};
    for (size_t i = 0; i < CAIRN_ARRAY_LEN(good); i++)
        CHECKF(srv_upload_name_ok(good[i], strlen(good[i])), "%s", good[i]);
    for (size_t i = 0; i < CAIRN_ARRAY_LEN(bad); i++)
        CHECKF(!srv_upload_name_ok(bad[i], strlen(bad[i])), "%s", bad[i]);
    char nul[] = "a\0b";
    CHECK(!srv_upload_name_ok(nul, 3));
    char longname[202];
    memset(longname, 'x', 201);
    longname[201] = '\0';
    CHECK(!srv_upload_name_ok(longname, 201));
}

static void test_alloc_failures(void)
{
    for (long n = 0; n < 8; n++) {
        cairn_buf b;
        cairn_buf_init(&b, 0);
        cairn_alloc_fail_after(n, true);
        cairn_status a = srv_utf8_append(&b, "x\xffy\xc3", 4);
        cairn_status e = srv_base64_encode("foobar", 6, &b);
        char *d = NULL;
        size_t dl = 0;
        cairn_status c = srv_base64_decode("Zm9vYmFy", 8, 64, &d, &dl);
        cairn_alloc_fail_after(-1, false);
        CHECK(a == CAIRN_OK || a == CAIRN_ERR_NOMEM);
        CHECK(e == CAIRN_OK || e == CAIRN_ERR_NOMEM);
        CHECK((c == CAIRN_OK && d && dl == 6) || (c == CAIRN_ERR_NOMEM && !d));
        cairn_free(d);
        cairn_buf_free(&b);
    }
}

int main(void)
{
    RUN(test_utf8);
    RUN(test_secret);
    RUN(test_base64);
    RUN(test_body);
    RUN(test_names);
    RUN(test_alloc_failures);
    return t_done();
}
