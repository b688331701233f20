/*
 * office.c — zip-container documents: Office Open XML (.docx .pptx .xlsx),
 * OpenDocument (.odt .odp .ods) and EPUB. The container is read with
 * libarchive and the XML with libxml2's reader (container.h: caps, XXE
 * safety); the structure below is ours. Which format a zip holds is decided
 * from its members (word/document.xml, ppt/presentation.xml,
 * xl/workbook.xml, the ODF/EPUB `mimetype`), not its name, so a misnamed
 * file is still read right; any other zip is skipped as an archive.
 *
 *   docx: w:p paragraphs; headings from the paragraph style (styles.xml
 *         names "heading N" / "Title", or an outline level); list items
 *         (w:numPr, level w:ilvl + 1); tables: a row per w:tr, cells joined
 *         by " | " (nested tables inside a cell become cell text).
 *   pptx: one section per slide in presentation order (p:sldIdLst through
 *         the relationships), each block with page = slide number (as a
 *         PDF page); the title placeholder is a heading (level 1), other
 *         a:p paragraphs; tables as rows. Metadata `slides`.
 *   xlsx: one document per sheet (key and title the sheet name, metadata
 *         `sheet`), the first non-empty row is the header, each other row a
 *         table-row record "header: value | ..." like CSV's one-document-
 *         per-file mode; shared and inline strings, booleans, date-formatted
 *         numbers as ISO dates. Metadata `columns`, `rows`.
 *   odt/odp/ods: the same from content.xml (text:h with its outline level,
 *         text:p, lists with their nesting, tables; draw:page slides with
 *         the presentation:class="title" frame as heading; table:table
 *         sheets with their repeated rows and cells expanded within caps).
 *   epub: the OPF named by META-INF/container.xml; chapters in spine
 *         order, each XHTML chapter read by the HTML parser (html.c) and
 *         appended to one document; title, author (dc:creator, a list when
 *         several), language, date, publisher, subject from the OPF.
 * Core properties (docProps/core.xml; ODF meta.xml): title, author
 * (creator), subject, description, keywords (a list), created, modified
 * (dates), last_modified_by, category.
 * Caps: container.h's member caps; ODF repeats expand to at most 16384
 * columns and 1000 repeated rows; 1 048 576 rows per sheet; a spreadsheet
 * holds at most 4096 columns of header names.
 * Failure behaviour: not a zip, a damaged member or malformed XML in a part
 * that is needed -> CAIRN_ERR_CORRUPT naming the part; a zip that is none of
 * the above -> CAIRN_ERR_UNSUPPORTED ("zip archive: not supported"); an
 * encrypted OOXML file (an OLE container) never gets here (detect.c).
 */
#include "ingest/container.h"
#include "ingest/parse_common.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_SHEET_ROWS 1048576u
#define MAX_COLS 16384u
#define MAX_ROW_REPEAT 1000u
#define MAX_HEADER_COLS 4096u
#define MAX_STYLES 4096u

/* ---- text accumulation ---- */
typedef struct tb {
    cairn_buf b;
    bool space;
} tb;

static void tb_init(tb *t)
{
    cairn_buf_init(&t->b, 0);
    t->space = true;
}

static cairn_status tb_add(tb *t, const char *s)
{
    return pc_append_collapsed(&t->b, s, strlen(s), &t->space);
}

static cairn_status tb_space(tb *t)
{
    if (t->space)
        return CAIRN_OK;
    t->space = true;
    return cairn_buf_putc(&t->b, ' ');
}

static void tb_reset(tb *t)
{
    cairn_buf_reset(&t->b);
    t->space = true;
}

static void tb_get(const tb *t, const char **s, size_t *n)
{
    *s = t->b.data ? t->b.data : "";
    *n = t->b.len;
    pc_trim(s, n);
}

static cairn_status tb_flush(tb *t, ingest_doc *d, block_kind kind, int level, int page)
{
    const char *s;
    size_t n;
    tb_get(t, &s, &n);
    cairn_status st = n ? ingest_doc_add_block(d, kind, level, page, s, n) : CAIRN_OK;
    tb_reset(t);
    return st;
}

static bool is(const char *a, const char *b) { return !strcmp(a, b); }

/* ---- core properties (OOXML docProps/core.xml, ODF meta.xml) ---- */
static cairn_status set_keywords(meta_list *m, const char *s)
{
    char *items[PC_MAX_LIST_ITEMS];
    size_t n = 0;
    cairn_status st = CAIRN_OK;
    const char *p = s;
    while (*p && n < PC_MAX_LIST_ITEMS && st == CAIRN_OK) {
        size_t k = strcspn(p, ",;");
        const char *w = p;
        size_t wn = k;
        pc_trim(&w, &wn);
        if (wn && !(items[n++] = cairn_strndup(w, wn)))
            st = cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
        p += k;
        if (*p)
            p++;
    }
    if (st == CAIRN_OK && n)
        st = meta_set_list(m, "keywords", (const char *const *)items, n);
    for (size_t i = 0; i < n; i++)
        cairn_free(items[i]);
    return st;
}

/* One property's text: name is the element's local name. *title gets the title. */
static cairn_status core_prop(meta_list *m, char **title, const char *name, const char *val)
{
    const char *v = val;
    size_t vn = strlen(val);
    pc_trim(&v, &vn);
    if (!vn)
        return CAIRN_OK;
    char *s = cairn_strndup(v, CAIRN_MIN(vn, (size_t)4096));
    if (!s)
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
    cairn_status st = CAIRN_OK;
    if (is(name, "title")) {
        st = meta_set_string(m, "title", s);
        if (st == CAIRN_OK && !*title) {
            *title = s;
            s = NULL;
        }
    } else if (is(name, "creator") || is(name, "initial-creator")) {
        if (!meta_get(m, "author") || is(name, "initial-creator"))
            st = meta_set_string(m, "author", s);
    } else if (is(name, "subject") || is(name, "description") || is(name, "category")) {
        st = meta_set_string(m, name, s);
    } else if (is(name, "lastModifiedBy")) {
        st = meta_set_string(m, "last_modified_by", s);
    } else if (is(name, "keywords") || is(name, "keyword")) {
        const meta_value *old = meta_get(m, "keywords");
        if (old && old->type == META_LIST && is(name, "keyword")) {
            /* ODF: one meta:keyword element per keyword */
            size_t n = old->n_items;
            char **items = cairn_calloc(n + 1, sizeof *items);
            if (!items) {
                st = cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
            } else {
                for (size_t i = 0; i < n; i++)
                    items[i] = old->items[i];
                items[n] = s;
                if (n < PC_MAX_LIST_ITEMS)
                    st = meta_set_list(m, "keywords", (const char *const *)items, n + 1);
                cairn_free(items);
            }
        } else {
            st = set_keywords(m, s);
        }
    } else if (is(name, "created") || is(name, "modified") || is(name, "creation-date") || is(name, "date")) {
        const char *key = is(name, "created") || is(name, "creation-date") ? "created" : "modified";
        double t;
        if (meta_parse_date(s, &t))
            st = meta_set_date(m, key, t);
        else if (strlen(s) > 19) {
            /* "2024-03-05T10:00:00.123456789" / "+01:00": keep to the second */
            char cut[32];
            snprintf(cut, sizeof cut, "%.19sZ", s);
            if (meta_parse_date(cut, &t))
                st = meta_set_date(m, key, t);
        }
    }
    cairn_free(s);
    return st;
}

