/*
 * quantize.h — rewrite a GGUF model with quantized weight matrices
 * (`cairn quantize IN OUT TYPE`).
 *
 * Which tensors are quantized: 2-D and larger tensors whose name ends in
 * "weight", except norms, the MoE router (ffn_gate_inp), position and token-type
 * embeddings. Only F32/F16/BF16 tensors are converted (quantized ones too
 * with `requantize`); every other tensor (norms, biases) is copied unchanged.
 *
 * Type choice per mode, following llama.cpp (the quantizers come from
 * kernels/quant.h, from_float). Unless `pure`, for every quantized mode:
 * the output matrix (token_embd when the output is tied) gets Q6_K (Q8_0 if
 * its rows are not multiples of 256; Q8_0 mode keeps Q8_0); with 8 experts
 * attn_v and attn_k get Q8_0. Then per mode:
 *   Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q6_K Q5_K_S   that type everywhere else.
 *   Q4_K_M / Q5_K_M  Q4_K / Q5_K; attn_v and ffn_down Q6_K in the layers
 *               use_more_bits() picks (first and last eighth, every third in
 *               between); attn_qkv Q5_K / Q6_K; (Q4_K_M, 8 experts) attn_output Q5_K.
 *   Q4_K_S      Q4_K; attn_v of the first 4 layers and ffn_down of the first
 *               eighth Q5_K; (8 experts) attn_output Q5_K.
 *   F16, BF16   plain conversion of every matrix (no mix).
 *   Rows that are not whole blocks of the chosen type fall back: Q4_K -> Q5_0,
 *   Q5_K -> Q5_1, Q6_K -> Q8_0; rows not a multiple of 32 become F16.
 */
#ifndef CAIRN_GGUF_QUANTIZE_H
#define CAIRN_GGUF_QUANTIZE_H

#include "gguf/gguf.h"

typedef enum {
    GGUF_QUANT_Q8_0, GGUF_QUANT_Q4_0, GGUF_QUANT_Q4_K_M, GGUF_QUANT_Q4_1, GGUF_QUANT_Q5_0, GGUF_QUANT_Q5_1,
    GGUF_QUANT_Q4_K_S, GGUF_QUANT_Q5_K_S, GGUF_QUANT_Q5_K_M, GGUF_QUANT_Q6_K, GGUF_QUANT_F16, GGUF_QUANT_BF16,
    GGUF_QUANT_COUNT
} gguf_quant_mode;

typedef struct gguf_quantize_params {
    gguf_quant_mode mode;
    bool pure;          /* no per-tensor mix: every quantized matrix gets the mode's base type */
    bool requantize;    /* also convert matrices that are already quantized (dequantize first;
                           quality suffers: quantization errors add up) */
    int n_threads;      /* 0 = 2 */
    /* Overrides (as llama-quantize's --output-tensor-type / --token-embedding-type):
     * the output matrix (token_embd when tied) and token_embd get these types,
     * still subject to the row-size fallback. */
    bool set_output_type, set_embd_type;
    uint32_t output_type, embd_type;
} gguf_quantize_params;

#define GGUF_QUANTIZE_NTYPES 40
typedef struct gguf_quantize_stats {
    uint64_t in_file_size, out_file_size;
    uint64_t n_quantized, n_kept;
    uint64_t type_count[GGUF_QUANTIZE_NTYPES];   /* tensors per output type */
    uint64_t type_bytes[GGUF_QUANTIZE_NTYPES];
    double seconds;
} gguf_quantize_stats;

bool gguf_quantize_mode_by_name(const char *name, gguf_quant_mode *mode);
const char *gguf_quantize_mode_name(gguf_quant_mode mode);
/* llama.cpp's general.file_type value for the mode (Q8_0 7, Q4_0 2, Q4_K_M 15, ...). */
uint32_t gguf_quantize_file_type(gguf_quant_mode mode);

/* The plan: output type of every tensor of `src`, in file order (types[i] for
 * tensor i). Exposed so tests can check the mix without writing a file. */
cairn_status gguf_quantize_plan(const gguf_file *src, const gguf_quantize_params *p, uint32_t *types);

cairn_status gguf_quantize_file(const char *in, const char *out, const gguf_quantize_params *p,
                                gguf_quantize_stats *stats);

#endif
