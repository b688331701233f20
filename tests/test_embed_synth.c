/*
 * test_embed_synth.c — encoders written by our own GGUF writer
 * (gguf/testmodel.c) against the float64 numpy reference
 * (tests/tools/np_ref.py): bert (absolute positions, token types, biases,
 * GELU; mean, CLS and last pooling), nomic-bert (RoPE, fused qkv, SwiGLU)
 * and a bert cross-encoder head (rank pooling), in F32 and quantized types.
 *
 * Tolerance, |ours - ref| over every component of the unit vector (scores:
 * relative to max(1, |ref|)): F32 and F16 weights 1e-6 (float32 arithmetic
 * vs float64; F16 weights are read exactly by both and our F16 products keep
 * F32 activations; measured <= 8e-8); other quantized weights 5e-3: the
 * reference dequantizes the weights exactly, while our integer dot products
 * also round the activations to Q8_0 / Q8_K (~0.4% of a block's largest
 * value per activation); measured <= 1.6e-3 on these models. With AVX2 the
 * encoder multiplies in float (model/embed_gemm_avx2.c: weights dequantized,
 * activations not rounded), and every type is held to 1e-6 (measured <= 1e-7).
 *
 * Also: the same text gives the same bits alone, in a batch, in another
 * order and with 1 or 2 threads (packed runs span several forward passes);
 * truncation to the context is counted and equals the reference on the cut
 * ids; bad input (a llama model, a truncated file, a missing file, rerank on
 * a non-reranker) gives clear errors; every allocation failure is clean.
 */
#include "gguf/gguf.h"
#include "gguf/testmodel.h"
#include "kernels/quant.h"
#include "model/embed.h"
#include "model/embed_ops.h"
#include "tokenizer/tokenizer.h"
#include "t.h"
#include "np_ref.h"

static const char *dir;
static bool have_ref;

static char *model_path(const char *name)
{
    static char buf[8][1024];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, 1024, "%s/%s.gguf", dir, name);
    return p;
}

static const char *write_model(const char *name, const char *arch, uint32_t type, int n_embd, int n_ff, int pooling,
                               int n_cls_out, int n_ctx)
{
    gguf_testmodel_params p;
    gguf_testmodel_defaults(&p);
    p.arch = arch;
    p.n_vocab = 400;
    p.n_embd = n_embd;
    p.n_ff = n_ff;
    p.n_layer = 2;
    p.n_head = 4;
    p.n_ctx = n_ctx;
    p.weight_type = type;
    p.pooling_type = pooling;
    p.n_cls_out = n_cls_out;
    p.seed = 42;
    const char *path = model_path(name);
    CHECK_OK(gguf_testmodel_write(path, &p));
    return path;
}

/* Ids exactly as the embedder builds them: [CLS] content [SEP], content cut to n_ctx - 2. */
static int ids_of(const char *path, const char *text, int n_ctx, int32_t *ids)
{
    gguf_file *g;
    cairn_tokenizer *t;
    if (gguf_open(path, &g) != CAIRN_OK)
        return -1;
    if (tokenizer_load(g, &t) != CAIRN_OK) {
        gguf_close(g);
        return -1;
    }
    size_t need = 0;
    tokenizer_encode(t, text, strlen(text), false, false, ids + 1, (size_t)n_ctx - 2, &need);
    int n = (int)CAIRN_MIN(need, (size_t)n_ctx - 2) + 1;
    ids[0] = tokenizer_bos(t);
    ids[n++] = tokenizer_eos(t);
    tokenizer_free(t);
    gguf_close(g);
    return n;
}

static const char *TEXTS[] = {
    "the quick brown fox jumps over the lazy dog",
    "a",
    "tea",
    "seven senators consider a reasonable oat harvest in the north",
    "",
    "this is one rather long sentence, with punctuation! and a question? then more words to fill it up",
};
#define N_TEXTS ((int)CAIRN_ARRAY_LEN(TEXTS))

