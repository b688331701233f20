/*
 * srv_gateway.c — cairn serve with upstreams: every chat / completion
 * request goes through the gateway (src/gateway, docs/gateway.md), and the
 * test switch that lets a second cairn serve play a failing cloud.
 *
 * The gateway pushes its answer (begin, then writes); libmicrohttpd pulls.
 * A non-streamed answer is collected and sent at once. A stream runs the
 * gateway on a thread of its own that fills a bounded queue the response
 * callback drains (at most GW_QUEUE bytes wait; the writer blocks beyond).
 *
 * The local answerer is this server itself over loopback: the request goes
 * to our own /v1/... with X-Cairn-Internal (a random token made at start),
 * which skips the gateway. So local answers come from exactly the code that
 * answers without a gateway (queue, prompt cache, SSE), and a full queue
 * (429), a prompt over the context (400 context_length_exceeded) or a
 * missing model (404) are the local failures local-first falls over on.
 *
 * Grounded requests (model cairn-rag): the context is retrieved here first
 * (rag_prepare), so the privacy rule sees every chunk; an upstream gets the
 * grounded messages, the local answerer the request as the client sent it.
 *
 * Test switch (never for production): CAIRN_TEST_FAULT_FILE=PATH names a
 * JSON file read on every generation request, {"mode": M, "delay_ms": D,
 * "drop_after": N, "fail_n": K}: ok, fail (500), 429, timeout (no answer
 * until the client gives up), slow (D ms before answering), drop (a stream
 * ends without [DONE] after N events; a plain answer closes the
 * connection); fail_n > 0 fails only that many more requests. With
 * CAIRN_TEST_RECORD=PATH every byte of every generation request (request
 * line, headers, body) is appended to PATH.
 */
#include "server/server_int.h"
#include "server/util.h"
#include "gateway/gateway.h"
#include "gateway/gw_ask.h"
#include "server/store_pool.h"
#include "store/store.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define GW_QUEUE ((size_t)1 << 20)

/* ---- opening ---- */

cairn_status srv_gateway_open(cairn_server *S)
{
    const char *file = S->o.gateway_file;
    store_config ini;
    store_config_default(&ini);
    cairn_status st = CAIRN_OK;
    char path[4200], dir[4200];
    if (file) {
        snprintf(dir, sizeof dir, "%s/gateway", S->o.db ? S->o.db : ".cairn");
        if (!S->o.db)
            snprintf(dir, sizeof dir, "%s.state", file);
    } else if (S->o.db) {
        snprintf(path, sizeof path, "%s/config", S->o.db);
        snprintf(dir, sizeof dir, "%s/gateway", S->o.db);
        st = store_config_load(&ini, path);
    } else {
        store_config_free(&ini);
        return CAIRN_OK;
    }
    gw_config c;
    gw_config_init(&c);
    if (st == CAIRN_OK)
        st = file ? gw_config_load_file(&c, file) : gw_config_from_ini(&c, &ini);
    store_config_free(&ini);
    if (st == CAIRN_OK && c.n_up == 0 && !file) {
        gw_config_free(&c);     /* no upstream: the gateway stays out of the way */
        return CAIRN_OK;
    }
    if (st == CAIRN_OK)
        st = gw_open(&S->gw, &c, dir);
    gw_config_free(&c);
    if (st != CAIRN_OK)
        return cairn_fail_wrap(st, "gateway");
    if (getenv("CAIRN_GATEWAY_NOW"))
        gw_set_clock(S->gw, gw_env_clock, NULL);
    uint64_t a = cairn_hash64(&S, sizeof S) ^ (uint64_t)cairn_now_ns(), b = (uint64_t)cairn_mono_ns() * 0x9e3779b97f4a7c15ull;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (read(fd, &a, sizeof a) != sizeof a || read(fd, &b, sizeof b) != sizeof b)
            a ^= 0x5bd1e995;
        close(fd);
    }
    snprintf(S->gw_token, sizeof S->gw_token, "X-Cairn-Internal: %016llx%016llx", (unsigned long long)a, (unsigned long long)b);
    const char *host = S->o.host && strcmp(S->o.host, "0.0.0.0") && strcmp(S->o.host, "localhost") ? S->o.host : "127.0.0.1";
    if (!strcmp(host, "::"))
        host = "::1";
    snprintf(S->gw_self, sizeof S->gw_self, strchr(host, ':') ? "http://[%s]:%d/v1" : "http://%s:%d/v1", host, S->port);
    if (S->o.api_key)
        snprintf(S->gw_auth, sizeof S->gw_auth, "Authorization: Bearer %s", S->o.api_key);
    return CAIRN_OK;
}