static cairn_status read_core(const zip_member *zm, meta_list *m, char **title)
{
    if (!zm)
        return CAIRN_OK;
    xr *r;
    CAIRN_TRY(xr_open(&r, zm->data, zm->len, zm->name));
    cairn_status st;
    xr_kind k;
    char name[64] = "";
    cairn_buf val;
    cairn_buf_init(&val, 0);
    int depth = -1, field_depth = 1;
    while ((st = xr_next(r, &k)) == CAIRN_OK && k != XR_END) {
        if (k == XR_START) {
            /* OOXML: children of cp:coreProperties; ODF: of office:meta */
            int d = xr_depth(r);
            if (d == 1 && is(xr_name(r), "meta")) {
                field_depth = 2;
            } else if (d == field_depth && depth < 0) {
                snprintf(name, sizeof name, "%s", xr_name(r));
                cairn_buf_reset(&val);
                depth = d;
                if (xr_empty(r))
                    depth = -1;
            }
        } else if (k == XR_TEXT && depth >= 0) {
            st = cairn_buf_puts(&val, xr_text(r));
        } else if (k == XR_CLOSE && depth >= 0 && xr_depth(r) == depth) {
            st = cairn_buf_putc(&val, 0);
            if (st == CAIRN_OK)
                st = core_prop(m, title, name, val.data);
            depth = -1;
        }
        if (st != CAIRN_OK)
            break;
    }
    cairn_buf_free(&val);
    xr_close(r);
    if (st == CAIRN_ERR_CORRUPT) {
        cairn_clear_error(); /* broken properties do not lose the document */
        st = CAIRN_OK;
    }
    return st;
}

/* ---- relationships: Id -> Target (resolved against the part's folder) ---- */
typedef struct rels {
    char **id, **target;
    size_t n;
} rels;

static void rels_free(rels *r)
{
    for (size_t i = 0; i < r->n; i++) {
        cairn_free(r->id[i]);
        cairn_free(r->target[i]);
    }
    cairn_free(r->id);
    cairn_free(r->target);
    memset(r, 0, sizeof *r);
}

/* part "ppt/presentation.xml" -> "ppt/_rels/presentation.xml.rels" */
static cairn_status read_rels(const zip_members *z, const char *part, rels *out)
{
    memset(out, 0, sizeof *out);
    char rp[1024];
    const char *slash = strrchr(part, '/');
    if (slash)
        snprintf(rp, sizeof rp, "%.*s/_rels/%s.rels", (int)(slash - part), part, slash + 1);
    else
        snprintf(rp, sizeof rp, "_rels/%s.rels", part);
    const zip_member *zm = zip_find(z, rp);
    if (!zm)
        return CAIRN_OK;
    xr *r;
    CAIRN_TRY(xr_open(&r, zm->data, zm->len, zm->name));
    cairn_status st;
    xr_kind k;
    size_t cap = 0;
    while ((st = xr_next(r, &k)) == CAIRN_OK && k != XR_END) {
        if (k != XR_START || !is(xr_name(r), "Relationship"))
            continue;
        const char *id = xr_attr(r, "Id"), *t = xr_attr(r, "Target"), *mode = xr_attr(r, "TargetMode");
        if (!id || !t || (mode && !strcasecmp(mode, "External")))
            continue;
        if (out->n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            char **a = cairn_reallocarray(out->id, nc, sizeof *a);
            if (a)
                out->id = a;
            char **b = a ? cairn_reallocarray(out->target, nc, sizeof *b) : NULL;
            if (b)
                out->target = b;
            if (!a || !b) {
                st = cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
                break;
            }
            cap = nc;
        }
        char res[1024];
        container_resolve(part, t, res, sizeof res);
        out->id[out->n] = cairn_strdup(id);
        out->target[out->n] = cairn_strdup(res);
        out->n++;
        if (!out->id[out->n - 1] || !out->target[out->n - 1]) {
            st = cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
            break;
        }
    }
    xr_close(r);
    if (st != CAIRN_OK)
        rels_free(out);
    return st;
}

static const char *rels_get(const rels *r, const char *id)
{
    for (size_t i = 0; id && i < r->n; i++)
        if (is(r->id[i], id))
            return r->target[i];
    return NULL;
}

/* ---- docx ---- */
typedef struct style_map {
    char **id;
    int *level;    /* heading level 1..6; 0 = a list style (-1: nothing) */
    size_t n;
} style_map;

static void styles_free(style_map *s)
{
    for (size_t i = 0; i < s->n; i++)
        cairn_free(s->id[i]);
    cairn_free(s->id);
    cairn_free(s->level);
    memset(s, 0, sizeof *s);
}

static int heading_level_of_name(const char *name)
{
    if (!strncasecmp(name, "heading", 7)) {
        const char *p = name + 7;
        while (*p == ' ')
            p++;
        int l = atoi(p);
        if (l >= 1 && l <= 9)
            return l > 6 ? 6 : l;
    }
    if (!strcasecmp(name, "title"))
        return 1;
    if (!strcasecmp(name, "subtitle"))
        return 2;
    return -1;
}

static cairn_status read_styles(const zip_member *zm, style_map *sm)
{
    memset(sm, 0, sizeof *sm);
    if (!zm)
        return CAIRN_OK;
    xr *r;
    CAIRN_TRY(xr_open(&r, zm->data, zm->len, zm->name));
    cairn_status st;
    xr_kind k;
    char *cur = NULL;
    int cur_level = -1;
    size_t cap = 0;
    while ((st = xr_next(r, &k)) == CAIRN_OK && k != XR_END) {
        const char *n = k == XR_END ? "" : xr_name(r);
        if (k == XR_START && is(n, "style")) {
            cairn_free(cur);
            const char *id = xr_attr(r, "styleId");
            cur = id ? cairn_strdup(id) : NULL;
            cur_level = -1;
            if (id && !cur) {
                st = cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
                break;
            }
        } else if (k == XR_START && cur && is(n, "name")) {
            const char *v = xr_attr(r, "val");
            if (v)
                cur_level = heading_level_of_name(v);
        } else if (k == XR_START && cur && is(n, "outlineLvl")) {
            const char *v = xr_attr(r, "val");
            int l = v ? atoi(v) : 9;
            if (l >= 0 && l < 9 && cur_level < 0)
                cur_level = l + 1 > 6 ? 6 : l + 1;
        } else if (k == XR_CLOSE && is(n, "style") && cur) {
            if (cur_level > 0 && sm->n < MAX_STYLES) {
                if (sm->n == cap) {
                    size_t nc = cap ? cap * 2 : 32;
                    char **a = cairn_reallocarray(sm->id, nc, sizeof *a);
                    if (a)
                        sm->id = a;
                    int *b = a ? cairn_reallocarray(sm->level, nc, sizeof *b) : NULL;
                    if (b)
                        sm->level = b;
                    if (!a || !b) {
                        st = cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
                        break;
                    }
                    cap = nc;
                }
                sm->id[sm->n] = cur;
                sm->level[sm->n++] = cur_level;
                cur = NULL;
            }
            cairn_free(cur);
            cur = NULL;
        }
    }
    cairn_free(cur);
    xr_close(r);
    if (st == CAIRN_ERR_CORRUPT) {
        cairn_clear_error();
        st = CAIRN_OK;
    }
    if (st != CAIRN_OK)
        styles_free(sm);
    return st;
}

static int style_level(const style_map *sm, const char *id)
{
    for (size_t i = 0; i < sm->n; i++)
        if (is(sm->id[i], id))
            return sm->level[i];
    /* without styles.xml: Word's built-in ids */
    if (!strncasecmp(id, "Heading", 7) && id[7] >= '1' && id[7] <= '9' && !id[8])
        return id[7] - '0' > 6 ? 6 : id[7] - '0';
    if (!strcasecmp(id, "Title"))
        return 1;
    return -1;
}

/* A table in progress (docx, pptx, odt, odp): the current row's cells. */
typedef struct tbl {
    int depth;      /* nesting: only the outermost table makes rows */
    tb row, cell;
    bool in_cell;
} tbl;

static void tbl_init(tbl *t)
{
    memset(t, 0, sizeof *t);
    tb_init(&t->row);
    tb_init(&t->cell);
}

static void tbl_free(tbl *t)
{
    cairn_buf_free(&t->row.b);
    cairn_buf_free(&t->cell.b);
}

