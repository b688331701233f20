/* cmd_model.c — `cairn model info FILE` and `cairn quantize IN OUT TYPE`. */
#include "cli/commands.h"
#include "cli/cli_util.h"
#include "gguf/gguf.h"
#include "gguf/quantize.h"
#include "gguf/testmodel.h"
#include "kernels/quant.h"
#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- formatting helpers ---- */

static const char *ftype_name(uint32_t ft)
{
    static const char *const names[] = {
        [0] = "ALL_F32", [1] = "MOSTLY_F16", [2] = "MOSTLY_Q4_0", [3] = "MOSTLY_Q4_1", [7] = "MOSTLY_Q8_0",
        [8] = "MOSTLY_Q5_0", [9] = "MOSTLY_Q5_1", [10] = "MOSTLY_Q2_K", [11] = "MOSTLY_Q3_K_S",
        [12] = "MOSTLY_Q3_K_M", [13] = "MOSTLY_Q3_K_L", [14] = "MOSTLY_Q4_K_S", [15] = "MOSTLY_Q4_K_M",
        [16] = "MOSTLY_Q5_K_S", [17] = "MOSTLY_Q5_K_M", [18] = "MOSTLY_Q6_K", [19] = "MOSTLY_IQ2_XXS",
        [20] = "MOSTLY_IQ2_XS", [21] = "MOSTLY_Q2_K_S", [22] = "MOSTLY_IQ3_XS", [23] = "MOSTLY_IQ3_XXS",
        [24] = "MOSTLY_IQ1_S", [25] = "MOSTLY_IQ4_NL", [26] = "MOSTLY_IQ3_S", [27] = "MOSTLY_IQ3_M",
        [28] = "MOSTLY_IQ2_S", [29] = "MOSTLY_IQ2_M", [30] = "MOSTLY_IQ4_XS", [31] = "MOSTLY_IQ1_M",
        [32] = "MOSTLY_BF16", [36] = "MOSTLY_TQ1_0", [37] = "MOSTLY_TQ2_0",
    };
    return ft < CAIRN_ARRAY_LEN(names) && names[ft] ? names[ft] : "unknown";
}

/* Print s with control characters escaped, at most max bytes. */
static void put_escaped(FILE *f, gguf_str s, size_t max)
{
    size_t n = s.len < max ? (size_t)s.len : max;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c == '\n')
            fputs("\\n", f);
        else if (c == '\t')
            fputs("\\t", f);
        else if (c < 0x20 || c == 0x7f)
            fprintf(f, "\\x%02x", c);
        else
            fputc(c, f);
    }
    if (n < s.len)
        fprintf(f, "... (%llu bytes)", (unsigned long long)s.len);
}

static void print_scalar(FILE *f, const gguf_kv *kv)
{
    switch (kv->type) {
    case GGUF_TYPE_UINT8: case GGUF_TYPE_UINT16: case GGUF_TYPE_UINT32: case GGUF_TYPE_UINT64:
        fprintf(f, "%llu", (unsigned long long)kv->v.u64);
        break;
    case GGUF_TYPE_INT8: case GGUF_TYPE_INT16: case GGUF_TYPE_INT32: case GGUF_TYPE_INT64:
        fprintf(f, "%lld", (long long)kv->v.i64);
        break;
    case GGUF_TYPE_FLOAT32: case GGUF_TYPE_FLOAT64:
        fprintf(f, "%g", kv->v.f64);
        break;
    case GGUF_TYPE_BOOL:
        fputs(kv->v.b ? "true" : "false", f);
        break;
    case GGUF_TYPE_STRING:
        fputc('"', f);
        put_escaped(f, kv->v.str, 200);
        fputc('"', f);
        break;
    default:
        break;
    }
}

/* Arrays of up to 8 elements are shown in full, longer ones summarized. */
static void print_value(FILE *f, const gguf_kv *kv)
{
    if (kv->type != GGUF_TYPE_ARRAY) {
        print_scalar(f, kv);
        return;
    }
    uint64_t n = kv->v.arr.count;
    if (n > 8) {
        fprintf(f, "[%s x %llu]", gguf_type_name(kv->v.arr.type), (unsigned long long)n);
        return;
    }
    fputc('[', f);
    for (uint64_t i = 0; i < n; i++) {
        if (i)
            fputs(", ", f);
        if (kv->v.arr.type == GGUF_TYPE_STRING) {
            fputc('"', f);
            put_escaped(f, gguf_arr_str(kv, i), 60);
            fputc('"', f);
            continue;
        }
        int64_t iv;
        double dv;
        if (kv->v.arr.type != GGUF_TYPE_FLOAT32 && kv->v.arr.type != GGUF_TYPE_FLOAT64 && gguf_arr_i64(kv, i, &iv))
            fprintf(f, "%lld", (long long)iv);
        else if (gguf_arr_f64(kv, i, &dv))
            fprintf(f, "%g", dv);
    }
    fputc(']', f);
}

/* A float32 widened to double prints as 9.99999974737875e-06; print the
 * shortest decimal that reads back as the same float instead. */
