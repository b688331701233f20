/*
 * rag_cite.c — the streaming citation checker (see rag.h).
 *
 * State: `hold` keeps text that is not final yet — a run of whitespace (it
 * goes if the marker after it is dropped) and an open "[..." that is still
 * digits, commas and spaces. Everything else is passed through as it comes,
 * so streaming is delayed only across a marker. Cost: O(1) per byte.
 */
#include "rag/rag.h"

#include <stdio.h>
#include <string.h>

#define MAX_MARKER_DIGITS 4

void rag_cite_init(rag_cite *c, rag_cite_valid_fn valid, void *valid_ctx, rag_text_fn out, void *out_ud)
{
    memset(c, 0, sizeof *c);
    c->valid = valid;
    c->valid_ctx = valid_ctx;
    c->out = out;
    c->out_ud = out_ud;
}

void rag_cite_free(rag_cite *c)
{
    cairn_free(c->cited);
    c->cited = NULL;
    c->n_cited = c->cap_cited = 0;
}

bool rag_cite_valid_context(void *ctx, int marker) { return rag_context_find(ctx, marker) != NULL; }

static void emit(rag_cite *c, const char *s, size_t n)
{
    if (n && c->out && !c->stopped && !c->out(c->out_ud, s, n))
        c->stopped = true;
}

static void note_cited(rag_cite *c, int m)
{
    c->n_markers++;
    for (size_t i = 0; i < c->n_cited; i++)
        if (c->cited[i] == m)
            return;
    if (c->n_cited == c->cap_cited) {
        size_t cap = c->cap_cited ? 2 * c->cap_cited : 8;
        int *p = cairn_reallocarray(c->cited, cap, sizeof *p);
        if (!p) {
            if (c->err == CAIRN_OK)
                c->err = cairn_fail(CAIRN_ERR_NOMEM, "citations: out of memory");
            return;
        }
        c->cited = p;
        c->cap_cited = cap;
    }
    c->cited[c->n_cited++] = m;
}

static bool is_ws(char ch) { return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r'; }

/* Offset of the '[' in hold, or n_hold when only whitespace is held. */
static size_t bracket_at(const rag_cite *c)
{
    size_t i = 0;
    while (i < c->n_hold && c->hold[i] != '[')
        i++;
    return i;
}

static void flush(rag_cite *c)
{
    emit(c, c->hold, c->n_hold);
    c->n_hold = 0;
}

/* hold = WS "[" body "]": check the numbers and emit what survives. */
static void close_marker(rag_cite *c)
{
    size_t b = bracket_at(c);
    const char *body = c->hold + b + 1;
    size_t n = c->n_hold - b - 2;   /* without [ and ] */
    int nums[RAG_CITE_HOLD];
    size_t nn = 0;
    for (size_t i = 0; i < n;) {
        if (body[i] < '0' || body[i] > '9') {
            i++;
            continue;
        }
        int v = 0;
        while (i < n && body[i] >= '0' && body[i] <= '9')
            v = v * 10 + (body[i++] - '0');
        nums[nn++] = v;
    }
    if (nn == 0) {          /* "[]", "[ , ]": not a citation */
        flush(c);
        return;
    }
    int keep[RAG_CITE_HOLD];
    size_t nk = 0;
    for (size_t i = 0; i < nn; i++) {
        if (c->valid && c->valid(c->valid_ctx, nums[i])) {
            keep[nk++] = nums[i];
            note_cited(c, nums[i]);
        } else {
            c->dropped++;
        }
    }
    if (nk == nn) {
        flush(c);
    } else if (nk > 0) {
        char buf[RAG_CITE_HOLD * 8];
        size_t o = 0;
        memcpy(buf, c->hold, b);
        o = b;
        buf[o++] = '[';
        for (size_t i = 0; i < nk; i++)
            o += (size_t)snprintf(buf + o, sizeof buf - o, "%s%d", i ? ", " : "", keep[i]);
        buf[o++] = ']';
        emit(c, buf, o);
        c->n_hold = 0;
    } else {
        c->n_hold = 0;      /* the marker and the whitespace before it go */
    }
}

static void feed_char(rag_cite *c, char ch)
{
    size_t b = bracket_at(c);
    if (b == c->n_hold) {   /* holding whitespace only */
        if (ch == '[') {
            c->hold[c->n_hold++] = ch;
        } else if (is_ws(ch)) {
            if (c->n_hold >= RAG_CITE_HOLD)
                flush(c);
            c->hold[c->n_hold++] = ch;
        } else {
            flush(c);
            emit(c, &ch, 1);
        }
        return;
    }
    /* inside "[...": digits, commas and spaces keep it a candidate */
    size_t digits = 0;
    for (size_t i = c->n_hold; i > b + 1 && c->hold[i - 1] >= '0' && c->hold[i - 1] <= '9'; i--)
        digits++;
    if (ch == ']') {
        c->hold[c->n_hold++] = ch;
        close_marker(c);
    } else if (((ch >= '0' && ch <= '9') && digits < MAX_MARKER_DIGITS) || ch == ',' || ch == ' ') {
        if (c->n_hold >= RAG_CITE_HOLD) {
            flush(c);
            emit(c, &ch, 1);
        } else {
            c->hold[c->n_hold++] = ch;
        }
    } else {
        flush(c);           /* not a marker: what was held is plain text */
        feed_char(c, ch);   /* ch may open a new candidate or whitespace run */
    }
}

bool rag_cite_feed(rag_cite *c, const char *text, size_t len)
{
    for (size_t i = 0; i < len && !c->stopped; i++)
        feed_char(c, text[i]);
    return !c->stopped;
}

void rag_cite_finish(rag_cite *c) { flush(c); }

static bool append_buf(void *ud, const char *text, size_t len)
{
    return cairn_buf_append(ud, text, len) == CAIRN_OK;
}

cairn_status rag_cite_check(const rag_context *ctx, const char *text, size_t len, char **clean, rag_cite *cite)
{
    cairn_buf b;
    cairn_buf_init(&b, 0);
    *clean = NULL;
    rag_cite_init(cite, rag_cite_valid_context, (void *)ctx, append_buf, &b);
    rag_cite_feed(cite, text, len);
    rag_cite_finish(cite);
    cairn_status st = cite->err;
    if (st == CAIRN_OK && cite->stopped)
        st = cairn_fail(CAIRN_ERR_NOMEM, "citations: out of memory");
    if (st == CAIRN_OK && !(*clean = b.len ? cairn_buf_take(&b) : cairn_strdup("")))
        st = cairn_fail(CAIRN_ERR_NOMEM, "citations: out of memory");
    cairn_buf_free(&b);
    if (st != CAIRN_OK)
        rag_cite_free(cite);
    return st;
}
