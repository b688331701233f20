/*
 * gguf.c — the GGUF reader: mmap, validate everything, index, zero-copy access.
 *
 * On-disk format (GGUF v2 and v3 are identical for little-endian files; v1,
 * which used 32-bit counts, and big-endian files are rejected). All integers
 * are little-endian and nothing before the data section is aligned:
 *
 *   offset  size  field
 *   0       4     magic "GGUF" (bytes 47 47 55 46)
 *   4       4     u32 version: 2 or 3
 *   8       8     u64 tensor_count
 *   16      8     u64 kv_count
 *   24      ...   kv_count KV pairs:
 *                   string key             (u64 length + bytes, no NUL)
 *                   u32    value type      (gguf_type: 0..12)
 *                   value:
 *                     UINT8/INT8/BOOL: 1 byte; UINT16/INT16: 2; UINT32/INT32/FLOAT32: 4;
 *                     UINT64/INT64/FLOAT64: 8; STRING: u64 length + bytes;
 *                     ARRAY: u32 element type, u64 count, then count elements
 *                            (strings are each length-prefixed; arrays of arrays
 *                            are not supported, as in ggml)
 *         ...   tensor_count tensor infos:
 *                   string name
 *                   u32    n_dims (1..4)
 *                   u64    ne[n_dims]      (ne[0] = row length, the fastest-varying dim)
 *                   u32    ggml type       (block layout: gguf_ttype())
 *                   u64    offset          (from the start of the data section; a
 *                                           multiple of the alignment)
 *         ...   zero padding to a multiple of `alignment`
 *   data    ...   the data section: tensor bytes, each tensor padded to the alignment.
 *
 *   alignment = KV "general.alignment" (UINT32, a power of two) if present, else 32.
 *   A tensor's size is (product of ne) / block_size * type_size, and ne[0] must be
 *   a multiple of block_size (rows are whole blocks).
 *
 * Validation (a failure is CAIRN_ERR_CORRUPT with a detail naming the offset,
 * key or tensor; never a crash, never an out-of-bounds read):
 *   - every length and count is checked against the bytes left in the file
 *     before anything is allocated for it, and capped (GGUF_CAP_*), so a hostile
 *     header cannot ask for a giant allocation;
 *   - value and element types are known; keys and tensor names are non-empty
 *     and unique;
 *   - dims: 1 <= n_dims <= 4, every ne > 0, the product and the byte size do
 *     not overflow; the tensor type is known and rows are whole blocks;
 *   - tensor data lies inside the file, its offset is aligned, and no two
 *     tensors overlap.
 *
 * Cost: open is O(header size) plus O(total string-array elements) to index
 * string arrays (so gguf_arr_str() is O(1) on 150k-token vocabularies); the
 * tensor data is never touched (mmap, zero-copy). Keys and tensor names are
 * hashed (open addressing) with a seed chosen per open, so a crafted file
 * cannot make every name probe the same slots (quadratic open time).
 */
#include "gguf/gguf.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

/* Hard caps against hostile headers (real files are far below them). */
#define GGUF_CAP_KV          (1u << 16)
#define GGUF_CAP_TENSORS     (1u << 20)
#define GGUF_CAP_KEY_LEN     65535u
#define GGUF_CAP_TNAME_LEN   1023u
#define GGUF_CAP_STR_LEN     (1ull << 30)   /* one string value */
#define GGUF_CAP_ARR_STRINGS (1ull << 24)   /* elements of one string array */
#define GGUF_CAP_ALIGNMENT   (1u << 24)

struct gguf_file {
    char *path;
    const uint8_t *map;
    size_t size;
    bool mapped;            /* map came from mmap (else borrowed from gguf_open_mem) */
    int fd;                 /* the file, kept open for gguf_read; -1 for memory images */
    uint32_t version;
    uint32_t alignment;
    uint64_t n_kv, n_tensors;
    gguf_kv *kvs;
    gguf_tensor *tensors;
    uint64_t data_offset;
    uint64_t hash_seed;
    uint32_t *kv_hash;      /* open addressing: index + 1, 0 = empty */
    uint32_t *t_hash;
    size_t kv_hash_cap, t_hash_cap;   /* powers of two */
};

/* ---- tensor type table (ggml numbering; layout facts of the format) ---- */

static const gguf_ttype_info ttypes[] = {
    [0] = {"F32", 1, 4},       [1] = {"F16", 1, 2},       [2] = {"Q4_0", 32, 18},
    [3] = {"Q4_1", 32, 20},    [6] = {"Q5_0", 32, 22},    [7] = {"Q5_1", 32, 24},
    [8] = {"Q8_0", 32, 34},    [9] = {"Q8_1", 32, 36},    [10] = {"Q2_K", 256, 84},
    [11] = {"Q3_K", 256, 110}, [12] = {"Q4_K", 256, 144}, [13] = {"Q5_K", 256, 176},
    [14] = {"Q6_K", 256, 210}, [15] = {"Q8_K", 256, 292}, [16] = {"IQ2_XXS", 256, 66},
    [17] = {"IQ2_XS", 256, 74}, [18] = {"IQ3_XXS", 256, 98}, [19] = {"IQ1_S", 256, 50},
    [20] = {"IQ4_NL", 32, 18}, [21] = {"IQ3_S", 256, 110}, [22] = {"IQ2_S", 256, 82},
    [23] = {"IQ4_XS", 256, 136}, [24] = {"I8", 1, 1},     [25] = {"I16", 1, 2},
    [26] = {"I32", 1, 4},      [27] = {"I64", 1, 8},      [28] = {"F64", 1, 8},
    [29] = {"IQ1_M", 256, 56}, [30] = {"BF16", 1, 2},     [34] = {"TQ1_0", 256, 54},
    [35] = {"TQ2_0", 256, 66},
};

