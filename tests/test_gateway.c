/*
 * test_gateway.c — the gateway library against a real HTTP upstream on
 * loopback (tests/tools/fake_upstream.js under node: records every byte it
 * receives, and can be told to fail, answer 429/500, time out, be slow or
 * drop a stream halfway) and a scripted local answerer.
 *
 * Proves: config errors name the key; the SSE parser's framing and cap;
 * every policy against every upstream and local failure (stream and not),
 * including the stream that breaks halfway; retries; the circuit breaker;
 * budgets stop exactly at the cap (tokens, money), persist across a reopen
 * and reset at the day boundary (injected clock); the randomized privacy
 * test (no private chunk text and no redacted pattern ever reaches the
 * upstream); the audit log never holds content.
 */
#include "gateway/gw_int.h"
#include "t.h"
#include <curl/curl.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>

static pid_t fake_pid = -1;
static int fake_port;
static char record_path[1200];
static char tmp[1024];

static void fake_start(void)
{
    snprintf(record_path, sizeof record_path, "%s/upstream-record.txt", tmp);
    int fd[2];
    if (pipe(fd))
        exit(1);
    /* tests are compiled with their absolute path: the helper sits next to us */
    char script[1200];
    snprintf(script, sizeof script, "%s", __FILE__);
    char *slash = strrchr(script, '/');
    snprintf(slash ? slash + 1 : script, sizeof script - (size_t)(slash ? slash + 1 - script : 0), "tools/fake_upstream.js");
    fake_pid = fork();
    if (fake_pid == 0) {
        dup2(fd[1], 1);
        close(fd[0]);
        execlp("node", "node", script, record_path, (char *)NULL);
        _exit(127);
    }
    close(fd[1]);
    char line[64] = "";
    size_t n = 0;
    while (n < sizeof line - 1 && read(fd[0], line + n, 1) == 1 && line[n] != '\n')
        n++;
    line[n] = 0;
    close(fd[0]);
    if (sscanf(line, "PORT %d", &fake_port) != 1) {
        int status;
        waitpid(fake_pid, &status, 0);
        SKIP_ALL("node (for the fake upstream) is not available");
    }
}

static void fake_stop(void)
{
    if (fake_pid > 0) {
        kill(fake_pid, SIGTERM);
        waitpid(fake_pid, NULL, 0);
    }
}

static size_t sink_curl(char *p, size_t s, size_t n, void *ctx)
{
    cairn_buf_append(ctx, p, s * n);
    return s * n;
}

/* POST to the fake's control endpoints (not recorded). */
static void fake_ctl(const char *path, const char *json, cairn_buf *out)
{
    CURL *e = curl_easy_init();
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", fake_port, path);
    curl_easy_setopt(e, CURLOPT_URL, url);
    if (json)
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, json);
    cairn_buf ignored;
    cairn_buf_init(&ignored, 1 << 16);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, sink_curl);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, out ? out : &ignored);
    CURLcode rc = curl_easy_perform(e);
    cairn_buf_free(&ignored);
    if (rc != CURLE_OK) {
        fprintf(stderr, "fake control %s: %s\n", path, curl_easy_strerror(rc));
        exit(1);
    }
    curl_easy_cleanup(e);
}

static void fake_mode(const char *json) { fake_ctl("/_mode", json, NULL); }

static long fake_requests(void)
{
    cairn_buf b;
    cairn_buf_init(&b, 4096);
    fake_ctl("/_stats", NULL, &b);
    long n = -1;
    if (b.data)
        sscanf(b.data, "{\"requests\":%ld", &n);
    cairn_buf_free(&b);
    return n;
}

static char *read_record(void)
{
    char *s = NULL;
    size_t n;
    if (cairn_file_read_all(record_path, (size_t)1 << 30, &s, &n) != CAIRN_OK)
        return cairn_strdup("");
    return s;
}

/* ---- the sink: what the client would get ---- */
typedef struct got {
    int begins, status;
    char ctype[64], route[16], upstream[64], rule[256];
    bool fallback;
    cairn_buf body;
} got;

static cairn_status got_begin(void *ctx, int status, const char *ctype, const gw_route_info *info)
{
    got *g = ctx;
    g->begins++;
    g->status = status;
    snprintf(g->ctype, sizeof g->ctype, "%s", ctype);
    snprintf(g->route, sizeof g->route, "%s", info->route ? info->route : "");
    snprintf(g->upstream, sizeof g->upstream, "%s", info->upstream ? info->upstream : "");
    snprintf(g->rule, sizeof g->rule, "%s", info->rule ? info->rule : "");
    g->fallback = info->fallback;
    return CAIRN_OK;
}

static cairn_status got_write(void *ctx, const char *p, size_t n) { return cairn_buf_append(&((got *)ctx)->body, p, n); }

