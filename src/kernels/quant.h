/*
 * quant.h — tensor types (ggml numbering, as stored in GGUF), their block
 * layouts and per-type function tables.
 *
 * Each quantized type is a fixed-size block of `block_size` values taking
 * `type_size` bytes. Dot products pair a weight type with an activation type
 * (`vec_dot_type`: Q8_0 for the legacy quants, Q8_K for the K-quants, F32/F16
 * for float weights): activations are quantized once per row of input, then
 * every weight row is dotted with them.
 *
 * Every kernel has a scalar reference (quant_ref.c); SIMD versions live in
 * *_avx2.c / *_avx512.c and are picked at run time by CPU features.
 */
#ifndef CAIRN_QUANT_H
#define CAIRN_QUANT_H

#include "base/base.h"

typedef enum {
    QT_F32 = 0, QT_F16 = 1, QT_Q4_0 = 2, QT_Q4_1 = 3, QT_Q5_0 = 6, QT_Q5_1 = 7,
    QT_Q8_0 = 8, QT_Q8_1 = 9, QT_Q2_K = 10, QT_Q3_K = 11, QT_Q4_K = 12, QT_Q5_K = 13,
    QT_Q6_K = 14, QT_Q8_K = 15, QT_BF16 = 30, QT_COUNT = 40
} qtype;

typedef void (*qt_to_float_fn)(const void *src, float *dst, int64_t n);
typedef void (*qt_from_float_fn)(const float *src, void *dst, int64_t n);
/* s = dot(x[0..n), y[0..n)) where x is the weight row and y the activation row in vec_dot_type. */
typedef void (*qt_vec_dot_fn)(int n, float *s, const void *x, const void *y);
/* Tile product (optional, per ISA): for i < nr weight rows (row i at x + i*bx bytes)
 * and j < nc activation rows (row j at y + j*by bytes, in vec_dot_type):
 *     s[j*bs + i] = dot(x_i, y_j) over n values.
 * matmul calls it with 1 <= nr <= gemm_nr and 1 <= nc <= gemm_nc. */
typedef void (*qt_gemm_fn)(int n, float *s, size_t bs, const void *x, size_t bx,
                           const void *y, size_t by, int nr, int nc);

/* Decode product (optional, per ISA): s[i] = dot(x_i, y) for i < nr weight
 * rows (row i at x + i*bx bytes) and one activation row y in vec_dot_type,
 * n values each. Same results as nr vec_dot calls up to float summation
 * order, and each s[i] must not depend on nr, on the row's position in the
 * call (matmul cuts rows into chunks differently per thread count) or on
 * `stream`. stream = the weights come from memory, not from a cache
 * (matmul_ctx.stream): the kernel may then read the rows one after another
 * as one sequential stream, which the prefetchers keep up with, instead of
 * several rows side by side, which shares more work and wins from cache.
 * matmul uses it for every token it would otherwise run vec_dot on. */
typedef void (*qt_gemv_fn)(int n, float *s, const void *x, size_t bx, const void *y, int nr, bool stream);

typedef struct qtype_traits {
    const char *name;
    int block_size;            /* values per block */
    size_t type_size;          /* bytes per block */
    qtype vec_dot_type;        /* activation type for vec_dot */
    qt_to_float_fn to_float;
    qt_from_float_fn from_float;   /* quantize (reference quality) */
    qt_vec_dot_fn vec_dot;         /* best kernel for this CPU */
    /* Fast activation quantizer used by matmul when this type is a
     * vec_dot_type. May round differently from from_float (e.g. SIMD
     * round-half-even) but must stay within from_float's error. Never NULL
     * in the table returned by qtype_get (defaults to from_float). */
    qt_from_float_fn quantize_act;
    qt_gemm_fn gemm;               /* optional tile kernel (NULL = use vec_dot) */
    int gemm_nr, gemm_nc;          /* largest tile gemm accepts */
    qt_gemv_fn gemv;               /* optional multi-row decode kernel (NULL = use vec_dot) */
} qtype_traits;

/* NULL for an unknown or unsupported type id. */
const qtype_traits *qtype_get(uint32_t type);
/* Bytes of a row of n values (n must be a multiple of block_size; returns 0 otherwise). */
size_t qtype_row_size(uint32_t type, int64_t n);

/* Kernel selection: "scalar", "avx2", "avx512" (default: best available;
 * CAIRN_KERNELS=scalar|avx2|avx512|auto forces one: a level this CPU lacks
 * falls back to the best one below it, an unknown name to the best, each
 * with one warning on stderr). Returns the name in use. */
const char *kernels_init(void);
const char *kernels_isa(void);
/* Bytes of the last-level cache: CAIRN_LLC_BYTES (bytes, or with a K/M/G
 * suffix) if set, else sysconf's L3, else its L2, else 32 MiB. Decode
 * weights larger than this stream from memory (matmul_ctx.stream). */
size_t kernels_llc_bytes(void);
/* Scalar reference traits, for tests comparing SIMD kernels against them. */
const qtype_traits *qtype_get_ref(uint32_t type);

/* Kernel levels, for tests and benchmarks that compare them in one process. */
typedef enum {
    KERNELS_DEFAULT = 0,   /* whatever kernels_init() selected */
    KERNELS_SCALAR = 1, KERNELS_AVX2 = 2, KERNELS_AVX512 = 3, KERNELS_LEVELS = 4
} kernels_level;
/* Traits of `type` at a given level (cumulative: AVX-512 falls back to AVX2
 * kernels, then scalar). NULL for an unknown type or a level this CPU lacks. */
const qtype_traits *qtype_get_level(uint32_t type, kernels_level level);
kernels_level kernels_selected(void);          /* the level qtype_get uses */
kernels_level kernels_requested(void);         /* the level CAIRN_KERNELS names (KERNELS_DEFAULT: none) */
bool kernels_level_supported(kernels_level level);
const char *kernels_level_name(kernels_level level);
/* AMX: whether the selected kernels use the AMX tile kernels (AVX-512
 * level, CPU + OS support, Linux granted the tile state, and neither
 * CAIRN_NO_AMX=1 nor CAIRN_AMX=0 is set), and whether this CPU and OS
 * offer AMX at all, whatever the switches say. */
bool kernels_amx(void);
bool kernels_amx_supported(void);

/* The host decisions above as pure functions of their inputs, so that tests
 * can take every branch on any machine:
 *  - kernels_choose_level: the level for a CAIRN_KERNELS value (NULL = unset)
 *    given which levels the CPU supports; writes the warning, if any, into
 *    warn (cap bytes; warn[0] = 0 when there is none);
 *  - kernels_amx_wanted: CAIRN_NO_AMX and CAIRN_AMX values (NULL = unset)
 *    and whether the hardware has AMX -> use it (before asking Linux);
 *  - kernels_llc_pick: CAIRN_LLC_BYTES value and sysconf's L3 / L2 sizes
 *    (<= 0 = unknown) -> the last-level cache size. */
kernels_level kernels_choose_level(const bool ok[KERNELS_LEVELS], const char *request, char *warn, size_t cap);
bool kernels_amx_wanted(const char *no_amx, const char *amx, bool hw_ok);
size_t kernels_llc_pick(const char *env, long l3, long l2);

float fp16_to_fp32(uint16_t h);
uint16_t fp32_to_fp16(float f);
float bf16_to_fp32(uint16_t h);
uint16_t fp32_to_bf16(float f);

#endif
