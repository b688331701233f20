/*
 * server_int.h — what the server's files share: the server object, the
 * per-request context and the reply helpers (internal to src/server).
 */
#ifndef CAIRN_SERVER_INT_H
#define CAIRN_SERVER_INT_H

#include "server/engine.h"
#include "server/metrics.h"
#include "server/server.h"

#include <cjson/cJSON.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>

typedef struct srv_store_pool srv_store_pool;
typedef struct cairn_embedder cairn_embedder;

typedef struct http_req http_req;
typedef enum MHD_Result (*route_fn)(http_req *r);

typedef struct route {
    const char *method, *path;
    bool prefix;                 /* path is a prefix ("/v1/documents/" + id) */
    bool public_;                /* no API key needed (only /health) */
    bool upload;                 /* body cap max_upload instead of max_body; any content type */
    route_fn fn;
    const char *name;            /* metrics label */
} route;

struct cairn_server {
    server_opts o;
    struct MHD_Daemon *d;
    int port;
    engine *eng;                 /* NULL without a chat model */
    cairn_embedder *emb, *rerank;
    pthread_mutex_t emb_mu;      /* one embedding call at a time (the embedder's own threads) */
    srv_store_pool *stores;      /* NULL without a store */
    srv_metrics *metrics;
    atomic_int n_conns;
    atomic_uint_fast64_t next_id;
    char embed_id[256], rerank_id[256];
    /* the gateway (srv_gateway.c); NULL without upstreams */
    struct gw *gw;
    char gw_token[64];           /* "X-Cairn-Internal: <random>": our own local hop */
    char gw_self[160];           /* our base URL, ".../v1" */
    char gw_auth[600];           /* "Authorization: Bearer <our key>" or "" */
};

struct http_req {
    cairn_server *S;
    struct MHD_Connection *c;
    const route *rt;
    int route_id;
    const char *url, *method;
    int64_t t0;
    cairn_buf body;
    bool over;                   /* the body passed its cap: 413 once it has arrived */
    bool answered;
    int status;
    int drop_after;              /* test switch: a stream ends after this many events */
};

/* ---- replies (each queues a response and records the status) ---- */
enum MHD_Result reply_json(http_req *r, int status, cJSON *j);   /* takes j */
enum MHD_Result reply_text(http_req *r, int status, const char *ctype, const char *body, size_t len);
/* OpenAI error shape: {"error": {"message", "type", "param", "code"}}. */
enum MHD_Result reply_error(http_req *r, int status, const char *code, const char *param, const char *fmt, ...)
    CAIRN_PRINTF(5, 6);
/* The status of a failed library call as an HTTP error (INVALID 400,
 * NOT_FOUND 404, TOO_LARGE 413/400, BUSY 429, else 500) with its detail. */
enum MHD_Result reply_status(http_req *r, cairn_status st, const char *what);
/* Hand a ready response to MHD with the common headers (CORS). */
enum MHD_Result reply_queue(http_req *r, int status, struct MHD_Response *resp);

/* The request body as a JSON object; on failure a 400 has been queued and
 * *ret holds what the handler must return. */
cJSON *body_json(http_req *r, enum MHD_Result *ret);
const char *req_header(http_req *r, const char *name);
const char *req_arg(http_req *r, const char *name);
/* The client's socket, for noticing a hang-up while waiting. */
int req_socket(http_req *r);
/* Wait until fd is readable or the client at sock hung up (false). */
bool wait_or_hangup(int fd, int sock, int timeout_ms);

/* A fresh id "prefix-<16 hex>". */
void srv_new_id(cairn_server *S, const char *prefix, char *out, size_t cap);

/* ---- endpoints (api_*.c) ---- */
enum MHD_Result api_chat(http_req *r);
enum MHD_Result api_completions(http_req *r);
enum MHD_Result api_models(http_req *r);
enum MHD_Result api_embeddings(http_req *r);
enum MHD_Result api_rerank(http_req *r);
enum MHD_Result api_search(http_req *r);
enum MHD_Result api_docs_post(http_req *r);
enum MHD_Result api_docs_get(http_req *r);
enum MHD_Result api_docs_delete(http_req *r);
enum MHD_Result api_ask(http_req *r);

/* ---- who answers a chat request (the gateway's hook) ---- */
typedef enum {
    SRV_ROUTE_NONE,          /* no such model: 404 model_not_found */
    SRV_ROUTE_LOCAL,         /* the local chat model */
    SRV_ROUTE_RAG,           /* "cairn-rag": retrieve from the store, answer grounded with sources */
} srv_route_kind;
typedef struct srv_route { srv_route_kind kind; const char *model; } srv_route;
/* The one place that decides which backend answers a chat or completion
 * request, from the requested model and the request itself. */
srv_route srv_route_chat(cairn_server *S, const char *model, const cJSON *req);

/* ---- the gateway (srv_gateway.c) ---- */
#include "gateway/gateway.h"
cairn_status srv_gateway_open(cairn_server *S);   /* after the daemon listens (needs the port) */
void srv_gateway_close(cairn_server *S);
/* The request is our own local hop (it skips the gateway). */
bool srv_gateway_internal(http_req *r);
/* Route a chat / completion request through the gateway. */
enum MHD_Result srv_gateway_handle(http_req *r, gw_endpoint ep);
/* GET /v1/gateway: policy, upstream health (breaker, errors, latency), budgets. */
enum MHD_Result api_gateway(http_req *r);
cairn_status srv_gateway_metrics(cairn_server *S, cairn_buf *out);
/* The test switch (CAIRN_TEST_FAULT_FILE / CAIRN_TEST_RECORD): true when it
 * answered (*ret); *drop_after > 0: cut a stream after that many events. */
bool srv_fault(http_req *r, enum MHD_Result *ret, int *drop_after);
/* RAG (api_cairn.c): retrieve for the conversation and rewrite its messages
 * into a grounded prompt; the sources, or NULL after queuing an error. */
cJSON *rag_prepare(http_req *r, const cJSON *body, chat_msg **msgs, int *n_msgs, cairn_buf *arena,
                   enum MHD_Result *ret);

/* Embedder, reranker and store (api_cairn.c): opened after the engine,
 * closed before it. */
cairn_status server_open_extras(cairn_server *S);
void server_close_extras(cairn_server *S);


#endif