static void got_init(got *g)
{
    memset(g, 0, sizeof *g);
    cairn_buf_init(&g->body, 0);
}

static const char *got_text(const got *g) { return g->body.data ? g->body.data : ""; }

/* ---- the scripted local answerer ---- */
typedef struct fake_local {
    gw_fail fail;
    int calls;
} fake_local;

static gw_fail local_answer(void *ctx, const gw_request *req, int64_t deadline, const gw_route_info *info, const gw_sink *sink,
                            int64_t *in, int64_t *out)
{
    fake_local *l = ctx;
    l->calls++;
    if (l->fail != GW_FAIL_NONE) {
        cairn_fail(CAIRN_ERR_INTERNAL, "scripted local %s", gw_fail_name(l->fail));
        return l->fail;
    }
    bool stream = strstr(req->body, "\"stream\":true") != NULL;
    if (stream) {
        sink->begin(sink->ctx, 200, "text/event-stream", info);
        const char *ev = "data: {\"id\":\"l\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"LOCAL\"}}]}\n\n";
        sink->write(sink->ctx, ev, strlen(ev));
        sink->write(sink->ctx, "data: [DONE]\n\n", 14);
    } else {
        sink->begin(sink->ctx, 200, "application/json", info);
        const char *b = "{\"id\":\"l\",\"object\":\"chat.completion\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"LOCAL\"}}]}";
        sink->write(sink->ctx, b, strlen(b));
    }
    *in = 3;
    *out = 1;
    return GW_FAIL_NONE;
}

static gw *open_gw(const char *ini_text, const char *dir)
{
    store_config ini;
    store_config_default(&ini);
    CHECK_OK(store_config_parse(&ini, "test", ini_text, strlen(ini_text)));
    gw_config c;
    gw_config_init(&c);
    cairn_status st = gw_config_from_ini(&c, &ini);
    store_config_free(&ini);
    CHECKF(st == CAIRN_OK, "%s", cairn_last_error());
    gw *g = NULL;
    CHECK_OK(gw_open(&g, &c, dir));
    return g;
}

static cairn_status config_error(const char *text)
{
    store_config ini;
    store_config_default(&ini);
    cairn_status st = store_config_parse(&ini, "t", text, strlen(text));
    gw_config c;
    gw_config_init(&c);
    if (st == CAIRN_OK)
        st = gw_config_from_ini(&c, &ini);
    gw_config_free(&c);
    store_config_free(&ini);
    return st;
}

static void test_config(void)
{
    CHECK(config_error("[upstream a]\nurl = http://x/v1\nmodels = m1, m2\nprice_in = 0.5\nbudget_money = 1.25\n") == CAIRN_OK);
    CHECK(config_error("[upstream a]\nurl = http://x/v1\ncolour = red\n") == CAIRN_ERR_INVALID);
    CHECK(strstr(cairn_last_error(), "colour"));
    CHECK(config_error("[upstream a]\nurl = ftp://x\n") == CAIRN_ERR_INVALID);
    CHECK(config_error("[upstream a]\nmodels = m\n") == CAIRN_ERR_INVALID);               /* no url */
    CHECK(config_error("[upstream a]\nurl = http://x\nkey_env = sk-abc123\n") == CAIRN_ERR_INVALID); /* a key, not a name */
    CHECK(strstr(cairn_last_error(), "never goes in the config"));
    CHECK(config_error("[upstream a]\nurl = http://x\nprice_in = 0.0000001\n") == CAIRN_ERR_INVALID);
    CHECK(config_error("[gateway]\npolicy = cloud-first\n") == CAIRN_ERR_INVALID);         /* no upstream */
    CHECK(config_error("[gateway]\npolicy = sometimes\n") == CAIRN_ERR_INVALID);
    CHECK(config_error("[redact]\nbad = (unclosed\n") == CAIRN_ERR_INVALID);
    CHECK(strstr(cairn_last_error(), "regular expression"));
    CHECK(config_error("[model-map]\nx = cloud-first nowhere\n[upstream a]\nurl = http://x\n") == CAIRN_ERR_INVALID);
    CHECK(config_error("[privacy]\ndefault = maybe\n") == CAIRN_ERR_INVALID);
    CHECK(config_error("[upstream a]\nurl = http://x\ntimeout = soon\n") == CAIRN_ERR_INVALID);
    int64_t v;
    CHECK_OK(gw_parse_price("0.002", &v));
    CHECK_EQ_INT(v, 2000);
    CHECK_OK(gw_parse_price("12", &v));
    CHECK_EQ_INT(v, 12000000);
    CHECK(gw_parse_price("-1", &v) != CAIRN_OK);
    CHECK(gw_parse_price("1e3", &v) != CAIRN_OK);
}

