/*
 * json.c — JSON files.
 *
 * A file holding an array whose elements are all objects is a corpus: one
 * document per element (key "item:N" unless the element has an id field).
 * A file holding one object with a text field is one record document. Any
 * other JSON value is one document whose blocks are its leaves, written
 * "path.to.leaf: value", and whose metadata are its top-level scalars.
 * A .json file holding one object per line is handed to the JSONL parser.
 *
 * Records: id = opt->json_id_field (default "_id", then "id"), title =
 * json_title_field ("title"), text = json_text_field ("text"); the other
 * fields become typed metadata (see docs/formats.md for the exact rules).
 */
#include "ingest/parse_common.h"
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define JSON_MAX_FLATTEN_DEPTH 32
#define JSON_MAX_META_KEY 256    /* longer (dotted) field names are not metadata */
#define JSON_MAX_PATH 1024       /* "path.to.leaf" prefixes are cut beyond this */

static const char *field_or(const char *f, const char *dflt) { return f && *f ? f : dflt; }

/* Format a JSON number as a key/text: integers without exponent or ".0". */
static void fmt_number(double v, char out[64])
{
    if (isfinite(v) && v == floor(v) && fabs(v) < 9007199254740992.0)
        snprintf(out, 64, "%.0f", v);
    else
        snprintf(out, 64, "%.17g", v);
}

static bool is_scalar(const cJSON *v) { return cJSON_IsString(v) || cJSON_IsNumber(v) || cJSON_IsBool(v); }

/* Typed metadata for one field value; nested objects are flattened with
 * dotted keys up to `depth` levels. *budget caps the entries per record. */
static cairn_status meta_from_value(meta_list *m, cairn_buf *key, const cJSON *v, int depth, int *budget)
{
    if (*budget <= 0)
        return CAIRN_OK;
    if (cJSON_IsString(v)) {
        if (strlen(v->valuestring) > PC_MAX_META_STRING || !v->valuestring[0])
            return CAIRN_OK;
        (*budget)--;
        return pc_meta_string(m, key->data, v->valuestring);
    }
    if (cJSON_IsNumber(v)) {
        if (!isfinite(v->valuedouble)) /* 1e999: no number the store can hold */
            return CAIRN_OK;
        (*budget)--;
        return meta_set_number(m, key->data, v->valuedouble);
    }
    if (cJSON_IsBool(v)) {
        (*budget)--;
        return meta_set_bool(m, key->data, cJSON_IsTrue(v));
    }
    if (cJSON_IsArray(v)) {
        /* A list of scalars (as strings); arrays holding objects are skipped. */
        size_t n = 0;
        for (const cJSON *c = v->child; c; c = c->next) {
            if (!is_scalar(c))
                return CAIRN_OK;
            if (++n > PC_MAX_LIST_ITEMS)
                break;
        }
        if (n == 0)
            return CAIRN_OK;
        n = CAIRN_MIN(n, (size_t)PC_MAX_LIST_ITEMS);
        char **items = cairn_calloc(n, sizeof *items);
        char (*nums)[64] = cairn_calloc(n, sizeof *nums);
        cairn_status st = CAIRN_OK;
        if (!items || !nums) {
            st = cairn_fail(CAIRN_ERR_NOMEM, "out of memory for a metadata list");
        } else {
            size_t i = 0;
            for (const cJSON *c = v->child; c && i < n; c = c->next, i++) {
                if (cJSON_IsString(c)) {
                    items[i] = c->valuestring;
                } else if (cJSON_IsNumber(c)) {
                    fmt_number(c->valuedouble, nums[i]);
                    items[i] = nums[i];
                } else {
                    items[i] = cJSON_IsTrue(c) ? "true" : "false";
                }
            }
            (*budget)--;
            st = meta_set_list(m, key->data, (const char *const *)items, n);
        }
        cairn_free(items);
        cairn_free(nums);
        return st;
    }
    if (cJSON_IsObject(v) && depth > 0) {
        size_t base = key->len;
        for (const cJSON *c = v->child; c && *budget > 0; c = c->next) {
            if (!c->string || !c->string[0] || base + 1 + strlen(c->string) > JSON_MAX_META_KEY)
                continue;
            key->len = base;
            CAIRN_TRY(cairn_buf_printf(key, ".%s", c->string));
            CAIRN_TRY(meta_from_value(m, key, c, depth - 1, budget));
        }
        key->len = base;
        if (key->data)
            key->data[base] = 0;
    }
    return CAIRN_OK;
}

