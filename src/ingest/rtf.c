/*
 * rtf.c — Rich Text Format, our own reader (no library).
 *
 * RTF is groups `{...}`, control words `\word` with an optional signed
 * number, control symbols `\x`, and text. What we keep:
 *   - paragraphs (\par, \sect, \page end one; \line and \tab are spaces);
 *   - headings: a paragraph whose style (\sN) the stylesheet names
 *     "heading N" / "Title", or with \outlinelevelN (level N+1);
 *   - tables: \cell ends a cell, \row a row -> a table row, cells joined by
 *     " | " (\nestcell/\nestrow of nested tables are cell text);
 *   - text: 8-bit bytes and \'hh in the document's code page (\ansicpgN,
 *     default 1252, converted with iconv), \uN Unicode (with its \ucN
 *     fallback characters skipped; surrogate pairs joined), \emdash
 *     \endash \bullet \lquote \rquote \ldblquote \rdblquote \~ \_;
 *   - metadata from {\info}: title, author, subject, keywords (a list),
 *     company, category, comment, operator -> last_modified_by.
 * Dropped: every {\* ...} destination, font/colour/list tables, pictures,
 * objects, headers/footers, footnotes, field instructions (a field's result
 * is kept), \binN data.
 * Caps: groups nest at most 1000 deep (deeper content is dropped); control
 * words 32 letters, parameters 10 digits. Never fails on malformed input:
 * unbalanced braces are ended at the end of the file. Cost: one pass.
 */
#include "ingest/parse_common.h"
#include <ctype.h>
#include <errno.h>
#include <iconv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define RTF_MAX_DEPTH 1000
#define RTF_MAX_STYLES 1024

typedef enum { DEST_TEXT = 0, DEST_SKIP, DEST_STYLESHEET, DEST_INFO_FIELD, DEST_INFO } dest;

typedef struct group {
    dest d;
    int uc;                 /* fallback characters after \uN */
    char field[16];         /* DEST_INFO_FIELD: title, author ... */
    int style;              /* the paragraph style (\sN) set in this group */
} group;

typedef struct rtf {
    ingest_doc *doc;
    group g[RTF_MAX_DEPTH + 1];
    int depth, lost;        /* lost: groups deeper than the cap */
    cairn_buf para, cell, row, raw, field, sname;
    bool space, cell_space;
    int heading;            /* of the current paragraph */
    int style;
    bool intbl;
    int skip_fallback;      /* characters of \uN fallback still to skip */
    unsigned hi_surrogate;
    int codepage;
    iconv_t cd;
    int cd_page;
    int style_num[RTF_MAX_STYLES];
    int style_level[RTF_MAX_STYLES];
    size_t n_styles;
    int cur_style_num;
} rtf;

static int heading_of_style_name(const char *name)
{
    while (*name == ' ')
        name++;
    if (!strncasecmp(name, "heading", 7)) {
        int l = atoi(name + 7);
        if (l >= 1 && l <= 9)
            return l > 6 ? 6 : l;
    }
    if (!strncasecmp(name, "title", 5))
        return 1;
    return 0;
}

static cairn_status put_cp(cairn_buf *b, unsigned long cp)
{
    char u[4];
    size_t k;
    if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        cp = 0xFFFD;
    if (cp < 0x80) {
        u[0] = (char)cp;
        k = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3F));
        k = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        k = 3;
    } else {
        u[0] = (char)(0xF0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
        k = 4;
    }
    return cairn_buf_append(b, u, k);
}

/* Where text goes in the current destination. */
static cairn_buf *text_target(rtf *r)
{
    switch (r->g[r->depth].d) {
    case DEST_TEXT: return &r->para;
    case DEST_INFO_FIELD: return &r->field;
    case DEST_STYLESHEET: return &r->sname;
    default: return NULL;
    }
}