const gguf_ttype_info *gguf_ttype(uint32_t type)
{
    if (type >= CAIRN_ARRAY_LEN(ttypes) || !ttypes[type].name)
        return NULL;
    return &ttypes[type];
}

bool gguf_ttype_by_name(const char *name, uint32_t *type)
{
    for (uint32_t i = 0; i < CAIRN_ARRAY_LEN(ttypes); i++)
        if (ttypes[i].name && !strcasecmp(ttypes[i].name, name)) {
            *type = i;
            return true;
        }
    return false;
}

uint64_t gguf_ttype_nbytes(uint32_t type, int64_t nelements)
{
    const gguf_ttype_info *ti = gguf_ttype(type);
    if (!ti || nelements < 0 || (uint64_t)nelements % ti->block_size)
        return 0;
    uint64_t r;
    if (__builtin_mul_overflow((uint64_t)nelements / ti->block_size, (uint64_t)ti->type_size, &r))
        return 0;
    return r;
}

/* ---- metadata value types ---- */

static const char *const type_names[GGUF_TYPE_COUNT] = {
    "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "str", "arr", "u64", "i64", "f64",
};
static const uint8_t type_sizes[GGUF_TYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

const char *gguf_type_name(gguf_type t)
{
    return (unsigned)t < GGUF_TYPE_COUNT ? type_names[t] : "?";
}

size_t gguf_type_size(gguf_type t)
{
    return (unsigned)t < GGUF_TYPE_COUNT ? type_sizes[t] : 0;
}

static bool type_is_int(gguf_type t)
{
    switch (t) {
    case GGUF_TYPE_UINT8: case GGUF_TYPE_INT8: case GGUF_TYPE_UINT16: case GGUF_TYPE_INT16:
    case GGUF_TYPE_UINT32: case GGUF_TYPE_INT32: case GGUF_TYPE_UINT64: case GGUF_TYPE_INT64:
        return true;
    default:
        return false;
    }
}

static bool type_is_signed(gguf_type t)
{
    return t == GGUF_TYPE_INT8 || t == GGUF_TYPE_INT16 || t == GGUF_TYPE_INT32 || t == GGUF_TYPE_INT64;
}

/* Decode one little-endian scalar at p into the kv union (widened). */
static void scalar_decode(gguf_type t, const uint8_t *p, gguf_kv *kv)
{
    uint8_t u8; uint16_t u16; uint32_t u32; uint64_t u64;
    float f; double d;
    switch (t) {
    case GGUF_TYPE_UINT8: u8 = p[0]; kv->v.u64 = u8; break;
    case GGUF_TYPE_INT8: kv->v.i64 = (int8_t)p[0]; break;
    case GGUF_TYPE_BOOL: kv->v.u64 = 0; kv->v.b = p[0] != 0; break;
    case GGUF_TYPE_UINT16: memcpy(&u16, p, 2); kv->v.u64 = u16; break;
    case GGUF_TYPE_INT16: memcpy(&u16, p, 2); kv->v.i64 = (int16_t)u16; break;
    case GGUF_TYPE_UINT32: memcpy(&u32, p, 4); kv->v.u64 = u32; break;
    case GGUF_TYPE_INT32: memcpy(&u32, p, 4); kv->v.i64 = (int32_t)u32; break;
    case GGUF_TYPE_FLOAT32: memcpy(&f, p, 4); kv->v.f64 = f; break;
    case GGUF_TYPE_UINT64: memcpy(&u64, p, 8); kv->v.u64 = u64; break;
    case GGUF_TYPE_INT64: memcpy(&u64, p, 8); kv->v.i64 = (int64_t)u64; break;
    case GGUF_TYPE_FLOAT64: memcpy(&d, p, 8); kv->v.f64 = d; break;
    default: break;
    }
}

/* ---- the bounded cursor ---- */

typedef struct rd {
    const uint8_t *p;
    size_t size, pos;
    const char *path;
} rd;

static cairn_status rd_short(const rd *r, uint64_t need, const char *what)
{
    return cairn_fail(CAIRN_ERR_CORRUPT, "%s: truncated or corrupt: %s at offset %zu needs %llu bytes, "
                      "only %zu left in the file", r->path, what, r->pos, (unsigned long long)need,
                      r->size - r->pos);
}

static cairn_status rd_bytes(rd *r, uint64_t n, const char *what, const uint8_t **out)
{
    if (n > r->size - r->pos)
        return rd_short(r, n, what);
    *out = r->p + r->pos;
    r->pos += (size_t)n;
    return CAIRN_OK;
}

static cairn_status rd_u32(rd *r, const char *what, uint32_t *v)
{
    const uint8_t *p = NULL;
    CAIRN_TRY(rd_bytes(r, 4, what, &p));
    memcpy(v, p, 4);
    return CAIRN_OK;
}

static cairn_status rd_u64(rd *r, const char *what, uint64_t *v)
{
    const uint8_t *p = NULL;
    CAIRN_TRY(rd_bytes(r, 8, what, &p));
    memcpy(v, p, 8);
    return CAIRN_OK;
}

static cairn_status rd_str(rd *r, const char *what, uint64_t cap, gguf_str *s)
{
    uint64_t len;
    size_t at = r->pos;
    CAIRN_TRY(rd_u64(r, what, &len));
    if (len > cap)
        return cairn_fail(CAIRN_ERR_CORRUPT, "%s: %s at offset %zu has length %llu, above the cap of %llu",
                          r->path, what, at, (unsigned long long)len, (unsigned long long)cap);
    const uint8_t *p = NULL;
    CAIRN_TRY(rd_bytes(r, len, what, &p));
    s->ptr = (const char *)p;
    s->len = len;
    return CAIRN_OK;
}

/* ---- hashing of names ---- */

static size_t hash_cap_for(uint64_t n)
{
    size_t cap = 8;
    while (cap < 2 * n)
        cap <<= 1;
    return cap;
}

static bool str_eq2(gguf_str a, const char *b, size_t blen)
{
    return a.len == blen && (blen == 0 || memcmp(a.ptr, b, blen) == 0);
}

/* Returns the slot for name: either empty or holding the matching entry. */
static size_t hash_slot(const uint32_t *table, size_t cap, const char *name, size_t len,
                        gguf_str (*name_at)(const void *, uint32_t), const gguf_file *ctx)
{
    size_t mask = cap - 1;
    /* Seeded per open: a file cannot be crafted so all its names probe the same slots. */
    size_t i = (size_t)XXH3_64bits_withSeed(name, len, ctx->hash_seed) & mask;
    while (table[i]) {
        if (str_eq2(name_at(ctx, table[i] - 1), name, len))
            return i;
        i = (i + 1) & mask;
    }
    return i;
}

static gguf_str kv_name_at(const void *ctx, uint32_t i) { return ((const gguf_file *)ctx)->kvs[i].key; }
static gguf_str t_name_at(const void *ctx, uint32_t i) { return ((const gguf_file *)ctx)->tensors[i].name; }

/* ---- parsing ---- */

/* Read a value of type t (not ARRAY elements of arrays). `in_array` selects the
 * context for messages. */
static cairn_status parse_value(rd *r, gguf_kv *kv, const char *ctx)
{
    gguf_type t = kv->type;
    if ((unsigned)t >= GGUF_TYPE_COUNT)
        return cairn_fail(CAIRN_ERR_CORRUPT, "%s: %s: unknown value type %u", r->path, ctx, (unsigned)t);
    if (t == GGUF_TYPE_STRING)
        return rd_str(r, ctx, GGUF_CAP_STR_LEN, &kv->v.str);
    if (t != GGUF_TYPE_ARRAY) {
        const uint8_t *p = NULL;
        CAIRN_TRY(rd_bytes(r, type_sizes[t], ctx, &p));
        scalar_decode(t, p, kv);
        return CAIRN_OK;
    }
    uint32_t et;
    uint64_t count;
    CAIRN_TRY(rd_u32(r, ctx, &et));
    CAIRN_TRY(rd_u64(r, ctx, &count));
    if (et >= GGUF_TYPE_COUNT)
        return cairn_fail(CAIRN_ERR_CORRUPT, "%s: %s: unknown array element type %u", r->path, ctx, et);
    if (et == GGUF_TYPE_ARRAY)
        return cairn_fail(CAIRN_ERR_CORRUPT, "%s: %s: arrays of arrays are not supported", r->path, ctx);
    kv->v.arr.type = (gguf_type)et;
    kv->v.arr.count = count;
    kv->v.arr.data = NULL;
    if (et != GGUF_TYPE_STRING) {
        uint64_t n;
        if (__builtin_mul_overflow(count, (uint64_t)type_sizes[et], &n) || n > r->size - r->pos)
            return cairn_fail(CAIRN_ERR_CORRUPT, "%s: %s: array of %llu %s at offset %zu runs past the end "
                              "of the file", r->path, ctx, (unsigned long long)count, type_names[et], r->pos);
        const uint8_t *p = NULL;
        CAIRN_TRY(rd_bytes(r, n, ctx, &p));
        kv->v.arr.data = p;
        return CAIRN_OK;
    }
    /* Each string takes at least its 8-byte length: bound the count by the bytes left
     * before allocating the index. */
    if (count > (r->size - r->pos) / 8 || count > GGUF_CAP_ARR_STRINGS)
        return cairn_fail(CAIRN_ERR_CORRUPT, "%s: %s: string array count %llu at offset %zu is impossible "
                          "(file too short or above the cap of %llu)", r->path, ctx,
                          (unsigned long long)count, r->pos, (unsigned long long)GGUF_CAP_ARR_STRINGS);
    gguf_str *idx = count ? cairn_calloc((size_t)count, sizeof *idx) : NULL;
    if (count && !idx)
        return cairn_fail(CAIRN_ERR_NOMEM, "%s: %s: cannot index %llu strings", r->path, ctx,
                          (unsigned long long)count);
    for (uint64_t i = 0; i < count; i++) {
        cairn_status st = rd_str(r, ctx, GGUF_CAP_STR_LEN, &idx[i]);
        if (st != CAIRN_OK) {
            cairn_free(idx);
            return cairn_fail_wrap(st, "string %llu of %llu", (unsigned long long)i, (unsigned long long)count);
        }
    }
    kv->v.arr.data = idx;
    return CAIRN_OK;
}

static cairn_status parse_kvs(gguf_file *g, rd *r)
{
    char ctx[160];
    for (uint64_t i = 0; i < g->n_kv; i++) {
        gguf_kv *kv = &g->kvs[i];
        snprintf(ctx, sizeof ctx, "key of kv %llu", (unsigned long long)i);
        CAIRN_TRY(rd_str(r, ctx, GGUF_CAP_KEY_LEN, &kv->key));
        if (kv->key.len == 0)
            return cairn_fail(CAIRN_ERR_CORRUPT, "%s: kv %llu has an empty key", g->path, (unsigned long long)i);
        snprintf(ctx, sizeof ctx, "kv '%.*s'", (int)CAIRN_MIN(kv->key.len, 100), kv->key.ptr);
        uint32_t t;
        CAIRN_TRY(rd_u32(r, ctx, &t));
        if (t >= GGUF_TYPE_COUNT)
            return cairn_fail(CAIRN_ERR_CORRUPT, "%s: %s: unknown value type %u", g->path, ctx, t);
        kv->type = (gguf_type)t;
        CAIRN_TRY(parse_value(r, kv, ctx));
        size_t slot = hash_slot(g->kv_hash, g->kv_hash_cap, kv->key.ptr, kv->key.len, kv_name_at, g);
        if (g->kv_hash[slot])
            return cairn_fail(CAIRN_ERR_CORRUPT, "%s: duplicate key '%.*s'", g->path,
                              (int)CAIRN_MIN(kv->key.len, 100), kv->key.ptr);
        g->kv_hash[slot] = (uint32_t)i + 1;
    }
    return CAIRN_OK;
}

static cairn_status parse_alignment(gguf_file *g)
{
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    const gguf_kv *kv = gguf_kv_find(g, "general.alignment");
    if (!kv)
        return CAIRN_OK;
    uint64_t a;
    if (type_is_int(kv->type) && !type_is_signed(kv->type))
        a = kv->v.u64;
    else if (type_is_signed(kv->type) && kv->v.i64 > 0)
        a = (uint64_t)kv->v.i64;
    else
        return cairn_fail(CAIRN_ERR_CORRUPT, "%s: general.alignment has type %s, not an integer", g->path,
                          gguf_type_name(kv->type));
    if (a == 0 || (a & (a - 1)) || a > GGUF_CAP_ALIGNMENT)
        return cairn_fail(CAIRN_ERR_CORRUPT, "%s: general.alignment %llu is not a power of two in 1..%u",
                          g->path, (unsigned long long)a, GGUF_CAP_ALIGNMENT);
    g->alignment = (uint32_t)a;
    return CAIRN_OK;
}

static cairn_status parse_tensor_infos(gguf_file *g, rd *r)
{
    char ctx[160];
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        gguf_tensor *t = &g->tensors[i];
        snprintf(ctx, sizeof ctx, "name of tensor %llu", (unsigned long long)i);
        CAIRN_TRY(rd_str(r, ctx, GGUF_CAP_TNAME_LEN, &t->name));
        if (t->name.len == 0)
            return cairn_fail(CAIRN_ERR_CORRUPT, "%s: tensor %llu has an empty name", g->path,
                              (unsigned long long)i);
        snprintf(ctx, sizeof ctx, "tensor '%.*s'", (int)CAIRN_MIN(t->name.len, 100), t->name.ptr);
        CAIRN_TRY(rd_u32(r, ctx, &t->n_dims));
        if (t->n_dims < 1 || t->n_dims > GGUF_MAX_DIMS)
            return cairn_fail(CAIRN_ERR_CORRUPT, "%s: %s has %u dims (must be 1..%d)", g->path, ctx,
                              t->n_dims, GGUF_MAX_DIMS);
        uint64_t nel = 1;
        for (int d = 0; d < GGUF_MAX_DIMS; d++) {
            uint64_t ne = 1;
            if ((uint32_t)d < t->n_dims)
                CAIRN_TRY(rd_u64(r, ctx, &ne));
            if (ne == 0 || ne > (uint64_t)INT64_MAX)
                return cairn_fail(CAIRN_ERR_CORRUPT, "%s: %s: dim %d is %llu (must be 1..2^63-1)", g->path,
                                  ctx, d, (unsigned long long)ne);
            if (__builtin_mul_overflow(nel, ne, &nel) || nel > (uint64_t)INT64_MAX)
                return cairn_fail(CAIRN_ERR_CORRUPT, "%s: %s: the number of elements overflows", g->path, ctx);
            t->ne[d] = (int64_t)ne;
        }
        CAIRN_TRY(rd_u32(r, ctx, &t->type));
        const gguf_ttype_info *ti = gguf_ttype(t->type);
        if (!ti)
            return cairn_fail(CAIRN_ERR_CORRUPT, "%s: %s has unknown tensor type %u", g->path, ctx, t->type);
        if ((uint64_t)t->ne[0] % ti->block_size)
            return cairn_fail(CAIRN_ERR_CORRUPT, "%s: %s: row length %lld is not a multiple of the %s block "
                              "size %u", g->path, ctx, (long long)t->ne[0], ti->name, ti->block_size);
        t->nbytes = gguf_ttype_nbytes(t->type, (int64_t)nel);
        if (t->nbytes == 0)
            return cairn_fail(CAIRN_ERR_CORRUPT, "%s: %s: byte size overflows", g->path, ctx);
        CAIRN_TRY(rd_u64(r, ctx, &t->offset));
        size_t slot = hash_slot(g->t_hash, g->t_hash_cap, t->name.ptr, t->name.len, t_name_at, g);
        if (g->t_hash[slot])
            return cairn_fail(CAIRN_ERR_CORRUPT, "%s: duplicate %s", g->path, ctx);
        g->t_hash[slot] = (uint32_t)i + 1;
    }
    return CAIRN_OK;
}