static cairn_status tbl_cell_end(tbl *t)
{
    const char *s;
    size_t n;
    tb_get(&t->cell, &s, &n);
    cairn_status st = CAIRN_OK;
    if (t->row.b.len)
        st = cairn_buf_puts(&t->row.b, " | ");
    if (st == CAIRN_OK)
        st = cairn_buf_append(&t->row.b, s, n);
    t->row.space = false;
    tb_reset(&t->cell);
    t->in_cell = false;
    return st;
}

static cairn_status tbl_row_end(tbl *t, ingest_doc *d, int page)
{
    /* a row of empty cells (" |  | ") is dropped */
    const char *s;
    size_t n;
    tb_get(&t->row, &s, &n);
    if (strspn(s, "| ") == n) {
        tb_reset(&t->row);
        return CAIRN_OK;
    }
    return tb_flush(&t->row, d, BLOCK_TABLE_ROW, 0, page);
}

/* A paragraph's text goes to the current cell when inside a table. */
static cairn_status para_end(tb *p, tbl *t, ingest_doc *d, block_kind kind, int level, int page)
{
    if (t->depth > 0) {
        const char *s;
        size_t n;
        tb_get(p, &s, &n);
        cairn_status st = CAIRN_OK;
        if (n) {
            st = tb_space(&t->cell);
            if (st == CAIRN_OK)
                st = pc_append_collapsed(&t->cell.b, s, n, &t->cell.space);
        }
        tb_reset(p);
        return st;
    }
    return tb_flush(p, d, kind, level, page);
}

static cairn_status docx_body(const zip_member *zm, const style_map *sm, ingest_doc *d, char **first_heading)
{
    xr *r;
    CAIRN_TRY(xr_open(&r, zm->data, zm->len, zm->name));
    tb p;
    tb_init(&p);
    tbl t;
    tbl_init(&t);
    int heading = -1, list = -1;
    bool in_t = false;
    cairn_status st;
    xr_kind k;
    while ((st = xr_next(r, &k)) == CAIRN_OK && k != XR_END) {
        if (k == XR_TEXT) {
            if (in_t)
                st = cairn_buf_puts(&p.b, xr_text(r)), p.space = false;
        } else if (k == XR_START) {
            const char *n = xr_name(r);
            bool empty = xr_empty(r);
            if (is(n, "p")) {
                tb_reset(&p);
                heading = list = -1;
            } else if (is(n, "pStyle")) {
                const char *v = xr_attr(r, "val");
                if (v) {
                    heading = style_level(sm, v);
                    if (!strcasecmp(v, "ListParagraph") && list < 0)
                        list = 0;
                }
            } else if (is(n, "outlineLvl")) {
                const char *v = xr_attr(r, "val");
                int l = v ? atoi(v) : 9;
                if (l >= 0 && l < 9)
                    heading = l + 1 > 6 ? 6 : l + 1;
            } else if (is(n, "numPr")) {
                if (list < 0)
                    list = 0;
            } else if (is(n, "ilvl")) {
                const char *v = xr_attr(r, "val");
                int l = v ? atoi(v) : 0;
                list = l >= 0 && l < 9 ? l : 0;
            } else if (is(n, "t")) {
                in_t = !empty;
            } else if (is(n, "tab") || is(n, "br") || is(n, "cr")) {
                /* w:tab inside w:tabs (pPr) is a tab stop, not text: harmless as a space */
                st = tb_space(&p);
            } else if (is(n, "noBreakHyphen")) {
                st = cairn_buf_putc(&p.b, '-');
            } else if (is(n, "tbl")) {
                t.depth++;
            } else if (is(n, "tc") && t.depth == 1) {
                tb_reset(&t.cell);
                t.in_cell = true;
            }
        } else if (k == XR_CLOSE) {
            const char *n = xr_name(r);
            if (is(n, "t")) {
                in_t = false;
            } else if (is(n, "p")) {
                block_kind kind = heading > 0 ? BLOCK_HEADING : list >= 0 ? BLOCK_LIST_ITEM : BLOCK_PARAGRAPH;
                int level = heading > 0 ? heading : list >= 0 ? list + 1 : 0;
                if (kind == BLOCK_HEADING && !*first_heading && p.b.len && t.depth == 0) {
                    const char *s;
                    size_t sn;
                    tb_get(&p, &s, &sn);
                    if (sn && !(*first_heading = cairn_strndup(s, CAIRN_MIN(sn, (size_t)512))))
                        st = cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
                }
                if (st == CAIRN_OK)
                    st = para_end(&p, &t, d, kind, level, 0);
            } else if (is(n, "tc") && t.depth == 1) {
                st = tbl_cell_end(&t);
            } else if (is(n, "tr") && t.depth == 1) {
                st = tbl_row_end(&t, d, 0);
            } else if (is(n, "tbl")) {
                if (t.depth > 0)
                    t.depth--;
            }
        }
        if (st != CAIRN_OK)
            break;
    }
    tbl_free(&t);
    cairn_buf_free(&p.b);
    xr_close(r);
    return st;
}

/* ---- pptx ---- */
static cairn_status pptx_slide(const zip_member *zm, int page, ingest_doc *d, char **first_title)
{
    xr *r;
    CAIRN_TRY(xr_open(&r, zm->data, zm->len, zm->name));
    tb p;
    tb_init(&p);
    tbl t;
    tbl_init(&t);
    bool title_shape = false, in_t = false;
    int sp_depth = -1;
    cairn_status st;
    xr_kind k;
    while ((st = xr_next(r, &k)) == CAIRN_OK && k != XR_END) {
        if (k == XR_TEXT) {
            if (in_t) {
                st = cairn_buf_puts(&p.b, xr_text(r));
                p.space = false;
            }
        } else if (k == XR_START) {
            const char *n = xr_name(r);
            if (is(n, "sp") && !xr_empty(r)) {
                title_shape = false;
                sp_depth = xr_depth(r);
            } else if (is(n, "ph")) {
                const char *ty = xr_attr(r, "type");
                if (ty && (is(ty, "title") || is(ty, "ctrTitle")))
                    title_shape = true;
            } else if (is(n, "p")) {
                tb_reset(&p);
            } else if (is(n, "t")) {
                in_t = !xr_empty(r);
            } else if (is(n, "br") || is(n, "tab")) {
                st = tb_space(&p);
            } else if (is(n, "tbl")) {
                t.depth++;
            } else if (is(n, "tc") && t.depth == 1) {
                tb_reset(&t.cell);
                t.in_cell = true;
            }
        } else if (k == XR_CLOSE) {
            const char *n = xr_name(r);
            if (is(n, "t")) {
                in_t = false;
            } else if (is(n, "p")) {
                bool h = title_shape && t.depth == 0;
                if (h && !*first_title && p.b.len) {
                    const char *s;
                    size_t sn;
                    tb_get(&p, &s, &sn);
                    if (sn && !(*first_title = cairn_strndup(s, CAIRN_MIN(sn, (size_t)512))))
                        st = cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
                }
                if (st == CAIRN_OK)
                    st = para_end(&p, &t, d, h ? BLOCK_HEADING : BLOCK_PARAGRAPH, h ? 1 : 0, page);
            } else if (is(n, "sp") && xr_depth(r) == sp_depth) {
                title_shape = false;
                sp_depth = -1;
            } else if (is(n, "tc") && t.depth == 1) {
                st = tbl_cell_end(&t);
            } else if (is(n, "tr") && t.depth == 1) {
                st = tbl_row_end(&t, d, page);
            } else if (is(n, "tbl") && t.depth > 0) {
                t.depth--;
            }
        }
        if (st != CAIRN_OK)
            break;
    }
    tbl_free(&t);
    cairn_buf_free(&p.b);
    xr_close(r);
    return st;
}

