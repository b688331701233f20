/* cmd_sync.c — `cairn sync` and `cairn watch`. */
#include "cli/cli_store.h"
#include "cli/cli_util.h"
#include "cli/commands.h"
#include "sync/sync.h"
#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

static volatile sig_atomic_t stop_flag;
static void on_signal(int sig) { (void)sig; stop_flag = 1; }

/* Files skipped (or failed to parse) before and unchanged since are summed
 * up per reason: a sync re-visits every one of them each time, and listing
 * them all again is noise; -v lists each. New skips are printed. */
#define SKIP_REASONS 16
typedef struct skip_count { char reason[96]; size_t n; } skip_count;
typedef struct sync_ui {
    bool quiet, json, verbose;
    char cwd[PATH_MAX];
    skip_count skips[SKIP_REASONS];
    size_t n_skip_reasons, n_skipped;
} sync_ui;

/* The path as `cairn add` shows it: relative to the current directory when
 * under it (sync walks recorded sources by absolute path). */
static const char *shown_path(const sync_ui *u, const char *path, char *buf, size_t n)
{
    size_t cl = strlen(u->cwd);
    if (cl > 1 && !strncmp(path, u->cwd, cl) && path[cl] == '/')
        path += cl + 1;
    return cli_safe_name(path, buf, n);
}

static void count_skip(sync_ui *u, const char *reason)
{
    u->n_skipped++;
    size_t i = 0;
    while (i < u->n_skip_reasons && strncmp(u->skips[i].reason, reason, sizeof u->skips[i].reason - 1))
        i++;
    if (i == u->n_skip_reasons) {
        if (i == SKIP_REASONS)
            i--;        /* the last slot collects the rest */
        else
            u->n_skip_reasons++;
        if (!u->skips[i].n)
            snprintf(u->skips[i].reason, sizeof u->skips[i].reason, "%s", i == SKIP_REASONS - 1 ? "other reasons" : reason);
    }
    u->skips[i].n++;
}

static void print_skips(sync_ui *u)
{
    if (u->n_skipped && !u->quiet && !u->json && !u->verbose) {
        fprintf(stderr, "skipped %zu file%s:", u->n_skipped, u->n_skipped == 1 ? "" : "s");
        for (size_t i = 0; i < u->n_skip_reasons; i++)
            fprintf(stderr, "%s %zu %s", i ? ";" : "", u->skips[i].n, u->skips[i].reason);
        fprintf(stderr, " (-v lists them)\n");
    }
    u->n_skipped = u->n_skip_reasons = 0;
    memset(u->skips, 0, sizeof u->skips);
}

static void on_event(void *ctx, const pipe_event *ev)
{
    sync_ui *u = ctx;
    if (u->json)
        return;
    char name[1024];
    shown_path(u, ev->path, name, sizeof name);
    switch (ev->outcome) {
    case PIPE_ADDED:
    case PIPE_UPDATED:
        if (!u->quiet)
            printf("%s %s (%zu chunk%s)\n", ev->outcome == PIPE_ADDED ? "added  " : "updated", name, ev->chunks,
                   ev->chunks == 1 ? "" : "s");
        return;
    case PIPE_UNCHANGED:
        return;
    case PIPE_SKIPPED:
        if (u->quiet)
            return;
        /* a new skip is news; one unchanged since it was skipped is not */
        if (!u->verbose && ev->again) {
            count_skip(u, ev->reason ? ev->reason : "");
            return;
        }
        /* fall through */
    case PIPE_WARNING:
        if (u->quiet)
            return;
        /* fall through */
    case PIPE_FAILED:
        fprintf(stderr, "%s: %s: %s\n", ev->outcome == PIPE_FAILED ? "failed" : ev->outcome == PIPE_SKIPPED ? "skipped" : "warning",
                name, ev->reason ? ev->reason : "");
        return;
    }
}

static void install_signals(void);

/* Open the store for sync/watch: config-derived pipeline options, progress
 * events, and SIGINT/SIGTERM stopping at the next file. Prints on failure. */
static cairn_status open_for_sync(const char *cmd, const char *db, bool wait, store **s, sync_options *o, sync_ui *ui)
{
    /* sync holds the writer lock throughout; watch takes it per round */
    cairn_status st = !strcmp(cmd, "sync") ? cli_open_store_writer(db, cmd, wait, s) : cli_open_store(db, s);
    if (st != CAIRN_OK) {
        if (strcmp(cmd, "sync"))
            cli_error(cmd, st);
        return st;
    }
    install_signals();
    if (!getcwd(ui->cwd, sizeof ui->cwd))
        ui->cwd[0] = 0;
    memset(o, 0, sizeof *o);
    pipeline_options_from_config(*s, &o->pipe);
    o->pipe.stop = &stop_flag;
    o->pipe.on_event = on_event;
    o->pipe.event_ctx = ui;
    return CAIRN_OK;
}

