/* markdown.c — Markdown parser: block structure and front matter.
 *
 * A line-oriented reader of the CommonMark block constructs that matter for
 * retrieval: ATX and setext headings, paragraphs, bullet and ordered list
 * items (nesting level from indentation), fenced and indented code,
 * block quotes, pipe tables (one block per row, delimiter row dropped),
 * thematic breaks, HTML comments and link reference definitions (dropped).
 * Inline markup is simplified: [text](url) and ![alt](src) keep their text,
 * inline code loses its backticks, strong-emphasis markers (double asterisks or underscores) are dropped.
 *
 * Front matter: a leading "---" ... "---" (or "...") block in the YAML
 * subset people write by hand: `key: scalar`, `key: [a, b]`, and `key:`
 * followed by "- item" lines. Scalars are typed by meta_set_parsed
 * (numbers, ISO dates, true/false); quoted scalars stay strings. `title`
 * becomes the document title; keys are kept as metadata.
 *
 * Title: front matter title, else the first level-1 heading, else the file
 * name.
 */
#define _GNU_SOURCE
#include "ingest/ingest.h"
#include <ctype.h>
#include <string.h>

#define MD_MAX_FM_ITEMS 1024

typedef struct line { const char *s; size_t n; } line;

static size_t indent_of(line l)
{
    size_t w = 0;
    for (size_t i = 0; i < l.n; i++) {
        if (l.s[i] == ' ')
            w++;
        else if (l.s[i] == '\t')
            w += 4 - (w % 4);
        else
            break;
    }
    return w;
}

static line lstrip(line l)
{
    while (l.n && (*l.s == ' ' || *l.s == '\t')) {
        l.s++;
        l.n--;
    }
    return l;
}

static line rstrip(line l)
{
    while (l.n && (l.s[l.n - 1] == ' ' || l.s[l.n - 1] == '\t' || l.s[l.n - 1] == '\r'))
        l.n--;
    return l;
}

static line strip(line l) { return rstrip(lstrip(l)); }

static bool is_blank(line l) { return strip(l).n == 0; }

/* ---- inline simplification ---- */
static cairn_status inline_text(cairn_buf *out, const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        char c = s[i];
        if ((c == '[' || (c == '!' && i + 1 < n && s[i + 1] == '[')) ) {
            size_t open = c == '!' ? i + 1 : i;
            const char *close = memchr(s + open, ']', n - open);
            if (close && (size_t)(close - s) + 1 < n && close[1] == '(') {
                const char *paren = memchr(close, ')', (size_t)(s + n - close));
                if (paren) {
                    CAIRN_TRY(inline_text(out, s + open + 1, (size_t)(close - (s + open + 1))));
                    i = (size_t)(paren - s) + 1;
                    continue;
                }
            }
        }
        if (c == '`') {
            i++;
            continue;
        }
        if ((c == '*' || c == '_') && i + 1 < n && s[i + 1] == c) {
            i += 2;
            continue;
        }
        CAIRN_TRY(cairn_buf_putc(out, c));
        i++;
    }
    return CAIRN_OK;
}

/* ---- parser state ---- */
typedef struct md {
    ingest_doc *d;
    cairn_buf para;         /* pending paragraph/list item/quote text */
    block_kind para_kind;
    int para_level;
    bool have_para;
    cairn_buf code;
    bool title_from_fm;
} md;

static cairn_status flush_para(md *m)
{
    if (!m->have_para)
        return CAIRN_OK;
    m->have_para = false;
    cairn_status st = CAIRN_OK;
    if (m->para.len)
        st = ingest_doc_add_block(m->d, m->para_kind, m->para_level, 0, m->para.data, m->para.len);
    cairn_buf_reset(&m->para);
    return st;
}

static cairn_status para_add(md *m, block_kind kind, int level, line text, bool new_block)
{
    if (m->have_para && (new_block || m->para_kind != kind))
        CAIRN_TRY(flush_para(m));
    if (!m->have_para) {
        m->have_para = true;
        m->para_kind = kind;
        m->para_level = level;
    } else {
        CAIRN_TRY(cairn_buf_putc(&m->para, '\n'));
    }
    line t = strip(text);
    return inline_text(&m->para, t.s, t.n);
}