/* Every allocation of reading the rules and of redaction fails in turn:
 * each failure is a clean error (ASan: nothing leaks), never a crash. */
static void test_alloc_failures(void)
{
    const char *text = "[gateway]\npolicy = cloud-first\n[upstream a]\nurl = http://x/v1\nmodels = m1, m2\nkey_env = K\n"
                       "[model-map]\nm1 = cloud-only a\n[redact]\nmail = [a-z]+@[a-z]+\n[privacy]\npaths = s/*, t/*\n";
    store_config ini;
    store_config_default(&ini);
    CHECK_OK(store_config_parse(&ini, "t", text, strlen(text)));
    int failed = 0, ok = 0;
    for (long n = 0; n < 200; n++) {
        gw_config c;
        gw_config_init(&c);
        cairn_alloc_fail_after(n, false);
        cairn_status st = gw_config_from_ini(&c, &ini);
        char *out = NULL;
        size_t len = 0;
        int cnt = 0;
        if (st == CAIRN_OK)
            st = gw_redact(&c, "write to a@b now", 16, &out, &len, &cnt);
        cairn_alloc_fail_after(-1, false);
        if (st == CAIRN_OK) {
            CHECK_EQ_STR(out, "write to [REDACTED:mail] now");
            ok++;
        } else {
            CHECK(st == CAIRN_ERR_NOMEM);
            failed++;
        }
        cairn_free(out);
        gw_config_free(&c);
        if (st == CAIRN_OK)
            break;
    }
    CHECK(failed > 5 && ok == 1);
    store_config_free(&ini);
}

typedef struct evs { int n; char last[256]; cairn_status fail_at; } evs;
static cairn_status on_ev(void *ctx, const char *d, size_t n)
{
    evs *e = ctx;
    e->n++;
    snprintf(e->last, sizeof e->last, "%.*s", (int)n, d);
    return CAIRN_OK;
}

static void test_sse(void)
{
    evs e = {0};
    gw_sse p;
    gw_sse_init(&p, 64, on_ev, &e);
    const char *s = ": comment\r\ndata: a\r\ndata: b\r\n\r\nevent: x\ndata:c\n\ndata: d\r\r";
    /* byte by byte: framing must not depend on how the bytes arrive */
    for (size_t i = 0; s[i]; i++)
        CHECK_OK(gw_sse_feed(&p, s + i, 1));
    CHECK_EQ_INT(e.n, 3);
    CHECK_EQ_STR(e.last, "d");
    gw_sse_free(&p);
    e.n = 0;
    gw_sse_init(&p, 64, on_ev, &e);
    CHECK_OK(gw_sse_feed(&p, s, strlen(s)));
    CHECK_EQ_INT(e.n, 3);
    char big[200];
    memset(big, 'x', sizeof big);
    CHECK(gw_sse_feed(&p, "data: ", 6) == CAIRN_OK);
    CHECK(gw_sse_feed(&p, big, sizeof big) == CAIRN_ERR_TOO_LARGE);
    gw_sse_free(&p);
}

static char ini_buf[4096];
static const char *matrix_ini(const char *extra)
{
    snprintf(ini_buf, sizeof ini_buf,
             "[upstream cloud]\nurl = http://127.0.0.1:%d/v1\nmodels = big\ntimeout = 700ms\nretries = 1\nbackoff = 5ms\n"
             "breaker_failures = 1000\n%s",
             fake_port, extra);
    return ini_buf;
}

static const char *u_modes[] = {"{\"mode\":\"ok\"}", "{\"mode\":\"fail\"}", "{\"mode\":\"429\"}", "{\"mode\":\"timeout\"}",
                                "{\"mode\":\"drop\",\"drop_after\":2}", "{\"mode\":\"slow\",\"delay_ms\":50}"};
enum { U_OK, U_FAIL, U_429, U_TIMEOUT, U_DROP, U_SLOW, U_N };
static const gw_fail l_modes[] = {GW_FAIL_NONE, GW_FAIL_ERROR, GW_FAIL_TIMEOUT, GW_FAIL_OVERLOAD, GW_FAIL_TOO_LONG};

/* The documented rules, written as the test's own table. */
static void expect(gw_policy p, int u, gw_fail l, bool stream, const char **route, bool *fallback, bool *broken)
{
    bool up_ok = u == U_OK || u == U_SLOW;
    bool up_broken = u == U_DROP && stream;     /* events reached the client */
    *fallback = false;
    *broken = false;
    switch (p) {
    case GW_POLICY_LOCAL_ONLY: *route = l == GW_FAIL_NONE ? "local" : "error"; return;
    case GW_POLICY_CLOUD_ONLY:
        *route = up_ok || up_broken ? "upstream" : "error";
        *broken = up_broken;
        return;
    case GW_POLICY_LOCAL_FIRST:
        if (l == GW_FAIL_NONE) { *route = "local"; return; }
        *fallback = true;
        *route = up_ok || up_broken ? "upstream" : "error";
        *broken = up_broken;
        return;
    case GW_POLICY_CLOUD_FIRST:
        if (up_ok || up_broken) { *route = "upstream"; *broken = up_broken; return; }
        *fallback = true;
        *route = l == GW_FAIL_NONE ? "local" : "error";
        return;
    default: return;
    }
}

