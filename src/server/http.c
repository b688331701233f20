/*
 * http.c — the HTTP side: libmicrohttpd daemon, limits, API keys, CORS,
 * routing, replies, and the small endpoints (/health, /metrics).
 *
 * Life of a request (one thread per connection):
 *   1st call of on_request: connection limit, route, API key, declared
 *       Content-Length against the cap — any failure is answered at once,
 *       before a byte of the body is read (MHD then closes the connection);
 *   body calls: bytes appended up to the cap (past it they are dropped and
 *       the request ends as 413), the whole request must arrive within
 *       timeout_s (a slow trickle is cut off: the connection is closed);
 *   last call: the handler runs and queues the response; generation
 *       handlers block on their engine request, streams are MHD callbacks
 *       that block in the connection's own thread (api_gen.c);
 *   on_completed: metrics (status, time to the last byte), cleanup.
 * Headers larger than max_header are answered 431 by MHD itself.
 */
#define _GNU_SOURCE 1   /* POLLRDHUP */
#include "server/server_int.h"
#include "server/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define MAX_ERR_MSG 1024

static enum MHD_Result api_health(http_req *r);
static enum MHD_Result api_metrics(http_req *r);

static const route ROUTES[] = {
    {"GET", "/health", false, true, false, api_health, "health"},
    {"GET", "/metrics", false, false, false, api_metrics, "metrics"},
    {"GET", "/v1/models", false, false, false, api_models, "models"},
    {"POST", "/v1/chat/completions", false, false, false, api_chat, "chat"},
    {"POST", "/v1/completions", false, false, false, api_completions, "completions"},
    {"POST", "/v1/embeddings", false, false, false, api_embeddings, "embeddings"},
    {"POST", "/v1/rerank", false, false, false, api_rerank, "rerank"},
    {"POST", "/v1/search", false, false, false, api_search, "search"},
    {"POST", "/v1/documents", false, false, true, api_docs_post, "documents_add"},
    {"GET", "/v1/documents", false, false, false, api_docs_get, "documents_list"},
    {"DELETE", "/v1/documents/", true, false, false, api_docs_delete, "documents_delete"},
    {"POST", "/v1/ask", false, false, false, api_ask, "ask"},
    {"GET", "/v1/gateway", false, false, false, api_gateway, "gateway"},
};
#define ROUTE_NOT_FOUND ((int)CAIRN_ARRAY_LEN(ROUTES))
#define ROUTE_OTHER (ROUTE_NOT_FOUND + 1)

/* ---- replies ---- */

enum MHD_Result reply_queue(http_req *r, int status, struct MHD_Response *resp)
{
    if (!resp)
        return MHD_NO;
    if (r->S->o.cors_origin) {
        MHD_add_response_header(resp, "Access-Control-Allow-Origin", r->S->o.cors_origin);
        MHD_add_response_header(resp, "Vary", "Origin");
    }
    /* Every answer to a generation request says which route answered
     * (docs/gateway.md). With a gateway, srv_gateway.c sets the headers;
     * without one, the answer is local (or no route answered: an error). */
    if (!r->S->gw && r->rt && (r->rt->fn == api_chat || r->rt->fn == api_completions || r->rt->fn == api_ask) &&
        !MHD_get_response_header(resp, "X-Cairn-Route"))
        MHD_add_response_header(resp, "X-Cairn-Route", status < 400 ? "local" : "error");
    r->status = status;
    r->answered = true;
    enum MHD_Result ret = MHD_queue_response(r->c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return ret;
}

enum MHD_Result reply_text(http_req *r, int status, const char *ctype, const char *body, size_t len)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", ctype);
    return reply_queue(r, status, resp);
}

enum MHD_Result reply_json(http_req *r, int status, cJSON *j)
{
    char *s = j ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    if (!s)
        return reply_text(r, 500, "application/json",
                          "{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\",\"param\":null,\"code\":null}}", 86);
    struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(s), s, MHD_RESPMEM_MUST_COPY);
    if (!resp) {
        cJSON_free(s);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "application/json");
    return reply_queue(r, status, resp);
}

static const char *error_type(int status)
{
    switch (status) {
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 429: return "rate_limit_error";
    default: return status >= 500 ? "server_error" : "invalid_request_error";
    }
}

