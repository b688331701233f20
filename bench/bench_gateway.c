/*
 * bench_gateway.c — what the gateway adds to a proxied request, and how
 * soon an answer starts after an upstream timeout.
 *
 *   bench_gateway [N]        (N requests per side, default 2000)
 *
 * Upstream: tests/tools/fake_upstream.js under node on loopback. Direct:
 * libcurl (one reused handle, keep-alive) POSTs the request to the upstream.
 * Gateway: gw_handle with policy cloud-only sends the same request (parse,
 * policy, budget check, redaction with one rule, route field, audit line).
 * The two sides alternate request by request so load on the machine hits
 * both alike. Non-streamed chat completions, 6 answer tokens.
 *
 * Fallback: cloud-first, upstream told to never answer, timeout T; the local
 * answerer waits L ms before its first byte (a stand-in for the local
 * model's time to first token). Reports the time to the first answer byte
 * against T + L.
 */
#include "gateway/gw_int.h"
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int port;
static pid_t pid;

static void start_fake(void)
{
    char script[1200];
    snprintf(script, sizeof script, "%s", __FILE__);
    char *slash = strrchr(script, '/');
    snprintf(slash ? slash + 1 : script, 200, "../tests/tools/fake_upstream.js");
    int fd[2];
    if (pipe(fd))
        exit(1);
    pid = fork();
    if (pid == 0) {
        dup2(fd[1], 1);
        execlp("node", "node", script, "/dev/null", (char *)NULL);
        _exit(127);
    }
    close(fd[1]);
    char line[64] = "";
    size_t n = 0;
    while (n < sizeof line - 1 && read(fd[0], line + n, 1) == 1 && line[n] != '\n')
        n++;
    close(fd[0]);
    if (sscanf(line, "PORT %d", &port) != 1) {
        fprintf(stderr, "bench_gateway: cannot start node %s\n", script);
        exit(1);
    }
}

static size_t discard(char *p, size_t s, size_t n, void *c) { (void)p; (void)c; return s * n; }

static void ctl(CURL *e, const char *json)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/_mode", port);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, json);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_perform(e);
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static cairn_status nop_begin(void *c, int s, const char *t, const gw_route_info *i)
{
    int64_t *first = c;
    if (!*first)
        *first = cairn_mono_ns();
    (void)s, (void)t, (void)i;
    return CAIRN_OK;
}
static cairn_status nop_write(void *c, const char *p, size_t n) { (void)c, (void)p, (void)n; return CAIRN_OK; }

