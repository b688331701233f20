/*
 * csv.c — CSV and TSV files (RFC 4180 quoting), first row = header.
 *
 * Format: fields separated by a delimiter (',' by default; '\t' for .tsv
 * and .tab; ';' or '\t' when the header row holds more of those than
 * commas), records separated by LF or CRLF. A field may be quoted with '"';
 * inside quotes, delimiters and newlines are data and '""' is one quote.
 *
 * Lenient where RFC 4180 is strict, and said so in docs/formats.md: blank
 * lines are skipped; a row with fewer fields than the header leaves the
 * rest empty; extra fields get the names column_N; text after a closing
 * quote is kept; a stray quote inside an unquoted field is data. An
 * unterminated quoted field (the file ends inside quotes) drops that last
 * row with a warning naming its line; if no row survives, the file fails
 * with CAIRN_ERR_CORRUPT.
 *
 * Documents: one per row (opt->csv_row_per_doc, the default) or one per
 * file (each row a BLOCK_TABLE_ROW "name: value | name: value").
 * Columns: text = opt->csv_text_columns (comma list of header names, case
 * insensitive; NULL = every column); the id column is json_id_field (else
 * "id" or "_id"), the title column json_title_field (else "title").
 *
 * Cost: one pass over the bytes; memory = one row plus one document (and
 * the key set, 8 bytes per row at most half full, unless the caller makes
 * keys unique: opt->caller_unique_keys, as the pipeline does). A file is read through
 * a bounded window (stream.h): a row that runs past the window's end is
 * parsed again once more bytes are in, so only the current row must fit; a
 * row longer than opt->max_record_bytes is skipped (with a warning naming
 * its line) by a quote-aware scan that holds none of it; a header row that
 * long fails the file.
 */
#include "ingest/parse_common.h"
#include "ingest/stream.h"
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define CSV_MAX_COLUMNS 4096

typedef struct csv_reader {
    rstream *s;             /* the window: d = s->d, n = s->len */
    const char *d;
    size_t n, pos, line;   /* line: 1-based line of the next byte */
    bool eof;               /* d[n-1] is the last byte of the input */
    char delim;
    cairn_buf scratch;      /* the current row's unescaped fields, NUL-separated */
    size_t *off;            /* field i starts at scratch.data + off[i] */
    size_t *flen;
    size_t nf, capf;
    size_t row_line;        /* line on which the current row started */
} csv_reader;

static cairn_status push_field(csv_reader *r, size_t start)
{
    if (r->nf == r->capf) {
        if (r->capf >= CSV_MAX_COLUMNS)
            return cairn_fail(CAIRN_ERR_CORRUPT, "line %zu: more than %d fields in a row", r->row_line,
                              CSV_MAX_COLUMNS);
        size_t nc = r->capf ? r->capf * 2 : 16;
        size_t *o = cairn_reallocarray(r->off, nc, sizeof *o);
        if (!o)
            return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
        r->off = o;
        size_t *l = cairn_reallocarray(r->flen, nc, sizeof *l);
        if (!l)
            return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
        r->flen = l;
        r->capf = nc;
    }
    r->off[r->nf] = start;
    r->flen[r->nf] = r->scratch.len - start;
    r->nf++;
    return cairn_buf_putc(&r->scratch, 0);
}

/* Read the next non-blank row of the window into r. *got = false at end
 * of input. *need = true (and r unchanged but for blank lines skipped) when
 * the row runs past the window's end before EOF: the caller reads more and
 * calls again. CAIRN_ERR_CORRUPT for an unterminated quoted field. */
