/*
 * cmd_ask.c — `cairn ask` (one question, an answer with sources) and
 * `cairn chat` (a conversation over the store). The work is in src/rag.
 */
#include "base/base.h"
#include "cli/cli_store.h"
#include "cli/cli_util.h"
#include "cli/commands.h"
#include "kernels/quant.h"
#include "gateway/gw_ask.h"
#include "rag/rag.h"

#include <editline/readline.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_QUESTION_BYTES (64u << 10)

typedef struct ask_opts {
    const char *db, *model, *where, *system, *chat_template;
    const char *route, *gateway;    /* the gateway: a policy for this question, a rules file */
    size_t k, budget, sentences;
    rag_mode mode;
    int n_predict, n_threads, n_ctx;
    sampler_params sp;
    bool json, verbose, no_model, no_cache;
} ask_opts;

static void ask_usage(FILE *f, bool chat)
{
    fprintf(f,
            "usage: cairn %s [options] %s\n"
            "  %s\n"
            "  --where EXPR        only documents matching the filter (docs/filters.md)\n"
            "  --k N               chunks retrieved per question (8)\n"
            "  --mode bm25         retrieval (dense and hybrid need the vector index)\n"
            "  --budget N          most tokens of sources in the prompt (1500)\n"
            "  -m MODEL            a GGUF chat model for a generated answer (default: [ask] model\n"
            "                      in .cairn/config; none: an extractive answer)\n"
            "  --no-model          an extractive answer even when the config names a model\n"
            "  -n N                most answer tokens (256)\n"
            "  --temp T            temperature (0 = greedy, the default)   --seed S\n"
            "  -t THREADS          threads (default: CPUs, at most 8)\n"
            "  -c N                model context size (default: 4096 or the model's)\n"
            "  --chat-template T   chatml, llama2, mistral, llama3, zephyr, gemma, phi3 or plain\n"
            "  --system TEXT       replace the system prompt\n"
            "  --sentences N       extractive answers: sentences (3)\n"
            "  --route POLICY      local-only, local-first, cloud-first, cloud-only or model-map for this\n"
            "                      question (the gateway: docs/gateway.md; default [gateway] policy)\n"
            "  --gateway FILE      upstreams and rules from FILE instead of .cairn/config\n"
            "  --json              %s\n"
            "  --verbose           timings (retrieval, prompt tokens reused, first token) on stderr\n"
            "  --no-prompt-cache   evaluate every turn's prompt from scratch (to measure the cache)\n",
            chat ? "chat" : "ask", chat ? "" : "QUESTION...",
            chat ? "a conversation over the store: one question per line on stdin; /sources, /where FILTER,\n"
                   "  /reset, /help, /quit (line editing when stdin is a terminal)"
                 : "answer QUESTION from the store's documents, with numbered citations and sources",
            chat ? "one JSON object per answer (one per line)" : "one JSON object (answer, citations, sources, timings)");
}

static bool parse_size(const char *s, size_t lo, size_t hi, size_t *out)
{
    uint64_t v;
    if (!s || !cli_parse_u64(s, &v) || v < lo || v > hi)
        return false;
    *out = (size_t)v;
    return true;
}

static int default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (int)CAIRN_MIN(n, 8);
}

