/*
 * bench_serve_load.c — a small HTTP/1.1 load client for `cairn serve`:
 * C keep-alive connections, each in its own thread, each sending requests
 * back to back for a duration (or a count). Reports requests/s, latency
 * percentiles, errors (non-2xx, broken connections) and, for generation
 * requests, the completion tokens (from "usage") and tokens/s.
 *
 *   bench_serve_load --port P [--host 127.0.0.1] --path /v1/search
 *                    (--body JSON | --bodies FILE)   one JSON body per line, round robin
 *                    [-c CONNS] [-d SECONDS] [-n REQUESTS_PER_CONN] [--key KEY] [--json]
 *
 * Bodies may hold the marker @Q@, replaced by the next line of --queries
 * FILE as a JSON string (so one template serves many queries).
 */
#define _GNU_SOURCE 1   /* memmem, strcasestr */
#include "base/base.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_RESP (4u << 20)

typedef struct opts {
    const char *host, *path, *key;
    int port, conns, per_conn;
    double seconds;
    char **bodies;
    size_t n_bodies;
    bool json;
} opts;

typedef struct worker {
    const opts *o;
    int id;
    double *lat;          /* ms per request */
    size_t n_lat, cap_lat;
    uint64_t errors, tokens, bytes;
    pthread_t th;
} worker;

static atomic_size_t next_body;
static int64_t t_end;

static int dial(const opts *o)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o->port)};
    inet_pton(AF_INET, o->host, &a.sin_addr);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static bool send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* Read one response (Content-Length or chunked); body into *buf. Returns the
 * status, or -1 when the connection broke. */
static int read_response(int fd, char *buf, size_t cap, size_t *blen, bool *keep)
{
    size_t have = 0, hdr_end = 0;
    for (;;) {
        if (have == cap)
            return -1;
        ssize_t r = recv(fd, buf + have, cap - have, 0);
        if (r <= 0)
            return -1;
        have += (size_t)r;
        char *e = memmem(buf, have, "\r\n\r\n", 4);
        if (e) {
            hdr_end = (size_t)(e - buf) + 4;
            break;
        }
    }
    int status = atoi(buf + 9);
    buf[hdr_end - 1] = '\0';
    *keep = !strcasestr(buf, "\nConnection: close");
    const char *cl = strcasestr(buf, "\nContent-Length:");
    bool chunked = strcasestr(buf, "\nTransfer-Encoding: chunked") != NULL;
    size_t want = cl ? (size_t)strtoull(cl + 16, NULL, 10) : 0;   /* before the headers are overwritten */
    memmove(buf, buf + hdr_end, have - hdr_end);
    have -= hdr_end;
    if (cl && !chunked) {
        if (want >= cap)
            return -1;
        while (have < want) {
            ssize_t r = recv(fd, buf + have, cap - have, 0);
            if (r <= 0)
                return -1;
            have += (size_t)r;
        }
        *blen = want;
        return status;
    }
    if (!chunked) {   /* until close */
        for (;;) {
            ssize_t r = recv(fd, buf + have, cap - 1 - have, 0);
            if (r <= 0)
                break;
            have += (size_t)r;
        }
        *keep = false;
        *blen = have;
        return status;
    }
    /* chunked: decode in place into out */
    size_t out = 0, pos = 0;
    for (;;) {
        char *e;
        while (!(e = memmem(buf + pos, have - pos, "\r\n", 2))) {
            ssize_t r = recv(fd, buf + have, cap - have, 0);
            if (r <= 0 || have == cap)
                return -1;
            have += (size_t)r;
        }
        size_t n = (size_t)strtoull(buf + pos, NULL, 16);
        size_t data = (size_t)(e - buf) + 2;
        while (have < data + n + 2) {
            ssize_t r = recv(fd, buf + have, cap - have, 0);
            if (r <= 0 || have == cap)
                return -1;
            have += (size_t)r;
        }
        memmove(buf + out, buf + data, n);
        out += n;
        pos = data + n + 2;
        if (n == 0)
            break;
    }
    *blen = out;
    return status;
}

