/* test_gguf.c — GGUF reader and writer: synthetic round trips, every value type,
 * hand-made hostile headers, allocation failures, and the shared models. */
#include "gguf/gguf.h"
#include "kernels/quant.h"
#include "t.h"
#include <dirent.h>
#include <sys/stat.h>

static char *slurp(const char *path, size_t *len)
{
    char *data = NULL;
    if (cairn_file_read_all(path, (size_t)1 << 31, &data, len) != CAIRN_OK)
        return NULL;
    return data;
}

/* A writer with every KV type, string arrays and several tensor types. */
static gguf_writer *make_writer(void)
{
    gguf_writer *w = NULL;
    CHECK_OK(gguf_writer_new(&w));
    CHECK_OK(gguf_writer_set_str(w, "general.architecture", "llama"));
    CHECK_OK(gguf_writer_set_str(w, "general.name", "tiny test"));
    CHECK_OK(gguf_writer_set_u32(w, "llama.embedding_length", 64));
    CHECK_OK(gguf_writer_set_i32(w, "test.i32", -5));
    CHECK_OK(gguf_writer_set_u64(w, "test.u64", 1ull << 40));
    CHECK_OK(gguf_writer_set_f32(w, "test.f32", 1.5f));
    CHECK_OK(gguf_writer_set_bool(w, "test.bool", true));
    float scores[3] = {0.5f, -1.0f, 2.25f};
    CHECK_OK(gguf_writer_set_arr(w, "test.scores", GGUF_TYPE_FLOAT32, scores, 3));
    int32_t ids[4] = {1, -2, 3, 70000};
    CHECK_OK(gguf_writer_set_arr(w, "test.ids", GGUF_TYPE_INT32, ids, 4));
    uint8_t u8s[2] = {7, 255};
    CHECK_OK(gguf_writer_set_arr(w, "test.u8s", GGUF_TYPE_UINT8, u8s, 2));
    const char *toks[4] = {"<unk>", "hello", "", "\xe2\x96\x81world"};
    CHECK_OK(gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, 4));
    CHECK_OK(gguf_writer_set_arr(w, "test.empty", GGUF_TYPE_INT64, NULL, 0));

    float f[64 * 3];
    for (int i = 0; i < 64 * 3; i++)
        f[i] = (float)i * 0.25f - 7.0f;
    int64_t ne2[2] = {64, 3};
    CHECK_OK(gguf_writer_add_tensor(w, "a.weight", 0, 2, ne2, f, sizeof f));
    int64_t ne1[1] = {5};
    CHECK_OK(gguf_writer_add_tensor(w, "norm", 0, 1, ne1, f, 5 * sizeof(float)));  /* 20 bytes: padded */
    uint8_t q[2 * 34];
    for (size_t i = 0; i < sizeof q; i++)
        q[i] = (uint8_t)(i * 7);
    int64_t neq[3] = {32, 1, 2};
    CHECK_OK(gguf_writer_add_tensor(w, "q8", 8, 3, neq, q, sizeof q));
    static uint8_t k4[144 * 2];
    int64_t nek[2] = {256, 2};
    CHECK_OK(gguf_writer_add_tensor(w, "k4", 12, 2, nek, k4, sizeof k4));
    return w;
}