static double f32_pretty(double v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%.9g", v);
    for (int p = 1; p <= 9; p++) {
        snprintf(buf, sizeof buf, "%.*g", p, v);
        if ((float)strtod(buf, NULL) == (float)v)
            break;
    }
    return strtod(buf, NULL);
}

static cJSON *json_scalar(const gguf_kv *kv)
{
    switch (kv->type) {
    case GGUF_TYPE_UINT8: case GGUF_TYPE_UINT16: case GGUF_TYPE_UINT32: case GGUF_TYPE_UINT64:
        return cJSON_CreateNumber((double)kv->v.u64);
    case GGUF_TYPE_INT8: case GGUF_TYPE_INT16: case GGUF_TYPE_INT32: case GGUF_TYPE_INT64:
        return cJSON_CreateNumber((double)kv->v.i64);
    case GGUF_TYPE_FLOAT32:
        return cJSON_CreateNumber(f32_pretty(kv->v.f64));
    case GGUF_TYPE_FLOAT64:
        return cJSON_CreateNumber(kv->v.f64);
    case GGUF_TYPE_BOOL:
        return cJSON_CreateBool(kv->v.b);
    case GGUF_TYPE_STRING: {
        char *s = cairn_strndup(kv->v.str.ptr, (size_t)kv->v.str.len);
        cJSON *j = cJSON_CreateString(s ? s : "");
        cairn_free(s);
        return j;
    }
    default:
        return cJSON_CreateNull();
    }
}

/* Arrays: up to 64 elements in full, longer ones as {"type", "count"}. */
static cJSON *json_value(const gguf_kv *kv)
{
    if (kv->type != GGUF_TYPE_ARRAY)
        return json_scalar(kv);
    uint64_t n = kv->v.arr.count;
    if (n > 64) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "array_of", gguf_type_name(kv->v.arr.type));
        cJSON_AddNumberToObject(o, "count", (double)n);
        return o;
    }
    cJSON *a = cJSON_CreateArray();
    for (uint64_t i = 0; i < n; i++) {
        if (kv->v.arr.type == GGUF_TYPE_STRING) {
            gguf_str s = gguf_arr_str(kv, i);
            char *c = cairn_strndup(s.ptr ? s.ptr : "", (size_t)s.len);
            cJSON_AddItemToArray(a, cJSON_CreateString(c ? c : ""));
            cairn_free(c);
        } else {
            double dv = 0;
            gguf_arr_f64(kv, i, &dv);
            cJSON_AddItemToArray(a, cJSON_CreateNumber(kv->v.arr.type == GGUF_TYPE_FLOAT32 ? f32_pretty(dv) : dv));
        }
    }
    return a;
}

static char *key_dup(const gguf_kv *kv) { return cairn_strndup(kv->key.ptr, (size_t)kv->key.len); }

static bool key_has_prefix(const gguf_kv *kv, const char *prefix, size_t plen)
{
    return kv->key.len > plen && memcmp(kv->key.ptr, prefix, plen) == 0;
}

static void fmt_bytes(char *buf, size_t n, uint64_t b)
{
    if (b >= (1ull << 30))
        snprintf(buf, n, "%.2f GiB", (double)b / (1ull << 30));
    else if (b >= (1ull << 20))
        snprintf(buf, n, "%.2f MiB", (double)b / (1ull << 20));
    else if (b >= 1024)
        snprintf(buf, n, "%.1f KiB", (double)b / 1024);
    else
        snprintf(buf, n, "%llu B", (unsigned long long)b);
}

static void fmt_shape(char *buf, size_t n, const gguf_tensor *t)
{
    size_t o = (size_t)snprintf(buf, n, "[");
    for (uint32_t d = 0; d < t->n_dims && o < n; d++)
        o += (size_t)snprintf(buf + o, n - o, "%s%lld", d ? ", " : "", (long long)t->ne[d]);
    if (o < n)
        snprintf(buf + o, n - o, "]");
}

/* ---- model info ---- */

typedef struct type_stat { uint64_t count, bytes, params; } type_stat;
#define N_TTYPES 64

static const char *tok_ids[] = {"bos", "eos", "unknown", "padding", "seperator", "mask", "eot", "eom"};

