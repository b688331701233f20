/*
 * test_model.c — the llama forward pass against llama.cpp reference outputs
 * in ../shared/models (stories260K F32 / Q8_0 / Q4_0, llama-2-tiny-random F16,
 * and the stories260K Mixtral-layout MoE models: identity, distinct F32/Q8_0):
 * prompt ids, the full step-0 logit vector, top-5 logits at every greedy
 * step and the greedy continuation token for token.
 *
 * Tolerances: |ours - ref| <= atol + rtol * |ref| (logits are ~10-20).
 *   F32 and F16 weights: atol 5e-3, rtol 1e-3. We follow the reference's
 *     arithmetic (F16 KV cache with F16 query/probabilities, double RMSNorm
 *     sums). Measured worst: ~1e-4 with the scalar kernels, ~3e-3 with the
 *     SIMD ones (a last-bit difference upstream flips an F16 rounding of q
 *     or of a probability, which moves a logit by ~1e-3).
 *   Q8_0 / Q4_0 weights: atol 0.35. Both engines quantize activations to
 *     Q8_0 before each product; a perturbation of 1e-4 anywhere upstream
 *     flips some of those roundings, and the flips move logits by ~0.1-0.2
 *     (measured: our own F16 vs F32 KV cache differ by 0.17 on the Q8_0 model,
 *     0.006 on the F32 model). The numpy float64 reference is 0.13 away from
 *     llama.cpp for the same reason.
 *   Q8_0 KV cache (F32 model): atol 0.6 (measured 0.41: the cache quantization
 *     error, amplified by this small, sharp model).
 * Greedy tokens must be identical at every step; the one exception is a
 * tie: where the reference's pick and ours are within the logit tolerance
 * of each other (tie_tol; 0 for F32/F16, so no exception there), ours may
 * differ. The reference token is fed back at every step (teacher forcing),
 * so every later step is still checked; ties are counted and printed.
 */
#include "gguf/testmodel.h"
#include "infer/session.h"
#include "infer/generate.h"
#include "t.h"
#include "tokenizer/tokenizer.h"

#include <cjson/cJSON.h>

typedef struct ref_model {
    const char *model, *ref;
    double atol, rtol, tie_tol;
} ref_model;

static const ref_model REFS[] = {
    {"stories260K/stories260K.gguf", "stories260K/ref-llamacpp-greedy.stories260K.json", 5e-3, 1e-3, 0},
    {"stories260K/stories260K-Q8_0.gguf", "stories260K/ref-llamacpp-greedy.stories260K-Q8_0.json", 0.35, 0, 0.35},
    {"stories260K/stories260K-Q4_0.gguf", "stories260K/ref-llamacpp-greedy.stories260K-Q4_0.json", 0.35, 0, 0.35},
    {"llama-2-tiny-random/llama-2-tiny-random.gguf", "llama-2-tiny-random/ref-llamacpp-greedy.json", 5e-3, 1e-3, 0},
    /* MoE (Mixtral layout, 4 experts, top-2): the identity model must equal
     * the DENSE model's reference (experts are permuted copies of its FFN,
     * so any routing gives the same output); the distinct ones their own. */
    {"stories260K-moe/stories260K-moe4x-top2-identity.gguf", "stories260K/ref-llamacpp-greedy.stories260K.json", 5e-3, 1e-3, 0},
    {"stories260K-moe/stories260K-moe4x-top2-identity.gguf", "stories260K-moe/ref-llamacpp-greedy.moe-identity.json", 5e-3, 1e-3, 0},
    {"stories260K-moe/stories260K-moe4x-top2-distinct.gguf", "stories260K-moe/ref-llamacpp-greedy.moe-distinct.json", 5e-3, 1e-3, 0},
    {"stories260K-moe/stories260K-moe4x-top2-distinct-Q8_0.gguf", "stories260K-moe/ref-llamacpp-greedy.moe-distinct-Q8_0.json", 0.35, 0, 0.35},
};
/* stories260K F32 and tiny-random with a Q8_0 KV cache */
static const ref_model REFS_KVQ8[] = {
    {"stories260K/stories260K.gguf", "stories260K/ref-llamacpp-greedy.stories260K.json", 0.6, 0, 0.6},
    {"llama-2-tiny-random/llama-2-tiny-random.gguf", "llama-2-tiny-random/ref-llamacpp-greedy.json", 0.6, 0, 0.6},
};

