/* cli_store.c — store discovery and opening for the CLI commands. */
#include "cli/cli_store.h"
#include "search/dense.h"
#include "search/search.h"
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

bool cli_take_db(int *argc, char **argv, const char **db)
{
    int o = 1;
    for (int i = 1; i < *argc; i++) {
        if (!strcmp(argv[i], "--")) {
            while (i < *argc)
                argv[o++] = argv[i++];
            break;
        }
        if (!strcmp(argv[i], "--db")) {
            if (i + 1 >= *argc) {
                fprintf(stderr, "cairn %s: --db needs a directory\n", argv[0]);
                return false;
            }
            *db = argv[++i];
            continue;
        }
        if (!strncmp(argv[i], "--db=", 5)) {
            *db = argv[i] + 5;
            continue;
        }
        argv[o++] = argv[i];
    }
    *argc = o;
    argv[o] = NULL;
    return true;
}

static bool is_store_dir(const char *dir)
{
    char p[PATH_MAX + 32];
    if (snprintf(p, sizeof p, "%s/%s", dir, STORE_DB_NAME) >= (int)sizeof p)
        return false;
    return access(p, F_OK) == 0;
}

static cairn_status from_dir(const char *dir, const char *what, char *out, size_t out_len)
{
    char p[PATH_MAX + 32];
    const char *base = strrchr(dir, '/');
    base = base ? base + 1 : dir;
    if (!strcmp(base, STORE_DIR_NAME) && is_store_dir(dir)) {
        snprintf(out, out_len, "%s", dir);
        return CAIRN_OK;
    }
    if (snprintf(p, sizeof p, "%s/%s", dir, STORE_DIR_NAME) >= (int)sizeof p)
        return cairn_fail(CAIRN_ERR_INVALID, "%s: path too long", dir);
    if (is_store_dir(p)) {
        snprintf(out, out_len, "%s", p);
        return CAIRN_OK;
    }
    if (is_store_dir(dir)) {
        snprintf(out, out_len, "%s", dir);
        return CAIRN_OK;
    }
    return cairn_fail(CAIRN_ERR_NOT_FOUND, "no cairn store at %s (from %s); create one with 'cairn init --db %s'",
                      dir, what, dir);
}

cairn_status cli_find_store(const char *db, char *out, size_t out_len)
{
    if (db && *db)
        return from_dir(db, "--db", out, out_len);
    const char *env = getenv("CAIRN_DB");
    if (env && *env)
        return from_dir(env, "CAIRN_DB", out, out_len);
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd))
        return cairn_fail(CAIRN_ERR_IO, "cannot get the current directory: %s", strerror(errno));
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", cwd);
    for (;;) {
        char p[PATH_MAX + 32];
        if (snprintf(p, sizeof p, "%s/%s", strcmp(dir, "/") ? dir : "", STORE_DIR_NAME) >= (int)sizeof p)
            break;
        if (is_store_dir(p)) {
            snprintf(out, out_len, "%s", p);
            return CAIRN_OK;
        }
        char *slash = strrchr(dir, '/');
        if (!slash || slash == dir) {
            if (!strcmp(dir, "/"))
                break;
            snprintf(dir, sizeof dir, "/");
            continue;
        }
        *slash = 0;
    }
    return cairn_fail(CAIRN_ERR_NOT_FOUND,
                      "not in a cairn store (no .cairn/ here or in any parent directory); run 'cairn init' or pass --db DIR");
}

/* The embedding model stays loaded for the life of the process (watch
 * catches up many times). */
static cairn_embedder *embed_cached;
static char *embed_cached_path;

static void embed_cache_free(void)
{
    embedder_free(embed_cached);
    cairn_free(embed_cached_path);
    embed_cached = NULL;
    embed_cached_path = NULL;
}