static void test_matrix(void)
{
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/matrix", tmp);
    gw *g = open_gw(matrix_ini(""), dir);
    static const gw_policy pols[] = {GW_POLICY_LOCAL_ONLY, GW_POLICY_LOCAL_FIRST, GW_POLICY_CLOUD_FIRST, GW_POLICY_CLOUD_ONLY};
    int cases = 0;
    for (int u = 0; u < U_N; u++) {
        fake_mode(u_modes[u]);
        for (size_t pi = 0; pi < CAIRN_ARRAY_LEN(pols); pi++)
            for (size_t li = 0; li < CAIRN_ARRAY_LEN(l_modes); li++)
                for (int stream = 0; stream < 2; stream++) {
                    char body[256];
                    snprintf(body, sizeof body, "{\"model\":\"big\",\"stream\":%s,\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
                             stream ? "true" : "false");
                    gw_request rq = {.endpoint = GW_EP_CHAT, .body = body, .body_len = strlen(body),
                                     .policy_header = gw_policy_name(pols[pi])};
                    fake_local fl = {.fail = l_modes[li]};
                    gw_local lo = {&fl, local_answer};
                    got gt;
                    got_init(&gt);
                    gw_sink sk = {&gt, got_begin, got_write};
                    gw_result res;
                    CHECK_OK(gw_handle(g, &rq, &lo, &sk, &res));
                    const char *want = "";
                    bool fb, broken;
                    expect(pols[pi], u, l_modes[li], stream, &want, &fb, &broken);
                    cases++;
                    CHECKF(!strcmp(res.route, want) && res.fallback == fb, "policy %s upstream %s local %s stream %d: route %s fallback %d (want %s %d), rule %s",
                           gw_policy_name(pols[pi]), u_modes[u], gw_fail_name(l_modes[li]), stream, res.route, res.fallback, want, fb, res.rule);
                    CHECK_EQ_INT(gt.begins, 1);           /* one answer, always */
                    CHECK_EQ_STR(gt.route, res.route);    /* the header says what happened */
                    const char *t = got_text(&gt);
                    if (!strcmp(want, "upstream")) {
                        CHECK_EQ_STR(gt.upstream, "cloud");
                        CHECK(strstr(t, "up0"));
                    } else if (!strcmp(want, "local")) {
                        CHECK(strstr(t, "LOCAL"));
                        CHECK(!strstr(t, "up0"));
                    } else {
                        CHECK(gt.status >= 400);
                        CHECK(strstr(t, "\"error\""));
                    }
                    if (stream && !strcmp(want, "upstream")) {
                        if (broken) {
                            /* what a client gets from a stream that broke halfway:
                             * the events that arrived, then an error event, no [DONE] */
                            CHECK(strstr(t, "up1"));
                            CHECK(!strstr(t, "up2"));
                            CHECK(strstr(t, "\"code\":\"stream_broken\""));
                            CHECK(!strstr(t, "[DONE]"));
                        } else {
                            CHECK(strstr(t, "up4"));
                            CHECK(strstr(t, "data: [DONE]\n\n"));
                            CHECK(strstr(t, "\"cairn\":{\"route\":\"upstream\""));
                        }
                    }
                    if (!stream && gt.status == 200)
                        CHECK(strstr(t, "\"cairn\":{\"route\":"));     /* the route field in the body */
                    if (res.fallback)
                        CHECK(strstr(res.rule, "->"));                   /* the rule names the fall-over */
                    cairn_buf_free(&gt.body);
                }
    }
    CHECK_EQ_INT(cases, U_N * 4 * 5 * 2);
    cairn_buf m;
    cairn_buf_init(&m, 0);
    CHECK_OK(gw_metrics(g, &m));
    CHECK(strstr(m.data, "cairn_gateway_fallbacks_total"));
    CHECK(strstr(m.data, "cairn_gateway_upstream_errors_total{upstream=\"cloud\",kind=\"timeout\"}"));
    CHECK(strstr(m.data, "cairn_gateway_upstream_errors_total{upstream=\"cloud\",kind=\"http_429\"}"));
    CHECK(strstr(m.data, "cairn_gateway_streams_broken_total"));
    CHECK(strstr(m.data, "cairn_gateway_upstream_latency_seconds_bucket{upstream=\"cloud\",le=\"+Inf\"}"));
    cairn_buf_free(&m);
    gw_close(g);
}