static void *run(void *arg)
{
    worker *w = arg;
    const opts *o = w->o;
    char *buf = malloc(MAX_RESP + 1);
    char *req = malloc(1 << 20);
    int fd = -1;
    for (int i = 0; (o->per_conn ? i < o->per_conn : cairn_mono_ns() < t_end); i++) {
        if (fd < 0 && (fd = dial(o)) < 0) {
            w->errors++;
            usleep(10000);
            continue;
        }
        const char *body = o->bodies[atomic_fetch_add(&next_body, 1) % o->n_bodies];
        int n = snprintf(req, 1 << 20,
                         "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n%s%s%sContent-Length: %zu\r\n\r\n%s",
                         o->path, o->host, o->key ? "Authorization: Bearer " : "", o->key ? o->key : "",
                         o->key ? "\r\n" : "", strlen(body), body);
        int64_t t0 = cairn_mono_ns();
        size_t blen = 0;
        bool keep = true;
        int st = send_all(fd, req, (size_t)n) ? read_response(fd, buf, MAX_RESP, &blen, &keep) : -1;
        double ms = (double)(cairn_mono_ns() - t0) / 1e6;
        if (st < 200 || st >= 300) {
            w->errors++;
            if (st < 0) {
                close(fd);
                fd = -1;
            }
            continue;
        }
        buf[blen] = '\0';
        const char *u = strstr(buf, "\"completion_tokens\":");
        if (u)
            w->tokens += (uint64_t)strtoull(u + 20, NULL, 10);
        w->bytes += blen;
        if (w->n_lat == w->cap_lat) {
            w->cap_lat = w->cap_lat ? 2 * w->cap_lat : 4096;
            w->lat = realloc(w->lat, w->cap_lat * sizeof *w->lat);
        }
        w->lat[w->n_lat++] = ms;
        if (!keep) {
            close(fd);
            fd = -1;
        }
    }
    if (fd >= 0)
        close(fd);
    free(buf);
    free(req);
    return NULL;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static char **read_lines(const char *path, size_t *n)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char **v = NULL, *line = NULL;
    size_t cap = 0, lc = 0;
    *n = 0;
    ssize_t l;
    while ((l = getline(&line, &lc, f)) > 0) {
        while (l > 0 && (line[l - 1] == '\n' || line[l - 1] == '\r'))
            line[--l] = '\0';
        if (!l)
            continue;
        if (*n == cap)
            v = realloc(v, (cap = cap ? 2 * cap : 256) * sizeof *v);
        v[(*n)++] = strdup(line);
    }
    free(line);
    fclose(f);
    return v;
}

/* A query as a JSON string literal. */
static char *json_str(const char *s)
{
    size_t n = strlen(s);
    char *o = malloc(2 * n + 3), *p = o;
    *p++ = '"';
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            *p++ = '\\';
        *p++ = (unsigned char)*s < 0x20 ? ' ' : *s;
    }
    *p++ = '"';
    *p = '\0';
    return o;
}