/* Convert the pending code-page bytes into the target. */
static cairn_status flush_raw(rtf *r)
{
    if (!r->raw.len)
        return CAIRN_OK;
    cairn_buf *t = text_target(r);
    cairn_status st = CAIRN_OK;
    if (t) {
        if (r->cd == (iconv_t)-1 || r->cd_page != r->codepage) {
            if (r->cd != (iconv_t)-1)
                iconv_close(r->cd);
            char name[32];
            snprintf(name, sizeof name, "CP%d", r->codepage);
            r->cd = iconv_open("UTF-8", name);
            if (r->cd == (iconv_t)-1)
                r->cd = iconv_open("UTF-8", "CP1252");
            r->cd_page = r->codepage;
        }
        char out[4096];
        char *in = r->raw.data;
        size_t inleft = r->raw.len;
        while (inleft && st == CAIRN_OK) {
            char *op = out;
            size_t outleft = sizeof out;
            size_t rc = r->cd == (iconv_t)-1 ? (size_t)-1 : iconv(r->cd, &in, &inleft, &op, &outleft);
            st = cairn_buf_append(t, out, (size_t)(op - out));
            if (rc == (size_t)-1 && st == CAIRN_OK) {
                if (r->cd != (iconv_t)-1 && errno == E2BIG)
                    continue;
                /* a byte the code page lacks */
                st = cairn_buf_puts(t, "\xEF\xBF\xBD");
                in++;
                inleft--;
                if (r->cd != (iconv_t)-1)
                    iconv(r->cd, NULL, NULL, NULL, NULL);
            }
        }
        if (t == &r->para)
            r->space = false;
    }
    cairn_buf_reset(&r->raw);
    return st;
}

/* One text character (a byte of the document, or from \'hh). */
static cairn_status text_byte(rtf *r, unsigned char c)
{
    if (r->skip_fallback > 0) {
        r->skip_fallback--;
        return CAIRN_OK;
    }
    cairn_buf *t = text_target(r);
    if (!t)
        return CAIRN_OK;
    if (c >= 0x80)
        return cairn_buf_putc(&r->raw, (char)c);
    CAIRN_TRY(flush_raw(r));
    if (t == &r->para) {
        if (c == ' ' || c == '\t') {
            if (r->space)
                return CAIRN_OK;
            r->space = true;
            return cairn_buf_putc(t, ' ');
        }
        r->space = false;
    }
    return cairn_buf_putc(t, (char)c);
}

static cairn_status text_str(rtf *r, const char *s)
{
    CAIRN_TRY(flush_raw(r));
    cairn_buf *t = text_target(r);
    if (!t)
        return CAIRN_OK;
    if (t == &r->para)
        r->space = false;
    return cairn_buf_puts(t, s);
}

static cairn_status text_space(rtf *r)
{
    CAIRN_TRY(flush_raw(r));
    if (r->g[r->depth].d != DEST_TEXT || r->space)
        return CAIRN_OK;
    r->space = true;
    return cairn_buf_putc(&r->para, ' ');
}

static cairn_status para_end(rtf *r)
{
    CAIRN_TRY(flush_raw(r));
    const char *s = r->para.data ? r->para.data : "";
    size_t n = r->para.len;
    pc_trim(&s, &n);
    cairn_status st = CAIRN_OK;
    if (n) {
        if (r->intbl) {
            if (r->cell.len)
                st = cairn_buf_putc(&r->cell, ' ');
            if (st == CAIRN_OK)
                st = cairn_buf_append(&r->cell, s, n);
        } else {
            st = ingest_doc_add_block(r->doc, r->heading ? BLOCK_HEADING : BLOCK_PARAGRAPH, r->heading, 0, s, n);
        }
    }
    cairn_buf_reset(&r->para);
    r->space = true;
    return st;
}

static cairn_status cell_end(rtf *r)
{
    CAIRN_TRY(para_end(r));
    cairn_status st = CAIRN_OK;
    if (r->row.len)
        st = cairn_buf_puts(&r->row, " | ");
    if (st == CAIRN_OK)
        st = cairn_buf_append(&r->row, r->cell.data ? r->cell.data : "", r->cell.len);
    cairn_buf_reset(&r->cell);
    return st;
}

static cairn_status row_end(rtf *r)
{
    if (r->para.len || r->cell.len)
        CAIRN_TRY(cell_end(r));
    const char *s = r->row.data ? r->row.data : "";
    size_t n = r->row.len;
    pc_trim(&s, &n);
    cairn_status st = CAIRN_OK;
    if (n && strspn(s, "| ") != n)
        st = ingest_doc_add_block(r->doc, BLOCK_TABLE_ROW, 0, 0, s, n);
    cairn_buf_reset(&r->row);
    return st;
}

static int style_heading(const rtf *r, int num)
{
    for (size_t i = 0; i < r->n_styles; i++)
        if (r->style_num[i] == num)
            return r->style_level[i];
    return 0;
}

static bool word_is(const char *w, size_t n, const char *s) { return strlen(s) == n && !memcmp(w, s, n); }

