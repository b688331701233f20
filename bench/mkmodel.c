/*
 * mkmodel.c — write a random-weight llama-shaped GGUF for speed benchmarks
 * (never committed; the bench scripts make them in /tmp on the fly).
 *
 *   mkmodel OUT.gguf SHAPE TYPE
 *     SHAPE: smollm    (SmolLM-135M: 576 hidden, 30 layers, 9/3 heads, ffn 1536, vocab 49152, tied)
 *            tinyllama (TinyLlama-1.1B: 2048 hidden, 22 layers, 32/4 heads, ffn 5632, vocab 32000)
 *            or "E,L,H,KV,FF,V[,tied]" for a custom shape
 *     TYPE:  f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1 q4_k_m (llama.cpp-style mix) or any
 *            single K type (q2_k q3_k q4_k q5_k q6_k)
 *
 * Quantized blocks are random bytes with sane scales (any bit pattern is a
 * valid block), so writing a 1B model takes seconds, not a quantizer run.
 * Below 8 bits the output matrix (the embedding when tied) is Q6_K, as
 * llama.cpp's quantizer does. The Q4_K_M mix adds Q6_K for attn_v / ffn_down in the first and last
 * eighth of layers and every third in between, Q4_K elsewhere; a K type
 * whose rows are not a multiple of 256 falls back (Q4_K->Q5_0, Q6_K->Q8_0).
 */
#include "gguf/gguf.h"
#include "kernels/blocks.h"
#include "kernels/quant.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct shape { int embd, layers, heads, kv_heads, ff, vocab; bool tied; } shape;

static uint64_t rs = 0x243f6a8885a308d3ull;
static inline uint64_t next(void)
{
    rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17;
    return rs;
}

static void put16(uint8_t *p, float v) { uint16_t h = fp32_to_fp16(v); memcpy(p, &h, 2); }

/* Random block bytes, then overwrite the fp16 scale fields with sane values. */
static void fill_quant(uint32_t type, uint8_t *dst, size_t n_blocks, size_t bsize)
{
    for (size_t i = 0; i < n_blocks * bsize; i += 8) {
        uint64_t r = next();
        memcpy(dst + i, &r, CAIRN_MIN(8, n_blocks * bsize - i));
    }
    for (size_t b = 0; b < n_blocks; b++) {
        uint8_t *p = dst + b * bsize;
        switch (type) {
        case QT_Q8_0: put16(p, 2e-4f); break;
        case QT_Q4_0: case QT_Q5_0: put16(p, 3e-3f); break;
        case QT_Q4_1: case QT_Q5_1: put16(p, 3e-3f); put16(p + 2, -0.02f); break;
        case QT_Q4_K: case QT_Q5_K: put16(p, 1e-4f); put16(p + 2, 1e-4f); break;
        case QT_Q6_K: put16(p + offsetof(block_q6_K, d), 1e-4f); break;
        case QT_Q2_K: put16(p + offsetof(block_q2_K, d), 1e-3f); put16(p + offsetof(block_q2_K, dmin), 1e-3f); break;
        case QT_Q3_K: put16(p + offsetof(block_q3_K, d), 1e-3f); break;
        default: break;
        }
    }
}

static void *make_data(uint32_t type, int64_t rows, int64_t cols, float scale, float offset, size_t *nbytes)
{
    size_t row = qtype_row_size(type, cols), n = row * (size_t)rows;
    uint8_t *d = cairn_malloc(n ? n : 1);
    if (!d)
        return NULL;
    *nbytes = n;
    size_t count = (size_t)rows * (size_t)cols;
    if (type == QT_F32) {
        float *f = (float *)d;
        for (size_t i = 0; i < count; i++)
            f[i] = offset + scale * ((float)(next() >> 40) / (float)(1 << 24) * 2 - 1);
    } else if (type == QT_F16 || type == QT_BF16) {
        uint16_t *h = (uint16_t *)d;
        for (size_t i = 0; i < count; i++) {
            float v = offset + scale * ((float)(next() >> 40) / (float)(1 << 24) * 2 - 1);
            h[i] = type == QT_F16 ? fp32_to_fp16(v) : fp32_to_bf16(v);
        }
    } else {
        const qtype_traits *tr = qtype_get(type);
        fill_quant(type, d, n / tr->type_size, tr->type_size);
    }
    return d;
}

static uint32_t fallback(uint32_t t, int64_t cols)
{
    if (cols % QK_K == 0)
        return t;
    switch (t) {
    case QT_Q2_K: case QT_Q3_K: case QT_Q4_K: return QT_Q5_0;
    case QT_Q5_K: return QT_Q5_1;
    case QT_Q6_K: return QT_Q8_0;
    default: return t;
    }
}

static bool more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