void srv_gateway_close(cairn_server *S)
{
    gw_close(S->gw);
    S->gw = NULL;
}

bool srv_gateway_internal(http_req *r)
{
    const char *h = req_header(r, "X-Cairn-Internal");
    const char *want = r->S->gw_token + strlen("X-Cairn-Internal: ");
    return h && r->S->gw_token[0] && srv_secret_equal(want, strlen(want), h, strlen(h));
}

/* ---- the push/pull bridge ---- */

typedef struct bridge {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs;
    bool begun, finished, gone;
    int status;
    char ctype[64], route[16], upstream[64], rule[256];
    cairn_buf q;
    size_t off;
    /* the request */
    cairn_server *S;
    gw_endpoint ep;
    char *body, *local_body;
    size_t body_len, local_len;
    char policy[64];
    gw_chunk_ref *chunks;
    size_t n_chunks;
    cJSON *sources;             /* owns the chunk paths */
    bool grounded;
    gw_result res;
    int sock;                   /* the client's socket: a hang-up stops the stream */
} bridge;

static void bridge_unref(bridge *b)
{
    pthread_mutex_lock(&b->mu);
    int left = --b->refs;
    pthread_mutex_unlock(&b->mu);
    if (left)
        return;
    pthread_mutex_destroy(&b->mu);
    pthread_cond_destroy(&b->cv);
    cairn_buf_free(&b->q);
    cJSON_free(b->body);
    cJSON_free(b->local_body);
    cairn_free(b->chunks);
    cJSON_Delete(b->sources);
    cairn_free(b);
}

static cairn_status b_begin(void *ctx, int status, const char *ctype, const gw_route_info *info)
{
    bridge *b = ctx;
    pthread_mutex_lock(&b->mu);
    b->status = status;
    snprintf(b->ctype, sizeof b->ctype, "%s", ctype);
    snprintf(b->route, sizeof b->route, "%s", info && info->route ? info->route : "");
    snprintf(b->upstream, sizeof b->upstream, "%s", info && info->upstream ? info->upstream : "");
    snprintf(b->rule, sizeof b->rule, "%s", info && info->rule ? info->rule : "");
    b->begun = true;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    return CAIRN_OK;
}

static cairn_status b_write(void *ctx, const char *p, size_t n)
{
    bridge *b = ctx;
    pthread_mutex_lock(&b->mu);
    while (!b->gone && b->q.len - b->off > GW_QUEUE)
        pthread_cond_wait(&b->cv, &b->mu);
    cairn_status st = b->gone ? CAIRN_ERR_INTERRUPTED : cairn_buf_append(&b->q, p, n);
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    return st;
}

static gw_fail local_hop(void *ctx, const gw_request *req, int64_t deadline, const gw_route_info *info, const gw_sink *sink,
                         int64_t *in, int64_t *out)
{
    bridge *b = ctx;
    cairn_server *S = b->S;
    gw_upstream_cfg u;
    memset(&u, 0, sizeof u);
    u.name = "local";
    u.base_url = S->gw_self;
    u.hdr[0] = S->gw_token;
    u.hdr[1] = S->gw_auth[0] ? S->gw_auth : NULL;
    u.idle_ms = gw_get_config(S->gw)->local_timeout_ms;
    gw_request lr = *req;
    lr.body = b->local_body ? b->local_body : b->body;
    lr.body_len = b->local_body ? b->local_len : b->body_len;
    return gw_forward_local(S->gw, &u, &lr, deadline, info, sink, in, out);
}

