/* cmd_embed.c — `cairn embed`: sentence embeddings (or cross-encoder scores)
 * from a BERT-family GGUF model.
 *
 *   cairn embed -m MODEL [-t THREADS] [--json] [--query | --doc] [--file FILE | TEXT...]
 *   cairn embed -m RERANKER --rerank QUERY [-t THREADS] [--json] [--file FILE | DOC...]
 *
 * --file: one text per line ("-" = standard input; a trailing newline ends
 * the last line, it does not start an empty text). Text output: one vector
 * per line (values separated by spaces) in input order; --json: one object
 * {"model", "dim", "embeddings": [[...], ...], "timings": {...}} (with
 * --rerank: "scores": [...] instead of "embeddings"). --query / --doc put
 * the model's query or document prefix (e.g. "query: ") before each text.
 * Truncated texts are counted on stderr (and in timings.n_truncated).
 */
#include "base/base.h"
#include "cli/cli_util.h"
#include "cli/commands.h"
#include "model/embed.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EMBED_MAX_FILE ((size_t)1 << 30)
#define EMBED_MAX_TEXTS (1 << 22)

static void usage(FILE *f)
{
    fprintf(f, "usage: cairn embed -m MODEL [-t THREADS] [--json] [--query | --doc] [--file FILE | TEXT...]\n"
               "       cairn embed -m RERANKER --rerank QUERY [-t THREADS] [--json] [--file FILE | DOC...]\n"
               "  -m MODEL        GGUF encoder (bert, nomic-bert)\n"
               "  -t THREADS      threads (default 1)\n"
               "  --json          one JSON object: model, dim, embeddings (or scores), timings\n"
               "  --file FILE     one text per line ('-' = standard input)\n"
               "  --query, --doc  prepend the model's query / document prefix\n"
               "  --rerank QUERY  score each text against QUERY with a cross-encoder\n");
}

/* Split buf into lines (in place). */
static int split_lines(char *buf, size_t len, char ***texts, size_t **lens, int *n)
{
    int cap = 0;
    *n = 0;
    *texts = NULL;
    *lens = NULL;
    size_t i = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && buf[j] != '\n')
            j++;
        size_t l = j - i;
        if (l && buf[i + l - 1] == '\r')
            l--;
        if (*n == cap) {
            if (cap >= EMBED_MAX_TEXTS) {
                fprintf(stderr, "cairn embed: more than %d lines\n", EMBED_MAX_TEXTS);
                return 1;
            }
            cap = cap ? 2 * cap : 64;
            char **t = cairn_reallocarray(*texts, (size_t)cap, sizeof *t);
            if (t)
                *texts = t;
            size_t *ls = cairn_reallocarray(*lens, (size_t)cap, sizeof *ls);
            if (ls)
                *lens = ls;
            if (!t || !ls) {
                fprintf(stderr, "cairn: out of memory\n");
                return 1;
            }
        }
        (*texts)[*n] = buf + i;
        (*lens)[*n] = l;
        (*n)++;
        i = j + 1;
    }
    return 0;
}

static cairn_status read_stdin(char **out, size_t *len)
{
    cairn_buf b;
    cairn_buf_init(&b, EMBED_MAX_FILE);
    char chunk[65536];
    size_t got;
    cairn_status st = CAIRN_OK;
    while (st == CAIRN_OK && (got = fread(chunk, 1, sizeof chunk, stdin)) > 0)
        st = cairn_buf_append(&b, chunk, got);
    if (st == CAIRN_OK && ferror(stdin))
        st = cairn_fail(CAIRN_ERR_IO, "reading standard input failed");
    if (st != CAIRN_OK) {
        cairn_buf_free(&b);
        return st;
    }
    *len = b.len;
    *out = cairn_buf_take(&b);
    if (!*out)
        *out = cairn_strdup("");
    return *out ? CAIRN_OK : cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
}

static void fail(const char *what)
{
    /* the library's detail names the file when there is one */
    fprintf(stderr, "cairn embed: %s\n", *cairn_last_error() ? cairn_last_error() : what);
}

static cJSON *timings_json(const embed_stats *s)
{
    cJSON *t = cJSON_CreateObject();
    cJSON_AddNumberToObject(t, "ms", s->ms);
    cJSON_AddNumberToObject(t, "n_texts", (double)s->n_texts);
    cJSON_AddNumberToObject(t, "n_tokens", (double)s->n_tokens);
    cJSON_AddNumberToObject(t, "n_truncated", (double)s->n_truncated);
    cJSON_AddNumberToObject(t, "texts_per_s", s->ms > 0 ? (double)s->n_texts * 1000.0 / s->ms : 0);
    cJSON_AddNumberToObject(t, "tokens_per_s", s->ms > 0 ? (double)s->n_tokens * 1000.0 / s->ms : 0);
    return t;
}