static double max_diff_ref(const char *path, const float *v, int dim, const char *text, int n_ctx)
{
    int32_t ids[1100];
    int n = ids_of(path, text, n_ctx, ids);
    if (n < 0)
        return INFINITY;
    cJSON *j = np_ref_json("bert", path, ids, n);
    const cJSON *a = j ? cJSON_GetObjectItem(j, "embedding_l2") : NULL;
    double m = INFINITY;
    if (a && cJSON_GetArraySize(a) == dim) {
        m = 0;
        for (int i = 0; i < dim; i++)
            m = fmax(m, fabs(v[i] - cJSON_GetArrayItem(a, i)->valuedouble));
    }
    cJSON_Delete(j);
    return m;
}

static void check_against_ref(const char *path, double tol, int threads)
{
    if (embed_gemm_fast())
        tol = fmin(tol, 1e-6);
    cairn_embedder *e = NULL;
    embed_opts o = {threads};
    CHECK_OK(embedder_load(path, &o, &e));
    if (!e)
        return;
    int dim = embedder_dim(e);
    size_t lens[N_TEXTS];
    for (int i = 0; i < N_TEXTS; i++)
        lens[i] = strlen(TEXTS[i]);
    float *out = cairn_calloc((size_t)N_TEXTS * dim, sizeof *out);
    embed_stats st;
    CHECK_OK(embedder_embed(e, NULL, TEXTS, lens, N_TEXTS, out, &st));
    CHECK_EQ_INT(st.n_texts, N_TEXTS);
    CHECK_EQ_INT(st.n_truncated, 0);
    for (int i = 0; i < N_TEXTS; i++) {
        double norm = 0;
        for (int k = 0; k < dim; k++)
            norm += (double)out[(size_t)i * dim + k] * out[(size_t)i * dim + k];
        CHECK_NEAR(norm, 1.0, 1e-5);
        if (have_ref) {
            double m = max_diff_ref(path, out + (size_t)i * dim, dim, TEXTS[i], embedder_n_ctx(e));
            CHECKF(m <= tol, "%s text %d: max |diff| %g > %g", path, i, m, tol);
            if (getenv("CAIRN_TEST_VERBOSE"))
                fprintf(stderr, "%s text %d: max |diff| %.3g (tol %g)\n", path, i, m, tol);
        }
    }
    cairn_free(out);
    embedder_free(e);
}

static void test_bert_f32(void)
{
    check_against_ref(write_model("bert-f32", "bert", QT_F32, 64, 128, 1, 0, 128), 1e-6, 2);
}

static void test_bert_pooling(void)
{
    const char *cls = write_model("bert-cls", "bert", QT_F32, 64, 128, 2, 0, 128);
    const char *last = write_model("bert-last", "bert", QT_F32, 64, 128, 3, 0, 128);
    cairn_embedder *e = NULL;
    CHECK_OK(embedder_load(cls, NULL, &e));
    if (e)
        CHECK_EQ_INT(embedder_pooling(e), EMBED_POOL_CLS);
    embedder_free(e);
    CHECK_OK(embedder_load(last, NULL, &e));
    if (e)
        CHECK_EQ_INT(embedder_pooling(e), EMBED_POOL_LAST);
    embedder_free(e);
    check_against_ref(cls, 1e-6, 1);
    check_against_ref(last, 1e-6, 2);
}

static void test_bert_quantized(void)
{
    static const struct { const char *name; uint32_t type; int embd; double tol; } Q[] = {
        {"bert-f16", QT_F16, 64, 1e-6},   {"bert-q8_0", QT_Q8_0, 64, 5e-3}, {"bert-q4_0", QT_Q4_0, 64, 5e-3},
        {"bert-q5_0", QT_Q5_0, 64, 5e-3}, {"bert-q4_k", QT_Q4_K, 256, 5e-3}, {"bert-q6_k", QT_Q6_K, 256, 5e-3},
    };
    for (size_t i = 0; i < CAIRN_ARRAY_LEN(Q); i++)
        check_against_ref(write_model(Q[i].name, "bert", Q[i].type, Q[i].embd, 2 * Q[i].embd, 1, 0, 128), Q[i].tol, 2);
}