/* Slide parts in presentation order; falls back to slideN.xml numbering. */
static int cmp_slide_names(const void *a, const void *b)
{
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    long nx = strtol(x + strcspn(x, "0123456789"), NULL, 10), ny = strtol(y + strcspn(y, "0123456789"), NULL, 10);
    return nx < ny ? -1 : nx > ny;
}

static cairn_status pptx_order(const zip_members *z, const char ***out, size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    const char **names = cairn_calloc(z->n + 1, sizeof *names);
    if (!names)
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
    size_t n = 0;
    rels rl;
    CAIRN_TRY(read_rels(z, "ppt/presentation.xml", &rl));
    const zip_member *pm = zip_find(z, "ppt/presentation.xml");
    cairn_status st = CAIRN_OK;
    if (pm && rl.n) {
        xr *r;
        st = xr_open(&r, pm->data, pm->len, pm->name);
        xr_kind k;
        while (st == CAIRN_OK && (st = xr_next(r, &k)) == CAIRN_OK && k != XR_END) {
            if (k == XR_START && is(xr_name(r), "sldId")) {
                const char *t = rels_get(&rl, xr_attr_ns(r, "id", "relationships"));
                const zip_member *sm = t ? zip_find(z, t) : NULL;
                if (sm && n < z->n)
                    names[n++] = sm->name;
            }
        }
        if (st == CAIRN_OK || st == CAIRN_ERR_CORRUPT)
            xr_close(r);
        if (st == CAIRN_ERR_CORRUPT) {
            cairn_clear_error();
            st = CAIRN_OK;
        }
    }
    rels_free(&rl);
    if (st == CAIRN_OK && n == 0) {
        for (size_t i = 0; i < z->n; i++) {
            const char *nm = z->m[i].name;
            if (!strncmp(nm, "ppt/slides/slide", 16) && strstr(nm, ".xml") && !strchr(nm + 11, '_'))
                names[n++] = nm;
        }
        qsort(names, n, sizeof *names, cmp_slide_names);
    }
    if (st != CAIRN_OK) {
        cairn_free(names);
        return st;
    }
    *out = names;
    *n_out = n;
    return CAIRN_OK;
}

/* ---- spreadsheets (xlsx, ods): one document per sheet ---- */
typedef struct sheet {
    const char *path;
    ingest_doc d;
    char **header;          /* column names (first non-empty row) */
    size_t n_header;
    bool have_header;
    size_t rows;
    char **cells;           /* the current row by column index */
    size_t n_cells;
    ingest_emit_fn emit;
    void *ctx;
    const meta_list *core;
    size_t docs;
} sheet;

static cairn_status sheet_set_cell(sheet *s, size_t col, const char *v, size_t vn)
{
    if (col >= MAX_COLS)
        return CAIRN_OK;
    pc_trim(&v, &vn);
    if (!vn)
        return CAIRN_OK;
    if (col >= s->n_cells) {
        size_t nc = col + 1 > s->n_cells * 2 ? col + 1 : s->n_cells * 2;
        char **a = cairn_reallocarray(s->cells, nc, sizeof *a);
        if (!a)
            return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
        for (size_t i = s->n_cells; i < nc; i++)
            a[i] = NULL;
        s->cells = a;
        s->n_cells = nc;
    }
    cairn_free(s->cells[col]);
    if (!(s->cells[col] = cairn_strndup(v, vn)))
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
    return CAIRN_OK;
}

static void sheet_clear_row(sheet *s)
{
    for (size_t i = 0; i < s->n_cells; i++) {
        cairn_free(s->cells[i]);
        s->cells[i] = NULL;
    }
}

/* The current row: the header, or a record "name: value | ...". */
static cairn_status sheet_row_end(sheet *s, size_t repeat)
{
    size_t last = 0;
    bool any = false;
    for (size_t i = 0; i < s->n_cells; i++)
        if (s->cells[i]) {
            any = true;
            last = i + 1;
        }
    if (!any)
        return CAIRN_OK;
    cairn_status st = CAIRN_OK;
    if (!s->have_header) {
        s->have_header = true;
        size_t nh = CAIRN_MIN(last, (size_t)MAX_HEADER_COLS);
        s->header = cairn_calloc(nh ? nh : 1, sizeof *s->header);
        if (!s->header)
            return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
        s->n_header = nh;
        for (size_t i = 0; i < s->n_header; i++) {
            char nm[32];
            const char *h = s->cells[i];
            if (!h) {
                snprintf(nm, sizeof nm, "column_%zu", i + 1);
                h = nm;
            }
            if (!(s->header[i] = cairn_strdup(h)))
                return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
        }
        sheet_clear_row(s);
        return CAIRN_OK;
    }
    cairn_buf b;
    cairn_buf_init(&b, 0);
    for (size_t i = 0; st == CAIRN_OK && i < last; i++) {
        if (!s->cells[i])
            continue;
        if (b.len)
            st = cairn_buf_puts(&b, " | ");
        if (st == CAIRN_OK) {
            if (i < s->n_header)
                st = cairn_buf_printf(&b, "%s: %s", s->header[i], s->cells[i]);
            else
                st = cairn_buf_printf(&b, "column_%zu: %s", i + 1, s->cells[i]);
        }
    }
    for (size_t k = 0; st == CAIRN_OK && k < repeat && s->rows < MAX_SHEET_ROWS; k++) {
        st = ingest_doc_add_block(&s->d, BLOCK_TABLE_ROW, 0, 0, b.data, b.len);
        s->rows++;
    }
    cairn_buf_free(&b);
    sheet_clear_row(s);
    return st;
}

static void sheet_start(sheet *s, const char *path, const meta_list *core, ingest_emit_fn emit, void *ctx)
{
    memset(s, 0, sizeof *s);
    s->path = path;
    s->core = core;
    s->emit = emit;
    s->ctx = ctx;
}

static void sheet_reset(sheet *s)
{
    ingest_doc_free(&s->d);
    for (size_t i = 0; i < s->n_header; i++)
        cairn_free(s->header[i]);
    cairn_free(s->header);
    s->header = NULL;
    s->n_header = 0;
    s->have_header = false;
    s->rows = 0;
    sheet_clear_row(s);
}

static void sheet_free(sheet *s)
{
    sheet_reset(s);
    cairn_free(s->cells);
    s->cells = NULL;
    s->n_cells = 0;
}

static cairn_status copy_meta(meta_list *dst, const meta_list *src)
{
    for (size_t i = 0; src && i < src->n; i++) {
        const meta_value *v = &src->e[i].v;
        const char *k = src->e[i].key;
        switch (v->type) {
        case META_STRING: CAIRN_TRY(meta_set_string(dst, k, v->s)); break;
        case META_NUMBER: CAIRN_TRY(meta_set_number(dst, k, v->n)); break;
        case META_DATE: CAIRN_TRY(meta_set_date(dst, k, v->n)); break;
        case META_BOOL: CAIRN_TRY(meta_set_bool(dst, k, v->n != 0)); break;
        case META_LIST: CAIRN_TRY(meta_set_list(dst, k, (const char *const *)v->items, v->n_items)); break;
        }
    }
    return CAIRN_OK;
}

/* Begin a sheet's document; the previous one must be emitted. */
static cairn_status sheet_begin(sheet *s, const char *type, const char *name)
{
    sheet_reset(s);
    ingest_doc_init(&s->d);
    s->d.type = type;
    char key[300];
    snprintf(key, sizeof key, "%s", name && *name ? name : "sheet");
    CAIRN_TRY(copy_meta(&s->d.meta, s->core));
    CAIRN_TRY(meta_set_string(&s->d.meta, "sheet", key));
    if (!(s->d.key = cairn_strdup(key)) || !(s->d.title = cairn_strdup(key)))
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
    return CAIRN_OK;
}