static cairn_status add_heading(md *m, int level, line text)
{
    CAIRN_TRY(flush_para(m));
    cairn_buf b;
    cairn_buf_init(&b, 0);
    line t = strip(text);
    cairn_status st = inline_text(&b, t.s, t.n);
    if (st == CAIRN_OK && b.len) {
        st = ingest_doc_add_block(m->d, BLOCK_HEADING, level, 0, b.data, b.len);
        if (st == CAIRN_OK && level == 1 && !m->d->title) {
            m->d->title = cairn_strdup(b.data);
            if (!m->d->title)
                st = cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
        }
    }
    cairn_buf_free(&b);
    return st;
}

/* ATX heading: up to 3 spaces, 1-6 '#', then space/end. */
static int atx_level(line l, line *text)
{
    if (indent_of(l) > 3)
        return 0;
    line t = lstrip(l);
    int lv = 0;
    while ((size_t)lv < t.n && t.s[lv] == '#')
        lv++;
    if (lv < 1 || lv > 6 || ((size_t)lv < t.n && t.s[lv] != ' ' && t.s[lv] != '\t'))
        return 0;
    line r = {t.s + lv, t.n - (size_t)lv};
    r = rstrip(r);
    /* closing sequence of #s preceded by a space */
    size_t e = r.n;
    while (e && r.s[e - 1] == '#')
        e--;
    if (e < r.n && (e == 0 || r.s[e - 1] == ' ' || r.s[e - 1] == '\t'))
        r.n = e;
    *text = r;
    return lv;
}

/* A line of only c (with optional spaces), at least `min` of them. */
static bool run_of(line l, char c, size_t min)
{
    line t = strip(l);
    size_t k = 0;
    for (size_t i = 0; i < t.n; i++) {
        if (t.s[i] == c)
            k++;
        else if (t.s[i] != ' ')
            return false;
    }
    return k >= min;
}

static bool thematic_break(line l)
{
    return indent_of(l) <= 3 && (run_of(l, '-', 3) || run_of(l, '*', 3) || run_of(l, '_', 3));
}

/* Fence opener: ``` or ~~~ (3+). Returns fence length, sets *ch. */
static size_t fence_open(line l, char *ch)
{
    if (indent_of(l) > 3)
        return 0;
    line t = lstrip(l);
    if (t.n < 3 || (t.s[0] != '`' && t.s[0] != '~'))
        return 0;
    size_t k = 0;
    while (k < t.n && t.s[k] == t.s[0])
        k++;
    if (k < 3)
        return 0;
    if (t.s[0] == '`' && memchr(t.s + k, '`', t.n - k))
        return 0;
    *ch = t.s[0];
    return k;
}

static bool fence_close(line l, char ch, size_t len)
{
    if (indent_of(l) > 3)
        return false;
    line t = strip(l);
    if (t.n < len)
        return false;
    for (size_t i = 0; i < t.n; i++)
        if (t.s[i] != ch)
            return false;
    return true;
}

/* List marker: "- ", "* ", "+ ", "1. ", "1) ". Returns the content. */
static bool list_marker(line l, line *content, size_t *ind)
{
    *ind = indent_of(l);
    line t = lstrip(l);
    size_t k = 0;
    if (t.n >= 1 && (t.s[0] == '-' || t.s[0] == '*' || t.s[0] == '+')) {
        k = 1;
    } else {
        while (k < t.n && k < 9 && isdigit((unsigned char)t.s[k]))
            k++;
        if (k == 0 || k >= t.n || (t.s[k] != '.' && t.s[k] != ')'))
            return false;
        k++;
    }
    if (k < t.n && t.s[k] != ' ' && t.s[k] != '\t')
        return false;
    line c = {t.s + k, t.n - k};
    *content = lstrip(c);
    /* Task list checkbox */
    if (content->n >= 3 && content->s[0] == '[' && content->s[2] == ']' &&
        (content->s[1] == ' ' || content->s[1] == 'x' || content->s[1] == 'X')) {
        content->s += 3;
        content->n -= 3;
        *content = lstrip(*content);
    }
    return true;
}