/* Destinations whose text is not document text. */
static bool skipped_destination(const char *w, size_t n)
{
    static const char *const d[] = {
        "fonttbl", "colortbl", "pict", "object", "header", "headerl", "headerr", "headerf", "footer", "footerl",
        "footerr", "footerf", "footnote", "fldinst", "themedata", "colorschememapping", "datastore",
        "latentstyles", "listtable", "listoverridetable", "rsidtbl", "generator", "xmlnstbl", "mmathPr",
        "pgdsctbl", "filetbl", "revtbl", "bkmkstart", "bkmkend", "nonshppict", "shppict", "sp", "shpinst",
        "private", "userprops", "docvar", "xe", "tc", "template", "protusertbl", "listtext", "pntext"};
    for (size_t i = 0; i < CAIRN_ARRAY_LEN(d); i++)
        if (word_is(w, n, d[i]))
            return true;
    return false;
}

static cairn_status info_field_end(rtf *r, const char *field)
{
    CAIRN_TRY(flush_raw(r));
    const char *s = r->field.data ? r->field.data : "";
    size_t n = r->field.len;
    pc_trim(&s, &n);
    cairn_status st = CAIRN_OK;
    if (n) {
        char *v = cairn_strndup(s, CAIRN_MIN(n, (size_t)4096));
        if (!v)
            return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
        if (!strcmp(field, "title")) {
            st = meta_set_string(&r->doc->meta, "title", v);
            if (st == CAIRN_OK && !r->doc->title) {
                r->doc->title = v;
                v = NULL;
            }
        } else if (!strcmp(field, "keywords")) {
            char *items[PC_MAX_LIST_ITEMS];
            size_t k = 0;
            char *save = NULL;
            for (char *t = strtok_r(v, ",; ", &save); t && k < PC_MAX_LIST_ITEMS; t = strtok_r(NULL, ",; ", &save))
                items[k++] = t;
            if (k)
                st = meta_set_list(&r->doc->meta, "keywords", (const char *const *)items, k);
        } else if (!strcmp(field, "operator")) {
            st = meta_set_string(&r->doc->meta, "last_modified_by", v);
        } else {
            st = meta_set_string(&r->doc->meta, field, v);
        }
        cairn_free(v);
    }
    cairn_buf_reset(&r->field);
    return st;
}

static cairn_status control_word(rtf *r, const char *w, size_t n, bool has_num, long num, bool starred,
                                 bool first_in_group, const char **pos, const char *end)
{
    group *g = &r->g[r->depth];
    if (starred && first_in_group) {
        g->d = DEST_SKIP;
        return CAIRN_OK;
    }
    if (first_in_group && skipped_destination(w, n)) {
        g->d = DEST_SKIP;
        return CAIRN_OK;
    }
    if (word_is(w, n, "bin") && has_num && num > 0) {
        size_t k = (size_t)num < (size_t)(end - *pos) ? (size_t)num : (size_t)(end - *pos);
        *pos += k;
        return CAIRN_OK;
    }
    if (g->d == DEST_SKIP)
        return CAIRN_OK;
    if (first_in_group && word_is(w, n, "stylesheet")) {
        g->d = DEST_STYLESHEET;
        return CAIRN_OK;
    }
    if (first_in_group && word_is(w, n, "info")) {
        g->d = DEST_INFO;
        return CAIRN_OK;
    }
    if (g->d == DEST_INFO && first_in_group) {
        static const char *const fields[] = {"title", "author", "subject", "keywords", "company", "operator",
                                             "category", "comment"};
        for (size_t i = 0; i < CAIRN_ARRAY_LEN(fields); i++)
            if (word_is(w, n, fields[i])) {
                g->d = DEST_INFO_FIELD;
                snprintf(g->field, sizeof g->field, "%s", fields[i]);
                cairn_buf_reset(&r->field);
                return CAIRN_OK;
            }
        g->d = DEST_SKIP; /* \creatim, \version ... */
        return CAIRN_OK;
    }
    if (word_is(w, n, "u") && has_num) {
        CAIRN_TRY(flush_raw(r));
        long v = num < 0 ? num + 65536 : num;
        cairn_buf *t = text_target(r);
        if (v >= 0xD800 && v <= 0xDBFF) {
            r->hi_surrogate = (unsigned)v;
        } else if (t) {
            unsigned long cp = (unsigned long)v;
            if (v >= 0xDC00 && v <= 0xDFFF && r->hi_surrogate)
                cp = 0x10000 + (((unsigned long)r->hi_surrogate - 0xD800) << 10) + ((unsigned long)v - 0xDC00);
            r->hi_surrogate = 0;
            CAIRN_TRY(put_cp(t, cp));
            if (t == &r->para)
                r->space = false;
        }
        r->skip_fallback = g->uc;
        return CAIRN_OK;
    }
    if (word_is(w, n, "uc") && has_num) {
        g->uc = num >= 0 && num < 10 ? (int)num : 1;
        return CAIRN_OK;
    }
    if (word_is(w, n, "ansicpg") && has_num) {
        CAIRN_TRY(flush_raw(r));
        if (num > 0 && num < 100000)
            r->codepage = (int)num;
        return CAIRN_OK;
    }
    if (g->d == DEST_STYLESHEET) {
        if (word_is(w, n, "s") && has_num)
            r->cur_style_num = (int)num;
        return CAIRN_OK;
    }
    if (g->d != DEST_TEXT && g->d != DEST_INFO_FIELD)
        return CAIRN_OK;
    if (word_is(w, n, "par") || word_is(w, n, "sect") || word_is(w, n, "page"))
        return para_end(r);
    if (word_is(w, n, "line") || word_is(w, n, "tab") || word_is(w, n, "nestcell"))
        return text_space(r);
    if (word_is(w, n, "cell"))
        return cell_end(r);
    if (word_is(w, n, "row"))
        return row_end(r);
    if (word_is(w, n, "intbl")) {
        r->intbl = true;
        return CAIRN_OK;
    }
    if (word_is(w, n, "pard")) {
        r->heading = 0;
        r->intbl = false;
        return CAIRN_OK;
    }
    if (word_is(w, n, "s") && has_num) {
        int h = style_heading(r, (int)num);
        if (h)
            r->heading = h;
        return CAIRN_OK;
    }
    if (word_is(w, n, "outlinelevel") && has_num) {
        if (num >= 0 && num < 9)
            r->heading = num + 1 > 6 ? 6 : (int)num + 1;
        return CAIRN_OK;
    }
    static const struct { const char *w, *s; } chars[] = {
        {"emdash", "\xe2\x80\x94"}, {"endash", "\xe2\x80\x93"}, {"bullet", "\xe2\x80\xa2"},
        {"lquote", "\xe2\x80\x98"}, {"rquote", "\xe2\x80\x99"}, {"ldblquote", "\xe2\x80\x9c"},
        {"rdblquote", "\xe2\x80\x9d"}, {"emspace", " "}, {"enspace", " "}, {"qmspace", " "},
    };
    for (size_t i = 0; i < CAIRN_ARRAY_LEN(chars); i++)
        if (word_is(w, n, chars[i].w))
            return text_str(r, chars[i].s);
    return CAIRN_OK;
}

