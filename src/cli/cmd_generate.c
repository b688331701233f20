/*
 * cmd_generate.c — `cairn generate` (text generation with a local GGUF
 * model) and `cairn bench` (prompt-processing and generation speed).
 */
#include "base/base.h"
#include "cli/cli_util.h"
#include "cli/commands.h"
#include "infer/chat.h"
#include "infer/generate.h"
#include "kernels/quant.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define MAX_STOPS 16
#define MAX_PROMPT_BYTES (16u << 20)

typedef struct gen_opts {
    const char *model, *prompt;
    int n_predict, n_threads, n_ctx, n_batch;
    bool ignore_context;    /* --ignore-context: -n may go past the trained context */
    int n_prompt_bench, reps;
    sampler_params sp;
    const char *stop[MAX_STOPS];
    int n_stop;
    uint32_t kv_type;
    bool json, special, ignore_eos, expert_stats;
    model_weights weights;              /* --weights / --mmap */
    bool chat;                          /* wrap the prompt in the model's chat markup */
    const char *system;                 /* --system */
    bool chat_named;                    /* --chat-template given: named_style */
    chat_style named_style;
} gen_opts;

static int default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (int)CAIRN_MIN(n, 8);
}

static bool parse_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return false;
    *out = (int)v;
    return true;
}

static bool parse_float(const char *s, float lo, float hi, float *out)
{
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi))
        return false;
    *out = v;
    return true;
}

static bool parse_kv_type(const char *s, uint32_t *out)
{
    if (!strcmp(s, "f16")) *out = QT_F16;
    else if (!strcmp(s, "q8_0")) *out = QT_Q8_0;
    else if (!strcmp(s, "f32")) *out = QT_F32;
    else return false;
    return true;
}

static bool parse_weights(const char *s, model_weights *out)
{
    if (!strcmp(s, "auto")) *out = MODEL_WEIGHTS_AUTO;
    else if (!strcmp(s, "copy")) *out = MODEL_WEIGHTS_COPY;
    else if (!strcmp(s, "mmap")) *out = MODEL_WEIGHTS_MAPPED;
    else if (!strcmp(s, "mmap-huge")) *out = MODEL_WEIGHTS_MAP_HUGE;
    else return false;
    return true;
}

static void usage_generate(FILE *f)
{
    fprintf(f,
            "usage: cairn generate -m MODEL -p PROMPT [options]\n"
            "  -n N                tokens to generate (default 128)\n"
            "  --temp T            temperature; 0 = greedy (default 0.8)\n"
            "  --top-k K           keep the K most likely tokens (default 40; 0 = off)\n"
            "  --top-p P           nucleus sampling (default 0.95; 1 = off)\n"
            "  --min-p P           drop tokens below P x the best probability (default 0.05)\n"
            "  --repeat-penalty R  penalize recently seen tokens (default 1 = off)\n"
            "  --presence-penalty P  subtract P from seen tokens' logits (default 0)\n"
            "  --repeat-last-n N   window for the penalties (default 64)\n"
            "  --seed S            PRNG seed (default 1234)\n"
            "  --stop STR          stop before STR (repeatable)\n"
            "  -t THREADS          threads (default: CPUs, at most 8)\n"
            "  -c N                context size (default: prompt + N)\n"
            "  -b N                prompt batch size (default 128)\n"
            "  --kv-type T         KV cache type: f16 (default), q8_0, f32\n"
            "  --weights W         auto (default: copy into huge-page memory when the kernel\n"
            "                      offers huge pages), copy, mmap (the file mapping: instant\n"
            "                      start, slower generation) or mmap-huge (the mapping on\n"
            "                      2 MiB page-cache pages where the file system allows)\n"
            "  --mmap              the same as --weights mmap\n"
            "  --special           parse special-token text in the prompt (<|im_start|> ...)\n"
            "  --chat              the prompt is a user message: wrap it in the model's chat\n"
            "                      template (tokenizer.chat_template) and answer as the assistant\n"
            "  --system TEXT       a system message first (implies --chat)\n"
            "  --chat-template T   chatml, llama2, mistral, llama3, zephyr, gemma or phi3\n"
            "                      instead of the model's own (implies --chat)\n"
            "  --ignore-eos        keep generating after end-of-generation tokens\n"
            "  --ignore-context    let -n go past the model's trained context (default: stop there)\n"
            "  --json              print one JSON object instead of streaming text\n");
}

