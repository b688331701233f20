/*
 * blocks.h — on-disk block layouts of the quantized tensor types, as stored
 * in GGUF files (bit-compatible with ggml). Sizes are checked at compile time.
 *
 * Legacy quants: blocks of 32 values (QK = 32), one fp16 scale `d`
 * (and a min `m` for the _1 types): value = d * q (+ m).
 *   Q4_0: q = nibble - 8; low nibbles hold values 0..15, high nibbles 16..31.
 *   Q5_0/Q5_1: 5th bit of value j in bit j of qh (little-endian uint32).
 *   Q8_0: q = int8.
 * K-quants: super-blocks of 256 values (QK_K) split into sub-blocks with
 * 6-bit (or 4/8-bit) sub-scales; see quant_ref.c for the exact unpacking.
 */
#ifndef CAIRN_BLOCKS_H
#define CAIRN_BLOCKS_H

#include <assert.h>
#include <stdint.h>

#define QK 32
#define QK_K 256
#define K_SCALE_SIZE 12

typedef uint16_t fp16_t;

typedef struct { fp16_t d; uint8_t qs[QK / 2]; } block_q4_0;
typedef struct { fp16_t d, m; uint8_t qs[QK / 2]; } block_q4_1;
typedef struct { fp16_t d; uint8_t qh[4]; uint8_t qs[QK / 2]; } block_q5_0;
typedef struct { fp16_t d, m; uint8_t qh[4]; uint8_t qs[QK / 2]; } block_q5_1;
typedef struct { fp16_t d; int8_t qs[QK]; } block_q8_0;
typedef struct { fp16_t d, s; int8_t qs[QK]; } block_q8_1;  /* s = d * sum(qs) */

typedef struct { uint8_t scales[QK_K / 16]; uint8_t qs[QK_K / 4]; fp16_t d, dmin; } block_q2_K;
typedef struct { uint8_t hmask[QK_K / 8]; uint8_t qs[QK_K / 4]; uint8_t scales[12]; fp16_t d; } block_q3_K;
typedef struct { fp16_t d, dmin; uint8_t scales[K_SCALE_SIZE]; uint8_t qs[QK_K / 2]; } block_q4_K;
typedef struct { fp16_t d, dmin; uint8_t scales[K_SCALE_SIZE]; uint8_t qh[QK_K / 8]; uint8_t qs[QK_K / 2]; } block_q5_K;
typedef struct { uint8_t ql[QK_K / 2]; uint8_t qh[QK_K / 4]; int8_t scales[QK_K / 16]; fp16_t d; } block_q6_K;
typedef struct { float d; int8_t qs[QK_K]; int16_t bsums[QK_K / 16]; } block_q8_K; /* activations only */

static_assert(sizeof(block_q4_0) == 18, "q4_0 block size");
static_assert(sizeof(block_q4_1) == 20, "q4_1 block size");
static_assert(sizeof(block_q5_0) == 22, "q5_0 block size");
static_assert(sizeof(block_q5_1) == 24, "q5_1 block size");
static_assert(sizeof(block_q8_0) == 34, "q8_0 block size");
static_assert(sizeof(block_q8_1) == 36, "q8_1 block size");
static_assert(sizeof(block_q2_K) == 84, "q2_K block size");
static_assert(sizeof(block_q3_K) == 110, "q3_K block size");
static_assert(sizeof(block_q4_K) == 144, "q4_K block size");
static_assert(sizeof(block_q5_K) == 176, "q5_K block size");
static_assert(sizeof(block_q6_K) == 210, "q6_K block size");
static_assert(sizeof(block_q8_K) == 292, "q8_K block size");

#endif