static cairn_status group_close(rtf *r)
{
    if (r->lost) {
        r->lost--;
        return CAIRN_OK;
    }
    if (r->depth == 0)
        return CAIRN_OK; /* an extra '}' */
    group *g = &r->g[r->depth];
    CAIRN_TRY(flush_raw(r));
    if (g->d == DEST_INFO_FIELD && (r->depth == 0 || r->g[r->depth - 1].d != DEST_INFO_FIELD))
        CAIRN_TRY(info_field_end(r, g->field));
    if (g->d == DEST_STYLESHEET && r->depth > 0 && r->g[r->depth - 1].d == DEST_STYLESHEET) {
        /* one style: {\s1 ... heading 1;} */
        cairn_buf_putc(&r->sname, 0);
        const char *nm = r->sname.data ? r->sname.data : "";
        int h = heading_of_style_name(nm);
        if (h && r->n_styles < RTF_MAX_STYLES) {
            r->style_num[r->n_styles] = r->cur_style_num;
            r->style_level[r->n_styles++] = h;
        }
        cairn_buf_reset(&r->sname);
        r->cur_style_num = 0;
    }
    r->depth--;
    return CAIRN_OK;
}

static cairn_status rtf_run(rtf *r, const char *data, size_t len)
{
    const char *p = data, *end = data + len;
    bool first_in_group = false;
    while (p < end) {
        unsigned char c = (unsigned char)*p;
        if (c == '{') {
            p++;
            CAIRN_TRY(flush_raw(r));
            if (r->depth >= RTF_MAX_DEPTH || r->lost) {
                r->lost++;
                continue;
            }
            r->g[r->depth + 1] = r->g[r->depth];
            r->depth++;
            first_in_group = true;
            continue;
        }
        if (c == '}') {
            p++;
            CAIRN_TRY(group_close(r));
            first_in_group = false;
            continue;
        }
        if (r->lost) {
            p++;
            continue;
        }
        if (c == '\\') {
            p++;
            if (p >= end)
                break;
            if (isalpha((unsigned char)*p)) {
                const char *w = p;
                while (p < end && isalpha((unsigned char)*p) && p - w < 32)
                    p++;
                size_t wn = (size_t)(p - w);
                while (p < end && isalpha((unsigned char)*p))
                    p++; /* an over-long word: the rest is dropped */
                bool neg = false, has = false;
                long num = 0;
                if (p < end && *p == '-' && p + 1 < end && isdigit((unsigned char)p[1])) {
                    neg = true;
                    p++;
                }
                int digits = 0;
                while (p < end && isdigit((unsigned char)*p)) {
                    if (digits++ < 10)
                        num = num * 10 + (*p - '0');
                    has = true;
                    p++;
                }
                if (neg)
                    num = -num;
                if (p < end && *p == ' ')
                    p++;
                bool starred = false;
                CAIRN_TRY(control_word(r, w, wn, has, num, starred, first_in_group, &p, end));
                /* a \uN's fallback characters are counted from here */
                first_in_group = false;
                continue;
            }
            char s = *p++;
            if (s == '*') {
                if (first_in_group)
                    r->g[r->depth].d = DEST_SKIP;
                continue;
            }
            first_in_group = false;
            if (s == '\'') {
                if (p + 2 <= end && isxdigit((unsigned char)p[0]) && isxdigit((unsigned char)p[1])) {
                    char h[3] = {p[0], p[1], 0};
                    p += 2;
                    CAIRN_TRY(text_byte(r, (unsigned char)strtol(h, NULL, 16)));
                }
                continue;
            }
            if (r->skip_fallback > 0 && (s == '{' || s == '}' || s == '\\' || s == '~' || s == '_' || s == '-')) {
                r->skip_fallback--;
                continue;
            }
            switch (s) {
            case '\\':
            case '{':
            case '}': CAIRN_TRY(text_byte(r, (unsigned char)s)); break;
            case '~': CAIRN_TRY(text_space(r)); break;
            case '_': CAIRN_TRY(text_byte(r, '-')); break;
            case '\n':
            case '\r':
                if (r->g[r->depth].d == DEST_TEXT)
                    CAIRN_TRY(para_end(r));
                break;
            case '\t': CAIRN_TRY(text_space(r)); break;
            default: break; /* \- \| \: ... */
            }
            continue;
        }
        p++;
        first_in_group = false;
        if (c == '\r' || c == '\n')
            continue; /* line breaks in the file are not text */
        if (c == 0)
            continue;
        if (r->g[r->depth].d == DEST_STYLESHEET && c == ';')
            continue;
        CAIRN_TRY(text_byte(r, c));
    }
    CAIRN_TRY(flush_raw(r));
    while (r->depth > 0)
        CAIRN_TRY(group_close(r));
    if (r->row.len || r->cell.len)
        CAIRN_TRY(row_end(r));
    return para_end(r);
}