static void check_synthetic(const gguf_file *g)
{
    CHECK_EQ_INT(gguf_version(g), 3);
    CHECK_EQ_INT(gguf_alignment(g), 32);
    CHECK_EQ_INT(gguf_kv_count(g), 12);
    CHECK_EQ_INT(gguf_tensor_count(g), 4);
    gguf_str s;
    CHECK_OK(gguf_get_str(g, "general.architecture", &s));
    CHECK(gguf_str_eq(s, "llama"));
    uint32_t u;
    CHECK_OK(gguf_get_u32(g, "llama.embedding_length", &u));
    CHECK_EQ_INT(u, 64);
    int64_t i64;
    CHECK_OK(gguf_get_i64(g, "test.i32", &i64));
    CHECK_EQ_INT(i64, -5);
    CHECK(gguf_get_u32(g, "test.i32", &u) == CAIRN_ERR_CORRUPT);   /* negative: out of range */
    CHECK_OK(gguf_get_i64(g, "test.u64", &i64));
    CHECK_EQ_INT(i64, 1ll << 40);
    CHECK(gguf_get_u32(g, "test.u64", &u) == CAIRN_ERR_CORRUPT);
    float f;
    CHECK_OK(gguf_get_f32(g, "test.f32", &f));
    CHECK(f == 1.5f);
    bool b = false;
    CHECK_OK(gguf_get_bool(g, "test.bool", &b));
    CHECK(b);
    CHECK(gguf_get_str(g, "test.bool", &s) == CAIRN_ERR_CORRUPT);
    CHECK(gguf_get_u32(g, "missing.key", &u) == CAIRN_ERR_NOT_FOUND);
    CHECK(gguf_kv_find(g, "missing") == NULL);

    const gguf_kv *kv = NULL;
    CHECK_OK(gguf_get_arr(g, "test.scores", GGUF_TYPE_FLOAT32, &kv));
    double d;
    CHECK(kv && gguf_arr_f64(kv, 2, &d) && d == 2.25);
    CHECK(kv && !gguf_arr_f64(kv, 3, &d));
    CHECK(gguf_get_arr(g, "test.scores", GGUF_TYPE_INT32, &kv) == CAIRN_ERR_CORRUPT);
    CHECK_OK(gguf_get_arr(g, "test.ids", GGUF_TYPE_COUNT, &kv));
    int64_t iv;
    CHECK(kv && gguf_arr_i64(kv, 1, &iv) && iv == -2);
    CHECK(kv && gguf_arr_i64(kv, 3, &iv) && iv == 70000);
    CHECK_OK(gguf_get_arr(g, "test.u8s", GGUF_TYPE_UINT8, &kv));
    CHECK(kv && gguf_arr_i64(kv, 1, &iv) && iv == 255);
    CHECK_OK(gguf_get_arr(g, "tokenizer.ggml.tokens", GGUF_TYPE_STRING, &kv));
    CHECK(kv && kv->v.arr.count == 4);
    CHECK(gguf_str_eq(gguf_arr_str(kv, 1), "hello"));
    CHECK(gguf_str_eq(gguf_arr_str(kv, 2), ""));
    CHECK(gguf_str_eq(gguf_arr_str(kv, 3), "\xe2\x96\x81world"));
    CHECK(gguf_arr_str(kv, 4).ptr == NULL);
    CHECK_OK(gguf_get_arr(g, "test.empty", GGUF_TYPE_INT64, &kv));
    CHECK(kv && kv->v.arr.count == 0);

    const gguf_tensor *t = gguf_tensor_find(g, "a.weight");
    CHECK(t != NULL);
    if (t) {
        CHECK_EQ_INT(t->n_dims, 2);
        CHECK_EQ_INT(t->ne[0], 64);
        CHECK_EQ_INT(t->ne[1], 3);
        CHECK_EQ_INT(t->ne[2], 1);
        CHECK_EQ_INT(t->nbytes, 64 * 3 * 4);
        CHECK_EQ_INT(t->offset, 0);
        float v;
        memcpy(&v, (const char *)t->data + 4 * 5, 4);
        CHECK(v == 5 * 0.25f - 7.0f);
    }
    t = gguf_tensor_find(g, "norm");
    CHECK(t && t->offset == 768 && t->nbytes == 20);
    t = gguf_tensor_find(g, "q8");
    CHECK(t && t->offset == 800 && t->nbytes == 68 && t->ne[2] == 2 && t->n_dims == 3);
    if (t)
        CHECK_EQ_INT(((const uint8_t *)t->data)[3], 21);
    t = gguf_tensor_find(g, "k4");
    CHECK(t && t->offset == 896 && t->nbytes == 288 && t->type == 12);
    if (t)
        CHECK_EQ_INT((uintptr_t)t->data % 32, 0);
    CHECK(gguf_tensor_find(g, "nope") == NULL);
}

static void test_writer_roundtrip(void)
{
    const char *dir = t_tmpdir("gguf_rt");
    char p1[1200], p2[1200];
    snprintf(p1, sizeof p1, "%s/a.gguf", dir);
    snprintf(p2, sizeof p2, "%s/b.gguf", dir);
    gguf_writer *w = make_writer();
    CHECK_OK(gguf_writer_write(w, p1));
    gguf_writer_free(w);
    gguf_file *g = NULL;
    CHECK_OK(gguf_open(p1, &g));
    if (!g)
        return;
    check_synthetic(g);
    CHECK_EQ_INT(gguf_file_size(g), gguf_data_offset(g) + 896 + 288);

    /* Copy everything to a second file: byte-identical. */
    gguf_writer *w2 = NULL;
    CHECK_OK(gguf_writer_new(&w2));
    CHECK_OK(gguf_writer_copy_kvs(w2, g));
    for (uint64_t i = 0; i < gguf_tensor_count(g); i++) {
        const gguf_tensor *t = gguf_tensor_at(g, i);
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
        CHECK_OK(gguf_writer_add_tensor_borrow(w2, name, t->type, t->n_dims, t->ne, t->data, t->nbytes));
    }
    CHECK_OK(gguf_writer_write(w2, p2));
    gguf_writer_free(w2);
    size_t l1 = 0, l2 = 0;
    char *a = slurp(p1, &l1), *b = slurp(p2, &l2);
    CHECK(a && b && l1 == l2 && memcmp(a, b, l1) == 0);

    /* The same image through gguf_open_mem. */
    gguf_file *gm = NULL;
    if (a) {
        /* gguf_open_mem needs the image at the file's alignment, as a
         * mapping would be; malloc only guarantees 16 bytes. */
        char *al = cairn_malloc_aligned(l1, 64);
        CHECK(al != NULL);
        if (al) {
            memcpy(al, a, l1);
            CHECK_OK(gguf_open_mem(al, l1, "mem", &gm));
            if (gm)
                check_synthetic(gm);
            gguf_close(gm);
            cairn_free_aligned(al);
        }
    }
    cairn_free(a);
    cairn_free(b);
    gguf_close(g);
}