static void test_retry_and_breaker(void)
{
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/breaker", tmp);
    gw *g = open_gw(matrix_ini(""), dir);
    const char *body = "{\"model\":\"big\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    gw_request rq = {.endpoint = GW_EP_CHAT, .body = body, .body_len = strlen(body), .policy_header = "cloud-only"};
    /* one 500, then fine: the retry answers */
    fake_mode("{\"mode\":\"fail\",\"fail_n\":1}");
    long r0 = fake_requests();
    got gt;
    got_init(&gt);
    gw_sink sk = {&gt, got_begin, got_write};
    gw_result res;
    CHECK_OK(gw_handle(g, &rq, NULL, &sk, &res));
    CHECK_EQ_STR(res.route, "upstream");
    CHECK_EQ_INT(res.attempts, 2);
    CHECK_EQ_INT(fake_requests() - r0, 2);
    cairn_buf_free(&gt.body);
    gw_close(g);

    /* breaker: 2 failed requests open it; the next is not sent */
    g = open_gw(matrix_ini("breaker_failures = 2\nbreaker_cooldown = 150ms\n"), dir);
    /* the [upstream] keys repeat (last wins): retries stay 1 */
    fake_mode("{\"mode\":\"fail\"}");
    for (int i = 0; i < 2; i++) {
        got_init(&gt);
        CHECK_OK(gw_handle(g, &rq, NULL, &sk, &res));
        CHECK_EQ_STR(res.route, "error");
        cairn_buf_free(&gt.body);
    }
    r0 = fake_requests();
    got_init(&gt);
    CHECK_OK(gw_handle(g, &rq, NULL, &sk, &res));
    CHECK_EQ_INT(fake_requests(), r0);          /* not even tried */
    CHECK(strstr(got_text(&gt), "breaker"));
    CHECK_EQ_INT(gt.status, 503);
    cairn_buf_free(&gt.body);
    char *js;
    CHECK_OK(gw_status_json(g, &js));
    CHECK(strstr(js, "\"state\":\"open\""));
    cairn_free(js);
    /* after the cool-down one trial goes through; success closes it */
    usleep(200000);
    fake_mode("{\"mode\":\"ok\"}");
    got_init(&gt);
    CHECK_OK(gw_handle(g, &rq, NULL, &sk, &res));
    CHECK_EQ_STR(res.route, "upstream");
    cairn_buf_free(&gt.body);
    CHECK_OK(gw_status_json(g, &js));
    CHECK(strstr(js, "\"state\":\"up\""));
    cairn_free(js);
    gw_close(g);
}

static gw_result ask_model(gw *g, const char *model, const char *policy, got *gt)
{
    char body[256];
    snprintf(body, sizeof body, "{\"model\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", model);
    gw_request rq = {.endpoint = GW_EP_CHAT, .body = body, .body_len = strlen(body), .policy_header = policy};
    fake_local fl = {0};
    gw_local lo = {&fl, local_answer};
    got_init(gt);
    gw_sink sk = {gt, got_begin, got_write};
    gw_result res;
    CHECK_OK(gw_handle(g, &rq, &lo, &sk, &res));
    return res;
}

static void test_model_map(void)
{
    char dir[1200], extra[512];
    snprintf(dir, sizeof dir, "%s/model-map", tmp);
    fake_mode("{\"mode\":\"ok\"}");
    snprintf(extra, sizeof extra,
             "[upstream other]\nurl = http://127.0.0.1:%d/v1\nmodels = other-model\n"
             "[gateway]\npolicy = model-map\nallow_override = false\n"
             "[model-map]\nbig = cloud-only cloud\ngpt-* = cloud-first\nother-model = cloud-first\ntiny = local-only\n", fake_port);
    gw *g = open_gw(matrix_ini(extra), dir);
    got gt;
    gw_result r = ask_model(g, "big", NULL, &gt);
    CHECK_EQ_STR(r.route, "upstream");
    CHECK_EQ_STR(r.upstream, "cloud");
    CHECK(strstr(r.rule, "model-map big"));
    cairn_buf_free(&gt.body);
    r = ask_model(g, "gpt-4o", NULL, &gt);             /* a glob; the default upstream */
    CHECK_EQ_STR(r.route, "upstream");
    CHECK_EQ_STR(r.policy, "cloud-first");
    CHECK_EQ_STR(r.upstream, "cloud");
    cairn_buf_free(&gt.body);
    r = ask_model(g, "other-model", NULL, &gt);        /* the upstream that serves the model */
    CHECK_EQ_STR(r.upstream, "other");
    cairn_buf_free(&gt.body);
    long n0 = fake_requests();
    r = ask_model(g, "tiny", NULL, &gt);
    CHECK_EQ_STR(r.route, "local");
    cairn_buf_free(&gt.body);
    r = ask_model(g, "unmapped", NULL, &gt);           /* no entry: local only */
    CHECK_EQ_STR(r.route, "local");
    CHECK(strstr(r.rule, "no entry"));
    CHECK_EQ_INT(fake_requests(), n0);
    cairn_buf_free(&gt.body);
    /* overrides are off: a request asking for another policy is refused */
    r = ask_model(g, "tiny", "cloud-first", &gt);
    CHECK_EQ_STR(r.route, "refused");
    CHECK_EQ_INT(gt.status, 403);
    CHECK(strstr(got_text(&gt), "allow_override"));
    cairn_buf_free(&gt.body);
    gw_close(g);
}

