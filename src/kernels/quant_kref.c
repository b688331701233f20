/*
 * quant_kref.c — scalar reference kernels for the K-quants (super-blocks of
 * QK_K = 256 values) and their activation type Q8_K.
 *
 * Layouts (blocks.h), value = scale * q - min per sub-block:
 *   Q2_K: 16 sub-blocks of 16; scales[i] = 4-bit scale | 4-bit min << 4;
 *         2-bit q; d, dmin fp16 super-scales.
 *   Q3_K: 16 sub-blocks of 16; 6-bit signed scales (minus 32) packed in 12
 *         bytes; 3-bit q = 2 low bits in qs + high bit in hmask, q - 4.
 *   Q4_K: 8 sub-blocks of 32; 6-bit scale and min packed in 12 bytes
 *         (k4_scale_min); 4-bit q.
 *   Q5_K: as Q4_K plus a 5th bit in qh.
 *   Q6_K: 16 sub-blocks of 16; int8 scales; 6-bit q = 4 bits in ql + 2 in qh, q - 32.
 *   Q8_K: float d, int8 q, and bsums = sums of each 16 q (for the min terms).
 * Quantized values are stored interleaved: within each 128 (Q2/Q3/Q6) or 64
 * (Q4/Q5) values, byte l holds value l in its low bits and l+32 (l+64, ...)
 * in the higher bits.
 *
 * The quantizers search the scales like ggml's reference ones: a scale (and
 * min) from the extremes, then a small grid of candidate scales, each with a
 * weighted least-squares refit, keeping the one with the lowest weighted
 * error; the per-sub-block scales are then themselves quantized to 4/6/8 bits
 * and the values requantized with the rounded scales.
 */
#include "kernels/quant_ref.h"

#define GROUP_EPS 1e-15f

static inline int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* ---------------------------------------------------------------- scale search */

/* Symmetric quantization of n values to integers in [-nmax, nmax-1] with
 * weights w = x^2 (the error of large values matters most). Starts from the
 * scale that maps the extreme value to -nmax, then tries 18 nearby scales,
 * each refitted by least squares; returns the scale, L[i] = q + nmax. */
static float fit_symmetric(int n, int nmax, const float *x, int8_t *L)
{
    float amax = 0, max = 0;
    for (int i = 0; i < n; i++) {
        if (fabsf(x[i]) > amax) {
            amax = fabsf(x[i]);
            max = x[i];
        }
    }
    if (amax < GROUP_EPS) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    float best_scale = 0, best = 0;
    for (int step = 0; step <= 18; step++) {
        /* candidate 0 is the plain extreme-value scale, then -0.9 .. +0.9 */
        float off = step == 0 ? 0.f : 0.1f * (float)(step <= 9 ? step - 10 : step - 9);
        float iscale = -((float)nmax + off) / max;
        float sumlx = 0, suml2 = 0;
        for (int i = 0; i < n; i++) {
            int l = clampi(nearest_int(iscale * x[i]), -nmax, nmax - 1);
            float w = x[i] * x[i];
            sumlx += w * x[i] * (float)l;
            suml2 += w * (float)(l * l);
        }
        /* error reduction of the least-squares scale is sumlx^2 / suml2 */
        if (step == 0 || (suml2 > 0 && sumlx * sumlx > best * suml2)) {
            for (int i = 0; i < n; i++)
                L[i] = (int8_t)(nmax + clampi(nearest_int(iscale * x[i]), -nmax, nmax - 1));
            best_scale = suml2 > 0 ? sumlx / suml2 : 0.f;
            best = best_scale * sumlx;
        }
    }
    return best_scale;
}

/* Q3_K's variant: start from the extreme-value scale, then coordinate
 * descent — move single values to the level that improves the weighted
 * least-squares fit, up to 5 sweeps. Returns the scale; L[i] = q + nmax. */
