/*
 * ingest.h — turning a file into documents: format detection, parsers, and
 * typed metadata.
 *
 * A parser reads a file's bytes and emits one or more documents (a JSONL file
 * of records or a CSV file with one document per row emits many). Each
 * document is a title, typed metadata and a sequence of structural blocks
 * (headings, paragraphs, list items, code, table rows) with page numbers,
 * which the chunker (chunk/chunk.h) turns into chunks.
 *
 * Parsers sit behind a small function table (ingest_parser) so formats can
 * be added without touching the pipeline.
 */
#ifndef CAIRN_INGEST_H
#define CAIRN_INGEST_H

#include "base/base.h"

/* ---- typed metadata ---- */
typedef enum { META_STRING = 1, META_NUMBER = 2, META_DATE = 3, META_BOOL = 4, META_LIST = 5 } meta_type;

typedef struct meta_value {
    meta_type type;
    char *s;            /* META_STRING */
    double n;           /* META_NUMBER; META_DATE: seconds since the epoch (UTC); META_BOOL: 0/1 */
    char **items;       /* META_LIST: strings */
    size_t n_items;
} meta_value;

typedef struct meta_entry { char *key; meta_value v; } meta_entry;

typedef struct meta_list { meta_entry *e; size_t n, cap; } meta_list;

void meta_list_free(meta_list *m);
/* Set (replace) a key. Strings are copied. */
cairn_status meta_set_string(meta_list *m, const char *key, const char *s);
cairn_status meta_set_number(meta_list *m, const char *key, double n);
cairn_status meta_set_date(meta_list *m, const char *key, double epoch_seconds);
cairn_status meta_set_bool(meta_list *m, const char *key, bool b);
cairn_status meta_set_list(meta_list *m, const char *key, const char *const *items, size_t n);
const meta_value *meta_get(const meta_list *m, const char *key);
/* Parse a user-supplied value ("--tag k=v", front matter scalars): numbers,
 * ISO dates (YYYY-MM-DD[THH:MM[:SS][Z]]), true/false become typed; else string. */
cairn_status meta_set_parsed(meta_list *m, const char *key, const char *value);
/* Add a user tag "KEY=VALUE" (`cairn add --tag`, a source's saved tags):
 * the first value of a key is typed like meta_set_parsed; a repeated key
 * becomes a list of the values' text forms. CAIRN_ERR_INVALID when kv has no
 * '=', an empty key or a key over 255 bytes. (Whether a key is a builtin
 * field is the store's business: store_meta_is_builtin.) */
cairn_status meta_add_tag(meta_list *m, const char *kv);
/* Parse an ISO date (as meta_set_parsed accepts) into epoch seconds. */
bool meta_parse_date(const char *s, double *epoch_seconds);
/* Format epoch seconds as "YYYY-MM-DD" (midnight) or "YYYY-MM-DDTHH:MM:SSZ". */
void meta_format_date(double epoch_seconds, char out[32]);

/* ---- documents ---- */
typedef enum {
    BLOCK_HEADING = 1,   /* level = 1..6 */
    BLOCK_PARAGRAPH,
    BLOCK_LIST_ITEM,
    BLOCK_CODE,
    BLOCK_TABLE_ROW,
    BLOCK_QUOTE
} block_kind;

typedef struct ingest_block {
    block_kind kind;
    int level;          /* heading level, list nesting */
    int page;           /* 1-based page (PDF); 0 = not paged */
    char *text;         /* UTF-8, NUL-terminated, owned */
    size_t len;
} ingest_block;

typedef struct ingest_doc {
    char *key;          /* unique within the source file: "" for a whole file, else a record id */
    char *title;        /* may be NULL */
    const char *type;   /* "text", "markdown", "html", "pdf", "json", "jsonl", "csv", "code" */
    ingest_block *blocks;
    size_t n_blocks, cap_blocks;
    meta_list meta;     /* parser-found metadata (front matter, <meta>, PDF info, record fields) */
    bool utf8_repaired; /* invalid UTF-8 was replaced by U+FFFD */
    char encoding[32];  /* plain text that was not UTF-8: the charset it was read as (else "") */
    char key_alt[48];   /* with ingest_options.caller_unique_keys: the record's position
                         * ("line:7", "row:3"); a repeated key becomes "key@key_alt" */
} ingest_doc;

void ingest_doc_init(ingest_doc *d);
void ingest_doc_free(ingest_doc *d);
cairn_status ingest_doc_add_block(ingest_doc *d, block_kind kind, int level, int page, const char *text, size_t len);

/* ---- options (from flags and .cairn/config) ---- */
typedef struct ingest_options {
    size_t max_file_bytes;      /* size cap of whole-file formats (read into memory); larger files are skipped */
    size_t max_stream_bytes;    /* size cap of streamed record files (JSONL, CSV with a row per document) */
    size_t max_record_bytes;    /* one JSONL line / CSV row: longer ones are skipped, with a warning
                                 * naming the line (a CSV header that long fails the file) */
    const char *json_id_field;  /* JSON/JSONL: defaults "_id" then "id" */
    const char *json_title_field; /* default "title" */
    const char *json_text_field;  /* default "text" */
    bool csv_row_per_doc;       /* CSV: one document per row (default) or one per file */
    const char *csv_text_columns; /* comma list; NULL = all columns */
    bool caller_unique_keys;    /* JSONL/CSV rows: emit record ids as they are (with key_alt) and let
                                 * the callee make repeats unique (the pipeline does, through the
                                 * store, so memory does not grow with the number of records);
                                 * else the parser keeps a set of the keys (8-16 bytes each) */
} ingest_options;