static int info_text(const gguf_file *g, bool tensors)
{
    char b1[64];
    const gguf_kv *kv;
    gguf_str arch = {"", 0};
    gguf_get_str(g, "general.architecture", &arch);
    fmt_bytes(b1, sizeof b1, gguf_file_size(g));
    printf("file          %s (%zu bytes, %s)\n", gguf_path(g), gguf_file_size(g), b1);
    printf("format        GGUF v%u, %llu KVs, %llu tensors, alignment %u, data at byte %llu\n", gguf_version(g),
           (unsigned long long)gguf_kv_count(g), (unsigned long long)gguf_tensor_count(g), gguf_alignment(g),
           (unsigned long long)gguf_data_offset(g));
    printf("architecture  ");
    put_escaped(stdout, arch, 100);
    printf("\n");
    if ((kv = gguf_kv_find(g, "general.name"))) {
        printf("name          ");
        print_value(stdout, kv);
        printf("\n");
    }
    uint32_t ft;
    if (gguf_get_u32(g, "general.file_type", &ft) == CAIRN_OK)
        printf("file type     %s (%u)\n", ftype_name(ft), ft);

    /* Hyper-parameters: every <arch>.* key. */
    char prefix[128];
    int plen = snprintf(prefix, sizeof prefix, "%.*s.", (int)CAIRN_MIN(arch.len, 100), arch.ptr);
    printf("\nhyper-parameters\n");
    for (uint64_t i = 0; i < gguf_kv_count(g); i++) {
        kv = gguf_kv_at(g, i);
        if (arch.len == 0 || !key_has_prefix(kv, prefix, (size_t)plen))
            continue;
        printf("  %-40.*s ", (int)(kv->key.len - (uint64_t)plen), kv->key.ptr + plen);
        print_value(stdout, kv);
        printf("\n");
    }

    /* Tokenizer. */
    printf("\ntokenizer\n");
    gguf_str s;
    if (gguf_get_str(g, "tokenizer.ggml.model", &s) == CAIRN_OK) {
        printf("  model        ");
        put_escaped(stdout, s, 100);
        printf("\n");
    }
    if (gguf_get_str(g, "tokenizer.ggml.pre", &s) == CAIRN_OK) {
        printf("  pre          ");
        put_escaped(stdout, s, 100);
        printf("\n");
    }
    const gguf_kv *toks = NULL;
    if (gguf_get_arr(g, "tokenizer.ggml.tokens", GGUF_TYPE_STRING, &toks) == CAIRN_OK)
        printf("  vocab size   %llu\n", (unsigned long long)toks->v.arr.count);
    if ((kv = gguf_kv_find(g, "tokenizer.ggml.merges")) && kv->type == GGUF_TYPE_ARRAY)
        printf("  merges       %llu\n", (unsigned long long)kv->v.arr.count);
    for (size_t i = 0; i < CAIRN_ARRAY_LEN(tok_ids); i++) {
        char key[96];
        snprintf(key, sizeof key, "tokenizer.ggml.%s_token_id", tok_ids[i]);
        int64_t id;
        if (gguf_get_i64(g, key, &id) != CAIRN_OK)
            continue;
        printf("  %-12s %lld", tok_ids[i], (long long)id);
        gguf_str t = gguf_arr_str(toks, (uint64_t)id);
        if (t.ptr) {
            printf("  \"");
            put_escaped(stdout, t, 40);
            printf("\"");
        } else if (toks) {
            printf("  (none: not a token id)");
        }
        printf("\n");
    }
    for (uint64_t i = 0; i < gguf_kv_count(g); i++) {
        kv = gguf_kv_at(g, i);
        if (!key_has_prefix(kv, "tokenizer.", 10) || gguf_str_eq(kv->key, "tokenizer.ggml.tokens") ||
            gguf_str_eq(kv->key, "tokenizer.ggml.merges"))
            continue;
        if (key_has_prefix(kv, "tokenizer.ggml.", 15) && (gguf_str_eq(kv->key, "tokenizer.ggml.model") ||
            gguf_str_eq(kv->key, "tokenizer.ggml.pre") || (kv->key.len > 9 &&
            !memcmp(kv->key.ptr + kv->key.len - 9, "_token_id", 9))))
            continue;
        printf("  %-40.*s ", (int)(kv->key.len - 10), kv->key.ptr + 10);
        print_value(stdout, kv);
        printf("\n");
    }

    /* Other metadata. */
    printf("\nother metadata\n");
    int n_other = 0;
    for (uint64_t i = 0; i < gguf_kv_count(g); i++) {
        kv = gguf_kv_at(g, i);
        if ((arch.len && key_has_prefix(kv, prefix, (size_t)plen)) || key_has_prefix(kv, "tokenizer.", 10) ||
            gguf_str_eq(kv->key, "general.architecture") || gguf_str_eq(kv->key, "general.name") ||
            gguf_str_eq(kv->key, "general.file_type"))
            continue;
        printf("  %-42.*s ", (int)CAIRN_MIN(kv->key.len, 200), kv->key.ptr);
        print_value(stdout, kv);
        printf("\n");
        n_other++;
    }
    if (!n_other)
        printf("  (none)\n");

    /* Tensors by type. */
    type_stat st[N_TTYPES] = {{0}};
    uint64_t params = 0, bytes = 0;
    for (uint64_t i = 0; i < gguf_tensor_count(g); i++) {
        const gguf_tensor *t = gguf_tensor_at(g, i);
        type_stat *x = &st[t->type < N_TTYPES ? t->type : 0];
        x->count++;
        x->bytes += t->nbytes;
        x->params += (uint64_t)gguf_tensor_nelements(t);
        params += (uint64_t)gguf_tensor_nelements(t);
        bytes += t->nbytes;
    }
    printf("\ntensors       %llu, %llu parameters (%.3f M), %llu bytes of data\n",
           (unsigned long long)gguf_tensor_count(g), (unsigned long long)params, (double)params / 1e6,
           (unsigned long long)bytes);
    if (gguf_tensor_count(g)) {
        printf("  %-8s %6s %14s %12s %14s %8s\n", "type", "count", "params", "bytes", "size", "bits/w");
        for (int ty = 0; ty < N_TTYPES; ty++) {
            if (!st[ty].count)
                continue;
            fmt_bytes(b1, sizeof b1, st[ty].bytes);
            printf("  %-8s %6llu %14llu %12llu %14s %8.2f\n", gguf_ttype(ty)->name,
                   (unsigned long long)st[ty].count, (unsigned long long)st[ty].params,
                   (unsigned long long)st[ty].bytes, b1, 8.0 * (double)st[ty].bytes / (double)st[ty].params);
        }
        fmt_bytes(b1, sizeof b1, bytes);
        printf("  %-8s %6llu %14llu %12llu %14s %8.2f\n", "total", (unsigned long long)gguf_tensor_count(g),
               (unsigned long long)params, (unsigned long long)bytes, b1,
               params ? 8.0 * (double)bytes / (double)params : 0.0);
    }
    if (tensors && gguf_tensor_count(g)) {
        printf("\n  %-5s %-40s %-8s %-24s %12s %12s\n", "#", "name", "type", "shape", "bytes", "offset");
        for (uint64_t i = 0; i < gguf_tensor_count(g); i++) {
            const gguf_tensor *t = gguf_tensor_at(g, i);
            char shape[128];
            fmt_shape(shape, sizeof shape, t);
            printf("  %-5llu %-40.*s %-8s %-24s %12llu %12llu\n", (unsigned long long)i,
                   (int)CAIRN_MIN(t->name.len, 200), t->name.ptr, gguf_ttype(t->type)->name, shape,
                   (unsigned long long)t->nbytes, (unsigned long long)t->offset);
        }
    }
    return 0;
}