static float fit_symmetric_refine(int n, int nmax, const float *x, int8_t *L)
{
    float amax = 0, max = 0;
    for (int i = 0; i < n; i++) {
        if (fabsf(x[i]) > amax) {
            amax = fabsf(x[i]);
            max = x[i];
        }
    }
    if (amax < GROUP_EPS) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    float iscale = -(float)nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = clampi(nearest_int(iscale * x[i]), -nmax, nmax - 1);
        L[i] = (int8_t)l;
        float w = x[i] * x[i];
        sumlx += w * x[i] * (float)l;
        suml2 += w * (float)(l * l);
    }
    for (int sweep = 0; sweep < 5; sweep++) {
        int changed = 0;
        for (int i = 0; i < n; i++) {
            float w = x[i] * x[i];
            float slx = sumlx - w * x[i] * (float)L[i];
            if (slx <= 0)
                continue;
            float sl2 = suml2 - w * (float)(L[i] * L[i]);
            int nl = clampi(nearest_int(x[i] * sl2 / slx), -nmax, nmax - 1);
            if (nl == L[i])
                continue;
            slx += w * x[i] * (float)nl;
            sl2 += w * (float)(nl * nl);
            if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                L[i] = (int8_t)nl;
                sumlx = slx;
                suml2 = sl2;
                changed++;
            }
        }
        if (!changed)
            break;
    }
    for (int i = 0; i < n; i++)
        L[i] = (int8_t)(L[i] + nmax);
    return suml2 > 0 ? sumlx / suml2 : 0.f;
}

/* Asymmetric quantization x ~ scale * L - min with L in [0, nmax], weights w.
 * Tries iscale = (nmax + rmin + rdelta*k) / (max - min) for k = 0..nstep,
 * each with a weighted least-squares fit of scale and min (min clamped so the
 * offset stays <= 0 as the format stores -min >= 0), keeping the lowest error
 * (absolute when use_abs, else squared). Returns scale; *neg_min = -min. */
static float fit_affine(int n, int nmax, const float *x, const float *w, uint8_t *L, float *neg_min,
                        uint8_t *Laux, float rmin, float rdelta, int nstep, bool use_abs)
{
    float mn = x[0], mx = x[0], sum_w = w[0], sum_x = w[0] * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < mn) mn = x[i];
        if (x[i] > mx) mx = x[i];
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (mn > 0)
        mn = 0;
    if (mx == mn) {
        memset(L, 0, (size_t)n);
        *neg_min = -mn;
        return 0.f;
    }
    float iscale = (float)nmax / (mx - mn), scale = 1 / iscale, best_err = 0;
    for (int i = 0; i < n; i++) {
        L[i] = (uint8_t)clampi(nearest_int(iscale * (x[i] - mn)), 0, nmax);
        float diff = scale * L[i] + mn - x[i];
        best_err += w[i] * (use_abs ? fabsf(diff) : diff * diff);
    }
    for (int k = 0; k <= nstep; k++) {
        iscale = (rmin + rdelta * (float)k + (float)nmax) / (mx - mn);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            int l = clampi(nearest_int(iscale * (x[i] - mn)), 0, nmax);
            Laux[i] = (uint8_t)l;
            sum_l += w[i] * (float)l;
            sum_l2 += w[i] * (float)(l * l);
            sum_xl += w[i] * (float)l * x[i];
        }
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D <= 0)
            continue;
        float s = (sum_w * sum_xl - sum_x * sum_l) / D;
        float m = (sum_l2 * sum_x - sum_l * sum_xl) / D;
        if (m > 0) {
            m = 0;
            s = sum_xl / sum_l2;
        }
        float err = 0;
        for (int i = 0; i < n; i++) {
            float diff = s * Laux[i] + m - x[i];
            err += w[i] * (use_abs ? fabsf(diff) : diff * diff);
        }
        if (err < best_err) {
            memcpy(L, Laux, (size_t)n);
            best_err = err;
            scale = s;
            mn = m;
        }
    }
    *neg_min = -mn;
    return scale;
}