void ingest_options_default(ingest_options *o);

/* Called for each document a file yields. The callee may keep nothing it
 * does not copy; the caller frees the document after the call. */
typedef cairn_status (*ingest_emit_fn)(void *ctx, ingest_doc *doc);

typedef struct ingest_parser {
    const char *name;   /* = ingest_doc.type */
    /* Parse `len` bytes of `data` (NUL-terminated) read from `path`. */
    cairn_status (*parse)(const char *path, const char *data, size_t len,
                          const ingest_options *opt, ingest_emit_fn emit, void *ctx);
} ingest_parser;

/* Choose a parser by extension and content sniffing. Returns NULL and sets
 * *why (static string) for binary/unknown files that should be skipped. */
const ingest_parser *ingest_detect(const char *path, const char *data, size_t len, const char **why);

/* Read a file (capped), detect, parse, emit. CAIRN_ERR_UNSUPPORTED = skipped
 * (detail says why); other errors = failed (detail names file and reason). */
cairn_status ingest_file(const char *path, const ingest_options *opt, ingest_emit_fn emit, void *ctx);

/* A file's bytes (read into a buffer that lives until release); always
 * NUL-terminated. Files over `limit` bytes: CAIRN_ERR_TOO_LARGE. */
typedef struct ingest_data {
    const char *data;
    size_t len;
    void *map_;         /* private */
    size_t map_len_;
    char *heap_;
} ingest_data;
cairn_status ingest_data_load(const char *path, size_t limit, ingest_data *d);
void ingest_data_release(ingest_data *d);

/* Detect, parse and emit already-loaded bytes (ingest_file without the
 * read). Emitted documents always hold valid UTF-8: invalid sequences are
 * replaced and doc->utf8_repaired is set. */
cairn_status ingest_buffer(const char *path, const char *data, size_t len,
                           const ingest_options *opt, ingest_emit_fn emit, void *ctx);

/* Which parser a file gets, decided from its first 64 KiB (cut at the last
 * whole line); *streamed = the parser reads it record by record in bounded
 * memory (JSONL; CSV with a row per document) through ingest_stream_file,
 * whatever its size (up to max_stream_bytes). *parser = NULL (and *why) for
 * a file to skip. CAIRN_ERR_IO: cannot open/read; CAIRN_ERR_UNSUPPORTED:
 * not a regular file. */
cairn_status ingest_probe(const char *path, const ingest_options *opt, const ingest_parser **parser,
                          bool *streamed, const char **why);

/* Parse a record file (ingest_probe said *streamed) through a bounded
 * window: memory = the longest record (capped by max_record_bytes) plus
 * 1 MiB, not the file. When expect_hash is given, every byte read is hashed
 * (XXH3-128, as cairn_hash128_hex) and a mismatch at the end (the file
 * changed since it was hashed) gives CAIRN_ERR_CORRUPT. Emitted documents
 * hold valid UTF-8, like ingest_buffer's. */
cairn_status ingest_stream_file(const char *path, const ingest_parser *parser, const char *expect_hash,
                                const ingest_options *opt, ingest_emit_fn emit, void *ctx);
/* The same, keeping *bytes_read at the bytes read so far (for progress). */
cairn_status ingest_stream_file_progress(const char *path, const ingest_parser *parser, const char *expect_hash,
                                         const ingest_options *opt, ingest_emit_fn emit, void *ctx,
                                         uint64_t *bytes_read);

/* Replace invalid UTF-8 in every string of the document (sets utf8_repaired). */
cairn_status ingest_doc_repair(ingest_doc *d);

/* Validate UTF-8; if invalid, replace bad sequences with U+FFFD into a new
 * buffer (*out, caller frees) and set *repaired. *out == NULL when valid. */
cairn_status utf8_repair(const char *s, size_t len, char **out, size_t *out_len, bool *repaired);

/* Programming language named by a source file's name ("c", "python"...), or NULL. */
const char *ingest_code_language(const char *path);

/* The individual parsers (one file each in src/ingest/). */
extern const ingest_parser ingest_parser_text;
extern const ingest_parser ingest_parser_code;
extern const ingest_parser ingest_parser_markdown;
extern const ingest_parser ingest_parser_html;
extern const ingest_parser ingest_parser_pdf;
extern const ingest_parser ingest_parser_json;
extern const ingest_parser ingest_parser_jsonl;
extern const ingest_parser ingest_parser_csv;
extern const ingest_parser ingest_parser_man;     /* man.c: roff manual pages */
extern const ingest_parser ingest_parser_office;  /* office.c: docx pptx xlsx odt odp ods epub (type = the format) */
extern const ingest_parser ingest_parser_rtf;     /* rtf.c */

#endif
