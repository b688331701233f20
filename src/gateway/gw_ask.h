/*
 * gw_ask.h — grounded questions (`cairn ask`) through the gateway, and
 * opening the gateway of a store.
 */
#ifndef CAIRN_GW_ASK_H
#define CAIRN_GW_ASK_H

#include "gateway/gateway.h"
#include "rag/rag.h"

typedef struct gw_ask_opts {
    store *s;
    search_engine *e;
    rag_chat *chat;             /* the local answerer (model or extractive) */
    const cairn_tokenizer *tok; /* counts context tokens (NULL = estimate) */
    const char *where, *system;
    size_t k, budget;
    rag_mode mode;
    int n_predict;
    const char *model_name;     /* the model name the request carries (model map); NULL = "cairn-rag" */
    const char *policy;         /* the request's own policy (--route), NULL = the store's */
} gw_ask_opts;

typedef struct gw_ask_result {
    rag_context ctx;            /* the passages (upstream answers cite these) */
    bool have_ctx;
    bool local;                 /* answered by rag_chat: its context is rag_chat_context() */
    rag_answer answer;
    bool answer_valid;
    gw_result res;              /* route, rule, tokens, cost, latency */
} gw_ask_result;

/* Answer `question` under the gateway's rules; answer text goes to on_text.
 * A refusal (private context on a cloud-only route, budget) is
 * CAIRN_ERR_INVALID with the reason; every route failing, CAIRN_ERR_IO. */
cairn_status gw_ask(gw *g, const gw_ask_opts *o, const char *question, rag_text_fn on_text, void *ud, gw_ask_result *r);
void gw_ask_result_free(gw_ask_result *r);

/* A document's `private` metadata for gw_chunk_ref.private_tag: 1 true, 0
 * false, -1 unset; 1 when it cannot be read (fail closed). */
int gw_doc_private_tag(store *s, int64_t doc_id);

/* The gateway of a store: rules from `file` (--gateway) or the store's
 * config, state (audit log, budgets) in CAIRN_DIR/gateway. The clock is
 * CAIRN_GATEWAY_NOW when set (a test switch: UTC seconds, or @FILE holding
 * them, read on every use). */
cairn_status gw_open_store(const store_config *cfg, const char *cairn_dir, const char *file, gw **out);

#endif