/* Pack 4 groups of 32 2-bit values (value l + 32k at bits 2k of byte l). */
static void pack_2bit_128(const uint8_t *L, uint8_t *qs)
{
    for (int l = 0; l < 32; l++)
        qs[l] = (uint8_t)(L[l] | (L[l + 32] << 2) | (L[l + 64] << 4) | (L[l + 96] << 6));
}

/* ---------------------------------------------------------------- Q2_K */

void quant_q2_K_ref(const float *src, void *dst, int64_t n)
{
    block_q2_K *b = dst;
    uint8_t L[QK_K], Laux[16];
    float w[16], mins[16], scales[16];
    for (int64_t i = 0; i < n / QK_K; i++, src += QK_K) {
        float max_scale = 0, max_min = 0;
        for (int j = 0; j < 16; j++) {
            for (int l = 0; l < 16; l++)
                w[l] = fabsf(src[16 * j + l]);
            scales[j] = fit_affine(16, 3, src + 16 * j, w, L + 16 * j, &mins[j], Laux, -0.5f, 0.1f, 15, true);
            max_scale = CAIRN_MAX(max_scale, scales[j]);
            max_min = CAIRN_MAX(max_min, mins[j]);
        }
        memset(b[i].scales, 0, sizeof b[i].scales);
        if (max_scale > 0) {
            float is = 15 / max_scale;
            for (int j = 0; j < 16; j++)
                b[i].scales[j] = (uint8_t)clampi(nearest_int(is * scales[j]), 0, 15);
            b[i].d = fp32_to_fp16(max_scale / 15);
        } else {
            b[i].d = 0;
        }
        if (max_min > 0) {
            float is = 15 / max_min;
            for (int j = 0; j < 16; j++)
                b[i].scales[j] |= (uint8_t)(clampi(nearest_int(is * mins[j]), 0, 15) << 4);
            b[i].dmin = fp32_to_fp16(max_min / 15);
        } else {
            b[i].dmin = 0;
        }
        float D = fp16_decode(b[i].d), DM = fp16_decode(b[i].dmin);
        for (int j = 0; j < 16; j++) {
            float d = D * (b[i].scales[j] & 0xF);
            if (d == 0)
                continue;               /* keep the search's L (value is -min anyway) */
            float dm = DM * (b[i].scales[j] >> 4);
            for (int l = 0; l < 16; l++)
                L[16 * j + l] = (uint8_t)clampi(nearest_int((src[16 * j + l] + dm) / d), 0, 3);
        }
        for (int j = 0; j < QK_K; j += 128)
            pack_2bit_128(L + j, b[i].qs + j / 4);
    }
}

void dequant_q2_K_ref(const void *src, float *y, int64_t n)
{
    const block_q2_K *b = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        float d = fp16_decode(b[i].d), mn = fp16_decode(b[i].dmin);
        const uint8_t *q = b[i].qs;
        int is = 0;
        for (int h = 0; h < QK_K; h += 128, q += 32) {
            for (int shift = 0; shift < 8; shift += 2) {
                for (int half = 0; half < 2; half++) {
                    uint8_t sc = b[i].scales[is++];
                    float dl = d * (sc & 0xF), ml = mn * (sc >> 4);
                    for (int l = 0; l < 16; l++)
                        *y++ = dl * (float)((q[l + 16 * half] >> shift) & 3) - ml;
                }
            }
        }
    }
}

void vec_dot_q2_K_q8_K_ref(int n, float *s, const void *x, const void *y)
{
    const block_q2_K *a = x;
    const block_q8_K *b = y;
    float sum = 0;
    for (int i = 0; i < n / QK_K; i++) {
        int summs = 0, isum = 0;
        for (int j = 0; j < 16; j++)
            summs += b[i].bsums[j] * (a[i].scales[j] >> 4);
        const uint8_t *q = a[i].qs;
        const int8_t *q8 = b[i].qs;
        int is = 0;
        for (int h = 0; h < QK_K; h += 128, q += 32) {
            for (int shift = 0; shift < 8; shift += 2) {
                for (int half = 0; half < 2; half++) {
                    int sub = 0;
                    for (int l = 0; l < 16; l++)
                        sub += ((q[l + 16 * half] >> shift) & 3) * q8[l];
                    q8 += 16;
                    isum += sub * (a[i].scales[is++] & 0xF);
                }
            }
        }
        float dall = b[i].d * fp16_decode(a[i].d), dmin = b[i].d * fp16_decode(a[i].dmin);
        sum += dall * (float)isum - dmin * (float)summs;
    }
    *s = sum;
}