static cairn_status meta_field(meta_list *m, const char *name, const cJSON *v, int *budget)
{
    if (strlen(name) > JSON_MAX_META_KEY)
        return CAIRN_OK;
    cairn_buf key;
    cairn_buf_init(&key, 0);
    cairn_status st = cairn_buf_puts(&key, name);
    if (st == CAIRN_OK)
        st = meta_from_value(m, &key, v, 3, budget);
    cairn_buf_free(&key);
    return st;
}

/* Text blocks from every string leaf below `v`, as "path: value". */
static cairn_status flatten_text(ingest_doc *doc, cairn_buf *path, const cJSON *v, int depth)
{
    if (depth > JSON_MAX_FLATTEN_DEPTH)
        return CAIRN_OK;
    if (cJSON_IsString(v) || cJSON_IsNumber(v) || cJSON_IsBool(v)) {
        char num[64];
        const char *s;
        if (cJSON_IsString(v)) {
            s = v->valuestring;
        } else if (cJSON_IsNumber(v)) {
            fmt_number(v->valuedouble, num);
            s = num;
        } else {
            s = cJSON_IsTrue(v) ? "true" : "false";
        }
        return pc_add_paragraphs(doc, BLOCK_PARAGRAPH, 0, path->len ? path->data : NULL, s, strlen(s));
    }
    size_t base = path->len;
    cairn_status st = CAIRN_OK;
    if (cJSON_IsArray(v)) {
        for (const cJSON *c = v->child; c && st == CAIRN_OK; c = c->next)
            st = flatten_text(doc, path, c, depth + 1);
    } else if (cJSON_IsObject(v)) {
        for (const cJSON *c = v->child; c && st == CAIRN_OK; c = c->next) {
            path->len = base;
            if (path->data)
                path->data[base] = 0;
            const char *name = c->string ? c->string : "";
            if (base + 1 + strlen(name) <= JSON_MAX_PATH)
                st = cairn_buf_printf(path, "%s%s", base ? "." : "", name);
            if (st == CAIRN_OK)
                st = flatten_text(doc, path, c, depth + 1);
        }
    }
    path->len = base;
    if (path->data)
        path->data[base] = 0;
    return st;
}

static const cJSON *get_field(const cJSON *obj, const char *name)
{
    /* Exact (case-sensitive) match: field names are data. */
    return name ? cJSON_GetObjectItemCaseSensitive(obj, name) : NULL;
}

