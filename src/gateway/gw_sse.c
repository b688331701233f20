/* gw_sse.c — incremental text/event-stream parser with a cap per event
 * (format in gw_int.h). Cost: each byte is looked at once, lines are copied
 * once into the line buffer and data once into the event buffer. */
#include "gateway/gw_int.h"
#include <string.h>

void gw_sse_init(gw_sse *p, size_t max_event, gw_sse_event_fn fn, void *ctx)
{
    memset(p, 0, sizeof *p);
    p->max_event = max_event ? max_event : GW_MAX_EVENT_BYTES;
    cairn_buf_init(&p->line, p->max_event);
    cairn_buf_init(&p->data, p->max_event);
    p->fn = fn;
    p->ctx = ctx;
}

void gw_sse_free(gw_sse *p)
{
    cairn_buf_free(&p->line);
    cairn_buf_free(&p->data);
}

static cairn_status end_line(gw_sse *p)
{
    const char *l = p->line.len ? p->line.data : "";
    size_t n = p->line.len;
    cairn_status st = CAIRN_OK;
    if (n == 0) {                       /* blank line: dispatch */
        if (p->have_data) {
            p->events++;
            st = p->fn(p->ctx, p->data.len ? p->data.data : "", p->data.len);
        }
        cairn_buf_reset(&p->data);
        p->have_data = false;
    } else if (l[0] != ':') {
        const char *colon = memchr(l, ':', n);
        size_t flen = colon ? (size_t)(colon - l) : n;
        if (flen == 4 && !memcmp(l, "data", 4)) {
            const char *v = colon ? colon + 1 : l + n;
            if (v < l + n && *v == ' ')
                v++;
            size_t vlen = (size_t)(l + n - v);
            if (p->have_data)
                st = cairn_buf_putc(&p->data, '\n');
            if (st == CAIRN_OK)
                st = cairn_buf_append(&p->data, v, vlen);
            if (st == CAIRN_ERR_TOO_LARGE)
                st = cairn_fail(st, "upstream event longer than %zu bytes", p->max_event);
            p->have_data = true;
        }
    }
    cairn_buf_reset(&p->line);
    return st;
}

cairn_status gw_sse_feed(gw_sse *p, const char *buf, size_t n)
{
    size_t i = 0;
    while (i < n) {
        char c = buf[i];
        if (c == '\n' && p->last_cr) {  /* the LF of a CRLF */
            p->last_cr = false;
            i++;
            continue;
        }
        p->last_cr = false;
        if (c == '\n' || c == '\r') {
            p->last_cr = c == '\r';
            CAIRN_TRY(end_line(p));
            i++;
            continue;
        }
        const char *e1 = memchr(buf + i, '\n', n - i);
        const char *e2 = memchr(buf + i, '\r', e1 ? (size_t)(e1 - (buf + i)) : n - i);
        const char *e = e2 ? e2 : e1 ? e1 : buf + n;
        cairn_status st = cairn_buf_append(&p->line, buf + i, (size_t)(e - (buf + i)));
        if (st == CAIRN_ERR_TOO_LARGE)
            return cairn_fail(st, "upstream event line longer than %zu bytes", p->max_event);
        CAIRN_TRY(st);
        i = (size_t)(e - buf);
    }
    return CAIRN_OK;
}
