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

#endif