enum MHD_Result reply_error(http_req *r, int status, const char *code, const char *param, const char *fmt, ...)
{
    char msg[MAX_ERR_MSG];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cairn_buf clean;   /* details may quote client bytes: keep the JSON valid UTF-8 */
    cairn_buf_init(&clean, 4 * sizeof msg);
    srv_utf8_append(&clean, msg, strlen(msg));
    cJSON *j = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(j, "error");
    cJSON_AddStringToObject(e, "message", clean.data ? clean.data : "");
    cJSON_AddStringToObject(e, "type", error_type(status));
    if (param)
        cJSON_AddStringToObject(e, "param", param);
    else
        cJSON_AddNullToObject(e, "param");
    if (code)
        cJSON_AddStringToObject(e, "code", code);
    else
        cJSON_AddNullToObject(e, "code");
    cairn_buf_free(&clean);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (!s)
        return MHD_NO;
    struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(s), s, MHD_RESPMEM_MUST_COPY);
    if (!resp) {
        cJSON_free(s);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "application/json");
    if (status == 429 || status == 503)
        MHD_add_response_header(resp, "Retry-After", "1");
    if (status == 401)
        MHD_add_response_header(resp, "WWW-Authenticate", "Bearer");
    return reply_queue(r, status, resp);
}

enum MHD_Result reply_status(http_req *r, cairn_status st, const char *what)
{
    const char *d = cairn_last_error();
    switch (st) {
    case CAIRN_ERR_INVALID: case CAIRN_ERR_CORRUPT: case CAIRN_ERR_UNSUPPORTED:
        return reply_error(r, 400, NULL, NULL, "%s: %s", what, d);
    case CAIRN_ERR_NOT_FOUND: return reply_error(r, 404, "not_found", NULL, "%s: %s", what, d);
    case CAIRN_ERR_TOO_LARGE: return reply_error(r, 413, "too_large", NULL, "%s: %s", what, d);
    case CAIRN_ERR_BUSY: return reply_error(r, 429, "busy", NULL, "%s: %s", what, d);
    default: return reply_error(r, 500, NULL, NULL, "%s: %s (%s)", what, d, cairn_status_str(st));
    }
}

/* ---- request helpers ---- */

const char *req_header(http_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->c, MHD_HEADER_KIND, name);
}

const char *req_arg(http_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->c, MHD_GET_ARGUMENT_KIND, name);
}

int req_socket(http_req *r)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->c, MHD_CONNECTION_INFO_CONNECTION_FD);
    return ci ? ci->connect_fd : -1;
}

bool wait_or_hangup(int fd, int sock, int timeout_ms)
{
    struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = sock, .events = POLLRDHUP}};
    int n = poll(p, sock >= 0 ? 2 : 1, timeout_ms);
    if (n > 0 && sock >= 0 && (p[1].revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)))
        return false;
    return true;
}

void srv_new_id(cairn_server *S, const char *prefix, char *out, size_t cap)
{
    uint64_t n = atomic_fetch_add(&S->next_id, 1);
    uint64_t h = cairn_hash64(&n, sizeof n) ^ (uint64_t)cairn_now_ns();
    snprintf(out, cap, "%s-%016llx", prefix, (unsigned long long)h);
}

cJSON *body_json(http_req *r, enum MHD_Result *ret)
{
    const char *code = NULL;
    char msg[256];
    cJSON *j = srv_parse_body(r->body.data ? r->body.data : "", r->body.len, &code, msg, sizeof msg);
    if (!j)
        *ret = reply_error(r, 400, code, NULL, "%s", msg);
    return j;
}

/* ---- small endpoints ---- */

static enum MHD_Result api_health(http_req *r)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "status", "ok");
    if (r->S->eng) {
        int q, b;
        engine_gauges(r->S->eng, &q, &b);
        cJSON_AddNumberToObject(j, "slots_total", engine_n_parallel(r->S->eng));
        cJSON_AddNumberToObject(j, "slots_busy", b);
        cJSON_AddNumberToObject(j, "queue_depth", q);
    }
    return reply_json(r, 200, j);
}

static enum MHD_Result api_metrics(http_req *r)
{
    metrics_gauges g = {0};
    if (r->S->eng) {
        engine_gauges(r->S->eng, &g.queue_depth, &g.slots_busy);
        g.slots_total = engine_n_parallel(r->S->eng);
    }
    cairn_buf b;
    cairn_buf_init(&b, 1 << 20);
    cairn_status st = metrics_render(r->S->metrics, &g, &b);
    if (st == CAIRN_OK)
        st = srv_gateway_metrics(r->S, &b);
    enum MHD_Result ret = st == CAIRN_OK ? reply_text(r, 200, "text/plain; version=0.0.4", b.data ? b.data : "", b.len)
                                         : reply_status(r, st, "metrics");
    cairn_buf_free(&b);
    return ret;
}

/* ---- the access handler ---- */