cairn_status cli_embedder(const dense_settings *set, cairn_embedder **out)
{
    if (embed_cached && !strcmp(embed_cached_path, set->model)) {
        *out = embed_cached;
        return CAIRN_OK;
    }
    if (!embed_cached_path)
        atexit(embed_cache_free);
    embedder_free(embed_cached);
    cairn_free(embed_cached_path);
    embed_cached = NULL;
    embed_cached_path = cairn_strdup(set->model);
    if (!embed_cached_path)
        return cairn_fail(CAIRN_ERR_NOMEM, "embedding model");
    embed_opts eo = {.n_threads = set->threads};
    CAIRN_TRY(embedder_load(set->model, &eo, &embed_cached));
    *out = embed_cached;
    return CAIRN_OK;
}

typedef struct embed_ui { int64_t t0; bool drawn; } embed_ui;

static void embed_progress(void *ctx, uint64_t done, uint64_t total)
{
    embed_ui *u = ctx;
    double dt = (double)(cairn_mono_ns() - u->t0) / 1e9;
    fprintf(stderr, "\r\033[Kembedding %llu/%llu chunks  %.0f chunks/s", (unsigned long long)done,
            (unsigned long long)total, dt > 0 ? (double)done / dt : 0.0);
    u->drawn = true;
}

/* Derived indexes (BM25, vectors) catch up here after a command changed
 * the store. */
static cairn_status derived_update(store *s, void *ctx)
{
    (void)ctx;
    CAIRN_TRY(search_catch_up(s, NULL));   /* the BM25 index (search/search.h) */
    dense_settings set;
    CAIRN_TRY(dense_settings_load(s, &set));
    cairn_status st = CAIRN_OK;
    if (set.model) {
        cairn_embedder *e = NULL;
        st = cli_embedder(&set, &e);
        if (st != CAIRN_OK)
            st = cairn_fail_wrap(st, "embedding model %s", set.model);
        embed_ui ui = {.t0 = cairn_mono_ns()};
        bool tty = isatty(2);
        if (st == CAIRN_OK)
            st = dense_catch_up(s, &set, e, tty ? embed_progress : NULL, &ui, NULL);
        if (ui.drawn)
            fprintf(stderr, "\r\033[K");
    }
    dense_settings_free(&set);
    return st;
}

cairn_status cli_open_store(const char *db, store **out)
{
    char dir[PATH_MAX + 32];
    CAIRN_TRY(cli_find_store(db, dir, sizeof dir));
    CAIRN_TRY(store_open(dir, out));
    store_set_derived_hook(*out, derived_update, NULL);
    return CAIRN_OK;
}

bool cli_take_flag(int *argc, char **argv, const char *flag)
{
    int o = 1;
    bool found = false;
    for (int i = 1; i < *argc; i++) {
        if (!strcmp(argv[i], "--")) {
            while (i < *argc)
                argv[o++] = argv[i++];
            break;
        }
        if (!strcmp(argv[i], flag)) {
            found = true;
            continue;
        }
        argv[o++] = argv[i];
    }
    *argc = o;
    argv[o] = NULL;
    return found;
}

cairn_status cli_open_store_writer(const char *db, const char *cmd, bool wait, store **out)
{
    *out = NULL;
    store *s;
    cairn_status st = cli_open_store(db, &s);
    if (st != CAIRN_OK) {
        cli_error(cmd, st);
        return st;
    }
    char what[64];
    snprintf(what, sizeof what, "cairn %s", cmd);
    st = store_lock_writer(s, what, false);
    if (st == CAIRN_ERR_BUSY && wait) {
        fprintf(stderr, "cairn %s: waiting: %s\n", cmd, cairn_last_error());
        st = store_lock_writer(s, what, true);
    }
    if (st == CAIRN_ERR_BUSY)
        fprintf(stderr, "cairn %s: %s; retry later, or pass --wait to wait for it\n", cmd, cairn_last_error());
    else if (st != CAIRN_OK)
        cli_error(cmd, st);
    if (st != CAIRN_OK) {
        store_close(s);
        return st;
    }
    *out = s;
    return CAIRN_OK;
}

void cli_error(const char *cmd, cairn_status st)
{
    const char *d = cairn_last_error();
    fprintf(stderr, "cairn %s: %s\n", cmd, d && *d ? d : cairn_status_str(st));
}