static void run_gateway(bridge *b)
{
    gw_request rq = {.endpoint = b->ep, .body = b->body, .body_len = b->body_len,
                     .policy_header = b->policy[0] ? b->policy : NULL, .grounded = b->grounded,
                     .chunks = b->chunks, .n_chunks = b->n_chunks};
    gw_local lo = {b, local_hop};
    gw_sink sk = {b, b_begin, b_write};
    cairn_status st = gw_handle(b->S->gw, &rq, &lo, &sk, &b->res);
    pthread_mutex_lock(&b->mu);
    if (st != CAIRN_OK && !b->begun) {
        /* an invalid request (the gateway wrote nothing) */
        b->status = st == CAIRN_ERR_TOO_LARGE ? 413 : 400;
        snprintf(b->ctype, sizeof b->ctype, "application/json");
        cJSON *j = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(j, "error");
        cJSON_AddStringToObject(e, "message", cairn_last_error());
        cJSON_AddStringToObject(e, "type", "invalid_request_error");
        cJSON_AddNullToObject(e, "param");
        cJSON_AddStringToObject(e, "code", "invalid_request");
        char *s = cJSON_PrintUnformatted(j);
        cJSON_Delete(j);
        if (s)
            cairn_buf_puts(&b->q, s);
        cJSON_free(s);
        snprintf(b->route, sizeof b->route, "refused");
        b->begun = true;
    }
    b->finished = true;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

static void *worker(void *arg)
{
    bridge *b = arg;
    run_gateway(b);
    bridge_unref(b);
    return NULL;
}

static ssize_t b_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    bridge *b = cls;
    pthread_mutex_lock(&b->mu);
    while (b->q.len == b->off && !b->finished) {
        /* wake now and then to notice a client that hung up while the
         * answer is slow to come (the writer then stops at its next write) */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 250000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        if (pthread_cond_timedwait(&b->cv, &b->mu, &ts) != 0 && !wait_or_hangup(-1, b->sock, 0)) {
            b->gone = true;
            pthread_cond_broadcast(&b->cv);
            pthread_mutex_unlock(&b->mu);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
    }
    ssize_t n;
    if (b->q.len > b->off) {
        n = (ssize_t)CAIRN_MIN(max, b->q.len - b->off);
        memcpy(buf, b->q.data + b->off, (size_t)n);
        b->off += (size_t)n;
        if (b->off == b->q.len) {
            cairn_buf_reset(&b->q);
            b->off = 0;
        }
        pthread_cond_broadcast(&b->cv);
    } else {
        n = MHD_CONTENT_READER_END_OF_STREAM;
    }
    pthread_mutex_unlock(&b->mu);
    return n;
}

static void b_free(void *cls)
{
    bridge *b = cls;
    pthread_mutex_lock(&b->mu);
    b->gone = true;      /* the client is gone or done: a writer still running stops */
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    bridge_unref(b);
}

/* Header-safe copy of a rule (printable ASCII, no CR/LF). */
static void header_safe(const char *s, char *out, size_t n)
{
    size_t k = 0;
    for (; *s && k + 1 < n; s++)
        out[k++] = (*s >= 32 && *s < 127) ? *s : '?';
    out[k] = 0;
}

static void route_headers(struct MHD_Response *resp, const bridge *b)
{
    char rule[256];
    MHD_add_response_header(resp, "X-Cairn-Route", b->route[0] ? b->route : "error");
    if (b->upstream[0])
        MHD_add_response_header(resp, "X-Cairn-Upstream", b->upstream);
    header_safe(b->rule, rule, sizeof rule);
    MHD_add_response_header(resp, "X-Cairn-Rule", rule);
}

/* Which chunks a grounded request's sources hold, and whether each is
 * private: read from the store (the document's `private` metadata), never
 * from what the sources JSON happens to carry. Anything unreadable counts
 * as private (fail closed). Paths are owned by `sources`. */
static cairn_status chunk_refs(cairn_server *S, const cJSON *sources, gw_chunk_ref **out, size_t *n)
{
    size_t cnt = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, sources)
    {
        int k = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(it, "chunk_ids"));
        cnt += k > 0 ? (size_t)k : 1;
    }
    *out = cairn_calloc(cnt ? cnt : 1, sizeof **out);
    if (!*out)
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
    *n = 0;
    srv_store *h = NULL;
    bool have = store_pool_get(S->stores, &h) == CAIRN_OK;
    cJSON_ArrayForEach(it, sources)
    {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(it, "path");
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(it, "doc_id");
        const cJSON *ids = cJSON_GetObjectItemCaseSensitive(it, "chunk_ids"), *c;
        int tag = have && cJSON_IsNumber(d) ? gw_doc_private_tag(h->s, (int64_t)d->valuedouble) : 1;
        const char *path = cJSON_IsString(p) ? p->valuestring : NULL;
        bool any = false;
        cJSON_ArrayForEach(c, ids)
        {
            (*out)[(*n)++] = (gw_chunk_ref){path, tag, cJSON_IsNumber(c) ? (int64_t)c->valuedouble : -1};
            any = true;
        }
        if (!any)
            (*out)[(*n)++] = (gw_chunk_ref){path, tag, -1};
    }
    if (have)
        store_pool_put(S->stores, h);
    else
        cairn_clear_error();
    return CAIRN_OK;
}

