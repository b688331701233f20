/*
 * gguf_quantize.c — `cairn quantize`: plan an output type per tensor (see
 * quantize.h for the rules), convert rows to float, quantize them with the
 * kernels' reference quantizers on a few threads, and write the result with
 * the GGUF writer (KVs copied, general.file_type updated).
 *
 * Memory: converted tensors are produced one at a time while the writer
 * streams the file (gguf_writer_add_tensor_lazy), and the input pages of a
 * converted tensor are released once it is done, so the peak is about one
 * tensor plus one row of floats per thread, whatever the model's size.
 */
#include "gguf/quantize.h"
#include "kernels/quant.h"
#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

typedef struct mode_info {
    const char *name;
    uint32_t base;       /* default type of a quantized matrix */
    uint32_t file_type;  /* llama.cpp's general.file_type */
} mode_info;

static const mode_info modes[GGUF_QUANT_COUNT] = {
    [GGUF_QUANT_Q8_0] = {"Q8_0", QT_Q8_0, 7},       [GGUF_QUANT_Q4_0] = {"Q4_0", QT_Q4_0, 2},
    [GGUF_QUANT_Q4_K_M] = {"Q4_K_M", QT_Q4_K, 15},  [GGUF_QUANT_Q4_1] = {"Q4_1", QT_Q4_1, 3},
    [GGUF_QUANT_Q5_0] = {"Q5_0", QT_Q5_0, 8},       [GGUF_QUANT_Q5_1] = {"Q5_1", QT_Q5_1, 9},
    [GGUF_QUANT_Q4_K_S] = {"Q4_K_S", QT_Q4_K, 14},  [GGUF_QUANT_Q5_K_S] = {"Q5_K_S", QT_Q5_K, 16},
    [GGUF_QUANT_Q5_K_M] = {"Q5_K_M", QT_Q5_K, 17},  [GGUF_QUANT_Q6_K] = {"Q6_K", QT_Q6_K, 18},
    [GGUF_QUANT_F16] = {"F16", QT_F16, 1},          [GGUF_QUANT_BF16] = {"BF16", QT_BF16, 32},
};

bool gguf_quantize_mode_by_name(const char *name, gguf_quant_mode *mode)
{
    for (int m = 0; m < GGUF_QUANT_COUNT; m++)
        if (!strcasecmp(name, modes[m].name)) {
            *mode = (gguf_quant_mode)m;
            return true;
        }
    if (!strcasecmp(name, "Q4_K") || !strcasecmp(name, "Q5_K")) {   /* llama.cpp's aliases for the _M mixes */
        *mode = toupper((unsigned char)name[1]) == '4' ? GGUF_QUANT_Q4_K_M : GGUF_QUANT_Q5_K_M;
        return true;
    }
    return false;
}

const char *gguf_quantize_mode_name(gguf_quant_mode mode)
{
    return (unsigned)mode < GGUF_QUANT_COUNT ? modes[mode].name : "?";
}

uint32_t gguf_quantize_file_type(gguf_quant_mode mode)
{
    return (unsigned)mode < GGUF_QUANT_COUNT ? modes[mode].file_type : 0;
}

/* ---- the plan ---- */

static bool name_has(const gguf_tensor *t, const char *s)
{
    size_t n = strlen(s);
    if (t->name.len < n)
        return false;
    for (uint64_t i = 0; i + n <= t->name.len; i++)
        if (!memcmp(t->name.ptr + i, s, n))
            return true;
    return false;
}

static bool name_ends(const gguf_tensor *t, const char *s)
{
    size_t n = strlen(s);
    return t->name.len >= n && !memcmp(t->name.ptr + t->name.len - n, s, n);
}

/* Layer index from "blk.N.", or -1. */
static int layer_of(const gguf_tensor *t)
{
    if (t->name.len < 5 || memcmp(t->name.ptr, "blk.", 4))
        return -1;
    int v = 0;
    uint64_t i = 4;
    for (; i < t->name.len && t->name.ptr[i] >= '0' && t->name.ptr[i] <= '9' && v < 1000000; i++)
        v = v * 10 + (t->name.ptr[i] - '0');
    return i > 4 && i < t->name.len && t->name.ptr[i] == '.' ? v : -1;
}

