/*
 * pdf.c — PDF files through poppler-glib: text per page, page numbers on
 * every block, paragraphs rebuilt from the text layout, document info as
 * metadata.
 *
 * Paragraphs: poppler gives each page's text in reading order, one line per
 * '\n', plus a rectangle per character. We group lines into paragraphs and
 * start a new one when (H = the page's median line height):
 *   - the vertical gap to the next line exceeds 0.6 H (paragraph spacing),
 *   - the next line is higher up the page (a new column),
 *   - the line height changes by more than 18% (a heading or a caption),
 *   - the next line is indented by more than 0.8 H (first-line indent), or
 *   - the line ends a sentence (. ! ? :) well short of the right margin.
 * Lines are joined with a space; "hyphen-\nated" words are joined whole
 * when the next line starts in lower case. Without a usable layout, blank
 * lines separate paragraphs.
 * Headings: a paragraph of one or two lines, set at least 1.2x the page's
 * median line height, not ending in '.', is a BLOCK_HEADING (level 1 at
 * 1.7x, 2 at 1.4x, else 3) — pages with fewer than 4 lines excepted.
 *
 * Metadata: title (also the document title), author, subject, keywords
 * (list), creator, producer, created / modified (dates), pages (number).
 *
 * Failures: an encrypted PDF that needs a password is CAIRN_ERR_UNSUPPORTED
 * (skipped, reason given); a damaged or non-PDF file is CAIRN_ERR_CORRUPT;
 * a PDF without extractable text (scanned images) is CAIRN_ERR_UNSUPPORTED.
 * poppler-glib is loaded when the first PDF is met (pdf_lib.h); without it
 * a PDF fails with the loader's reason (CAIRN_ERR_NOT_FOUND) and is retried
 * by the next run.
 * poppler-glib routes poppler's own error messages to GLib's log at INFO
 * level, which is not printed by default, so nothing reaches stderr.
 */
#define _GNU_SOURCE /* memmem, strcasestr */
#include "ingest/parse_common.h"
#include <math.h>
#include "ingest/pdf_lib.h"   /* poppler-glib, loaded on first use */
#include <stdio.h>
#include <string.h>

#define PDF_MAX_PAGES 100000
#define PDF_MAX_TEXT ((size_t)256 << 20) /* extracted text per file */

typedef struct pdf_line {
    size_t start, len;        /* byte range in the page text */
    double x1, y1, x2, y2;    /* bounding box of its characters */
    bool has_box;
} pdf_line;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static bool ends_sentence(const char *s, size_t n)
{
    while (n && (s[n - 1] == ' ' || s[n - 1] == '"' || s[n - 1] == ')' || s[n - 1] == '\''))
        n--;
    return n && (s[n - 1] == '.' || s[n - 1] == '!' || s[n - 1] == '?' || s[n - 1] == ':');
}

static bool is_lower_start(const char *s, size_t n)
{
    return n && ((s[0] >= 'a' && s[0] <= 'z') || (unsigned char)s[0] >= 0xC3);
}

/* Append line text to para: a space between lines, or nothing when the
 * previous line ended in a hyphen inside a word and this one goes on in
 * lower case (the hyphen is dropped). */
static cairn_status join_line(cairn_buf *para, const char *s, size_t n)
{
    pc_trim(&s, &n);
    if (!n)
        return CAIRN_OK;
    if (para->len) {
        char last = para->data[para->len - 1];
        char before = para->len >= 2 ? para->data[para->len - 2] : ' ';
        bool letter = (before >= 'a' && before <= 'z') || (before >= 'A' && before <= 'Z');
        if (last == '-' && letter && is_lower_start(s, n)) {
            para->len--;
            para->data[para->len] = 0;
        } else {
            CAIRN_TRY(cairn_buf_putc(para, ' '));
        }
    }
    bool sp = false;
    return pc_append_collapsed(para, s, n, &sp);
}

/* What is known about the paragraph being built: its lines' heights. */
typedef struct para_shape {
    int lines;
    double hmin, hmax;
} para_shape;

/* A short paragraph set clearly larger than the page's body text is a
 * heading: level 1 at >= 1.7x the median line height, 2 at >= 1.4x, else 3
 * (LaTeX: title 1.73x, section 1.44x, subsection 1.2x). */