/* ---------------------------------------------------------------- Q3_K */

/* 12 bytes hold 16 6-bit values: low 4 bits of scale j in byte j (j<8) low
 * nibble or byte j-8 high nibble; high 2 bits in byte 8 + j%4 at bit 2*(j/4). */
void q3k_unpack_scales(const uint8_t p[12], int8_t out[16])
{
    for (int j = 0; j < 16; j++) {
        int lo = j < 8 ? p[j] & 0xF : p[j - 8] >> 4;
        int hi = (p[8 + j % 4] >> (2 * (j / 4))) & 3;
        out[j] = (int8_t)((lo | (hi << 4)) - 32);
    }
}

void quant_q3_K_ref(const float *src, void *dst, int64_t n)
{
    block_q3_K *b = dst;
    int8_t L[QK_K];
    float scales[16];
    for (int64_t i = 0; i < n / QK_K; i++, src += QK_K) {
        float max_scale = 0, amax = 0;
        for (int j = 0; j < 16; j++) {
            scales[j] = fit_symmetric_refine(16, 4, src + 16 * j, L + 16 * j);
            if (fabsf(scales[j]) > amax) {
                amax = fabsf(scales[j]);
                max_scale = scales[j];
            }
        }
        memset(b[i].scales, 0, sizeof b[i].scales);
        if (max_scale != 0) {
            float is = -32.f / max_scale;
            for (int j = 0; j < 16; j++) {
                int l = clampi(nearest_int(is * scales[j]), -32, 31) + 32;
                if (j < 8)
                    b[i].scales[j] = (uint8_t)(l & 0xF);
                else
                    b[i].scales[j - 8] |= (uint8_t)((l & 0xF) << 4);
                b[i].scales[8 + j % 4] |= (uint8_t)((l >> 4) << (2 * (j / 4)));
            }
            b[i].d = fp32_to_fp16(1 / is);
        } else {
            b[i].d = 0;
        }
        int8_t sc[16];
        q3k_unpack_scales(b[i].scales, sc);
        float D = fp16_decode(b[i].d);
        for (int j = 0; j < 16; j++) {
            float d = D * sc[j];
            if (d == 0)
                continue;
            for (int l = 0; l < 16; l++)
                L[16 * j + l] = (int8_t)(clampi(nearest_int(src[16 * j + l] / d), -4, 3) + 4);
        }
        /* high bit of value j: hmask[j % 32] bit j / 32; then 2 low bits packed */
        memset(b[i].hmask, 0, sizeof b[i].hmask);
        uint8_t low[QK_K];
        for (int j = 0; j < QK_K; j++) {
            int l = L[j];
            if (l > 3) {
                b[i].hmask[j % 32] |= (uint8_t)(1u << (j / 32));
                l -= 4;
            }
            low[j] = (uint8_t)l;
        }
        for (int j = 0; j < QK_K; j += 128)
            pack_2bit_128(low + j, b[i].qs + j / 4);
    }
}