static const char *shared;

static cJSON *load_json(const char *rel)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/models/%s", shared, rel);
    char *text;
    size_t len;
    if (cairn_file_read_all(path, 64u << 20, &text, &len) != CAIRN_OK)
        return NULL;
    cJSON *j = cJSON_Parse(text);
    cairn_free(text);
    return j;
}

static cairn_status open_model(const char *rel, cairn_model **m)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/models/%s", shared, rel);
    return model_load(path, m);
}

static int32_t argmax(const float *x, int n)
{
    int32_t b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b])
            b = i;
    return b;
}

static int json_ids(const cJSON *arr, int32_t *out, int cap)
{
    int n = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, arr) {
        if (n < cap)
            out[n] = (int32_t)e->valuedouble;
        n++;
    }
    return n;
}

/* Worst |a-b| / (atol + rtol |b|): <= 1 passes. */
static double err_ratio(double a, double b, const ref_model *r) { return fabs(a - b) / (r->atol + r->rtol * fabs(b)); }

static void check_reference(const ref_model *r, uint32_t kv_type, int n_threads, int n_batch, bool check_logits)
{
    cairn_model *m = NULL;
    cairn_tokenizer *tok = NULL;
    cJSON *ref = load_json(r->ref);
    CHECKF(ref != NULL, "%s", r->ref);
    CHECK_OK(open_model(r->model, &m));
    if (!m || !ref)
        goto out;
    CHECK_OK(tokenizer_load(m->gguf, &tok));
    if (!tok)
        goto out;
    double worst0 = 0, worst_top = 0;
    int n_prompts = 0, n_tokens_ok = 0, n_tokens = 0, n_ties = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, ref) {
        const char *prompt = cJSON_GetObjectItem(c, "prompt")->valuestring;
        int32_t want_ids[256], ids[256];
        int n_want = json_ids(cJSON_GetObjectItem(c, "prompt_ids"), want_ids, 256);
        size_t n_ids = 0;
        CHECK_OK(tokenizer_encode(tok, prompt, strlen(prompt), true, false, ids, 256, &n_ids));
        CHECKF((int)n_ids == n_want && !memcmp(ids, want_ids, n_ids * sizeof *ids), "%s: prompt ids of '%s'", r->model, prompt);

        session_opts so = session_opts_default();
        so.n_ctx = 512, so.kv_type = kv_type, so.n_threads = n_threads, so.n_batch = n_batch;
        cairn_session *s = NULL;
        CHECK_OK(session_new(m, &so, &s));
        if (!s)
            break;
        float *logits = NULL;
        CHECK_OK(session_eval(s, want_ids, n_want, &logits));
        if (!logits) {
            session_free(s);
            break;
        }
        const int nv = m->hp.n_vocab;
        const cJSON *l0 = cJSON_GetObjectItem(c, "logits_step0");
        CHECK_EQ_INT(cJSON_GetArraySize(l0), nv);
        if (check_logits) {
            int i = 0;
            const cJSON *e;
            cJSON_ArrayForEach(e, l0) {
                if (i < nv)
                    worst0 = fmax(worst0, err_ratio(logits[i], e->valuedouble, r));
                i++;
            }
        }
        int32_t want_gen[256];
        int n_gen = json_ids(cJSON_GetObjectItem(c, "generated_ids"), want_gen, 256);
        const cJSON *steps = cJSON_GetObjectItem(c, "steps"), *st;
        int step = 0;
        bool same = true;
        cJSON_ArrayForEach(st, steps) {
            int32_t next = (int32_t)cJSON_GetObjectItem(st, "next")->valuedouble;
            if (check_logits) {
                const cJSON *t5;
                cJSON_ArrayForEach(t5, cJSON_GetObjectItem(st, "top5")) {
                    int id = (int)cJSON_GetArrayItem(t5, 0)->valuedouble;
                    if (id >= 0 && id < nv)
                        worst_top = fmax(worst_top, err_ratio(logits[id], cJSON_GetArrayItem(t5, 1)->valuedouble, r));
                }
            }
            int32_t got = argmax(logits, nv);
            n_tokens++;
            if (got == next) {
                n_tokens_ok++;
            } else if (next >= 0 && next < nv && logits[got] - logits[next] <= r->tie_tol) {
                n_ties++;
                fprintf(stderr, "  tie: '%s' step %d: ours %d (%.4f), ref %d (%.4f)\n", prompt, step, got,
                        logits[got], next, logits[next]);
            } else {
                fprintf(stderr, "  '%s' step %d: got %d (%.4f) want %d (%.4f)\n", prompt, step, got, logits[got],
                        next, next >= 0 && next < nv ? logits[next] : NAN);
                same = false;
            }
            if (step < n_gen)
                CHECK_EQ_INT(want_gen[step], next);
            step++;
            if (step == n_gen)
                break;
            CHECK_OK(session_eval(s, &next, 1, &logits));   /* teacher forcing */
            if (!logits)
                break;
        }
        CHECKF(same, "%s: greedy continuation of '%s'", r->model, prompt);
        session_free(s);
        n_prompts++;
    }
    fprintf(stderr, "%s kv=%s threads=%d batch=%d: %d prompts, %d/%d greedy tokens equal, %d ties",
            r->model, kv_type == QT_F16 ? "f16" : kv_type == QT_Q8_0 ? "q8_0" : "f32", n_threads, n_batch,
            n_prompts, n_tokens_ok, n_tokens, n_ties);
    if (check_logits)
        fprintf(stderr, ", worst logit error %.3f (step 0 all logits) / %.3f (top-5 every step) of tolerance",
                worst0, worst_top);
    fputc('\n', stderr);
    CHECK(n_prompts > 0);
    CHECKF(worst0 <= 1.0, "%s: step-0 logits outside tolerance", r->model);
    CHECKF(worst_top <= 1.0, "%s: top-5 logits outside tolerance", r->model);
