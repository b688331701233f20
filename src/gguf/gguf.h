/*
 * gguf.h — validating, zero-copy (mmap) GGUF v2/v3 reader, and a writer.
 *
 * The on-disk format is described at the top of gguf.c. Every count, offset
 * and size read from the file is checked against the file's length, so a
 * truncated or hostile file yields CAIRN_ERR_CORRUPT with a detail, never a
 * crash.
 */
#ifndef CAIRN_GGUF_H
#define CAIRN_GGUF_H

#include "base/base.h"

/* GGUF metadata value types (numbering fixed by the format). */
typedef enum {
    GGUF_TYPE_UINT8 = 0, GGUF_TYPE_INT8 = 1, GGUF_TYPE_UINT16 = 2, GGUF_TYPE_INT16 = 3,
    GGUF_TYPE_UINT32 = 4, GGUF_TYPE_INT32 = 5, GGUF_TYPE_FLOAT32 = 6, GGUF_TYPE_BOOL = 7,
    GGUF_TYPE_STRING = 8, GGUF_TYPE_ARRAY = 9, GGUF_TYPE_UINT64 = 10, GGUF_TYPE_INT64 = 11,
    GGUF_TYPE_FLOAT64 = 12, GGUF_TYPE_COUNT
} gguf_type;

typedef struct gguf_str { const char *ptr; uint64_t len; } gguf_str; /* NOT NUL-terminated; points into the mapping */

typedef struct gguf_kv {
    gguf_str key;
    gguf_type type;
    union {
        uint64_t u64; int64_t i64; double f64; bool b; gguf_str str;
        struct { gguf_type type; uint64_t count; const void *data; } arr; /* data: raw elements in the file
                                                                            (unaligned: read with memcpy or
                                                                            gguf_arr_i64/gguf_arr_f64);
                                                                            for string arrays use gguf_arr_str() */
    } v;
} gguf_kv;
/* Scalars are widened into the union: unsigned types (and BOOL) fill u64 (and b for
 * BOOL), signed types fill i64, FLOAT32/FLOAT64 fill f64. */

#define GGUF_MAX_DIMS 4
#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_NAME 63          /* longest tensor name the writer accepts (ggml's limit) */
typedef struct gguf_tensor {
    gguf_str name;
    uint32_t n_dims;
    int64_t ne[GGUF_MAX_DIMS];  /* ne[0] = innermost (row length); unused dims = 1 */
    uint32_t type;              /* ggml tensor type id, see kernels/quant.h */
    uint64_t offset;            /* relative to the data section */
    uint64_t nbytes;
    const void *data;           /* points into the mapping */
} gguf_tensor;

typedef struct gguf_file gguf_file;

cairn_status gguf_open(const char *path, gguf_file **out);
/* Parse a GGUF image already in memory (not copied: `data` must outlive the
 * handle). `name` is used in error details. For tests and fuzzing. Tensor
 * data is aligned only as far as `data` is (a mapping is page-aligned). */
cairn_status gguf_open_mem(const void *data, size_t size, const char *name, gguf_file **out);
void gguf_close(gguf_file *g);

uint32_t gguf_version(const gguf_file *g);
uint64_t gguf_kv_count(const gguf_file *g);
const gguf_kv *gguf_kv_at(const gguf_file *g, uint64_t i);
const gguf_kv *gguf_kv_find(const gguf_file *g, const char *key);   /* O(1) (hashed) */
uint64_t gguf_tensor_count(const gguf_file *g);
const gguf_tensor *gguf_tensor_at(const gguf_file *g, uint64_t i);
const gguf_tensor *gguf_tensor_find(const gguf_file *g, const char *name); /* O(1) (hashed) */
size_t gguf_file_size(const gguf_file *g);
/* The open file descriptor (-1 for memory images). The mapping (gguf_open)
 * starts on a 2 MiB boundary, so offsets and addresses agree modulo 2 MiB. */