static void test_writer_api_misuse(void)
{
    gguf_writer *w = NULL;
    CHECK_OK(gguf_writer_new(&w));
    float f[32] = {0};
    int64_t ne[2] = {32, 1};
    CHECK(gguf_writer_add_tensor(w, "x", 8, 2, ne, f, 10) == CAIRN_ERR_INVALID);       /* wrong size */
    int64_t ne_bad[1] = {31};
    CHECK(gguf_writer_add_tensor(w, "x", 8, 1, ne_bad, f, 34) == CAIRN_ERR_INVALID);   /* not whole blocks */
    CHECK(gguf_writer_add_tensor(w, "x", 99, 2, ne, f, 128) == CAIRN_ERR_INVALID);     /* unknown type */
    CHECK(gguf_writer_add_tensor(w, "", 0, 2, ne, f, 128) == CAIRN_ERR_INVALID);
    CHECK(gguf_writer_add_tensor(w, "x", 0, 5, ne, f, 128) == CAIRN_ERR_INVALID);
    CHECK_OK(gguf_writer_add_tensor(w, "x", 0, 2, ne, f, 128));
    CHECK(gguf_writer_add_tensor(w, "x", 0, 2, ne, f, 128) == CAIRN_ERR_INVALID);      /* duplicate */
    char *owned = cairn_malloc(128);
    CHECK(gguf_writer_add_tensor_take(w, "x", 0, 2, ne, owned, 128) == CAIRN_ERR_INVALID); /* freed on failure */
    owned = cairn_calloc(1, 128);
    CHECK_OK(gguf_writer_add_tensor_take(w, "y", 0, 2, ne, owned, 128));
    CHECK_EQ_INT(gguf_writer_tensor_count(w), 2);
    /* Replacing a key keeps one entry; alignment must be a power of two. */
    CHECK_OK(gguf_writer_set_u32(w, "general.alignment", 48));
    const char *dir = t_tmpdir("gguf_misuse");
    char p[1200];
    snprintf(p, sizeof p, "%s/x.gguf", dir);
    CHECK(gguf_writer_write(w, p) == CAIRN_ERR_INVALID);
    CHECK_OK(gguf_writer_set_u32(w, "general.alignment", 64));
    CHECK_OK(gguf_writer_set_str(w, "a", "1"));
    CHECK_OK(gguf_writer_set_str(w, "a", "2"));
    gguf_writer_remove(w, "nothing");
    CHECK_OK(gguf_writer_write(w, p));
    gguf_writer_free(w);
    gguf_file *g = NULL;
    CHECK_OK(gguf_open(p, &g));
    if (g) {
        CHECK_EQ_INT(gguf_alignment(g), 64);
        CHECK_EQ_INT(gguf_kv_count(g), 2);
        gguf_str s;
        CHECK_OK(gguf_get_str(g, "a", &s));
        CHECK(gguf_str_eq(s, "2"));
        CHECK_EQ_INT(gguf_tensor_find(g, "y")->offset, 128);
        CHECK_EQ_INT(gguf_data_offset(g) % 64, 0);
    }
    gguf_close(g);
}

static cairn_status fill_ramp(void *ctx, void *dst, size_t n)
{
    int *calls = ctx;
    (*calls)++;
    for (size_t i = 0; i < n; i++)
        ((uint8_t *)dst)[i] = (uint8_t)i;
    return CAIRN_OK;
}

static cairn_status fill_fail(void *ctx, void *dst, size_t n)
{
    (void)ctx; (void)dst; (void)n;
    return cairn_fail(CAIRN_ERR_IO, "fill failed on purpose");
}

static void test_writer_lazy(void)
{
    const char *dir = t_tmpdir("gguf_lazy");
    char p[1200];
    snprintf(p, sizeof p, "%s/lazy.gguf", dir);
    gguf_writer *w = NULL;
    CHECK_OK(gguf_writer_new(&w));
    int calls = 0;
    int64_t ne[2] = {32, 3};
    CHECK_OK(gguf_writer_add_tensor_lazy(w, "lazy", 8, 2, ne, 3 * 34, fill_ramp, &calls));
    CHECK(gguf_writer_add_tensor_lazy(w, "bad", 8, 2, ne, 3 * 34, NULL, NULL) == CAIRN_ERR_INVALID);
    CHECK(gguf_writer_add_tensor_lazy(w, "bad", 8, 2, ne, 100, fill_ramp, &calls) == CAIRN_ERR_INVALID);
    CHECK_OK(gguf_writer_write(w, p));
    CHECK_EQ_INT(calls, 1);
    gguf_file *g = NULL;
    CHECK_OK(gguf_open(p, &g));
    const gguf_tensor *t = g ? gguf_tensor_find(g, "lazy") : NULL;
    CHECK(t && t->nbytes == 102 && ((const uint8_t *)t->data)[101] == 101);
    gguf_prefetch(g);
    if (t)
        gguf_tensor_release(g, t);   /* pages dropped, data still readable */
    CHECK(t && ((const uint8_t *)t->data)[50] == 50);
    gguf_close(g);
    /* A failing fill aborts the write: its status, no file. */
    CHECK_OK(gguf_writer_add_tensor_lazy(w, "fails", 8, 2, ne, 3 * 34, fill_fail, NULL));
    char p2[1300];
    snprintf(p2, sizeof p2, "%s/fail.gguf", dir);
    CHECK(gguf_writer_write(w, p2) == CAIRN_ERR_IO);
    CHECK(access(p2, F_OK) != 0);
    gguf_writer_free(w);
}