int main(int argc, char **argv)
{
    opts o = {.host = "127.0.0.1", .path = "/v1/search", .conns = 32, .seconds = 10};
    const char *body = NULL, *bodies = NULL, *queries = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
        if (!strcmp(a, "--json")) { o.json = true; continue; }
        if (!strcmp(a, "--port")) o.port = atoi(v);
        else if (!strcmp(a, "--host")) o.host = v;
        else if (!strcmp(a, "--path")) o.path = v;
        else if (!strcmp(a, "--key")) o.key = v;
        else if (!strcmp(a, "--body")) body = v;
        else if (!strcmp(a, "--bodies")) bodies = v;
        else if (!strcmp(a, "--queries")) queries = v;
        else if (!strcmp(a, "-c")) o.conns = atoi(v);
        else if (!strcmp(a, "-d")) o.seconds = atof(v);
        else if (!strcmp(a, "-n")) o.per_conn = atoi(v);
        else { fprintf(stderr, "usage: see bench_serve_load.c\n"); return 2; }
        i++;
    }
    if (!o.port || (!body && !bodies) || o.conns < 1 || o.conns > 1024) {
        fprintf(stderr, "bench_serve_load: need --port and --body or --bodies\n");
        return 2;
    }
    char *one[1];
    if (bodies) {
        o.bodies = read_lines(bodies, &o.n_bodies);
    } else {
        one[0] = (char *)body;
        o.bodies = one;
        o.n_bodies = 1;
    }
    if (queries && o.n_bodies == 1 && strstr(o.bodies[0], "@Q@")) {   /* one body per query */
        size_t nq = 0;
        char **q = read_lines(queries, &nq);
        char **b = malloc(nq * sizeof *b);
        const char *tmpl = o.bodies[0], *at = strstr(tmpl, "@Q@");
        for (size_t i = 0; i < nq; i++) {
            char *js = json_str(q[i]);
            size_t n = strlen(tmpl) + strlen(js) + 1;
            b[i] = malloc(n);
            snprintf(b[i], n, "%.*s%s%s", (int)(at - tmpl), tmpl, js, at + 3);
            free(js);
        }
        o.bodies = b;
        o.n_bodies = nq;
    }
    if (!o.n_bodies) {
        fprintf(stderr, "bench_serve_load: no bodies\n");
        return 2;
    }
    worker *ws = calloc((size_t)o.conns, sizeof *ws);
    int64_t t0 = cairn_mono_ns();
    t_end = t0 + (int64_t)(o.seconds * 1e9);
    for (int i = 0; i < o.conns; i++) {
        ws[i] = (worker){.o = &o, .id = i};
        pthread_create(&ws[i].th, NULL, run, &ws[i]);
    }
    size_t total = 0;
    uint64_t errors = 0, tokens = 0;
    for (int i = 0; i < o.conns; i++) {
        pthread_join(ws[i].th, NULL);
        total += ws[i].n_lat;
        errors += ws[i].errors;
        tokens += ws[i].tokens;
    }
    double wall = (double)(cairn_mono_ns() - t0) / 1e9;
    double *all = malloc((total + 1) * sizeof *all);
    size_t k = 0;
    for (int i = 0; i < o.conns; i++)
        for (size_t j = 0; j < ws[i].n_lat; j++)
            all[k++] = ws[i].lat[j];
    qsort(all, total, sizeof *all, cmp_d);
#define PCT(p) (total ? all[(size_t)((double)(total - 1) * (p))] : 0)
    if (o.json)
        printf("{\"requests\":%zu,\"errors\":%llu,\"seconds\":%.3f,\"rps\":%.1f,\"p50_ms\":%.3f,\"p90_ms\":%.3f,"
               "\"p99_ms\":%.3f,\"max_ms\":%.3f,\"completion_tokens\":%llu,\"tokens_per_s\":%.1f,\"conns\":%d}\n",
               total, (unsigned long long)errors, wall, (double)total / wall, PCT(0.5), PCT(0.9), PCT(0.99),
               total ? all[total - 1] : 0, (unsigned long long)tokens, (double)tokens / wall, o.conns);
    else
        printf("%d conns, %.1f s: %zu requests (%.1f/s), %llu errors; latency ms p50 %.2f p90 %.2f p99 %.2f max %.2f; "
               "%llu completion tokens (%.1f/s)\n",
               o.conns, wall, total, (double)total / wall, (unsigned long long)errors, PCT(0.5), PCT(0.9), PCT(0.99),
               total ? all[total - 1] : 0, (unsigned long long)tokens, (double)tokens / wall);
    return errors ? 1 : 0;
}
