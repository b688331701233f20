/*
 * cmd_serve.c — `cairn serve`: options in, src/server/ does the rest.
 * Models come from the flags, else from the store's config:
 *   [server] model = PATH   embed_model = PATH   rerank_model = PATH
 *            api_key_file = PATH   (relative paths: to the project root)
 */
#include "base/base.h"
#include "cli/cli_store.h"
#include "cli/commands.h"
#include "server/server.h"
#include "store/config.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_KEY_BYTES 4096

static void usage(FILE *f)
{
    fprintf(f,
            "usage: cairn serve [-m MODEL] [--embed-model MODEL] [--host 127.0.0.1] [--port 8080]\n"
            "                   [--api-key KEY | --api-key-file FILE] [--parallel N] [options]\n"
            "  An OpenAI-compatible HTTP server (docs/server.md) over the store found here (or --db).\n"
            "  -m, --model FILE      chat/completions model (GGUF); default [server] model in config\n"
            "  --embed-model FILE    /v1/embeddings model; --rerank-model FILE  /v1/rerank cross-encoder\n"
            "  --host ADDR           address to bind (default 127.0.0.1; anything else wants a key)\n"
            "  --port N              port (default 8080; 0 = any free port, printed)\n"
            "  --api-key KEY         require 'Authorization: Bearer KEY' (visible in ps: prefer the file)\n"
            "  --api-key-file FILE   the key is the file's first line (or $CAIRN_API_KEY)\n"
            "  --parallel N          generation slots decoding together (default 4)\n"
            "  --ctx N               context tokens per slot (default: the model's, at most 4096)\n"
            "  -t N                  compute threads (default: CPUs, at most 8)\n"
            "  --queue N             requests waiting for a slot before 429 (default 64)\n"
            "  --max-connections N   open connections before 429 (default 256)\n"
            "  --max-body-kb N       JSON body limit (default 8192)\n"
            "  --max-upload-mb N     document upload limit (default 64)\n"
            "  --max-header-kb N     request line + headers limit (default 32)\n"
            "  --max-tokens N        cap on max_tokens (default: the slot context)\n"
            "  --max-prompt-tokens N cap on prompt tokens (default: the slot context - 1)\n"
            "  --timeout S           a request must arrive whole within S seconds (default 30)\n"
            "  --cors-origin ORIGIN  send CORS headers for ORIGIN (default: none)\n"
            "  --chat-template NAME  chatml, llama2, ... instead of the model's\n"
            "  --no-store            serve models only, even inside a store\n"
            "  --gateway FILE        upstreams and routing rules (docs/gateway.md) instead of the\n"
            "                        store's .cairn/config\n");
}

static bool parse_int(const char *s, long lo, long hi, int *out)
{
    char *e;
    errno = 0;
    long v = strtol(s, &e, 10);
    if (errno || e == s || *e || v < lo || v > hi)
        return false;
    *out = (int)v;
    return true;
}

static char *read_key_file(const char *path)
{
    char *data = NULL;
    size_t len = 0;
    if (cairn_file_read_all(path, MAX_KEY_BYTES, &data, &len) != CAIRN_OK)
        return NULL;
    size_t n = strcspn(data, "\r\n");
    data[n] = '\0';
    while (n > 0 && (data[n - 1] == ' ' || data[n - 1] == '\t'))
        data[--n] = '\0';
    if (!n) {
        cairn_free(data);
        cairn_fail(CAIRN_ERR_INVALID, "%s: the key file is empty", path);
        return NULL;
    }
    return data;
}

/* A config path, relative to the project root. */
static char *config_path(const char *root, const char *v)
{
    if (!v || !*v)
        return NULL;
    if (v[0] == '/')
        return cairn_strdup(v);
    size_t n = strlen(root) + strlen(v) + 2;
    char *p = cairn_malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", root, v);
    return p;
}