void dequant_q3_K_ref(const void *src, float *y, int64_t n)
{
    const block_q3_K *b = src;
    int8_t sc[16];
    for (int64_t i = 0; i < n / QK_K; i++) {
        float d_all = fp16_decode(b[i].d);
        q3k_unpack_scales(b[i].scales, sc);
        const uint8_t *q = b[i].qs, *hm = b[i].hmask;
        uint8_t m = 1;
        int is = 0;
        for (int h = 0; h < QK_K; h += 128, q += 32) {
            for (int shift = 0; shift < 8; shift += 2, m = (uint8_t)(m << 1)) {
                for (int half = 0; half < 2; half++) {
                    float dl = d_all * (float)sc[is++];
                    for (int l = 16 * half; l < 16 * half + 16; l++)
                        *y++ = dl * (float)(((q[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4));
                }
            }
        }
    }
}

void vec_dot_q3_K_q8_K_ref(int n, float *s, const void *x, const void *y)
{
    const block_q3_K *a = x;
    const block_q8_K *b = y;
    int8_t sc[16];
    float sum = 0;
    for (int i = 0; i < n / QK_K; i++) {
        q3k_unpack_scales(a[i].scales, sc);
        const uint8_t *q = a[i].qs, *hm = a[i].hmask;
        const int8_t *q8 = b[i].qs;
        uint8_t m = 1;
        int is = 0, isum = 0;
        for (int h = 0; h < QK_K; h += 128, q += 32) {
            for (int shift = 0; shift < 8; shift += 2, m = (uint8_t)(m << 1)) {
                for (int half = 0; half < 2; half++) {
                    int sub = 0;
                    for (int l = 16 * half; l < 16 * half + 16; l++)
                        sub += (((q[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4)) * *q8++;
                    isum += sub * sc[is++];
                }
            }
        }
        sum += fp16_decode(a[i].d) * b[i].d * (float)isum;
    }
    *s = sum;
}

/* ---------------------------------------------------------------- Q4_K / Q5_K */

/* Shared by Q4_K (nmax 15) and Q5_K (nmax 31): 8 sub-blocks of 32 fitted
 * with weights rms(x) + |x|, scales and mins quantized to 6 bits. Fills d,
 * dmin, scales and L (values 0..nmax). */
static void fit_k4(const float *x, int nmax, float rmin, int nstep, fp16_t *d_out, fp16_t *dmin_out,
                   uint8_t packed[K_SCALE_SIZE], uint8_t L[QK_K])
{
    float w[32], mins[8], scales[8], max_scale = 0, max_min = 0;
    uint8_t Laux[32];
    for (int j = 0; j < 8; j++) {
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++)
            sum_x2 += x[32 * j + l] * x[32 * j + l];
        float av = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++)
            w[l] = av + fabsf(x[32 * j + l]);
        scales[j] = fit_affine(32, nmax, x + 32 * j, w, L + 32 * j, &mins[j], Laux, rmin, 0.1f, nstep, false);
        max_scale = CAIRN_MAX(max_scale, scales[j]);
        max_min = CAIRN_MAX(max_min, mins[j]);
    }
    float is = max_scale > 0 ? 63.f / max_scale : 0.f, im = max_min > 0 ? 63.f / max_min : 0.f;
    memset(packed, 0, K_SCALE_SIZE);
    for (int j = 0; j < 8; j++) {
        uint8_t ls = (uint8_t)CAIRN_MIN(63, nearest_int(is * scales[j]));
        uint8_t lm = (uint8_t)CAIRN_MIN(63, nearest_int(im * mins[j]));
        if (j < 4) {
            packed[j] = ls;
            packed[j + 4] = lm;
        } else {
            packed[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
            packed[j - 4] |= (uint8_t)((ls >> 4) << 6);
            packed[j] |= (uint8_t)((lm >> 4) << 6);
        }
    }
    *d_out = fp32_to_fp16(max_scale / 63.f);
    *dmin_out = fp32_to_fp16(max_min / 63.f);
    float D = fp16_decode(*d_out), DM = fp16_decode(*dmin_out);
    for (int j = 0; j < 8; j++) {
        uint8_t sc, m;
        k4_scale_min(j, packed, &sc, &m);
        float d = D * sc;
        if (d == 0)
            continue;
        float dm = DM * m;
        for (int l = 0; l < 32; l++)
            L[32 * j + l] = (uint8_t)clampi(nearest_int((x[32 * j + l] + dm) / d), 0, nmax);
    }
}

void quant_q4_K_ref(const float *src, void *dst, int64_t n)
{
    block_q4_K *b = dst;
    uint8_t L[QK_K];
    for (int64_t i = 0; i < n / QK_K; i++, src += QK_K) {
        fit_k4(src, 15, -1.f, 20, &b[i].d, &b[i].dmin, b[i].scales, L);
        for (int j = 0; j < QK_K; j += 64)
            for (int l = 0; l < 32; l++)
                b[i].qs[j / 2 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
    }
}

void dequant_q4_K_ref(const void *src, float *y, int64_t n)
{
    const block_q4_K *b = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        float d = fp16_decode(b[i].d), mn = fp16_decode(b[i].dmin);
        const uint8_t *q = b[i].qs;
        for (int j = 0; j < 8; j += 2, q += 32) {
            uint8_t sc, m;
            k4_scale_min(j, b[i].scales, &sc, &m);
            float d1 = d * sc, m1 = mn * m;
            k4_scale_min(j + 1, b[i].scales, &sc, &m);
            float d2 = d * sc, m2 = mn * m;
            for (int l = 0; l < 32; l++)
                *y++ = d1 * (float)(q[l] & 0xF) - m1;
            for (int l = 0; l < 32; l++)
                *y++ = d2 * (float)(q[l] >> 4) - m2;
        }
    }
}

void vec_dot_q4_K_q8_K_ref(int n, float *s, const void *x, const void *y)
{
    const block_q4_K *a = x;
    const block_q8_K *b = y;
    float sum = 0;
    for (int i = 0; i < n / QK_K; i++) {
        const uint8_t *q = a[i].qs;
        const int8_t *q8 = b[i].qs;
        int isum = 0, summs = 0;
        for (int j = 0; j < 8; j += 2, q += 32) {
            uint8_t sc1, m1, sc2, m2;
            k4_scale_min(j, a[i].scales, &sc1, &m1);
            k4_scale_min(j + 1, a[i].scales, &sc2, &m2);
            int s1 = 0, s2 = 0;
            for (int l = 0; l < 32; l++) {
                s1 += (q[l] & 0xF) * q8[l];
                s2 += (q[l] >> 4) * q8[l + 32];
            }
            q8 += 64;
            isum += s1 * sc1 + s2 * sc2;
            summs += m1 * (b[i].bsums[2 * j] + b[i].bsums[2 * j + 1]) + m2 * (b[i].bsums[2 * j + 2] + b[i].bsums[2 * j + 3]);
        }
        sum += fp16_decode(a[i].d) * b[i].d * (float)isum - fp16_decode(a[i].dmin) * b[i].d * (float)summs;
    }
    *s = sum;
}

void quant_q5_K_ref(const float *src, void *dst, int64_t n)
{
    block_q5_K *b = dst;
    uint8_t L[QK_K];
    for (int64_t i = 0; i < n / QK_K; i++, src += QK_K) {
        fit_k4(src, 31, -0.5f, 15, &b[i].d, &b[i].dmin, b[i].scales, L);
        /* 5th bit of value j + l (64-value group g) in qh[l] bit 2g (+1 for the upper 32) */
        memset(b[i].qh, 0, sizeof b[i].qh);
        for (int j = 0, g = 0; j < QK_K; j += 64, g++) {
            for (int l = 0; l < 32; l++) {
                int l1 = L[j + l], l2 = L[j + l + 32];
                if (l1 > 15) { l1 -= 16; b[i].qh[l] |= (uint8_t)(1u << (2 * g)); }
                if (l2 > 15) { l2 -= 16; b[i].qh[l] |= (uint8_t)(2u << (2 * g)); }
                b[i].qs[j / 2 + l] = (uint8_t)(l1 | (l2 << 4));
            }
        }
    }
}

void dequant_q5_K_ref(const void *src, float *y, int64_t n)
{
    const block_q5_K *b = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        float d = fp16_decode(b[i].d), mn = fp16_decode(b[i].dmin);
        const uint8_t *ql = b[i].qs, *qh = b[i].qh;
        uint8_t u1 = 1, u2 = 2;
        for (int j = 0; j < 8; j += 2, ql += 32, u1 = (uint8_t)(u1 << 2), u2 = (uint8_t)(u2 << 2)) {
            uint8_t sc, m;
            k4_scale_min(j, b[i].scales, &sc, &m);
            float d1 = d * sc, m1 = mn * m;
            k4_scale_min(j + 1, b[i].scales, &sc, &m);
            float d2 = d * sc, m2 = mn * m;
            for (int l = 0; l < 32; l++)
                *y++ = d1 * (float)((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
            for (int l = 0; l < 32; l++)
                *y++ = d2 * (float)((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
        }
    }
}

void vec_dot_q5_K_q8_K_ref(int n, float *s, const void *x, const void *y)
{
    const block_q5_K *a = x;
    const block_q8_K *b = y;
    float sum = 0;
    for (int i = 0; i < n / QK_K; i++) {
        const uint8_t *ql = a[i].qs, *qh = a[i].qh;
        const int8_t *q8 = b[i].qs;
        int isum = 0, summs = 0;
        uint8_t u1 = 1, u2 = 2;
        for (int j = 0; j < 8; j += 2, ql += 32, u1 = (uint8_t)(u1 << 2), u2 = (uint8_t)(u2 << 2)) {
            uint8_t sc1, m1, sc2, m2;
            k4_scale_min(j, a[i].scales, &sc1, &m1);
            k4_scale_min(j + 1, a[i].scales, &sc2, &m2);
            int s1 = 0, s2 = 0;
            for (int l = 0; l < 32; l++) {
                s1 += ((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) * q8[l];
                s2 += ((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) * q8[l + 32];
            }
            q8 += 64;
            isum += s1 * sc1 + s2 * sc2;
            summs += m1 * (b[i].bsums[2 * j] + b[i].bsums[2 * j + 1]) + m2 * (b[i].bsums[2 * j + 2] + b[i].bsums[2 * j + 3]);
        }
        sum += fp16_decode(a[i].d) * b[i].d * (float)isum - fp16_decode(a[i].dmin) * b[i].d * (float)summs;
    }
    *s = sum;
}

/* ---------------------------------------------------------------- Q6_K */

void quant_q6_K_ref(const float *src, void *dst, int64_t n)
{
    block_q6_K *b = dst;
    int8_t L[QK_K];
    float scales[16];
    for (int64_t i = 0; i < n / QK_K; i++, src += QK_K) {
        float max_scale = 0, max_abs = 0;
        for (int j = 0; j < 16; j++) {
            scales[j] = fit_symmetric(16, 32, src + 16 * j, L + 16 * j);
            if (fabsf(scales[j]) > max_abs) {
                max_abs = fabsf(scales[j]);
                max_scale = scales[j];
            }
        }
        if (max_abs < GROUP_EPS) {
            memset(&b[i], 0, sizeof b[i]);
            continue;
        }
        float is = -128.f / max_scale;
        b[i].d = fp32_to_fp16(1 / is);
        for (int j = 0; j < 16; j++)
            b[i].scales[j] = (int8_t)CAIRN_MIN(127, nearest_int(is * scales[j]));
        float D = fp16_decode(b[i].d);
        for (int j = 0; j < 16; j++) {
            float d = D * b[i].scales[j];
            if (d == 0)
                continue;
            for (int l = 0; l < 16; l++)
                L[16 * j + l] = (int8_t)(clampi(nearest_int(src[16 * j + l] / d), -32, 31) + 32);
        }
        uint8_t *ql = b[i].ql, *qh = b[i].qh;
        for (int j = 0; j < QK_K; j += 128, ql += 64, qh += 32) {
            for (int l = 0; l < 32; l++) {
                const int8_t *g = L + j + l;
                ql[l] = (uint8_t)((g[0] & 0xF) | ((g[64] & 0xF) << 4));
                ql[l + 32] = (uint8_t)((g[32] & 0xF) | ((g[96] & 0xF) << 4));
                qh[l] = (uint8_t)((g[0] >> 4) | ((g[32] >> 4) << 2) | ((g[64] >> 4) << 4) | ((g[96] >> 4) << 6));
            }
        }
    }
}

/* The 4 values of byte position l in a 128-value group, minus 32. */
static inline void q6_get4(const uint8_t *ql, const uint8_t *qh, int l, int q[4])
{
    q[0] = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
    q[1] = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
    q[2] = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
    q[3] = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
}

void dequant_q6_K_ref(const void *src, float *y, int64_t n)
{
    const block_q6_K *b = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        float d = fp16_decode(b[i].d);
        const uint8_t *ql = b[i].ql, *qh = b[i].qh;
        const int8_t *sc = b[i].scales;
        for (int h = 0; h < QK_K; h += 128, ql += 64, qh += 32, sc += 8, y += 128) {
            for (int l = 0; l < 32; l++) {
                int q[4], is = l / 16;
                q6_get4(ql, qh, l, q);
                for (int k = 0; k < 4; k++)
                    y[l + 32 * k] = d * (float)sc[is + 2 * k] * (float)q[k];
            }
        }
    }
}

void vec_dot_q6_K_q8_K_ref(int n, float *s, const void *x, const void *y)
{
    const block_q6_K *a = x;
    const block_q8_K *b = y;
    float sum = 0;
    for (int i = 0; i < n / QK_K; i++) {
        const uint8_t *ql = a[i].ql, *qh = a[i].qh;
        const int8_t *sc = a[i].scales, *q8 = b[i].qs;
        int isum = 0;
        for (int h = 0; h < QK_K; h += 128, ql += 64, qh += 32, sc += 8, q8 += 128) {
            int sub[8] = {0};
            for (int l = 0; l < 32; l++) {
                int q[4];
                q6_get4(ql, qh, l, q);
                for (int k = 0; k < 4; k++)
                    sub[2 * k + l / 16] += q[k] * q8[l + 32 * k];
            }
            for (int k = 0; k < 8; k++)
                isum += sub[k] * sc[k];
        }
        sum += fp16_decode(a[i].d) * b[i].d * (float)isum;
    }
    *s = sum;
}

/* ---------------------------------------------------------------- Q8_K */

/* iscale = -127 / max so the extreme value maps to -127 (capped at 127);
 * d = 1 / iscale; bsums are the sums of each 16 q. */
void quant_q8_K_ref(const float *src, void *dst, int64_t n)
{
    block_q8_K *b = dst;
    for (int64_t i = 0; i < n / QK_K; i++, src += QK_K) {
        float amax = 0, max = 0;
        for (int j = 0; j < QK_K; j++) {
            if (fabsf(src[j]) > amax) {
                amax = fabsf(src[j]);
                max = src[j];
            }
        }
        if (amax == 0) {
            memset(&b[i], 0, sizeof b[i]);
            continue;
        }
        float is = -127.f / max;
        for (int j = 0; j < QK_K; j++)
            b[i].qs[j] = (int8_t)CAIRN_MIN(127, nearest_int(is * src[j]));
        for (int j = 0; j < QK_K / 16; j++) {
            int sum = 0;
            for (int l = 0; l < 16; l++)
                sum += b[i].qs[16 * j + l];
            b[i].bsums[j] = (int16_t)sum;
        }
        b[i].d = 1 / is;
    }
}

void dequant_q8_K_ref(const void *src, float *y, int64_t n)
{
    const block_q8_K *b = src;
    for (int64_t i = 0; i < n / QK_K; i++)
        for (int j = 0; j < QK_K; j++)
            *y++ = b[i].d * (float)b[i].qs[j];
}