static int add(gguf_writer *w, const char *name, uint32_t type, int64_t rows, int64_t cols, float scale, float off)
{
    if (rows > 1)
        type = fallback(type, cols);
    size_t nb;
    void *d = make_data(type, rows, cols, scale, off, &nb);
    int64_t ne[2] = {cols, rows};
    if (!d || gguf_writer_add_tensor_take(w, name, type, rows > 1 ? 2 : 1, ne, d, nb) != CAIRN_OK) {
        fprintf(stderr, "mkmodel: %s: %s\n", name, cairn_last_error());
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: mkmodel OUT.gguf smollm|tinyllama|E,L,H,KV,FF,V[,tied] TYPE\n");
        return 2;
    }
    kernels_init();
    shape s;
    if (!strcmp(argv[2], "smollm"))
        s = (shape){576, 30, 9, 3, 1536, 49152, true};
    else if (!strcmp(argv[2], "tinyllama"))
        s = (shape){2048, 22, 32, 4, 5632, 32000, false};
    else {
        char tied[8] = "";
        if (sscanf(argv[2], "%d,%d,%d,%d,%d,%d,%7s", &s.embd, &s.layers, &s.heads, &s.kv_heads, &s.ff, &s.vocab, tied) < 6 ||
            s.embd <= 0 || s.layers <= 0 || s.heads <= 0 || s.kv_heads <= 0 || s.ff <= 0 || s.vocab <= 0 ||
            s.embd % s.heads || s.heads % s.kv_heads) {
            fprintf(stderr, "mkmodel: bad shape '%s'\n", argv[2]);
            return 2;
        }
        s.tied = !strcmp(tied, "tied");
    }
    static const struct { const char *name; uint32_t type; } types[] = {
        {"f32", QT_F32}, {"f16", QT_F16}, {"bf16", QT_BF16}, {"q8_0", QT_Q8_0}, {"q4_0", QT_Q4_0},
        {"q4_1", QT_Q4_1}, {"q5_0", QT_Q5_0}, {"q5_1", QT_Q5_1}, {"q2_k", QT_Q2_K}, {"q3_k", QT_Q3_K},
        {"q4_k", QT_Q4_K}, {"q5_k", QT_Q5_K}, {"q6_k", QT_Q6_K}, {"q4_k_m", QT_Q4_K},
    };
    uint32_t base = UINT32_MAX;
    for (size_t i = 0; i < CAIRN_ARRAY_LEN(types); i++)
        if (!strcmp(argv[3], types[i].name))
            base = types[i].type;
    if (base == UINT32_MAX) {
        fprintf(stderr, "mkmodel: unknown type '%s'\n", argv[3]);
        return 2;
    }
    bool km = !strcmp(argv[3], "q4_k_m");
    int hd = s.embd / s.heads, qd = s.heads * hd, kvd = s.kv_heads * hd;
    gguf_writer *w;
    if (gguf_writer_new(&w) != CAIRN_OK)
        return 1;
    int err = 0;
    err |= gguf_writer_set_str(w, "general.architecture", "llama") != CAIRN_OK;
    err |= gguf_writer_set_str(w, "general.name", argv[2]) != CAIRN_OK;
    err |= gguf_writer_set_u32(w, "llama.block_count", (uint32_t)s.layers) != CAIRN_OK;
    err |= gguf_writer_set_u32(w, "llama.embedding_length", (uint32_t)s.embd) != CAIRN_OK;
    err |= gguf_writer_set_u32(w, "llama.feed_forward_length", (uint32_t)s.ff) != CAIRN_OK;
    err |= gguf_writer_set_u32(w, "llama.attention.head_count", (uint32_t)s.heads) != CAIRN_OK;
    err |= gguf_writer_set_u32(w, "llama.attention.head_count_kv", (uint32_t)s.kv_heads) != CAIRN_OK;
    err |= gguf_writer_set_u32(w, "llama.context_length", 2048) != CAIRN_OK;
    err |= gguf_writer_set_u32(w, "llama.rope.dimension_count", (uint32_t)hd) != CAIRN_OK;
    err |= gguf_writer_set_f32(w, "llama.rope.freq_base", 10000.0f) != CAIRN_OK;
    err |= gguf_writer_set_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f) != CAIRN_OK;
    float sm = 1.0f / sqrtf((float)s.embd), sf = 1.0f / sqrtf((float)s.ff);
    /* output matrix (the embedding when tied): Q6_K for every quantized
     * type below 8 bits, as llama.cpp's quantizer does */
    bool low = base != QT_F32 && base != QT_F16 && base != QT_BF16 && base != QT_Q8_0;
    uint32_t q6 = low ? QT_Q6_K : base;
    err |= add(w, "token_embd.weight", s.tied ? q6 : base, s.vocab, s.embd, 1.0f, 0);
    err |= add(w, "output_norm.weight", QT_F32, 1, s.embd, 0, 1.0f);
    if (!s.tied)
        err |= add(w, "output.weight", q6, s.vocab, s.embd, sm, 0);
    for (int i = 0; i < s.layers && !err; i++) {
        char n[64];
        uint32_t tv = km && more_bits(i, s.layers) ? QT_Q6_K : base;
#define T(sfx, type, rows, cols, sc, off) (snprintf(n, sizeof n, "blk.%d." sfx, i), err |= add(w, n, type, rows, cols, sc, off))
        T("attn_norm.weight", QT_F32, 1, s.embd, 0, 1.0f);
        T("attn_q.weight", base, qd, s.embd, sm, 0);
        T("attn_k.weight", base, kvd, s.embd, sm, 0);
        T("attn_v.weight", tv, kvd, s.embd, sm, 0);
        T("attn_output.weight", base, s.embd, qd, sm, 0);
        T("ffn_norm.weight", QT_F32, 1, s.embd, 0, 1.0f);
        T("ffn_gate.weight", base, s.ff, s.embd, sm, 0);
        T("ffn_up.weight", base, s.ff, s.embd, sm, 0);
        T("ffn_down.weight", tv, s.embd, s.ff, sf, 0);
#undef T
    }
    if (!err && gguf_writer_write(w, argv[1]) != CAIRN_OK) {
        fprintf(stderr, "mkmodel: %s\n", cairn_last_error());
        err = 1;
    }
    gguf_writer_free(w);
    return err ? 1 : 0;
}
