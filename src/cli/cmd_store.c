/* cmd_store.c — cairn init, add, rm, status. */
#include "cli/cli_store.h"
#include "cli/cli_util.h"
#include "cli/commands.h"
#include "gateway/gw_ask.h"
#include "ingest/pipeline.h"
#include "sync/sync.h"
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static bool is_help(const char *a) { return !strcmp(a, "--help") || !strcmp(a, "-h"); }

/* ---- init ---- */
int cmd_init(int argc, char **argv)
{
    const char *db = NULL;
    if (!cli_take_db(&argc, argv, &db))
        return 2;
    const char *dir = db, *embed_model = NULL;
    for (int i = 1; i < argc; i++) {
        if (is_help(argv[i])) {
            printf("usage: cairn init [--db DIR | DIR] [--embed-model PATH]\n\nCreate DIR/.cairn (default: ./.cairn).\n"
                   "  --embed-model PATH  GGUF encoder: add/sync/watch embed chunks for dense and hybrid search\n"
                   "                      ([embed] model in .cairn/config)\n");
            return 0;
        }
        if (!strcmp(argv[i], "--embed-model")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "cairn init: --embed-model needs a GGUF file\n");
                return 2;
            }
            embed_model = argv[++i];
            continue;
        }
        if (argv[i][0] == '-') {
            fprintf(stderr, "cairn init: unknown option '%s'\n", argv[i]);
            return 2;
        }
        if (dir) {
            fprintf(stderr, "cairn init: more than one directory given\n");
            return 2;
        }
        dir = argv[i];
    }
    if (!dir)
        dir = ".";
    struct stat sb;
    if (stat(dir, &sb) != 0) {
        if (errno == ENOENT && mkdir(dir, 0755) == 0) {
            /* created */
        } else {
            fprintf(stderr, "cairn init: %s: %s\n", dir, strerror(errno));
            return 1;
        }
    } else if (!S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "cairn init: %s is not a directory\n", dir);
        return 1;
    }
    char path[PATH_MAX + 16];
    const char *base = strrchr(dir, '/');
    base = base ? base + 1 : dir;
    if (!strcmp(base, STORE_DIR_NAME))
        snprintf(path, sizeof path, "%s", dir);
    else
        snprintf(path, sizeof path, "%s/%s", dir, STORE_DIR_NAME);
    char model_abs[PATH_MAX] = "";
    if (embed_model) {
        /* refuse a file that is not an encoder before creating anything */
        cairn_embedder *e = NULL;
        cairn_status est = embedder_load(embed_model, NULL, &e);
        if (est != CAIRN_OK) {
            cli_error("init", est);
            return 1;
        }
        embedder_free(e);
        if (!realpath(embed_model, model_abs)) {
            fprintf(stderr, "cairn init: %s: %s\n", embed_model, strerror(errno));
            return 1;
        }
    }
    cairn_status st = store_create(path);
    if (st != CAIRN_OK) {
        cli_error("init", st);
        return 1;
    }
    if (*model_abs) {
        char cfg[PATH_MAX + 32];
        snprintf(cfg, sizeof cfg, "%s/config", path);
        FILE *f = fopen(cfg, "a");
        if (!f || fprintf(f, "\n[embed]\nmodel = %s\n", model_abs) < 0 || fclose(f) != 0) {
            fprintf(stderr, "cairn init: %s: cannot write the embedding model setting\n", cfg);
            return 1;
        }
    }
    char real[PATH_MAX];
    printf("Initialized an empty cairn store in %s\n", realpath(path, real) ? real : path);
    return 0;
}

/* ---- add ---- */
static volatile sig_atomic_t stop_flag;
static void on_signal(int sig) { (void)sig; stop_flag = 1; }

typedef struct add_ui {
    bool tty, quiet;
    int64_t t0, last_draw;
    uint64_t total_files, total_bytes;   /* estimate; 0 = unknown */
    uint64_t files, bytes, chunks;
    uint64_t file_done;                  /* bytes read of the big file in progress */
    bool line_drawn;
} add_ui;

static void fmt_mb(char *buf, size_t n, uint64_t bytes)
{
    snprintf(buf, n, "%.1f MB", (double)bytes / 1e6);
}