/* Returns 0 to go on, -1 after --help, else the exit code. */
static int parse_ask(int argc, char **argv, ask_opts *o, cairn_buf *q, bool chat)
{
    const char *cmd = chat ? "chat" : "ask";
    memset(o, 0, sizeof *o);
    o->n_threads = default_threads();
    o->sp = sampler_params_default();
    o->sp.temp = 0;
    o->sp.seed = 1234;
    if (!cli_take_db(&argc, argv, &o->db))
        return 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true, takes = true;
        size_t x = 0;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            ask_usage(stdout, chat);
            return -1;
        } else if (!strcmp(a, "--json")) {
            o->json = true, takes = false;
        } else if (!strcmp(a, "--verbose") || !strcmp(a, "-v")) {
            o->verbose = true, takes = false;
        } else if (!strcmp(a, "--no-prompt-cache")) {
            o->no_cache = true, takes = false;
        } else if (!strcmp(a, "--no-model")) {
            o->no_model = true, takes = false;
        } else if (a[0] != '-' || !a[1]) {
            if (chat) {
                fprintf(stderr, "cairn chat: questions come from stdin, not arguments ('%s')\n", a);
                return 2;
            }
            if ((q->len && cairn_buf_putc(q, ' ') != CAIRN_OK) || cairn_buf_puts(q, a) != CAIRN_OK) {
                fprintf(stderr, "cairn ask: question too long\n");
                return 2;
            }
            takes = false;
        } else if (!v) {
            fprintf(stderr, "cairn %s: option %s needs a value\n", cmd, a);
            return 2;
        } else if (!strcmp(a, "--where") || !strcmp(a, "-w")) {
            o->where = v;
        } else if (!strcmp(a, "--k") || !strcmp(a, "-k")) {
            ok = parse_size(v, 1, 1000, &o->k);
        } else if (!strcmp(a, "--mode")) {
            ok = rag_mode_from_name(v, &o->mode) == CAIRN_OK;
        } else if (!strcmp(a, "--budget")) {
            ok = parse_size(v, 32, 1u << 20, &o->budget);
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            o->model = v;
        } else if (!strcmp(a, "-n")) {
            ok = parse_size(v, 1, 1u << 16, &x), o->n_predict = (int)x;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            ok = parse_size(v, 1, 256, &x), o->n_threads = (int)x;
        } else if (!strcmp(a, "-c")) {
            ok = parse_size(v, 64, 1u << 20, &x), o->n_ctx = (int)x;
        } else if (!strcmp(a, "--temp")) {
            char *e;
            errno = 0;
            o->sp.temp = strtof(v, &e);
            ok = !errno && e != v && !*e && o->sp.temp >= 0 && o->sp.temp <= 100;
        } else if (!strcmp(a, "--seed")) {
            uint64_t s;
            ok = cli_parse_u64(v, &s), o->sp.seed = s;
        } else if (!strcmp(a, "--chat-template")) {
            rag_style st;
            ok = rag_style_for_model(NULL, v, &st) == CAIRN_OK;
            o->chat_template = v;
        } else if (!strcmp(a, "--system")) {
            o->system = v;
        } else if (!strcmp(a, "--route") && !chat) {
            gw_policy p;
            ok = gw_policy_parse(v, &p);
            o->route = v;
        } else if (!strcmp(a, "--gateway") && !chat) {
            o->gateway = v;
        } else if (!strcmp(a, "--sentences")) {
            ok = parse_size(v, 1, 50, &o->sentences);
        } else {
            fprintf(stderr, "cairn %s: unknown option %s\n", cmd, a);
            ask_usage(stderr, chat);
            return 2;
        }
        if (!ok) {
            fprintf(stderr, "cairn %s: invalid value for %s: '%s'\n", cmd, a, v);
            return 2;
        }
        if (takes)
            i++;
    }
    if (!chat && q->len == 0) {
        ask_usage(stderr, false);
        return 2;
    }
    return 0;
}

/* ---- printing ---- */

static void age_str(int64_t s, char *out, size_t n)
{
    if (s < 0)
        s = 0;
    if (s < 120)
        snprintf(out, n, "%llds", (long long)s);
    else if (s < 7200)
        snprintf(out, n, "%lldm", (long long)(s / 60));
    else if (s < 172800)
        snprintf(out, n, "%lldh", (long long)(s / 3600));
    else
        snprintf(out, n, "%lldd", (long long)(s / 86400));
}