typedef struct span { uint64_t off, end, idx; } span;

static int span_cmp(const void *a, const void *b)
{
    const span *x = a, *y = b;
    return (x->off > y->off) - (x->off < y->off);
}

/* No two tensors may share bytes (ggml lays them out back to back). O(n log n). */
static cairn_status check_overlaps(gguf_file *g)
{
    if (g->n_tensors < 2)
        return CAIRN_OK;
    span *sp = cairn_calloc((size_t)g->n_tensors, sizeof *sp);
    if (!sp)
        return cairn_fail(CAIRN_ERR_NOMEM, "%s: out of memory checking tensor placement", g->path);
    for (uint64_t i = 0; i < g->n_tensors; i++)
        sp[i] = (span){g->tensors[i].offset, g->tensors[i].offset + g->tensors[i].nbytes, i};
    qsort(sp, (size_t)g->n_tensors, sizeof *sp, span_cmp);
    cairn_status st = CAIRN_OK;
    for (uint64_t i = 1; i < g->n_tensors && st == CAIRN_OK; i++)
        if (sp[i].off < sp[i - 1].end) {
            const gguf_tensor *a = &g->tensors[sp[i - 1].idx], *b = &g->tensors[sp[i].idx];
            st = cairn_fail(CAIRN_ERR_CORRUPT, "%s: tensors '%.*s' and '%.*s' overlap in the data section", g->path,
                            (int)CAIRN_MIN(a->name.len, 100), a->name.ptr, (int)CAIRN_MIN(b->name.len, 100),
                            b->name.ptr);
        }
    cairn_free(sp);
    return st;
}

