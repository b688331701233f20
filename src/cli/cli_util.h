/* cli_util.h — small pieces every command's output and parsing shares. */
#ifndef CAIRN_CLI_UTIL_H
#define CAIRN_CLI_UTIL_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

/* Print j as one line of JSON on stdout and delete it. Returns 0, or 1
 * after "cairn: out of memory" on stderr. */
int cli_print_json(cJSON *j);

/* An unsigned decimal integer: the whole string, no sign (strtoull would
 * wrap "-1"), no overflow. */
bool cli_parse_u64(const char *s, uint64_t *out);

/* Length of the valid UTF-8 sequence at s[0..n) (1..4), or 0 when s does
 * not start one (stray continuation, overlong form, surrogate, > U+10FFFF,
 * truncated). */
size_t cli_utf8_seq(const unsigned char *s, size_t n);
/* Is s (NUL-terminated) valid UTF-8? */
bool cli_utf8_valid(const char *s);

/* Print j as one line of JSON like cli_print_json, but pretty when
 * `pretty`. Both guarantee valid UTF-8: a byte that is not part of a valid
 * sequence (file names are bytes) becomes U+FFFD; it can only occur inside
 * a string, so the JSON stays valid. */
int cli_print_json_opt(cJSON *j, bool pretty);

/* A name (a path from disk: any bytes) made safe for one line of a log:
 * control characters as \n, \t, \xNN and bytes that are not valid UTF-8
 * as \xNN; truncated to fit `n`. Returns buf. */
const char *cli_safe_name(const char *s, char *buf, size_t n);

#endif