/* Brief (chat): one line of markers and paths; the full list is /sources. */
static void print_sources(FILE *f, const rag_context *ctx, bool tty, bool brief)
{
    const char *B = tty ? "\033[1m" : "", *N = tty ? "\033[0m" : "", *D = tty ? "\033[2m" : "";
    if (!ctx || ctx->n == 0) {
        fprintf(f, "No sources matched.\n");
        return;
    }
    if (brief) {
        fprintf(f, "Sources:");
        for (size_t i = 0; i < ctx->n; i++)
            fprintf(f, " [%d] %s%s%s%s", ctx->p[i].marker, ctx->p[i].path, *ctx->p[i].rkey ? "#" : "",
                    ctx->p[i].rkey, ctx->p[i].stale == RAG_CHANGED || ctx->p[i].stale == RAG_MISSING ? " (STALE)" : "");
        fprintf(f, "\n");
        if (ctx->n_stale)
            fprintf(f, "Note: %zu of these sources changed on disk since they were indexed (`cairn sync`).\n",
                    ctx->n_stale);
        return;
    }
    int64_t now = cairn_now_ns();
    fprintf(f, "Sources:\n");
    for (size_t i = 0; i < ctx->n; i++) {
        const rag_passage *p = &ctx->p[i];
        char ts[40] = "", age[32];
        time_t t = (time_t)(p->ingested_at_ns / 1000000000);
        struct tm tm;
        if (gmtime_r(&t, &tm))
            strftime(ts, sizeof ts, "%Y-%m-%d %H:%M UTC", &tm);
        age_str((now - p->ingested_at_ns) / 1000000000LL, age, sizeof age);
        fprintf(f, "  %s[%d]%s %s%s%s", B, p->marker, N, B, p->path, N);
        if (*p->rkey)
            fprintf(f, "#%s", p->rkey);
        if (*p->heading_path)
            fprintf(f, " %s> %s%s", D, p->heading_path, N);
        if (p->page > 0)
            fprintf(f, " %sp. %d%s", D, p->page, N);
        fprintf(f, "  %singested %s (%s ago)%s", D, ts, age, N);
        if (p->stale == RAG_CHANGED)
            fprintf(f, "  %sSTALE: changed on disk since ingest%s", B, N);
        else if (p->stale == RAG_MISSING)
            fprintf(f, "  %sSTALE: deleted on disk since ingest%s", B, N);
        fprintf(f, "\n");
    }
    if (ctx->n_stale)
        fprintf(f, "Note: %zu of these sources changed on disk since they were indexed; the answer may be out of "
                   "date (`cairn sync` updates the store).\n", ctx->n_stale);
}

static void print_timings(const rag_answer *a)
{
    fprintf(stderr, "[retrieval %.1f ms, context %.1f ms", a->t.retrieval_ms, a->t.context_ms);
    if (a->kind == RAG_GENERATED)
        fprintf(stderr, ", %d prompt tokens (%d reused from the cache), prompt %.1f ms, first token %.1f ms, "
                        "%d tokens %.1f t/s",
                a->t.prompt_tokens, a->t.reused_tokens, a->t.prompt_ms, a->t.ttft_ms, a->t.gen_tokens,
                a->t.tokens_per_s);
    if (a->dropped_citations)
        fprintf(stderr, ", %zu citation%s dropped", a->dropped_citations, a->dropped_citations == 1 ? "" : "s");
    fprintf(stderr, ", total %.1f ms]\n", a->t.total_ms);
}

/* ud: the label to print before the first text (NULL once printed or none) */
static bool stream_out(void *ud, const char *s, size_t n)
{
    const char **label = ud;
    if (*label) {
        fputs(*label, stdout);
        *label = NULL;
    }
    fwrite(s, 1, n, stdout);
    fflush(stdout);
    return true;
}

/* ---- the model and the session ---- */

typedef struct engine {
    store *s;
    search_engine *e;
    cairn_model *m;
    cairn_tokenizer *tok;
    cairn_session *sess;
    cairn_sampler *smp;
    rag_chat *chat;
    gw *gw;                     /* cairn ask with upstreams configured (or --route / --gateway) */
} engine;