static cairn_status place_tensors(gguf_file *g, size_t header_end)
{
    uint64_t a = g->alignment;
    g->data_offset = ((uint64_t)header_end + a - 1) / a * a;
    if (g->n_tensors == 0)
        return CAIRN_OK;   /* vocabulary-only files may end right after the header */
    if (g->data_offset > g->size)
        return cairn_fail(CAIRN_ERR_CORRUPT, "%s: truncated: the data section would start at %llu, past the "
                          "end of the file (%zu bytes)", g->path, (unsigned long long)g->data_offset, g->size);
    uint64_t data_size = g->size - g->data_offset;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        gguf_tensor *t = &g->tensors[i];
        if (t->offset % a)
            return cairn_fail(CAIRN_ERR_CORRUPT, "%s: tensor '%.*s' offset %llu is not a multiple of the "
                              "alignment %llu", g->path, (int)CAIRN_MIN(t->name.len, 100), t->name.ptr,
                              (unsigned long long)t->offset, (unsigned long long)a);
        if (t->offset > data_size || t->nbytes > data_size - t->offset)
            return cairn_fail(CAIRN_ERR_CORRUPT, "%s: truncated or corrupt: tensor '%.*s' data [%llu, +%llu) "
                              "lies past the end of the file (data section has %llu bytes)", g->path,
                              (int)CAIRN_MIN(t->name.len, 100), t->name.ptr, (unsigned long long)t->offset,
                              (unsigned long long)t->nbytes, (unsigned long long)data_size);
        t->data = g->map + g->data_offset + t->offset;
    }
    return check_overlaps(g);
}