static void clear_line(add_ui *u)
{
    if (u->line_drawn) {
        fputs("\r\033[K", stderr);
        u->line_drawn = false;
    }
}

static void draw(add_ui *u, bool force)
{
    if (!u->tty || u->quiet)
        return;
    int64_t now = cairn_mono_ns();
    if (!force && now - u->last_draw < 100000000LL)
        return;
    u->last_draw = now;
    double secs = (double)(now - u->t0) / 1e9;
    uint64_t bytes = u->bytes + u->file_done;
    double rate = secs > 0 ? (double)bytes / 1e6 / secs : 0;
    char eta[32] = "";
    if (u->total_bytes && rate > 0 && bytes <= u->total_bytes) {
        double left = (double)(u->total_bytes - bytes) / 1e6 / rate;
        snprintf(eta, sizeof eta, "  ETA %d:%02d", (int)left / 60, (int)left % 60);
    }
    char tot[48] = "";
    if (u->total_files)
        snprintf(tot, sizeof tot, "/%llu", (unsigned long long)u->total_files);
    fprintf(stderr, "\r\033[Kfiles %llu%s  %.1f MB  chunks %llu  %.1f MB/s%s", (unsigned long long)u->files, tot,
            (double)bytes / 1e6, (unsigned long long)u->chunks, rate, eta);
    u->line_drawn = true;
}

/* Inside a big JSONL/CSV file: bytes read so far. */
static void on_progress(void *ctx, const char *path, uint64_t done, uint64_t size)
{
    (void)path;
    (void)size;
    add_ui *u = ctx;
    u->file_done = done;
    draw(u, false);
}

static void on_event(void *ctx, const pipe_event *ev)
{
    add_ui *u = ctx;
    const char *tag = NULL;
    char name[1024];
    cli_safe_name(ev->path, name, sizeof name);   /* a file name may hold any bytes */
    u->file_done = 0;
    switch (ev->outcome) {
    case PIPE_ADDED:
    case PIPE_UPDATED:
    case PIPE_UNCHANGED:
        u->files++;
        u->bytes += ev->bytes;
        u->chunks += ev->chunks;
        if (!u->tty && !u->quiet && ev->outcome != PIPE_UNCHANGED)
            printf("%s %s (%zu chunk%s)\n", ev->outcome == PIPE_ADDED ? "added  " : "updated", name, ev->chunks,
                   ev->chunks == 1 ? "" : "s");
        draw(u, false);
        return;
    case PIPE_SKIPPED:
        u->files++;
        u->bytes += ev->bytes;
        tag = "skipped";
        break;
    case PIPE_FAILED:
        u->files++;
        tag = "failed";
        break;
    case PIPE_WARNING: tag = "warning"; break;
    }
    if (u->quiet && ev->outcome != PIPE_FAILED)
        return;
    clear_line(u);
    fprintf(stderr, "%s: %s: %s\n", tag, name, ev->reason ? ev->reason : "");
    draw(u, true);
}

/* --tag k=v; a repeated key becomes a list. */
static bool add_tag(meta_list *tags, const char *kv)
{
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv) {
        fprintf(stderr, "cairn add: --tag wants KEY=VALUE, got '%s'\n", kv);
        return false;
    }
    char key[256];
    if ((size_t)(eq - kv) >= sizeof key) {
        fprintf(stderr, "cairn add: --tag key too long\n");
        return false;
    }
    memcpy(key, kv, (size_t)(eq - kv));
    key[eq - kv] = 0;
    if (store_meta_is_builtin(key)) {
        fprintf(stderr, "cairn add: --tag %s: '%s' is a builtin field and cannot be set\n", kv, key);
        return false;
    }
    cairn_status st = meta_add_tag(tags, kv);
    if (st != CAIRN_OK) {
        cli_error("add", st);
        return false;
    }
    return true;
}