static void *json_malloc(size_t n) { return cairn_malloc(n); }

static int info_json(const gguf_file *g, bool tensors)
{
    cJSON_Hooks hooks = {json_malloc, cairn_free};
    cJSON_InitHooks(&hooks);
    cJSON *o = cJSON_CreateObject();
    gguf_str arch = {"", 0};
    gguf_get_str(g, "general.architecture", &arch);
    char archs[128];
    snprintf(archs, sizeof archs, "%.*s", (int)CAIRN_MIN(arch.len, 100), arch.ptr);
    cJSON_AddStringToObject(o, "path", gguf_path(g));
    cJSON_AddNumberToObject(o, "file_size", (double)gguf_file_size(g));
    cJSON_AddNumberToObject(o, "version", gguf_version(g));
    cJSON_AddNumberToObject(o, "alignment", gguf_alignment(g));
    cJSON_AddNumberToObject(o, "data_offset", (double)gguf_data_offset(g));
    cJSON_AddNumberToObject(o, "kv_count", (double)gguf_kv_count(g));
    cJSON_AddNumberToObject(o, "tensor_count", (double)gguf_tensor_count(g));
    cJSON_AddStringToObject(o, "architecture", archs);
    const gguf_kv *kv = gguf_kv_find(g, "general.name");
    if (kv && kv->type == GGUF_TYPE_STRING)
        cJSON_AddItemToObject(o, "name", json_scalar(kv));
    uint32_t ft;
    if (gguf_get_u32(g, "general.file_type", &ft) == CAIRN_OK)
        cJSON_AddStringToObject(o, "file_type", ftype_name(ft));

    char prefix[128];
    int plen = snprintf(prefix, sizeof prefix, "%s.", archs);
    cJSON *hp = cJSON_AddObjectToObject(o, "hparams");
    cJSON *md = cJSON_AddObjectToObject(o, "metadata");
    for (uint64_t i = 0; i < gguf_kv_count(g); i++) {
        kv = gguf_kv_at(g, i);
        char *k = key_dup(kv);
        if (!k)
            continue;
        if (archs[0] && key_has_prefix(kv, prefix, (size_t)plen))
            cJSON_AddItemToObject(hp, k + plen, json_value(kv));
        cJSON_AddItemToObject(md, k, json_value(kv));
        cairn_free(k);
    }
    cJSON *tok = cJSON_AddObjectToObject(o, "tokenizer");
    gguf_str s;
    char buf[256];
    if (gguf_get_str(g, "tokenizer.ggml.model", &s) == CAIRN_OK) {
        snprintf(buf, sizeof buf, "%.*s", (int)CAIRN_MIN(s.len, 200), s.ptr);
        cJSON_AddStringToObject(tok, "model", buf);
    }
    if (gguf_get_str(g, "tokenizer.ggml.pre", &s) == CAIRN_OK) {
        snprintf(buf, sizeof buf, "%.*s", (int)CAIRN_MIN(s.len, 200), s.ptr);
        cJSON_AddStringToObject(tok, "pre", buf);
    }
    const gguf_kv *toks = NULL;
    if (gguf_get_arr(g, "tokenizer.ggml.tokens", GGUF_TYPE_STRING, &toks) == CAIRN_OK)
        cJSON_AddNumberToObject(tok, "vocab_size", (double)toks->v.arr.count);
    for (size_t i = 0; i < CAIRN_ARRAY_LEN(tok_ids); i++) {
        char key[96], name[64];
        snprintf(key, sizeof key, "tokenizer.ggml.%s_token_id", tok_ids[i]);
        snprintf(name, sizeof name, "%s_token_id", tok_ids[i]);
        int64_t id;
        if (gguf_get_i64(g, key, &id) == CAIRN_OK)
            cJSON_AddNumberToObject(tok, name, (double)id);
    }

    type_stat st[N_TTYPES] = {{0}};
    uint64_t params = 0, bytes = 0;
    cJSON *tl = tensors ? cJSON_AddArrayToObject(o, "tensors") : NULL;
    for (uint64_t i = 0; i < gguf_tensor_count(g); i++) {
        const gguf_tensor *t = gguf_tensor_at(g, i);
        type_stat *x = &st[t->type < N_TTYPES ? t->type : 0];
        x->count++;
        x->bytes += t->nbytes;
        x->params += (uint64_t)gguf_tensor_nelements(t);
        params += (uint64_t)gguf_tensor_nelements(t);
        bytes += t->nbytes;
        if (tl) {
            cJSON *e = cJSON_CreateObject();
            char name[1100];
            snprintf(name, sizeof name, "%.*s", (int)CAIRN_MIN(t->name.len, 1024), t->name.ptr);
            cJSON_AddStringToObject(e, "name", name);
            cJSON_AddStringToObject(e, "type", gguf_ttype(t->type)->name);
            cJSON *sh = cJSON_AddArrayToObject(e, "shape");
            for (uint32_t d = 0; d < t->n_dims; d++)
                cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)t->ne[d]));
            cJSON_AddNumberToObject(e, "bytes", (double)t->nbytes);
            cJSON_AddNumberToObject(e, "offset", (double)t->offset);
            cJSON_AddItemToArray(tl, e);
        }
    }
    cJSON_AddNumberToObject(o, "params", (double)params);
    cJSON_AddNumberToObject(o, "tensor_bytes", (double)bytes);
    cJSON *types = cJSON_AddObjectToObject(o, "types");
    for (int ty = 0; ty < N_TTYPES; ty++) {
        if (!st[ty].count)
            continue;
        cJSON *e = cJSON_AddObjectToObject(types, gguf_ttype(ty)->name);
        cJSON_AddNumberToObject(e, "count", (double)st[ty].count);
        cJSON_AddNumberToObject(e, "params", (double)st[ty].params);
        cJSON_AddNumberToObject(e, "bytes", (double)st[ty].bytes);
    }
    char *out = cJSON_Print(o);
    if (out)
        printf("%s\n", out);
    cJSON_free(out);
    cJSON_Delete(o);
    return out ? 0 : 1;
}

