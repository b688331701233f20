/*
 * util.h — small helpers of the HTTP server: UTF-8 checks for what crosses
 * the wire, a constant-time comparison for API keys, base64.
 */
#ifndef CAIRN_SERVER_UTIL_H
#define CAIRN_SERVER_UTIL_H

#include "base/base.h"

#include <cjson/cJSON.h>

/* True when s[0..n) is well-formed UTF-8 (no overlongs, surrogates or
 * code points above U+10FFFF). */
bool srv_utf8_valid(const char *s, size_t n);
/* The longest prefix of s[0..n) that does not end inside a multi-byte
 * character which later bytes could still complete (streamed text is cut
 * only between characters). */
size_t srv_utf8_ready(const char *s, size_t n);
/* Append s[0..n) to b with each ill-formed byte replaced by U+FFFD. */
cairn_status srv_utf8_append(cairn_buf *b, const char *s, size_t n);

/* a == b in time that depends only on the length of `want` (the secret),
 * not on where the first difference is. */
bool srv_secret_equal(const char *want, size_t want_len, const char *got, size_t got_len);

/* Standard base64 (RFC 4648, padded). */
cairn_status srv_base64_encode(const void *p, size_t n, cairn_buf *out);
/* Decodes into a new buffer (cairn_free); CAIRN_ERR_INVALID on bad input. */
cairn_status srv_base64_decode(const char *s, size_t n, size_t cap, char **out, size_t *out_len);

/* The checks every JSON request body passes before its fields are read:
 * non-empty, valid UTF-8, no escaped NUL (cJSON strings are NUL-terminated:
 * "\u0000" would cut a value short), parses, is an object. On failure NULL,
 * *code names the OpenAI error code and msg the reason. */
cJSON *srv_parse_body(const char *d, size_t n, const char **code, char *msg, size_t cap);

/* An upload name: one plain path component — 1..200 bytes of valid UTF-8,
 * no '/', '\\', control bytes or leading '.' (so no "..", no hidden files). */
bool srv_upload_name_ok(const char *name, size_t len);

#endif