static cairn_status csv_read_row_window(csv_reader *r, bool *got, bool *need)
{
    *got = false;
    *need = false;
    for (;;) {
        if (r->pos >= r->n) {
            *need = !r->eof;
            return CAIRN_OK;
        }
        /* skip blank lines */
        if (r->d[r->pos] == '\n') {
            r->pos++;
            r->line++;
            continue;
        }
        if (r->d[r->pos] == '\r' && r->pos + 1 >= r->n && !r->eof) {
            *need = true;
            return CAIRN_OK;
        }
        if (r->d[r->pos] == '\r' && r->pos + 1 < r->n && r->d[r->pos + 1] == '\n') {
            r->pos += 2;
            r->line++;
            continue;
        }
        break;
    }
    cairn_buf_reset(&r->scratch);
    r->nf = 0;
    r->row_line = r->line;
    const char *d = r->d;
    size_t n = r->n, i = r->pos;
    for (;;) {
        size_t start = r->scratch.len;
        if (i < n && d[i] == '"') {
            size_t qline = r->line;
            i++;
            for (;;) {
                const char *q = i < n ? memchr(d + i, '"', n - i) : NULL;
                if (!q && !r->eof) {
                    r->line = r->row_line;
                    *need = true;
                    return CAIRN_OK;
                }
                if (!q) {
                    r->pos = n;
                    return cairn_fail(CAIRN_ERR_CORRUPT, "line %zu: unterminated quoted field", qline);
                }
                size_t k = (size_t)(q - (d + i));
                for (const char *p = d + i; (p = memchr(p, '\n', (size_t)(q - p))) != NULL; p++)
                    r->line++;
                CAIRN_TRY(cairn_buf_append(&r->scratch, d + i, k));
                i += k + 1;
                if (i >= n && !r->eof) {
                    r->line = r->row_line;
                    *need = true;   /* a '""' may straddle the window's end */
                    return CAIRN_OK;
                }
                if (i < n && d[i] == '"') {
                    CAIRN_TRY(cairn_buf_putc(&r->scratch, '"'));
                    i++;
                    continue;
                }
                break;
            }
        }
        /* unquoted field, or whatever follows a closing quote */
        size_t j = i;
        while (j < n && d[j] != r->delim && d[j] != '\n')
            j++;
        if (j >= n && !r->eof) {
            r->line = r->row_line;
            *need = true;
            return CAIRN_OK;
        }
        size_t k = j - i;
        if (j < n && d[j] == '\n' && k && d[j - 1] == '\r')
            k--;
        else if (j == n && k && d[j - 1] == '\r')
            k--;
        CAIRN_TRY(cairn_buf_append(&r->scratch, d + i, k));
        CAIRN_TRY(push_field(r, start));
        i = j;
        if (i < n && d[i] == r->delim) {
            i++;
            continue;
        }
        if (i < n) { /* newline */
            i++;
            r->line++;
        }
        break;
    }
    r->pos = i;
    *got = true;
    return CAIRN_OK;
}

static void csv_sync_window(csv_reader *r)
{
    r->d = r->s->d;
    r->n = r->s->len;
    r->eof = r->s->eof;
}

/* Read the next non-blank row into r, reading more of the input while the
 * row runs past the window. */
static cairn_status csv_read_row(csv_reader *r, bool *got)
{
    for (;;) {
        bool need;
        cairn_status st = csv_read_row_window(r, got, &need);
        if (st != CAIRN_OK || !need)
            return st;
        /* Blank lines before the row are done with; the row restarts. */
        size_t keep = r->pos;
        bool more;
        st = rstream_more(r->s, keep, &more);
        if (st == CAIRN_ERR_TOO_LARGE)
            return cairn_fail(st, "line %zu: row longer than the record cap of %zu bytes (ingest.max_record_mb)",
                              r->line, r->s->max_record);
        if (st != CAIRN_OK)
            return st;
        csv_sync_window(r);
        r->pos -= keep;
    }
}

/* Skip the row starting at r->pos without holding it (it is over the
 * record cap): the same quoting rules as csv_read_row_window, as a state
 * machine that survives window refills, dropping bytes as it passes them. */
static cairn_status csv_skip_row(csv_reader *r)
{
    enum { FIELD_START, QUOTED, QUOTE_SEEN, UNQUOTED } q = FIELD_START;
    size_t i = r->pos;
    for (;;) {
        if (i >= r->n) {
            if (r->eof) {
                r->pos = i;
                return CAIRN_OK;
            }
            bool more;
            CAIRN_TRY(rstream_more(r->s, i, &more));
            csv_sync_window(r);
            i = 0;
            continue;
        }
        char c = r->d[i];
        switch (q) {
        case FIELD_START:
            if (c == '"') {
                q = QUOTED;
                i++;
            } else {
                q = UNQUOTED;
            }
            break;
        case QUOTED:
            if (c == '"')
                q = QUOTE_SEEN;
            else if (c == '\n')
                r->line++;
            i++;
            break;
        case QUOTE_SEEN:   /* '""' is a quote inside the field; else the field closed */
            if (c == '"') {
                q = QUOTED;
                i++;
            } else {
                q = UNQUOTED;
            }
            break;
        case UNQUOTED:
            i++;
            if (c == r->delim) {
                q = FIELD_START;
            } else if (c == '\n') {
                r->line++;
                r->pos = i;
                return CAIRN_OK;
            }
            break;
        }
    }
}