static void print_add_summary(const pipe_stats *s, int64_t chunks_removed, double secs, bool interrupted)
{
    double mb = (double)s->bytes_read / 1e6;
    fprintf(stdout,
            "%s%zu added, %zu updated, %zu unchanged, %zu skipped, %zu failed; "
            "%zu documents written, %zu removed; %zu chunks added, %lld removed; %.1f MB read in %.2f s (%.1f MB/s)\n",
            interrupted ? "interrupted: " : "", s->files_added, s->files_updated, s->files_unchanged, s->files_skipped,
            s->files_failed, s->docs_written, s->docs_removed, s->chunks_added, (long long)chunks_removed, mb, secs,
            secs > 0 ? mb / secs : 0);
    if (s->files_lost)
        fprintf(stdout, "%zu file%s listed above as added or updated were not kept (the store could not commit them); "
                        "run the same command again to finish\n", s->files_lost, s->files_lost == 1 ? "" : "s");
}

int cmd_add(int argc, char **argv)
{
    const char *db = NULL;
    if (!cli_take_db(&argc, argv, &db))
        return 2;
    bool wait = cli_take_flag(&argc, argv, "--wait");
    meta_list tags = {0};
    const char **excludes = cairn_calloc((size_t)argc + 1, sizeof *excludes);
    const char **paths = cairn_calloc((size_t)argc + 1, sizeof *paths);
    size_t n_ex = 0, n_paths = 0;
    bool quiet = false, no_progress = false;
    int64_t ttl_s = 0;
    cJSON *src_opts = cJSON_CreateObject(), *src_tags = cJSON_CreateArray(), *src_ex = cJSON_CreateArray();
    char *src_json = NULL;
    int rc = 2;
    store *s = NULL;
    pipeline *p = NULL;
    if (!excludes || !paths || !src_opts || !src_tags || !src_ex) {
        fprintf(stderr, "cairn add: out of memory\n");
        goto out;
    }
    cJSON_AddItemToObject(src_opts, "tags", src_tags);
    cJSON_AddItemToObject(src_opts, "exclude", src_ex);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (is_help(a)) {
            printf("usage: cairn add PATH... [--tag KEY=VALUE]... [--exclude GLOB]... [--quiet] [--db DIR]\n\n"
                   "Ingest files and directories (recursively) into the store. Unchanged files are skipped.\n"
                   "  --tag KEY=VALUE  metadata for every document (typed: number, date, true/false, string;\n"
                   "                   a repeated KEY makes a list)\n"
                   "  --exclude GLOB   skip files and directories whose name or path matches\n"
                   "  --ttl DURATION   documents expire DURATION after ingest (7d, 12h, 30m)\n"
                   "  --quiet          print only failures\n"
                   "  --wait           wait for another writer of the store to finish (default: fail, busy)\n");
            rc = 0;
            goto out;
        }
        if (!strcmp(a, "--tag") || !strcmp(a, "-t")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "cairn add: --tag needs KEY=VALUE\n");
                goto out;
            }
            if (!add_tag(&tags, argv[++i]))
                goto out;
            cJSON_AddItemToArray(src_tags, cJSON_CreateString(argv[i]));
        } else if (!strncmp(a, "--tag=", 6)) {
            if (!add_tag(&tags, a + 6))
                goto out;
            cJSON_AddItemToArray(src_tags, cJSON_CreateString(a + 6));
        } else if (!strcmp(a, "--exclude")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "cairn add: --exclude needs a glob\n");
                goto out;
            }
            excludes[n_ex++] = argv[++i];
            cJSON_AddItemToArray(src_ex, cJSON_CreateString(argv[i]));
        } else if (!strncmp(a, "--exclude=", 10)) {
            excludes[n_ex++] = a + 10;
            cJSON_AddItemToArray(src_ex, cJSON_CreateString(a + 10));
        } else if (!strcmp(a, "--ttl") || !strncmp(a, "--ttl=", 6)) {
            const char *v = a[5] == '=' ? a + 6 : (i + 1 < argc ? argv[++i] : NULL);
            if (!v || cairn_parse_duration(v, &ttl_s) != CAIRN_OK || ttl_s <= 0) {
                fprintf(stderr, "cairn add: --ttl wants a duration such as 7d, 12h, 30m\n");
                goto out;
            }
        } else if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) {
            quiet = true;
        } else if (!strcmp(a, "--no-progress")) {
            no_progress = true;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "cairn add: unknown option '%s'\n", a);
            goto out;
        } else {
            paths[n_paths++] = a;
        }
    }
    if (!n_paths) {
        fprintf(stderr, "usage: cairn add PATH... [--tag KEY=VALUE]... [--exclude GLOB]... [--quiet]\n");
        goto out;
    }
    rc = 1;
    cairn_status st = cli_open_store_writer(db, "add", wait, &s);
    if (st != CAIRN_OK)
        goto out;
    pipe_options po;
    pipeline_options_from_config(s, &po);
    po.tags = &tags;
    po.excludes = excludes;
    po.n_excludes = n_ex;
    po.stop = &stop_flag;
    add_ui ui = {.tty = !no_progress && isatty(2), .quiet = quiet, .t0 = cairn_mono_ns()};
    po.on_event = on_event;
    po.on_progress = on_progress;
    po.event_ctx = &ui;
    if ((st = store_next_sync_gen(s, &po.sync_gen)) != CAIRN_OK) {
        cli_error("add", st);
        goto out;
    }
    if ((st = pipeline_new(s, &po, &p)) != CAIRN_OK) {
        cli_error("add", st);
        goto out;
    }
    /* chunks removed = growth of the deletion log (replaced and pruned alike) */
    int64_t del_before = 0, del_after = 0;
    if ((st = store_marks(s, NULL, &del_before)) != CAIRN_OK) {
        cli_error("add", st);
        goto out;
    }
    if (ui.tty && !quiet) {
        for (size_t i = 0; i < n_paths; i++) {
            uint64_t f = 0, b = 0;
            if (pipeline_count(p, paths[i], &f, &b) != CAIRN_OK) {
                ui.total_files = ui.total_bytes = 0;   /* unknown: no ETA */
                break;
            }
            ui.total_files += f;
            ui.total_bytes += b;
        }
    }
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    if (ttl_s)
        cJSON_AddNumberToObject(src_opts, "ttl_s", (double)ttl_s);
    src_json = cJSON_PrintUnformatted(src_opts);
    for (size_t i = 0; i < n_paths && st == CAIRN_OK; i++) {
        /* Remember each root with its options, so `cairn sync` can redo it. */
        char *root = NULL;
        int64_t sid = 0;
        st = store_path_key(s, paths[i], &root);
        if (st == CAIRN_OK)
            st = store_source_upsert(s, root, src_json ? src_json : "{}", ttl_s, &sid);
        if (st == CAIRN_OK)
            st = store_source_touch(s, sid, cairn_now_ns());
        cairn_free(root);
        if (st != CAIRN_OK)
            break;
        pipeline_set_source(p, sid, ttl_s);
        st = pipeline_add_path(p, paths[i]);
    }
    cairn_status fin = pipeline_finish(p);
    if (st == CAIRN_OK)
        st = fin;
    bool interrupted = st == CAIRN_ERR_INTERRUPTED;
    /* After an interruption the user wants out: derived indexes catch up
     * on their next use (search opens catch up too). */
    if (st == CAIRN_OK) {
        cairn_status d = store_update_derived(s);
        if (d != CAIRN_OK) {
            clear_line(&ui);
            char why[600];
            snprintf(why, sizeof why, "%s", cairn_last_error());
            cairn_fail(d, "the documents are saved, but %s; search serves the previous index until a later add, "
                          "sync or search catches it up", why);
            st = d;
        }
    }
    clear_line(&ui);
    if (store_marks(s, NULL, &del_after) != CAIRN_OK)
        del_after = del_before;
    const pipe_stats *ps = pipeline_stats(p);
    if (!quiet)
        print_add_summary(ps, del_after - del_before, (double)(cairn_mono_ns() - ui.t0) / 1e9, interrupted);
    if (interrupted) {
        fprintf(stderr, "cairn add: interrupted; completed documents are saved; run the same command to finish\n");
        rc = 130;
    } else if (st != CAIRN_OK) {
        cli_error("add", st);
        rc = 1;
    } else {
        rc = ps->files_failed ? 1 : 0;
    }
