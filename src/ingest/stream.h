/*
 * stream.h — reading a record-oriented file (JSONL, CSV with a row per
 * document) through a bounded window instead of whole. Internal to
 * src/ingest/.
 *
 * The window d[0..len) holds the bytes from file offset `base` on; a parser
 * walks it by offsets, and when a record runs past the end it calls
 * rstream_more(keep): bytes before `keep` (records already done) are
 * dropped, the rest moves to the front and more is read. So memory is the
 * longest record plus one read (RSTREAM_READ bytes), never the file: a record
 * longer than max_record gives CAIRN_ERR_TOO_LARGE and the parser decides
 * (both JSONL and CSV skip that record, scanning past it without holding it).
 *
 * Every byte read also goes into an XXH3-128 state, so at the end the
 * pipeline can check that what was parsed is the content it hashed before
 * (a file rewritten while being read is not stored under a stale hash).
 *
 * The same parsers run on a buffer already in memory (ingest_buffer, tests,
 * json.c's one-object-per-line files): rstream_open_mem gives a window that
 * is the whole buffer, at EOF from the start.
 */
#ifndef CAIRN_INGEST_STREAM_H
#define CAIRN_INGEST_STREAM_H

#include "ingest/ingest.h"
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#define RSTREAM_READ ((size_t)1 << 20) /* bytes asked of read(2) at a time (at least) */

typedef struct rstream {
    const char *path;
    int fd;                 /* -1: memory buffer */
    const char *d;          /* window: d[0..len), NUL at d[len] */
    size_t len;
    uint64_t base;          /* file offset of d[0] */
    size_t max_record;      /* longest record kept whole (bytes) */
    bool eof;               /* nothing more to read after d[len-1] */
    char *buf_;             /* owned window (file mode) */
    size_t cap_;
    uint64_t total_;        /* bytes read so far */
    uint64_t *progress_; /* optional: mirrors total_ */
    XXH3_state_t hash_;
    struct decomp *dec_;    /* a compressed file: reads go through the decoder
                             * (decompress.h), hash_ then covers the raw bytes */
} rstream;

/* Open a file for streaming (read-only). Errors name the file. */
cairn_status rstream_open_file(rstream *s, const char *path, size_t max_record);
/* After rstream_open_file: when the file starts with a compression
 * signature, read it through a decoder capped at max_out uncompressed
 * bytes (cap_name names the setting in the refusal). A no-op otherwise. */
cairn_status rstream_decompress(rstream *s, uint64_t max_out, const char *cap_name);
/* A window over bytes already in memory (not copied; must outlive s). */
void rstream_open_mem(rstream *s, const char *path, const char *data, size_t len, size_t max_record);
/* Drop d[0..keep), read more after what is left. *more = false at EOF
 * (nothing was added, nothing dropped: a memory window is at EOF from the
 * start). CAIRN_ERR_TOO_LARGE (nothing changed) when the kept
 * bytes already fill max_record; CAIRN_ERR_IO on a read error. */
cairn_status rstream_more(rstream *s, size_t keep, bool *more);
/* After EOF: the content hash (as cairn_hash128_hex) of all bytes read. */
void rstream_hash_hex(rstream *s, char out[33]);
void rstream_close(rstream *s);

/* The streaming parsers (jsonl.c, csv.c). Same records, keys, warnings and
 * errors as parsing the whole buffer. */
cairn_status jsonl_parse_stream(rstream *s, const ingest_options *opt, ingest_emit_fn emit, void *ctx);
cairn_status csv_parse_stream(rstream *s, const ingest_options *opt, ingest_emit_fn emit, void *ctx);

/* Tests: make rstream_more read `n` bytes at a time (0 = the default), so
 * small files cross many window boundaries. */
void rstream_set_read_size_for_tests(size_t n);

#endif
