/* segment.h — internal: one immutable BM25 segment file (format in segment.c),
 * its in-memory builder, and posting-block decoding used by query.c. */
#ifndef CAIRN_INDEX_SEGMENT_H
#define CAIRN_INDEX_SEGMENT_H

#include "base/base.h"

#define SEG_BLOCK 128               /* postings per block */
#define SEG_ABSENT UINT32_MAX       /* doclen of an id that is not in the segment */
#define SEG_MAX_SPAN (1u << 26)     /* widest chunk id range per segment */

typedef struct seg_header {
    char magic[8];          /* "CAIRNBM1" */
    uint32_t version;       /* 1 */
    uint32_t n_terms;
    uint64_t base;          /* chunk id of local doc 0 */
    uint64_t max_chunk;     /* highest chunk id present */
    uint64_t total_len;     /* sum of present doclens */
    uint32_t n_span;        /* local ids 0..n_span-1 */
    uint32_t n_docs;        /* present docs */
    uint32_t n_blocks;
    uint32_t term_bytes;
    uint64_t postings_len;
    uint64_t file_size;
    uint64_t checksum;      /* xxh3-64 of bytes [sizeof header, file_size) */
} seg_header;

typedef struct seg_term {
    uint32_t df;
    uint32_t first_block;
    uint32_t n_blocks;
    uint32_t max_tf;
} seg_term;

typedef struct seg_block {
    uint32_t last_doc;      /* local id of the block's last posting */
    uint32_t min_dl;        /* smallest doclen in the block */
    uint32_t max_tf;        /* largest tf in the block */
    uint32_t count;         /* postings (1..SEG_BLOCK) */
    uint64_t off;           /* byte offset in the postings section */
} seg_block;

typedef struct seg {
    char *path;
    const uint8_t *map;
    size_t map_len;
    seg_header h;
    const uint32_t *doclen;     /* [n_span] */
    const uint32_t *term_off;   /* [n_terms + 1] */
    const char *term_bytes;
    const seg_term *terms;      /* [n_terms] */
    const seg_block *blocks;    /* [n_blocks] */
    const uint8_t *postings;    /* [postings_len] */
} seg;

/* mmap + validate (checksum, bounds, monotonic offsets). */
cairn_status seg_open(const char *path, seg **out);
void seg_close(seg *s);
/* Drop the pages of bytes [from, to) from this process (they stay in the
 * page cache): writers call it on what they have read. */
void seg_release(const seg *s, uint64_t from, uint64_t to);
/* Term index or -1. */
int64_t seg_find(const seg *s, const char *term, size_t len);
static inline const char *seg_term_str(const seg *s, uint32_t t, size_t *len)
{
    *len = s->term_off[t + 1] - s->term_off[t];
    return s->term_bytes + s->term_off[t];
}
/* Decode block b into docs/tfs (local ids); returns count, or 0 if corrupt. */
uint32_t seg_decode_block(const seg *s, uint32_t b, uint32_t prev_last, uint32_t *docs, uint32_t *tfs);
/* A term's postings, block by block: seg_postings_next fills docs/tfs (local
 * ids, at most SEG_BLOCK each) with the next block and sets *n, 0 at the end;
 * corrupt data is CAIRN_ERR_CORRUPT naming the file. */
typedef struct seg_postings {
    const seg *s;
    uint32_t b, end, prev;
} seg_postings;
void seg_postings_init(seg_postings *it, const seg *s, int64_t term);
cairn_status seg_postings_next(seg_postings *it, uint32_t *docs, uint32_t *tfs, uint32_t *n);

/* ---- builder ---- */
typedef struct seg_builder seg_builder;

cairn_status seg_builder_new(seg_builder **out);
void seg_builder_free(seg_builder *b);
/* Docs go in ascending chunk id order. */
cairn_status seg_builder_begin_doc(seg_builder *b, uint64_t chunk_id);
cairn_status seg_builder_term(seg_builder *b, const char *term, size_t len, uint32_t weight);
cairn_status seg_builder_end_doc(seg_builder *b);
/* For merging: a doc with a known length, then postings term by term (a
 * term's docs ascending). */
cairn_status seg_builder_doc_len(seg_builder *b, uint64_t chunk_id, uint32_t dl);
cairn_status seg_builder_posting(seg_builder *b, const char *term, size_t len, uint64_t chunk_id, uint32_t tf);
size_t seg_builder_postings(const seg_builder *b);
uint32_t seg_builder_docs(const seg_builder *b);
uint64_t seg_builder_first(const seg_builder *b);
/* Write the segment to `path` (temp file + fsync + rename; dir fsync'd by caller). */
cairn_status seg_builder_write(seg_builder *b, const char *path);
/* Make room for a doc at chunk_id: false if the id range would get too wide. */
bool seg_builder_fits(const seg_builder *b, uint64_t chunk_id);
/* Bytes the builder holds, plus what seg_builder_write adds (the flush budget). */
size_t seg_builder_bytes(const seg_builder *b);

/* ---- streaming writer (memory independent of the segment size) ----
 * Docs (local ids < n_span) first, then terms in ascending memcmp order, each
 * with its postings in ascending doc order; a term without postings is left
 * out. finish() writes path atomically (temp file, fsync, rename). */
typedef struct seg_writer seg_writer;
cairn_status seg_writer_new(const char *path, uint64_t base, uint32_t n_span, seg_writer **out);
cairn_status seg_writer_doc(seg_writer *w, uint32_t local, uint32_t dl);
cairn_status seg_writer_term(seg_writer *w, const char *term, size_t len);
cairn_status seg_writer_posting(seg_writer *w, uint32_t local, uint32_t tf);
uint32_t seg_writer_docs(const seg_writer *w);
cairn_status seg_writer_finish(seg_writer *w);
void seg_writer_free(seg_writer *w);

/* Merge segs[0..n) (ascending, disjoint id ranges) into one segment at path
 * without the chunks marked in `dead`, streaming: k-way over the sorted
 * dictionaries. *wrote = false when every chunk is dead (no file). */
cairn_status seg_merge(seg *const *segs, size_t n, const uint64_t *dead, uint64_t nbits, const char *path,
                       bool *wrote);

#endif