/* gguf_tensor_check finds NaN/Inf values and block scales. */
static void test_check(void)
{
    uint8_t buf[210 * 2];
    gguf_tensor t = {{"x", 1}, 1, {0, 1, 1, 1}, 0, 0, 0, buf};
    uint64_t at = 99;
    /* F32: fine, then a NaN at index 5. */
    float f[8] = {1, 2, 3, -4, 0, 6, 7, 8};
    memcpy(buf, f, sizeof f);
    t.type = 0; t.ne[0] = 8; t.nbytes = 32;
    CHECK_OK(gguf_tensor_check(&t, &at));
    f[5] = NAN;
    memcpy(buf, f, sizeof f);
    CHECK(gguf_tensor_check(&t, &at) == CAIRN_ERR_CORRUPT && at == 5);
    CHECK(strstr(cairn_last_error(), "non-finite value at value 5") != NULL);
    /* F16 +Inf (0x7c00) at index 3; BF16 NaN (0x7fc0) at index 1. */
    uint16_t h[4] = {0x3c00, 0x4000, 0x0001, 0x7c00};
    memcpy(buf, h, sizeof h);
    t.type = 1; t.ne[0] = 4; t.nbytes = 8;
    CHECK(gguf_tensor_check(&t, &at) == CAIRN_ERR_CORRUPT && at == 3);
    uint16_t b[2] = {0x3f80, 0x7fc0};
    memcpy(buf, b, sizeof b);
    t.type = 30; t.ne[0] = 2; t.nbytes = 4;
    CHECK(gguf_tensor_check(&t, &at) == CAIRN_ERR_CORRUPT && at == 1);
    /* Q8_0: scale of block 1 is Inf -> first value 32. */
    memset(buf, 0, sizeof buf);
    t.type = 8; t.ne[0] = 64; t.nbytes = 68;
    CHECK_OK(gguf_tensor_check(&t, &at));
    buf[34] = 0x00; buf[35] = 0x7c;
    CHECK(gguf_tensor_check(&t, &at) == CAIRN_ERR_CORRUPT && at == 32);
    /* Q4_K: dmin (offset 2) NaN in block 0; Q6_K: d (offset 208) of block 1. */
    memset(buf, 0, sizeof buf);
    t.type = 12; t.ne[0] = 256; t.nbytes = 144;
    CHECK_OK(gguf_tensor_check(&t, &at));
    buf[2] = 0x01; buf[3] = 0x7e;
    CHECK(gguf_tensor_check(&t, &at) == CAIRN_ERR_CORRUPT && at == 0);
    memset(buf, 0, sizeof buf);
    t.type = 14; t.ne[0] = 512; t.nbytes = 420;
    CHECK_OK(gguf_tensor_check(&t, &at));
    buf[210 + 209] = 0xfc;   /* -Inf */
    CHECK(gguf_tensor_check(&t, &at) == CAIRN_ERR_CORRUPT && at == 256);
}

/* ---- hand-made hostile headers ---- */

typedef struct img { uint8_t b[4096]; size_t n; } img;
static void put(img *m, const void *p, size_t n) { memcpy(m->b + m->n, p, n); m->n += n; }
static void put32(img *m, uint32_t v) { put(m, &v, 4); }
static void put64(img *m, uint64_t v) { put(m, &v, 8); }
static void putstr(img *m, const char *s) { put64(m, strlen(s)); put(m, s, strlen(s)); }
static void header(img *m, uint32_t version, uint64_t nt, uint64_t nkv)
{
    m->n = 0;
    put(m, "GGUF", 4);
    put32(m, version);
    put64(m, nt);
    put64(m, nkv);
}
static void tinfo(img *m, const char *name, uint32_t nd, const uint64_t *ne, uint32_t type, uint64_t off)
{
    putstr(m, name);
    put32(m, nd);
    for (uint32_t i = 0; i < nd; i++)
        put64(m, ne[i]);
    put32(m, type);
    put64(m, off);
}
static void pad_data(img *m, size_t data_bytes)
{
    while (m->n % 32)
        m->b[m->n++] = 0;
    memset(m->b + m->n, 0, data_bytes);
    m->n += data_bytes;
}

