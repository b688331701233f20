/*
 * server.h — `cairn serve`: an OpenAI-compatible HTTP/1.1 server
 * (libmicrohttpd, one thread per connection) over the generation engine,
 * the embedder and the store. Endpoints, limits and the security model:
 * docs/server.md and docs/security.md.
 */
#ifndef CAIRN_SERVER_H
#define CAIRN_SERVER_H

#include "base/base.h"

typedef struct cairn_server cairn_server;

typedef struct server_opts {
    const char *host;            /* default 127.0.0.1 */
    int port;                    /* default 8080; 0 = any free port (server_port tells) */
    const char *api_key;         /* NULL = no key (a warning unless bound to loopback) */
    const char *cors_origin;     /* NULL = no CORS headers at all */
    const char *model;           /* chat/completions model (GGUF); NULL = none */
    const char *embed_model;     /* embeddings model; NULL = none */
    const char *rerank_model;    /* cross-encoder; NULL = none */
    const char *chat_template;   /* NULL = the model's */
    const char *db;              /* the store (.cairn directory); NULL = none */
    int n_parallel;              /* generation slots (0 = 4) */
    int n_ctx;                   /* context per slot (0 = model's, at most 4096) */
    int n_threads;               /* compute threads (0 = CPUs, at most 8) */
    int max_queue;               /* waiting generation requests (0 = 64) */
    int max_connections;         /* open connections (0 = 256) */
    size_t max_body;             /* JSON request body bytes (0 = 8 MiB) */
    size_t max_upload;           /* document upload bytes (0 = 64 MiB) */
    size_t max_header;           /* request line + headers bytes (0 = 32 KiB) */
    int max_tokens;              /* cap on max_tokens (0 = the slot context) */
    int max_prompt_tokens;       /* cap on prompt tokens (0 = the slot context - 1) */
    int timeout_s;               /* a request must arrive whole within this (0 = 30) */
    int idle_timeout_s;          /* keep-alive idle connections closed after (0 = 60) */
    const char *gateway_file;    /* upstreams and rules (docs/gateway.md); NULL = the store's config */
} server_opts;

/* Load the models, open the store, bind and start serving (threads of its
 * own); returns once the socket listens. */
cairn_status server_start(const server_opts *o, cairn_server **out);
int server_port(const cairn_server *s);
/* Stop accepting, end running requests, free everything. */
void server_stop(cairn_server *s);

#endif