static void usage_bench(FILE *f)
{
    fprintf(f,
            "usage: cairn bench -m MODEL [-p 512] [-n 128] [-t 2] [-r 3] [-b 128] [--kv-type f16] [--weights auto|copy|mmap|mmap-huge] [--expert-stats] [--json]\n"
            "  prompt processing of -p tokens and generation of -n tokens from an empty context,\n"
            "  median of -r repetitions after a warm-up; reports tokens/s, peak RSS, and weight\n"
            "  bytes read per generated token with the bandwidth that implies.\n");
}

/* Parse the options shared by generate and bench; returns 0, or the exit code. */
static int parse_opts(int argc, char **argv, gen_opts *o, bool bench)
{
    memset(o, 0, sizeof *o);
    o->n_predict = 128;
    o->n_threads = bench ? 2 : default_threads();
    o->n_prompt_bench = 512;
    o->reps = 3;
    o->sp = sampler_params_default();
    o->sp.seed = 1234;
    o->kv_type = QT_F16;
    /* options of one command only: refused by the other, not parsed and ignored */
    static const char *const gen_only[] = {"--temp", "--top-k", "--top-p", "--min-p", "--repeat-penalty",
                                           "--presence-penalty", "--repeat-last-n", "--seed", "--stop", "-c",
                                           "--special", "--ignore-eos", "--chat", "--system", "--chat-template"};
    static const char *const bench_only[] = {"-r", "--expert-stats"};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true, takes = true;
        const char *const *other = bench ? gen_only : bench_only;
        size_t n_other = bench ? CAIRN_ARRAY_LEN(gen_only) : CAIRN_ARRAY_LEN(bench_only);
        for (size_t k = 0; k < n_other; k++)
            if (!strcmp(a, other[k])) {
                fprintf(stderr, "cairn %s: option %s applies to cairn %s only\n", bench ? "bench" : "generate", a,
                        bench ? "generate" : "bench");
                return 2;
            }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            bench ? usage_bench(stdout) : usage_generate(stdout);
            return -1;
        } else if (!strcmp(a, "--json")) {
            o->json = true, takes = false;
        } else if (bench && !strcmp(a, "--expert-stats")) {
            o->expert_stats = true, takes = false;
        } else if (!strcmp(a, "--mmap")) {
            o->weights = MODEL_WEIGHTS_MAPPED, takes = false;
        } else if (!strcmp(a, "--special")) {
            o->special = true, takes = false;
        } else if (!bench && !strcmp(a, "--chat")) {
            o->chat = true, takes = false;
        } else if (!strcmp(a, "--ignore-eos")) {
            o->ignore_eos = true, takes = false;
        } else if (!strcmp(a, "--ignore-context")) {
            o->ignore_context = true, takes = false;
        } else if (!v) {
            fprintf(stderr, "cairn: option %s needs a value\n", a);
            return 2;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            o->model = v;
        } else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) {
            if (bench) ok = parse_int(v, 1, 1 << 20, &o->n_prompt_bench);
            else o->prompt = v;
        } else if (!strcmp(a, "-n")) {
            ok = parse_int(v, bench ? 0 : 1, 1 << 20, &o->n_predict);
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            ok = parse_int(v, 1, 256, &o->n_threads);
        } else if (!strcmp(a, "-r")) {
            ok = parse_int(v, 1, 1000, &o->reps);
        } else if (!strcmp(a, "-c")) {
            ok = parse_int(v, 1, 1 << 20, &o->n_ctx);
        } else if (!strcmp(a, "-b")) {
            ok = parse_int(v, 1, 4096, &o->n_batch);
        } else if (!strcmp(a, "--temp")) {
            ok = parse_float(v, 0, 100, &o->sp.temp);
        } else if (!strcmp(a, "--top-k")) {
            ok = parse_int(v, 0, 1 << 24, &o->sp.top_k);
        } else if (!strcmp(a, "--top-p")) {
            ok = parse_float(v, 0, 1, &o->sp.top_p);
        } else if (!strcmp(a, "--min-p")) {
            ok = parse_float(v, 0, 1, &o->sp.min_p);
        } else if (!strcmp(a, "--repeat-penalty")) {
            ok = parse_float(v, 0.01f, 100, &o->sp.repeat_penalty);
        } else if (!strcmp(a, "--presence-penalty")) {
            ok = parse_float(v, -100, 100, &o->sp.presence_penalty);
        } else if (!strcmp(a, "--repeat-last-n")) {
            ok = parse_int(v, 0, 65536, &o->sp.penalty_last_n);
        } else if (!strcmp(a, "--seed")) {
            uint64_t seed = 0;
            ok = cli_parse_u64(v, &seed);
            o->sp.seed = seed;
        } else if (!strcmp(a, "--stop")) {
            if (o->n_stop == MAX_STOPS) {
                fprintf(stderr, "cairn: at most %d stop strings\n", MAX_STOPS);
                return 2;
            }
            ok = *v != '\0';
            o->stop[o->n_stop++] = v;
        } else if (!strcmp(a, "--kv-type")) {
            ok = parse_kv_type(v, &o->kv_type);
        } else if (!strcmp(a, "--weights")) {
            ok = parse_weights(v, &o->weights);
        } else if (!bench && !strcmp(a, "--system")) {
            o->system = v, o->chat = true;
        } else if (!bench && !strcmp(a, "--chat-template")) {
            ok = chat_style_from_name(v, &o->named_style) == CAIRN_OK;
            o->chat_named = o->chat = true;
        } else {
            fprintf(stderr, "cairn: unknown option %s\n", a);
            bench ? usage_bench(stderr) : usage_generate(stderr);
            return 2;
        }
        if (!ok) {
            fprintf(stderr, "cairn: invalid value for %s: '%s'\n", a, v);
            return 2;
        }
        if (takes)
            i++;
    }
    if (!o->model || (!bench && !o->prompt)) {
        bench ? usage_bench(stderr) : usage_generate(stderr);
        return 2;
    }
    return 0;
}