int gguf_fd(const gguf_file *g);
/* Start of the file mapping (NULL for memory images). */
const void *gguf_map(const gguf_file *g);
uint32_t gguf_alignment(const gguf_file *g);
const char *gguf_path(const gguf_file *g);
/* Byte offset of the data section in the file (tensor offsets are relative to it). */
uint64_t gguf_data_offset(const gguf_file *g);
/* Ask the kernel to start reading the whole data section in the background
 * (madvise WILLNEED), so the first pass over the weights does not stall on
 * page faults one page at a time. A no-op for gguf_open_mem images. */
void gguf_prefetch(const gguf_file *g);
/* Copy n bytes of the mapping starting at p (inside the file's mapping) to
 * dst with pread(), so the pages are never mapped into this process: for a
 * table read a few rows at a time (the token embedding), the mapping would
 * pull 64 KiB around every row into the resident set. memcpy for memory
 * images. */
void gguf_read(const gguf_file *g, const void *p, size_t n, void *dst);
/* Tell the kernel the caller is done with a tensor's pages for now (they are
 * dropped from memory and re-read from the file if touched again); a no-op
 * for gguf_open_mem images. Keeps RSS low when streaming through a model. */
void gguf_tensor_release(const gguf_file *g, const gguf_tensor *t);
/* Number of values in a tensor (product of ne). */
int64_t gguf_tensor_nelements(const gguf_tensor *t);

/* Typed getters: CAIRN_ERR_NOT_FOUND if absent, CAIRN_ERR_CORRUPT on a type
 * mismatch that cannot be converted (integer widths convert when in range). */
cairn_status gguf_get_u32(const gguf_file *g, const char *key, uint32_t *out);
cairn_status gguf_get_i64(const gguf_file *g, const char *key, int64_t *out);
cairn_status gguf_get_f32(const gguf_file *g, const char *key, float *out);
cairn_status gguf_get_bool(const gguf_file *g, const char *key, bool *out);
cairn_status gguf_get_str(const gguf_file *g, const char *key, gguf_str *out);
/* An array KV whose elements have type `elem` (GGUF_TYPE_COUNT = any element type):
 * CAIRN_ERR_NOT_FOUND if absent, CAIRN_ERR_CORRUPT if not such an array. */
cairn_status gguf_get_arr(const gguf_file *g, const char *key, gguf_type elem, const gguf_kv **out);
/* Array access. Element i of a string array: */
gguf_str gguf_arr_str(const gguf_kv *kv, uint64_t i);  /* O(1): the reader indexes string arrays at open;
                                                           {NULL,0} when out of range or not a string array */
/* Element i of a numeric array, converted: integers (and bool) for gguf_arr_i64 (false if out
 * of range, not an integer array, or a UINT64 above INT64_MAX); any numeric type for gguf_arr_f64. */
bool gguf_arr_i64(const gguf_kv *kv, uint64_t i, int64_t *out);
bool gguf_arr_f64(const gguf_kv *kv, uint64_t i, double *out);
bool gguf_str_eq(gguf_str s, const char *c);
const char *gguf_type_name(gguf_type t);
/* Bytes of one scalar of type t (0 for STRING, ARRAY and unknown types). */
size_t gguf_type_size(gguf_type t);

/* ---- tensor types (ggml numbering) as a storage format ----
 * The reader knows the block layout of every ggml type, including ones the
 * kernels cannot compute with (IQ*, TQ*), so `model info` can describe any file. */
typedef struct gguf_ttype_info {
    const char *name;        /* "F32", "Q4_K", ... */
    uint32_t block_size;     /* values per block */
    uint32_t type_size;      /* bytes per block */
} gguf_ttype_info;
/* NULL for an unknown or retired type id. */
const gguf_ttype_info *gguf_ttype(uint32_t type);
/* Type id by name (case-insensitive); false if unknown. */
bool gguf_ttype_by_name(const char *name, uint32_t *type);
/* Bytes of `nelements` values of `type` (0 if unknown, not a whole number of blocks, or overflow). */
uint64_t gguf_ttype_nbytes(uint32_t type, int64_t nelements);