cairn_status json_record_to_doc(const cJSON *obj, const ingest_options *opt, ingest_doc *doc, char **id_out)
{
    *id_out = NULL;
    const char *id_name = opt && opt->json_id_field && *opt->json_id_field ? opt->json_id_field : NULL;
    const cJSON *id = id_name ? get_field(obj, id_name) : get_field(obj, "_id");
    if (!id_name && !id)
        id = get_field(obj, "id");
    const char *title_name = field_or(opt ? opt->json_title_field : NULL, "title");
    const char *text_name = field_or(opt ? opt->json_text_field : NULL, "text");
    const cJSON *title = get_field(obj, title_name);
    const cJSON *text = get_field(obj, text_name);

    if (id && (cJSON_IsString(id) || cJSON_IsNumber(id))) {
        char num[64];
        const char *s = id->valuestring;
        if (cJSON_IsNumber(id)) {
            fmt_number(id->valuedouble, num);
            s = num;
        }
        if (*s && !(*id_out = cairn_strdup(s)))
            return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
    } else {
        id = NULL;
    }
    if (cJSON_IsString(title)) {
        const char *t = title->valuestring;
        size_t n = strlen(t);
        pc_trim(&t, &n);
        if (n && !(doc->title = cairn_strndup(t, n)))
            return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
    } else {
        title = NULL;
    }

    /* Text: the text field (a string, or an array of strings); then long
     * string fields that are too big to be metadata. Without a text field,
     * every other string field is text, written "name: value". */
    bool have_text = false;
    if (cJSON_IsString(text)) {
        have_text = true;
        CAIRN_TRY(pc_add_paragraphs(doc, BLOCK_PARAGRAPH, 0, NULL, text->valuestring, strlen(text->valuestring)));
    } else if (cJSON_IsArray(text)) {
        have_text = true;
        for (const cJSON *c = text->child; c; c = c->next)
            if (cJSON_IsString(c))
                CAIRN_TRY(pc_add_paragraphs(doc, BLOCK_PARAGRAPH, 0, NULL, c->valuestring, strlen(c->valuestring)));
    } else {
        text = NULL;
    }
    int budget = PC_MAX_META_KEYS;
    for (const cJSON *c = obj->child; c; c = c->next) {
        if (c == id || c == title || c == text || !c->string || !c->string[0])
            continue;
        if (cJSON_IsString(c)) {
            size_t n = strlen(c->valuestring);
            if (!have_text || n > PC_MAX_META_STRING)
                CAIRN_TRY(pc_add_paragraphs(doc, BLOCK_PARAGRAPH, 0, c->string, c->valuestring, n));
        }
        CAIRN_TRY(meta_field(&doc->meta, c->string, c, &budget));
    }
    /* A record with a title and no text (half of CACM's) must still be
     * findable: its title becomes its text. */
    if (doc->n_blocks == 0 && doc->title)
        CAIRN_TRY(ingest_doc_add_block(doc, BLOCK_PARAGRAPH, 0, 0, doc->title, strlen(doc->title)));
    return CAIRN_OK;
}

/* One document for a whole non-record JSON value. */
static cairn_status json_generic_doc(const cJSON *root, const ingest_options *opt, ingest_doc *doc)
{
    const char *title_name = field_or(opt ? opt->json_title_field : NULL, "title");
    if (cJSON_IsObject(root)) {
        const cJSON *t = get_field(root, title_name);
        if (cJSON_IsString(t) && t->valuestring[0] && !(doc->title = cairn_strdup(t->valuestring)))
            return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
        int budget = PC_MAX_META_KEYS;
        for (const cJSON *c = root->child; c; c = c->next)
            if (c != t && c->string && c->string[0] && is_scalar(c))
                CAIRN_TRY(meta_field(&doc->meta, c->string, c, &budget));
    }
    cairn_buf path;
    cairn_buf_init(&path, 0);
    cairn_status st = flatten_text(doc, &path, root, 0);
    cairn_buf_free(&path);
    return st;
}

static bool all_objects(const cJSON *arr)
{
    if (!arr->child)
        return false;
    for (const cJSON *c = arr->child; c; c = c->next)
        if (!cJSON_IsObject(c))
            return false;
    return true;
}

/* Line and column (1-based) of byte offset `off`. */
static void line_col(const char *data, size_t off, size_t *line, size_t *col)
{
    size_t l = 1, last_nl = 0;
    bool any = false;
    for (const char *p = data; (p = memchr(p, '\n', (size_t)(data + off - p))) != NULL; p++) {
        l++;
        last_nl = (size_t)(p - data);
        any = true;
    }
    *line = l;
    *col = any ? off - last_nl : off + 1;
}