static void print_report(const sync_report *r, bool json, double ms)
{
    if (json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddNumberToObject(j, "added", (double)r->added);
        cJSON_AddNumberToObject(j, "updated", (double)r->updated);
        cJSON_AddNumberToObject(j, "moved", (double)r->moved);
        cJSON_AddNumberToObject(j, "removed", (double)r->removed);
        cJSON_AddNumberToObject(j, "unchanged", (double)r->unchanged);
        cJSON_AddNumberToObject(j, "skipped", (double)r->skipped);
        cJSON_AddNumberToObject(j, "failed", (double)r->failed);
        cJSON_AddNumberToObject(j, "expired", (double)r->expired);
        cJSON_AddNumberToObject(j, "elapsed_ms", ms);
        cli_print_json(j);
        return;
    }
    printf("sync: %zu added, %zu updated, %zu moved, %zu removed, %zu unchanged, %zu skipped, %zu failed, %zu expired (%.0f ms)\n",
           r->added, r->updated, r->moved, r->removed, r->unchanged, r->skipped, r->failed, r->expired, ms);
}

static void install_signals(void)
{
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int cmd_sync(int argc, char **argv)
{
    const char *db = NULL;
    if (!cli_take_db(&argc, argv, &db))
        return 2;
    bool wait = cli_take_flag(&argc, argv, "--wait");
    sync_ui ui = {0};
    const char **paths = cairn_calloc((size_t)argc, sizeof *paths);
    size_t n = 0;
    if (!paths)
        return 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: cairn sync [PATH...] [--json] [--quiet] [--wait] [--db DIR]\n\n"
                   "Bring the store in line with its sources (all paths given to `cairn add`, or PATHs):\n"
                   "new files are added, changed ones re-ingested, moved ones renamed, deleted ones\n"
                   "removed, expired documents dropped. Skipped files are summed up per reason\n"
                   "(-v lists each); --wait waits for another writer of the store to finish.\n");
            cairn_free(paths);
            return 0;
        } else if (!strcmp(argv[i], "--json")) {
            ui.json = true;
        } else if (!strcmp(argv[i], "-v") || !strcmp(argv[i], "--verbose")) {
            ui.verbose = true;
        } else if (!strcmp(argv[i], "--quiet") || !strcmp(argv[i], "-q")) {
            ui.quiet = true;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "cairn sync: unknown option '%s'\n", argv[i]);
            cairn_free(paths);
            return 2;
        } else {
            paths[n++] = argv[i];
        }
    }
    store *s = NULL;
    sync_options o;
    cairn_status st = open_for_sync("sync", db, wait, &s, &o, &ui);
    if (st != CAIRN_OK) {
        cairn_free(paths);
        return 1;
    }
    sync_report rep;
    int64_t t0 = cairn_mono_ns();
    st = sync_run(s, paths, n, &o, &rep);
    double ms = (double)(cairn_mono_ns() - t0) / 1e6;
    print_skips(&ui);
    int rc = 0;
    if (st != CAIRN_OK) {
        cli_error("sync", st);
        rc = 1;
    } else {
        print_report(&rep, ui.json, ms);
        rc = rep.failed ? 1 : 0;
    }
    store_close(s);
    cairn_free(paths);
    return rc;
}

/* ---- watch ----
 * inotify watches every directory under the roots. Events are collected
 * until the tree has been quiet for the debounce interval (or 1 s at most
 * since the first event), then the touched directories are synced (a
 * directory's sync also catches deletions and renames inside it). A queue
 * overflow falls back to syncing every root. */

typedef struct watch_state {
    int fd;
    char **wd_path;         /* wd -> directory path */
    int wd_cap;
    char **dirty;           /* directories to sync */
    size_t n_dirty, cap_dirty;
    bool overflow;
} watch_state;

static cairn_status add_dirty(watch_state *w, const char *dir)
{
    for (size_t i = 0; i < w->n_dirty; i++)
        if (!strcmp(w->dirty[i], dir))
            return CAIRN_OK;
    if (w->n_dirty == w->cap_dirty) {
        size_t nc = w->cap_dirty ? w->cap_dirty * 2 : 16;
        char **nd = cairn_reallocarray(w->dirty, nc, sizeof *nd);
        if (!nd)
            return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
        w->dirty = nd;
        w->cap_dirty = nc;
    }
    if (!(w->dirty[w->n_dirty] = cairn_strdup(dir)))
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
    w->n_dirty++;
    return CAIRN_OK;
}