static gw_fail slow_local(void *ctx, const gw_request *req, int64_t dl, const gw_route_info *info, const gw_sink *sink,
                          int64_t *in, int64_t *out)
{
    usleep((useconds_t)(*(int *)ctx * 1000));
    sink->begin(sink->ctx, 200, "application/json", info);
    const char *b = "{\"choices\":[{\"message\":{\"content\":\"local\"}}]}";
    sink->write(sink->ctx, b, strlen(b));
    (void)req, (void)dl, (void)in, (void)out;
    return GW_FAIL_NONE;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 2000;
    if (n < 10)
        n = 10;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    signal(SIGPIPE, SIG_IGN);
    start_fake();
    char ini[1024], dir[] = "/tmp/bench_gateway.XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    snprintf(ini, sizeof ini,
             "[upstream cloud]\nurl = http://127.0.0.1:%d/v1\nmodels = big\ntimeout = 200ms\nretries = 0\nbreaker_failures = 1000\n"
             "[redact]\nemail = [a-z]+@[a-z]+\\.[a-z]+\n", port);
    store_config sc;
    store_config_default(&sc);
    gw_config c;
    gw_config_init(&c);
    gw *g;
    if (store_config_parse(&sc, "bench", ini, strlen(ini)) != CAIRN_OK || gw_config_from_ini(&c, &sc) != CAIRN_OK ||
        gw_open(&g, &c, dir) != CAIRN_OK) {
        fprintf(stderr, "bench_gateway: %s\n", cairn_last_error());
        return 1;
    }
    const char *body = "{\"model\":\"big\",\"max_tokens\":6,\"messages\":[{\"role\":\"system\",\"content\":\"Answer from the "
                       "sources.\"},{\"role\":\"user\",\"content\":\"What does the pump manual say about cleaning the "
                       "impeller every spring?\"}]}";
    CURL *e = curl_easy_init();
    ctl(e, "{\"mode\":\"ok\"}");
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/chat/completions", port);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    h = curl_slist_append(h, "Expect:");
    double *direct = calloc((size_t)n, sizeof *direct), *via = calloc((size_t)n, sizeof *via);
    for (int i = -50; i < n; i++) {     /* 50 warm-up rounds */
        int64_t t0 = cairn_mono_ns();
        curl_easy_reset(e);
        curl_easy_setopt(e, CURLOPT_URL, url);
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
        curl_easy_perform(e);
        int64_t t1 = cairn_mono_ns();
        int64_t first = 0;
        gw_sink sk = {&first, nop_begin, nop_write};
        gw_request rq = {.endpoint = GW_EP_CHAT, .body = body, .body_len = strlen(body), .policy_header = "cloud-only"};
        gw_result res;
        gw_handle(g, &rq, NULL, &sk, &res);
        int64_t t2 = cairn_mono_ns();
        if (strcmp(res.route, "upstream")) {
            fprintf(stderr, "bench_gateway: not proxied: %s\n", res.rule);
            return 1;
        }
        if (i >= 0) {
            direct[i] = (double)(t1 - t0) / 1e6;
            via[i] = (double)(t2 - t1) / 1e6;
        }
    }
    double *diff = calloc((size_t)n, sizeof *diff);
    for (int i = 0; i < n; i++)
        diff[i] = via[i] - direct[i];
    qsort(direct, (size_t)n, sizeof *direct, cmp);
    qsort(via, (size_t)n, sizeof *via, cmp);
    qsort(diff, (size_t)n, sizeof *diff, cmp);
    printf("proxied request, %d each: direct p50 %.3f ms p99 %.3f ms | gateway p50 %.3f ms p99 %.3f ms | "
           "added p50 %.3f ms (paired median %.3f ms)\n",
           n, direct[n / 2], direct[n * 99 / 100], via[n / 2], via[n * 99 / 100], via[n / 2] - direct[n / 2], diff[n / 2]);

    /* fallback after an upstream timeout */
    ctl(e, "{\"mode\":\"timeout\"}");
    int local_ms = 30;
    gw_local lo = {&local_ms, slow_local};
    enum { ROUNDS = 7 };
    double excess[ROUNDS], fb[ROUNDS], loc[ROUNDS];
    for (int i = 0; i < ROUNDS; i++) {
        for (int k = 0; k < 2; k++) {
            int64_t first = 0;
            gw_sink sk = {&first, nop_begin, nop_write};
            gw_request rq = {.endpoint = GW_EP_CHAT, .body = body, .body_len = strlen(body),
                             .policy_header = k ? "cloud-first" : "local-only"};
            gw_result res;
            int64_t t0 = cairn_mono_ns();
            gw_handle(g, &rq, &lo, &sk, &res);
            double ms = (double)(first - t0) / 1e6;
            if (k && (strcmp(res.route, "local") || !res.fallback)) {
                fprintf(stderr, "bench_gateway: fallback did not happen: %s\n", res.rule);
                return 1;
            }
            (k ? fb : loc)[i] = ms;
        }
        excess[i] = fb[i] - (200 + loc[i]);
    }
    qsort(excess, ROUNDS, sizeof *excess, cmp);
    qsort(fb, ROUNDS, sizeof *fb, cmp);
    qsort(loc, ROUNDS, sizeof *loc, cmp);
    printf("fallback, upstream timeout 200 ms, local first byte median %.1f ms: answer starts median %.1f ms, max %.1f ms; "
           "over timeout + local TTFT: median %.2f ms, max %.2f ms\n",
           loc[ROUNDS / 2], fb[ROUNDS / 2], fb[ROUNDS - 1], excess[ROUNDS / 2], excess[ROUNDS - 1]);
    curl_slist_free_all(h);
    curl_easy_cleanup(e);
    gw_close(g);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        return 1;
    free(direct);
    free(via);
    free(diff);
    return 0;
}