out:
    tokenizer_free(tok);
    model_free(m);
    cJSON_Delete(ref);
}

static void test_references(void)
{
    for (size_t i = 0; i < CAIRN_ARRAY_LEN(REFS); i++)
        check_reference(&REFS[i], QT_F16, 2, 0, true);
}

/* Prompt split into several batches (and odd thread counts) gives the same greedy text. */
static void test_batches_threads(void)
{
    check_reference(&REFS[0], QT_F16, 1, 3, true);
    check_reference(&REFS[2], QT_F16, 3, 1, true);
}

/* The Q8_0 KV cache: same greedy tokens up to ties, logits within its own tolerance. */
static void test_kv_q8_0(void)
{
    for (size_t i = 0; i < CAIRN_ARRAY_LEN(REFS_KVQ8); i++)
        check_reference(&REFS_KVQ8[i], QT_Q8_0, 2, 0, true);
}

/* Batched, incremental and chunked evaluation agree. */
static void test_incremental(void)
{
    cairn_model *m = NULL;
    CHECK_OK(open_model(REFS[0].model, &m));
    if (!m)
        return;
    const int32_t ids[] = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298};
    const int n = (int)CAIRN_ARRAY_LEN(ids), nv = m->hp.n_vocab;
    float *a = cairn_malloc((size_t)nv * sizeof *a);
    session_opts so = session_opts_default();
    so.n_ctx = 64;
    cairn_session *s = NULL;
    CHECK_OK(session_new(m, &so, &s));
    float *l;
    CHECK_OK(session_eval(s, ids, n, &l));
    memcpy(a, l, (size_t)nv * sizeof *a);
    session_truncate(s, 0);
    for (int i = 0; i < n; i++)
        CHECK_OK(session_eval(s, ids + i, 1, &l));
    double worst = 0;
    for (int i = 0; i < nv; i++)
        worst = fmax(worst, fabs(l[i] - a[i]));
    CHECKF(worst < 1e-3, "batched vs one by one: %g", worst);
    /* truncate and re-evaluate the tail */
    session_truncate(s, 4);
    CHECK_EQ_INT(session_n_past(s), 4);
    CHECK_OK(session_eval(s, ids + 4, n - 4, &l));
    worst = 0;
    for (int i = 0; i < nv; i++)
        worst = fmax(worst, fabs(l[i] - a[i]));
    CHECKF(worst < 1e-3, "truncate + continue: %g", worst);
    /* errors leave the session usable */
    int32_t bad = nv;
    CHECK(session_eval(s, &bad, 1, &l) == CAIRN_ERR_INVALID);
    int32_t many[64] = {0};
    CHECK(session_eval(s, many, 64, &l) == CAIRN_ERR_TOO_LARGE);
    CHECK_EQ_INT(session_n_past(s), n);
    session_free(s);
    cairn_free(a);
    model_free(m);
}