/* ---- budgets ---- */
static int64_t fake_now;
static int64_t clock_fn(void *ctx) { return *(int64_t *)ctx; }

static gw_result ask_once(gw *g, const char *policy, int max_tokens, got *gt)
{
    char body[256];
    snprintf(body, sizeof body, "{\"model\":\"big\",\"max_tokens\":%d,\"messages\":[{\"role\":\"user\",\"content\":\"0123456789\"}]}",
             max_tokens);
    gw_request rq = {.endpoint = GW_EP_CHAT, .body = body, .body_len = strlen(body), .policy_header = policy};
    fake_local fl = {0};
    gw_local lo = {&fl, local_answer};
    got_init(gt);
    gw_sink sk = {gt, got_begin, got_write};
    gw_result res;
    CHECK_OK(gw_handle(g, &rq, &lo, &sk, &res));
    return res;
}

static void test_budget_tokens(void)
{
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/budget-tokens", tmp);
    fake_mode("{\"mode\":\"ok\",\"words\":100}");
    /* prompt bound = 10 bytes + 4 = 14 (the fake's byte tokenizer reports
     * the same); each answer takes max_tokens = 6: 20 per request. With a cap
     * of 57 the third request is clamped to 57 - 40 - 14 = 3 answer tokens
     * and ends exactly at 57; the fourth has no room. */
    const int64_t cap = 57;
    char extra[128];
    snprintf(extra, sizeof extra, "budget_tokens = %lld\n", (long long)cap);
    fake_now = 1700000000;      /* 2023-11-14 22:13:20 UTC */
    gw *g = open_gw(matrix_ini(extra), dir);
    gw_set_clock(g, clock_fn, &fake_now);
    got gt;
    int64_t used = 0;
    int upstream_answers = 0;
    for (int i = 0; i < 5; i++) {
        gw_result r = ask_once(g, "cloud-first", 6, &gt);
        if (!strcmp(r.route, "upstream")) {
            upstream_answers++;
            used += r.tokens_in + r.tokens_out;
            CHECK(used <= cap);
        } else {
            CHECK_EQ_STR(r.route, "local");      /* cloud-first: budget spent -> local */
            CHECK(strstr(r.rule, "budget"));
        }
        cairn_buf_free(&gt.body);
    }
    CHECK_EQ_INT(upstream_answers, 3);
    CHECK_EQ_INT(used, cap);                      /* stopped exactly at the cap */
    char *rec = read_record();
    CHECK(strstr(rec, "\"max_tokens\":3"));       /* the last one was clamped */
    cairn_free(rec);
    /* cloud-only: refused with the reason */
    gw_result r = ask_once(g, "cloud-only", 6, &gt);
    CHECK_EQ_STR(r.route, "refused");
    CHECK_EQ_INT(gt.status, 429);
    CHECK(strstr(got_text(&gt), "budget"));
    cairn_buf_free(&gt.body);
    cairn_buf m;
    cairn_buf_init(&m, 0);
    CHECK_OK(gw_metrics(g, &m));
    CHECK(strstr(m.data, "cairn_gateway_budget_stops_total{upstream=\"cloud\"} 3"));
    CHECK(strstr(m.data, "cairn_gateway_budget_tokens_used{upstream=\"cloud\"} 57"));
    cairn_buf_free(&m);
    gw_close(g);

    /* a restart: the budget is still spent (read back from the audit log) */
    g = open_gw(matrix_ini(extra), dir);
    gw_set_clock(g, clock_fn, &fake_now);
    r = ask_once(g, "cloud-first", 6, &gt);
    CHECK_EQ_STR(r.route, "local");
    cairn_buf_free(&gt.body);
    /* one second before midnight UTC: still today */
    fake_now = (fake_now / 86400 + 1) * 86400 - 1;
    r = ask_once(g, "cloud-first", 6, &gt);
    CHECK_EQ_STR(r.route, "local");
    cairn_buf_free(&gt.body);
    /* midnight: a new day, a fresh budget */
    fake_now++;
    r = ask_once(g, "cloud-first", 6, &gt);
    CHECK_EQ_STR(r.route, "upstream");
    CHECK_EQ_INT(r.tokens_in + r.tokens_out, 20);
    cairn_buf_free(&gt.body);
    gw_close(g);
}