static void model_usage(FILE *f)
{
    fprintf(f, "usage: cairn model info FILE [--json] [--tensors] [--check]\n"
               "       cairn model synth OUT.gguf [options]\n\n"
               "info: describe a GGUF model: architecture, hyper-parameters, tokenizer, tensor types and sizes.\n"
               "  --json      one JSON object (hparams, tokenizer, metadata, types, params)\n"
               "  --tensors   also list every tensor (name, type, shape, bytes, offset)\n"
               "  --check     scan all tensor data for NaN/Inf values and block scales (exit 1 if any)\n\n"
               "synth: write a random-weight llama/qwen2/MoE/encoder model (for tests and benchmarks):\n"
               "  --arch llama|qwen2|qwen2moe|olmoe|qwen3moe  --ff-expert N  --ff-shared N (qwen2moe)\n"
               "  --experts-norm 0|1 (qwen3moe: write expert_weights_norm)\n"
               "  --arch bert|nomic-bert (encoders)  --pooling 1|2|3|4 (mean, CLS, last, rank)\n"
               "  --cls-out N (reranker head with N outputs, pooling rank)\n"
               "  --vocab N  --embd N  --ff N  --layers N  --heads N  --kv-heads N\n"
               "  --ctx N  --rope-dim N  --rope-base F  --rope-scale F  --experts N  --experts-used N\n"
               "  --type T (F32 F16 BF16 Q8_0 Q4_0 Q4_K ...)  --embd-type T  --output-type T\n"
               "  --tied  --bias | --no-bias  --scale F  --seed N  --name S\n"
               "  defaults: llama, vocab 320, embd 64, 2 layers, 4 heads, ctx 256, F32; ff 2 x embd\n");
}

static bool parse_int(const char *s, long lo, long hi, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi)
        return false;
    *out = (int)v;
    return true;
}

