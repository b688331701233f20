/* sample.c — penalties, top-k / top-p / min-p, temperature and a seeded draw. */
#include "infer/sample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SAMPLER_MAX_WINDOW 65536

typedef struct cand { int32_t id; float logit; float p; } cand;

struct cairn_sampler {
    sampler_params p;
    int n_vocab;
    cairn_rng rng;
    cand *c;            /* (n_vocab,) candidates */
    int32_t *counts;    /* (n_vocab,) occurrences inside the penalty window */
    int32_t *ring;      /* (penalty_last_n,) recent tokens */
    int ring_len, ring_pos;
};

/* ---- PRNG: xoshiro256**, seeded through splitmix64 ---- */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void rng_seed(cairn_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t rng_next(cairn_rng *r)
{
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

double rng_uniform(cairn_rng *r) { return (double)(rng_next(r) >> 11) * (1.0 / 9007199254740992.0); }

/* ---- construction ---- */

sampler_params sampler_params_default(void)
{
    return (sampler_params){.temp = 0.8f, .top_k = 40, .top_p = 0.95f, .min_p = 0.05f,
                            .repeat_penalty = 1.0f, .presence_penalty = 0.0f, .penalty_last_n = 64,
                            .seed = 0x5eed};
}

cairn_status sampler_new(const sampler_params *p, int n_vocab, cairn_sampler **out)
{
    *out = NULL;
    if (n_vocab <= 0)
        return cairn_fail(CAIRN_ERR_INVALID, "sampler: empty vocabulary");
    if (!(p->temp == p->temp) || !(p->top_p == p->top_p) || !(p->min_p == p->min_p) ||
        !(p->repeat_penalty > 0) || p->penalty_last_n < 0 || p->penalty_last_n > SAMPLER_MAX_WINDOW)
        return cairn_fail(CAIRN_ERR_INVALID, "sampler: invalid parameters");
    cairn_sampler *s = cairn_calloc(1, sizeof *s);
    if (!s)
        return cairn_fail(CAIRN_ERR_NOMEM, "sampler: out of memory");
    s->p = *p;
    s->n_vocab = n_vocab;
    s->c = cairn_calloc((size_t)n_vocab, sizeof *s->c);
    s->counts = cairn_calloc((size_t)n_vocab, sizeof *s->counts);
    s->ring = cairn_calloc((size_t)CAIRN_MAX(1, p->penalty_last_n), sizeof *s->ring);
    if (!s->c || !s->counts || !s->ring) {
        sampler_free(s);
        return cairn_fail(CAIRN_ERR_NOMEM, "sampler: out of memory");
    }
    rng_seed(&s->rng, p->seed);
    *out = s;
    return CAIRN_OK;
}

void sampler_free(cairn_sampler *s)
{
    if (!s)
        return;
    cairn_free(s->c);
    cairn_free(s->counts);
    cairn_free(s->ring);
    cairn_free(s);
}

void sampler_reset(cairn_sampler *s)
{
    memset(s->counts, 0, (size_t)s->n_vocab * sizeof *s->counts);
    s->ring_len = s->ring_pos = 0;
    rng_seed(&s->rng, s->p.seed);
}

void sampler_accept(cairn_sampler *s, int32_t id)
{
    int n = s->p.penalty_last_n;
    if (n <= 0 || id < 0 || id >= s->n_vocab)
        return;
    if (s->ring_len == n)
        s->counts[s->ring[s->ring_pos]]--;
    else
        s->ring_len++;
    s->ring[s->ring_pos] = id;
    s->ring_pos = (s->ring_pos + 1) % n;
    s->counts[id]++;
}

/* ---- sampling ---- */

static void apply_penalties(cairn_sampler *s, float *logits)
{
    const float rp = s->p.repeat_penalty, pp = s->p.presence_penalty;
    if (s->ring_len == 0 || (rp == 1.0f && pp == 0.0f))
        return;
    /* each distinct token in the window is penalized once */
    for (int i = 0; i < s->ring_len; i++) {
        int32_t id = s->ring[i];
        if (s->counts[id] <= 0)
            continue;
        float l = logits[id];
        if (rp != 1.0f)
            l = l > 0 ? l / rp : l * rp;
        logits[id] = l - pp;
        s->counts[id] = -s->counts[id];   /* mark done */
    }
    for (int i = 0; i < s->ring_len; i++)
        if (s->counts[s->ring[i]] < 0)
            s->counts[s->ring[i]] = -s->counts[s->ring[i]];
}

static int cand_desc(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->logit != y->logit)
        return x->logit > y->logit ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Min-heap on logit (ties: larger id is "smaller") to keep the k best. */
static bool worse(const cand *a, const cand *b)
{
    return a->logit < b->logit || (a->logit == b->logit && a->id > b->id);
}

static void sift_down(cand *h, int n, int i)
{
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && worse(&h[l], &h[m])) m = l;
        if (r < n && worse(&h[r], &h[m])) m = r;
        if (m == i)
            return;
        cand t = h[i]; h[i] = h[m]; h[m] = t;
        i = m;
    }
}

