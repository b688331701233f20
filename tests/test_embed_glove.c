/*
 * test_embed_glove.c — the shared glove-bert encoders (F16, Q8_0, Q4_K_M
 * with Q5_0/Q6_K/Q8_0 tensors) against llama.cpp's reference vectors
 * (ref-llamacpp-embeddings.<model>.json: 10 documents + 10 queries of
 * retrieval_eval.json, mean pooling, L2 norm).
 *
 * Tolerance per component of the unit vectors. The shared PROVENANCE
 * measured llama.cpp against an exact float64 forward at <= 7e-6 (F16) and
 * <= 2e-4 (Q8_0, Q4_K_M: llama.cpp rounds activations to F16 for F16 weights
 * and to Q8 for the others). Ours keeps float activations with AVX2 (the
 * float GEMM, error vs exact ~1e-7) and rounds them to Q8 like llama.cpp
 * without it, so ours vs llama.cpp is bounded by the sum of both errors:
 * 2e-5 for F16, 4e-4 for the quantized files (measured, float path: 7.3e-6,
 * 1.9e-4, 2.1e-4; Q8 path: 7.3e-6, 2.5e-5, 2.8e-5). The
 * query-document cosines must match within the same bounds and give the
 * reference top-1 document for every query (its top-1 accuracy is 0.8, two
 * queries miss: the ranking, wrong answers included, is reproduced).
 * Skipped (77) without ../shared.
 */
#include "model/embed.h"
#include "t.h"

#include <cjson/cJSON.h>

static void check_model(const char *shared, const char *name, double tol)
{
    char path[1024], ref[1024];
    snprintf(path, sizeof path, "%s/models/glove-bert/%s.gguf", shared, name);
    snprintf(ref, sizeof ref, "%s/models/glove-bert/ref-llamacpp-embeddings.%s.json", shared, name);
    char *js;
    size_t jl;
    CHECK_OK(cairn_file_read_all(ref, 1 << 24, &js, &jl));
    cJSON *j = js ? cJSON_ParseWithLength(js, jl) : NULL;
    cairn_free(js);
    CHECK(j != NULL);
    if (!j)
        return;
    const cJSON *items = cJSON_GetObjectItem(j, "docs_then_queries");
    int n = cJSON_GetArraySize(items);
    CHECK_EQ_INT(n, 20);
    const char *texts[20];
    size_t lens[20];
    for (int i = 0; i < n && i < 20; i++) {
        texts[i] = cJSON_GetObjectItem(cJSON_GetArrayItem(items, i), "text")->valuestring;
        lens[i] = strlen(texts[i]);
    }
    cairn_embedder *e = NULL;
    embed_opts o = {2};
    CHECK_OK(embedder_load(path, &o, &e));
    if (!e) {
        cJSON_Delete(j);
        return;
    }
    CHECK_EQ_STR(embedder_arch(e), "bert");
    CHECK_EQ_INT(embedder_pooling(e), EMBED_POOL_MEAN);
    int dim = embedder_dim(e);
    float *v = cairn_calloc((size_t)n * dim, sizeof *v);
    embed_stats st;
    CHECK_OK(embedder_embed(e, NULL, texts, lens, n, v, &st));
    uint64_t n_tok = 0;
    double worst = 0;
    for (int i = 0; i < n; i++) {
        const cJSON *it = cJSON_GetArrayItem(items, i);
        const cJSON *r = cJSON_GetObjectItem(it, "embedding_l2");
        n_tok += (uint64_t)cJSON_GetArraySize(cJSON_GetObjectItem(it, "ids"));
        CHECK_EQ_INT(cJSON_GetArraySize(r), dim);
        for (int k = 0; k < dim && k < cJSON_GetArraySize(r); k++)
            worst = fmax(worst, fabs(v[(size_t)i * dim + k] - cJSON_GetArrayItem(r, k)->valuedouble));
    }
    CHECKF(worst <= tol, "%s: max |diff| %g > %g", name, worst, tol);
    fprintf(stderr, "%s: max |ours - llama.cpp| = %.3g (tolerance %g)\n", name, worst, tol);
    CHECK_EQ_INT(st.n_tokens, n_tok);   /* same tokenization length as llama.cpp */
    /* cosines and top-1 per query (rows: queries 10..19, columns: documents 0..9) */
    const cJSON *cos = cJSON_GetObjectItem(j, "query_doc_cosine");
    const cJSON *top = cJSON_GetObjectItem(j, "top1_doc_per_query");
    for (int q = 0; q < 10; q++) {
        int best = -1;
        double bv = -2;
        for (int d = 0; d < 10; d++) {
            double c = 0;
            for (int k = 0; k < dim; k++)
                c += (double)v[(size_t)(10 + q) * dim + k] * v[(size_t)d * dim + k];
            CHECK_NEAR(c, cJSON_GetArrayItem(cJSON_GetArrayItem(cos, q), d)->valuedouble, 2 * tol + 1e-6);
            if (c > bv) {
                bv = c;
                best = d;
            }
        }
        CHECK_EQ_INT(best, cJSON_GetArrayItem(top, q)->valueint);
    }
    cairn_free(v);
    embedder_free(e);
    cJSON_Delete(j);
}

static const char *shared;
static void test_f16(void) { check_model(shared, "glove6B-100d-bert-15k-f16", 2e-5); }
static void test_q8_0(void) { check_model(shared, "glove6B-100d-bert-22k-d128-Q8_0", 4e-4); }
static void test_q4_k_m(void) { check_model(shared, "glove6B-100d-bert-22k-d128-Q4_K_M", 4e-4); }

int main(void)
{
    shared = cairn_test_shared_dir();
    char probe[1024];
    snprintf(probe, sizeof probe, "%s/models/glove-bert/retrieval_eval.json", shared ? shared : "");
    if (!shared || access(probe, R_OK) != 0)
        SKIP_ALL("glove-bert models not found under %s", shared ? shared : "(unset)");
    RUN(test_f16);
    RUN(test_q8_0);
    RUN(test_q4_k_m);
    return t_done();
}