static void test_budget_money(void)
{
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/budget-money", tmp);
    fake_mode("{\"mode\":\"ok\",\"words\":100}");
    /* 14 prompt tokens at 1.0 per 1k + 6 answer tokens at 2.0 per 1k =
     * 0.014 + 0.012 = 0.026 per request; cap 0.070: two whole requests
     * (0.052), the third clamped to (0.070 - 0.052 - 0.014) / 0.002 = 2
     * tokens: 0.018 -> exactly 0.070. */
    fake_now = 1700000000;
    gw *g = open_gw(matrix_ini("price_in = 1.0\nprice_out = 2.0\nbudget_money = 0.07\n"), dir);
    gw_set_clock(g, clock_fn, &fake_now);
    got gt;
    int64_t cost = 0;
    int n_up = 0;
    for (int i = 0; i < 4; i++) {
        gw_result r = ask_once(g, "cloud-first", 6, &gt);
        if (!strcmp(r.route, "upstream")) {
            n_up++;
            cost += r.cost_nano;
        }
        cairn_buf_free(&gt.body);
    }
    CHECK_EQ_INT(n_up, 3);
    CHECK_EQ_INT(cost, 70000000);                 /* 0.070 in 1e-9 units, exactly */
    gw_close(g);
}

/* ---- privacy ---- */
static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void test_privacy_random(void)
{
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/privacy", tmp);
    fake_mode("{\"mode\":\"ok\"}");
    /* three ways to be private: tag, path glob, store default (run 2) */
    for (int run = 0; run < 2; run++) {
        char extra[512];
        snprintf(extra, sizeof extra, "[privacy]\npaths = secret/*, *.key\ndefault = %s\n"
                 "[redact]\nemail = [A-Za-z0-9._%%+-]+@[A-Za-z0-9.-]+\\.[a-z]{2,}\nkey = sk-[A-Za-z0-9]{12,}\n",
                 run ? "private" : "public");
        unlink(record_path);
        gw *g = open_gw(matrix_ini(extra), dir);
        enum { NDOC = 40 };
        char texts[NDOC][128], paths[NDOC][64], ids[NDOC][40];
        int tags[NDOC];
        bool priv[NDOC];
        for (int i = 0; i < NDOC; i++) {
            int kind = (int)(rnd() % 5);
            tags[i] = kind == 0 ? 1 : kind == 1 ? 0 : -1;
            snprintf(paths[i], sizeof paths[i], "%s/doc%d.%s", kind == 2 ? "secret" : "notes", i, kind == 3 ? "key" : "md");
            snprintf(ids[i], sizeof ids[i], "PASSAGE-%d-%08llx", i, (unsigned long long)(rnd() & 0xffffffff));
            snprintf(texts[i], sizeof texts[i], "%.39s mail x%d@corp.example sk-%016llx", ids[i], i, (unsigned long long)rnd());
            gw_chunk_ref ref = {paths[i], tags[i], i};
            priv[i] = gw_chunk_private(&g->cfg, &ref);
            /* the test's own reading of the rules */
            bool want = tags[i] == 1 ? true : tags[i] == 0 ? false : kind == 2 || kind == 3 ? true : run == 1;
            CHECK_EQ_INT(priv[i], want);
        }
        static const char *pols[] = {"local-only", "local-first", "cloud-first", "cloud-only", "model-map"};
        int sent_up = 0, refused = 0, kept_local = 0;
        for (int q = 0; q < 150; q++) {
            int k = 1 + (int)(rnd() % 4);
            gw_chunk_ref refs[4];
            cairn_buf body;
            cairn_buf_init(&body, 0);
            bool stream = rnd() % 2;
            cairn_buf_printf(&body, "{\"model\":\"big\",\"stream\":%s,\"messages\":[{\"role\":\"system\",\"content\":\"Context:",
                             stream ? "true" : "false");
            bool any_private = false;
            for (int c = 0; c < k; c++) {
                int d = (int)(rnd() % NDOC);
                refs[c] = (gw_chunk_ref){paths[d], tags[d], d};
                any_private |= priv[d];
                cairn_buf_printf(&body, " [%d] %s", c + 1, texts[d]);
            }
            cairn_buf_printf(&body, "\"},{\"role\":\"user\",\"content\":\"question %d from q%d@home.example?\"}]}", q, q);
            const char *pol = pols[rnd() % CAIRN_ARRAY_LEN(pols)];
            fake_local fl = {.fail = rnd() % 3 == 0 ? GW_FAIL_OVERLOAD : GW_FAIL_NONE};
            gw_local lo = {&fl, local_answer};
            gw_request rq = {.endpoint = GW_EP_CHAT, .body = body.data, .body_len = body.len, .policy_header = pol,
                             .grounded = true, .chunks = refs, .n_chunks = (size_t)k};
            got gt;
            got_init(&gt);
            gw_sink sk = {&gt, got_begin, got_write};
            gw_result res;
            CHECK_OK(gw_handle(g, &rq, &lo, &sk, &res));
            if (any_private) {
                CHECK(strcmp(res.route, "upstream") != 0);
                if (!strcmp(res.route, "refused")) {
                    refused++;
                    CHECK(strstr(got_text(&gt), "private"));
                } else {
                    kept_local++;
                }
                /* never silent: the rule says why */
                if (strcmp(pol, "local-only") && strcmp(pol, "model-map"))
                    CHECKF(strstr(res.rule, "private"), "rule %s", res.rule);
            }
            if (!strcmp(res.route, "upstream"))
                sent_up++;
            cairn_buf_free(&gt.body);
            cairn_buf_free(&body);
        }
        /* the upstream's own record of every byte it received */
        char *rec = read_record();
        int public_seen = 0;
        for (int i = 0; i < NDOC; i++) {
            const char *at = strstr(rec, ids[i]);
            if (priv[i])
                CHECKF(!at, "private document %d (%s) reached the upstream", i, paths[i]);
            else
                public_seen += at != NULL;
        }
        CHECK(public_seen > 0 || sent_up == 0);
        CHECK(!strstr(rec, "@corp.example"));
        CHECK(!strstr(rec, "@home.example"));
        CHECK(!strstr(rec, "sk-"));
        CHECK(strstr(rec, "[REDACTED:email]") || sent_up == 0);
        if (run == 0)
            CHECK(sent_up > 0);                  /* the test can fail: public context does go up */
        CHECK(refused > 0 && kept_local > 0);
        cairn_buf m;
        cairn_buf_init(&m, 0);
        CHECK_OK(gw_metrics(g, &m));
        CHECK(strstr(m.data, "cairn_gateway_refusals_total{reason=\"private\"}"));
        unsigned long long nred = 0;
        const char *p = strstr(m.data, "cairn_gateway_redactions_total{rule=\"email\"} ");
        CHECK(p && sscanf(p + strlen("cairn_gateway_redactions_total{rule=\"email\"} "), "%llu", &nred) == 1);
        CHECK(nred > 0 || sent_up == 0);
        cairn_buf_free(&m);
        cairn_free(rec);
        gw_close(g);
    }
}