static void expect_fail(const img *m, cairn_status want, const char *word, const char *what)
{
    gguf_file *g = NULL;
    cairn_status st = gguf_open_mem(m->b, m->n, "hostile", &g);
    CHECKF(st == want, "%s: got %s (%s)", what, cairn_status_str(st), cairn_last_error());
    CHECKF(strstr(cairn_last_error(), word) != NULL, "%s: detail '%s' lacks '%s'", what, cairn_last_error(), word);
    CHECK(g == NULL);
    gguf_close(g);
}

static void test_hostile_headers(void)
{
    img m;
    uint64_t ne[4] = {32, 2, 1, 1};
    header(&m, 3, 0, 0);
    memcpy(m.b, "GGUX", 4);
    expect_fail(&m, CAIRN_ERR_CORRUPT, "magic", "bad magic");
    header(&m, 1, 0, 0);
    expect_fail(&m, CAIRN_ERR_UNSUPPORTED, "version 1", "v1");
    header(&m, 0x03000000u, 0, 0);
    expect_fail(&m, CAIRN_ERR_UNSUPPORTED, "big-endian", "big endian");
    header(&m, 7, 0, 0);
    expect_fail(&m, CAIRN_ERR_CORRUPT, "version", "v7");
    header(&m, 3, 0, UINT64_MAX);
    expect_fail(&m, CAIRN_ERR_CORRUPT, "kv count", "giant kv count");
    header(&m, 3, 1ull << 40, 0);
    expect_fail(&m, CAIRN_ERR_CORRUPT, "tensor count", "giant tensor count");
    header(&m, 3, 0, 1);
    put64(&m, 1ull << 62);
    put32(&m, 0);
    put64(&m, 0);
    expect_fail(&m, CAIRN_ERR_CORRUPT, "length", "giant key length");
    header(&m, 3, 0, 1);
    putstr(&m, "k");
    put32(&m, GGUF_TYPE_STRING);
    put64(&m, 1000);
    expect_fail(&m, CAIRN_ERR_CORRUPT, "truncated", "string past EOF");
    header(&m, 3, 0, 1);
    putstr(&m, "k");
    put32(&m, 13);
    put32(&m, 0);
    expect_fail(&m, CAIRN_ERR_CORRUPT, "unknown value type", "bad type");
    header(&m, 3, 0, 1);
    putstr(&m, "k");
    put32(&m, GGUF_TYPE_ARRAY);
    put32(&m, GGUF_TYPE_UINT32);
    put64(&m, 1ull << 62);
    expect_fail(&m, CAIRN_ERR_CORRUPT, "past the end", "giant numeric array");
    header(&m, 3, 0, 1);
    putstr(&m, "k");
    put32(&m, GGUF_TYPE_ARRAY);
    put32(&m, GGUF_TYPE_STRING);
    put64(&m, 1ull << 40);
    put64(&m, 0);
    expect_fail(&m, CAIRN_ERR_CORRUPT, "string array count", "giant string array");
    header(&m, 3, 0, 1);
    putstr(&m, "k");
    put32(&m, GGUF_TYPE_ARRAY);
    put32(&m, GGUF_TYPE_ARRAY);
    put64(&m, 1);
    put64(&m, 0);
    expect_fail(&m, CAIRN_ERR_CORRUPT, "arrays of arrays", "nested array");
    header(&m, 3, 0, 2);
    putstr(&m, "k");
    put32(&m, GGUF_TYPE_UINT8);
    put(&m, "x", 1);
    putstr(&m, "k");
    put32(&m, GGUF_TYPE_UINT8);
    put(&m, "x", 1);
    expect_fail(&m, CAIRN_ERR_CORRUPT, "duplicate key", "duplicate key");
    header(&m, 3, 0, 1);
    putstr(&m, "");
    put32(&m, GGUF_TYPE_UINT8);
    put(&m, "x", 1);
    expect_fail(&m, CAIRN_ERR_CORRUPT, "empty key", "empty key");
    header(&m, 3, 0, 1);
    putstr(&m, "general.alignment");
    put32(&m, GGUF_TYPE_UINT32);
    put32(&m, 48);
    expect_fail(&m, CAIRN_ERR_CORRUPT, "power of two", "alignment 48");
    header(&m, 3, 0, 1);
    putstr(&m, "general.alignment");
    put32(&m, GGUF_TYPE_STRING);
    putstr(&m, "32");
    expect_fail(&m, CAIRN_ERR_CORRUPT, "not an integer", "alignment string");

    header(&m, 3, 1, 0);
    tinfo(&m, "t", 5, (uint64_t[5]){1, 1, 1, 1, 1}, 0, 0);
    pad_data(&m, 64);
    expect_fail(&m, CAIRN_ERR_CORRUPT, "dims", "5 dims");
    header(&m, 3, 1, 0);
    tinfo(&m, "t", 0, ne, 0, 0);
    pad_data(&m, 64);
    expect_fail(&m, CAIRN_ERR_CORRUPT, "dims", "0 dims");
    header(&m, 3, 1, 0);
    tinfo(&m, "t", 2, (uint64_t[2]){32, 0}, 0, 0);
    pad_data(&m, 64);
    expect_fail(&m, CAIRN_ERR_CORRUPT, "dim 1", "zero dim");
    header(&m, 3, 1, 0);
    tinfo(&m, "t", 3, (uint64_t[3]){1ull << 32, 1ull << 32, 4}, 0, 0);
    pad_data(&m, 64);
    expect_fail(&m, CAIRN_ERR_CORRUPT, "overflows", "element overflow");
    header(&m, 3, 1, 0);
    tinfo(&m, "t", 2, (uint64_t[2]){1ull << 61, 2}, 0, 0);
    pad_data(&m, 64);
    expect_fail(&m, CAIRN_ERR_CORRUPT, "overflows", "byte size overflow");
    header(&m, 3, 1, 0);
    tinfo(&m, "t", 2, ne, 4, 0);
    pad_data(&m, 256);
    expect_fail(&m, CAIRN_ERR_CORRUPT, "unknown tensor type", "retired type 4");
    header(&m, 3, 1, 0);
    tinfo(&m, "t", 2, (uint64_t[2]){33, 2}, 8, 0);
    pad_data(&m, 256);
    expect_fail(&m, CAIRN_ERR_CORRUPT, "block size", "partial block");
    header(&m, 3, 1, 0);
    tinfo(&m, "t", 2, ne, 0, 16);
    pad_data(&m, 512);
    expect_fail(&m, CAIRN_ERR_CORRUPT, "alignment", "misaligned offset");
    header(&m, 3, 1, 0);
    tinfo(&m, "t", 2, ne, 0, 0);
    pad_data(&m, 255);
    expect_fail(&m, CAIRN_ERR_CORRUPT, "past the end", "data past EOF");
    header(&m, 3, 1, 0);
    tinfo(&m, "t", 2, ne, 0, UINT64_MAX - 31);
    pad_data(&m, 256);
    expect_fail(&m, CAIRN_ERR_CORRUPT, "past the end", "offset wrap");
    header(&m, 3, 2, 0);
    tinfo(&m, "t", 2, ne, 0, 0);
    tinfo(&m, "t", 2, ne, 0, 256);
    pad_data(&m, 512);
    expect_fail(&m, CAIRN_ERR_CORRUPT, "duplicate", "duplicate tensor");
    header(&m, 3, 1, 0);
    tinfo(&m, "t", 2, ne, 0, 0);
    expect_fail(&m, CAIRN_ERR_CORRUPT, "past the end", "no data section");
    header(&m, 3, 3, 0);
    tinfo(&m, "a", 2, ne, 0, 512);
    tinfo(&m, "b", 2, ne, 0, 0);
    tinfo(&m, "c", 2, ne, 0, 224);   /* [224, 480) overlaps b = [0, 256) */
    pad_data(&m, 1024);
    expect_fail(&m, CAIRN_ERR_CORRUPT, "overlap", "overlapping tensors");
    header(&m, 3, 2, 0);
    tinfo(&m, "a", 2, ne, 0, 256);
    tinfo(&m, "b", 2, ne, 0, 0);     /* out of order but disjoint: fine */
    pad_data(&m, 512);
    gguf_file *ok2 = NULL;
    CHECK_OK(gguf_open_mem(m.b, m.n, "disjoint", &ok2));
    gguf_close(ok2);

    /* And the valid version of the same: opens. */
    header(&m, 2, 1, 0);
    tinfo(&m, "t", 2, ne, 0, 0);
    pad_data(&m, 256);
    gguf_file *g = NULL;
    CHECK_OK(gguf_open_mem(m.b, m.n, "valid", &g));
    CHECK(g && gguf_version(g) == 2 && gguf_tensor_find(g, "t")->nbytes == 256);
    gguf_close(g);
}