/* Weights copied out of the file (huge-page memory) and weights read from
 * the mapping give bit-identical logits; the copy really is a copy, and an
 * untied token-embedding table stays in the mapping. */
static void test_weight_placement(void)
{
    static const char *const files[] = {"stories260K/stories260K.gguf", "stories260K/stories260K-Q4_0.gguf",
                                        "llama-2-tiny-random/llama-2-tiny-random.gguf"};
    const int32_t ids[] = {1, 403, 407, 261, 378, 432, 383, 286};
    for (size_t f = 0; f < CAIRN_ARRAY_LEN(files); f++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/models/%s", shared, files[f]);
        cairn_model *mm = NULL, *mc = NULL;
        CHECK_OK(model_load_ex(path, MODEL_WEIGHTS_MAPPED, &mm));
        CHECK_OK(model_load_ex(path, MODEL_WEIGHTS_COPY, &mc));
        if (!mm || !mc) {
            model_free(mm);
            model_free(mc);
            continue;
        }
        CHECK_EQ_INT(model_copied_bytes(mm), 0);
        CHECK(model_copied_bytes(mc) > 0);
        const uint8_t *lo = mc->wmem, *hi = mc->wmem + mc->wmem_size;
        const uint8_t *wq = mc->layers[0].wq.data, *wd = mc->layers[mc->hp.n_layer - 1].ffn_down.data;
        CHECKF(wq >= lo && wq < hi && wd >= lo && wd < hi, "%s: layer weights not in the copy", files[f]);
        CHECK(mm->layers[0].wq.data != mc->layers[0].wq.data);
        const uint8_t *te = mc->tok_embd.data, *out = mc->output.data;
        if (mc->tied_output)
            CHECK(te >= lo && te < hi);
        else
            CHECKF(!(te >= lo && te < hi) && out >= lo && out < hi, "%s: embedding copied or output not", files[f]);
        session_opts so = session_opts_default();
        so.n_ctx = 32;
        cairn_session *sm = NULL, *sc = NULL;
        CHECK_OK(session_new(mm, &so, &sm));
        CHECK_OK(session_new(mc, &so, &sc));
        float *lm = NULL, *lc = NULL;
        if (sm && sc) {
            int n = (int)CAIRN_ARRAY_LEN(ids);
            CHECK_OK(session_eval(sm, ids, n, &lm));
            CHECK_OK(session_eval(sc, ids, n, &lc));
            if (lm && lc)
                CHECKF(!memcmp(lm, lc, (size_t)mm->hp.n_vocab * sizeof *lm), "%s: logits differ", files[f]);
            CHECK_OK(session_eval(sm, ids, 1, &lm));   /* decode path too */
            CHECK_OK(session_eval(sc, ids, 1, &lc));
            if (lm && lc)
                CHECKF(!memcmp(lm, lc, (size_t)mm->hp.n_vocab * sizeof *lm), "%s: decode logits differ", files[f]);
        }
        session_free(sm);
        session_free(sc);
        model_free(mm);
        model_free(mc);
    }
}