static int cmd_model_synth(int argc, char **argv)
{
    gguf_testmodel_params p;
    gguf_testmodel_defaults(&p);
    const char *out = NULL;
    static const struct { const char *flag; size_t off; } ints[] = {
        {"--vocab", offsetof(gguf_testmodel_params, n_vocab)},
        {"--embd", offsetof(gguf_testmodel_params, n_embd)},
        {"--ff", offsetof(gguf_testmodel_params, n_ff)},
        {"--layers", offsetof(gguf_testmodel_params, n_layer)},
        {"--heads", offsetof(gguf_testmodel_params, n_head)},
        {"--kv-heads", offsetof(gguf_testmodel_params, n_head_kv)},
        {"--ctx", offsetof(gguf_testmodel_params, n_ctx)},
        {"--rope-dim", offsetof(gguf_testmodel_params, rope_dim)},
        {"--experts", offsetof(gguf_testmodel_params, n_expert)},
        {"--experts-used", offsetof(gguf_testmodel_params, n_expert_used)},
        {"--ff-expert", offsetof(gguf_testmodel_params, n_ff_expert)},
        {"--ff-shared", offsetof(gguf_testmodel_params, n_ff_shared)},
        {"--experts-norm", offsetof(gguf_testmodel_params, expert_weights_norm)},
        {"--pooling", offsetof(gguf_testmodel_params, pooling_type)},
        {"--cls-out", offsetof(gguf_testmodel_params, n_cls_out)},
    };
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool used = false;
        for (size_t k = 0; k < CAIRN_ARRAY_LEN(ints); k++) {
            if (strcmp(a, ints[k].flag))
                continue;
            if (!v || !parse_int(v, 0, 1 << 24, (int *)((char *)&p + ints[k].off))) {
                fprintf(stderr, "cairn model synth: %s needs a number\n", a);
                return 2;
            }
            used = true;
            i++;
        }
        if (used)
            continue;
        if (!strcmp(a, "--tied")) {
            p.tied_output = true;
        } else if (!strcmp(a, "--bias")) {
            p.qkv_bias = 1;
        } else if (!strcmp(a, "--no-bias")) {
            p.qkv_bias = 0;
        } else if (v && (!strcmp(a, "--arch") || !strcmp(a, "--name"))) {
            if (!strcmp(a, "--arch"))
                p.arch = v;
            else
                p.name = v;
            i++;
        } else if (v && (!strcmp(a, "--type") || !strcmp(a, "--embd-type") || !strcmp(a, "--output-type"))) {
            uint32_t t;
            if (!gguf_ttype_by_name(v, &t)) {
                fprintf(stderr, "cairn model synth: unknown tensor type '%s'\n", v);
                return 2;
            }
            if (!strcmp(a, "--type"))
                p.weight_type = t;
            else if (!strcmp(a, "--embd-type"))
                p.embd_type = (int)t;
            else
                p.output_type = (int)t;
            i++;
        } else if (v && (!strcmp(a, "--rope-base") || !strcmp(a, "--rope-scale") || !strcmp(a, "--scale"))) {
            char *end;
            float f = strtof(v, &end);
            if (*end || !(f > 0)) {
                fprintf(stderr, "cairn model synth: %s needs a positive number\n", a);
                return 2;
            }
            if (!strcmp(a, "--rope-base"))
                p.rope_freq_base = f;
            else if (!strcmp(a, "--rope-scale"))
                p.rope_scale_linear = f;
            else
                p.weight_scale = f;
            i++;
        } else if (v && !strcmp(a, "--seed")) {
            uint64_t seed = 0;
            if (!cli_parse_u64(v, &seed)) {
                fprintf(stderr, "cairn model synth: --seed needs an unsigned integer, not '%s'\n", v);
                return 2;
            }
            p.seed = seed;
            i++;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            model_usage(stdout);
            return 0;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "cairn model synth: unknown or incomplete option '%s'\n", a);
            return 2;
        } else if (!out) {
            out = a;
        } else {
            fprintf(stderr, "cairn model synth: one OUT file only\n");
            return 2;
        }
    }
    if (!out) {
        model_usage(stderr);
        return 2;
    }
    kernels_init();
    cairn_status st = gguf_testmodel_write(out, &p);
    if (st != CAIRN_OK) {
        fprintf(stderr, "cairn model synth: %s: %s\n", cairn_status_str(st), cairn_last_error());
        return st == CAIRN_ERR_INVALID ? 2 : 1;
    }
    gguf_file *g = NULL;
    if (gguf_open(out, &g) == CAIRN_OK) {
        char b[64];
        fmt_bytes(b, sizeof b, gguf_file_size(g));
        printf("wrote %s: %s, %llu tensors, %zu bytes (%s)\n", out, p.arch, (unsigned long long)gguf_tensor_count(g),
               gguf_file_size(g), b);
        gguf_close(g);
    }
    return 0;
}

