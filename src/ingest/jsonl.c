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
 * Cost: one pass; each line is parsed on its own, so memory is bounded by
 * the longest line plus one document.
 */
#include "ingest/parse_common.h"
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

/* Warnings for the first few bad lines; later ones are only counted. */
#define JSONL_MAX_WARNINGS 10

cairn_status jsonl_parse_records(const char *path, const char *data, size_t len, const ingest_options *opt,
                                 ingest_emit_fn emit, void *ctx)
{
    size_t bom = pc_bom_len(data, len);
    size_t pos = bom, lineno = 0, good = 0, bad = 0, first_bad_line = 0;
    char first_bad_why[160] = "";
    pc_keyset keys = {0};
    cairn_status st = CAIRN_OK;
    while (pos < len && st == CAIRN_OK) {
        lineno++;
        const char *line = data + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - line) : len - pos;
        pos += n + (nl ? 1 : 0);
        const char *p = line;
        size_t k = n;
        pc_trim(&p, &k);
        if (!k)
            continue;
        const char *end = NULL;
        cJSON *obj = cJSON_ParseWithLengthOpts(p, k, &end, 0);
        char why[160] = "";
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
            st = pc_set_unique_key(&keys, &doc, id ? id : alt, alt);
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

static cairn_status jsonl_parse(const char *path, const char *data, size_t len, const ingest_options *opt,
                                ingest_emit_fn emit, void *ctx)
{
    return jsonl_parse_records(path, data, len, opt, emit, ctx);
}

const ingest_parser ingest_parser_jsonl = {"jsonl", jsonl_parse};
