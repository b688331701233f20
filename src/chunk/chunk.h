/*
 * chunk.h — structure-aware chunking with stable ids.
 *
 * A document's blocks (ingest.h) become chunks: windows of about
 * `max_tokens` tokens that
 *   - start a new chunk at every heading (each chunk keeps its heading path,
 *     "Top > Section > Subsection");
 *   - prefer to break between blocks (paragraphs, list items, code blocks,
 *     table rows), then between sentences (prose) or lines (code), then
 *     between words — never inside a word, unless a single "word" is longer
 *     than a whole chunk;
 *   - repeat about `overlap_tokens` tokens (whole sentences/lines) of the
 *     previous window when a section is split;
 *   - carry the page of their first block.
 *
 * Tokens are estimated without a model vocabulary: a run of letters/digits
 * counts 1 token per started 8 bytes, every other non-space character (and
 * every CJK character) counts 1. For English prose that is close to word
 * count plus punctuation, a little under BPE token counts.
 *
 * Stable ids: chunk.key = hash(record key, title, heading path, page, text,
 * n-th repetition of that text in the document). Re-chunking unchanged
 * content yields the same keys, independent of the file's path, so a moved
 * file or an edit elsewhere in the document keeps the other chunks' keys.
 */
#ifndef CAIRN_CHUNK_H
#define CAIRN_CHUNK_H

#include "ingest/ingest.h"

#define CHUNK_DEFAULT_TOKENS 256
#define CHUNK_DEFAULT_OVERLAP 32
#define CHUNK_MIN_TOKENS 16
#define CHUNK_MAX_TOKENS 8192

typedef struct chunk_options {
    size_t max_tokens;      /* target window; CHUNK_MIN_TOKENS..CHUNK_MAX_TOKENS */
    size_t overlap_tokens;  /* < max_tokens / 2 */
} chunk_options;

typedef struct chunk {
    char *text;             /* UTF-8, NUL-terminated, owned */
    size_t len;
    char *heading_path;     /* "" when none; owned */
    int page;               /* 0 = not paged */
    int ntokens;
    int ord;                /* 0-based position in the document */
    uint64_t key;           /* stable id (see above) */
} chunk;

typedef struct chunk_list { chunk *c; size_t n, cap; } chunk_list;

void chunk_options_default(chunk_options *o);
/* Validates and clamps nothing: out-of-range options are CAIRN_ERR_INVALID. */
cairn_status chunk_options_check(const chunk_options *o);

/* Chunk `d` into `out` (appended; call chunk_list_free when done). */
cairn_status chunk_doc(const ingest_doc *d, const chunk_options *o, chunk_list *out);
void chunk_list_free(chunk_list *l);

/* The token estimate used for windows. */
size_t chunk_count_tokens(const char *s, size_t len);

/* 16 lowercase hex digits of a chunk key + NUL. */
void chunk_key_hex(uint64_t key, char out[17]);

#endif
