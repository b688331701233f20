/*
 * session.h — one conversation's inference state over a cairn_model: the KV
 * cache, the activation buffers and the thread pool, all allocated once in
 * session_new (nothing is allocated per token).
 *
 * session_eval() appends tokens at position n_past and returns the logits
 * of the last one. Long inputs are processed in batches of n_batch tokens;
 * each batch runs every weight product as one matrix x matrix product
 * (matmul with n_tok > 1), which is what makes prompt processing fast.
 */
#ifndef CAIRN_SESSION_H
#define CAIRN_SESSION_H

#include "model/model.h"

typedef struct cairn_session cairn_session;

typedef struct session_opts {
    int n_ctx;          /* KV capacity in tokens; 0 = min(context_length, 4096) */
    int n_batch;        /* most tokens per forward pass; 0 = 128 */
    int n_threads;      /* 0 or 1 = the calling thread only */
    uint32_t kv_type;   /* QT_F16, QT_Q8_0 or QT_F32 (use session_opts_default()) */
} session_opts;

/* Defaults: n_ctx 0, n_batch 0, n_threads 1, kv_type QT_F16. */
session_opts session_opts_default(void);

cairn_status session_new(const cairn_model *m, const session_opts *opts, cairn_session **out);
void session_free(cairn_session *s);

/* Run `n` tokens at positions n_past.. and advance n_past. *logits (may be
 * NULL) receives the last token's logits (n_vocab floats owned by the
 * session, valid until the next call). CAIRN_ERR_TOO_LARGE when the context
 * would overflow (nothing is changed), CAIRN_ERR_INVALID for an id outside
 * the vocabulary. */
cairn_status session_eval(cairn_session *s, const int32_t *ids, int n, float **logits);

/* Forget everything from position n on (0 = empty cache). */
void session_truncate(cairn_session *s, int n);
int session_n_past(const cairn_session *s);
int session_n_ctx(const cairn_session *s);
const cairn_model *session_model(const cairn_session *s);
/* MoE: how often each expert was chosen, (n_layer, n_expert) row-major,
 * since the session was made; NULL for dense models. */
const uint64_t *session_expert_counts(const cairn_session *s);
/* Bytes held by the KV cache. */
size_t session_kv_bytes(const cairn_session *s);
/* Whether decode reads the weights as one stream per thread (the model
 * file is larger than kernels_llc_bytes(); matmul_ctx.stream). */
bool session_streams(const cairn_session *s);

#endif