static bool table_delim(line l)
{
    line t = strip(l);
    if (!t.n)
        return false;
    bool dash = false;
    for (size_t i = 0; i < t.n; i++) {
        char c = t.s[i];
        if (c == '-')
            dash = true;
        else if (c != '|' && c != ':' && c != ' ')
            return false;
    }
    return dash && memchr(t.s, '|', t.n);
}

static cairn_status add_table_row(md *m, line l)
{
    line t = strip(l);
    if (t.n && t.s[0] == '|') {
        t.s++;
        t.n--;
    }
    if (t.n && t.s[t.n - 1] == '|')
        t.n--;
    cairn_buf b;
    cairn_buf_init(&b, 0);
    cairn_status st = CAIRN_OK;
    size_t i = 0;
    bool first = true;
    while (st == CAIRN_OK && i <= t.n) {
        size_t j = i;
        while (j < t.n && !(t.s[j] == '|' && (j == 0 || t.s[j - 1] != '\\')))
            j++;
        line cell = strip((line){t.s + i, j - i});
        if (!first)
            st = cairn_buf_puts(&b, " | ");
        if (st == CAIRN_OK)
            st = inline_text(&b, cell.s, cell.n);
        first = false;
        i = j + 1;
    }
    if (st == CAIRN_OK && b.len)
        st = ingest_doc_add_block(m->d, BLOCK_TABLE_ROW, 0, 0, b.data, b.len);
    cairn_buf_free(&b);
    return st;
}

/* ---- front matter ---- */
static line unquote(line v, bool *quoted)
{
    *quoted = false;
    if (v.n >= 2 && ((v.s[0] == '"' && v.s[v.n - 1] == '"') || (v.s[0] == '\'' && v.s[v.n - 1] == '\''))) {
        *quoted = true;
        v.s++;
        v.n -= 2;
    }
    return v;
}

static cairn_status fm_scalar(meta_list *meta, const char *key, line v)
{
    bool q;
    /* strip a trailing comment " # ..." from unquoted values */
    if (v.n && v.s[0] != '"' && v.s[0] != '\'') {
        for (size_t i = 1; i < v.n; i++)
            if (v.s[i] == '#' && (v.s[i - 1] == ' ' || v.s[i - 1] == '\t')) {
                v.n = i;
                v = rstrip(v);
                break;
            }
    }
    line u = unquote(v, &q);
    char *s = cairn_strndup(u.s, u.n);
    if (!s)
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
    cairn_status st = q ? meta_set_string(meta, key, s) : meta_set_parsed(meta, key, s);
    cairn_free(s);
    return st;
}

typedef struct strvec { char **v; size_t n; } strvec;

static void strvec_free(strvec *sv)
{
    for (size_t i = 0; i < sv->n; i++)
        cairn_free(sv->v[i]);
    cairn_free(sv->v);
    sv->v = NULL;
    sv->n = 0;
}

static cairn_status strvec_push(strvec *sv, line item)
{
    if (sv->n >= MD_MAX_FM_ITEMS)
        return cairn_fail(CAIRN_ERR_TOO_LARGE, "front matter list longer than %d items", MD_MAX_FM_ITEMS);
    char **nv = cairn_reallocarray(sv->v, sv->n + 1, sizeof *nv);
    if (!nv)
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
    sv->v = nv;
    bool q;
    line u = unquote(strip(item), &q);
    sv->v[sv->n] = cairn_strndup(u.s, u.n);
    if (!sv->v[sv->n])
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
    sv->n++;
    return CAIRN_OK;
}

static cairn_status fm_set_list(meta_list *meta, const char *key, strvec *sv)
{
    cairn_status st = meta_set_list(meta, key, (const char *const *)sv->v, sv->n);
    strvec_free(sv);
    return st;
}

