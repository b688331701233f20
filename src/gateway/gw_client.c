/*
 * gw_client.c — one HTTP exchange with an OpenAI-compatible upstream, on
 * libcurl's multi interface so the gateway keeps its own deadlines to the
 * millisecond (curl's progress callback only runs about once a second):
 *   - timeout_ms: connect + the first byte of the answer;
 *   - idle_ms (default = timeout_ms): the longest gap between bytes after it.
 * A gw_conn (multi + easy handle) is reused between calls, so its
 * connection stays open (no TCP handshake per request).
 *
 * Streams (text/event-stream with status 200) are parsed into events
 * (gw_sse.c) and each event is written to the sink as "data: ...\n\n" as it
 * arrives; [DONE] is held back for the caller. Anything else is collected
 * (capped at GW_MAX_BODY_BYTES) and classified: 200 -> the answer; 429 and
 * 5xx, 408 -> failures the policy may fall back on (nothing written); other
 * 4xx -> the upstream's answer, written through.
 */
#define _GNU_SOURCE    /* memmem */
#include "gateway/gw_int.h"
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct gw_conn {
    CURLM *multi;
    CURL *easy;
};

cairn_status gw_conn_new(gw_conn **out)
{
    gw_conn *c = cairn_calloc(1, sizeof *c);
    if (!c)
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
    c->multi = curl_multi_init();
    c->easy = curl_easy_init();
    if (!c->multi || !c->easy) {
        gw_conn_free(c);
        return cairn_fail(CAIRN_ERR_NOMEM, "cannot create a curl handle");
    }
    *out = c;
    return CAIRN_OK;
}

void gw_conn_free(gw_conn *c)
{
    if (!c)
        return;
    if (c->easy)
        curl_easy_cleanup(c->easy);
    if (c->multi)
        curl_multi_cleanup(c->multi);
    cairn_free(c);
}

void gw_json_usage(const char *json, size_t n, int64_t *in, int64_t *out, bool *seen)
{
    cJSON *j = cJSON_ParseWithLength(json, n);
    if (!j)
        return;
    cJSON *u = cJSON_GetObjectItemCaseSensitive(j, "usage");
    if (cJSON_IsObject(u)) {
        cJSON *p = cJSON_GetObjectItemCaseSensitive(u, "prompt_tokens");
        cJSON *c = cJSON_GetObjectItemCaseSensitive(u, "completion_tokens");
        if (cJSON_IsNumber(p) && p->valuedouble >= 0 && p->valuedouble < 1e12)
            *in = (int64_t)p->valuedouble;
        if (cJSON_IsNumber(c) && c->valuedouble >= 0 && c->valuedouble < 1e12)
            *out = (int64_t)c->valuedouble;
        *seen = true;
    }
    cJSON_Delete(j);
}

typedef struct xfer {
    gw_call *call;
    gw_sse sse;
    cairn_buf body;             /* non-stream answers */
    bool is_sse;
    bool headers_done;
    bool too_large;
    int64_t last_byte_ns;
    bool got_byte;
    cairn_buf ev;               /* "data: ...\n\n" framing */
    CURL *easy;
} xfer;

static cairn_status on_event(void *ctx, const char *data, size_t n)
{
    xfer *x = ctx;
    gw_call *call = x->call;
    if (n == 6 && !memcmp(data, "[DONE]", 6)) {
        call->done_seen = true;
        return CAIRN_OK;
    }
    call->events++;
    /* usage rides on the last chunk (stream_options.include_usage) */
    if (n < 65536 && memmem(data, n, "\"usage\"", 7))
        gw_json_usage(data, n, &call->usage_in, &call->usage_out, &call->usage_seen);
    if (!call->started) {
        call->started = true;
        if (call->sink->begin(call->sink->ctx, 200, "text/event-stream", call->info) != CAIRN_OK) {
            call->sink_failed = true;
            return CAIRN_ERR_INTERRUPTED;
        }
    }
    cairn_buf_reset(&x->ev);
    CAIRN_TRY(cairn_buf_append(&x->ev, "data: ", 6));
    CAIRN_TRY(cairn_buf_append(&x->ev, data, n));
    CAIRN_TRY(cairn_buf_append(&x->ev, "\n\n", 2));
    if (call->sink->write(call->sink->ctx, x->ev.data, x->ev.len) != CAIRN_OK) {
        call->sink_failed = true;
        return CAIRN_ERR_INTERRUPTED;
    }
    return CAIRN_OK;
}