/* Scan a tensor's data for NaN/Inf: every value of F32/F16/BF16 tensors, the
 * fp16/f32 scales of quantized blocks (types without a plain scale field are
 * not checked). CAIRN_ERR_CORRUPT with the first bad value's index in
 * *bad_at. Reads the whole tensor (gguf_check.c). */
cairn_status gguf_tensor_check(const gguf_tensor *t, uint64_t *bad_at);

/* ---- writer ----
 * KVs and tensors are kept in memory in insertion order and written as GGUF v3.
 * Setting a key that exists replaces its value in place (order kept). The data
 * alignment is general.alignment when set (a power of two), else 32. Every
 * tensor's data is padded with zeros to the alignment, so a file read and written
 * back unchanged is byte-identical to a file written the same way by ggml. */
typedef struct gguf_writer gguf_writer;
cairn_status gguf_writer_new(gguf_writer **out);
void gguf_writer_free(gguf_writer *w);
cairn_status gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v);
cairn_status gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v);
cairn_status gguf_writer_set_u64(gguf_writer *w, const char *key, uint64_t v);
cairn_status gguf_writer_set_f32(gguf_writer *w, const char *key, float v);
cairn_status gguf_writer_set_bool(gguf_writer *w, const char *key, bool v);
cairn_status gguf_writer_set_str(gguf_writer *w, const char *key, const char *v);
/* data: count elements of `elem` in the file's little-endian layout (not STRING/ARRAY). */
cairn_status gguf_writer_set_arr(gguf_writer *w, const char *key, gguf_type elem, const void *data, uint64_t count);
cairn_status gguf_writer_set_arr_str(gguf_writer *w, const char *key, const char *const *strs, uint64_t count);
/* Copy one KV (any type, including string arrays) from a reader. */
cairn_status gguf_writer_set_kv(gguf_writer *w, const gguf_kv *kv);
/* Remove a key if present (no-op otherwise). */
void gguf_writer_remove(gguf_writer *w, const char *key);
/* Copy every KV of `src` (used by quantize). */
cairn_status gguf_writer_copy_kvs(gguf_writer *w, const gguf_file *src);
/* Add a tensor; `data` is copied (nbytes must match type and shape). */
cairn_status gguf_writer_add_tensor(gguf_writer *w, const char *name, uint32_t type,
                                    uint32_t n_dims, const int64_t *ne, const void *data, size_t nbytes);
/* Same, without a copy: `data` must stay valid until gguf_writer_write returns
 * (e.g. a tensor of an open gguf_file, copied unchanged by quantize). */
cairn_status gguf_writer_add_tensor_borrow(gguf_writer *w, const char *name, uint32_t type,
                                           uint32_t n_dims, const int64_t *ne, const void *data, size_t nbytes);
/* Same, taking ownership of a cairn_malloc'd buffer (freed by the writer, even on failure). */
cairn_status gguf_writer_add_tensor_take(gguf_writer *w, const char *name, uint32_t type,
                                         uint32_t n_dims, const int64_t *ne, void *data, size_t nbytes);
/* Same, with the data produced at write time: fill(ctx, dst, nbytes) is called
 * once, in tensor order, with a scratch buffer of nbytes, right before the
 * tensor is written — so a writer streaming a large model holds one tensor in
 * memory, not all of them. A failing fill aborts the write with its status. */
typedef cairn_status (*gguf_tensor_fill_fn)(void *ctx, void *dst, size_t nbytes);
cairn_status gguf_writer_add_tensor_lazy(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                                         const int64_t *ne, size_t nbytes, gguf_tensor_fill_fn fill, void *ctx);
uint64_t gguf_writer_tensor_count(const gguf_writer *w);
/* Write atomically (temporary file in the same directory, fsync, rename). */
cairn_status gguf_writer_write(gguf_writer *w, const char *path);

#endif