static cairn_status json_parse(const char *path, const char *data, size_t len, const ingest_options *opt,
                               ingest_emit_fn emit, void *ctx)
{
    size_t bom = pc_bom_len(data, len);
    const char *p = data + bom;
    size_t n = len - bom;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(p, n, &end, 0);
    if (root && end) {
        /* Trailing content: one object per line (JSONL in a .json file)? */
        const char *q = end;
        while (q < p + n && pc_is_space((unsigned char)*q))
            q++;
        if (q < p + n) {
            bool lines = cJSON_IsObject(root) && *q == '{' && memchr(p, '\n', (size_t)(q - p)) != NULL;
            cJSON_Delete(root);
            if (lines)
                return jsonl_parse_records(path, data, len, opt, emit, ctx);
            size_t line, col;
            line_col(p, (size_t)(q - p), &line, &col);
            return cairn_fail(CAIRN_ERR_CORRUPT, "%s: invalid JSON: unexpected content after the value at line %zu, column %zu",
                              path, line, col);
        }
    }
    if (!root) {
        size_t tn = n;
        while (tn && pc_is_space((unsigned char)p[tn - 1]))
            tn--;
        size_t off = end && end >= p && end <= p + n ? (size_t)(end - p) : 0;
        size_t line, col;
        line_col(p, CAIRN_MIN(off, n), &line, &col);
        /* cJSON reports the failing item's last byte when the text ends early */
        /* cJSON stops at its nesting limit: say so instead of pointing
         * at a column. Depth of open brackets (outside strings) at off. */
        size_t depth = 0, maxd = 0;
        bool in_str = false;
        for (size_t i = 0; i <= off && i < n; i++) {
            char ch = p[i];
            if (in_str) {
                if (ch == '\\')
                    i++;
                else if (ch == '"')
                    in_str = false;
            } else if (ch == '"') {
                in_str = true;
            } else if (ch == '[' || ch == '{') {
                if (++depth > maxd)
                    maxd = depth;
            } else if ((ch == ']' || ch == '}') && depth) {
                depth--;
            }
        }
        if (maxd >= CJSON_NESTING_LIMIT)
            return cairn_fail(CAIRN_ERR_CORRUPT, "%s: JSON nested too deep (more than %d levels) at line %zu, column %zu",
                              path, CJSON_NESTING_LIMIT, line, col);
        if (off + 1 >= tn)
            return cairn_fail(CAIRN_ERR_CORRUPT, "%s: invalid JSON: the text ends early (truncated?) at line %zu, column %zu",
                              path, line, col);
        return cairn_fail(CAIRN_ERR_CORRUPT, "%s: invalid JSON at line %zu, column %zu", path, line, col);
    }

    cairn_status st = CAIRN_OK;
    ingest_doc doc;
    const char *text_name = field_or(opt ? opt->json_text_field : NULL, "text");
    if (cJSON_IsArray(root) && all_objects(root)) {
        pc_keyset keys = {0};
        size_t i = 0;
        for (const cJSON *c = root->child; c && st == CAIRN_OK; c = c->next) {
            i++;
            char alt[48];
            snprintf(alt, sizeof alt, "item:%zu", i);
            ingest_doc_init(&doc);
            doc.type = "json";
            char *id = NULL;
            st = json_record_to_doc(c, opt, &doc, &id);
            if (st == CAIRN_OK)
                st = pc_set_unique_key(&keys, &doc, id ? id : alt, alt);
            cairn_free(id);
            if (st == CAIRN_OK)
                st = emit(ctx, &doc);
            ingest_doc_free(&doc);
        }
        pc_keyset_free(&keys);
    } else {
        ingest_doc_init(&doc);
        doc.type = "json";
        char *id = NULL;
        if (cJSON_IsObject(root) && (cJSON_IsString(get_field(root, text_name)) ||
                                     cJSON_IsArray(get_field(root, text_name)))) {
            st = json_record_to_doc(root, opt, &doc, &id);
            if (st == CAIRN_OK && id)
                st = meta_set_string(&doc.meta, "id", id);
        } else {
            st = json_generic_doc(root, opt, &doc);
        }
        cairn_free(id);
        if (st == CAIRN_OK && !(doc.key = cairn_strdup("")))
            st = cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
        if (st == CAIRN_OK)
            st = emit(ctx, &doc);
        ingest_doc_free(&doc);
    }
    cJSON_Delete(root);
    return st;
}

const ingest_parser ingest_parser_json = {"json", json_parse};