static int find_route(const char *method, const char *url, bool *path_known)
{
    *path_known = false;
    for (int i = 0; i < (int)CAIRN_ARRAY_LEN(ROUTES); i++) {
        const route *rt = &ROUTES[i];
        bool match = rt->prefix ? !strncmp(url, rt->path, strlen(rt->path)) && url[strlen(rt->path)] != '\0'
                                : !strcmp(url, rt->path);
        if (!match)
            continue;
        *path_known = true;
        if (!strcmp(method, rt->method))
            return i;
    }
    return -1;
}

static bool key_ok(cairn_server *S, http_req *r)
{
    if (!S->o.api_key)
        return true;
    const char *h = req_header(r, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7))
        return false;
    h += 7;
    while (*h == ' ')
        h++;
    return srv_secret_equal(S->o.api_key, strlen(S->o.api_key), h, strlen(h));
}

static enum MHD_Result first_call(cairn_server *S, http_req *r)
{
    if (atomic_load(&S->n_conns) > S->o.max_connections)
        return reply_error(r, 429, "too_many_connections", NULL, "the server has %d connections open already",
                           S->o.max_connections);
    if (!strcmp(r->method, "OPTIONS") && S->o.cors_origin) {   /* CORS preflight */
        struct MHD_Response *resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        if (!resp)
            return MHD_NO;
        MHD_add_response_header(resp, "Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS");
        MHD_add_response_header(resp, "Access-Control-Allow-Headers", "Authorization, Content-Type");
        MHD_add_response_header(resp, "Access-Control-Max-Age", "600");
        return reply_queue(r, 204, resp);
    }
    bool known;
    int i = find_route(r->method, r->url, &known);
    r->route_id = i >= 0 ? i : ROUTE_NOT_FOUND;
    bool public_ = i >= 0 && ROUTES[i].public_;
    if (!public_ && !key_ok(S, r))
        return reply_error(r, 401, "invalid_api_key", NULL, "a valid API key is required (Authorization: Bearer KEY)");
    if (i < 0) {
        if (known)
            return reply_error(r, 405, "method_not_allowed", NULL, "%s is not allowed on this path", r->method);
        return reply_error(r, 404, "unknown_url", NULL, "no endpoint at this path");
    }
    r->rt = &ROUTES[i];
    size_t cap = r->rt->upload ? S->o.max_upload : S->o.max_body;
    const char *cl = req_header(r, "Content-Length");
    if (cl) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(cl, &end, 10);
        if (errno || end == cl || v > cap)
            return reply_error(r, 413, "body_too_large", NULL, "the request body is over the %zu-byte limit", cap);
    }
    cairn_buf_init(&r->body, cap);
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    cairn_server *S = cls;
    http_req *r = *con_cls;
    if (!r) {
        r = cairn_calloc(1, sizeof *r);
        if (!r)
            return MHD_NO;
        r->S = S;
        r->c = c;
        r->url = url;
        r->method = method;
        r->t0 = cairn_mono_ns();
        r->route_id = ROUTE_OTHER;
        *con_cls = r;
        enum MHD_Result ret = first_call(S, r);
        return r->answered ? ret : MHD_YES;
    }
    if (r->answered)                    /* answered at the first call: drop what still arrives */
        return *upload_data_size = 0, MHD_YES;
    if (*upload_data_size) {
        if (cairn_mono_ns() - r->t0 > (int64_t)S->o.timeout_s * 1000000000LL)
            return MHD_NO;              /* too slow to arrive: the connection is closed */
        if (!r->over && cairn_buf_append(&r->body, upload_data, *upload_data_size) != CAIRN_OK)
            r->over = true;
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (r->over) {
        size_t cap = r->rt->upload ? S->o.max_upload : S->o.max_body;
        return reply_error(r, 413, "body_too_large", NULL, "the request body is over the %zu-byte limit", cap);
    }
    cairn_clear_error();
    enum MHD_Result ret = r->rt->fn(r);
    if (!r->answered && ret == MHD_YES)
        ret = reply_error(r, 500, NULL, NULL, "no response");
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    (void)c;
    cairn_server *S = cls;
    http_req *r = *con_cls;
    if (!r)
        return;
    int status = r->answered ? r->status : 499;                 /* 499: the client went away first */
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && r->answered && r->status < 400)
        status = 499;
    metrics_request(S->metrics, r->route_id, status, cairn_mono_ns() - r->t0);
    cairn_buf_free(&r->body);
    cairn_free(r);
    *con_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    (void)c;
    (void)socket_context;
    cairn_server *S = cls;
    int d = toe == MHD_CONNECTION_NOTIFY_STARTED ? 1 : -1;
    atomic_fetch_add(&S->n_conns, d);
    metrics_connections(S->metrics, d);
}