static int heading_level(const para_shape *sh, double H, int page_lines, const char *s, size_t n)
{
    if (H <= 0 || page_lines < 4 || sh->lines < 1 || sh->lines > 2 || n > 200 || sh->hmin < 1.2 * H)
        return 0;
    if (s[n - 1] == '.' || s[n - 1] == ',' || s[n - 1] == ';')
        return 0;
    bool letter = false;
    for (size_t i = 0; i < n && !letter; i++)
        letter = (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') || (unsigned char)s[i] >= 0xC3;
    if (!letter)
        return 0;
    double r = sh->hmin / H;
    return r >= 1.7 ? 1 : r >= 1.4 ? 2 : 3;
}

static cairn_status emit_para(ingest_doc *doc, cairn_buf *para, int page, size_t *total, para_shape *sh, double H,
                              int page_lines)
{
    const char *s = para->data;
    size_t n = para->len;
    pc_trim(&s, &n);
    cairn_status st = CAIRN_OK;
    if (n) {
        if (!cairn_add_ok(*total, n, total) || *total > PDF_MAX_TEXT)
            return cairn_fail(CAIRN_ERR_TOO_LARGE, "more than %zu bytes of text", PDF_MAX_TEXT);
        int level = heading_level(sh, H, page_lines, s, n);
        st = ingest_doc_add_block(doc, level ? BLOCK_HEADING : BLOCK_PARAGRAPH, level, page, s, n);
    }
    cairn_buf_reset(para);
    memset(sh, 0, sizeof *sh);
    return st;
}

/* Split one page's text into lines with their boxes. */
static cairn_status page_lines(const char *text, size_t tlen, const PopplerRectangle *rects, guint nrects,
                               pdf_line **out, size_t *nout)
{
    size_t nl = 1;
    for (const char *p = text; (p = memchr(p, '\n', (size_t)(text + tlen - p))) != NULL; p++)
        nl++;
    pdf_line *lines = cairn_calloc(nl, sizeof *lines);
    if (!lines)
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
    size_t k = 0, start = 0;
    guint ci = 0; /* character index into rects */
    bool boxes = rects && nrects > 0;
    for (size_t i = 0; i <= tlen; i++) {
        bool end = i == tlen || text[i] == '\n';
        unsigned char c = i < tlen ? (unsigned char)text[i] : 0;
        if (!end && (c & 0xC0) != 0x80) { /* first byte of a character */
            if (boxes && ci < nrects && !pc_is_space(c)) {
                const PopplerRectangle *r = &rects[ci];
                pdf_line *L = &lines[k];
                if (!L->has_box) {
                    L->x1 = r->x1; L->y1 = r->y1; L->x2 = r->x2; L->y2 = r->y2;
                    L->has_box = true;
                } else {
                    L->x1 = fmin(L->x1, r->x1); L->y1 = fmin(L->y1, r->y1);
                    L->x2 = fmax(L->x2, r->x2); L->y2 = fmax(L->y2, r->y2);
                }
            }
            ci++;
        }
        if (end) {
            lines[k].start = start;
            lines[k].len = i - start;
            k++;
            start = i + 1;
            if (i < tlen)
                ci++; /* the newline has a rectangle too */
        }
    }
    *out = lines;
    *nout = k;
    return CAIRN_OK;
}

static cairn_status page_paragraphs(ingest_doc *doc, PopplerPage *page, int pageno, cairn_buf *para,
                                    size_t *total)
{
    char *text = poppler_page_get_text(page);
    if (!text)
        return CAIRN_OK;
    size_t tlen = strlen(text);
    PopplerRectangle *rects = NULL;
    guint nrects = 0;
    if (!poppler_page_get_text_layout(page, &rects, &nrects)) {
        rects = NULL;
        nrects = 0;
    }
    /* The layout is usable only when it has one rectangle per character. */
    if (rects && (glong)nrects != g_utf8_strlen(text, (gssize)tlen)) {
        g_free(rects);
        rects = NULL;
        nrects = 0;
    }
    pdf_line *lines = NULL;
    size_t n = 0;
    cairn_status st = page_lines(text, tlen, rects, nrects, &lines, &n);
    if (st != CAIRN_OK)
        goto done;

    /* median line height */
    double H = 0;
    {
        double *hs = cairn_calloc(n ? n : 1, sizeof *hs);
        if (!hs) {
            st = cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
            goto done;
        }
        size_t m = 0;
        for (size_t i = 0; i < n; i++)
            if (lines[i].has_box && lines[i].y2 > lines[i].y1)
                hs[m++] = lines[i].y2 - lines[i].y1;
        if (m) {
            qsort(hs, m, sizeof *hs, cmp_double);
            H = hs[m / 2];
        }
        cairn_free(hs);
    }

    int page_lines = 0;
    for (size_t i = 0; i < n; i++)
        page_lines += lines[i].has_box;
    para_shape sh = {0};
    double right = 0; /* right edge of the current paragraph's lines */
    const pdf_line *prev = NULL;
    for (size_t i = 0; i < n && st == CAIRN_OK; i++) {
        const pdf_line *L = &lines[i];
        const char *s = text + L->start;
        size_t len = L->len;
        pc_trim(&s, &len);
        if (!len) { /* blank line: paragraph break */
            st = emit_para(doc, para, pageno, total, &sh, H, page_lines);
            prev = NULL;
            continue;
        }
        bool brk = false;
        if (prev && H > 0 && prev->has_box && L->has_box) {
            double hp = prev->y2 - prev->y1, hl = L->y2 - L->y1;
            double gap = L->y1 - prev->y2;
            right = fmax(right, fmax(prev->x2, L->x2));
            if (gap > 0.6 * H)
                brk = true;
            else if (L->y1 < prev->y1 - 0.5 * H)
                brk = true; /* moved up: next column */
            else if (fabs(hp - hl) > 0.18 * fmax(hp, hl))
                brk = true; /* another font size: heading, caption */
            else if (L->x1 > prev->x1 + 0.8 * H)
                brk = true;
            else if (prev->x2 < right - 3 * H && ends_sentence(text + prev->start, prev->len))
                brk = true;
        }
        if (brk) {
            st = emit_para(doc, para, pageno, total, &sh, H, page_lines);
            right = L->has_box ? L->x2 : 0;
        }
        if (st == CAIRN_OK)
            st = join_line(para, s, len);
        if (L->has_box) {
            double h = L->y2 - L->y1;
            sh.hmin = sh.lines ? fmin(sh.hmin, h) : h;
            sh.hmax = sh.lines ? fmax(sh.hmax, h) : h;
            sh.lines++;
        } else {
            sh.lines += 3; /* unknown size: never a heading */
        }
        prev = L;
    }
    if (st == CAIRN_OK)
        st = emit_para(doc, para, pageno, total, &sh, H, page_lines);
done:
    cairn_free(lines);
    g_free(rects);
    g_free(text);
    return st;
}

static cairn_status info_string(meta_list *m, const char *key, gchar *v)
{
    cairn_status st = CAIRN_OK;
    if (v) {
        const char *s = v;
        size_t n = strlen(s);
        pc_trim(&s, &n);
        if (n && g_utf8_validate(s, (gssize)n, NULL)) {
            char *c = cairn_strndup(s, n);
            st = c ? meta_set_string(m, key, c) : cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
            cairn_free(c);
        }
        g_free(v);
    }
    return st;
}

static cairn_status pdf_info(PopplerDocument *pd, ingest_doc *doc, int pages)
{
    meta_list *m = &doc->meta;
    gchar *title = poppler_document_get_title(pd);
    if (title) {
        const char *s = title;
        size_t n = strlen(s);
        pc_trim(&s, &n);
        if (n && g_utf8_validate(s, (gssize)n, NULL) && !(doc->title = cairn_strndup(s, n))) {
            g_free(title);
            return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
        }
    }
    CAIRN_TRY(info_string(m, "title", title));
    CAIRN_TRY(info_string(m, "author", poppler_document_get_author(pd)));
    CAIRN_TRY(info_string(m, "subject", poppler_document_get_subject(pd)));
    CAIRN_TRY(info_string(m, "creator", poppler_document_get_creator(pd)));
    CAIRN_TRY(info_string(m, "producer", poppler_document_get_producer(pd)));
    gchar *kw = poppler_document_get_keywords(pd);
    if (kw) {
        /* keywords: split on commas or semicolons */
        const char *items[PC_MAX_LIST_ITEMS];
        size_t k = 0;
        char *save = NULL;
        if (g_utf8_validate(kw, -1, NULL))
            for (char *tok = strtok_r(kw, ",;", &save); tok && k < PC_MAX_LIST_ITEMS; tok = strtok_r(NULL, ",;", &save)) {
                const char *s = tok;
                size_t len = strlen(s);
                pc_trim(&s, &len);
                if (!len)
                    continue;
                ((char *)s)[len] = 0;
                items[k++] = s;
            }
        cairn_status st = k ? meta_set_list(m, "keywords", items, k) : CAIRN_OK;
        g_free(kw);
        CAIRN_TRY(st);
    }
    time_t t = poppler_document_get_creation_date(pd);
    if (t > 0)
        CAIRN_TRY(meta_set_date(m, "created", (double)t));
    t = poppler_document_get_modification_date(pd);
    if (t > 0)
        CAIRN_TRY(meta_set_date(m, "modified", (double)t));
    return meta_set_number(m, "pages", pages);
}

static cairn_status pdf_parse(const char *path, const char *data, size_t len, const ingest_options *opt,
                              ingest_emit_fn emit, void *ctx)
{
    (void)opt;
    CAIRN_TRY(pdf_lib_load());
    if (len > (size_t)G_MAXSSIZE)
        return cairn_fail(CAIRN_ERR_TOO_LARGE, "%s: PDF too large", path);
    if (len < 8 || !memmem(data, CAIRN_MIN(len, (size_t)1024), "%PDF-", 5))
        return cairn_fail(CAIRN_ERR_CORRUPT, "%s: not a PDF file (no %%PDF- header)", path);
    GBytes *bytes = g_bytes_new_static(data, len);
    GError *err = NULL;
    PopplerDocument *pd = poppler_document_new_from_bytes(bytes, NULL, &err);
    if (!pd) {
        cairn_status st;
        if (err && err->domain == POPPLER_ERROR && err->code == POPPLER_ERROR_ENCRYPTED)
            st = cairn_fail(CAIRN_ERR_UNSUPPORTED, "%s: encrypted PDF: it needs a password, which cairn does not have",
                            path);
        else
            st = cairn_fail(CAIRN_ERR_CORRUPT, "%s: damaged or unreadable PDF (%s)", path,
                            err && err->message ? err->message : "unknown error");
        if (err)
            g_error_free(err);
        g_bytes_unref(bytes);
        return st;
    }
    ingest_doc doc;
    ingest_doc_init(&doc);
    doc.type = "pdf";
    cairn_buf para;
    cairn_buf_init(&para, 0);
    cairn_status st = CAIRN_OK;
    int pages = poppler_document_get_n_pages(pd);
    if (pages <= 0)
        st = cairn_fail(CAIRN_ERR_CORRUPT, "%s: damaged PDF: no pages", path);
    else if (pages > PDF_MAX_PAGES)
        st = cairn_fail(CAIRN_ERR_TOO_LARGE, "%s: %d pages, more than the cap of %d", path, pages, PDF_MAX_PAGES);
    if (st == CAIRN_OK && !(doc.key = cairn_strdup("")))
        st = cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
    if (st == CAIRN_OK)
        st = pdf_info(pd, &doc, pages);
    size_t total = 0;
    for (int i = 0; i < pages && st == CAIRN_OK; i++) {
        PopplerPage *page = poppler_document_get_page(pd, i);
        if (!page)
            continue; /* a broken page: keep the others */
        st = page_paragraphs(&doc, page, i + 1, &para, &total);
        g_object_unref(page);
        if (st != CAIRN_OK)
            st = cairn_fail_wrap(st, "%s: page %d", path, i + 1);
    }
    if (st == CAIRN_OK && doc.n_blocks == 0)
        st = cairn_fail(CAIRN_ERR_UNSUPPORTED, "%s: PDF has no extractable text (scanned images? OCR is not supported)",
                        path);
    cairn_buf_free(&para);
    g_object_unref(pd);
    g_bytes_unref(bytes);
    if (st == CAIRN_OK)
        st = emit(ctx, &doc);
    ingest_doc_free(&doc);
    return st;
}

const ingest_parser ingest_parser_pdf = {"pdf", pdf_parse};