static void csv_reader_free(csv_reader *r)
{
    cairn_buf_free(&r->scratch);
    cairn_free(r->off);
    cairn_free(r->flen);
}

static const char *field(const csv_reader *r, size_t i) { return i < r->nf ? r->scratch.data + r->off[i] : ""; }
static size_t field_len(const csv_reader *r, size_t i) { return i < r->nf ? r->flen[i] : 0; }

static char sniff_delim(const char *path, const char *d, size_t n)
{
    if (pc_ext_is(path, "tsv") || pc_ext_is(path, "tab"))
        return '\t';
    size_t comma = 0, semi = 0, tab = 0;
    bool inq = false;
    for (size_t i = 0; i < n && i < 65536; i++) {
        char c = d[i];
        if (c == '"')
            inq = !inq;
        else if (inq)
            continue;
        else if (c == '\n')
            break;
        else if (c == ',')
            comma++;
        else if (c == ';')
            semi++;
        else if (c == '\t')
            tab++;
    }
    if (tab > comma && tab >= semi)
        return '\t';
    if (semi > comma)
        return ';';
    return ',';
}

typedef struct csv_cols {
    char **name;        /* header names (owned) */
    bool *is_text;
    size_t n;
    long id, title;     /* column index or -1 */
    bool explicit_text; /* csv_text_columns was given */
} csv_cols;

static void cols_free(csv_cols *c)
{
    for (size_t i = 0; i < c->n; i++)
        cairn_free(c->name[i]);
    cairn_free(c->name);
    cairn_free(c->is_text);
    memset(c, 0, sizeof *c);
}

/* Grow the column table to `n` columns, naming new ones column_N. */
static cairn_status cols_grow(csv_cols *c, size_t n)
{
    if (n <= c->n)
        return CAIRN_OK;
    char **nm = cairn_reallocarray(c->name, n, sizeof *nm);
    if (!nm)
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
    c->name = nm;
    bool *t = cairn_reallocarray(c->is_text, n, sizeof *t);
    if (!t)
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
    c->is_text = t;
    for (size_t i = c->n; i < n; i++) {
        char tmp[32];
        snprintf(tmp, sizeof tmp, "column_%zu", i + 1);
        if (!(c->name[i] = cairn_strdup(tmp)))
            return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
        c->is_text[i] = !c->explicit_text;
        c->n = i + 1;
    }
    return CAIRN_OK;
}

static long find_col(const csv_cols *c, const char *name, size_t len)
{
    for (size_t i = 0; i < c->n; i++)
        if (strlen(c->name[i]) == len && strncasecmp(c->name[i], name, len) == 0)
            return (long)i;
    return -1;
}

static cairn_status cols_from_header(csv_cols *c, const csv_reader *r, const ingest_options *opt,
                                     const char *path)
{
    c->id = c->title = -1;
    c->explicit_text = opt && opt->csv_text_columns && *opt->csv_text_columns;
    if (!(c->name = cairn_calloc(r->nf, sizeof *c->name)) || !(c->is_text = cairn_calloc(r->nf, sizeof *c->is_text)))
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < r->nf; i++) {
        const char *s = field(r, i);
        size_t k = field_len(r, i);
        pc_trim(&s, &k);
        char tmp[32];
        bool dup = k && find_col(c, s, k) >= 0;
        if (!k || dup || memchr(s, 0, k)) {
            snprintf(tmp, sizeof tmp, "column_%zu", i + 1);
            s = tmp;
            k = strlen(tmp);
        }
        if (!(c->name[i] = cairn_strndup(s, k)))
            return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
        c->is_text[i] = !c->explicit_text;
        c->n = i + 1;
    }
    const char *idf = opt && opt->json_id_field && *opt->json_id_field ? opt->json_id_field : NULL;
    c->id = idf ? find_col(c, idf, strlen(idf)) : find_col(c, "id", 2);
    if (!idf && c->id < 0)
        c->id = find_col(c, "_id", 3);
    const char *tf = opt && opt->json_title_field && *opt->json_title_field ? opt->json_title_field : "title";
    c->title = find_col(c, tf, strlen(tf));
    if (c->explicit_text) {
        const char *p = opt->csv_text_columns;
        while (*p) {
            const char *e = strchr(p, ',');
            size_t k = e ? (size_t)(e - p) : strlen(p);
            const char *s = p;
            pc_trim(&s, &k);
            if (k) {
                long ci = find_col(c, s, k);
                if (ci < 0)
                    return cairn_fail(CAIRN_ERR_INVALID, "%s: no column named \"%.*s\" (text columns are set to \"%s\")",
                                      path, (int)k, s, opt->csv_text_columns);
                c->is_text[ci] = true;
            }
            p = e ? e + 1 : p + strlen(p);
        }
    }
    /* id and title are never body text */
    if (c->id >= 0)
        c->is_text[c->id] = false;
    if (c->title >= 0)
        c->is_text[c->title] = false;
    return CAIRN_OK;
}