/* ---- start / stop ---- */

static bool is_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
    if (ss->ss_family == AF_INET6)
        return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)ss)->sin6_addr);
    return false;
}

cairn_status server_start(const server_opts *opts, cairn_server **out)
{
    *out = NULL;
    cairn_server *S = cairn_calloc(1, sizeof *S);
    if (!S)
        return cairn_fail(CAIRN_ERR_NOMEM, "serve: out of memory");
    S->o = *opts;
    server_opts *o = &S->o;
    if (!o->host) o->host = "127.0.0.1";
    if (!o->max_connections) o->max_connections = 256;
    if (!o->max_body) o->max_body = 8u << 20;
    if (!o->max_upload) o->max_upload = 64u << 20;
    if (!o->max_header) o->max_header = 32u << 10;
    if (!o->timeout_s) o->timeout_s = 30;
    if (!o->idle_timeout_s) o->idle_timeout_s = 60;
    if (o->api_key && !*o->api_key)
        o->api_key = NULL;
    pthread_mutex_init(&S->emb_mu, NULL);
    atomic_init(&S->n_conns, 0);
    atomic_init(&S->next_id, 1);
    cairn_status st;
    if (o->port < 0 || o->port > 65535 || o->max_connections < 1 || o->max_connections > 4096) {
        st = cairn_fail(CAIRN_ERR_INVALID, "serve: port 0..65535 and 1..4096 connections");
        goto fail;
    }
    struct sockaddr_storage ss = {0};
    socklen_t slen;
    const char *host = !strcmp(o->host, "localhost") ? "127.0.0.1" : o->host;
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)o->port);
        slen = sizeof *s4;
    } else if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)o->port);
        slen = sizeof *s6;
    } else {
        st = cairn_fail(CAIRN_ERR_INVALID, "serve: --host must be an IP address (or localhost), not '%s'", o->host);
        goto fail;
    }
    (void)slen;
    if (!is_loopback(&ss) && !o->api_key)
        fprintf(stderr,
                "\n"
                "  ***********************************************************************\n"
                "  * WARNING: cairn serve is listening on %s WITHOUT an API key.\n"
                "  * Anyone who can reach this address can read your documents, add and\n"
                "  * delete them, and use your CPU. Use --api-key-file FILE, or bind to\n"
                "  * 127.0.0.1 (the default).\n"
                "  ***********************************************************************\n\n",
                o->host);
    if ((st = metrics_new(&S->metrics)) != CAIRN_OK)
        goto fail;
    for (int i = 0; i < (int)CAIRN_ARRAY_LEN(ROUTES); i++)
        metrics_name_route(S->metrics, i, ROUTES[i].name);
    metrics_name_route(S->metrics, ROUTE_NOT_FOUND, "not_found");
    metrics_name_route(S->metrics, ROUTE_OTHER, "other");
    if (o->model) {
        engine_opts eo = {.model_path = o->model, .n_parallel = o->n_parallel, .n_ctx = o->n_ctx,
                          .n_threads = o->n_threads, .max_queue = o->max_queue, .chat_template = o->chat_template};
        if ((st = engine_new(&eo, &S->eng)) != CAIRN_OK)
            goto fail;
    }
    if ((st = server_open_extras(S)) != CAIRN_OK)
        goto fail;
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    S->d = MHD_start_daemon(flags, (uint16_t)o->port, NULL, NULL, on_request, S,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)o->max_connections + 16,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)o->idle_timeout_s,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, o->max_header,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, S,
                            MHD_OPTION_NOTIFY_CONNECTION, on_connection, S,
                            MHD_OPTION_LISTEN_BACKLOG_SIZE, 256u,
                            MHD_OPTION_END);
    if (!S->d) {
        st = cairn_fail(CAIRN_ERR_IO, "serve: cannot listen on %s:%d (%s)", o->host, o->port, strerror(errno));
        goto fail;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(S->d, MHD_DAEMON_INFO_BIND_PORT);
    S->port = di ? di->port : o->port;
    if ((st = srv_gateway_open(S)) != CAIRN_OK)
        goto fail;
    *out = S;
    return CAIRN_OK;
fail:
    server_stop(S);
    return st;
}

int server_port(const cairn_server *s) { return s->port; }

void server_stop(cairn_server *S)
{
    if (!S)
        return;
    if (S->d)
        MHD_stop_daemon(S->d);
    srv_gateway_close(S);
    server_close_extras(S);
    engine_free(S->eng);
    metrics_free(S->metrics);
    pthread_mutex_destroy(&S->emb_mu);
    cairn_free(S);
}