static void test_nomic(void)
{
    const char *p = write_model("nomic-f32", "nomic-bert", QT_F32, 64, 96, 1, 0, 128);
    cairn_embedder *e = NULL;
    CHECK_OK(embedder_load(p, NULL, &e));
    if (e) {
        CHECK_EQ_STR(embedder_arch(e), "nomic-bert");
        CHECK_EQ_STR(embedder_query_prefix(e), "search_query: ");
        CHECK_EQ_STR(embedder_doc_prefix(e), "search_document: ");
    }
    embedder_free(e);
    check_against_ref(p, 1e-6, 2);
    check_against_ref(write_model("nomic-q8_0", "nomic-bert", QT_Q8_0, 64, 96, 2, 0, 128), 5e-3, 2);
}

static void rerank_case(const char *p);

static void test_rerank(void)
{
    rerank_case(write_model("rerank-f32", "bert", QT_F32, 64, 128, -1, 1, 128));
    /* a head wider than the hidden size (80 outputs > 2 x 32): the score is output 0 */
    rerank_case(write_model("rerank-wide", "bert", QT_F32, 32, 64, -1, 80, 128));
}

static void rerank_case(const char *p)
{
    cairn_embedder *e = NULL;
    CHECK_OK(embedder_load(p, NULL, &e));
    if (!e)
        return;
    CHECK_EQ_INT(embedder_pooling(e), EMBED_POOL_RANK);
    const char *q = "quick fox";
    size_t lens[N_TEXTS];
    for (int i = 0; i < N_TEXTS; i++)
        lens[i] = strlen(TEXTS[i]);
    float scores[N_TEXTS], alone;
    embed_stats st;
    CHECK_OK(embedder_rerank(e, NULL, q, strlen(q), TEXTS, lens, N_TEXTS, scores, &st));
    CHECK_EQ_INT(st.n_truncated, 0);
    CHECK_OK(embedder_rerank(e, NULL, q, strlen(q), TEXTS + 3, lens + 3, 1, &alone, NULL));
    CHECK(memcmp(&alone, &scores[3], sizeof alone) == 0);
    for (int i = 0; i < N_TEXTS && have_ref; i++) {
        int32_t qi[128], di[128], ids[256];
        int nq = ids_of(p, q, 128, qi), nd = ids_of(p, TEXTS[i], 128, di);
        int n = 0;
        for (int k = 0; k < nq; k++)   /* [CLS] q [SEP] */
            ids[n++] = qi[k];
        for (int k = 1; k < nd; k++)   /* d [SEP] */
            ids[n++] = di[k];
        cJSON *j = np_ref_json("rank", p, ids, n);
        const cJSON *s = j ? cJSON_GetObjectItem(j, "score") : NULL;
        CHECK(s != NULL);
        if (s)
            CHECK_NEAR(scores[i], s->valuedouble, 1e-6 * fmax(1.0, fabs(s->valuedouble)));
        cJSON_Delete(j);
    }
    embedder_free(e);
}

static uint64_t rng = 0x12345678abcdefull;
static unsigned rnd(unsigned n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % n);
}