out:
    pipeline_free(p);
    store_close(s);
    cJSON_Delete(src_opts);
    cJSON_free(src_json);
    meta_list_free(&tags);
    cairn_free(excludes);
    cairn_free(paths);
    return rc;
}

/* ---- rm ---- */
int cmd_rm(int argc, char **argv)
{
    const char *db = NULL;
    if (!cli_take_db(&argc, argv, &db))
        return 2;
    bool wait = cli_take_flag(&argc, argv, "--wait");
    int n_paths = 0;
    bool quiet = false;
    for (int i = 1; i < argc; i++) {
        if (is_help(argv[i])) {
            printf("usage: cairn rm PATH... [--quiet] [--wait] [--db DIR]\n\n"
                   "Remove documents (a directory removes everything under it) and all data derived from them.\n"
                   "The files on disk are not touched.\n");
            return 0;
        }
        if (!strcmp(argv[i], "--quiet") || !strcmp(argv[i], "-q"))
            quiet = true;
        else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "cairn rm: unknown option '%s'\n", argv[i]);
            return 2;
        } else
            n_paths++;
    }
    if (!n_paths) {
        fprintf(stderr, "usage: cairn rm PATH...\n");
        return 2;
    }
    store *s;
    cairn_status st = cli_open_store_writer(db, "rm", wait, &s);
    if (st != CAIRN_OK)
        return 1;
    int rc = 0;
    size_t tf = 0, td = 0;
    for (int i = 1; i < argc && st == CAIRN_OK; i++) {
        if (argv[i][0] == '-' && argv[i][1])
            continue;
        char *key;
        st = store_path_key(s, argv[i], &key);
        if (st != CAIRN_OK)
            break;
        size_t nf = 0, nd = 0, forgot = 0;
        st = store_remove_under(s, key, &nf, &nd);
        /* keep `cairn sync` from bringing it back */
        if (st == CAIRN_OK && (nf || nd))
            st = store_sources_after_remove(s, key, &forgot, NULL);
        else if (st == CAIRN_OK)   /* nothing removed: forget sources, add no exclude */
            st = store_sources_forget_under(s, key, &forgot);
        if (st == CAIRN_OK && nf == 0 && nd == 0 && forgot == 0) {
            fprintf(stderr, "cairn rm: %s: not in the store\n", argv[i]);
            rc = 1;
        } else if (st == CAIRN_OK && !quiet) {
            printf("removed %s (%zu file%s, %zu document%s%s)\n", key[0] ? key : ".", nf, nf == 1 ? "" : "s", nd,
                   nd == 1 ? "" : "s", forgot ? "; no longer a source" : "");
        }
        tf += nf;
        td += nd;
        cairn_free(key);
    }
    if (st == CAIRN_OK && (tf || td))
        st = store_update_derived(s);
    if (st != CAIRN_OK) {
        cli_error("rm", st);
        rc = 1;
    }
    store_close(s);
    return rc;
}

