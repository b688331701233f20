/*
 * gguf_check.c — scan tensor data for values that would poison inference:
 * NaN/Inf in F32/F16/BF16 tensors and in the fp16 (or f32) scales of
 * quantized blocks. The header validation in gguf.c cannot see these; a
 * damaged or badly converted file otherwise shows up as NaN logits much later.
 *
 * Cost: reads every byte of F32/F16/BF16 tensors, and 2-4 bytes per block of
 * quantized ones (memory bandwidth bound).
 */
#include "gguf/gguf.h"
#include <math.h>
#include <string.h>

static bool f16_ok(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return (h & 0x7c00) != 0x7c00;
}

static bool bf16_ok(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return (h & 0x7f80) != 0x7f80;
}

static bool f32_ok(const uint8_t *p)
{
    float f;
    memcpy(&f, p, 4);
    return isfinite(f);
}

/* Byte offsets of the fp16 scales inside one block of each quantized type
 * (-1 = none), from the block layouts (kernels/blocks.h and ggml's IQ/TQ types). */
typedef struct scale_pos { int16_t a, b; bool f32; } scale_pos;

static bool scales_of(uint32_t type, scale_pos *s)
{
    *s = (scale_pos){-1, -1, false};
    switch (type) {
    case 2: case 6: case 8: case 20:          /* Q4_0 Q5_0 Q8_0 IQ4_NL: d first */
    case 16: case 17: case 18: case 19: case 21: case 22: case 23:   /* IQ2_XXS IQ2_XS IQ3_XXS IQ1_S IQ3_S IQ2_S IQ4_XS */
        s->a = 0;
        return true;
    case 9:                                   /* Q8_1: d (s = d * sum is derived) */
        s->a = 0;
        return true;
    case 3: case 7: case 12: case 13:         /* Q4_1 Q5_1 Q4_K Q5_K: d, m (dmin) */
        s->a = 0;
        s->b = 2;
        return true;
    case 10: s->a = 80; s->b = 82; return true;   /* Q2_K: scales[16] qs[64] d dmin */
    case 11: s->a = 108; return true;             /* Q3_K: hmask[32] qs[64] scales[12] d */
    case 14: s->a = 208; return true;             /* Q6_K: ql[128] qh[64] scales[16] d */
    case 15: s->a = 0; s->f32 = true; return true;/* Q8_K: float d */
    case 34: s->a = 52; return true;              /* TQ1_0: qs[48] qh[4] d */
    case 35: s->a = 64; return true;              /* TQ2_0: qs[64] d */
    default: return false;                        /* IQ1_M (scale spread over bits), integer types */
    }
}

cairn_status gguf_tensor_check(const gguf_tensor *t, uint64_t *bad_at)
{
    const uint8_t *p = t->data;
    const gguf_ttype_info *ti = gguf_ttype(t->type);
    uint64_t n = t->nbytes;
    *bad_at = 0;
    if (!ti)
        return cairn_fail(CAIRN_ERR_CORRUPT, "unknown tensor type %u", t->type);
    uint64_t bad = UINT64_MAX;
    if (t->type == 0 || t->type == 1 || t->type == 30) {
        uint32_t w = t->type == 0 ? 4 : 2;
        for (uint64_t i = 0; i + w <= n; i += w) {
            bool ok = t->type == 0 ? f32_ok(p + i) : t->type == 1 ? f16_ok(p + i) : bf16_ok(p + i);
            if (!ok) {
                bad = i / w;
                break;
            }
        }
    } else {
        scale_pos s;
        if (!scales_of(t->type, &s))
            return CAIRN_OK;   /* nothing checkable */
        for (uint64_t blk = 0, off = 0; off + ti->type_size <= n; blk++, off += ti->type_size) {
            bool ok = s.f32 ? f32_ok(p + off + s.a) : f16_ok(p + off + s.a);
            if (ok && s.b >= 0)
                ok = f16_ok(p + off + s.b);
            if (!ok) {
                bad = blk * ti->block_size;
                break;
            }
        }
    }
    if (bad == UINT64_MAX)
        return CAIRN_OK;
    *bad_at = bad;
    return cairn_fail(CAIRN_ERR_CORRUPT, "tensor '%.*s' (%s): non-finite %s at value %llu",
                      (int)CAIRN_MIN(t->name.len, 100), t->name.ptr, ti->name,
                      ti->block_size > 1 ? "block scale" : "value", (unsigned long long)bad);
}