static cairn_status parse_rtf(const char *path, const char *data, size_t len, const ingest_options *opt,
                              ingest_emit_fn emit, void *ctx)
{
    (void)opt;
    ingest_doc d;
    ingest_doc_init(&d);
    d.type = "rtf";
    rtf *r = cairn_calloc(1, sizeof *r);
    if (!r)
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
    r->doc = &d;
    r->codepage = 1252;
    r->cd = (iconv_t)-1;
    r->space = true;
    r->g[0].uc = 1;
    cairn_buf *bufs[] = {&r->para, &r->cell, &r->row, &r->raw, &r->field, &r->sname};
    for (size_t i = 0; i < CAIRN_ARRAY_LEN(bufs); i++)
        cairn_buf_init(bufs[i], 0);
    cairn_status st = CAIRN_OK;
    size_t sk = 0;
    while (sk < len && pc_is_space((unsigned char)data[sk]))
        sk++;
    if (len - sk < 5 || memcmp(data + sk, "{\\rtf", 5) != 0)
        st = cairn_fail(CAIRN_ERR_CORRUPT, "not an RTF document (no {\\rtf header)");
    if (st == CAIRN_OK)
        st = rtf_run(r, data + sk, len - sk);
    if (r->cd != (iconv_t)-1)
        iconv_close(r->cd);
    for (size_t i = 0; i < CAIRN_ARRAY_LEN(bufs); i++)
        cairn_buf_free(bufs[i]);
    cairn_free(r);
    if (st == CAIRN_OK) {
        const char *b = strrchr(path, '/');
        if (!d.title && !(d.title = cairn_strdup(b ? b + 1 : path)))
            st = cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
        if (st == CAIRN_OK && !(d.key = cairn_strdup("")))
            st = cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
    }
    if (st == CAIRN_OK)
        st = emit(ctx, &d);
    ingest_doc_free(&d);
    return st;
}

const ingest_parser ingest_parser_rtf = {"rtf", parse_rtf};
