/*
 * parse_common.h — small helpers shared by the structured-format parsers
 * (html.c, pdf.c, json.c, jsonl.c, csv.c). Internal to src/ingest/.
 */
#ifndef CAIRN_INGEST_PARSE_COMMON_H
#define CAIRN_INGEST_PARSE_COMMON_H

#include "ingest/ingest.h"

/* Hard caps that keep hostile inputs bounded (documented in docs/formats.md). */
#define PC_MAX_META_KEYS 128          /* metadata entries taken from one record */
#define PC_MAX_META_STRING 256        /* longer string fields are text, not metadata */
#define PC_MAX_LIST_ITEMS 256         /* items kept from an array-valued field */

/* The extension of the basename of `path` (after the last '.'), or "" if none. */
const char *pc_path_ext(const char *path);
/* Case-insensitive comparison of `path`'s extension with `ext` (no dot). */
bool pc_ext_is(const char *path, const char *ext);
/* Length of a UTF-8 byte order mark at the start of data (0 or 3). */
size_t pc_bom_len(const char *data, size_t len);

static inline bool pc_is_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

/* Trim ASCII whitespace at both ends of (*s, *n). */
void pc_trim(const char **s, size_t *n);

/* Append `n` bytes to b, collapsing each run of ASCII whitespace into one
 * space. *space is true when b already ends in a space (or is at a block
 * start, so leading whitespace is dropped); it is updated. O(n). */
cairn_status pc_append_collapsed(cairn_buf *b, const char *s, size_t n, bool *space);

/* Add the text as blocks of `kind`, one per paragraph (paragraphs are
 * separated by blank lines). Each is trimmed; empty ones are dropped. When
 * `prefix` is not NULL, the first paragraph is written "prefix: text".
 * Single newlines inside a paragraph are kept. O(n). */
cairn_status pc_add_paragraphs(ingest_doc *d, block_kind kind, int page, const char *prefix,
                               const char *s, size_t n);

/* A set of record keys, used to keep the keys a file yields unique. */
typedef struct pc_keyset { uint64_t *slots; size_t n, cap; } pc_keyset;
/* Insert; *dup is set when the key was already present. Amortised O(1). */
cairn_status pc_keyset_add(pc_keyset *k, const char *s, size_t n, bool *dup);
void pc_keyset_free(pc_keyset *k);

/* Give `doc` a key that is unique within the file: `key` if it is new,
 * else "key@alt" (alt names the record's position, e.g. "line:7"). */
cairn_status pc_set_unique_key(pc_keyset *ks, ingest_doc *doc, const char *key, const char *alt);

/* A record's key: pc_set_unique_key, or with opt->caller_unique_keys the
 * key as it is, with `alt` in doc->key_alt for the callee (no key set). */
cairn_status pc_set_record_key(pc_keyset *ks, const ingest_options *opt, ingest_doc *doc, const char *key,
                               const char *alt);

/* Metadata from a scalar string: ISO dates (YYYY-MM-DD[THH:MM[:SS][Z]]) become dates,
 * everything else stays a string. */
cairn_status pc_meta_string(meta_list *m, const char *key, const char *s);

/* ---- charsets (charset.c) ---- */
/* True when s[0..len) is valid UTF-8 without NUL bytes (ingest.c). */
bool utf8_valid(const char *s, size_t len);
/* A UTF-16/UTF-32 byte order mark at the start: its charset name and length. */
const char *charset_bom(const char *data, size_t len, size_t *bom_len);
/* Convert from `from` to UTF-8 into *out (NUL-terminated, caller frees);
 * bytes invalid in `from` become U+FFFD. CAIRN_ERR_UNSUPPORTED: unknown charset. */
cairn_status charset_convert(const char *data, size_t len, const char *from, char **out, size_t *out_len);
/* Text that is not valid UTF-8: detect its charset and convert (*out, enc
 * = the charset's name); *out NULL when it is UTF-8 or nothing better than
 * U+FFFD repair can be done. */
cairn_status charset_to_utf8(const char *data, size_t len, char **out, size_t *out_len, char enc[32]);

/* A manual page (man.c): a .man / .<section> name and roff content. */
bool man_looks_like(const char *path, const char *data, size_t len);

/* ---- JSON records (json.c), shared with jsonl.c ---- */
struct cJSON;
/* Turn one JSON object into a document: id/title/text fields per the
 * options, other fields as typed metadata (see docs/formats.md). The doc
 * must be initialised; its key is set by the caller. *id_out receives the
 * record id (owned by the caller; NULL when the record has none). */
cairn_status json_record_to_doc(const struct cJSON *obj, const ingest_options *opt, ingest_doc *doc,
                                char **id_out);
/* The JSONL parser body, also used by json.c for a .json file that holds
 * one object per line. */
cairn_status jsonl_parse_records(const char *path, const char *data, size_t len,
                                 const ingest_options *opt, ingest_emit_fn emit, void *ctx);

/* An emit callback that repairs invalid UTF-8 in a document (ingest_doc_repair)
 * before passing it on: the wrapper every parser's output goes through. */
typedef struct pc_emit_wrap {
    ingest_emit_fn emit;
    void *ctx;
    const char *compression;    /* set: metadata "compression" (a compressed file) */
    const char *encoding;       /* set: metadata "encoding" (converted from this charset) */
} pc_emit_wrap;
cairn_status pc_emit_repaired(void *ctx, ingest_doc *doc);   /* ctx: pc_emit_wrap */

#endif
