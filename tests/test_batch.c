/*
 * test_batch.c — several sequences in one forward pass (infer/batch.h) give
 * each sequence the logits it gets alone: synthetic models (dense GQA Q8_0,
 * Q4_0, F32 and a MoE), prompts of different lengths prefilled in one pass
 * with decodes of other sequences, sequences joining and leaving between
 * steps. Tolerance: none. Every row of a batched product is the same dot
 * product as the one-row product (same kernel, same summation order), so
 * the logits are bit for bit those of the sequence alone.
 */
#include "gguf/testmodel.h"
#include "infer/batch.h"
#include "kernels/quant.h"
#include "t.h"

#define NSEQ 5
#define STEPS 12

static int argmax(const float *x, int n)
{
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b])
            b = i;
    return b;
}

/* Compare two logit vectors within the stated bound; return the max diff. */
static double logit_diff(const float *a, const float *b, int n)
{
    double mx = 0, d = 0;
    for (int i = 0; i < n; i++) {
        mx = fmax(mx, fabs(a[i]));
        d = fmax(d, fabs((double)a[i] - b[i]));
    }
    return mx > 0 ? d / mx : d;
}

static void run_model(const gguf_testmodel_params *p, const char *name)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s.gguf", t_tmpdir("batch"), name);
    CHECK_OK(gguf_testmodel_write(path, p));
    cairn_model *m = NULL;
    CHECK_OK(model_load(path, &m));
    if (!m)
        return;
    const int nv = m->hp.n_vocab;
    int32_t prompts[NSEQ][24];
    int plen[NSEQ];
    for (int i = 0; i < NSEQ; i++) {
        plen[i] = 3 + 4 * i;               /* 3, 7, 11, 15, 19 tokens */
        for (int t = 0; t < plen[i]; t++)
            prompts[i][t] = (int32_t)((37 * i + 11 * t + 5) % nv);
    }
    /* reference: each sequence alone, greedy */
    int32_t want_tok[NSEQ][STEPS];
    float *want = cairn_calloc((size_t)NSEQ * STEPS * nv, sizeof(float));
    session_opts so = session_opts_default();
    so.n_ctx = 64;
    so.n_threads = 2;
    for (int i = 0; i < NSEQ && want; i++) {
        cairn_session *s = NULL;
        CHECK_OK(session_new(m, &so, &s));
        float *lg = NULL;
        CHECK_OK(session_eval(s, prompts[i], plen[i], &lg));
        for (int k = 0; k < STEPS && lg; k++) {
            memcpy(want + ((size_t)i * STEPS + k) * nv, lg, (size_t)nv * sizeof(float));
            want_tok[i][k] = argmax(lg, nv);
            if (session_eval(s, &want_tok[i][k], 1, &lg) != CAIRN_OK)
                lg = NULL;
        }
        session_free(s);
    }
    /* batched: sequence i joins at step i (its whole prompt in that pass),
     * the others decode; sequence 0 is also the host */
    cairn_session *ss[NSEQ] = {0};
    for (int i = 0; i < NSEQ; i++)
        CHECK_OK(session_new(m, &so, &ss[i]));
    int done[NSEQ] = {0};
    int32_t last[NSEQ];
    double worst = 0;
    bool same_tokens = true;
    for (int step = 0; step < NSEQ + STEPS && want && ss[NSEQ - 1]; step++) {
        batch_seq bs[NSEQ];
        int idx[NSEQ], n = 0;
        for (int i = 0; i < NSEQ; i++) {
            if (step < i || done[i] >= STEPS)
                continue;   /* not joined yet, or left */
            if (step == i)
                bs[n] = (batch_seq){ss[i], prompts[i], plen[i]};
            else
                bs[n] = (batch_seq){ss[i], &last[i], 1};
            idx[n++] = i;
        }
        if (!n)
            break;
        CHECK_OK(batch_eval(ss[0], bs, n));
        for (int j = 0; j < n; j++) {
            int i = idx[j];
            const float *lg = session_logits(ss[i]);
            worst = fmax(worst, logit_diff(want + ((size_t)i * STEPS + done[i]) * nv, lg, nv));
            last[i] = argmax(lg, nv);
            same_tokens &= last[i] == want_tok[i][done[i]];
            last[i] = want_tok[i][done[i]];   /* follow the reference path */
            done[i]++;
        }
    }
    fprintf(stderr, "  %s: worst relative logit difference %.3g\n", name, worst);
    CHECKF(worst == 0, "%s: %g", name, worst);
    CHECK(same_tokens);
    for (int i = 0; i < NSEQ; i++)
        CHECK_EQ_INT(done[i], STEPS);

    /* errors leave every sequence as it was */
    int before = session_n_past(ss[1]);
    int32_t bad = nv;
    batch_seq e1[] = {{ss[1], &last[1], 1}, {ss[2], &bad, 1}};
    CHECK(batch_eval(ss[0], e1, 2) == CAIRN_ERR_INVALID);
    batch_seq e2[] = {{ss[1], &last[1], 1}, {ss[1], &last[1], 1}};
    CHECK(batch_eval(ss[0], e2, 2) == CAIRN_ERR_INVALID);
    int32_t many[64] = {0};
    batch_seq e3[] = {{ss[1], many, 64}};
    CHECK(batch_eval(ss[0], e3, 1) == CAIRN_ERR_TOO_LARGE);
    CHECK_EQ_INT(session_n_past(ss[1]), before);
    for (int i = 0; i < NSEQ; i++)
        session_free(ss[i]);
    cairn_free(want);
    model_free(m);
}

static void test_dense(void)
{
    gguf_testmodel_params p;
    gguf_testmodel_defaults(&p);
    p.n_head = 4;
    p.n_head_kv = 2;
    p.weight_type = QT_Q8_0;
    run_model(&p, "q8");
    p.weight_type = QT_Q4_0;
    p.tied_output = true;
    run_model(&p, "q4");
    p.weight_type = QT_F32;
    p.arch = "qwen2";
    run_model(&p, "qwen2");
}

static void test_moe(void)
{
    gguf_testmodel_params p;
    gguf_testmodel_defaults(&p);
    p.n_expert = 4;
    p.n_expert_used = 2;
    p.weight_type = QT_Q8_0;
    run_model(&p, "moe");
}

int main(void)
{
    RUN(test_dense);
    RUN(test_moe);
    return t_done();
}