static int fail(const char *what, cairn_status st)
{
    fprintf(stderr, "cairn: %s: %s (%s)\n", what, cairn_last_error(), cairn_status_str(st));
    return 1;
}

static bool stream_stdout(void *ud, const char *text, size_t len)
{
    (void)ud;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return true;
}

static cJSON *ids_json(const int32_t *ids, int n)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateNumber(ids[i]));
    return a;
}

static const char *stop_name(gen_stop s)
{
    switch (s) {
    case GEN_STOP_LENGTH: return "length";
    case GEN_STOP_EOG: return "eog";
    case GEN_STOP_STRING: return "stop";
    case GEN_STOP_CALLBACK: return "callback";
    case GEN_STOP_CONTEXT: return "context";
    }
    return "?";
}

int cmd_generate(int argc, char **argv)
{
    gen_opts o;
    int rc = parse_opts(argc, argv, &o, false);
    if (rc)
        return rc < 0 ? 0 : rc;

    cairn_model *m = NULL;
    cairn_tokenizer *tok = NULL;
    cairn_session *s = NULL;
    cairn_sampler *smp = NULL;
    int32_t *ids = NULL;
    gen_result res = {0};
    cairn_buf chat = {0};
    chat_style cs = CHAT_CHATML;
    cairn_status st;
    rc = 1;

    if ((st = model_load_ex(o.model, o.weights, &m)) != CAIRN_OK) {
        fail("loading model", st);
        goto out;
    }
    if ((st = tokenizer_load(m->gguf, &tok)) != CAIRN_OK) {
        fail("loading tokenizer", st);
        goto out;
    }
    cairn_buf_init(&chat, MAX_PROMPT_BYTES + 65536);
    if (o.chat) {   /* render the conversation; its markers are special tokens */
        if (o.chat_named)
            cs = o.named_style;
        else {
            gguf_str t = {0};
            char *tmpl = NULL;
            if (gguf_get_str(m->gguf, "tokenizer.chat_template", &t) == CAIRN_OK &&
                !(tmpl = cairn_strndup(t.ptr, (size_t)t.len))) {
                fail("reading the chat template", CAIRN_ERR_NOMEM);
                goto out;
            }
            st = chat_style_detect(tmpl, &cs);
            cairn_free(tmpl);
        }
        chat_msg msgs[2];
        int nm = 0;
        if (o.system)
            msgs[nm++] = (chat_msg){"system", o.system};
        msgs[nm++] = (chat_msg){"user", o.prompt};
        if (st != CAIRN_OK || (st = chat_render(cs, msgs, nm, &chat)) != CAIRN_OK) {
            fail("chat template", st);
            goto out;
        }
        o.prompt = chat.data ? chat.data : "";
        o.special = true;
    }
    size_t plen = strlen(o.prompt), n_ids = 0, cap = plen + 8;
    if (plen > MAX_PROMPT_BYTES) {
        fprintf(stderr, "cairn: prompt longer than %u bytes\n", MAX_PROMPT_BYTES);
        goto out;
    }
    ids = cairn_calloc(cap, sizeof *ids);
    if (!ids || (st = tokenizer_encode(tok, o.prompt, plen, true, o.special, ids, cap, &n_ids)) != CAIRN_OK) {
        fail("tokenizing the prompt", ids ? st : CAIRN_ERR_NOMEM);
        goto out;
    }
    if (n_ids > cap || n_ids == 0) {
        fprintf(stderr, "cairn: the prompt tokenized to %zu tokens\n", n_ids);
        goto out;
    }
    session_opts so = session_opts_default();
    so.n_threads = o.n_threads;
    so.kv_type = o.kv_type;
    so.n_batch = o.n_batch;
    /* Past the trained context a model's output degrades and every token
     * costs more (attention is quadratic): stop there with a warning, unless
     * asked (--ignore-context) or given -c explicitly. */
    int train = m->hp.n_ctx_train;
    if (!o.ignore_context && !o.n_ctx && train > 0 && (int64_t)n_ids + o.n_predict > train) {
        if ((int64_t)n_ids >= train) {
            fprintf(stderr, "cairn: the prompt (%zu tokens) fills the model's trained context of %d tokens; "
                            "shorten it, or pass --ignore-context\n", n_ids, train);
            goto out;
        }
        int keep = train - (int)n_ids;
        fprintf(stderr, "cairn: warning: -n %d goes past the model's trained context (%d tokens, %zu in the prompt): "
                        "generating at most %d tokens (--ignore-context to go on)\n", o.n_predict, train, n_ids, keep);
        o.n_predict = keep;
    }
    so.n_ctx = o.n_ctx ? o.n_ctx : (int)n_ids + o.n_predict;
    if ((st = session_new(m, &so, &s)) != CAIRN_OK) {
        fail("creating the session", st);
        goto out;
    }
    if ((st = sampler_new(&o.sp, m->hp.n_vocab, &smp)) != CAIRN_OK) {
        fail("creating the sampler", st);
        goto out;
    }
    gen_params gp = {.n_predict = o.n_predict, .stop = o.stop, .n_stop = o.n_stop,
                     .ignore_eog = o.ignore_eos, .on_text = o.json ? NULL : stream_stdout};
    if ((st = generate(s, tok, smp, ids, (int)n_ids, &gp, &res)) != CAIRN_OK) {
        fail("generating", st);
        goto out;
    }
    if (o.json) {
        cJSON *j = cJSON_CreateObject(), *t = cJSON_CreateObject();
        cJSON_AddItemToObject(j, "prompt_ids", ids_json(ids, (int)n_ids));
        cJSON_AddItemToObject(j, "ids", ids_json(res.ids, res.n_ids));
        cJSON_AddStringToObject(j, "text", res.text);
        if (o.chat)
            cJSON_AddStringToObject(j, "chat_template", chat_style_name(cs));
        cJSON_AddStringToObject(j, "stop", stop_name(res.stop));
        cJSON_AddNumberToObject(t, "prompt_tokens_per_s", gen_prompt_tps(&res));
        cJSON_AddNumberToObject(t, "gen_tokens_per_s", gen_tps(&res));
        cJSON_AddItemToObject(j, "timings", t);
        if (cli_print_json(j))
            goto out;
    } else {
        printf("\n");
        fprintf(stderr, "[%d prompt tokens %.1f t/s, %d generated %.1f t/s, stop: %s]\n", (int)n_ids,
                gen_prompt_tps(&res), res.n_ids, gen_tps(&res), stop_name(res.stop));
    }
    rc = 0;
out:
    gen_result_free(&res);
    cairn_buf_free(&chat);
    cairn_free(ids);
    sampler_free(smp);
    session_free(s);
    tokenizer_free(tok);
    model_free(m);
    return rc;
}