/* Evaluate ids with m and return a copy of the last logits (caller frees). */
static float *eval_logits(cairn_model *m, const int32_t *ids, int n)
{
    session_opts so = session_opts_default();
    so.n_ctx = 32;
    so.n_threads = 2;
    cairn_session *s = NULL;
    float *l = NULL, *out = NULL;
    if (session_new(m, &so, &s) == CAIRN_OK && session_eval(s, ids, n, &l) == CAIRN_OK &&
        session_eval(s, ids, 1, &l) == CAIRN_OK && (out = cairn_malloc((size_t)m->hp.n_vocab * sizeof *out)))
        memcpy(out, l, (size_t)m->hp.n_vocab * sizeof *out);
    session_free(s);
    return out;
}

/* MODEL_WEIGHTS_MAP_HUGE on a model with whole 2 MiB pages of weights: the
 * file mapping on 2 MiB pages where the file system keeps 2 MiB folios
 * (then smaps must show them), else the huge-page copy or, without
 * transparent huge pages, the plain mapping; logits equal the plain
 * mapping's either way, first with the file freshly written (cached in
 * small folios: it is dropped and re-read), then again; AUTO copies. */
static void test_weights_map_huge(void)
{
    const char *dir = t_tmpdir("weights_auto");
    char path[1200];
    snprintf(path, sizeof path, "%s/dense.gguf", dir);
    gguf_testmodel_params p;
    gguf_testmodel_defaults(&p);
    p.n_embd = 512;
    p.n_ff = 1024;
    p.n_layer = 4;
    p.n_head = 8;         /* F32: 4 layers x 2.5 MiB of FFN + 4 MiB of attention */
    CHECK_OK(gguf_testmodel_write(path, &p));
    const int32_t ids[] = {1, 40, 41, 200, 77, 9};
    cairn_model *mm = NULL;
    CHECK_OK(model_load_ex(path, MODEL_WEIGHTS_MAPPED, &mm));
    float *want = mm ? eval_logits(mm, ids, 6) : NULL;
    CHECK(want != NULL);
    model_free(mm);      /* pages this process maps cannot be dropped from the cache */
    for (int round = 0; round < 3 && want; round++) {
        cairn_model *ma = NULL;
        CHECK_OK(model_load_ex(path, round < 2 ? MODEL_WEIGHTS_MAP_HUGE : MODEL_WEIGHTS_AUTO, &ma));
        if (!ma)
            break;
        if (round == 2)
            CHECK(!ma->huge_mapped);
        float *got = eval_logits(ma, ids, 6);
        CHECK(got && !memcmp(got, want, (size_t)ma->hp.n_vocab * sizeof *got));
        const char *how = ma->huge_mapped ? "mapped on 2 MiB pages" : ma->wmem ? "copied" : "plain mapping";
        fprintf(stderr, "  round %d: weights %s, %zu bytes on 2 MiB pages\n", round, how, model_huge_bytes(ma));
        if (ma->huge_mapped)
            CHECKF(model_huge_bytes(ma) >= ((size_t)4 << 20), "huge mapping reports %zu bytes", model_huge_bytes(ma));
        CHECK(!(ma->huge_mapped && ma->wmem));
        if (ma->wmem) {   /* after the 2 MiB folios of rounds 0-1: the copy leaves the mapping all but untouched */
            uint64_t r = cairn_smaps_bytes(gguf_map(ma->gguf), gguf_file_size(ma->gguf), "Rss");
            CHECKF(r < ((uint64_t)1 << 20), "copied weights, yet %llu bytes of the file mapping are resident", (unsigned long long)r);
        }
        cairn_free(got);
        model_free(ma);
    }
    cairn_free(want);
}