static void engine_free(engine *g)
{
    gw_close(g->gw);
    rag_chat_free(g->chat);
    sampler_free(g->smp);
    session_free(g->sess);
    tokenizer_free(g->tok);
    model_free(g->m);
    search_close(g->e);
    store_close(g->s);
}

static int engine_open(engine *g, const ask_opts *o, bool chat, const char *cmd)
{
    memset(g, 0, sizeof *g);
    cairn_status st = cli_open_store(o->db, &g->s);
    if (st == CAIRN_OK)
        st = search_open(g->s, &g->e);
    if (st != CAIRN_OK) {
        cli_error(cmd, st);
        return 1;
    }
    const char *model = o->no_model ? NULL : o->model;
    if (!model && !o->no_model)
        model = store_config_get(store_get_config(g->s), "ask", "model");
    rag_chat_opts co = {.s = g->s, .e = g->e, .system = o->system, .n_predict = o->n_predict,
                        .context_tokens = o->budget, .k = o->k, .mode = o->mode, .where = o->where,
                        .max_sentences = o->sentences, .keep_history = chat, .no_prefix_cache = o->no_cache};
    if (model && *model) {
        const char *what = "loading the model";
        if ((st = model_load_ex(model, MODEL_WEIGHTS_AUTO, &g->m)) == CAIRN_OK &&
            (what = "loading the tokenizer", st = tokenizer_load(g->m->gguf, &g->tok)) == CAIRN_OK &&
            (what = "chat template", st = rag_style_for_model(g->m, o->chat_template, &co.style)) == CAIRN_OK) {
            session_opts so = session_opts_default();
            so.n_threads = o->n_threads;
            so.n_ctx = o->n_ctx;
            what = "creating the session";
            if ((st = session_new(g->m, &so, &g->sess)) == CAIRN_OK)
                what = "creating the sampler", st = sampler_new(&o->sp, g->m->hp.n_vocab, &g->smp);
        }
        if (st != CAIRN_OK) {
            fprintf(stderr, "cairn %s: %s (%s): %s\n", cmd, what, model, cairn_last_error());
            return 1;
        }
        co.model = g->m, co.tok = g->tok, co.session = g->sess, co.sampler = g->smp;
    }
    if ((st = rag_chat_new(&co, &g->chat)) != CAIRN_OK) {
        cli_error(cmd, st);
        return st == CAIRN_ERR_INVALID ? 2 : 1;     /* a bad --where */
    }
    if (!chat) {
        st = gw_open_store(store_get_config(g->s), store_dir(g->s), o->gateway, &g->gw);
        if (st != CAIRN_OK) {
            fprintf(stderr, "cairn %s: gateway: %s\n", cmd, cairn_last_error());
            return 2;
        }
        if (!gw_enabled(g->gw) && !o->route && !o->gateway) {
            gw_close(g->gw);    /* no upstream, nothing asked: the plain local path */
            g->gw = NULL;
        }
    }
    return 0;
}

static cJSON *route_json(const gw_result *r)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "route", r->route);
    if (*r->upstream)
        cJSON_AddStringToObject(o, "upstream", r->upstream);
    else
        cJSON_AddNullToObject(o, "upstream");
    cJSON_AddStringToObject(o, "policy", r->policy);
    cJSON_AddStringToObject(o, "rule", r->rule);
    cJSON_AddBoolToObject(o, "fallback", r->fallback);
    cJSON_AddNumberToObject(o, "ms", (double)(r->latency_ns / 1000) / 1000.0);
    cJSON_AddNumberToObject(o, "cost", (double)r->cost_nano / 1e9);
    return o;
}

