/* buf.c — growable byte buffer with a hard cap on its length. */
#include "base.h"
#include <stdio.h>
#include <string.h>

void cairn_buf_init(cairn_buf *b, size_t limit)
{
    b->data = NULL;
    b->len = b->cap = 0;
    b->limit = limit ? limit : SIZE_MAX / 2;
}

void cairn_buf_free(cairn_buf *b)
{
    cairn_free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void cairn_buf_reset(cairn_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = 0;
}

cairn_status cairn_buf_reserve(cairn_buf *b, size_t extra)
{
    size_t need;
    if (!cairn_add_ok(b->len, extra, &need) || need > b->limit)
        return cairn_fail(CAIRN_ERR_TOO_LARGE, "buffer limit of %zu bytes exceeded", b->limit);
    if (need + 1 <= b->cap)
        return CAIRN_OK;
    size_t ncap = b->cap ? b->cap : 64;
    while (ncap < need + 1)
        ncap = ncap > SIZE_MAX / 4 ? need + 1 : ncap * 2;
    char *p = cairn_realloc(b->data, ncap);
    if (!p)
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory growing a buffer to %zu bytes", ncap);
    b->data = p;
    b->cap = ncap;
    return CAIRN_OK;
}

cairn_status cairn_buf_append(cairn_buf *b, const void *p, size_t n)
{
    CAIRN_TRY(cairn_buf_reserve(b, n));
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
    return CAIRN_OK;
}

cairn_status cairn_buf_puts(cairn_buf *b, const char *s) { return cairn_buf_append(b, s, strlen(s)); }
cairn_status cairn_buf_putc(cairn_buf *b, char c) { return cairn_buf_append(b, &c, 1); }

cairn_status cairn_buf_printf(cairn_buf *b, const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        va_end(ap2);
        return cairn_fail(CAIRN_ERR_INVALID, "bad format string");
    }
    cairn_status st = cairn_buf_reserve(b, (size_t)n);
    if (st == CAIRN_OK) {
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap2);
        b->len += (size_t)n;
    }
    va_end(ap2);
    return st;
}

char *cairn_buf_take(cairn_buf *b)
{
    char *d = b->data;
    if (!d)
        d = cairn_strdup("");
    b->data = NULL;
    b->len = b->cap = 0;
    return d;
}