int cmd_model(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        model_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "synth"))
        return cmd_model_synth(argc, argv);
    if (strcmp(argv[1], "info") != 0) {
        fprintf(stderr, "cairn model: unknown subcommand '%s'\n", argv[1]);
        model_usage(stderr);
        return 2;
    }
    const char *file = NULL;
    bool json = false, tensors = false, check = false;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = true;
        else if (!strcmp(argv[i], "--check"))
            check = true;
        else if (!strcmp(argv[i], "--tensors"))
            tensors = true;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            model_usage(stdout);
            return 0;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "cairn model info: unknown option '%s'\n", argv[i]);
            return 2;
        } else if (!file)
            file = argv[i];
        else {
            fprintf(stderr, "cairn model info: one FILE only\n");
            return 2;
        }
    }
    if (!file) {
        model_usage(stderr);
        return 2;
    }
    gguf_file *g = NULL;
    cairn_status st = gguf_open(file, &g);
    if (st != CAIRN_OK) {
        fprintf(stderr, "cairn model info: %s: %s\n", cairn_status_str(st), cairn_last_error());
        return 1;
    }
    int rc = json ? info_json(g, tensors) : info_text(g, tensors);
    if (rc == 0 && check) {
        /* Scan every tensor; report each bad one (on stderr with --json, to keep stdout one object). */
        FILE *out = json ? stderr : stdout;
        uint64_t n_bad = 0;
        int64_t t0 = cairn_mono_ns();
        for (uint64_t i = 0; i < gguf_tensor_count(g); i++) {
            uint64_t at;
            if (gguf_tensor_check(gguf_tensor_at(g, i), &at) != CAIRN_OK) {
                fprintf(out, "check: %s\n", cairn_last_error());
                n_bad++;
            }
        }
        fprintf(out, "%scheck: %llu of %llu tensors have non-finite values or scales (%.2f s)\n", json ? "" : "\n",
                (unsigned long long)n_bad, (unsigned long long)gguf_tensor_count(g),
                (double)(cairn_mono_ns() - t0) / 1e9);
        rc = n_bad ? 1 : 0;
    }
    gguf_close(g);
    return rc;
}

/* ---- quantize ---- */

static void quantize_usage(FILE *f)
{
    fprintf(f, "usage: cairn quantize IN.gguf OUT.gguf TYPE [--pure] [--output-type T] [--embd-type T]\n"
               "                     [--allow-requantize] [--dry-run] [-t THREADS] [--json]\n\n"
               "TYPE (from F32/F16/BF16 weights, mixes as llama.cpp; see docs/models.md):\n"
               "  Q8_0            Q8_0 for every matrix, the output matrix too\n"
               "  Q4_0 Q4_1 Q5_0 Q5_1 Q6_K   that type; the output matrix Q6_K\n"
               "  Q4_K_M Q5_K_M   Q4_K / Q5_K; attn_v and ffn_down Q6_K in selected layers\n"
               "  Q4_K_S Q5_K_S   Q4_K (a few Q5_K) / Q5_K\n"
               "  F16 BF16        plain conversion\n"
               "  --pure  every weight matrix gets TYPE (no mix)\n"
               "  --output-type T, --embd-type T   type of the output matrix / token_embd\n"
               "  --allow-requantize   also convert tensors that are already quantized\n"
               "  --dry-run   print the type each tensor would get and the projected size\n"
               "Norms, biases and the MoE router stay as they are; rows that are not whole blocks fall\n"
               "back (Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0), and rows not a multiple of 32 become F16.\n");
}

/* --dry-run: the plan per tensor and the projected size; nothing is written. */
static int quantize_dry_run(const char *in, const gguf_quantize_params *qp)
{
    gguf_file *g = NULL;
    cairn_status st = gguf_open(in, &g);
    if (st != CAIRN_OK) {
        fprintf(stderr, "cairn quantize: %s: %s\n", cairn_status_str(st), cairn_last_error());
        return 1;
    }
    uint64_t n = gguf_tensor_count(g);
    uint32_t *types = cairn_calloc(n ? (size_t)n : 1, sizeof *types);
    if (!types || (st = gguf_quantize_plan(g, qp, types)) != CAIRN_OK) {
        fprintf(stderr, "cairn quantize: %s\n", types ? cairn_last_error() : "out of memory");
        cairn_free(types);
        gguf_close(g);
        return 1;
    }
    uint64_t before = 0, after = 0;
    printf("  %-40s %-24s %-6s    %-6s %12s\n", "tensor", "shape", "from", "to", "bytes");
    for (uint64_t i = 0; i < n; i++) {
        const gguf_tensor *t = gguf_tensor_at(g, i);
        uint64_t nb = gguf_ttype_nbytes(types[i], gguf_tensor_nelements(t));
        char shape[128];
        fmt_shape(shape, sizeof shape, t);
        printf("  %-40.*s %-24s %-6s -> %-6s %12llu\n", (int)CAIRN_MIN(t->name.len, 200), t->name.ptr, shape,
               gguf_ttype(t->type)->name, gguf_ttype(types[i])->name, (unsigned long long)nb);
        before += t->nbytes;
        after += nb;
    }
    char a[64], b[64];
    fmt_bytes(a, sizeof a, before);
    fmt_bytes(b, sizeof b, after);
    printf("tensor data: %s -> %s (%llu -> %llu bytes), %.1f%% smaller (dry run: nothing written)\n", a, b,
           (unsigned long long)before, (unsigned long long)after,
           before ? 100.0 * (1.0 - (double)after / (double)before) : 0.0);
    cairn_free(types);
    gguf_close(g);
    return 0;
}