/* The same text, alone or in any batch, any order, 1 or 2 threads: the same bits. */
static void test_batch_invariance(void)
{
    const char *p = write_model("bert-batch", "bert", QT_Q8_0, 64, 128, 1, 0, 64);
    enum { N = 60 };
    char *texts[N];
    size_t lens[N];
    for (int i = 0; i < N; i++) {
        int words = 1 + (int)rnd(40);
        texts[i] = cairn_malloc(400);
        int o = 0;
        for (int w = 0; w < words; w++) {
            int l = 1 + (int)rnd(5);
            for (int c = 0; c < l; c++)
                texts[i][o++] = "etaoinshrdlucmfw"[rnd(16)];
            texts[i][o++] = ' ';
        }
        texts[i][o] = 0;
        lens[i] = (size_t)o;
    }
    embed_opts two = {2};
    cairn_embedder *e1 = NULL, *e2 = NULL;
    CHECK_OK(embedder_load(p, NULL, &e1));
    CHECK_OK(embedder_load(p, &two, &e2));
    if (!e1 || !e2)
        return;
    int dim = embedder_dim(e1);
    float *all = cairn_calloc((size_t)N * dim, sizeof(float));
    float *rev = cairn_calloc((size_t)N * dim, sizeof(float));
    float one[512];
    embed_stats st;
    CHECK_OK(embedder_embed(e2, NULL, (const char *const *)texts, lens, N, all, &st));
    CHECK_EQ_INT(st.n_texts, N);
    CHECK(st.n_tokens > 1024);   /* more than one packed run */
    /* reversed order, own context, other embedder with 1 thread */
    const char *rt[N];
    size_t rl[N];
    for (int i = 0; i < N; i++) {
        rt[i] = texts[N - 1 - i];
        rl[i] = lens[N - 1 - i];
    }
    embed_ctx *c = NULL;
    CHECK_OK(embed_ctx_new(e1, &c));
    CHECK_OK(embedder_embed(e1, c, rt, rl, N, rev, NULL));
    int same_rev = 0, same_one = 0;
    for (int i = 0; i < N; i++) {
        same_rev += !memcmp(all + (size_t)i * dim, rev + (size_t)(N - 1 - i) * dim, (size_t)dim * sizeof(float));
        CHECK_OK(embedder_embed(i % 2 ? e1 : e2, NULL, (const char *const *)&texts[i], &lens[i], 1, one, NULL));
        same_one += !memcmp(all + (size_t)i * dim, one, (size_t)dim * sizeof(float));
    }
    CHECK_EQ_INT(same_rev, N);
    CHECK_EQ_INT(same_one, N);
    /* a context of another embedder is refused */
    CHECK(embedder_embed(e2, c, (const char *const *)texts, lens, 1, one, NULL) == CAIRN_ERR_INVALID);
    embed_ctx_free(c);
    for (int i = 0; i < N; i++)
        cairn_free(texts[i]);
    cairn_free(all);
    cairn_free(rev);
    embedder_free(e1);
    embedder_free(e2);
}

static void test_truncation(void)
{
    const char *p = write_model("bert-short", "bert", QT_F32, 64, 128, 1, 0, 16);
    cairn_embedder *e = NULL;
    CHECK_OK(embedder_load(p, NULL, &e));
    if (!e)
        return;
    CHECK_EQ_INT(embedder_n_ctx(e), 16);
    const char *t[3] = {"one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen",
                        "short one", "a b c d e f g h i j k l m n o p q r s t"};
    size_t l[3] = {strlen(t[0]), strlen(t[1]), strlen(t[2])};
    float out[3 * 64];
    embed_stats st;
    CHECK_OK(embedder_embed(e, NULL, t, l, 3, out, &st));
    CHECK_EQ_INT(st.n_truncated, 2);
    CHECK(st.n_tokens <= 3 * 16);
    if (have_ref)
        for (int i = 0; i < 3; i++) {
            double m = max_diff_ref(p, out + i * 64, 64, t[i], 16);
            CHECKF(m <= 1e-6, "text %d: %g", i, m);
        }
    embedder_free(e);
}

