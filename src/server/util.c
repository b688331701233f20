/* util.c — UTF-8, constant-time compare, base64; see util.h. */
#include "server/util.h"

#include <stdio.h>
#include <string.h>

/* Length of the well-formed sequence at s[0..n), 0 if ill-formed, -1 if
 * it is a valid start that n bytes do not complete. */
static int utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    int len;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c == 0xE0) len = 3, lo = 0xA0;
    else if (c == 0xED) len = 3, hi = 0x9F;          /* no surrogates */
    else if (c >= 0xE1 && c <= 0xEF) len = 3;
    else if (c == 0xF0) len = 4, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3) len = 4;
    else if (c == 0xF4) len = 4, hi = 0x8F;          /* <= U+10FFFF */
    else return 0;
    for (int i = 1; i < len; i++) {
        if ((size_t)i >= n)
            return -1;
        unsigned b = s[i];
        if (b < (i == 1 ? lo : 0x80) || b > (i == 1 ? hi : 0xBF))
            return 0;
    }
    return len;
}

bool srv_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        int l = utf8_seq(p + i, n - i);
        if (l <= 0)
            return false;
        i += (size_t)l;
    }
    return true;
}

size_t srv_utf8_ready(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        int l = utf8_seq(p + i, n - i);
        if (l < 0)
            return i;          /* an incomplete character at the end: hold it */
        i += l == 0 ? 1 : (size_t)l;
    }
    return n;
}

cairn_status srv_utf8_append(cairn_buf *b, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, run = 0;
    while (i < n) {
        int l = utf8_seq(p + i, n - i);
        if (l > 0) {
            i += (size_t)l;
            continue;
        }
        CAIRN_TRY(cairn_buf_append(b, s + run, i - run));
        CAIRN_TRY(cairn_buf_append(b, "\xEF\xBF\xBD", 3));
        i++;
        run = i;
    }
    return cairn_buf_append(b, s + run, n - run);
}

bool srv_secret_equal(const char *want, size_t want_len, const char *got, size_t got_len)
{
    /* every byte of the secret is compared whatever got holds; a length
     * difference is folded in at the end */
    unsigned diff = (unsigned)(want_len != got_len);
    for (size_t i = 0; i < want_len; i++) {
        unsigned char g = got_len ? (unsigned char)got[i % got_len] : 0;
        diff |= (unsigned)(g ^ (unsigned char)want[i]);
    }
    return want_len > 0 && diff == 0;
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

cairn_status srv_base64_encode(const void *p, size_t n, cairn_buf *out)
{
    const unsigned char *s = p;
    CAIRN_TRY(cairn_buf_reserve(out, (n + 2) / 3 * 4 + 1));
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)s[i] << 16 | (i + 1 < n ? (unsigned)s[i + 1] << 8 : 0) | (i + 2 < n ? s[i + 2] : 0);
        char q[4] = {B64[v >> 18 & 63], B64[v >> 12 & 63], i + 1 < n ? B64[v >> 6 & 63] : '=', i + 2 < n ? B64[v & 63] : '='};
        CAIRN_TRY(cairn_buf_append(out, q, 4));
    }
    return CAIRN_OK;
}

static int b64_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

cairn_status srv_base64_decode(const char *s, size_t n, size_t cap, char **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    while (n > 0 && s[n - 1] == '=')
        n--;
    if (n % 4 == 1)
        return cairn_fail(CAIRN_ERR_INVALID, "base64: bad length");
    size_t len = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
    if (len > cap)
        return cairn_fail(CAIRN_ERR_TOO_LARGE, "base64: decoded size over %zu bytes", cap);
    char *d = cairn_malloc(len + 1);
    if (!d)
        return cairn_fail(CAIRN_ERR_NOMEM, "base64: out of memory");
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_val((unsigned char)s[i]);
        if (v < 0) {
            cairn_free(d);
            return cairn_fail(CAIRN_ERR_INVALID, "base64: bad character at %zu", i);
        }
        acc = acc << 6 | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            d[o++] = (char)(acc >> bits & 0xFF);
        }
    }
    d[o] = '\0';
    *out = d;
    *out_len = o;
    return CAIRN_OK;
}

cJSON *srv_parse_body(const char *d, size_t n, const char **code, char *msg, size_t cap)
{
    *code = "invalid_json";
    if (!n) {
        snprintf(msg, cap, "the request needs a JSON body");
        return NULL;
    }
    if (!srv_utf8_valid(d, n)) {
        *code = "invalid_encoding";
        snprintf(msg, cap, "the request body is not valid UTF-8");
        return NULL;
    }
    for (size_t i = 0; i + 1 < n; i++)
        if (d[i] == '\\') {
            if (d[i + 1] == 'u' && i + 5 < n && !memcmp(d + i + 2, "0000", 4)) {
                *code = "invalid_value";
                snprintf(msg, cap, "NUL characters (\\u0000) are not accepted");
                return NULL;
            }
            i++;
        }
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(d, n, &end, false);
    if (!j) {
        size_t at = end && end >= d ? (size_t)(end - d) : 0;
        snprintf(msg, cap, "the body is not valid JSON (near byte %zu)", at);
        return NULL;
    }
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        snprintf(msg, cap, "the body must be a JSON object");
        return NULL;
    }
    return j;
}

bool srv_upload_name_ok(const char *n, size_t len)
{
    if (len == 0 || len > 200 || n[0] == '.' || !srv_utf8_valid(n, len) || strlen(n) != len)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)n[i];
        if (c < 0x20 || c == 0x7f || c == '/' || c == '\\')
            return false;
    }
    return true;
}