static bool is_float_type(uint32_t type) { return type == QT_F32 || type == QT_F16 || type == QT_BF16; }

static bool can_dequantize(uint32_t type)
{
    const qtype_traits *qt = qtype_get(type);
    return qt && qt->to_float;
}

static bool quantizable(const gguf_tensor *t, bool requantize)
{
    bool src_ok = is_float_type(t->type) || (requantize && can_dequantize(t->type));
    return t->n_dims >= 2 && name_ends(t, "weight") && src_ok && !name_has(t, "_norm") &&
           !name_has(t, "ffn_gate_inp") && !name_has(t, "position_embd") && !name_has(t, "pos_embd") &&
           !name_has(t, "token_types");
}

/* llama.cpp's choice of layers that get more bits: the first and last eighth
 * and every third layer in between. */
static bool use_more_bits(int i, int n)
{
    return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

static uint32_t fallback(uint32_t type, int64_t ne0)
{
    if (type == QT_F32 || type == QT_F16 || type == QT_BF16)
        return type;
    if (ne0 % (int64_t)gguf_ttype(type)->block_size == 0)
        return type;
    switch (type) {
    case QT_Q4_K: type = QT_Q5_0; break;
    case QT_Q5_K: type = QT_Q5_1; break;
    case QT_Q6_K: type = QT_Q8_0; break;
    case QT_Q2_K: case QT_Q3_K: type = QT_Q4_0; break;
    default: break;
    }
    return ne0 % (int64_t)gguf_ttype(type)->block_size == 0 ? type : QT_F16;
}

static int64_t arch_u32(const gguf_file *g, const char *suffix, int64_t dflt)
{
    gguf_str arch;
    if (gguf_get_str(g, "general.architecture", &arch) != CAIRN_OK || arch.len > 64)
        return dflt;
    char key[160];
    snprintf(key, sizeof key, "%.*s.%s", (int)arch.len, arch.ptr, suffix);
    uint32_t v;
    return gguf_get_u32(g, key, &v) == CAIRN_OK ? (int64_t)v : dflt;
}

cairn_status gguf_quantize_plan(const gguf_file *g, const gguf_quantize_params *p, uint32_t *types)
{
    if ((unsigned)p->mode >= GGUF_QUANT_COUNT)
        return cairn_fail(CAIRN_ERR_INVALID, "quantize: unknown mode %d", (int)p->mode);
    if ((p->set_output_type && !gguf_ttype(p->output_type)) || (p->set_embd_type && !gguf_ttype(p->embd_type)))
        return cairn_fail(CAIRN_ERR_INVALID, "quantize: unknown override type");
    gguf_quant_mode mode = p->mode;
    uint32_t base = modes[mode].base;
    bool mix = !p->pure && base != QT_F16 && base != QT_BF16;
    bool has_output = gguf_tensor_find(g, "output.weight") != NULL;
    int64_t n_expert = arch_u32(g, "expert_count", 0);
    int max_layer = -1, n_attn_v = 0, i_attn_v = 0;
    for (uint64_t i = 0; i < gguf_tensor_count(g); i++) {
        const gguf_tensor *t = gguf_tensor_at(g, i);
        max_layer = CAIRN_MAX(max_layer, layer_of(t));
        n_attn_v += name_has(t, "attn_v.weight");
    }
    int n_layer = (int)arch_u32(g, "block_count", max_layer + 1);
    for (uint64_t i = 0; i < gguf_tensor_count(g); i++) {
        const gguf_tensor *t = gguf_tensor_at(g, i);
        if (!quantizable(t, p->requantize)) {
            types[i] = t->type;
            continue;
        }
        uint32_t nt = base;
        bool is_output = gguf_str_eq(t->name, "output.weight") ||
                         (!has_output && gguf_str_eq(t->name, "token_embd.weight"));
        int il = layer_of(t);
        if (!mix) {
            /* every matrix gets the base type */
        } else if (is_output) {
            if (t->ne[0] % 256)
                nt = QT_Q8_0;
            else if (base != QT_Q8_0)
                nt = QT_Q6_K;
        } else if (name_has(t, "attn_v.weight")) {
            if ((mode == GGUF_QUANT_Q4_K_M || mode == GGUF_QUANT_Q5_K_M) && use_more_bits(i_attn_v, n_attn_v))
                nt = QT_Q6_K;
            else if (mode == GGUF_QUANT_Q4_K_S && i_attn_v < 4)
                nt = QT_Q5_K;
            if (n_expert == 8)
                nt = QT_Q8_0;
            i_attn_v++;
        } else if (name_has(t, "attn_k.weight")) {
            if (n_expert == 8)
                nt = QT_Q8_0;
        } else if (name_has(t, "ffn_down")) {
            if ((mode == GGUF_QUANT_Q4_K_M || mode == GGUF_QUANT_Q5_K_M) && il >= 0 && use_more_bits(il, n_layer))
                nt = QT_Q6_K;
            else if (mode == GGUF_QUANT_Q4_K_S && il >= 0 && il < n_layer / 8)
                nt = QT_Q5_K;
        } else if (name_has(t, "attn_output.weight")) {
            if (n_expert == 8 && (mode == GGUF_QUANT_Q4_K_M || mode == GGUF_QUANT_Q4_K_S))
                nt = QT_Q5_K;
        } else if (name_has(t, "attn_qkv.weight")) {
            if (mode == GGUF_QUANT_Q4_K_M)
                nt = QT_Q5_K;
            else if (mode == GGUF_QUANT_Q5_K_M)
                nt = QT_Q6_K;
        }
        if (p->set_embd_type && gguf_str_eq(t->name, "token_embd.weight"))
            nt = p->embd_type;
        if (p->set_output_type && is_output)
            nt = p->output_type;
        types[i] = fallback(nt, t->ne[0]);
    }
    return CAIRN_OK;
}

/* ---- conversion ---- */

typedef struct qjob {
    const gguf_tensor *t;
    uint32_t dst_type;
    const qtype_traits *qt;    /* NULL when the destination is F32, F16 or BF16 */
    uint8_t *dst;
    size_t src_row, dst_row;
    int64_t nrows;
    atomic_llong next;         /* next row to claim */
    atomic_int failed;
    atomic_llong bad_row;      /* a row with NaN/Inf input, or -1 */
} qjob;

#define ROWS_PER_CLAIM 16

static void row_to_f32(uint32_t type, const uint8_t *src, float *out, int64_t n)
{
    if (type == QT_F32) {
        memcpy(out, src, (size_t)n * sizeof(float));
    } else if (type == QT_F16) {
        for (int64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            out[i] = fp16_to_fp32(h);
        }
    } else if (type == QT_BF16) {
        for (int64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            out[i] = bf16_to_fp32(h);
        }
    } else {
        qtype_get(type)->to_float(src, out, n);   /* requantize: checked by quantizable() */
    }
}

static void *qjob_run(void *arg)
{
    qjob *j = arg;
    int64_t ne0 = j->t->ne[0];
    float *buf = cairn_malloc((size_t)ne0 * sizeof(float));
    if (!buf) {
        atomic_store(&j->failed, 1);
        return NULL;
    }
    for (;;) {
        int64_t r0 = atomic_fetch_add(&j->next, ROWS_PER_CLAIM);
        if (r0 >= j->nrows)
            break;
        int64_t r1 = CAIRN_MIN(r0 + ROWS_PER_CLAIM, j->nrows);
        for (int64_t r = r0; r < r1; r++) {
            const uint8_t *src = (const uint8_t *)j->t->data + (size_t)r * j->src_row;
            uint8_t *dst = j->dst + (size_t)r * j->dst_row;
            row_to_f32(j->t->type, src, buf, ne0);
            float acc = 0.0f;   /* NaN/Inf anywhere makes acc * 0 non-zero-or-NaN */
            for (int64_t i = 0; i < ne0; i++)
                acc += buf[i] * 0.0f;
            if (acc != 0.0f)
                atomic_store(&j->bad_row, r);
            if (j->dst_type == QT_F32) {
                memcpy(dst, buf, (size_t)ne0 * sizeof(float));
            } else if (j->dst_type == QT_F16 || j->dst_type == QT_BF16) {
                bool f16 = j->dst_type == QT_F16;
                for (int64_t i = 0; i < ne0; i++) {
                    uint16_t h = f16 ? fp32_to_fp16(buf[i]) : fp32_to_bf16(buf[i]);
                    memcpy(dst + 2 * i, &h, 2);
                }
            } else {
                j->qt->from_float(buf, dst, ne0);
            }
        }
    }
    cairn_free(buf);
    return NULL;
}

static const qtype_traits *quantizer(uint32_t dst_type)
{
    if (dst_type == QT_F32 || dst_type == QT_F16 || dst_type == QT_BF16)
        return NULL;
    const qtype_traits *qt = qtype_get(dst_type);
    return qt && qt->from_float ? qt : NULL;
}

/* One tensor to convert, filled lazily by the writer (one tensor in memory at a time). */
typedef struct qfill {
    const gguf_file *g;
    const gguf_tensor *t;
    uint32_t dst_type;
    int n_threads;
} qfill;

static cairn_status qfill_run(void *ctx, void *out, size_t nbytes)
{
    const qfill *q = ctx;
    const gguf_tensor *t = q->t;
    int64_t nel = gguf_tensor_nelements(t);
    qjob j = {0};
    j.t = t;
    j.dst_type = q->dst_type;
    j.qt = quantizer(q->dst_type);
    j.dst = out;
    j.src_row = (size_t)gguf_ttype_nbytes(t->type, t->ne[0]);
    j.dst_row = (size_t)gguf_ttype_nbytes(q->dst_type, t->ne[0]);
    j.nrows = nel / t->ne[0];
    if (j.dst_row * (size_t)j.nrows != nbytes)
        return cairn_fail(CAIRN_ERR_INTERNAL, "quantize: size mismatch");
    atomic_init(&j.next, 0);
    atomic_init(&j.failed, 0);
    atomic_init(&j.bad_row, -1);
    int nth = (int)CAIRN_MIN((int64_t)q->n_threads, (j.nrows + ROWS_PER_CLAIM - 1) / ROWS_PER_CLAIM);
    pthread_t th[64];
    int started = 0;
    for (int i = 1; i < nth && i < 64; i++) {
        if (pthread_create(&th[started], NULL, qjob_run, &j) != 0)
            break;   /* fewer threads is fine */
        started++;
    }
    qjob_run(&j);
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    gguf_tensor_release(q->g, t);   /* done with the input pages */
    if (atomic_load(&j.failed))
        return cairn_fail(CAIRN_ERR_NOMEM, "quantize: out of memory converting '%.*s'",
                          (int)CAIRN_MIN(t->name.len, 100), t->name.ptr);
    long long bad_row = atomic_load(&j.bad_row);
    if (bad_row >= 0)
        return cairn_fail(CAIRN_ERR_CORRUPT, "quantize: tensor '%.*s' has NaN/Inf values (row %lld)",
                          (int)CAIRN_MIN(t->name.len, 100), t->name.ptr, bad_row);
    /* Validate the result, as llama-quantize does. */
    gguf_tensor qt = *t;
    qt.type = q->dst_type;
    qt.nbytes = nbytes;
    qt.data = out;
    uint64_t at;
    if (gguf_tensor_check(&qt, &at) != CAIRN_OK)
        return cairn_fail_wrap(CAIRN_ERR_CORRUPT, "quantize: the input has NaN/Inf values");
    return CAIRN_OK;
}

cairn_status gguf_quantize_file(const char *in, const char *out, const gguf_quantize_params *p,
                                gguf_quantize_stats *stats)
{
    memset(stats, 0, sizeof *stats);
    int64_t t0 = cairn_mono_ns();
    int n_threads = p->n_threads > 0 ? CAIRN_MIN(p->n_threads, 64) : 2;
    gguf_file *g = NULL;
    gguf_writer *w = NULL;
    uint32_t *types = NULL;
    qfill *fills = NULL;
    cairn_status st = gguf_open(in, &g);
    if (st != CAIRN_OK)
        return st;
    stats->in_file_size = gguf_file_size(g);
    types = cairn_calloc(gguf_tensor_count(g) ? (size_t)gguf_tensor_count(g) : 1, sizeof *types);
    fills = cairn_calloc(gguf_tensor_count(g) ? (size_t)gguf_tensor_count(g) : 1, sizeof *fills);
    if (!types || !fills) {
        st = cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((st = gguf_quantize_plan(g, p, types)) != CAIRN_OK)
        goto done;
    /* Every quantizer must exist before anything is written. */
    for (uint64_t i = 0; i < gguf_tensor_count(g); i++) {
        uint32_t ty = types[i];
        if (ty != gguf_tensor_at(g, i)->type && ty != QT_F32 && ty != QT_F16 && ty != QT_BF16 && !quantizer(ty)) {
            st = cairn_fail(CAIRN_ERR_UNSUPPORTED, "quantize: no quantizer for %s", gguf_ttype(ty)->name);
            goto done;
        }
    }
    if ((st = gguf_writer_new(&w)) != CAIRN_OK || (st = gguf_writer_copy_kvs(w, g)) != CAIRN_OK ||
        (st = gguf_writer_set_u32(w, "general.quantization_version", 2)) != CAIRN_OK ||
        (st = gguf_writer_set_u32(w, "general.file_type", gguf_quantize_file_type(p->mode))) != CAIRN_OK)
        goto done;
    for (uint64_t i = 0; i < gguf_tensor_count(g); i++) {
        const gguf_tensor *t = gguf_tensor_at(g, i);
        char name[GGUF_MAX_NAME + 2];
        if (t->name.len > GGUF_MAX_NAME) {
            st = cairn_fail(CAIRN_ERR_UNSUPPORTED, "%s: tensor name of %llu bytes is too long", in,
                            (unsigned long long)t->name.len);
            goto done;
        }
        memcpy(name, t->name.ptr, (size_t)t->name.len);
        name[t->name.len] = 0;
        uint32_t ty = types[i];
        if (ty == t->type) {
            st = gguf_writer_add_tensor_borrow(w, name, t->type, t->n_dims, t->ne, t->data, (size_t)t->nbytes);
            stats->n_kept++;
        } else {
            fills[i] = (qfill){g, t, ty, n_threads};
            st = gguf_writer_add_tensor_lazy(w, name, ty, t->n_dims, t->ne,
                                             (size_t)gguf_ttype_nbytes(ty, gguf_tensor_nelements(t)), qfill_run,
                                             &fills[i]);
            stats->n_quantized++;
        }
        if (st != CAIRN_OK)
            goto done;
        if (ty < GGUF_QUANTIZE_NTYPES) {
            stats->type_count[ty]++;
            stats->type_bytes[ty] += gguf_ttype_nbytes(ty, gguf_tensor_nelements(t));
        }
    }
    if ((st = gguf_writer_write(w, out)) != CAIRN_OK)
        goto done;
    struct stat sb;
    if (stat(out, &sb) == 0)
        stats->out_file_size = (uint64_t)sb.st_size;
done:
    gguf_writer_free(w);
    gguf_close(g);
    cairn_free(types);
    cairn_free(fills);
    stats->seconds = (double)(cairn_mono_ns() - t0) / 1e9;
    return st;
}
