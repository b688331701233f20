/*
 * batch.h — several sequences in one forward pass (continuous batching).
 *
 * Each sequence is its own cairn_session (its own KV cache, n_past and
 * logits); one of them, or any session of the same model, is the host: its
 * activation buffers, thread pool and batch size carry the pass. Weight
 * products run over the rows of all sequences at once, so each weight is
 * read once per step however many requests decode together; RoPE, the KV
 * store and causal attention are per sequence, over its own cache only.
 *
 * A sequence may contribute several tokens (a prompt being processed) or one
 * (decode); prompts and decodes mix in one pass. The row results equal those
 * of the sequence evaluated alone up to the float summation order of the
 * batched matmul kernels (tests/test_batch.c states the bound).
 */
#ifndef CAIRN_BATCH_H
#define CAIRN_BATCH_H

#include "infer/session.h"

#define BATCH_MAX_SEQS 64

typedef struct batch_seq {
    cairn_session *s;          /* the sequence: tokens are appended at its n_past */
    const int32_t *ids;
    int n;                     /* >= 1 */
} batch_seq;

/* Evaluate every sequence's tokens in one forward pass of `host` and advance
 * each n_past; each sequence's last-token logits are then in
 * session_logits(seq.s). Sequences must be distinct sessions of host's model
 * with its KV type and n_ctx <= host's; the tokens of all of them together
 * at most session_n_batch(host). On an error nothing is advanced
 * (CAIRN_ERR_TOO_LARGE for a sequence's context or the batch, INVALID for
 * an id outside the vocabulary or a mismatched session). Cost: one forward
 * pass of sum(n) rows, plus attention per sequence over its own past. */
cairn_status batch_eval(cairn_session *host, const batch_seq *seqs, int n_seqs);

int session_n_batch(const cairn_session *s);
/* The session's last-token logits (n_vocab floats, valid until its next eval). */
float *session_logits(cairn_session *s);

#endif
