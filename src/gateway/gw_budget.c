/*
 * gw_budget.c — the audit log, and the daily budgets that are read from it.
 *
 * Format: one file per UTC day, DIR/audit-YYYY-MM-DD.jsonl, one JSON object
 * per line, appended with a single write() (O_APPEND, so lines of several
 * processes never interleave). Fields:
 *   ts (UTC seconds, the gateway's clock), id, endpoint, model, policy,
 *   route (local|upstream|refused|error), rule, upstream (or null), fallback,
 *   status (HTTP), stream, attempts, redactions, tokens_in, tokens_out
 *   (whoever answered), up_tokens_in, up_tokens_out, cost_nano (what the
 *   upstream consumed, charged to its budget), latency_ms, error.
 * No request or answer text is written there; with [gateway] audit_content
 * the request as sent upstream goes to DIR/content-YYYY-MM-DD.jsonl
 * ({"id":..,"request":..}), kept apart so audit lines stay small.
 *
 * Budgets: the tokens and money an upstream used today are the sums of
 * up_tokens_in + up_tokens_out and cost_nano over today's lines naming it.
 * That is the persistence: a restart re-reads today's file; a new day opens a
 * new, empty file, so the budget resets at 00:00 UTC. Before each admission
 * the gateway reads what was appended since its last look, so two processes
 * on one store (serve and ask) see each other's spending.
 */
#include "gateway/gw_int.h"
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define AUDIT_LINE_MAX 16384        /* longer lines (not ours) are skipped */

int64_t gw_clock_now(gw *g)
{
    if (g->clock)
        return g->clock(g->clock_ctx);
    return cairn_now_ns() / 1000000000;
}

static void day_name(int64_t day, char *out, size_t n)
{
    time_t t = (time_t)(day * 86400);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, n, "%Y-%m-%d", &tm);
}

static void count_line(gw *g, const char *p, size_t n)
{
    cJSON *j = cJSON_ParseWithLength(p, n);
    if (!j)
        return;         /* a torn last line after a crash: ignored */
    cJSON *up = cJSON_GetObjectItemCaseSensitive(j, "upstream");
    if (cJSON_IsString(up))
        for (size_t i = 0; i < g->cfg.n_up; i++)
            if (!strcmp(g->cfg.up[i].name, up->valuestring)) {
                cJSON *a = cJSON_GetObjectItemCaseSensitive(j, "up_tokens_in");
                cJSON *b = cJSON_GetObjectItemCaseSensitive(j, "up_tokens_out");
                cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "cost_nano");
                if (cJSON_IsNumber(a))
                    g->up[i].used_tokens += (int64_t)a->valuedouble;
                if (cJSON_IsNumber(b))
                    g->up[i].used_tokens += (int64_t)b->valuedouble;
                if (cJSON_IsNumber(c))
                    g->up[i].used_nano += (int64_t)c->valuedouble;
                break;
            }
    cJSON_Delete(j);
}

static cairn_status open_day(gw *g, int64_t day)
{
    if (g->audit_fd >= 0)
        close(g->audit_fd);
    if (g->content_fd >= 0)
        close(g->content_fd);
    g->audit_fd = g->content_fd = -1;
    g->audit_off = 0;
    g->day = day;
    for (size_t i = 0; i < g->cfg.n_up; i++)
        g->up[i].used_tokens = g->up[i].used_nano = 0;
    char name[32], path[4200];
    if (mkdir(g->dir, 0700) != 0 && errno != EEXIST) {   /* made on first use, not by gw_open */
        g->day = -1;
        return cairn_fail(CAIRN_ERR_IO, "%s: cannot create the gateway directory: %s", g->dir, strerror(errno));
    }
    day_name(day, name, sizeof name);
    snprintf(path, sizeof path, "%s/audit-%s.jsonl", g->dir, name);
    g->audit_fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (g->audit_fd < 0) {
        g->day = -1;
        return cairn_fail(CAIRN_ERR_IO, "%s: cannot open the audit log: %s", path, strerror(errno));
    }
    if (g->cfg.audit_content) {
        snprintf(path, sizeof path, "%s/content-%s.jsonl", g->dir, name);
        g->content_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        if (g->content_fd < 0)
            return cairn_fail(CAIRN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    }
    return CAIRN_OK;
}

cairn_status gw_budget_sync(gw *g, int64_t now)
{
    int64_t day = now >= 0 ? now / 86400 : (now - 86399) / 86400;
    if (day != g->day || g->audit_fd < 0)
        CAIRN_TRY(open_day(g, day));
    struct stat sb;
    if (fstat(g->audit_fd, &sb) != 0)
        return cairn_fail(CAIRN_ERR_IO, "audit log: %s", strerror(errno));
    /* read whole lines appended since audit_off, a window at a time */
    static __thread char win[AUDIT_LINE_MAX * 4];
    while (g->audit_off < (int64_t)sb.st_size) {
        ssize_t r = pread(g->audit_fd, win, sizeof win, g->audit_off);
        if (r < 0)
            return cairn_fail(CAIRN_ERR_IO, "audit log: %s", strerror(errno));
        if (r == 0)
            break;
        size_t used = 0;
        for (;;) {
            char *nl = memchr(win + used, '\n', (size_t)r - used);
            if (!nl)
                break;
            count_line(g, win + used, (size_t)(nl - (win + used)));
            used = (size_t)(nl - win) + 1;
        }
        if (used == 0) {
            if ((size_t)r == sizeof win) {
                /* a line longer than the window: skip to its end */
                used = (size_t)r;
            } else {
                break;  /* a line being written: count it next time */
            }
        }
        g->audit_off += (int64_t)used;
    }
    return CAIRN_OK;
}

cairn_status gw_audit_append(gw *g, const char *line, size_t n, const char *content, size_t content_len)
{
    if (g->audit_fd < 0)
        return cairn_fail(CAIRN_ERR_IO, "audit log is not open");
    ssize_t w = write(g->audit_fd, line, n);
    if (w != (ssize_t)n)
        return cairn_fail(CAIRN_ERR_IO, "audit log: short write: %s", w < 0 ? strerror(errno) : "disk full?");
    if (content && g->content_fd >= 0) {
        w = write(g->content_fd, content, content_len);
        if (w != (ssize_t)content_len)
            return cairn_fail(CAIRN_ERR_IO, "audit content log: short write");
    }
    return CAIRN_OK;
}