/* Typed metadata for a cell, like --tag values, except that numbers a
 * double would change stay strings: leading zeros (zip codes "02139") and
 * more than 15 digits (long ids). */
static cairn_status cell_meta(meta_list *m, const char *key, const char *v)
{
    const char *p = v + (*v == '-' || *v == '+');
    size_t digits = 0;
    for (const char *q = p; *q; q++)
        digits += *q >= '0' && *q <= '9';
    if ((p[0] == '0' && p[1] >= '0' && p[1] <= '9') || digits > 15)
        return meta_set_string(m, key, v);
    return meta_set_parsed(m, key, v);
}

/* One row as a document. */
static cairn_status row_doc(const csv_reader *r, const csv_cols *c, const ingest_options *opt, size_t row,
                            pc_keyset *keys, ingest_doc *doc,
                            cairn_buf *tmp)
{
    char alt[48];
    snprintf(alt, sizeof alt, "row:%zu", row);
    const char *idv = c->id >= 0 ? field(r, (size_t)c->id) : "";
    size_t idk = c->id >= 0 ? field_len(r, (size_t)c->id) : 0;
    pc_trim(&idv, &idk);
    if (idk) /* then idv is in the row's scratch buffer, which is ours; the id is not read again */
        ((char *)idv)[idk] = 0;
    CAIRN_TRY(pc_set_record_key(keys, opt, doc, idk ? idv : alt, alt));
    if (c->title >= 0) {
        const char *t = field(r, (size_t)c->title);
        size_t k = field_len(r, (size_t)c->title);
        pc_trim(&t, &k);
        if (k && !(doc->title = cairn_strndup(t, k)))
            return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
    }
    cairn_buf_reset(tmp);
    size_t ntext = 0;
    for (size_t i = 0; i < c->n; i++)
        ntext += c->is_text[i] && field_len(r, i);
    int budget = PC_MAX_META_KEYS;
    for (size_t i = 0; i < c->n && i < r->nf; i++) {
        const char *v = field(r, i);
        size_t k = field_len(r, i);
        pc_trim(&v, &k);
        if (!k || (long)i == c->id || (long)i == c->title)
            continue;
        if (c->is_text[i]) {
            if (c->explicit_text) {
                CAIRN_TRY(pc_add_paragraphs(doc, BLOCK_PARAGRAPH, 0, NULL, v, k));
            } else {
                /* every column is text: "name: value" lines, unless there is only one */
                if (tmp->len)
                    CAIRN_TRY(cairn_buf_putc(tmp, '\n'));
                if (ntext > 1)
                    CAIRN_TRY(cairn_buf_printf(tmp, "%s: ", c->name[i]));
                CAIRN_TRY(cairn_buf_append(tmp, v, k));
            }
        } else if (k > PC_MAX_META_STRING) {
            CAIRN_TRY(pc_add_paragraphs(doc, BLOCK_PARAGRAPH, 0, c->name[i], v, k));
            continue;
        }
        if (k <= PC_MAX_META_STRING && budget-- > 0 && !(c->explicit_text && c->is_text[i])) {
            /* the row's scratch buffer is ours and this cell is done with:
             * cut its trailing whitespace for the typed parse */
            ((char *)v)[k] = 0;
            CAIRN_TRY(cell_meta(&doc->meta, c->name[i], v));
        }
    }
    if (tmp->len)
        CAIRN_TRY(ingest_doc_add_block(doc, BLOCK_PARAGRAPH, 0, 0, tmp->data, tmp->len));
    return CAIRN_OK;
}

