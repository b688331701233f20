/*
 * sample.h — choosing the next token from logits.
 *
 * Pipeline (each step optional, in this order, as the common engines do):
 *   repetition penalty and presence penalty over the last `penalty_last_n`
 *   accepted tokens → top-k → softmax at temperature → top-p (nucleus) →
 *   min-p → draw with the sampler's own PRNG (xoshiro256**, seeded).
 * temp <= 0 means greedy: the highest logit after penalties (ties go to the
 * lowest id), no randomness.
 *
 * All buffers are allocated once in sampler_new; sampling does not allocate.
 */
#ifndef CAIRN_SAMPLE_H
#define CAIRN_SAMPLE_H

#include "base/base.h"

typedef struct sampler_params {
    float temp;              /* <= 0: greedy */
    int top_k;               /* <= 0: off */
    float top_p;             /* >= 1: off */
    float min_p;             /* <= 0: off; keep tokens with p >= min_p * p_max */
    float repeat_penalty;    /* 1: off; > 1 divides positive / multiplies negative logits */
    float presence_penalty;  /* 0: off; subtracted once from every seen token */
    int penalty_last_n;      /* window of recent tokens the penalties look at (0: off) */
    uint64_t seed;
} sampler_params;

sampler_params sampler_params_default(void);   /* temp 0.8, top-k 40, top-p 0.95, min-p 0.05, no penalties */

typedef struct cairn_sampler cairn_sampler;

cairn_status sampler_new(const sampler_params *p, int n_vocab, cairn_sampler **out);
void sampler_free(cairn_sampler *s);
/* Pick a token; `logits` (n_vocab) is modified in place by the penalties. */
int32_t sampler_sample(cairn_sampler *s, float *logits);
/* Record a token (prompt or generated) for the penalties. */
void sampler_accept(cairn_sampler *s, int32_t id);
void sampler_reset(cairn_sampler *s);

/* The PRNG, exposed for tests: uniform in [0, 1). */
typedef struct cairn_rng { uint64_t s[4]; } cairn_rng;
void rng_seed(cairn_rng *r, uint64_t seed);
uint64_t rng_next(cairn_rng *r);
double rng_uniform(cairn_rng *r);

#endif