/* The model layer's host decisions as pure functions: every branch, on any host. */
static void test_host_decisions(void)
{
    CHECK(model_thp_usable(NULL, "always [madvise] never\n"));
    CHECK(model_thp_usable(NULL, "[always] madvise never\n"));
    CHECK(!model_thp_usable(NULL, "always madvise [never]\n"));
    CHECK(!model_thp_usable(NULL, ""));                       /* no /sys file */
    CHECK(!model_thp_usable(NULL, NULL));
    CHECK(!model_thp_usable("0", "[always] madvise never"));
    CHECK(!model_thp_usable("never", "[always] madvise never"));
    CHECK(model_thp_usable("1", "always madvise [never]"));
    CHECK(model_thp_usable("on", ""));
    CHECK(model_thp_usable("bogus", "always [madvise] never"));   /* not a switch value: /sys decides */
    CHECK(!model_thp_usable("bogus", "always madvise [never]"));
    CHECK(model_copy_fits(100, true, 1000));
    CHECK(model_copy_fits(800, true, 1000));
    CHECK(!model_copy_fits(801, true, 1000));                 /* more than 80% of MemAvailable */
    CHECK(!model_copy_fits(0, true, 1000));
    CHECK(model_copy_fits((size_t)1 << 30, false, 0));        /* MemAvailable unknown: copy */
}

/* Logits of a prompt and then 3 greedy decode steps, concatenated (caller frees). */
static float *run_steps(const cairn_model *m, int n_threads, bool *streams)
{
    static const int32_t prompt[] = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298};
    const int nv = m->hp.n_vocab, n_steps = 4;
    float *all = cairn_malloc((size_t)nv * n_steps * sizeof *all);
    session_opts so = session_opts_default();
    so.n_ctx = 64;
    so.n_threads = n_threads;
    cairn_session *s = NULL;
    float *l = NULL;
    bool ok = all && session_new(m, &so, &s) == CAIRN_OK &&
              session_eval(s, prompt, (int)CAIRN_ARRAY_LEN(prompt), &l) == CAIRN_OK;
    for (int k = 0; ok && k < n_steps; k++) {
        memcpy(all + (size_t)k * nv, l, (size_t)nv * sizeof *l);
        int32_t next = argmax(l, nv);
        ok = k + 1 == n_steps || session_eval(s, &next, 1, &l) == CAIRN_OK;
    }
    if (streams)
        *streams = session_streams(s);
    session_free(s);
    if (!ok) {
        cairn_free(all);
        return NULL;
    }
    return all;
}

/* Each branch of a host decision gives bit-identical logits (prompt and
 * decode): 1, 2 and 3 threads; the decode kernels' stream mode on and off
 * (CAIRN_LLC_BYTES forces the last-level cache size below and above the
 * file); weights copied to huge pages or left mapped (CAIRN_THP forces
 * transparent huge pages on and off for MODEL_WEIGHTS_AUTO). Runs at the
 * selected kernel level; the @level test entries cover the others. */