/* ---- bench ---- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static uint64_t peak_rss_bytes(void)
{
    /* VmHWM is the peak resident set; ru_maxrss is the same in KiB */
    uint64_t b;
    if (cairn_proc_kb("/proc/self/status", "VmHWM", &b))
        return b;
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? (uint64_t)ru.ru_maxrss * 1024 : 0;
}

static int32_t argmax(const float *x, int n)
{
    int32_t b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b])
            b = i;
    return b;
}

int cmd_bench(int argc, char **argv)
{
    gen_opts o;
    int rc = parse_opts(argc, argv, &o, true);
    if (rc)
        return rc < 0 ? 0 : rc;
    cairn_model *m = NULL;
    cairn_session *s = NULL;
    int32_t *ids = NULL;
    double *pp = NULL, *tg = NULL;
    cairn_status st;
    rc = 1;
    if ((st = model_load_ex(o.model, o.weights, &m)) != CAIRN_OK) {
        fail("loading model", st);
        goto out;
    }
    session_opts so = session_opts_default();
    so.n_threads = o.n_threads;
    so.kv_type = o.kv_type;
    so.n_batch = o.n_batch;
    so.n_ctx = o.n_prompt_bench + o.n_predict + 1;
    if ((st = session_new(m, &so, &s)) != CAIRN_OK) {
        fail("creating the session", st);
        goto out;
    }
    ids = cairn_calloc((size_t)o.n_prompt_bench, sizeof *ids);
    pp = cairn_calloc((size_t)o.reps, sizeof *pp);
    tg = cairn_calloc((size_t)o.reps, sizeof *tg);
    if (!ids || !pp || !tg) {
        fprintf(stderr, "cairn: out of memory\n");
        goto out;
    }
    cairn_rng rng;
    rng_seed(&rng, 42);
    for (int i = 0; i < o.n_prompt_bench; i++)
        ids[i] = (int32_t)(rng_next(&rng) % (uint64_t)m->hp.n_vocab);

    /* warm-up: pages the weights in and spins the threads up */
    float *logits;
    if ((st = session_eval(s, ids, CAIRN_MIN(o.n_prompt_bench, 16), &logits)) != CAIRN_OK) {
        fail("warm-up", st);
        goto out;
    }
    for (int r = 0; r < o.reps; r++) {
        session_truncate(s, 0);
        int64_t t0 = cairn_mono_ns();
        if ((st = session_eval(s, ids, o.n_prompt_bench, &logits)) != CAIRN_OK) {
            fail("prompt processing", st);
            goto out;
        }
        pp[r] = o.n_prompt_bench * 1e9 / (double)(cairn_mono_ns() - t0);
    }
    for (int r = 0; r < o.reps && o.n_predict > 0; r++) {
        session_truncate(s, 0);
        int32_t id = ids[0];
        int64_t t0 = cairn_mono_ns();
        for (int i = 0; i < o.n_predict; i++) {
            if ((st = session_eval(s, &id, 1, &logits)) != CAIRN_OK) {
                fail("generation", st);
                goto out;
            }
            id = argmax(logits, m->hp.n_vocab);
        }
        tg[r] = o.n_predict * 1e9 / (double)(cairn_mono_ns() - t0);
    }
    double pp_med = median(pp, o.reps), tg_med = o.n_predict > 0 ? median(tg, o.reps) : 0;
    uint64_t rss = peak_rss_bytes(), wbytes = model_weight_bytes_per_token(m);
    double gbs = (double)wbytes * tg_med / 1e9;
    if (o.json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "model", o.model);
        cJSON_AddStringToObject(j, "arch", m->arch_name);
        cJSON_AddStringToObject(j, "kernels", kernels_isa());
        cJSON_AddBoolToObject(j, "amx", kernels_amx());
        cJSON_AddNumberToObject(j, "threads", o.n_threads);
        cJSON_AddNumberToObject(j, "n_prompt", o.n_prompt_bench);
        cJSON_AddNumberToObject(j, "n_gen", o.n_predict);
        cJSON_AddNumberToObject(j, "reps", o.reps);
        cJSON_AddNumberToObject(j, "prompt_tokens_per_s", pp_med);
        cJSON_AddNumberToObject(j, "gen_tokens_per_s", tg_med);
        cJSON_AddNumberToObject(j, "peak_rss_bytes", (double)rss);
        cJSON_AddNumberToObject(j, "file_bytes", (double)gguf_file_size(m->gguf));
        cJSON_AddNumberToObject(j, "kv_cache_bytes", (double)session_kv_bytes(s));
        cJSON_AddNumberToObject(j, "weights_copied_bytes", (double)model_copied_bytes(m));
        cJSON_AddNumberToObject(j, "weights_huge_page_bytes", (double)model_huge_bytes(m));
        cJSON_AddNumberToObject(j, "params", (double)model_n_params(m));
        cJSON_AddNumberToObject(j, "active_params", (double)model_n_active_params(m));
        if (m->hp.n_expert > 0) {
            cJSON_AddNumberToObject(j, "n_expert", m->hp.n_expert);
            cJSON_AddNumberToObject(j, "n_expert_used", m->hp.n_expert_used);
        }
        if (o.expert_stats && m->hp.n_expert > 0) {
            cJSON *layers = cJSON_AddArrayToObject(j, "expert_counts");
            const uint64_t *c = session_expert_counts(s);
            for (int il = 0; il < m->hp.n_layer; il++) {
                cJSON *row = cJSON_CreateArray();
                for (int e = 0; e < m->hp.n_expert; e++)
                    cJSON_AddItemToArray(row, cJSON_CreateNumber((double)c[(size_t)il * m->hp.n_expert + e]));
                cJSON_AddItemToArray(layers, row);
            }
        }
        cJSON_AddNumberToObject(j, "weight_bytes_per_token", (double)wbytes);
        cJSON_AddNumberToObject(j, "gen_weight_gb_per_s", gbs);
        if (cli_print_json(j))
            goto out;
    } else {
        printf("model      %s (%s, %.1f M params, file %.1f MiB, kernels %s%s, %d threads)\n", o.model,
               m->arch_name, model_n_params(m) / 1e6, gguf_file_size(m->gguf) / 1048576.0, kernels_isa(),
               kernels_amx() ? "+amx" : "", o.n_threads);
        if (m->hp.n_expert > 0)
            printf("experts    %d, %d used per token: %.1f M active of %.1f M params\n", m->hp.n_expert,
                   m->hp.n_expert_used, model_n_active_params(m) / 1e6, model_n_params(m) / 1e6);
        printf("pp%-6d   %10.1f tokens/s (median of %d)\n", o.n_prompt_bench, pp_med, o.reps);
        printf("tg%-6d   %10.1f tokens/s (median of %d)\n", o.n_predict, tg_med, o.reps);
        printf("weights    %10.1f MiB read per generated token -> %.2f GB/s\n", wbytes / 1048576.0, gbs);
        if (model_copied_bytes(m))
            printf("weights    %10.1f MiB copied from the file, %.1f MiB of it on 2 MiB pages\n",
                   model_copied_bytes(m) / 1048576.0, model_huge_bytes(m) / 1048576.0);
        else
            printf("weights    mapped from the file, %.1f MiB on 2 MiB pages\n", model_huge_bytes(m) / 1048576.0);
        printf("KV cache   %10.1f MiB\n", session_kv_bytes(s) / 1048576.0);
        printf("peak RSS   %10.1f MiB\n", rss / 1048576.0);
        if (o.expert_stats && m->hp.n_expert > 0) {
            /* share of routing decisions per expert, per layer (all runs) */
            const uint64_t *c = session_expert_counts(s);
            printf("expert choice share per layer (%%):\n");
            for (int il = 0; il < m->hp.n_layer; il++) {
                uint64_t tot = 0;
                for (int e = 0; e < m->hp.n_expert; e++)
                    tot += c[(size_t)il * m->hp.n_expert + e];
                printf("  layer %3d:", il);
                for (int e = 0; e < m->hp.n_expert; e++)
                    printf(" %5.1f", tot ? 100.0 * (double)c[(size_t)il * m->hp.n_expert + e] / (double)tot : 0.0);
                printf("\n");
            }
        }
    }
    rc = 0;
out:
    cairn_free(ids);
    cairn_free(pp);
    cairn_free(tg);
    session_free(s);
    model_free(m);
    return rc;
}