static size_t on_header(char *p, size_t size, size_t n, void *ctx)
{
    xfer *x = ctx;
    size_t len = size * n;
    if (len >= 13 && !strncasecmp(p, "content-type:", 13)) {
        const char *v = p + 13;
        while (*v == ' ')
            v++;
        x->is_sse = !strncasecmp(v, "text/event-stream", 17);
    }
    return len;
}

static size_t on_data(char *p, size_t size, size_t n, void *ctx)
{
    xfer *x = ctx;
    size_t len = size * n;
    x->got_byte = true;
    x->last_byte_ns = cairn_mono_ns();
    gw_call *call = x->call;
    if (!x->headers_done) {
        long code = 0;
        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
        call->http_status = (int)code;
        x->headers_done = true;
    }
    if (call->http_status == 200 && x->is_sse) {
        if (gw_sse_feed(&x->sse, p, len) != CAIRN_OK)
            return 0;       /* aborts the transfer: cap hit or the client left */
        return len;
    }
    if (cairn_buf_append(&x->body, p, len) != CAIRN_OK) {
        x->too_large = true;
        return 0;
    }
    return len;
}


void gw_upstream_call(gw_conn *c, gw_call *call)
{
    const gw_upstream_cfg *u = call->up;
    call->http_status = 0;
    call->fail = GW_FAIL_NONE;
    call->started = call->done_seen = call->sink_failed = call->usage_seen = false;
    call->usage_in = call->usage_out = 0;
    call->events = 0;
    call->err[0] = 0;

    char url[1200];
    snprintf(url, sizeof url, "%s/%s", u->base_url, call->ep == GW_EP_CHAT ? "chat/completions" : "completions");
    struct curl_slist *hdr = NULL;
    hdr = curl_slist_append(hdr, "Content-Type: application/json");
    hdr = curl_slist_append(hdr, "Expect:");          /* no 100-continue round trip */
    if (call->stream)
        hdr = curl_slist_append(hdr, "Accept: text/event-stream");
    char auth[1100];
    if (u->key_env) {
        const char *key = getenv(u->key_env);
        if (!key || !*key) {
            curl_slist_free_all(hdr);
            call->fail = GW_FAIL_NO_KEY;
            snprintf(call->err, sizeof call->err, "environment variable %s (the API key) is not set", u->key_env);
            return;
        }
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
        hdr = curl_slist_append(hdr, auth);
    }
    for (size_t i = 0; i < CAIRN_ARRAY_LEN(u->hdr) && u->hdr[i]; i++)
        hdr = curl_slist_append(hdr, u->hdr[i]);
    if (!hdr) {
        call->fail = GW_FAIL_ERROR;
        snprintf(call->err, sizeof call->err, "out of memory");
        return;
    }

    xfer x;
    memset(&x, 0, sizeof x);
    x.call = call;
    gw_sse_init(&x.sse, GW_MAX_EVENT_BYTES, on_event, &x);
    cairn_buf_init(&x.body, GW_MAX_BODY_BYTES);
    cairn_buf_init(&x.ev, GW_MAX_EVENT_BYTES + 16);

    CURL *e = c->easy;
    x.easy = e;
    curl_easy_reset(e);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, call->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)call->body_len);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, &x);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &x);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_USERAGENT, "cairn-gateway/" CAIRN_VERSION);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)(u->timeout_ms > 0 ? u->timeout_ms : 10000));

    int64_t t0 = cairn_mono_ns();
    int64_t first_ns = (u->timeout_ms > 0 ? u->timeout_ms : 10000) * 1000000;
    int64_t idle_ns = (u->idle_ms > 0 ? u->idle_ms : u->timeout_ms > 0 ? u->timeout_ms : 10000) * 1000000;
    bool timed_out = false;
    curl_multi_add_handle(c->multi, e);
    int running = 1;
    CURLMcode mc = CURLM_OK;
    while (running) {
        mc = curl_multi_perform(c->multi, &running);
        if (mc != CURLM_OK)
            break;
        if (!running)
            break;
        int64_t now = cairn_mono_ns();
        int64_t deadline = x.got_byte ? x.last_byte_ns + idle_ns : t0 + first_ns;
        if (now >= deadline) {
            timed_out = true;
            break;
        }
        /* round down: waking up to 1 ms early costs a few spins; rounding
         * up would let the deadline slip by up to 1 ms */
        int64_t wait_ms = (deadline - now) / 1000000;
        mc = curl_multi_poll(c->multi, NULL, 0, (int)CAIRN_MIN(wait_ms, 1000), NULL);
        if (mc != CURLM_OK)
            break;
    }
    CURLcode rc = CURLE_OK;
    if (!timed_out && mc == CURLM_OK) {
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(c->multi, &left)))
            if (m->msg == CURLMSG_DONE)
                rc = m->data.result;
    }
    long code = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
    call->http_status = (int)code;
    curl_multi_remove_handle(c->multi, e);
    curl_slist_free_all(hdr);

    if (call->sink_failed) {
        call->fail = GW_FAIL_NONE;      /* the client left: nothing more to say */
        snprintf(call->err, sizeof call->err, "client went away");
    } else if (timed_out) {
        call->fail = call->started ? GW_FAIL_BROKEN : GW_FAIL_TIMEOUT;
        snprintf(call->err, sizeof call->err, "%s after %lld ms", x.got_byte ? "no data" : "no answer",
                 (long long)(x.got_byte ? idle_ns : first_ns) / 1000000);
    } else if (mc != CURLM_OK) {
        call->fail = call->started ? GW_FAIL_BROKEN : GW_FAIL_ERROR;
        snprintf(call->err, sizeof call->err, "curl: %s", curl_multi_strerror(mc));
    } else if (x.too_large) {
        call->fail = call->started ? GW_FAIL_BROKEN : GW_FAIL_ERROR;
        snprintf(call->err, sizeof call->err, "answer larger than %zu bytes", GW_MAX_BODY_BYTES);
    } else if (rc != CURLE_OK) {
        call->fail = call->started ? GW_FAIL_BROKEN : rc == CURLE_OPERATION_TIMEDOUT ? GW_FAIL_TIMEOUT : GW_FAIL_ERROR;
        snprintf(call->err, sizeof call->err, "%s", curl_easy_strerror(rc));
    } else if (call->http_status == 200 && x.is_sse) {
        if (!call->done_seen) {
            call->fail = call->started ? GW_FAIL_BROKEN : GW_FAIL_ERROR;
            snprintf(call->err, sizeof call->err, "stream ended without [DONE] after %zu events", call->events);
        }
    } else if (call->http_status == 429) {
        call->fail = GW_FAIL_HTTP_429;
        snprintf(call->err, sizeof call->err, "HTTP 429 (rate limited)");
    } else if (call->http_status >= 500 || call->http_status == 408 || call->http_status < 200) {
        call->fail = GW_FAIL_HTTP_5XX;
        snprintf(call->err, sizeof call->err, "HTTP %d", call->http_status);
    } else {
        /* 200 JSON, or a 4xx that is the upstream's answer to this request */
        if (call->http_status == 200)
            gw_json_usage(x.body.data ? x.body.data : "", x.body.len, &call->usage_in, &call->usage_out, &call->usage_seen);
        call->started = true;
        if (call->sink->begin(call->sink->ctx, call->http_status, "application/json", call->info) != CAIRN_OK ||
            call->sink->write(call->sink->ctx, x.body.data ? x.body.data : "", x.body.len) != CAIRN_OK)
            call->sink_failed = true;
        if (call->http_status != 200)
            snprintf(call->err, sizeof call->err, "HTTP %d passed to the client", call->http_status);
    }
    gw_sse_free(&x.sse);
    cairn_buf_free(&x.body);
    cairn_buf_free(&x.ev);
}