int cmd_embed(int argc, char **argv)
{
    const char *model = NULL, *file = NULL, *rerank = NULL;
    int threads = 1, which_prefix = 0;   /* 1 query, 2 doc */
    bool json = false;
    int first_text = argc;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--json")) {
            json = true;
        } else if (!strcmp(a, "--query") || !strcmp(a, "--doc")) {
            int w = a[2] == 'q' ? 1 : 2;
            if (which_prefix && which_prefix != w) {
                fprintf(stderr, "cairn embed: --query and --doc exclude each other\n");
                return 2;
            }
            which_prefix = w;
        } else if (!strcmp(a, "-m") || !strcmp(a, "-t") || !strcmp(a, "--file") || !strcmp(a, "--rerank")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "cairn embed: option %s needs a value\n", a);
                return 2;
            }
            const char *v = argv[++i];
            if (!strcmp(a, "-m")) {
                model = v;
            } else if (!strcmp(a, "--file")) {
                file = v;
            } else if (!strcmp(a, "--rerank")) {
                rerank = v;
            } else {
                uint64_t t;
                if (!cli_parse_u64(v, &t) || t < 1 || t > 256) {
                    fprintf(stderr, "cairn embed: invalid value for -t: '%s' (1..256)\n", v);
                    return 2;
                }
                threads = (int)t;
            }
        } else if (!strcmp(a, "--")) {
            first_text = i + 1;
            break;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "cairn embed: unknown option %s\n", a);
            usage(stderr);
            return 2;
        } else {
            first_text = i;
            break;
        }
    }
    /* options may not follow the texts: everything after the first text is text */
    if (!model) {
        fprintf(stderr, "cairn embed: -m MODEL is required\n");
        usage(stderr);
        return 2;
    }
    int n_args = argc - first_text;
    if (file && n_args > 0) {
        fprintf(stderr, "cairn embed: give --file or texts, not both\n");
        return 2;
    }
    if (!file && n_args == 0) {
        fprintf(stderr, "cairn embed: no texts (give TEXT... or --file FILE)\n");
        usage(stderr);
        return 2;
    }
    if (rerank && which_prefix) {
        fprintf(stderr, "cairn embed: --query/--doc do not apply to --rerank\n");
        return 2;
    }

    int rc = 1;
    char *buf = NULL, **texts = NULL, **owned = NULL;
    size_t *lens = NULL, blen = 0;
    int n = 0;
    float *out = NULL;
    cairn_embedder *e = NULL;
    embed_opts eo = {threads};
    if (embedder_load(model, &eo, &e) != CAIRN_OK) {
        fail(model);
        goto done;
    }
    if (file) {
        cairn_status st = !strcmp(file, "-") ? read_stdin(&buf, &blen) : cairn_file_read_all(file, EMBED_MAX_FILE, &buf, &blen);
        if (st != CAIRN_OK) {
            fail(file);
            goto done;
        }
        if (split_lines(buf, blen, &texts, &lens, &n))
            goto done;
        if (n == 0) {
            fprintf(stderr, "cairn embed: %s has no lines\n", file);
            goto done;
        }
    } else {
        n = n_args;
        texts = cairn_calloc((size_t)n, sizeof *texts);
        lens = cairn_calloc((size_t)n, sizeof *lens);
        if (!texts || !lens) {
            fprintf(stderr, "cairn: out of memory\n");
            goto done;
        }
        for (int i = 0; i < n; i++) {
            texts[i] = argv[first_text + i];
            lens[i] = strlen(texts[i]);
        }
    }
    const char *prefix = which_prefix == 1 ? embedder_query_prefix(e) : which_prefix == 2 ? embedder_doc_prefix(e) : "";
    if (*prefix) {
        owned = cairn_calloc((size_t)n, sizeof *owned);
        if (!owned) {
            fprintf(stderr, "cairn: out of memory\n");
            goto done;
        }
        size_t pl = strlen(prefix);
        for (int i = 0; i < n; i++) {
            owned[i] = cairn_malloc(pl + lens[i] + 1);
            if (!owned[i]) {
                fprintf(stderr, "cairn: out of memory\n");
                goto done;
            }
            memcpy(owned[i], prefix, pl);
            memcpy(owned[i] + pl, texts[i], lens[i]);
            owned[i][pl + lens[i]] = 0;
            texts[i] = owned[i];
            lens[i] += pl;
        }
    }
    int dim = embedder_dim(e);
    size_t per = rerank ? 1 : (size_t)dim;
    out = cairn_calloc((size_t)n, per * sizeof *out);
    if (!out) {
        fprintf(stderr, "cairn: out of memory for %d vectors\n", n);
        goto done;
    }
    embed_stats s;
    cairn_status st = rerank ? embedder_rerank(e, NULL, rerank, strlen(rerank), (const char *const *)texts, lens, n,
                                               out, &s)
                             : embedder_embed(e, NULL, (const char *const *)texts, lens, n, out, &s);
    if (st != CAIRN_OK) {
        fail(rerank ? "rerank" : "embed");
        goto done;
    }
    /* truncated texts: the library's warning said so on stderr; the count is in timings */
    if (json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "model", embedder_id(e));
        cJSON_AddNumberToObject(j, "dim", rerank ? 1 : dim);
        cJSON *arr = cJSON_AddArrayToObject(j, rerank ? "scores" : "embeddings");
        for (int i = 0; i < n && arr; i++) {
            if (rerank) {
                cJSON_AddItemToArray(arr, cJSON_CreateNumber(out[i]));
                continue;
            }
            cJSON *v = cJSON_CreateArray();
            for (int k = 0; k < dim && v; k++)
                cJSON_AddItemToArray(v, cJSON_CreateNumber(out[(size_t)i * dim + k]));
            cJSON_AddItemToArray(arr, v);
        }
        cJSON_AddItemToObject(j, "timings", timings_json(&s));
        rc = cli_print_json(j);
    } else {
        for (int i = 0; i < n; i++) {
            for (size_t k = 0; k < per; k++)
                printf(k ? " %.9g" : "%.9g", (double)out[(size_t)i * per + k]);
            putchar('\n');
        }
        rc = fflush(stdout) == 0 ? 0 : 1;
    }

done:
    if (owned)
        for (int i = 0; i < n; i++)
            cairn_free(owned[i]);
    cairn_free(owned);
    cairn_free(out);
    cairn_free(texts);
    cairn_free(lens);
    cairn_free(buf);
    embedder_free(e);
    return rc;
}