static cairn_status sheet_emit(sheet *s)
{
    CAIRN_TRY(sheet_row_end(s, 1));
    if (s->have_header) {
        CAIRN_TRY(meta_set_list(&s->d.meta, "columns", (const char *const *)s->header,
                                CAIRN_MIN(s->n_header, (size_t)PC_MAX_LIST_ITEMS)));
        /* a sheet of only a header row still says what it holds */
        if (s->rows == 0) {
            cairn_buf b;
            cairn_buf_init(&b, 0);
            cairn_status st = CAIRN_OK;
            for (size_t i = 0; st == CAIRN_OK && i < s->n_header; i++)
                st = cairn_buf_printf(&b, "%s%s", i ? " | " : "", s->header[i]);
            if (st == CAIRN_OK)
                st = ingest_doc_add_block(&s->d, BLOCK_TABLE_ROW, 0, 0, b.data, b.len);
            cairn_buf_free(&b);
            CAIRN_TRY(st);
        }
    }
    CAIRN_TRY(meta_set_number(&s->d.meta, "rows", (double)s->rows));
    if (!s->have_header)
        return CAIRN_OK; /* an empty sheet: no document */
    s->docs++;
    return s->emit(s->ctx, &s->d);
}

/* "BC12" -> column 54 (0-based); SIZE_MAX when not a reference. */
static size_t col_of_ref(const char *r)
{
    size_t c = 0;
    int k = 0;
    while (*r >= 'A' && *r <= 'Z' && k < 4) {
        c = c * 26 + (size_t)(*r - 'A' + 1);
        r++;
        k++;
    }
    return k ? c - 1 : SIZE_MAX;
}

/* Excel date serial (1900 system) -> ISO date text. */
static void serial_to_date(double v, char out[32])
{
    double secs = (v - 25569.0) * 86400.0;
    meta_format_date(secs, out);
}

static bool date_format_code(const char *f)
{
    bool q = false;
    for (const char *p = f; *p; p++) {
        if (*p == '"')
            q = !q;
        else if (*p == '[') {
            const char *e = strchr(p, ']');
            if (!e)
                break;
            p = e;
        } else if (*p == '\\' && p[1])
            p++;
        else if (!q && strchr("dDyYmMhH", *p))
            return true;
    }
    return false;
}

typedef struct xlsx_strings {
    char **s;
    size_t n;
} xlsx_strings;

static void strings_free(xlsx_strings *x)
{
    for (size_t i = 0; i < x->n; i++)
        cairn_free(x->s[i]);
    cairn_free(x->s);
    memset(x, 0, sizeof *x);
}

static cairn_status read_shared_strings(const zip_member *zm, xlsx_strings *out)
{
    memset(out, 0, sizeof *out);
    if (!zm)
        return CAIRN_OK;
    xr *r;
    CAIRN_TRY(xr_open(&r, zm->data, zm->len, zm->name));
    cairn_buf b;
    cairn_buf_init(&b, 0);
    size_t cap = 0;
    bool in_t = false;
    int skip = 0;   /* inside rPh (phonetic runs) */
    cairn_status st;
    xr_kind k;
    while ((st = xr_next(r, &k)) == CAIRN_OK && k != XR_END) {
        const char *n = k == XR_TEXT ? "" : xr_name(r);
        if (k == XR_START && is(n, "si")) {
            cairn_buf_reset(&b);
        } else if (k == XR_START && is(n, "rPh") && !xr_empty(r)) {
            skip++;
        } else if (k == XR_CLOSE && is(n, "rPh")) {
            skip--;
        } else if (k == XR_START && is(n, "t")) {
            in_t = !xr_empty(r);
        } else if (k == XR_CLOSE && is(n, "t")) {
            in_t = false;
        } else if (k == XR_TEXT && in_t && !skip) {
            st = cairn_buf_puts(&b, xr_text(r));
        } else if (k == XR_CLOSE && is(n, "si")) {
            if (out->n == cap) {
                size_t nc = cap ? cap * 2 : 64;
                char **a = cairn_reallocarray(out->s, nc, sizeof *a);
                if (!a) {
                    st = cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
                    break;
                }
                out->s = a;
                cap = nc;
            }
            if (!(out->s[out->n] = cairn_strndup(b.data ? b.data : "", b.len))) {
                st = cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
                break;
            }
            out->n++;
        }
        if (st != CAIRN_OK)
            break;
    }
    cairn_buf_free(&b);
    xr_close(r);
    if (st != CAIRN_OK)
        strings_free(out);
    return st;
}

/* styles.xml: which cell style indexes (cellXfs) are date formats. */
static cairn_status read_date_styles(const zip_member *zm, bool **out, size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    if (!zm)
        return CAIRN_OK;
    xr *r;
    CAIRN_TRY(xr_open(&r, zm->data, zm->len, zm->name));
    int custom_ids[512];
    size_t n_custom = 0;
    bool *dates = cairn_calloc(MAX_STYLES, sizeof *dates);
    if (!dates) {
        xr_close(r);
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
    }
    size_t n = 0;
    bool in_xfs = false;
    cairn_status st;
    xr_kind k;
    while ((st = xr_next(r, &k)) == CAIRN_OK && k != XR_END) {
        if (k == XR_TEXT)
            continue;
        const char *nm = xr_name(r);
        if (k == XR_START && is(nm, "numFmt")) {
            const char *id = xr_attr(r, "numFmtId"), *code = xr_attr(r, "formatCode");
            if (id && code && date_format_code(code) && n_custom < CAIRN_ARRAY_LEN(custom_ids))
                custom_ids[n_custom++] = atoi(id);
        } else if (is(nm, "cellXfs")) {
            in_xfs = k == XR_START && !xr_empty(r);
        } else if (k == XR_START && in_xfs && is(nm, "xf") && n < MAX_STYLES) {
            const char *id = xr_attr(r, "numFmtId");
            int f = id ? atoi(id) : 0;
            bool d = (f >= 14 && f <= 22) || (f >= 45 && f <= 47);
            for (size_t i = 0; i < n_custom && !d; i++)
                d = custom_ids[i] == f;
            dates[n++] = d;
        }
    }
    xr_close(r);
    if (st == CAIRN_ERR_CORRUPT) {
        cairn_clear_error();
        st = CAIRN_OK;
    }
    if (st != CAIRN_OK) {
        cairn_free(dates);
        return st;
    }
    *out = dates;
    *n_out = n;
    return CAIRN_OK;
}

static cairn_status xlsx_sheet(sheet *s, const zip_member *zm, const xlsx_strings *ss, const bool *dates,
                               size_t n_dates)
{
    xr *r;
    CAIRN_TRY(xr_open(&r, zm->data, zm->len, zm->name));
    cairn_buf v;
    cairn_buf_init(&v, 0);
    char type[16] = "";
    size_t col = 0, next_col = 0;
    long style = -1;
    bool in_v = false, in_is_t = false, in_c = false;
    cairn_status st;
    xr_kind k;
    while ((st = xr_next(r, &k)) == CAIRN_OK && k != XR_END) {
        if (k == XR_TEXT) {
            if (in_v || in_is_t)
                st = cairn_buf_puts(&v, xr_text(r));
            if (st != CAIRN_OK)
                break;
            continue;
        }
        const char *n = xr_name(r);
        if (k == XR_START && is(n, "row")) {
            sheet_clear_row(s);
            next_col = 0;
        } else if (k == XR_CLOSE && is(n, "row")) {
            st = sheet_row_end(s, 1);
        } else if (k == XR_START && is(n, "c")) {
            const char *ref = xr_attr(r, "r"), *t = xr_attr(r, "t"), *sa = xr_attr(r, "s");
            size_t c = ref ? col_of_ref(ref) : SIZE_MAX;
            col = c == SIZE_MAX ? next_col : c;
            next_col = col + 1;
            snprintf(type, sizeof type, "%s", t ? t : "n");
            style = sa ? atol(sa) : -1;
            cairn_buf_reset(&v);
            in_c = !xr_empty(r);
        } else if (k == XR_START && in_c && is(n, "v")) {
            in_v = !xr_empty(r);
        } else if (k == XR_CLOSE && is(n, "v")) {
            in_v = false;
        } else if (k == XR_START && in_c && is(n, "t")) {
            in_is_t = !xr_empty(r);   /* inline string <is><t> */
        } else if (k == XR_CLOSE && is(n, "t")) {
            in_is_t = false;
        } else if (k == XR_CLOSE && is(n, "c")) {
            in_c = false;
            const char *val = v.data ? v.data : "";
            char tmp[64];
            if (v.len && cairn_buf_putc(&v, 0) == CAIRN_OK) {
                val = v.data;
                if (is(type, "s")) {
                    char *e;
                    unsigned long i = strtoul(val, &e, 10);
                    val = *e == 0 && i < ss->n ? ss->s[i] : "";
                } else if (is(type, "b")) {
                    val = is(val, "1") ? "TRUE" : "FALSE";
                } else if (is(type, "n") && style >= 0 && (size_t)style < n_dates && dates[style]) {
                    char *e;
                    double d = strtod(val, &e);
                    if (*e == 0 && isfinite(d) && d > 0 && d < 2958466) {
                        serial_to_date(d, tmp);
                        val = tmp;
                    }
                }
                st = sheet_set_cell(s, col, val, strlen(val));
            }
        }
        if (st != CAIRN_OK)
            break;
    }
    cairn_buf_free(&v);
    xr_close(r);
    return st;
}