static cairn_status parse(gguf_file *g)
{
    g->hash_seed = (uint64_t)cairn_mono_ns() ^ ((uint64_t)(uintptr_t)g * 0x9e3779b97f4a7c15ull);
    rd r = {g->map, g->size, 0, g->path};
    const uint8_t *magic;
    if (g->size < 4 || memcmp(g->map, "GGUF", 4) != 0)
        return cairn_fail(CAIRN_ERR_CORRUPT, "%s: not a GGUF file (bad magic)", g->path);
    CAIRN_TRY(rd_bytes(&r, 4, "magic", &magic));
    CAIRN_TRY(rd_u32(&r, "version", &g->version));
    if (g->version == 1)
        return cairn_fail(CAIRN_ERR_UNSUPPORTED, "%s: GGUF version 1 is not supported (convert it to v3)",
                          g->path);
    if (g->version == 0x02000000u || g->version == 0x03000000u)
        return cairn_fail(CAIRN_ERR_UNSUPPORTED, "%s: big-endian GGUF files are not supported", g->path);
    if (g->version != 2 && g->version != 3)
        return cairn_fail(CAIRN_ERR_CORRUPT, "%s: unknown GGUF version %u", g->path, g->version);
    CAIRN_TRY(rd_u64(&r, "tensor count", &g->n_tensors));
    CAIRN_TRY(rd_u64(&r, "kv count", &g->n_kv));
    /* A KV takes at least 13 bytes (key length, one key byte, type, 1-byte value) and
     * a tensor info at least 33: bound both counts by the bytes left before allocating. */
    size_t left = g->size - r.pos;
    if (g->n_kv > GGUF_CAP_KV || g->n_kv > left / 13)
        return cairn_fail(CAIRN_ERR_CORRUPT, "%s: kv count %llu is impossible (file has %zu header bytes "
                          "left; cap %u)", g->path, (unsigned long long)g->n_kv, left, GGUF_CAP_KV);
    if (g->n_tensors > GGUF_CAP_TENSORS || g->n_tensors > left / 33)
        return cairn_fail(CAIRN_ERR_CORRUPT, "%s: tensor count %llu is impossible (file has %zu bytes left; "
                          "cap %u)", g->path, (unsigned long long)g->n_tensors, left, GGUF_CAP_TENSORS);
    g->kv_hash_cap = hash_cap_for(g->n_kv);
    g->t_hash_cap = hash_cap_for(g->n_tensors);
    g->kvs = cairn_calloc(g->n_kv ? (size_t)g->n_kv : 1, sizeof *g->kvs);
    g->tensors = cairn_calloc(g->n_tensors ? (size_t)g->n_tensors : 1, sizeof *g->tensors);
    g->kv_hash = cairn_calloc(g->kv_hash_cap, sizeof *g->kv_hash);
    g->t_hash = cairn_calloc(g->t_hash_cap, sizeof *g->t_hash);
    if (!g->kvs || !g->tensors || !g->kv_hash || !g->t_hash)
        return cairn_fail(CAIRN_ERR_NOMEM, "%s: out of memory indexing the header", g->path);
    CAIRN_TRY(parse_kvs(g, &r));
    CAIRN_TRY(parse_alignment(g));
    CAIRN_TRY(parse_tensor_infos(g, &r));
    return place_tensors(g, r.pos);
}