/* Every allocation during open fails in turn: a clean NOMEM each time, no leak. */
static void test_alloc_failures(void)
{
    gguf_writer *w = make_writer();
    const char *dir = t_tmpdir("gguf_alloc");
    char p[1200];
    snprintf(p, sizeof p, "%s/a.gguf", dir);
    CHECK_OK(gguf_writer_write(w, p));
    gguf_writer_free(w);
    int ok_at = -1;
    for (int n = 0; n < 100 && ok_at < 0; n++) {
        gguf_file *g = NULL;
        cairn_alloc_fail_after(n, false);
        cairn_status st = gguf_open(p, &g);
        cairn_alloc_fail_after(-1, false);
        if (st == CAIRN_OK) {
            ok_at = n;
            check_synthetic(g);
        } else {
            CHECKF(st == CAIRN_ERR_NOMEM, "n=%d: %s", n, cairn_status_str(st));
        }
        gguf_close(g);
    }
    CHECK(ok_at > 0);
    /* And the writer, failing each allocation while building and writing. */
    ok_at = -1;
    for (int n = 0; n < 400 && ok_at < 0; n++) {
        cairn_alloc_fail_after(n, false);
        gguf_writer *w2 = NULL;
        cairn_status st = gguf_writer_new(&w2);
        gguf_file *g = NULL;
        if (st == CAIRN_OK)
            st = gguf_open(p, &g);
        if (st == CAIRN_OK)
            st = gguf_writer_copy_kvs(w2, g);
        for (uint64_t i = 0; st == CAIRN_OK && i < gguf_tensor_count(g); i++) {
            const gguf_tensor *t = gguf_tensor_at(g, i);
            char name[128];
            snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
            st = gguf_writer_add_tensor(w2, name, t->type, t->n_dims, t->ne, t->data, t->nbytes);
        }
        char p2[1300];
        snprintf(p2, sizeof p2, "%s/b.gguf", dir);
        if (st == CAIRN_OK)
            st = gguf_writer_write(w2, p2);
        cairn_alloc_fail_after(-1, false);
        if (st == CAIRN_OK)
            ok_at = n;
        else
            CHECKF(st == CAIRN_ERR_NOMEM, "writer n=%d: %s (%s)", n, cairn_status_str(st), cairn_last_error());
        gguf_writer_free(w2);
        gguf_close(g);
    }
    CHECK(ok_at > 10);
}