static cairn_status xlsx(const zip_members *z, const char *path, const meta_list *core, ingest_emit_fn emit,
                         void *ctx)
{
    const zip_member *wb = zip_find(z, "xl/workbook.xml");
    rels rl;
    CAIRN_TRY(read_rels(z, "xl/workbook.xml", &rl));
    xlsx_strings ss;
    cairn_status st = read_shared_strings(zip_find(z, "xl/sharedStrings.xml"), &ss);
    bool *dates = NULL;
    size_t n_dates = 0;
    if (st == CAIRN_OK)
        st = read_date_styles(zip_find(z, "xl/styles.xml"), &dates, &n_dates);
    sheet s;
    sheet_start(&s, path, core, emit, ctx);
    xr *r = NULL;
    if (st == CAIRN_OK)
        st = xr_open(&r, wb->data, wb->len, wb->name);
    xr_kind k;
    size_t idx = 0;
    while (st == CAIRN_OK && (st = xr_next(r, &k)) == CAIRN_OK && k != XR_END) {
        if (k != XR_START || !is(xr_name(r), "sheet"))
            continue;
        idx++;
        const char *nm = xr_attr(r, "name");
        char name[256];
        snprintf(name, sizeof name, "%s", nm ? nm : "");
        if (!name[0])
            snprintf(name, sizeof name, "sheet%zu", idx);
        const char *t = rels_get(&rl, xr_attr_ns(r, "id", "relationships"));
        const zip_member *sm = t ? zip_find(z, t) : NULL;
        if (!sm)
            continue;
        st = sheet_begin(&s, "xlsx", name);
        if (st == CAIRN_OK)
            st = xlsx_sheet(&s, sm, &ss, dates, n_dates);
        if (st == CAIRN_OK)
            st = sheet_emit(&s);
    }
    xr_close(r);
    if (st == CAIRN_OK && s.docs == 0)
        st = cairn_fail(CAIRN_ERR_UNSUPPORTED, "spreadsheet (xlsx) without any non-empty sheet");
    sheet_free(&s);
    cairn_free(dates);
    strings_free(&ss);
    rels_free(&rl);
    return st;
}

/* ---- OpenDocument ---- */
typedef enum { ODF_TEXT, ODF_PRESENTATION, ODF_SPREADSHEET } odf_kind;

static cairn_status odf_content(const zip_member *zm, odf_kind kind, ingest_doc *d, sheet *sh, char **first_heading,
                                int *pages)
{
    xr *r;
    CAIRN_TRY(xr_open(&r, zm->data, zm->len, zm->name));
    tb p;
    tb_init(&p);
    tbl t;
    tbl_init(&t);
    int list_depth = 0, heading = 0, page = 0, skip_depth = -1, title_frame = -1;
    int p_depth = 0;     /* nested text:p/text:h (in frames, notes) */
    size_t row_repeat = 1, col = 0, col_repeat = 1;
    bool in_cell = false;
    cairn_status st;
    xr_kind k;
    while ((st = xr_next(r, &k)) == CAIRN_OK && k != XR_END) {
        if (skip_depth >= 0) {
            if (k == XR_CLOSE && xr_depth(r) == skip_depth)
                skip_depth = -1;
            continue;
        }
        if (k == XR_TEXT) {
            if (p_depth > 0) {
                st = cairn_buf_puts(&p.b, xr_text(r));
                p.space = false;
            }
            if (st != CAIRN_OK)
                break;
            continue;
        }
        const char *n = xr_name(r);
        bool empty = k == XR_START && xr_empty(r);
        if (k == XR_START) {
            if ((is(n, "tracked-changes") || is(n, "annotation") || is(n, "note-citation") || is(n, "notes") ||
                 is(n, "table-header-columns") || is(n, "forms") || is(n, "sequence-decls")) && !empty) {
                skip_depth = xr_depth(r);
            } else if ((is(n, "p") || is(n, "h")) && !empty) {
                if (p_depth == 0) {
                    tb_reset(&p);
                    heading = 0;
                    if (is(n, "h")) {
                        const char *lv = xr_attr(r, "outline-level");
                        heading = lv ? atoi(lv) : 1;
                        if (heading < 1 || heading > 6)
                            heading = heading < 1 ? 1 : 6;
                    }
                } else {
                    st = tb_space(&p);
                }
                p_depth++;
            } else if (is(n, "s")) {
                st = tb_space(&p);
            } else if (is(n, "tab") || is(n, "line-break")) {
                st = tb_space(&p);
            } else if (is(n, "list") && !empty) {
                list_depth++;
            } else if (is(n, "page") && kind == ODF_PRESENTATION) {
                page++;
            } else if (is(n, "frame") && kind == ODF_PRESENTATION) {
                const char *c = xr_attr(r, "class");
                if (c && (is(c, "title") || is(c, "subtitle")) && !empty)
                    title_frame = xr_depth(r);
            } else if (is(n, "table") && !empty) {
                if (kind == ODF_SPREADSHEET) {
                    if (t.depth == 0) {
                        const char *nm = xr_attr(r, "name");
                        char name[256];
                        snprintf(name, sizeof name, "%s", nm ? nm : "sheet");
                        st = sheet_begin(sh, "ods", name);
                    }
                }
                t.depth++;
            } else if (is(n, "table-row") && t.depth == 1) {
                const char *rep = xr_attr(r, "number-rows-repeated");
                row_repeat = rep ? strtoul(rep, NULL, 10) : 1;
                if (row_repeat < 1)
                    row_repeat = 1;
                col = 0;
                if (kind == ODF_SPREADSHEET)
                    sheet_clear_row(sh);
            } else if ((is(n, "table-cell") || is(n, "covered-table-cell")) && t.depth == 1) {
                const char *rep = xr_attr(r, "number-columns-repeated");
                col_repeat = rep ? strtoul(rep, NULL, 10) : 1;
                if (col_repeat < 1)
                    col_repeat = 1;
                tb_reset(&t.cell);
                in_cell = true;
                if (kind == ODF_SPREADSHEET) {
                    /* typed values: a date or boolean shows as its value */
                    const char *dv = xr_attr(r, "date-value");
                    if (dv)
                        st = tb_add(&t.cell, dv);
                }
                if (empty) {
                    /* <table:table-cell office:date-value="..."/>: the value is the content */
                    const char *cs;
                    size_t csn;
                    tb_get(&t.cell, &cs, &csn);
                    for (size_t c = 0; st == CAIRN_OK && kind == ODF_SPREADSHEET && csn && c < col_repeat &&
                                       col + c < MAX_COLS; c++)
                        st = sheet_set_cell(sh, col + c, cs, csn);
                    tb_reset(&t.cell);
                    in_cell = false;
                    col += col_repeat;
                }
            }
        } else if (k == XR_CLOSE) {
            if (is(n, "p") || is(n, "h")) {
                if (p_depth > 0 && --p_depth == 0) {
                    bool title = title_frame >= 0;
                    block_kind bk = heading ? BLOCK_HEADING : title ? BLOCK_HEADING : list_depth ? BLOCK_LIST_ITEM
                                                                                               : BLOCK_PARAGRAPH;
                    int lvl = heading ? heading : title ? 1 : list_depth;
                    if (bk == BLOCK_HEADING && !*first_heading && p.b.len && t.depth == 0) {
                        const char *s;
                        size_t sn;
                        tb_get(&p, &s, &sn);
                        if (sn && !(*first_heading = cairn_strndup(s, CAIRN_MIN(sn, (size_t)512))))
                            st = cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
                    }
                    if (st == CAIRN_OK) {
                        if (kind == ODF_SPREADSHEET && t.depth == 0)
                            tb_reset(&p);
                        else
                            st = para_end(&p, &t, d, bk, lvl, page);
                    }
                }
            } else if (is(n, "list")) {
                if (list_depth > 0)
                    list_depth--;
            } else if (is(n, "frame") && xr_depth(r) == title_frame) {
                title_frame = -1;
            } else if ((is(n, "table-cell") || is(n, "covered-table-cell")) && t.depth == 1 && in_cell) {
                in_cell = false;
                if (kind == ODF_SPREADSHEET) {
                    const char *s;
                    size_t sn;
                    tb_get(&t.cell, &s, &sn);
                    if (sn)
                        for (size_t c = 0; st == CAIRN_OK && c < col_repeat && col + c < MAX_COLS; c++)
                            st = sheet_set_cell(sh, col + c, s, sn);
                    tb_reset(&t.cell);
                } else {
                    st = tbl_cell_end(&t);
                }
                col += col_repeat;
            } else if (is(n, "table-row") && t.depth == 1) {
                if (kind == ODF_SPREADSHEET)
                    st = sheet_row_end(sh, CAIRN_MIN(row_repeat, (size_t)MAX_ROW_REPEAT));
                else
                    st = tbl_row_end(&t, d, page);
            } else if (is(n, "table")) {
                if (t.depth > 0 && --t.depth == 0 && kind == ODF_SPREADSHEET)
                    st = sheet_emit(sh);
            }
        }
        if (st != CAIRN_OK)
            break;
    }
    *pages = page;
    tbl_free(&t);
    cairn_buf_free(&p.b);
    xr_close(r);
    return st;
}