/* Parse front matter lines [s, e). Unparseable lines are ignored: front
 * matter is a convenience, not a reason to reject a document. */
static cairn_status front_matter(md *m, const char *s, const char *e)
{
    meta_list *meta = &m->d->meta;
    char key[128];
    bool in_list = false;
    strvec sv = {0};
    cairn_status st = CAIRN_OK;
    const char *p = s;
    while (st == CAIRN_OK && p < e) {
        const char *nl = memchr(p, '\n', (size_t)(e - p));
        line l = {p, nl ? (size_t)(nl - p) : (size_t)(e - p)};
        p = nl ? nl + 1 : e;
        l = rstrip(l);
        line t = lstrip(l);
        if (!t.n || t.s[0] == '#')
            continue;
        if (in_list && t.n >= 1 && t.s[0] == '-' && (t.n == 1 || t.s[1] == ' ')) {
            st = strvec_push(&sv, (line){t.s + 1, t.n - 1});
            continue;
        }
        if (in_list) {
            st = fm_set_list(meta, key, &sv);
            in_list = false;
            if (st != CAIRN_OK)
                break;
        }
        if (indent_of(l) > 0)
            continue;   /* nested mappings are not supported: skip */
        const char *colon = memchr(l.s, ':', l.n);
        if (!colon)
            continue;
        line k = strip((line){l.s, (size_t)(colon - l.s)});
        line v = strip((line){colon + 1, l.n - (size_t)(colon + 1 - l.s)});
        bool q;
        k = unquote(k, &q);
        if (!k.n || k.n >= sizeof key)
            continue;
        memcpy(key, k.s, k.n);
        key[k.n] = 0;
        if (!v.n) {
            in_list = true;
            continue;
        }
        if (v.s[0] == '[' && v.s[v.n - 1] == ']') {
            line inner = {v.s + 1, v.n - 2};
            size_t i = 0;
            while (st == CAIRN_OK && i < inner.n) {
                size_t j = i;
                char quote = 0;
                while (j < inner.n && (quote || inner.s[j] != ',')) {
                    if ((inner.s[j] == '"' || inner.s[j] == '\'') && (!quote || quote == inner.s[j]))
                        quote = quote ? 0 : inner.s[j];
                    j++;
                }
                line item = strip((line){inner.s + i, j - i});
                if (item.n)
                    st = strvec_push(&sv, item);
                i = j + 1;
            }
            if (st == CAIRN_OK)
                st = fm_set_list(meta, key, &sv);
            continue;
        }
        if (!strcmp(key, "title")) {
            line u = unquote(v, &q);
            cairn_free(m->d->title);
            m->d->title = cairn_strndup(u.s, u.n);
            if (!m->d->title)
                st = cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
            m->title_from_fm = true;
        }
        if (st == CAIRN_OK)
            st = fm_scalar(meta, key, v);
    }
    if (st == CAIRN_OK && in_list)
        st = fm_set_list(meta, key, &sv);
    strvec_free(&sv);
    return st;
}

/* If the text starts with front matter, parse it and return the offset of
 * the body; else 0. */
static cairn_status skip_front_matter(md *m, const char *data, size_t len, size_t *body)
{
    *body = 0;
    size_t off = 0;
    if (len >= 3 && !memcmp(data, "\xEF\xBB\xBF", 3))
        off = 3;   /* BOM */
    if (len - off < 4 || memcmp(data + off, "---", 3) != 0)
        return CAIRN_OK;
    const char *p = data + off + 3;
    const char *end = data + len;
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r'))
        p++;
    if (p >= end || *p != '\n')
        return CAIRN_OK;
    const char *start = ++p;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        line l = rstrip((line){p, nl ? (size_t)(nl - p) : (size_t)(end - p)});
        if ((l.n == 3 && (!memcmp(l.s, "---", 3) || !memcmp(l.s, "...", 3)))) {
            CAIRN_TRY(front_matter(m, start, p));
            *body = nl ? (size_t)(nl + 1 - data) : len;
            return CAIRN_OK;
        }
        if (!nl)
            break;
        p = nl + 1;
    }
    return CAIRN_OK;   /* unterminated: not front matter */
}