/* ---- the shared models ---- */

typedef struct known {
    const char *file;
    const char *arch;
    uint64_t n_tensors;
    int64_t params;
    const char *hp_key;
    uint32_t hp;
} known;

static const known knowns[] = {
    {"stories260K/stories260K.gguf", "llama", 48, 292800, "llama.embedding_length", 64},
    {"stories260K/stories260K-Q8_0.gguf", "llama", 48, 292800, "llama.block_count", 5},
    {"stories260K/stories260K-Q4_0.gguf", "llama", 48, 292800, "llama.feed_forward_length", 172},
    {"llama-2-tiny-random/llama-2-tiny-random.gguf", "llama", 12, 513048, "llama.embedding_length", 8},
    {"stories260K-moe/stories260K-moe4x-top2-identity.gguf", "llama", 53, 789440, "llama.expert_count", 4},
    {"glove-bert/glove6B-100d-bert-15k-f16.gguf", "bert", 21, 1673400, "bert.embedding_length", 100},
    {"glove-bert/glove6B-100d-bert-22k-d128-Q4_K_M.gguf", "bert", 21, 3080960, "bert.embedding_length", 128},
};

static void check_known(const char *shared)
{
    for (size_t k = 0; k < CAIRN_ARRAY_LEN(knowns); k++) {
        char p[1200];
        snprintf(p, sizeof p, "%s/models/%s", shared, knowns[k].file);
        gguf_file *g = NULL;
        CHECK_OK(gguf_open(p, &g));
        if (!g)
            continue;
        gguf_str arch;
        CHECK_OK(gguf_get_str(g, "general.architecture", &arch));
        CHECKF(gguf_str_eq(arch, knowns[k].arch), "%s", p);
        CHECK_EQ_INT(gguf_tensor_count(g), knowns[k].n_tensors);
        int64_t params = 0;
        for (uint64_t i = 0; i < gguf_tensor_count(g); i++)
            params += gguf_tensor_nelements(gguf_tensor_at(g, i));
        CHECKF(params == knowns[k].params, "%s: %lld params", p, (long long)params);
        uint32_t v = 0;
        CHECK_OK(gguf_get_u32(g, knowns[k].hp_key, &v));
        CHECKF(v == knowns[k].hp, "%s: %s = %u", p, knowns[k].hp_key, v);
        gguf_close(g);
    }
    /* stories260K in detail. */
    char p[1200];
    snprintf(p, sizeof p, "%s/models/stories260K/stories260K.gguf", shared);
    gguf_file *g = NULL;
    CHECK_OK(gguf_open(p, &g));
    if (!g)
        return;
    uint32_t v;
    CHECK_OK(gguf_get_u32(g, "llama.block_count", &v));
    CHECK_EQ_INT(v, 5);
    CHECK_OK(gguf_get_u32(g, "llama.attention.head_count", &v));
    CHECK_EQ_INT(v, 8);
    CHECK_OK(gguf_get_u32(g, "llama.attention.head_count_kv", &v));
    CHECK_EQ_INT(v, 4);
    float eps;
    CHECK_OK(gguf_get_f32(g, "llama.attention.layer_norm_rms_epsilon", &eps));
    CHECK_NEAR(eps, 1e-5, 1e-9);
    const gguf_kv *tok = NULL;
    CHECK_OK(gguf_get_arr(g, "tokenizer.ggml.tokens", GGUF_TYPE_STRING, &tok));
    CHECK(tok && tok->v.arr.count == 512);
    CHECK(tok && gguf_str_eq(gguf_arr_str(tok, 1), "<s>"));
    CHECK(tok && gguf_str_eq(gguf_arr_str(tok, 2), "</s>"));
    const gguf_tensor *t = gguf_tensor_find(g, "token_embd.weight");
    CHECK(t && t->type == 0 && t->ne[0] == 64 && t->ne[1] == 512);
    t = gguf_tensor_find(g, "blk.4.ffn_down.weight");
    CHECK(t && t->ne[0] == 172 && t->ne[1] == 64);
    /* The data ends exactly at the end of the file (PROVENANCE.txt). */
    uint64_t end = 0;
    for (uint64_t i = 0; i < gguf_tensor_count(g); i++) {
        const gguf_tensor *ti = gguf_tensor_at(g, i);
        end = CAIRN_MAX(end, gguf_data_offset(g) + ti->offset + ti->nbytes);
    }
    CHECK_EQ_INT(end, gguf_file_size(g));
    gguf_close(g);
}