/* The grounded upstream body: the client's request with the rewritten
 * messages (system prompt with the sources first) and without cairn-rag's
 * own fields. */
static char *grounded_body(const cJSON *body, const chat_msg *msgs, int n)
{
    cJSON *j = cJSON_Duplicate(body, 1);
    if (!j)
        return NULL;
    cJSON_DeleteItemFromObjectCaseSensitive(j, "messages");
    cJSON_DeleteItemFromObjectCaseSensitive(j, "filter");
    cJSON_DeleteItemFromObjectCaseSensitive(j, "k");
    cJSON *a = cJSON_AddArrayToObject(j, "messages");
    for (int i = 0; a && i < n; i++) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "role", msgs[i].role);
        cJSON_AddStringToObject(m, "content", msgs[i].content);
        cJSON_AddItemToArray(a, m);
    }
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

enum MHD_Result srv_gateway_handle(http_req *r, gw_endpoint ep)
{
    cairn_server *S = r->S;
    enum MHD_Result ret = MHD_YES;
    cJSON *j = body_json(r, &ret);
    if (!j)
        return ret;
    bridge *b = cairn_calloc(1, sizeof *b);
    if (!b) {
        cJSON_Delete(j);
        return reply_error(r, 500, NULL, NULL, "out of memory");
    }
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, NULL);
    b->refs = 1;
    b->S = S;
    b->ep = ep;
    cairn_buf_init(&b->q, 0);
    const char *ph = req_header(r, "X-Cairn-Route-Policy");
    if (ph)
        snprintf(b->policy, sizeof b->policy, "%s", ph);
    b->body = cJSON_PrintUnformatted(j);
    b->body_len = b->body ? strlen(b->body) : 0;
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(j, "model");
    if (ep == GW_EP_CHAT && cJSON_IsString(model) && !strcmp(model->valuestring, "cairn-rag") && S->stores && S->eng) {
        /* grounded: retrieve now, so privacy sees the chunks */
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "messages"), *it;
        int n = cJSON_GetArraySize(m), i = 0;
        chat_msg *msgs = cJSON_IsArray(m) && n > 0 && n <= 1024 ? cairn_calloc((size_t)n, sizeof *msgs) : NULL;
        cairn_buf arena;
        cairn_buf_init(&arena, 0);
        size_t *offs = msgs ? cairn_calloc((size_t)n, sizeof *offs) : NULL;
        bool ok = msgs && offs;
        cJSON_ArrayForEach(it, m)
        {
            if (!ok)
                break;
            const cJSON *role = cJSON_GetObjectItemCaseSensitive(it, "role");
            const cJSON *content = cJSON_GetObjectItemCaseSensitive(it, "content");
            offs[i] = arena.len;
            ok = cJSON_IsString(role) && cJSON_IsString(content) && cairn_buf_puts(&arena, content->valuestring) == CAIRN_OK &&
                 cairn_buf_putc(&arena, 0) == CAIRN_OK;
            msgs[i].role = ok ? role->valuestring : "";
            i++;
        }
        if (ok) {
            for (i = 0; i < n; i++)
                msgs[i].content = arena.data + offs[i];
            b->sources = rag_prepare(r, j, &msgs, &n, &arena, &ret);
            if (!b->sources) {          /* rag_prepare answered (a 400 or 500) */
                cairn_free(offs);
                cairn_free(msgs);
                cairn_buf_free(&arena);
                cJSON_Delete(j);
                bridge_unref(b);
                return ret;
            }
            b->grounded = true;
            b->local_body = b->body;
            b->local_len = b->body_len;
            b->body = grounded_body(j, msgs, n);
            b->body_len = b->body ? strlen(b->body) : 0;
            if (chunk_refs(S, b->sources, &b->chunks, &b->n_chunks) != CAIRN_OK)
                ok = false;
        }
        cairn_free(offs);
        cairn_free(msgs);
        cairn_buf_free(&arena);
        if (!ok || !b->body) {
            cJSON_Delete(j);
            bridge_unref(b);
            return reply_error(r, 400, "invalid_value", "messages", "messages must be {role, content} strings");
        }
    }
    bool stream = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "stream"));
    cJSON_Delete(j);
    if (!b->body) {
        bridge_unref(b);
        return reply_error(r, 500, NULL, NULL, "out of memory");
    }
    if (!stream) {
        /* the whole answer is collected in this thread, then sent */
        run_gateway(b);
        if (b->grounded && !strcmp(b->route, "upstream") && b->status == 200) {
            /* an upstream's grounded answer carries the sources too, as a local one does */
            cJSON *a = cJSON_ParseWithLength(b->q.data ? b->q.data : "", b->q.len);
            char *s = NULL;
            if (cJSON_IsObject(a) && !cJSON_GetObjectItemCaseSensitive(a, "sources")) {
                cJSON_AddItemToObject(a, "sources", b->sources);
                b->sources = NULL;
                s = cJSON_PrintUnformatted(a);
            }
            cJSON_Delete(a);
            if (s) {
                cairn_buf_reset(&b->q);
                b->off = 0;
                cairn_buf_puts(&b->q, s);
                cJSON_free(s);
            }
        }
        struct MHD_Response *resp = MHD_create_response_from_buffer(b->q.len, b->q.data ? b->q.data : (void *)"",
                                                                    MHD_RESPMEM_MUST_COPY);
        if (resp) {
            MHD_add_response_header(resp, "Content-Type", b->ctype[0] ? b->ctype : "application/json");
            route_headers(resp, b);
        }
        int status = b->status ? b->status : 500;
        bridge_unref(b);
        return reply_queue(r, status, resp);
    }
    b->sock = req_socket(r);
    b->refs = 2;    /* the worker and the response */
    pthread_t t;
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &at, worker, b) != 0) {
        pthread_attr_destroy(&at);
        b->refs = 1;
        bridge_unref(b);
        return reply_error(r, 503, "overloaded", NULL, "cannot start a thread for the stream");
    }
    pthread_attr_destroy(&at);
    pthread_mutex_lock(&b->mu);
    while (!b->begun && !b->finished)
        pthread_cond_wait(&b->cv, &b->mu);
    int status = b->status ? b->status : 500;
    bool sse = !strncmp(b->ctype, "text/event-stream", 17);
    if (!sse)   /* an error answer (JSON): wait for all of it */
        while (!b->finished)
            pthread_cond_wait(&b->cv, &b->mu);
    pthread_mutex_unlock(&b->mu);
    struct MHD_Response *resp;
    if (sse) {
        resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, b_read, b, b_free);
        if (!resp) {
            b_free(b);
            return MHD_NO;
        }
        MHD_add_response_header(resp, "Content-Type", "text/event-stream");
        MHD_add_response_header(resp, "Cache-Control", "no-cache");
    } else {
        resp = MHD_create_response_from_buffer(b->q.len, b->q.data ? b->q.data : (void *)"", MHD_RESPMEM_MUST_COPY);
        if (resp)
            MHD_add_response_header(resp, "Content-Type", b->ctype[0] ? b->ctype : "application/json");
    }
    if (resp)
        route_headers(resp, b);
    if (!sse)
        b_free(b);
    return reply_queue(r, status, resp);
}

