/*
 * decompress.h — single compressed files (.gz .bz2 .xz .zst) read through
 * libarchive's decompression filters and its "raw" format (one stream, no
 * archive structure). Internal to src/ingest/.
 *
 * The codec is recognised by its signature, never by the name alone; the
 * inner name is the path without its compression suffix ("x.md.gz" ->
 * "x.md", "x.tgz" -> "x.tar"), so the inner format is detected as usual.
 *
 * Caps, on the *uncompressed* bytes:
 *   - an absolute cap given by the caller (ingest.max_file_mb for whole
 *     files, ingest.max_stream_gb for streamed record files);
 *   - a ratio cap: once more than DECOMP_RATIO_AFTER bytes came out, more
 *     than DECOMP_MAX_RATIO output bytes per input byte is a decompression
 *     bomb and is refused (real text compresses 3-10x; gzip's maximum is
 *     ~1030x, bzip2/xz/zstd reach 10^6x and more on runs of one byte).
 * Both give CAIRN_ERR_UNSUPPORTED (the file is skipped, with the reason:
 * "decompression bomb refused: ..."), never CAIRN_ERR_TOO_LARGE, which the
 * record parsers read as "this one record is too long".
 * Damaged data gives CAIRN_ERR_CORRUPT naming the codec and libarchive's
 * reason. libarchive is used only with its built-in codecs (zlib, libbz2,
 * liblzma, libzstd): a codec that would need an external program is refused.
 */
#ifndef CAIRN_INGEST_DECOMPRESS_H
#define CAIRN_INGEST_DECOMPRESS_H

#include "ingest/ingest.h"
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#define DECOMP_MAX_RATIO 200
#define DECOMP_RATIO_AFTER ((uint64_t)16 << 20)

/* "gzip", "bzip2", "xz", "zstd" when data starts with that signature, else NULL. */
const char *decomp_codec(const void *data, size_t len);

/* The path without a compression suffix (.gz .gzip .bz2 .xz .zst .zstd;
 * .tgz/.tbz2/.txz become .tar) in out (cap bytes); the path itself when it
 * has none. */
void decomp_inner_name(const char *path, char *out, size_t cap);

typedef struct decomp decomp;

/* A decoder over an open fd (not closed by decomp_close) or a memory
 * buffer (must outlive it). raw_hash, when given, receives every raw byte
 * read from the fd. max_out: the absolute cap (see above); cap_name names
 * the setting in the message ("ingest.max_file_mb"). */
cairn_status decomp_open_fd(decomp **out, int fd, const char *codec, uint64_t max_out, const char *cap_name,
                            XXH3_state_t *raw_hash);
cairn_status decomp_open_mem(decomp **out, const void *data, size_t len, const char *codec, uint64_t max_out,
                             const char *cap_name);
/* Read up to n uncompressed bytes; *got = 0 at the end. */
cairn_status decomp_read(decomp *d, void *buf, size_t n, size_t *got);
uint64_t decomp_raw_bytes(const decomp *d);  /* compressed bytes consumed so far */
uint64_t decomp_out_bytes(const decomp *d);  /* uncompressed bytes produced so far */
const char *decomp_name(const decomp *d);     /* "gzip" ... */
void decomp_close(decomp *d);

/* Decompress a whole buffer (its codec already known) into *out (NUL-
 * terminated, caller frees), at most max_out bytes. */
cairn_status decomp_buffer(const char *data, size_t len, const char *codec, uint64_t max_out, const char *cap_name,
                           char **out, size_t *out_len);

#endif