/* Every .gguf under models/: opens, and writing it back gives the same bytes. */
static int roundtrip_dir(const char *dir, const char *tmp, int *n_files)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char p[2048];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (stat(p, &sb) != 0)
            continue;
        if (S_ISDIR(sb.st_mode)) {
            roundtrip_dir(p, tmp, n_files);
            continue;
        }
        size_t nl = strlen(e->d_name);
        if (nl < 5 || strcmp(e->d_name + nl - 5, ".gguf"))
            continue;
        (*n_files)++;
        gguf_file *g = NULL;
        CHECK_OK(gguf_open(p, &g));
        if (!g)
            continue;
        gguf_writer *w = NULL;
        CHECK_OK(gguf_writer_new(&w));
        CHECK_OK(gguf_writer_copy_kvs(w, g));
        for (uint64_t i = 0; i < gguf_tensor_count(g); i++) {
            const gguf_tensor *t = gguf_tensor_at(g, i);
            char name[128];
            snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
            CHECK_OK(gguf_writer_add_tensor_borrow(w, name, t->type, t->n_dims, t->ne, t->data, t->nbytes));
        }
        char out[1300];
        snprintf(out, sizeof out, "%s/rt.gguf", tmp);
        CHECK_OK(gguf_writer_write(w, out));
        gguf_writer_free(w);
        size_t la = 0, lb = 0;
        char *a = slurp(p, &la), *b = slurp(out, &lb);
        /* Files without tensors may omit the final padding of the header. */
        size_t cmp = gguf_tensor_count(g) ? la : CAIRN_MIN(la, lb);
        CHECKF(a && b && (la == lb || !gguf_tensor_count(g)) && memcmp(a, b, cmp) == 0,
               "%s: written back differs (%zu vs %zu bytes)", p, la, lb);
        cairn_free(a);
        cairn_free(b);
        gguf_close(g);
    }
    closedir(d);
    return 0;
}

static void test_shared_models(void)
{
    const char *shared = cairn_test_shared_dir();
    if (!shared) {
        fprintf(stderr, "  (shared assets absent: skipped)\n");
        return;
    }
    check_known(shared);
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/models", shared);
    int n = 0;
    roundtrip_dir(dir, t_tmpdir("gguf_shared"), &n);
    CHECK(n >= 20);
    fprintf(stderr, "  %d shared .gguf files opened and written back\n", n);
}

/* The reader's layout table agrees with the kernels for every type they support. */
static void test_type_table(void)
{
    int n = 0;
    for (uint32_t t = 0; t < QT_COUNT; t++) {
        const qtype_traits *qt = qtype_get(t);
        if (!qt)
            continue;
        n++;
        const gguf_ttype_info *ti = gguf_ttype(t);
        CHECKF(ti != NULL, "type %u", t);
        if (!ti)
            continue;
        CHECKF(ti->block_size == (uint32_t)qt->block_size && ti->type_size == qt->type_size,
               "%s: %u/%u vs kernels %d/%zu", ti->name, ti->block_size, ti->type_size, qt->block_size, qt->type_size);
        CHECK_EQ_INT(gguf_ttype_nbytes(t, 512 * 3), qtype_row_size(t, 512 * 3));
    }
    CHECK(n >= 13);
    uint32_t id;
    CHECK(gguf_ttype_by_name("q4_k", &id) && id == QT_Q4_K);
    CHECK(gguf_ttype_by_name("BF16", &id) && id == QT_BF16);
    CHECK(!gguf_ttype_by_name("Q4_2", &id));
    CHECK(gguf_ttype(4) == NULL && gguf_ttype(31) == NULL && gguf_ttype(1000) == NULL);
    CHECK_EQ_INT(gguf_ttype_nbytes(QT_Q8_0, 33), 0);
}

int main(void)
{
    RUN(test_type_table);
    RUN(test_writer_roundtrip);
    RUN(test_writer_api_misuse);
    RUN(test_writer_lazy);
    RUN(test_check);
    RUN(test_hostile_headers);
    RUN(test_alloc_failures);
    RUN(test_shared_models);
    if (!cairn_test_shared_dir() && !t_failures)
        fprintf(stderr, "note: shared models absent; synthetic cases only\n");
    return t_done();
}