enum MHD_Result api_gateway(http_req *r)
{
    if (!r->S->gw)
        return reply_error(r, 404, "not_available", NULL, "no gateway: no [upstream NAME] in the config (docs/gateway.md)");
    char *s = NULL;
    cairn_status st = gw_status_json(r->S->gw, &s);
    if (st != CAIRN_OK)
        return reply_status(r, st, "gateway");
    enum MHD_Result ret = reply_text(r, 200, "application/json", s, strlen(s));
    cairn_free(s);
    return ret;
}

cairn_status srv_gateway_metrics(cairn_server *S, cairn_buf *out)
{
    return S->gw ? gw_metrics(S->gw, out) : CAIRN_OK;
}

/* ---- the test switch ---- */

static void record(http_req *r)
{
    const char *path = getenv("CAIRN_TEST_RECORD");
    if (!path || !*path)
        return;
    cairn_buf b;
    cairn_buf_init(&b, 0);
    cairn_buf_printf(&b, "%s %s\n", r->method, r->url);
    const char *names[] = {"Host", "Authorization", "Content-Type", "Content-Length", "User-Agent", "Accept",
                           "X-Cairn-Route-Policy", "X-Cairn-Internal"};
    for (size_t i = 0; i < CAIRN_ARRAY_LEN(names); i++) {
        const char *v = req_header(r, names[i]);
        if (v)
            cairn_buf_printf(&b, "%s: %s\n", names[i], v);
    }
    cairn_buf_puts(&b, "\n");
    if (r->body.len)
        cairn_buf_append(&b, r->body.data, r->body.len);
    cairn_buf_puts(&b, "\n");
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0) {
        if (b.len && write(fd, b.data, b.len) != (ssize_t)b.len)
            CAIRN_WARN("test record: short write");
        close(fd);
    }
    cairn_buf_free(&b);
}