static cairn_status md_body(md *m, const char *data, size_t len)
{
    const char *p = data, *end = data + len;
    char fch = 0;
    size_t flen = 0;                 /* inside a fenced block when > 0 */
    size_t fence_indent = 0;
    bool in_indented = false, in_comment = false, in_table = false;
    size_t list_indent = 0;          /* content indent of the open list item */
    bool prev_blank = true;
    cairn_status st = CAIRN_OK;
    while (st == CAIRN_OK && p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        line l = {p, nl ? (size_t)(nl - p) : (size_t)(end - p)};
        p = nl ? nl + 1 : end;
        if (l.n && l.s[l.n - 1] == '\r')
            l.n--;
        if (flen) {
            if (fence_close(l, fch, flen)) {
                if (m->code.len)
                    st = ingest_doc_add_block(m->d, BLOCK_CODE, 0, 0, m->code.data, m->code.len);
                cairn_buf_reset(&m->code);
                flen = 0;
                prev_blank = false;
                continue;
            }
            size_t drop = 0;
            while (drop < fence_indent && drop < l.n && l.s[drop] == ' ')
                drop++;
            if (m->code.len)
                st = cairn_buf_putc(&m->code, '\n');
            if (st == CAIRN_OK)
                st = cairn_buf_append(&m->code, l.s + drop, l.n - drop);
            continue;
        }
        if (in_comment) {
            if (l.n >= 3 && memmem(l.s, l.n, "-->", 3))
                in_comment = false;
            continue;
        }
        if (in_indented) {
            if (is_blank(l) || indent_of(l) >= 4) {
                size_t drop = 0, w = 0;
                while (drop < l.n && w < 4 && (l.s[drop] == ' ' || l.s[drop] == '\t')) {
                    w += l.s[drop] == '\t' ? 4 : 1;
                    drop++;
                }
                if (m->code.len)
                    st = cairn_buf_putc(&m->code, '\n');
                if (st == CAIRN_OK)
                    st = cairn_buf_append(&m->code, l.s + drop, l.n - drop);
                continue;
            }
            /* end of indented code: trim trailing blank lines */
            while (m->code.len && m->code.data[m->code.len - 1] == '\n')
                m->code.data[--m->code.len] = 0;
            if (m->code.len)
                st = ingest_doc_add_block(m->d, BLOCK_CODE, 0, 0, m->code.data, m->code.len);
            cairn_buf_reset(&m->code);
            in_indented = false;
            if (st != CAIRN_OK)
                break;
        }
        if (is_blank(l)) {
            if (m->have_para && m->para_kind != BLOCK_LIST_ITEM)
                st = flush_para(m);
            in_table = false;
            prev_blank = true;
            continue;
        }
        line text;
        int lv;
        size_t ind = indent_of(l);
        char ch;
        size_t fl;
        if ((fl = fence_open(l, &ch))) {
            st = flush_para(m);
            fch = ch;
            flen = fl;
            fence_indent = ind;
            cairn_buf_reset(&m->code);
        } else if (ind >= 4 && (!m->have_para || (m->para_kind == BLOCK_LIST_ITEM && prev_blank && ind < list_indent))) {
            st = flush_para(m);
            in_indented = true;
            cairn_buf_reset(&m->code);
            line t = l;
            size_t drop = 0, w = 0;
            while (drop < t.n && w < 4) {
                w += t.s[drop] == '\t' ? 4 : 1;
                drop++;
            }
            st = st == CAIRN_OK ? cairn_buf_append(&m->code, t.s + drop, t.n - drop) : st;
        } else if ((lv = atx_level(l, &text))) {
            st = add_heading(m, lv, text);
        } else if (m->have_para && m->para_kind == BLOCK_PARAGRAPH && !prev_blank && ind <= 3 &&
                   (run_of(l, '=', 1) || run_of(l, '-', 1)) ) {
            /* setext heading: the pending paragraph is its text */
            int level = run_of(l, '=', 1) ? 1 : 2;
            char *t = cairn_strndup(m->para.data ? m->para.data : "", m->para.len);
            if (!t) {
                st = cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
                break;
            }
            cairn_buf_reset(&m->para);
            m->have_para = false;
            st = add_heading(m, level, (line){t, strlen(t)});
            cairn_free(t);
        } else if (thematic_break(l)) {
            st = flush_para(m);
        } else if (ind <= 3 && lstrip(l).n >= 4 && !memcmp(lstrip(l).s, "<!--", 4)) {
            st = flush_para(m);
            if (!memmem(l.s, l.n, "-->", 3))
                in_comment = true;
        } else if (ind <= 3 && lstrip(l).s[0] == '>') {
            line t = lstrip(l);
            t.s++;
            t.n--;
            st = para_add(m, BLOCK_QUOTE, 0, t, false);
        } else if (list_marker(l, &text, &ind)) {
            line t = lstrip(l);
            list_indent = ind + (size_t)(text.s - t.s);
            st = para_add(m, BLOCK_LIST_ITEM, (int)(ind / 2) + 1, text, true);
        } else if (in_table || (!m->have_para && memchr(l.s, '|', l.n) && p < end &&
                                table_delim((line){p, (size_t)((memchr(p, '\n', (size_t)(end - p)) ? (const char *)memchr(p, '\n', (size_t)(end - p)) : end) - p)}))) {
            if (!in_table)
                st = flush_para(m);
            in_table = true;
            if (st == CAIRN_OK && !table_delim(l))
                st = add_table_row(m, l);
        } else if (!m->have_para && ind <= 3 && lstrip(l).s[0] == '[' && memmem(l.s, l.n, "]:", 2)) {
            /* link reference definition: drop */
        } else if (m->have_para && m->para_kind == BLOCK_LIST_ITEM) {
            if (prev_blank && ind < list_indent) {
                st = flush_para(m);
                if (st == CAIRN_OK)
                    st = para_add(m, BLOCK_PARAGRAPH, 0, l, true);
            } else {
                st = para_add(m, BLOCK_LIST_ITEM, m->para_level, l, false);
            }
        } else {
            st = para_add(m, BLOCK_PARAGRAPH, 0, l, prev_blank);
        }
        prev_blank = false;
    }
    if (st == CAIRN_OK && (flen || in_indented) && m->code.len) {
        while (in_indented && m->code.len && m->code.data[m->code.len - 1] == '\n')
            m->code.data[--m->code.len] = 0;
        st = ingest_doc_add_block(m->d, BLOCK_CODE, 0, 0, m->code.data, m->code.len);
    }
    if (st == CAIRN_OK)
        st = flush_para(m);
    return st;
}

static cairn_status parse_markdown(const char *path, const char *data, size_t len,
                                   const ingest_options *opt, ingest_emit_fn emit, void *ctx)
{
    (void)opt;
    ingest_doc d;
    ingest_doc_init(&d);
    d.type = "markdown";
    md m = {.d = &d};
    cairn_buf_init(&m.para, 0);
    cairn_buf_init(&m.code, 0);
    size_t body;
    cairn_status st = skip_front_matter(&m, data, len, &body);
    if (st == CAIRN_OK)
        st = md_body(&m, data + body, len - body);
    if (st == CAIRN_OK && !d.title) {
        const char *b = strrchr(path, '/');
        d.title = cairn_strdup(b ? b + 1 : path);
    }
    if (st == CAIRN_OK) {
        d.key = cairn_strdup("");
        if (!d.key || !d.title)
            st = cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
    }
    if (st == CAIRN_OK)
        st = emit(ctx, &d);
    cairn_buf_free(&m.para);
    cairn_buf_free(&m.code);
    ingest_doc_free(&d);
    return st;
}

const ingest_parser ingest_parser_markdown = {"markdown", parse_markdown};