static cairn_status watch_dir(watch_state *w, const char *dir)
{
    int wd = inotify_add_watch(w->fd, dir, IN_CREATE | IN_DELETE | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO |
                                               IN_DELETE_SELF | IN_MOVE_SELF | IN_ATTRIB | IN_ONLYDIR);
    if (wd < 0) {
        if (errno == ENOSPC)
            return cairn_fail(CAIRN_ERR_TOO_LARGE, "%s: inotify watch limit reached (raise fs.inotify.max_user_watches)", dir);
        return CAIRN_OK; /* vanished or unreadable: the next sync reports it */
    }
    if (wd >= w->wd_cap) {
        int nc = w->wd_cap ? w->wd_cap : 64;
        while (nc <= wd)
            nc *= 2;
        char **np = cairn_reallocarray(w->wd_path, (size_t)nc, sizeof *np);
        if (!np)
            return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
        memset(np + w->wd_cap, 0, (size_t)(nc - w->wd_cap) * sizeof *np);
        w->wd_path = np;
        w->wd_cap = nc;
    }
    cairn_free(w->wd_path[wd]);
    if (!(w->wd_path[wd] = cairn_strdup(dir)))
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
    return CAIRN_OK;
}

typedef struct dir_walk { watch_state *w; cairn_status st; } dir_walk;

/* Watch `dir` and every directory below it (hidden ones and .cairn excluded,
 * as the pipeline does). */
