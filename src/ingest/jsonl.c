/*
 * jsonl.c — JSON Lines: one JSON object per line, one document per object.
 *
 * Fields: id = opt->json_id_field (default "_id", then "id"), title =
 * json_title_field ("title"), text = json_text_field ("text"); other fields
 * become typed metadata (json_record_to_doc in json.c). BEIR's corpus.jsonl
 * ({"_id", "title", "text", "metadata"}) works with the defaults.
 *
 * Bad lines: a line that is not a JSON object is skipped, with a warning
 * naming the file, the line number and the reason; the rest of the file
 * continues. If no line at all holds a valid record (and at least one line
 * was bad), the file fails with CAIRN_ERR_CORRUPT naming the first bad line.
 * Blank lines are ignored. Keys: the record id, or "line:N" when it has
 * none; a repeated id becomes "id@line:N" (with a warning).
 *
 * A line longer than opt->max_record_bytes is a bad line too ("longer than
 * the record cap"), skipped without being held in memory.
 *
 * Cost: one pass; each line is parsed on its own, and a file is read
 * through a bounded window (stream.h), so memory is bounded by the longest
 * line plus one document plus the key set (none with
 * opt->caller_unique_keys, as in the pipeline; else 8 bytes per record, at most
 * half full), whatever the file size.
 */
#include "ingest/parse_common.h"
#include "ingest/stream.h"
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

/* Warnings for the first few bad lines; later ones are only counted. */
#define JSONL_MAX_WARNINGS 10

/* The next line (without its '\n') from *pos. *got = false at the end. A
 * line longer than s->max_record sets *too_long and is skipped unread
 * (*line = NULL). The line stays valid until the next call. */
static cairn_status next_line(rstream *s, size_t *pos, const char **line, size_t *n, bool *got, bool *too_long)
{
    *got = *too_long = false;
    *line = NULL;
    *n = 0;
    size_t scan = *pos;
    for (;;) {
        const char *nl = scan < s->len ? memchr(s->d + scan, '\n', s->len - scan) : NULL;
        if (nl || s->eof) {
            if (!nl && *pos >= s->len)
                return CAIRN_OK;
            size_t end = nl ? (size_t)(nl - s->d) : s->len;
            *got = true;
            if (end - *pos > s->max_record) {
                *too_long = true;
            } else {
                *line = s->d + *pos;
                *n = end - *pos;
            }
            *pos = end + (nl ? 1 : 0);
            return CAIRN_OK;
        }
        size_t keep = *pos, had = s->len;
        bool more;
        cairn_status st = rstream_more(s, keep, &more);
        if (st == CAIRN_OK) {
            scan = had - keep;
            *pos = 0;
            continue;
        }
        if (st != CAIRN_ERR_TOO_LARGE)
            return st;
        cairn_clear_error();
        /* Too long to hold: drop it up to its newline. */
        *got = *too_long = true;
        for (;;) {
            CAIRN_TRY(rstream_more(s, s->len, &more));
            nl = memchr(s->d, '\n', s->len);
            if (nl) {
                *pos = (size_t)(nl - s->d) + 1;
                return CAIRN_OK;
            }
            if (!more) {
                *pos = s->len;
                return CAIRN_OK;
            }
        }
    }
}

cairn_status jsonl_parse_stream(rstream *s, const ingest_options *opt, ingest_emit_fn emit, void *ctx)
{
    const char *path = s->path;
    bool more;
    CAIRN_TRY(rstream_more(s, 0, &more));   /* the first window (memory: no-op) */
    size_t pos = pc_bom_len(s->d, s->len), lineno = 0, good = 0, bad = 0, first_bad_line = 0;
    char first_bad_why[160] = "";
    pc_keyset keys = {0};
    cairn_status st = CAIRN_OK;
    for (;;) {
        const char *line;
        size_t n;
        bool got, too_long;
        st = next_line(s, &pos, &line, &n, &got, &too_long);
        if (st != CAIRN_OK || !got)
            break;
        lineno++;
        char why[160] = "";
        cJSON *obj = NULL;
        if (too_long) {
            snprintf(why, sizeof why, "longer than the record cap of %zu bytes (ingest.max_record_mb)",
                     s->max_record);
        } else {
            const char *p = line;
            size_t k = n;
            pc_trim(&p, &k);
            if (!k)
                continue;
            const char *end = NULL;
            obj = cJSON_ParseWithLengthOpts(p, k, &end, 0);
            if (!obj) {
                size_t col = end && end >= p && end <= p + k ? (size_t)(end - p) + 1 : 1;
                if (col >= k)
                    snprintf(why, sizeof why, "invalid JSON: the line ends early (truncated?)");
                else
                    snprintf(why, sizeof why, "invalid JSON at column %zu", col + (size_t)(p - line));
            } else if (end && end < p + k) {
                snprintf(why, sizeof why, "unexpected content after the object at column %zu",
                         (size_t)(end - line) + 1);
            } else if (!cJSON_IsObject(obj)) {
                snprintf(why, sizeof why, "expected a JSON object");
            }
        }
        if (why[0]) {
            cJSON_Delete(obj);
            if (++bad == 1) {
                first_bad_line = lineno;
                snprintf(first_bad_why, sizeof first_bad_why, "%s", why);
            }
            if (bad <= JSONL_MAX_WARNINGS)
                CAIRN_WARN("%s: line %zu: %s (line skipped)", path, lineno, why);
            continue;
        }
        char alt[48];
        snprintf(alt, sizeof alt, "line:%zu", lineno);
        ingest_doc doc;
        ingest_doc_init(&doc);
        doc.type = "jsonl";
        char *id = NULL;
        st = json_record_to_doc(obj, opt, &doc, &id);
        if (st == CAIRN_OK) {
            size_t before = keys.n;
            st = pc_set_record_key(&keys, opt, &doc, id ? id : alt, alt);
            if (st == CAIRN_OK && id && keys.n == before + 1 && strcmp(doc.key, id) != 0)
                CAIRN_WARN("%s: line %zu: id \"%s\" repeats an earlier record; keyed \"%s\"", path, lineno, id,
                           doc.key);
        }
        cairn_free(id);
        cJSON_Delete(obj);
        if (st == CAIRN_OK) {
            good++;
            st = emit(ctx, &doc);
        }
        ingest_doc_free(&doc);
        if (st != CAIRN_OK)
            break;
    }
    pc_keyset_free(&keys);
    if (st != CAIRN_OK)
        return st;
    if (bad > JSONL_MAX_WARNINGS)
        CAIRN_WARN("%s: %zu bad lines skipped in all", path, bad);
    if (bad && !good)
        return cairn_fail(CAIRN_ERR_CORRUPT, "%s: line %zu: %s (no valid JSON record in the file)", path,
                          first_bad_line, first_bad_why);
    return CAIRN_OK;
}

cairn_status jsonl_parse_records(const char *path, const char *data, size_t len, const ingest_options *opt,
                                 ingest_emit_fn emit, void *ctx)
{
    rstream s;
    ingest_options def;
    if (!opt) {
        ingest_options_default(&def);
        opt = &def;
    }
    rstream_open_mem(&s, path, data, len, opt->max_record_bytes);
    cairn_status st = jsonl_parse_stream(&s, opt, emit, ctx);
    rstream_close(&s);
    return st;
}

static cairn_status jsonl_parse(const char *path, const char *data, size_t len, const ingest_options *opt,
                                ingest_emit_fn emit, void *ctx)
{
    return jsonl_parse_records(path, data, len, opt, emit, ctx);
}

const ingest_parser ingest_parser_jsonl = {"jsonl", jsonl_parse};