/* ---- EPUB ---- */
typedef struct chapter_ctx {
    ingest_doc *d;
    int chapter;
} chapter_ctx;

static cairn_status take_chapter(void *ctx, ingest_doc *doc)
{
    chapter_ctx *c = ctx;
    for (size_t i = 0; i < doc->n_blocks; i++) {
        const ingest_block *b = &doc->blocks[i];
        CAIRN_TRY(ingest_doc_add_block(c->d, b->kind, b->level, 0, b->text, b->len));
    }
    return CAIRN_OK;
}

static cairn_status epub(const zip_members *z, const char *path, const ingest_options *opt, ingest_doc *d)
{
    const zip_member *cm = zip_find(z, "META-INF/container.xml");
    if (!cm)
        return cairn_fail(CAIRN_ERR_CORRUPT, "damaged EPUB: no META-INF/container.xml");
    char opf[1024] = "";
    xr *r;
    CAIRN_TRY(xr_open(&r, cm->data, cm->len, cm->name));
    cairn_status st;
    xr_kind k;
    while ((st = xr_next(r, &k)) == CAIRN_OK && k != XR_END) {
        if (k == XR_START && is(xr_name(r), "rootfile")) {
            const char *fp = xr_attr(r, "full-path");
            if (fp) {
                container_resolve("", fp, opf, sizeof opf);
                break;
            }
        }
    }
    xr_close(r);
    CAIRN_TRY(st);
    const zip_member *om = opf[0] ? zip_find(z, opf) : NULL;
    if (!om)
        return cairn_fail(CAIRN_ERR_CORRUPT, "damaged EPUB: the package file %s is missing", opf[0] ? opf : "(none)");
    /* the package: metadata, manifest (id -> href), spine (idrefs) */
    char **ids = NULL, **hrefs = NULL, **spine = NULL;
    size_t n_items = 0, cap_items = 0, n_spine = 0, cap_spine = 0;
    char *authors[PC_MAX_LIST_ITEMS];
    size_t n_authors = 0;
    CAIRN_TRY(xr_open(&r, om->data, om->len, om->name));
    char field[64] = "";
    cairn_buf val;
    cairn_buf_init(&val, 0);
    bool in_meta = false, in_field = false;
    while ((st = xr_next(r, &k)) == CAIRN_OK && k != XR_END) {
        if (k == XR_TEXT) {
            if (in_field)
                st = cairn_buf_puts(&val, xr_text(r));
        } else if (k == XR_START) {
            const char *n = xr_name(r);
            if (is(n, "metadata")) {
                in_meta = !xr_empty(r);
            } else if (in_meta && strstr(xr_ns(r), "purl.org/dc") && !xr_empty(r)) {
                snprintf(field, sizeof field, "%s", n);
                cairn_buf_reset(&val);
                in_field = true;
            } else if (is(n, "item")) {
                const char *id = xr_attr(r, "id"), *href = xr_attr(r, "href");
                if (id && href && n_items < ZIP_MAX_ENTRIES) {
                    if (n_items == cap_items) {
                        size_t nc = cap_items ? cap_items * 2 : 32;
                        char **a = cairn_reallocarray(ids, nc, sizeof *a);
                        if (a)
                            ids = a;
                        char **b = a ? cairn_reallocarray(hrefs, nc, sizeof *b) : NULL;
                        if (b)
                            hrefs = b;
                        if (!a || !b) {
                            st = cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
                            break;
                        }
                        cap_items = nc;
                    }
                    char res[1024];
                    container_resolve(opf, href, res, sizeof res);
                    ids[n_items] = cairn_strdup(id);
                    hrefs[n_items] = cairn_strdup(res);
                    n_items++;
                    if (!ids[n_items - 1] || !hrefs[n_items - 1])
                        st = cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
                }
            } else if (is(n, "itemref")) {
                const char *idref = xr_attr(r, "idref");
                if (idref && n_spine < ZIP_MAX_ENTRIES) {
                    if (n_spine == cap_spine) {
                        size_t nc = cap_spine ? cap_spine * 2 : 32;
                        char **a = cairn_reallocarray(spine, nc, sizeof *a);
                        if (!a) {
                            st = cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
                            break;
                        }
                        spine = a;
                        cap_spine = nc;
                    }
                    if (!(spine[n_spine++] = cairn_strdup(idref)))
                        st = cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
                }
            }
        } else if (k == XR_CLOSE) {
            const char *n = xr_name(r);
            if (is(n, "metadata")) {
                in_meta = false;
            } else if (in_field && is(n, field)) {
                in_field = false;
                const char *v = val.data ? val.data : "";
                size_t vn = val.len;
                pc_trim(&v, &vn);
                char *s = vn ? cairn_strndup(v, CAIRN_MIN(vn, (size_t)4096)) : NULL;
                if (vn && !s) {
                    st = cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
                } else if (s) {
                    if (is(field, "title") && !d->title) {
                        d->title = s;
                        st = meta_set_string(&d->meta, "title", s);
                        s = NULL;
                    } else if (is(field, "creator") && n_authors < PC_MAX_LIST_ITEMS) {
                        authors[n_authors++] = s;
                        s = NULL;
                    } else if (is(field, "language") || is(field, "publisher") || is(field, "subject") ||
                               is(field, "description") || is(field, "rights")) {
                        if (!meta_get(&d->meta, field))
                            st = meta_set_string(&d->meta, field, s);
                    } else if (is(field, "date")) {
                        double tt;
                        if (meta_parse_date(s, &tt))
                            st = meta_set_date(&d->meta, "date", tt);
                        else
                            st = meta_set_string(&d->meta, "date", s);
                    }
                    cairn_free(s);
                }
            }
        }
        if (st != CAIRN_OK)
            break;
    }
    xr_close(r);
    cairn_buf_free(&val);
    if (st == CAIRN_OK && n_authors == 1)
        st = meta_set_string(&d->meta, "author", authors[0]);
    else if (st == CAIRN_OK && n_authors > 1)
        st = meta_set_list(&d->meta, "author", (const char *const *)authors, n_authors);
    for (size_t i = 0; i < n_authors; i++)
        cairn_free(authors[i]);
    /* chapters in spine order, each through the HTML parser */
    chapter_ctx cc = {d, 0};
    size_t chapters = 0;
    for (size_t i = 0; st == CAIRN_OK && i < n_spine; i++) {
        const char *href = NULL;
        for (size_t j = 0; j < n_items && !href; j++)
            if (is(ids[j], spine[i]))
                href = hrefs[j];
        const zip_member *ch = href ? zip_find(z, href) : NULL;
        if (!ch)
            continue;
        cc.chapter = (int)++chapters;
        st = ingest_parser_html.parse(ch->name, ch->data, ch->len, opt, take_chapter, &cc);
    }
    if (st == CAIRN_OK)
        st = meta_set_number(&d->meta, "chapters", (double)chapters);
    for (size_t i = 0; i < n_items; i++) {
        cairn_free(ids[i]);
        cairn_free(hrefs[i]);
    }
    for (size_t i = 0; i < n_spine; i++)
        cairn_free(spine[i]);
    cairn_free(ids);
    cairn_free(hrefs);
    cairn_free(spine);
    (void)path;
    return st;
}