/* One row as a table-row block of the whole-file document. */
static cairn_status row_block(const csv_reader *r, const csv_cols *c, ingest_doc *doc, cairn_buf *tmp)
{
    cairn_buf_reset(tmp);
    for (size_t i = 0; i < c->n && i < r->nf; i++) {
        const char *v = field(r, i);
        size_t k = field_len(r, i);
        pc_trim(&v, &k);
        if (!k || (!c->is_text[i] && (long)i != c->title && (c->explicit_text || (long)i != c->id)))
            continue;
        if (tmp->len)
            CAIRN_TRY(cairn_buf_puts(tmp, " | "));
        CAIRN_TRY(cairn_buf_printf(tmp, "%s: ", c->name[i]));
        CAIRN_TRY(cairn_buf_append(tmp, v, k));
    }
    if (!tmp->len)
        return CAIRN_OK;
    return ingest_doc_add_block(doc, BLOCK_TABLE_ROW, 0, 0, tmp->data, tmp->len);
}

cairn_status csv_parse_stream(rstream *s, const ingest_options *opt, ingest_emit_fn emit, void *ctx)
{
    const char *path = s->path;
    bool more;
    CAIRN_TRY(rstream_more(s, 0, &more));   /* the first window (memory: no-op) */
    csv_reader r = {.s = s, .line = 1};
    csv_sync_window(&r);
    size_t bom = pc_bom_len(r.d, r.n);
    r.pos = bom;
    r.delim = sniff_delim(path, r.d + bom, r.n - bom);
    cairn_buf_init(&r.scratch, 0);
    csv_cols cols = {0};
    pc_keyset keys = {0};
    cairn_buf tmp;
    cairn_buf_init(&tmp, 0);
    bool row_per_doc = opt ? opt->csv_row_per_doc : true;
    ingest_doc file_doc;
    ingest_doc_init(&file_doc);
    file_doc.type = "csv";
    size_t rows = 0;
    bool got;

    cairn_status st = csv_read_row(&r, &got);
    if (st == CAIRN_ERR_CORRUPT)
        st = cairn_fail_wrap(st, "%s: header row", path);
    if (st == CAIRN_OK && got)
        st = cols_from_header(&cols, &r, opt, path);
    while (st == CAIRN_OK && got) {
        st = csv_read_row(&r, &got);
        if (st == CAIRN_ERR_TOO_LARGE) {
            /* over the record cap: skip that row (it counts for row:N) */
            CAIRN_WARN("%s: %s (row skipped)", path, cairn_last_error());
            rows++;
            st = csv_skip_row(&r);
            got = true;
            continue;
        }
        if (st == CAIRN_ERR_CORRUPT) {
            /* the file ended inside quotes: drop the broken last row */
            if (rows) {
                CAIRN_WARN("%s: %s (row skipped)", path, cairn_last_error());
                st = CAIRN_OK;
            } else {
                st = cairn_fail_wrap(st, "%s", path);
            }
            break;
        }
        if (st != CAIRN_OK || !got)
            break;
        rows++;
        st = cols_grow(&cols, r.nf);
        if (st != CAIRN_OK)
            break;
        if (row_per_doc) {
            ingest_doc doc;
            ingest_doc_init(&doc);
            doc.type = "csv";
            st = row_doc(&r, &cols, opt, rows, &keys, &doc, &tmp);
            if (st == CAIRN_OK)
                st = emit(ctx, &doc);
            ingest_doc_free(&doc);
        } else {
            st = row_block(&r, &cols, &file_doc, &tmp);
        }
    }
    if (st == CAIRN_OK && !row_per_doc && cols.n) {
        if (!(file_doc.key = cairn_strdup("")))
            st = cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
        if (st == CAIRN_OK)
            st = meta_set_list(&file_doc.meta, "columns", (const char *const *)cols.name, cols.n);
        if (st == CAIRN_OK)
            st = meta_set_number(&file_doc.meta, "rows", (double)rows);
        if (st == CAIRN_OK)
            st = emit(ctx, &file_doc);
    }
    ingest_doc_free(&file_doc);
    cairn_buf_free(&tmp);
    pc_keyset_free(&keys);
    cols_free(&cols);
    csv_reader_free(&r);
    return st;
}

static cairn_status csv_parse(const char *path, const char *data, size_t len, const ingest_options *opt,
                              ingest_emit_fn emit, void *ctx)
{
    rstream s;
    rstream_open_mem(&s, path, data, len, opt && opt->max_record_bytes ? opt->max_record_bytes : SIZE_MAX);
    cairn_status st = csv_parse_stream(&s, opt, emit, ctx);
    rstream_close(&s);
    return st;
}

const ingest_parser ingest_parser_csv = {"csv", csv_parse};