bool srv_fault(http_req *r, enum MHD_Result *ret, int *drop_after)
{
    *drop_after = 0;
    record(r);
    const char *path = getenv("CAIRN_TEST_FAULT_FILE");
    if (!path || !*path)
        return false;
    char *text = NULL;
    size_t n = 0;
    if (cairn_file_read_all(path, 1 << 16, &text, &n) != CAIRN_OK)
        return false;
    cJSON *j = cJSON_ParseWithLength(text, n);
    cairn_free(text);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "mode");
    const char *mode = cJSON_IsString(m) ? m->valuestring : "ok";
    const cJSON *fn = cJSON_GetObjectItemCaseSensitive(j, "fail_n");
    if (cJSON_IsNumber(fn)) {
        int left = (int)fn->valuedouble;
        if (left <= 0) {
            mode = "ok";
        } else {
            /* count down in the file, so the next request sees one fewer */
            cJSON_SetNumberValue((cJSON *)fn, left - 1);
            char *s = cJSON_PrintUnformatted(j);
            if (s)
                cairn_file_write_atomic(path, s, strlen(s));
            cJSON_free(s);
        }
    }
    int delay = (int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(j, "delay_ms"));
    int drop = (int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(j, "drop_after"));
    bool handled = true;
    if (!strcmp(mode, "fail")) {
        *ret = reply_error(r, 500, "test_fault", NULL, "test switch: failing");
    } else if (!strcmp(mode, "429")) {
        *ret = reply_error(r, 429, "rate_limited", NULL, "test switch: rate limited");
    } else if (!strcmp(mode, "timeout")) {
        int sock = req_socket(r);
        for (int i = 0; i < 600 && wait_or_hangup(-1, sock, 100); i++)
            ;
        *ret = MHD_NO;
    } else if (!strcmp(mode, "drop")) {
        *drop_after = drop > 0 ? drop : 1;
        handled = false;
        if (!strstr(r->body.data ? r->body.data : "", "\"stream\":true") &&
            !strstr(r->body.data ? r->body.data : "", "\"stream\": true")) {
            *ret = MHD_NO;          /* a plain answer: the connection just closes */
            handled = true;
        }
    } else {
        if (!strcmp(mode, "slow") && delay > 0)
            usleep((useconds_t)delay * 1000);
        handled = false;
    }
    cJSON_Delete(j);
    return handled;
}