/* Map the file read-only at an address aligned to 2 MiB, so that file
 * offset and address agree modulo 2 MiB: the kernel can then map page-cache
 * folios of 2 MiB with one page-table entry each (MADV_HUGEPAGE, see
 * model.c), and decode does not miss the TLB every 4 KiB. The slack of the
 * reservation is returned at once. */
static void *map_aligned(int fd, size_t size)
{
    const uintptr_t huge = (uintptr_t)2 << 20;
    size_t pg = (size_t)sysconf(_SC_PAGESIZE), len = (size + pg - 1) / pg * pg;
    if (len > SIZE_MAX - huge)
        return MAP_FAILED;
    uint8_t *r = mmap(NULL, len + huge, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (r == MAP_FAILED)
        return mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    uint8_t *a = (uint8_t *)(((uintptr_t)r + huge - 1) & ~(huge - 1));
    void *m = mmap(a, size, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, 0);
    if (m == MAP_FAILED) {
        int e = errno;
        munmap(r, len + huge);
        errno = e;
        return MAP_FAILED;
    }
    if (a > r)
        munmap(r, (size_t)(a - r));
    if (r + len + huge > a + len)
        munmap(a + len, (size_t)(r + len + huge - (a + len)));
    return m;
}

int gguf_fd(const gguf_file *g) { return g ? g->fd : -1; }
const void *gguf_map(const gguf_file *g) { return g && g->mapped ? g->map : NULL; }

cairn_status gguf_open(const char *path, gguf_file **out)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cairn_fail(errno == ENOENT ? CAIRN_ERR_NOT_FOUND : CAIRN_ERR_IO, "%s: cannot open: %s", path,
                          strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return cairn_fail(CAIRN_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return cairn_fail(CAIRN_ERR_IO, "%s: not a regular file", path);
    }
    if (sb.st_size < 24) {
        close(fd);
        return cairn_fail(CAIRN_ERR_CORRUPT, "%s: %lld bytes is too short for a GGUF header", path,
                          (long long)sb.st_size);
    }
    gguf_file *g = cairn_calloc(1, sizeof *g);
    if (!g) {
        close(fd);
        return cairn_fail(CAIRN_ERR_NOMEM, "%s: out of memory", path);
    }
    g->path = cairn_strdup(path);
    g->size = (size_t)sb.st_size;
    g->fd = fd;
    void *m = map_aligned(fd, g->size);
    int e = errno;
    if (m == MAP_FAILED) {
        g->map = NULL;
        gguf_close(g);
        return cairn_fail(CAIRN_ERR_IO, "%s: cannot map: %s", path, strerror(e));
    }
    g->map = m;
    g->mapped = true;
    if (!g->path) {
        gguf_close(g);
        return cairn_fail(CAIRN_ERR_NOMEM, "%s: out of memory", path);
    }
    cairn_status st = parse(g);
    if (st != CAIRN_OK) {
        gguf_close(g);
        return st;
    }
    *out = g;
    return CAIRN_OK;
}

cairn_status gguf_open_mem(const void *data, size_t size, const char *name, gguf_file **out)
{
    *out = NULL;
    if (!name)
        name = "(memory)";
    if (size < 24 || !data)
        return cairn_fail(CAIRN_ERR_CORRUPT, "%s: %zu bytes is too short for a GGUF header", name, size);
    gguf_file *g = cairn_calloc(1, sizeof *g);
    if (!g)
        return cairn_fail(CAIRN_ERR_NOMEM, "%s: out of memory", name);
    g->path = cairn_strdup(name);
    g->map = data;
    g->size = size;
    g->fd = -1;
    cairn_status st = g->path ? parse(g) : cairn_fail(CAIRN_ERR_NOMEM, "%s: out of memory", name);
    if (st != CAIRN_OK) {
        gguf_close(g);
        return st;
    }
    *out = g;
    return CAIRN_OK;
}

void gguf_close(gguf_file *g)
{
    if (!g)
        return;
    if (g->kvs)
        for (uint64_t i = 0; i < g->n_kv; i++)
            if (g->kvs[i].type == GGUF_TYPE_ARRAY && g->kvs[i].v.arr.type == GGUF_TYPE_STRING)
                cairn_free((void *)g->kvs[i].v.arr.data);
    cairn_free(g->kvs);
    cairn_free(g->tensors);
    cairn_free(g->kv_hash);
    cairn_free(g->t_hash);
    if (g->map && g->mapped)
        munmap((void *)g->map, g->size);
    if (g->fd >= 0)
        close(g->fd);
    cairn_free(g->path);
    cairn_free(g);
}

/* ---- accessors ---- */

uint32_t gguf_version(const gguf_file *g) { return g->version; }
uint64_t gguf_kv_count(const gguf_file *g) { return g->n_kv; }
uint64_t gguf_tensor_count(const gguf_file *g) { return g->n_tensors; }
size_t gguf_file_size(const gguf_file *g) { return g->size; }
uint32_t gguf_alignment(const gguf_file *g) { return g->alignment; }
const char *gguf_path(const gguf_file *g) { return g->path; }
uint64_t gguf_data_offset(const gguf_file *g) { return g->data_offset; }

const gguf_kv *gguf_kv_at(const gguf_file *g, uint64_t i) { return i < g->n_kv ? &g->kvs[i] : NULL; }

const gguf_tensor *gguf_tensor_at(const gguf_file *g, uint64_t i)
{
    return i < g->n_tensors ? &g->tensors[i] : NULL;
}

const gguf_kv *gguf_kv_find(const gguf_file *g, const char *key)
{
    if (!g || !key || !g->kv_hash)
        return NULL;
    size_t slot = hash_slot(g->kv_hash, g->kv_hash_cap, key, strlen(key), kv_name_at, g);
    return g->kv_hash[slot] ? &g->kvs[g->kv_hash[slot] - 1] : NULL;
}

const gguf_tensor *gguf_tensor_find(const gguf_file *g, const char *name)
{
    if (!g || !name || !g->t_hash)
        return NULL;
    size_t slot = hash_slot(g->t_hash, g->t_hash_cap, name, strlen(name), t_name_at, g);
    return g->t_hash[slot] ? &g->tensors[g->t_hash[slot] - 1] : NULL;
}

void gguf_prefetch(const gguf_file *g)
{
    if (!g || !g->mapped || g->data_offset >= g->size)
        return;
    long ps = sysconf(_SC_PAGESIZE);
    uint64_t page = ps > 0 ? (uint64_t)ps : 4096;
    uint64_t a = g->data_offset & ~(page - 1);
    madvise((void *)(g->map + a), g->size - a, MADV_WILLNEED);
}

void gguf_read(const gguf_file *g, const void *p, size_t n, void *dst)
{
    const uint8_t *src = p;
    if (g->fd >= 0 && src >= g->map && n <= g->size && (size_t)(src - g->map) <= g->size - n) {
        size_t done = 0;
        while (done < n) {
            ssize_t r = pread(g->fd, (uint8_t *)dst + done, n - done, (off_t)(src - g->map) + (off_t)done);
            if (r <= 0) {
                if (r < 0 && errno == EINTR)
                    continue;
                break;     /* should not happen for a validated range: copy the rest from the map */
            }
            done += (size_t)r;
        }
        if (done == n)
            return;
        memcpy((uint8_t *)dst + done, src + done, n - done);
        return;
    }
    memcpy(dst, src, n);
}

void gguf_tensor_release(const gguf_file *g, const gguf_tensor *t)
{
    if (!g || !t || !g->mapped || !t->nbytes)
        return;
    long ps = sysconf(_SC_PAGESIZE);
    uintptr_t page = ps > 0 ? (uintptr_t)ps : 4096;
    uintptr_t a = ((uintptr_t)t->data + page - 1) & ~(page - 1);   /* whole pages inside the tensor only */
    uintptr_t b = ((uintptr_t)t->data + t->nbytes) & ~(page - 1);
    if (b > a)
        madvise((void *)a, b - a, MADV_DONTNEED);
}

int64_t gguf_tensor_nelements(const gguf_tensor *t)
{
    return t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];   /* checked not to overflow at open */
}