static void test_audit(void)
{
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/audit", tmp);
    fake_mode("{\"mode\":\"ok\"}");
    fake_now = 1700000000;
    gw *g = open_gw(matrix_ini("[redact]\nsecret = TOPSECRET\n"), dir);
    gw_set_clock(g, clock_fn, &fake_now);
    const char *body = "{\"model\":\"big\",\"messages\":[{\"role\":\"user\",\"content\":\"a TOPSECRET question\"}]}";
    gw_request rq = {.endpoint = GW_EP_CHAT, .body = body, .body_len = strlen(body), .policy_header = "cloud-first"};
    got gt;
    got_init(&gt);
    gw_sink sk = {&gt, got_begin, got_write};
    gw_result res;
    CHECK_OK(gw_handle(g, &rq, NULL, &sk, &res));
    CHECK_EQ_STR(res.route, "upstream");
    CHECK_EQ_INT(res.redactions, 1);
    cairn_buf_free(&gt.body);
    gw_close(g);
    char path[1400];
    snprintf(path, sizeof path, "%s/audit-2023-11-14.jsonl", dir);
    char *s;
    size_t n;
    CHECK_OK(cairn_file_read_all(path, 1 << 20, &s, &n));
    CHECK(strstr(s, "\"route\":\"upstream\""));
    CHECK(strstr(s, "\"upstream\":\"cloud\""));
    CHECK(strstr(s, "\"rule\":\"header X-Cairn-Route-Policy: cloud-first\""));
    CHECK(strstr(s, "\"redactions\":1"));
    CHECK(strstr(s, "\"latency_ms\":"));
    CHECK(!strstr(s, "question"));        /* never the content */
    cairn_free(s);
}

int main(void)
{
    snprintf(tmp, sizeof tmp, "%s", t_tmpdir("gateway"));
    curl_global_init(CURL_GLOBAL_DEFAULT);
    signal(SIGPIPE, SIG_IGN);
    RUN(test_config);
    RUN(test_sse);
    RUN(test_alloc_failures);
    fake_start();
    RUN(test_matrix);
    RUN(test_retry_and_breaker);
    RUN(test_model_map);
    RUN(test_budget_tokens);
    RUN(test_budget_money);
    RUN(test_privacy_random);
    RUN(test_audit);
    fake_stop();
    return t_done();
}