int cmd_serve(int argc, char **argv)
{
    const char *db = NULL;
    if (!cli_take_db(&argc, argv, &db))
        return 2;
    server_opts o = {.port = 8080};
    const char *key_file = NULL;
    bool no_store = false;
    int kb = 0, mb = 0, hkb = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--no-store")) {
            no_store = true;
            continue;
        } else if (!v) {
            fprintf(stderr, "cairn serve: option %s needs a value\n", a);
            return 2;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) o.model = v;
        else if (!strcmp(a, "--embed-model")) o.embed_model = v;
        else if (!strcmp(a, "--rerank-model")) o.rerank_model = v;
        else if (!strcmp(a, "--host")) o.host = v;
        else if (!strcmp(a, "--port")) ok = parse_int(v, 0, 65535, &o.port);
        else if (!strcmp(a, "--api-key")) o.api_key = v;
        else if (!strcmp(a, "--api-key-file")) key_file = v;
        else if (!strcmp(a, "--parallel")) ok = parse_int(v, 1, 64, &o.n_parallel);
        else if (!strcmp(a, "--ctx")) ok = parse_int(v, 16, 1 << 20, &o.n_ctx);
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) ok = parse_int(v, 1, 256, &o.n_threads);
        else if (!strcmp(a, "--queue")) ok = parse_int(v, 1, 100000, &o.max_queue);
        else if (!strcmp(a, "--max-connections")) ok = parse_int(v, 1, 4096, &o.max_connections);
        else if (!strcmp(a, "--max-body-kb")) ok = parse_int(v, 1, 1 << 20, &kb);
        else if (!strcmp(a, "--max-upload-mb")) ok = parse_int(v, 1, 4096, &mb);
        else if (!strcmp(a, "--max-header-kb")) ok = parse_int(v, 4, 1024, &hkb);
        else if (!strcmp(a, "--max-tokens")) ok = parse_int(v, 1, 1 << 20, &o.max_tokens);
        else if (!strcmp(a, "--max-prompt-tokens")) ok = parse_int(v, 1, 1 << 20, &o.max_prompt_tokens);
        else if (!strcmp(a, "--timeout")) ok = parse_int(v, 1, 86400, &o.timeout_s);
        else if (!strcmp(a, "--cors-origin")) o.cors_origin = v;
        else if (!strcmp(a, "--gateway")) o.gateway_file = v;
        else if (!strcmp(a, "--chat-template")) o.chat_template = v;
        else {
            fprintf(stderr, "cairn serve: unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
        if (!ok) {
            fprintf(stderr, "cairn serve: invalid value for %s: '%s'\n", a, v);
            return 2;
        }
        i++;
    }
    if (o.api_key && key_file) {
        fprintf(stderr, "cairn serve: give --api-key or --api-key-file, not both\n");
        return 2;
    }
    o.max_body = (size_t)kb << 10;
    o.max_upload = (size_t)mb << 20;
    o.max_header = (size_t)hkb << 10;

    /* the store: optional unless named */
    char dir[PATH_MAX + 32];
    store_config cfg;
    store_config_default(&cfg);
    char *cfg_model = NULL, *cfg_embed = NULL, *cfg_rerank = NULL, *cfg_keyfile = NULL, *key = NULL;
    int rc = 1;
    if (!no_store) {
        cairn_status st = cli_find_store(db, dir, sizeof dir);
        if (st == CAIRN_OK) {
            o.db = dir;
            char cpath[PATH_MAX + 64], root[PATH_MAX + 32];
            snprintf(cpath, sizeof cpath, "%s/config", dir);
            snprintf(root, sizeof root, "%s", dir);
            char *slash = strrchr(root, '/');
            if (slash)
                *slash = '\0';
            if ((st = store_config_load(&cfg, cpath)) != CAIRN_OK) {
                cli_error("serve", st);
                goto out;
            }
            cfg_model = config_path(root, store_config_get(&cfg, "server", "model"));
            cfg_embed = config_path(root, store_config_get(&cfg, "server", "embed_model"));
            cfg_rerank = config_path(root, store_config_get(&cfg, "server", "rerank_model"));
            cfg_keyfile = config_path(root, store_config_get(&cfg, "server", "api_key_file"));
        } else if (db) {
            cli_error("serve", st);
            goto out;
        }
    }
    if (!o.model) o.model = cfg_model;
    if (!o.embed_model) o.embed_model = cfg_embed;
    if (!o.rerank_model) o.rerank_model = cfg_rerank;
    if (!o.api_key && !key_file)
        key_file = cfg_keyfile;
    if (key_file) {
        if (!(key = read_key_file(key_file))) {
            fprintf(stderr, "cairn serve: cannot read the API key from %s: %s\n", key_file, cairn_last_error());
            goto out;
        }
        o.api_key = key;
    } else if (!o.api_key && getenv("CAIRN_API_KEY") && *getenv("CAIRN_API_KEY")) {
        o.api_key = getenv("CAIRN_API_KEY");
    }
    if (!o.model && !o.embed_model && !o.db && !o.gateway_file) {
        fprintf(stderr, "cairn serve: nothing to serve: give -m MODEL, --embed-model MODEL, or run inside a store\n");
        rc = 2;
        goto out;
    }
    /* the server's threads inherit this mask: SIGINT/SIGTERM reach sigwait below */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    cairn_server *S = NULL;
    cairn_status st = server_start(&o, &S);
    if (st != CAIRN_OK) {
        cli_error("serve", st);
        goto out;
    }
    printf("cairn serve: listening on http://%s:%d (model %s, embeddings %s, store %s%s)\n",
           o.host ? o.host : "127.0.0.1", server_port(S), o.model ? o.model : "none",
           o.embed_model ? o.embed_model : "none", o.db ? o.db : "none", o.api_key ? ", API key required" : "");
    fflush(stdout);
    int sig = 0;
    sigwait(&set, &sig);
    fprintf(stderr, "cairn serve: stopping (%s)\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    server_stop(S);
    rc = 0;
out:
    cairn_free(key);
    cairn_free(cfg_model);
    cairn_free(cfg_embed);
    cairn_free(cfg_rerank);
    cairn_free(cfg_keyfile);
    store_config_free(&cfg);
    return rc;
}