bool gguf_str_eq(gguf_str s, const char *c)
{
    return c && str_eq2(s, c, strlen(c));
}

/* ---- typed getters ---- */

static cairn_status find_kv(const gguf_file *g, const char *key, const gguf_kv **kv)
{
    *kv = gguf_kv_find(g, key);
    if (!*kv)
        return cairn_fail(CAIRN_ERR_NOT_FOUND, "%s: key '%s' not found", g->path, key);
    return CAIRN_OK;
}

static cairn_status mismatch(const gguf_file *g, const char *key, const gguf_kv *kv, const char *want)
{
    return cairn_fail(CAIRN_ERR_CORRUPT, "%s: key '%s' has type %s, expected %s", g->path, key,
                      gguf_type_name(kv->type), want);
}

cairn_status gguf_get_i64(const gguf_file *g, const char *key, int64_t *out)
{
    const gguf_kv *kv;
    CAIRN_TRY(find_kv(g, key, &kv));
    if (type_is_signed(kv->type)) {
        *out = kv->v.i64;
        return CAIRN_OK;
    }
    if (type_is_int(kv->type) && kv->v.u64 <= (uint64_t)INT64_MAX) {
        *out = (int64_t)kv->v.u64;
        return CAIRN_OK;
    }
    if (type_is_int(kv->type))
        return cairn_fail(CAIRN_ERR_CORRUPT, "%s: key '%s' value %llu is out of range", g->path, key,
                          (unsigned long long)kv->v.u64);
    return mismatch(g, key, kv, "an integer");
}