static cairn_status watch_tree(watch_state *w, const char *dir)
{
    CAIRN_TRY(watch_dir(w, dir));
    DIR *d = opendir(dir);
    if (!d)
        return CAIRN_OK;
    struct dirent *de;
    cairn_status st = CAIRN_OK;
    while (st == CAIRN_OK && (de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char child[PATH_MAX];
        if (snprintf(child, sizeof child, "%s/%s", dir, de->d_name) >= (int)sizeof child)
            continue;
        struct stat sb;
        if (lstat(child, &sb) == 0 && S_ISDIR(sb.st_mode))
            st = watch_tree(w, child);
    }
    closedir(d);
    return st;
}

static cairn_status drain_events(watch_state *w)
{
    char buf[64 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (;;) {
        ssize_t len = read(w->fd, buf, sizeof buf);
        if (len < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return CAIRN_OK;
            return cairn_fail(CAIRN_ERR_IO, "reading inotify events: %s", strerror(errno));
        }
        for (char *p = buf; p < buf + len;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            p += sizeof *ev + ev->len;
            if (ev->mask & IN_Q_OVERFLOW) {
                w->overflow = true;
                continue;
            }
            if (ev->wd < 0 || ev->wd >= w->wd_cap || !w->wd_path[ev->wd])
                continue;
            const char *dir = w->wd_path[ev->wd];
            if (ev->len && ev->name[0] == '.')
                continue;   /* editors' temporary files (.foo.swp), hidden entries */
            CAIRN_TRY(add_dirty(w, dir));
            if ((ev->mask & (IN_CREATE | IN_MOVED_TO)) && (ev->mask & IN_ISDIR) && ev->len) {
                char child[PATH_MAX];
                if (snprintf(child, sizeof child, "%s/%s", dir, ev->name) < (int)sizeof child)
                    CAIRN_TRY(watch_tree(w, child));
            }
            if (ev->mask & IN_IGNORED) {
                cairn_free(w->wd_path[ev->wd]);
                w->wd_path[ev->wd] = NULL;
            }
        }
    }
}

/* One round of watch under the writer lock: watch waits for other writers
 * (an `add` meanwhile) and lets them in between rounds. */
static cairn_status watch_round(store *s, const char *const *paths, size_t n, sync_options *o, sync_report *rep)
{
    cairn_status st = store_lock_writer(s, "cairn watch", false);
    if (st == CAIRN_ERR_BUSY) {
        fprintf(stderr, "cairn watch: waiting: %s\n", cairn_last_error());
        st = store_lock_writer(s, "cairn watch", true);
    }
    if (st == CAIRN_OK)
        st = sync_run(s, paths, n, o, rep);
    store_unlock_writer(s);
    print_skips(o->pipe.event_ctx);
    return st;
}

static void watch_free(watch_state *w)
{
    if (w->fd >= 0)
        close(w->fd);
    for (int i = 0; i < w->wd_cap; i++)
        cairn_free(w->wd_path[i]);
    cairn_free(w->wd_path);
    for (size_t i = 0; i < w->n_dirty; i++)
        cairn_free(w->dirty[i]);
    cairn_free(w->dirty);
}

int cmd_watch(int argc, char **argv)
{
    const char *db = NULL;
    if (!cli_take_db(&argc, argv, &db))
        return 2;
    (void)cli_take_flag(&argc, argv, "--wait");   /* watch always waits for other writers */
    sync_ui ui = {0};
    int debounce_ms = 150;
    const char **paths = cairn_calloc((size_t)argc, sizeof *paths);
    size_t n = 0;
    if (!paths)
        return 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: cairn watch [PATH...] [--debounce MS] [--quiet] [--db DIR]\n\n"
                   "Sync once, then keep syncing as files change (inotify) until SIGINT/SIGTERM.\n");
            cairn_free(paths);
            return 0;
        } else if (!strcmp(argv[i], "--quiet") || !strcmp(argv[i], "-q")) {
            ui.quiet = true;
        } else if (!strcmp(argv[i], "-v") || !strcmp(argv[i], "--verbose")) {
            ui.verbose = true;
        } else if (!strcmp(argv[i], "--debounce") && i + 1 < argc) {
            debounce_ms = atoi(argv[++i]);
            if (debounce_ms < 0 || debounce_ms > 60000) {
                fprintf(stderr, "cairn watch: --debounce wants 0..60000 ms\n");
                cairn_free(paths);
                return 2;
            }
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "cairn watch: unknown option '%s'\n", argv[i]);
            cairn_free(paths);
            return 2;
        } else {
            paths[n++] = argv[i];
        }
    }
    store *s = NULL;
    sync_options o;
    cairn_status st = open_for_sync("watch", db, true, &s, &o, &ui);
    if (st != CAIRN_OK) {
        cairn_free(paths);
        return 1;
    }
    watch_state w = {.fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)};
    char **roots = NULL;
    size_t n_roots = 0;
    int rc = 1;
    if (w.fd < 0) {
        fprintf(stderr, "cairn watch: inotify: %s\n", strerror(errno));
        goto out;
    }
    if (n == 0) {
        if ((st = sync_sources(s, &roots, &n_roots)) != CAIRN_OK)
            goto fail;
        for (size_t i = 0; i < n_roots; i++)
            paths[i] = roots[i];
        n = n_roots;
        if (!n) {
            fprintf(stderr, "cairn watch: no sources recorded yet; give PATHs or `cairn add` them first\n");
            goto out;
        }
    }
    for (size_t i = 0; i < n; i++) {
        struct stat sb;
        if (stat(paths[i], &sb) != 0) {
            fprintf(stderr, "cairn watch: %s: %s\n", paths[i], strerror(errno));
            goto out;
        }
        if ((st = watch_tree(&w, S_ISDIR(sb.st_mode) ? paths[i] : ".")) != CAIRN_OK)
            goto fail;
    }
    sync_report rep;
    int64_t t0 = cairn_mono_ns();
    if ((st = watch_round(s, paths, n, &o, &rep)) != CAIRN_OK)
        goto fail;
    print_report(&rep, false, (double)(cairn_mono_ns() - t0) / 1e6);
    if (!ui.quiet)
        fprintf(stderr, "watching %zu path%s (Ctrl-C to stop)\n", n, n == 1 ? "" : "s");
    fflush(stdout);
    while (!stop_flag) {
        struct pollfd pfd = {.fd = w.fd, .events = POLLIN};
        int timeout = w.n_dirty || w.overflow ? debounce_ms : 1000;
        int r = poll(&pfd, 1, timeout);
        if (r < 0 && errno != EINTR) {
            st = cairn_fail(CAIRN_ERR_IO, "poll: %s", strerror(errno));
            goto fail;
        }
        if (r > 0) {
            if ((st = drain_events(&w)) != CAIRN_OK)
                goto fail;
            continue;   /* keep collecting until quiet for debounce_ms */
        }
        if (!w.n_dirty && !w.overflow)
            continue;
        t0 = cairn_mono_ns();
        if (w.overflow) {
            st = watch_round(s, paths, n, &o, &rep);
            w.overflow = false;
        } else {
            st = watch_round(s, (const char *const *)w.dirty, w.n_dirty, &o, &rep);
        }
        for (size_t i = 0; i < w.n_dirty; i++)
            cairn_free(w.dirty[i]);
        w.n_dirty = 0;
        if (st == CAIRN_ERR_INTERRUPTED)
            break;
        if (st != CAIRN_OK)
            goto fail;
        if (rep.added || rep.updated || rep.moved || rep.removed || rep.expired || rep.failed)
            print_report(&rep, false, (double)(cairn_mono_ns() - t0) / 1e6);
        fflush(stdout);
    }
    if (!ui.quiet)
        fprintf(stderr, "watch: stopped\n");
    rc = 0;
    goto out;
fail:
    cli_error("watch", st);
out:
    watch_free(&w);
    for (size_t i = 0; i < n_roots; i++)
        cairn_free(roots[i]);
    cairn_free(roots);
    store_close(s);
    cairn_free(paths);
    return rc;
}
