/*
 * engine.h — the generation engine behind the server: one model, N slots,
 * a FIFO queue, continuous batching and a prompt cache.
 *
 * Slots. Each slot is a cairn_session of the model with its own KV cache
 * of the full per-slot context (--ctx, default the model's, at most 4096):
 * a slot's context is never a fraction of one shared total, so a prompt
 * that fits the model fits any slot. Slot 0's session also carries the
 * activation buffers and the thread pool of the batched pass.
 *
 * Continuous batching. One engine thread runs steps. Each step, every
 * running request contributes its next token (decode) or the next piece of
 * its prompt (prefill, within the batch budget after the decodes), and all
 * of them go through ONE forward pass (batch_eval): each weight is read once
 * per step for all requests. New requests join between steps (FIFO order),
 * finished or cancelled ones leave. A batch gives each request exactly the
 * logits it would get alone (tests/test_batch.c), so greedy output does not
 * depend on what else runs.
 *
 * Queue. Requests that find no free slot wait in FIFO order; at most
 * max_queue wait, a further one is refused (engine_submit: CAIRN_ERR_BUSY,
 * the server's 429 with Retry-After).
 *
 * Prompt cache. A slot keeps the KV of its last request after it ends. A
 * new request goes to the free slot whose cached tokens share the longest
 * prefix with its prompt and reuses that prefix (only the rest is
 * computed); with no shared prefix, to the least recently used free slot.
 * Memory is bounded by the slots themselves (no extra copies);
 * engine_poll.n_cached reports the reused tokens (usage.prompt_tokens_details
 * .cached_tokens).
 *
 * Consumers (HTTP threads) submit a request, then wait on its eventfd and
 * take the text that became final (never split inside a UTF-8 character or
 * a possible stop string). engine_req_cancel (a client that went away)
 * takes effect before the next step: the slot is free at once.
 */
#ifndef CAIRN_SERVER_ENGINE_H
#define CAIRN_SERVER_ENGINE_H

#include "infer/chat.h"
#include "infer/sample.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

#define ENGINE_MAX_PARALLEL 64
#define ENGINE_MAX_STOP 16
#define ENGINE_MAX_STOP_BYTES 256

typedef struct engine engine;
typedef struct engine_req engine_req;

typedef struct engine_opts {
    const char *model_path;
    int n_parallel;             /* slots; 0 = 4 */
    int n_ctx;                  /* tokens per slot; 0 = min(model context, 4096) */
    int n_threads;              /* 0 = online CPUs, at most 8 */
    int n_batch;                /* tokens per forward pass; 0 = 256 */
    int max_queue;              /* waiting requests; 0 = 64 */
    const char *chat_template;  /* style name; NULL = the model's (chatml if it has none) */
} engine_opts;

cairn_status engine_new(const engine_opts *o, engine **out);
/* Stops the engine thread; running and queued requests finish as errors. */
void engine_free(engine *e);

const char *engine_model_id(const engine *e);     /* file name without .gguf */
int engine_n_ctx(const engine *e);
int engine_n_parallel(const engine *e);
const cairn_model *engine_model(const engine *e);
const cairn_tokenizer *engine_tokenizer(const engine *e);
void engine_gauges(engine *e, int *queued, int *busy);

/* Render messages with the model's chat template and tokenize (special
 * tokens parsed, BOS per the model). *ids (cairn_free) holds *n ids; more
 * than max_tokens is CAIRN_ERR_TOO_LARGE (the count is in *n). */
cairn_status engine_tokenize_chat(engine *e, const chat_msg *msgs, int n_msgs, int max_tokens, int32_t **ids, int *n);
/* Plain text (special-token text is not parsed: clients cannot inject
 * markup); BOS per the model. */
cairn_status engine_tokenize_text(engine *e, const char *text, size_t len, int max_tokens, int32_t **ids, int *n);

typedef struct engine_params {
    const int32_t *prompt;      /* copied */
    int n_prompt;               /* 1 .. n_ctx - 1 */
    int max_tokens;             /* 1 .. n_ctx - n_prompt */
    sampler_params sp;
    const char *const *stop;    /* copied; at most ENGINE_MAX_STOP of at most ENGINE_MAX_STOP_BYTES */
    int n_stop;
} engine_params;

/* Queue a request. CAIRN_ERR_BUSY: the queue is full; CAIRN_ERR_TOO_LARGE:
 * prompt + max_tokens exceed a slot's context; INVALID for bad params. The
 * caller owns one reference (engine_req_release). */
cairn_status engine_submit(engine *e, const engine_params *p, engine_req **out);

typedef enum { ENGINE_RUNNING, ENGINE_STOP, ENGINE_LENGTH, ENGINE_CANCELLED, ENGINE_FAILED } engine_finish;

typedef struct engine_poll {
    bool done;
    engine_finish finish;
    int n_prompt, n_cached, n_completion;
    int64_t queued_ns, first_token_ns, total_ns;   /* from submit */
    char error[256];                               /* ENGINE_FAILED */
} engine_poll;

/* Readable (POLLIN) when there is news; engine_req_take clears it. */
int engine_req_fd(const engine_req *r);
/* Append the text that became final since the last take to out (valid
 * UTF-8) and fill st. */
cairn_status engine_req_take(engine_req *r, cairn_buf *out, engine_poll *st);
void engine_req_cancel(engine_req *r);
void engine_req_release(engine_req *r);

#endif