int cmd_quantize(int argc, char **argv)
{
    const char *pos[3] = {NULL, NULL, NULL};
    int npos = 0;
    gguf_quantize_params qp = {0};
    bool json = false, dry_run = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            quantize_usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--pure")) {
            qp.pure = true;
        } else if (!strcmp(argv[i], "--allow-requantize")) {
            qp.requantize = true;
        } else if (!strcmp(argv[i], "--dry-run")) {
            dry_run = true;
        } else if (!strcmp(argv[i], "--output-type") || !strcmp(argv[i], "--embd-type")) {
            uint32_t t;
            if (i + 1 >= argc || !gguf_ttype_by_name(argv[i + 1], &t)) {
                fprintf(stderr, "cairn quantize: %s needs a tensor type (F16, Q8_0, Q6_K, ...)\n", argv[i]);
                return 2;
            }
            if (!strcmp(argv[i], "--output-type")) {
                qp.set_output_type = true;
                qp.output_type = t;
            } else {
                qp.set_embd_type = true;
                qp.embd_type = t;
            }
            i++;
        } else if (!strcmp(argv[i], "--json")) {
            json = true;
        } else if (!strcmp(argv[i], "-t") || !strcmp(argv[i], "--threads")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "cairn quantize: %s needs a value\n", argv[i]);
                return 2;
            }
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || end == argv[i] || v < 1 || v > 64) {
                fprintf(stderr, "cairn quantize: bad thread count '%s' (1..64)\n", argv[i]);
                return 2;
            }
            qp.n_threads = (int)v;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "cairn quantize: unknown option '%s'\n", argv[i]);
            return 2;
        } else if (npos < 3) {
            pos[npos++] = argv[i];
        } else {
            quantize_usage(stderr);
            return 2;
        }
    }
    if (npos != 3) {
        quantize_usage(stderr);
        return 2;
    }
    if (!gguf_quantize_mode_by_name(pos[2], &qp.mode)) {
        fprintf(stderr, "cairn quantize: unknown type '%s' (Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q4_K_S Q4_K_M Q5_K_S "
                        "Q5_K_M Q6_K F16 BF16)\n", pos[2]);
        return 2;
    }
    if (dry_run)
        return quantize_dry_run(pos[0], &qp);
    gguf_quantize_stats qs;
    cairn_status st = gguf_quantize_file(pos[0], pos[1], &qp, &qs);
    if (st != CAIRN_OK) {
        fprintf(stderr, "cairn quantize: %s: %s\n", cairn_status_str(st), cairn_last_error());
        return 1;
    }
    double ratio = qs.in_file_size ? (double)qs.out_file_size / (double)qs.in_file_size : 0;
    if (json) {   /* through cJSON: paths may hold quotes or control characters */
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "in", pos[0]);
        cJSON_AddStringToObject(j, "out", pos[1]);
        cJSON_AddStringToObject(j, "type", gguf_quantize_mode_name(qp.mode));
        cJSON_AddNumberToObject(j, "in_bytes", (double)qs.in_file_size);
        cJSON_AddNumberToObject(j, "out_bytes", (double)qs.out_file_size);
        cJSON_AddNumberToObject(j, "ratio", ratio);
        cJSON_AddNumberToObject(j, "quantized", (double)qs.n_quantized);
        cJSON_AddNumberToObject(j, "kept", (double)qs.n_kept);
        cJSON_AddNumberToObject(j, "seconds", qs.seconds);
        return cli_print_json(j);
    }
    char a[64], b[64];
    fmt_bytes(a, sizeof a, qs.in_file_size);
    fmt_bytes(b, sizeof b, qs.out_file_size);
    printf("%s -> %s (%s)\n", pos[0], pos[1], gguf_quantize_mode_name(qp.mode));
    printf("  tensors: %llu quantized, %llu kept\n", (unsigned long long)qs.n_quantized,
           (unsigned long long)qs.n_kept);
    for (int ty = 0; ty < GGUF_QUANTIZE_NTYPES; ty++)
        if (qs.type_count[ty])
            printf("    %-6s %4llu tensors %12llu bytes\n", gguf_ttype(ty)->name,
                   (unsigned long long)qs.type_count[ty], (unsigned long long)qs.type_bytes[ty]);
    printf("  size: %s -> %s (%llu -> %llu bytes), %.1f%% of the input, %.1f%% smaller\n", a, b,
           (unsigned long long)qs.in_file_size, (unsigned long long)qs.out_file_size, 100.0 * ratio,
           100.0 * (1.0 - ratio));
    printf("  time: %.2f s\n", qs.seconds);
    return 0;
}