/* ---- status ---- */
static int64_t dir_bytes_except(const char *dir, const char *skip_prefix, int depth)
{
    DIR *d = opendir(dir);
    if (!d || depth > 8) {
        if (d)
            closedir(d);
        return 0;
    }
    int64_t total = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (skip_prefix && !strncmp(de->d_name, skip_prefix, strlen(skip_prefix)))
            continue;
        char p[PATH_MAX];
        if (snprintf(p, sizeof p, "%s/%s", dir, de->d_name) >= (int)sizeof p)
            continue;
        struct stat sb;
        if (lstat(p, &sb) != 0)
            continue;
        if (S_ISDIR(sb.st_mode))
            total += dir_bytes_except(p, NULL, depth + 1);
        else if (S_ISREG(sb.st_mode) && strcmp(de->d_name, "config"))
            total += (int64_t)sb.st_size;
    }
    closedir(d);
    return total;
}

static void fmt_time(int64_t ns, char *buf, size_t n)
{
    if (!ns) {
        snprintf(buf, n, "never");
        return;
    }
    time_t t = (time_t)(ns / 1000000000LL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void fmt_age(int64_t ns, char *buf, size_t n)
{
    if (!ns) {
        buf[0] = 0;
        return;
    }
    int64_t s = (cairn_now_ns() - ns) / 1000000000LL;
    if (s < 0)
        s = 0;
    if (s < 120)
        snprintf(buf, n, " (%llds ago)", (long long)s);
    else if (s < 7200)
        snprintf(buf, n, " (%lldm ago)", (long long)(s / 60));
    else if (s < 172800)
        snprintf(buf, n, " (%lldh ago)", (long long)(s / 3600));
    else
        snprintf(buf, n, " (%lldd ago)", (long long)(s / 86400));
}

int cmd_status(int argc, char **argv)
{
    const char *db = NULL;
    if (!cli_take_db(&argc, argv, &db))
        return 2;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (is_help(argv[i])) {
            printf("usage: cairn status [--json] [--db DIR]\n\nDocuments, chunks, bytes, index size, last sync.\n");
            return 0;
        }
        if (!strcmp(argv[i], "--json"))
            json = true;
        else {
            fprintf(stderr, "cairn status: unknown argument '%s'\n", argv[i]);
            return 2;
        }
    }
    store *s;
    cairn_status st = cli_open_store(db, &s);
    if (st != CAIRN_OK) {
        cli_error("status", st);
        return 1;
    }
    store_stats o;
    st = store_get_stats(s, &o);
    if (st != CAIRN_OK) {
        cli_error("status", st);
        store_close(s);
        return 1;
    }
    int64_t index_bytes = dir_bytes_except(store_dir(s), STORE_DB_NAME, 0);
    dense_status dst;
    bool dense_ok = dense_get_status(s, &dst) == CAIRN_OK;
    if (!dense_ok)
        cairn_clear_error();
    /* Staleness: what changed on disk since the last sync (a walk + stat). */
    sync_stale_report stale = {0};
    bool stale_ok = sync_stale(s, &stale) == CAIRN_OK;
    if (!stale_ok)
        cairn_clear_error();
    char last[40], oldest[40], age[40], oage[40];
    fmt_time(o.last_sync_ns, last, sizeof last);
    fmt_time(o.oldest_ingest_ns, oldest, sizeof oldest);
    fmt_age(o.last_sync_ns, age, sizeof age);
    fmt_age(o.oldest_ingest_ns, oage, sizeof oage);
    /* the gateway: upstreams, budgets spent today (from the audit log) */
    cJSON *gwj = NULL;
    gw *g = NULL;
    if (gw_open_store(store_get_config(s), store_dir(s), NULL, &g) == CAIRN_OK && gw_enabled(g)) {
        char *gs = NULL;
        if (gw_status_json(g, &gs) == CAIRN_OK)
            gwj = cJSON_Parse(gs);
        cairn_free(gs);
    } else {
        cairn_clear_error();
    }
    gw_close(g);
    if (json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "store", store_dir(s));
        if (gwj)
            cJSON_AddItemToObject(j, "gateway", gwj), gwj = NULL;
        cJSON_AddNumberToObject(j, "documents", (double)o.docs);
        cJSON_AddNumberToObject(j, "files", (double)o.files);
        cJSON_AddNumberToObject(j, "files_skipped", (double)o.files_skipped);
        cJSON_AddNumberToObject(j, "files_partial", (double)o.files_partial);
        cJSON_AddNumberToObject(j, "files_failed", (double)o.files_failed);
        cJSON_AddNumberToObject(j, "chunks", (double)o.chunks);
        cJSON_AddNumberToObject(j, "bytes", (double)o.bytes);
        cJSON_AddNumberToObject(j, "text_bytes", (double)o.text_bytes);
        cJSON_AddNumberToObject(j, "store_bytes", (double)o.db_bytes);
        cJSON_AddNumberToObject(j, "index_bytes", (double)index_bytes);
        cJSON_AddNumberToObject(j, "sync_gen", (double)o.sync_gen);
        if (o.last_sync_ns)
            cJSON_AddStringToObject(j, "last_sync", last);
        else
            cJSON_AddNullToObject(j, "last_sync");
        if (o.oldest_ingest_ns)
            cJSON_AddStringToObject(j, "oldest_ingest", oldest);
        else
            cJSON_AddNullToObject(j, "oldest_ingest");
        if (dense_ok && (dst.enabled || dst.embedded)) {
            cJSON *ej = cJSON_AddObjectToObject(j, "embeddings");
            cJSON_AddStringToObject(ej, "model", dst.model);
            cJSON_AddNumberToObject(ej, "embedded", (double)dst.embedded);
            cJSON_AddNumberToObject(ej, "chunks", (double)o.chunks);
            cJSON_AddNumberToObject(ej, "index_vectors", (double)dst.index_vectors);
            cJSON_AddNumberToObject(ej, "vectors_bytes", (double)dst.db_bytes);
            cJSON_AddNumberToObject(ej, "index_bytes", (double)dst.index_bytes);
        }
        if (stale_ok) {
            cJSON *sj = cJSON_AddObjectToObject(j, "stale");
            cJSON_AddNumberToObject(sj, "new_files", (double)stale.new_files);
            cJSON_AddNumberToObject(sj, "changed_files", (double)stale.changed_files);
            cJSON_AddNumberToObject(sj, "missing_files", (double)stale.missing_files);
        }
        cli_print_json_opt(j, true);
    } else {
        char b1[32], b2[32], b3[32], b4[32];
        fmt_mb(b1, sizeof b1, (uint64_t)o.bytes);
        fmt_mb(b2, sizeof b2, (uint64_t)o.text_bytes);
        fmt_mb(b3, sizeof b3, (uint64_t)o.db_bytes);
        fmt_mb(b4, sizeof b4, (uint64_t)index_bytes);
        printf("store:      %s\n", store_dir(s));
        printf("documents:  %lld (from %lld files", (long long)o.docs, (long long)o.files);
        if (o.files_skipped)
            printf("; %lld skipped", (long long)o.files_skipped);
        if (o.files_partial)
            printf("; %lld partially ingested: rerun cairn add", (long long)o.files_partial);
        if (o.files_failed)
            printf("; %lld failed to parse, retried when they change (cairn check lists them)", (long long)o.files_failed);
        printf(")\n");
        printf("chunks:     %lld\n", (long long)o.chunks);
        printf("bytes:      %s of sources, %s of chunk text\n", b1, b2);
        printf("store size: %s (SQLite), index %s\n", b3, b4);
        if (dense_ok && (dst.enabled || dst.embedded)) {
            char b5[32], b6[32];
            fmt_mb(b5, sizeof b5, dst.db_bytes);
            fmt_mb(b6, sizeof b6, dst.index_bytes);
            printf("embedded:   %llu / %lld chunks (%s), vectors %s, vector index %s (%llu vectors)\n",
                   (unsigned long long)dst.embedded, (long long)o.chunks, *dst.model ? dst.model : "none yet", b5,
                   b6, (unsigned long long)dst.index_vectors);
        }
        printf("last sync:  %s%s\n", last, age);
        if (o.oldest_ingest_ns)
            printf("oldest:     %s%s\n", oldest, oage);
        if (stale_ok && stale.sources) {
            size_t n = stale.new_files + stale.changed_files + stale.missing_files;
            if (n)
                printf("stale:      %zu new, %zu changed, %zu deleted on disk since the last sync: run `cairn sync`\n",
                       stale.new_files, stale.changed_files, stale.missing_files);
            else
                printf("stale:      none (sources match the store)\n");
        }
        if (gwj) {
            const cJSON *pol = cJSON_GetObjectItemCaseSensitive(gwj, "policy"), *u;
            printf("gateway:    policy %s (live health: GET /v1/gateway and /metrics of cairn serve)\n",
                   cJSON_IsString(pol) ? pol->valuestring : "?");
            cJSON_ArrayForEach(u, cJSON_GetObjectItemCaseSensitive(gwj, "upstreams"))
            {
                const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(u, "name"));
                const char *url = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(u, "url"));
                double tu = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(u, "tokens_used_today"));
                double tb = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(u, "tokens_budget"));
                double mu = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(u, "money_used_today"));
                double mb = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(u, "money_budget"));
                bool key = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(u, "key_set"));
                printf("  upstream %s  %s  today %.0f tokens%s", name ? name : "?", url ? url : "?", tu, tb > 0 ? " of " : "");
                if (tb > 0)
                    printf("%.0f", tb);
                printf(", %.6f spent%s", mu, mb > 0 ? " of " : "");
                if (mb > 0)
                    printf("%.6f", mb);
                printf("%s\n", key ? "" : "  (API key variable not set)");
            }
        }
    }
    cJSON_Delete(gwj);
    store_close(s);
    return 0;
}
