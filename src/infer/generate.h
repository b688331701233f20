/*
 * generate.h — the generation loop: evaluate the prompt in batches, then
 * sample, stream and feed back one token at a time until n_predict tokens,
 * an end-of-generation token, a stop string, or the callback says stop.
 *
 * Streaming: the callback receives text as it becomes final. Text that could
 * still turn out to be the start of a stop string is held back until it is
 * decided; a stop string and everything after it is never emitted.
 */
#ifndef CAIRN_GENERATE_H
#define CAIRN_GENERATE_H

#include "infer/sample.h"
#include "infer/session.h"
#include "tokenizer/tokenizer.h"

/* Return false to stop generating. */
typedef bool (*gen_stream_fn)(void *ud, const char *text, size_t len);

typedef enum { GEN_STOP_LENGTH, GEN_STOP_EOG, GEN_STOP_STRING, GEN_STOP_CALLBACK, GEN_STOP_CONTEXT } gen_stop;

typedef struct gen_params {
    int n_predict;                 /* most tokens to generate (> 0) */
    const char *const *stop;       /* stop strings (may be NULL) */
    int n_stop;
    bool ignore_eog;               /* keep going past end-of-generation tokens (bench) */
    gen_stream_fn on_text;         /* may be NULL */
    void *ud;
} gen_params;

typedef struct gen_result {
    int32_t *ids;                  /* generated ids (cairn_free) */
    int n_ids;
    char *text;                    /* generated text, stop string excluded (cairn_free) */
    size_t text_len;
    gen_stop stop;
    int n_prompt;
    int64_t prompt_ns, gen_ns;     /* wall time of prompt processing and of generation */
} gen_result;

/* Runs on a fresh or continued session (tokens are appended at n_past). */
cairn_status generate(cairn_session *s, const cairn_tokenizer *tok, cairn_sampler *smp,
                      const int32_t *prompt, int n_prompt, const gen_params *p, gen_result *out);
void gen_result_free(gen_result *r);

/* Tokens/s helpers (0 when no time elapsed). */
double gen_prompt_tps(const gen_result *r);
double gen_tps(const gen_result *r);

#endif