static void test_host_branches(void)
{
    static const char *const files[] = {"stories260K/stories260K-Q8_0.gguf", "stories260K/stories260K-Q4_0.gguf",
                                        "llama-2-tiny-random/llama-2-tiny-random.gguf", "stories260K/stories260K.gguf"};
    for (size_t f = 0; f < CAIRN_ARRAY_LEN(files); f++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/models/%s", shared, files[f]);
        cairn_model *mapped = NULL, *copied = NULL;
        setenv("CAIRN_THP", "0", 1);
        CHECK_OK(model_load_ex(path, MODEL_WEIGHTS_AUTO, &mapped));
        setenv("CAIRN_THP", "1", 1);
        CHECK_OK(model_load_ex(path, MODEL_WEIGHTS_AUTO, &copied));
        unsetenv("CAIRN_THP");
        if (!mapped || !copied) {
            model_free(mapped);
            model_free(copied);
            continue;
        }
        CHECKF(model_copied_bytes(mapped) == 0, "%s: CAIRN_THP=0 yet AUTO copied the weights", files[f]);
        CHECKF(model_copied_bytes(copied) > 0, "%s: CAIRN_THP=1 yet AUTO left the weights mapped", files[f]);
        size_t bytes = (size_t)mapped->hp.n_vocab * 4 * sizeof(float);
        bool st = true;
        setenv("CAIRN_LLC_BYTES", "1G", 1);
        float *want = run_steps(mapped, 1, &st);
        CHECK(want != NULL && !st);
        struct { const cairn_model *m; int threads; const char *llc; bool streams; } runs[] = {
            {copied, 1, "1G", false}, {mapped, 2, "1G", false}, {copied, 3, "1G", false},
            {mapped, 1, "1", true}, {copied, 2, "1", true}, {mapped, 3, "1K", true},
        };
        for (size_t r = 0; r < CAIRN_ARRAY_LEN(runs) && want; r++) {
            setenv("CAIRN_LLC_BYTES", runs[r].llc, 1);
            float *got = run_steps(runs[r].m, runs[r].threads, &st);
            CHECKF(got && !memcmp(got, want, bytes), "%s: logits differ with %s weights, %d threads, LLC %s",
                   files[f], runs[r].m == copied ? "copied" : "mapped", runs[r].threads, runs[r].llc);
            CHECKF(st == runs[r].streams, "%s: CAIRN_LLC_BYTES=%s: stream mode %d", files[f], runs[r].llc, st);
            cairn_free(got);
        }
        unsetenv("CAIRN_LLC_BYTES");
        cairn_free(want);
        model_free(mapped);
        model_free(copied);
    }
}

static void test_generate_stop(void)
{
    cairn_model *m = NULL;
    cairn_tokenizer *tok = NULL;
    CHECK_OK(open_model(REFS[0].model, &m));
    if (!m)
        return;
    CHECK_OK(tokenizer_load(m->gguf, &tok));
    session_opts so = session_opts_default();
    so.n_ctx = 128;
    cairn_session *s = NULL;
    CHECK_OK(session_new(m, &so, &s));
    sampler_params sp = sampler_params_default();
    sp.temp = 0;
    cairn_sampler *smp = NULL;
    CHECK_OK(sampler_new(&sp, m->hp.n_vocab, &smp));
    const int32_t prompt[] = {1, 403, 407, 261, 378};
    /* "Once upon a time" -> ", there was a little girl named Lily. She loved ..." */
    gen_params gp = {.n_predict = 40};
    gen_result r;
    CHECK_OK(generate(s, tok, smp, prompt, 5, &gp, &r));
    CHECK(r.text && !strncmp(r.text, ", there was a little girl named Lily.", 37));
    CHECK_EQ_INT(r.n_ids, 40);
    CHECK(r.stop == GEN_STOP_LENGTH);
    gen_result_free(&r);

    const char *stops[] = {"zzz", "named Li"};
    gp = (gen_params){.n_predict = 40, .stop = stops, .n_stop = 2};
    session_truncate(s, 0);
    sampler_reset(smp);
    CHECK_OK(generate(s, tok, smp, prompt, 5, &gp, &r));
    CHECK_EQ_STR(r.text, ", there was a little girl ");
    CHECK(r.stop == GEN_STOP_STRING);
    gen_result_free(&r);
    sampler_free(smp);
    session_free(s);
    tokenizer_free(tok);
    model_free(m);
}

