/*
 * dispatch.h — how the per-ISA kernel files plug into the type table.
 *
 * kernels_init() builds the table from the scalar references (quant_ref.c),
 * then, if the CPU and OS support the ISA and CAIRN_KERNELS does not forbid
 * it, calls the registration hooks in order avx2 -> avx512, so an AVX-512
 * hook only needs to override what it does better than AVX2.
 *
 * A hook is called once, single-threaded, with the table indexed by qtype
 * (QT_COUNT entries; entries with name == NULL are unsupported types). It may
 * replace for any type:
 *   vec_dot       — must accept the same (weight, activation) layouts as the
 *                   reference: weights in that type, activations in the
 *                   entry's vec_dot_type;
 *   to_float      — dequantize, bit-exact with the reference;
 *   quantize_act  — for activation types (Q8_0, Q8_1, Q8_K, F16 ...): the
 *                   matmul activation quantizer; may round differently from
 *                   the reference from_float but not be less accurate;
 *   gemm, gemm_nr, gemm_nc — an optional tile kernel (see quant.h);
 *   vec_dot_type  — only together with vec_dot (and gemm), e.g. to pair F16
 *                   weights with F16 activations. matmul follows the table.
 * It must not touch name, block_size, type_size or from_float (the reference
 * quantizer, which has to stay byte-identical with ggml's).
 *
 * The hooks are defined in quant_avx2.c / quant_avx512.c (compiled with the
 * ISA flags; only called after the CPU check).
 */
#ifndef CAIRN_DISPATCH_H
#define CAIRN_DISPATCH_H

#include "kernels/quant.h"

void kernels_register_avx2(qtype_traits *table);
/* amx: register the AMX tile kernels too (dispatch.c decided: CPU, OS,
 * Linux's permission and the CAIRN_NO_AMX / CAIRN_AMX switches). */
void kernels_register_avx512(qtype_traits *table, bool amx);

/* CPU features as detected (cpuid + xgetbv); for tests and bench output. */
typedef struct cpu_features {
    bool avx2, fma, f16c, bmi2;       /* AVX2 level also requires OS YMM state */
    bool avx512f, avx512bw, avx512vl, avx512dq, avx512vnni, avx512bf16; /* + OS ZMM state */
    bool avx_vnni;
    bool amx_tile, amx_int8, amx_bf16;   /* + OS tile state (XCR0 bits 17-18) */
} cpu_features;
const cpu_features *kernels_cpu(void);

/* Scratch for the tile kernels: one 64-byte aligned buffer per thread, grown
 * to the largest request and freed when the thread exits. Kernels never
 * nest, so every tile kernel of a thread shares it. NULL when out of memory
 * (the caller falls back to vec_dot). */
void *kernels_thread_scratch(size_t size);
/* A tile product done as nr x nc dot products (the qt_gemm_fn contract with
 * a vec_dot): what a tile kernel falls back to when it gets no scratch. */
void kernels_gemm_by_dot(qt_vec_dot_fn dot, int n, float *s, size_t bs, const void *x, size_t bx, const void *y,
                         size_t by, int nr, int nc);

#endif