cairn_status gguf_get_u32(const gguf_file *g, const char *key, uint32_t *out)
{
    int64_t v;
    CAIRN_TRY(gguf_get_i64(g, key, &v));
    if (v < 0 || v > (int64_t)UINT32_MAX)
        return cairn_fail(CAIRN_ERR_CORRUPT, "%s: key '%s' value %lld is out of range for u32", g->path, key,
                          (long long)v);
    *out = (uint32_t)v;
    return CAIRN_OK;
}

cairn_status gguf_get_f32(const gguf_file *g, const char *key, float *out)
{
    const gguf_kv *kv;
    CAIRN_TRY(find_kv(g, key, &kv));
    if (kv->type == GGUF_TYPE_FLOAT32 || kv->type == GGUF_TYPE_FLOAT64)
        *out = (float)kv->v.f64;
    else if (type_is_signed(kv->type))
        *out = (float)kv->v.i64;
    else if (type_is_int(kv->type))
        *out = (float)kv->v.u64;
    else
        return mismatch(g, key, kv, "a number");
    return CAIRN_OK;
}

cairn_status gguf_get_bool(const gguf_file *g, const char *key, bool *out)
{
    const gguf_kv *kv;
    CAIRN_TRY(find_kv(g, key, &kv));
    if (kv->type == GGUF_TYPE_BOOL)
        *out = kv->v.b;
    else if (type_is_signed(kv->type) && (kv->v.i64 == 0 || kv->v.i64 == 1))
        *out = kv->v.i64 == 1;
    else if (type_is_int(kv->type) && !type_is_signed(kv->type) && kv->v.u64 <= 1)
        *out = kv->v.u64 == 1;
    else
        return mismatch(g, key, kv, "bool");
    return CAIRN_OK;
}

cairn_status gguf_get_str(const gguf_file *g, const char *key, gguf_str *out)
{
    const gguf_kv *kv;
    CAIRN_TRY(find_kv(g, key, &kv));
    if (kv->type != GGUF_TYPE_STRING)
        return mismatch(g, key, kv, "str");
    *out = kv->v.str;
    return CAIRN_OK;
}

cairn_status gguf_get_arr(const gguf_file *g, const char *key, gguf_type elem, const gguf_kv **out)
{
    const gguf_kv *kv;
    CAIRN_TRY(find_kv(g, key, &kv));
    if (kv->type != GGUF_TYPE_ARRAY)
        return mismatch(g, key, kv, "an array");
    if (elem != GGUF_TYPE_COUNT && kv->v.arr.type != elem)
        return cairn_fail(CAIRN_ERR_CORRUPT, "%s: key '%s' is an array of %s, expected %s", g->path, key,
                          gguf_type_name(kv->v.arr.type), gguf_type_name(elem));
    *out = kv;
    return CAIRN_OK;
}

gguf_str gguf_arr_str(const gguf_kv *kv, uint64_t i)
{
    gguf_str none = {NULL, 0};
    if (!kv || kv->type != GGUF_TYPE_ARRAY || kv->v.arr.type != GGUF_TYPE_STRING || i >= kv->v.arr.count)
        return none;
    return ((const gguf_str *)kv->v.arr.data)[i];
}

static bool arr_elem(const gguf_kv *kv, uint64_t i, gguf_kv *tmp)
{
    if (!kv || kv->type != GGUF_TYPE_ARRAY || i >= kv->v.arr.count)
        return false;
    gguf_type et = kv->v.arr.type;
    if (et == GGUF_TYPE_STRING || et == GGUF_TYPE_ARRAY || (unsigned)et >= GGUF_TYPE_COUNT)
        return false;
    tmp->type = et;
    scalar_decode(et, (const uint8_t *)kv->v.arr.data + i * type_sizes[et], tmp);
    return true;
}

bool gguf_arr_i64(const gguf_kv *kv, uint64_t i, int64_t *out)
{
    gguf_kv e;
    if (!arr_elem(kv, i, &e))
        return false;
    if (e.type == GGUF_TYPE_BOOL)
        *out = e.v.b;
    else if (type_is_signed(e.type))
        *out = e.v.i64;
    else if (type_is_int(e.type) && e.v.u64 <= (uint64_t)INT64_MAX)
        *out = (int64_t)e.v.u64;
    else
        return false;
    return true;
}

bool gguf_arr_f64(const gguf_kv *kv, uint64_t i, double *out)
{
    gguf_kv e;
    if (!arr_elem(kv, i, &e))
        return false;
    if (e.type == GGUF_TYPE_FLOAT32 || e.type == GGUF_TYPE_FLOAT64)
        *out = e.v.f64;
    else if (e.type == GGUF_TYPE_BOOL)
        *out = e.v.b;
    else if (type_is_signed(e.type))
        *out = (double)e.v.i64;
    else
        *out = (double)e.v.u64;
    return true;
}