/* Fill s->c with the k best candidates sorted by descending logit; returns k. */
static int top_candidates(cairn_sampler *s, const float *logits, int k)
{
    const int n = s->n_vocab;
    cand *c = s->c;
    if (k <= 0 || k >= n) {
        for (int i = 0; i < n; i++)
            c[i] = (cand){i, logits[i], 0};
        qsort(c, (size_t)n, sizeof *c, cand_desc);
        return n;
    }
    for (int i = 0; i < k; i++)
        c[i] = (cand){i, logits[i], 0};
    for (int i = k / 2 - 1; i >= 0; i--)
        sift_down(c, k, i);
    for (int i = k; i < n; i++) {
        cand x = {i, logits[i], 0};
        if (worse(&c[0], &x)) {
            c[0] = x;
            sift_down(c, k, 0);
        }
    }
    qsort(c, (size_t)k, sizeof *c, cand_desc);
    return k;
}

/* p_i = softmax(logit_i / temp) over c[0..n) (sorted, so c[0] is the max). */
static void softmax_cands(cand *c, int n, float temp)
{
    double sum = 0;
    for (int i = 0; i < n; i++) {
        c[i].p = expf((c[i].logit - c[0].logit) / temp);
        sum += c[i].p;
    }
    for (int i = 0; i < n; i++)
        c[i].p = (float)(c[i].p / sum);
}

/* Without top-k, sorting the whole vocabulary (150k entries for some
 * models) per token would dominate. The candidates that top-p and min-p can
 * keep are found without it: min-p keeps exactly the logits >= max +
 * ln(min_p); top-p's nucleus lies within the best k as soon as their
 * probabilities (normalized over the whole vocabulary) reach top_p, so k
 * grows x4 from 256 until it does. Returns the count in s->c, sorted, with
 * top-p already applied, or 0 when no filter is active (then the draw needs
 * no sorting at all). */
static int untruncated_candidates(cairn_sampler *s, const float *logits)
{
    const sampler_params *p = &s->p;
    const int n = s->n_vocab;
    if (p->top_p >= 1.0f && p->min_p <= 0.0f)
        return 0;
    float mx = logits[0];
    for (int i = 1; i < n; i++)
        mx = logits[i] > mx ? logits[i] : mx;
    if (p->top_p >= 1.0f) {
        const float thr = mx + logf(p->min_p);
        int keep = 0;
        for (int i = 0; i < n; i++)
            keep += logits[i] >= thr;
        return top_candidates(s, logits, keep);
    }
    double z = 0;
    for (int i = 0; i < n; i++)
        z += expf(logits[i] - mx);
    for (int k = 256;; k *= 4) {
        int got = top_candidates(s, logits, k);
        double cum = 0;
        for (int i = 0; i < got; i++) {
            cum += expf(s->c[i].logit - mx) / z;
            if (cum >= p->top_p)
                return i + 1;              /* the nucleus, top-p applied */
        }
        if (got >= n)
            return got;
    }
}

/* Draw from softmax(logits / temp) over the whole vocabulary, in id order. */
static int32_t draw_full(cairn_sampler *s, const float *logits)
{
    const int n = s->n_vocab;
    const float t = s->p.temp;
    float mx = logits[0];
    for (int i = 1; i < n; i++)
        mx = logits[i] > mx ? logits[i] : mx;
    double z = 0;
    for (int i = 0; i < n; i++)
        z += expf((logits[i] - mx) / t);
    double u = rng_uniform(&s->rng) * z, cum = 0;
    for (int i = 0; i < n; i++) {
        cum += expf((logits[i] - mx) / t);
        if (u < cum)
            return i;
    }
    return n - 1;
}

int32_t sampler_sample(cairn_sampler *s, float *logits)
{
    apply_penalties(s, logits);
    const sampler_params *p = &s->p;
    if (p->temp <= 0) {
        int32_t best = 0;
        for (int i = 1; i < s->n_vocab; i++)
            if (logits[i] > logits[best])
                best = i;
        return best;
    }
    int n;
    bool top_p_done = false;
    if (p->top_k > 0 && p->top_k < s->n_vocab) {
        n = top_candidates(s, logits, p->top_k);
    } else {
        n = untruncated_candidates(s, logits);
        if (n == 0)
            return draw_full(s, logits);
        top_p_done = true;
    }
    cand *c = s->c;
    /* top-p and min-p act on the untempered distribution; temperature shapes the draw */
    if (p->top_p < 1.0f || p->min_p > 0.0f) {
        softmax_cands(c, n, 1.0f);
        if (p->top_p < 1.0f && !top_p_done) {
            double cum = 0;
            for (int i = 0; i < n; i++) {
                cum += c[i].p;
                if (cum >= p->top_p) {
                    n = i + 1;
                    break;
                }
            }
        }
        if (p->min_p > 0.0f) {
            float thr = c[0].p * p->min_p;
            int keep = 1;
            while (keep < n && c[keep].p >= thr)
                keep++;
            n = keep;
        }
    }
    softmax_cands(c, n, p->temp);
    double u = rng_uniform(&s->rng), cum = 0;
    for (int i = 0; i < n; i++) {
        cum += c[i].p;
        if (u < cum)
            return c[i].id;
    }
    return c[n - 1].id;
}
