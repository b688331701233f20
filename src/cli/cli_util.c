/* cli_util.c — see cli_util.h. */
#include "cli/cli_util.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t cli_utf8_seq(const unsigned char *s, size_t n)
{
    if (!n)
        return 0;
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    size_t len;
    uint32_t cp, min;
    if ((c & 0xe0) == 0xc0)
        len = 2, cp = c & 0x1f, min = 0x80;
    else if ((c & 0xf0) == 0xe0)
        len = 3, cp = c & 0x0f, min = 0x800;
    else if ((c & 0xf8) == 0xf0)
        len = 4, cp = c & 0x07, min = 0x10000;
    else
        return 0;
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

bool cli_utf8_valid(const char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        size_t k = cli_utf8_seq((const unsigned char *)s + i, n - i);
        if (!k)
            return false;
        i += k;
    }
    return true;
}

int cli_print_json_opt(cJSON *j, bool pretty)
{
    char *s = j ? (pretty ? cJSON_Print(j) : cJSON_PrintUnformatted(j)) : NULL;
    cJSON_Delete(j);
    if (!s) {
        fprintf(stderr, "cairn: out of memory\n");
        return 1;
    }
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        size_t k = cli_utf8_seq((const unsigned char *)s + i, n - i);
        if (k) {
            fwrite(s + i, 1, k, stdout);
            i += k;
        } else {
            fputs("\xef\xbf\xbd", stdout);   /* U+FFFD */
            i++;
        }
    }
    putchar('\n');
    cJSON_free(s);
    return 0;
}

int cli_print_json(cJSON *j) { return cli_print_json_opt(j, false); }

const char *cli_safe_name(const char *s, char *buf, size_t n)
{
    size_t len = strlen(s), o = 0;
    if (!n)
        return buf;
    for (size_t i = 0; i < len && o + 5 < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t k = cli_utf8_seq((const unsigned char *)s + i, len - i);
        if (c == '\n' || c == '\t' || c == '\r') {
            buf[o++] = '\\';
            buf[o++] = c == '\n' ? 'n' : c == '\t' ? 't' : 'r';
            i++;
        } else if (!k || c < 0x20 || c == 0x7f) {
            o += (size_t)snprintf(buf + o, n - o, "\\x%02x", c);
            i++;
        } else {
            if (o + k >= n)
                break;
            memcpy(buf + o, s + i, k);
            o += k;
            i += k;
        }
    }
    buf[o] = 0;
    return buf;
}

bool cli_parse_u64(const char *s, uint64_t *out)
{
    if (!s || *s < '0' || *s > '9')
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}