/* One question through the gateway (which may answer upstream). */
static int answer_gateway(engine *g, const ask_opts *o, const char *question, const char *cmd)
{
    bool tty = isatty(STDOUT_FILENO);
    gw_ask_opts ao = {.s = g->s, .e = g->e, .chat = g->chat, .tok = g->tok, .where = o->where, .system = o->system,
                      .k = o->k, .budget = o->budget, .mode = o->mode, .n_predict = o->n_predict,
                      .model_name = o->model, .policy = o->route};
    gw_ask_result r;
    const char *label = NULL;   /* the Route line says who answered */
    cairn_status st = gw_ask(g->gw, &ao, question, o->json ? NULL : stream_out, (void *)&label, &r);
    if (st != CAIRN_OK) {
        cli_error(cmd, st);
        if (*r.res.route)
            fprintf(stderr, "route: %s (%s)\n", r.res.route, r.res.rule);
        gw_ask_result_free(&r);
        return st == CAIRN_ERR_INVALID ? 2 : 1;
    }
    const rag_context *ctx = r.local ? rag_chat_context(g->chat) : &r.ctx;
    int rc = 0;
    if (o->json) {
        cJSON *j = rag_answer_json(question, ctx, &r.answer, 0);
        cJSON *rj = j ? route_json(&r.res) : NULL;
        if (rj)
            cJSON_AddItemToObject(j, "cairn", rj);
        rc = j && rj ? cli_print_json(j) : (cJSON_Delete(j), fprintf(stderr, "cairn: out of memory\n"), 1);
    } else {
        if (r.answer.len == 0)
            printf("(no answer)");
        printf("\n\n");
        print_sources(stdout, ctx, tty, false);
        printf("Route: %s%s%s (%s)\n", r.res.route, *r.res.upstream ? " " : "", r.res.upstream, r.res.rule);
    }
    if (o->verbose)
        print_timings(&r.answer);
    fflush(stdout);
    gw_ask_result_free(&r);
    return rc;
}

static void *json_malloc(size_t n) { return cairn_malloc(n); }

/* One question: stream (or JSON), then the sources. */
static int answer_one(engine *g, const ask_opts *o, const char *question, const char *cmd, bool brief)
{
    rag_answer a;
    bool tty = isatty(STDOUT_FILENO);
    const char *label = g->m ? NULL : "Extractive answer (no model: the best sentences of the sources):\n";
    cairn_status st = rag_chat_ask(g->chat, question, o->json ? NULL : stream_out, (void *)&label, &a);
    if (st != CAIRN_OK) {
        if (!label || g->m)
            printf("\n");
        cli_error(cmd, st);
        return st == CAIRN_ERR_INVALID || st == CAIRN_ERR_UNSUPPORTED ? 2 : 1;
    }
    const rag_context *ctx = rag_chat_context(g->chat);
    int rc = 0;
    if (o->json) {
        cJSON *j = rag_answer_json(question, ctx, &a, 0);
        rc = j ? cli_print_json(j) : (fprintf(stderr, "cairn: out of memory\n"), 1);
    } else {
        if (a.len == 0)
            printf("%s%s", label ? label : "", g->m ? "(no answer)" : "Nothing in the sources matches the question's words.");
        printf("\n\n");
        print_sources(stdout, ctx, tty, brief);
        if (a.stale)
            printf("This answer uses sources that changed on disk since they were indexed.\n");
    }
    if (o->verbose)
        print_timings(&a);
    fflush(stdout);
    rag_answer_free(&a);
    return rc;
}

int cmd_ask(int argc, char **argv)
{
    ask_opts o;
    cairn_buf q;
    cairn_buf_init(&q, MAX_QUESTION_BYTES);
    int rc = parse_ask(argc, argv, &o, &q, false);
    if (rc) {
        cairn_buf_free(&q);
        return rc < 0 ? 0 : rc;
    }
    cJSON_Hooks hooks = {json_malloc, cairn_free};
    cJSON_InitHooks(&hooks);
    engine g;
    rc = engine_open(&g, &o, false, "ask");
    if (rc == 0)
        rc = g.gw ? answer_gateway(&g, &o, q.data, "ask") : answer_one(&g, &o, q.data, "ask", false);
    engine_free(&g);
    cairn_buf_free(&q);
    return rc;
}