static void test_bad_input(void)
{
    gguf_testmodel_params p;
    gguf_testmodel_defaults(&p);
    const char *llama = model_path("llama");
    CHECK_OK(gguf_testmodel_write(llama, &p));
    cairn_embedder *e = NULL;
    CHECK(embedder_load(llama, NULL, &e) == CAIRN_ERR_UNSUPPORTED);
    CHECK(e == NULL);
    CHECK(strstr(cairn_last_error(), "not an encoder") != NULL);

    CHECK(embedder_load(model_path("does-not-exist"), NULL, &e) != CAIRN_OK);
    CHECK(strstr(cairn_last_error(), "does-not-exist") != NULL);

    /* every truncation of a good file is refused, none crashes */
    const char *good = write_model("bert-trunc-src", "bert", QT_Q8_0, 64, 128, 1, 0, 32);
    char *data;
    size_t len;
    CHECK_OK(cairn_file_read_all(good, 1 << 26, &data, &len));
    const char *cut = model_path("bert-cut");
    int refused = 0, tried = 0;
    for (size_t n = 0; n < len; n += len / 37 + 1) {
        CHECK_OK(cairn_file_write_atomic(cut, data, n));
        tried++;
        cairn_status st = embedder_load(cut, NULL, &e);
        refused += st == CAIRN_ERR_CORRUPT || st == CAIRN_ERR_IO;
        if (st == CAIRN_OK)
            embedder_free(e);
    }
    CHECK_EQ_INT(refused, tried);
    /* a missing tensor is named */
    cairn_free(data);

    CHECK_OK(embedder_load(good, NULL, &e));
    if (e) {
        float s;
        size_t l1 = 1;
        const char *d = "a";
        CHECK(embedder_rerank(e, NULL, "q", 1, &d, &l1, 1, &s, NULL) == CAIRN_ERR_UNSUPPORTED);
        CHECK(embedder_embed(e, NULL, NULL, NULL, -1, NULL, NULL) == CAIRN_ERR_INVALID);
        CHECK_OK(embedder_embed(e, NULL, NULL, NULL, 0, NULL, NULL));
    }
    embedder_free(e);
}

static void test_alloc_failures(void)
{
    const char *p = write_model("bert-alloc", "nomic-bert", QT_F32, 32, 64, 1, 0, 32);
    const char *t[2] = {"alpha beta", "gamma"};
    size_t l[2] = {10, 5};
    float ref[64], out[64];
    cairn_embedder *e = NULL;
    embed_opts two = {2};
    CHECK_OK(embedder_load(p, &two, &e));
    if (!e)
        return;
    CHECK_OK(embedder_embed(e, NULL, t, l, 2, ref, NULL));
    embedder_free(e);
    int ok_at = -1;
    for (long n = 0; n < 2000 && ok_at < 0; n++) {
        cairn_alloc_fail_after(n, false);
        e = NULL;
        cairn_status st = embedder_load(p, &two, &e);
        if (st == CAIRN_OK)
            st = embedder_embed(e, NULL, t, l, 2, out, NULL);
        cairn_alloc_fail_after(-1, false);
        if (st == CAIRN_OK) {
            CHECK(memcmp(out, ref, sizeof ref) == 0);
            ok_at = (int)n;
        } else {
            CHECKF(st == CAIRN_ERR_NOMEM, "allocation %ld: %s (%s)", n, cairn_status_str(st), cairn_last_error());
        }
        embedder_free(e);
    }
    CHECK(ok_at > 5);
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    kernels_init();
    dir = t_tmpdir("embed_synth");
    have_ref = np_ref_setup(__FILE__);
    if (!have_ref)
        fprintf(stderr, "note: python3 + numpy missing: reference comparisons skipped\n");
    RUN(test_bert_f32);
    RUN(test_bert_pooling);
    RUN(test_bert_quantized);
    RUN(test_nomic);
    RUN(test_rerank);
    RUN(test_batch_invariance);
    RUN(test_truncation);
    RUN(test_bad_input);
    RUN(test_alloc_failures);
    return t_done();
}