static bool collect(void *ud, const char *text, size_t len)
{
    cairn_buf *b = ud;
    return cairn_buf_append(b, text, len) == CAIRN_OK;
}

/* Streamed pieces concatenate to the final text; held-back stop prefixes are never emitted. */
static void test_stream(void)
{
    cairn_model *m = NULL;
    cairn_tokenizer *tok = NULL;
    CHECK_OK(open_model(REFS[0].model, &m));
    if (!m)
        return;
    CHECK_OK(tokenizer_load(m->gguf, &tok));
    session_opts so = session_opts_default();
    so.n_ctx = 128;
    cairn_session *s = NULL;
    CHECK_OK(session_new(m, &so, &s));
    sampler_params sp = sampler_params_default();
    sp.seed = 3;
    cairn_sampler *smp = NULL;
    CHECK_OK(sampler_new(&sp, m->hp.n_vocab, &smp));
    const int32_t prompt[] = {1, 403, 407, 261, 378};
    const char *stops[] = {"the park", "."};
    for (int variant = 0; variant < 2; variant++) {
        cairn_buf b;
        cairn_buf_init(&b, 0);
        gen_params gp = {.n_predict = 60, .stop = stops, .n_stop = variant, .on_text = collect, .ud = &b};
        gen_result r;
        session_truncate(s, 0);
        CHECK_OK(generate(s, tok, smp, prompt, 5, &gp, &r));
        CHECK_EQ_STR(b.len ? b.data : "", r.text);
        if (variant == 1)
            CHECK(strstr(r.text, "the park") == NULL);
        gen_result_free(&r);
        cairn_buf_free(&b);
    }
    sampler_free(smp);
    session_free(s);
    tokenizer_free(tok);
    model_free(m);
}

/* Every allocation failure while loading and creating a session is clean. */
static void test_alloc_failures(void)
{
    for (long n = 0; n < 400; n++) {
        cairn_model *m = NULL;
        cairn_session *s = NULL;
        cairn_alloc_fail_after(n, false);
        cairn_status st = open_model(REFS[0].model, &m);
        if (st == CAIRN_OK) {
            session_opts so = session_opts_default();
            so.n_ctx = 32;
            so.n_threads = 2;
            st = session_new(m, &so, &s);
        }
        bool injected = cairn_alloc_injected_failures() > 0;
        cairn_alloc_fail_after(-1, false);
        if (st != CAIRN_OK)
            CHECKF(st == CAIRN_ERR_NOMEM || st == CAIRN_ERR_IO, "n=%ld: %s", n, cairn_last_error());
        session_free(s);
        model_free(m);
        if (!injected)
            break;
    }
}

static void test_bad_files(void)
{
    cairn_model *m = (cairn_model *)1;
    CHECK(model_load("/nonexistent/model.gguf", &m) != CAIRN_OK);
    CHECK(m == NULL);
    /* a non-llama architecture is refused with a clear error */
    char path[1024];
    snprintf(path, sizeof path, "%s/models/glove-bert/glove6B-100d-bert-15k-f16.gguf", shared);
    CHECK(model_load(path, &m) == CAIRN_ERR_UNSUPPORTED);
    CHECK(strstr(cairn_last_error(), "bert") != NULL);
}

int main(void)
{
    RUN(test_host_decisions);
    shared = cairn_test_shared_dir();
    if (!shared)
        SKIP_ALL("shared test assets absent");
    RUN(test_references);
    RUN(test_batches_threads);
    RUN(test_kv_q8_0);
    RUN(test_incremental);
    RUN(test_weight_placement);
    RUN(test_weights_map_huge);
    RUN(test_host_branches);
    RUN(test_generate_stop);
    RUN(test_stream);
    RUN(test_alloc_failures);
    RUN(test_bad_files);
    return t_done();
}