/* ---- chat ---- */

static void chat_help(void)
{
    printf("Ask a question about the documents in the store, one per line. Commands:\n"
           "  /sources        the sources of the last answer\n"
           "  /where FILTER   only documents matching FILTER from now on (/where alone: all documents)\n"
           "  /reset          forget the conversation\n"
           "  /help           this text\n"
           "  /quit           leave (also end of input)\n");
}

/* A line from stdin without its newline; NULL at the end. Caller frees. */
static char *read_line(bool tty, bool *too_long)
{
    *too_long = false;
    if (tty) {
        char *l = readline("> ");
        if (!l)
            return NULL;
        if (*l)
            add_history(l);
        char *c = cairn_strdup(l);
        free(l);
        return c;
    }
    cairn_buf b;
    cairn_buf_init(&b, MAX_QUESTION_BYTES);
    int ch;
    bool any = false;
    while ((ch = getchar()) != EOF) {
        any = true;
        if (ch == '\n')
            break;
        if (cairn_buf_putc(&b, (char)ch) != CAIRN_OK)
            *too_long = true;
    }
    if (!any) {
        cairn_buf_free(&b);
        return NULL;
    }
    char *r = b.len ? cairn_buf_take(&b) : cairn_strdup("");
    cairn_buf_free(&b);
    return r;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

int cmd_chat(int argc, char **argv)
{
    ask_opts o;
    cairn_buf q;
    cairn_buf_init(&q, 16);
    int rc = parse_ask(argc, argv, &o, &q, true);
    cairn_buf_free(&q);
    if (rc)
        return rc < 0 ? 0 : rc;
    cJSON_Hooks hooks = {json_malloc, cairn_free};
    cJSON_InitHooks(&hooks);
    engine g;
    if ((rc = engine_open(&g, &o, true, "chat")) != 0) {
        engine_free(&g);
        return rc;
    }
    bool tty = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
    if (tty && !o.json)
        printf("cairn chat over %s (%s answers; /help for commands)\n", store_root(g.s),
               g.m ? "generated" : "extractive");
    int failures = 0;
    for (;;) {
        bool too_long;
        char *line = read_line(tty, &too_long);
        if (!line)
            break;
        char *l = trim(line);
        if (too_long) {
            fprintf(stderr, "cairn chat: a line longer than %u bytes is skipped\n", MAX_QUESTION_BYTES);
            failures++;
        } else if (!*l) {
            /* nothing */
        } else if (!strcmp(l, "/quit") || !strcmp(l, "/exit")) {
            cairn_free(line);
            break;
        } else if (!strcmp(l, "/help")) {
            chat_help();
        } else if (!strcmp(l, "/reset")) {
            rag_chat_reset(g.chat);
            printf("(conversation reset)\n");
        } else if (!strcmp(l, "/sources")) {
            print_sources(stdout, rag_chat_context(g.chat), tty, false);
        } else if (!strncmp(l, "/where", 6) && (l[6] == '\0' || l[6] == ' ')) {
            const char *f = trim(l + 6);
            cairn_status st = rag_chat_set_where(g.chat, *f ? f : NULL);
            if (st != CAIRN_OK) {
                cli_error("chat", st);
                failures++;
            } else {
                printf(*f ? "(filter: %s)\n" : "(no filter: all documents)\n", f);
            }
        } else if (l[0] == '/') {
            fprintf(stderr, "cairn chat: unknown command %s (/help lists them)\n", l);
            failures++;
        } else {
            if (answer_one(&g, &o, l, "chat", true) != 0)
                failures++;
            if (!o.json)
                printf("\n");
        }
        fflush(stdout);
        cairn_free(line);
    }
    engine_free(&g);
    return failures ? 1 : 0;
}