/* ---- dispatch ---- */
static bool want_member(void *ctx, const char *name)
{
    (void)ctx;
    size_t n = strlen(name);
    static const char *const sufs[] = {".xml", ".rels", ".opf", ".xhtml", ".html", ".htm"};
    if (!strcmp(name, "mimetype"))
        return true;
    /* media, fonts, thumbnails and embedded objects are never read */
    if (!strncmp(name, "word/media/", 11) || !strncmp(name, "ppt/media/", 10) || !strncmp(name, "xl/media/", 9))
        return false;
    for (size_t i = 0; i < CAIRN_ARRAY_LEN(sufs); i++) {
        size_t k = strlen(sufs[i]);
        if (n >= k && !strcasecmp(name + n - k, sufs[i]))
            return true;
    }
    return false;
}

static const char *base_name(const char *path)
{
    const char *b = strrchr(path, '/');
    return b ? b + 1 : path;
}

static cairn_status parse_office(const char *path, const char *data, size_t len, const ingest_options *opt,
                                 ingest_emit_fn emit, void *ctx)
{
    zip_members z;
    uint64_t cap = opt->max_file_bytes ? opt->max_file_bytes : (uint64_t)256 << 20;
    CAIRN_TRY(zip_read(data, len, cap, want_member, NULL, &z));
    const zip_member *mt = zip_find(&z, "mimetype");
    char mime[128] = "";
    if (mt)
        snprintf(mime, sizeof mime, "%.*s", (int)CAIRN_MIN(mt->len, (size_t)127), mt->data);
    for (size_t i = strlen(mime); i && pc_is_space((unsigned char)mime[i - 1]); i--)
        mime[i - 1] = 0;
    ingest_doc d;
    ingest_doc_init(&d);
    char *first_heading = NULL;
    cairn_status st = CAIRN_OK;
    bool emitted = false;
    const zip_member *m;
    if ((m = zip_find(&z, "word/document.xml"))) {
        d.type = "docx";
        style_map sm;
        st = read_styles(zip_find(&z, "word/styles.xml"), &sm);
        if (st == CAIRN_OK)
            st = read_core(zip_find(&z, "docProps/core.xml"), &d.meta, &d.title);
        if (st == CAIRN_OK)
            st = docx_body(m, &sm, &d, &first_heading);
        styles_free(&sm);
    } else if ((m = zip_find(&z, "ppt/presentation.xml"))) {
        d.type = "pptx";
        st = read_core(zip_find(&z, "docProps/core.xml"), &d.meta, &d.title);
        const char **slides = NULL;
        size_t ns = 0;
        if (st == CAIRN_OK)
            st = pptx_order(&z, &slides, &ns);
        for (size_t i = 0; st == CAIRN_OK && i < ns; i++)
            st = pptx_slide(zip_find(&z, slides[i]), (int)i + 1, &d, &first_heading);
        if (st == CAIRN_OK)
            st = meta_set_number(&d.meta, "slides", (double)ns);
        cairn_free(slides);
    } else if ((m = zip_find(&z, "xl/workbook.xml"))) {
        meta_list core = {0};
        char *t = NULL;
        st = read_core(zip_find(&z, "docProps/core.xml"), &core, &t);
        cairn_free(t);
        if (st == CAIRN_OK)
            st = xlsx(&z, path, &core, emit, ctx);
        meta_list_free(&core);
        emitted = true;
    } else if (!strncmp(mime, "application/vnd.oasis.opendocument.", 35) && (m = zip_find(&z, "content.xml"))) {
        const char *sub = mime + 35;
        odf_kind kind = !strncmp(sub, "presentation", 12) ? ODF_PRESENTATION
                        : !strncmp(sub, "spreadsheet", 11) ? ODF_SPREADSHEET
                                                           : ODF_TEXT;
        d.type = kind == ODF_PRESENTATION ? "odp" : kind == ODF_SPREADSHEET ? "ods" : "odt";
        meta_list core = {0};
        st = read_core(zip_find(&z, "meta.xml"), kind == ODF_SPREADSHEET ? &core : &d.meta, &d.title);
        sheet sh;
        sheet_start(&sh, path, &core, emit, ctx);
        int pages = 0;
        if (st == CAIRN_OK)
            st = odf_content(m, kind, &d, &sh, &first_heading, &pages);
        if (st == CAIRN_OK && kind == ODF_PRESENTATION)
            st = meta_set_number(&d.meta, "slides", pages);
        if (st == CAIRN_OK && kind == ODF_SPREADSHEET) {
            emitted = true;
            if (sh.docs == 0)
                st = cairn_fail(CAIRN_ERR_UNSUPPORTED, "spreadsheet (ods) without any non-empty sheet");
        }
        sheet_free(&sh);
        meta_list_free(&core);
    } else if (!strcmp(mime, "application/epub+zip") || zip_find(&z, "META-INF/container.xml")) {
        d.type = "epub";
        st = epub(&z, path, opt, &d);
    } else {
        st = cairn_fail(CAIRN_ERR_UNSUPPORTED, "zip archive: not supported (not a docx/pptx/xlsx/odt/odp/ods/epub)");
    }
    if (st == CAIRN_OK && !emitted) {
        if (!d.title && first_heading) {
            d.title = first_heading;
            first_heading = NULL;
        }
        if (!d.title && !(d.title = cairn_strdup(base_name(path))))
            st = cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
        if (st == CAIRN_OK && !(d.key = cairn_strdup("")))
            st = cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
        if (st == CAIRN_OK)
            st = emit(ctx, &d);
    }
    cairn_free(first_heading);
    ingest_doc_free(&d);
    zip_members_free(&z);
    return st;
}

const ingest_parser ingest_parser_office = {"office", parse_office};
