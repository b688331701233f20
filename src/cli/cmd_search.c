/* cmd_search.c — `cairn search` and `cairn eval`. */
#include "cli/commands.h"
#include "cli/cli_util.h"
#include "filter/filter.h"
#include "index/bm25.h"
#include "cli/cli_store.h"
#include "search/eval.h"
#include "search/hybrid.h"
#include "search/search.h"
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static bool parse_num(const char *s, double *out)
{
    char *e;
    errno = 0;
    *out = strtod(s, &e);
    return e != s && !*e && !errno;
}

static void search_usage(FILE *f)
{
    fprintf(f,
            "usage: cairn search QUERY... [--k N] [--mode bm25|dense|hybrid] [--where EXPR] [--fresh-within DUR]\n"
            "                    [--group doc|chunk] [--all] [--files] [-C N] [--json] [--db DIR]\n"
            "  Search the store's chunks: BM25 (words OR-ed), dense (cosine of embeddings; needs [embed]\n"
            "  model), or hybrid (both lists fused). docs/search.md, docs/vectors.md.\n"
            "  --mode M              bm25 | dense | hybrid (default: [search] mode in .cairn/config, else bm25)\n"
            "  --fusion rrf|weighted normalized weighted sum (default) or reciprocal rank fusion\n"
            "  --rrf-k N             RRF constant (60)\n"
            "  --dense-weight W      the dense list's share in [0,1] (weighted 0.05, rrf 0.5)\n"
            "  --depth N             hits taken from each list before fusing (100)\n"
            "  --rerank MODEL        rescore the fused top N with a cross-encoder   --rerank-top N (20)\n"
            "  --k N                 number of results (10)\n"
            "  --where EXPR          only chunks of documents matching the filter (docs/filters.md)\n"
            "  --fresh-within DUR    only documents ingested within DUR (7d, 12h, 30m)\n"
            "  --group doc|chunk     rank documents (document-level BM25 over their chunks, each\n"
            "                        shown by its best chunk) or chunks (default)\n"
            "  -C N                  N sentences of context before and after the snippet's own\n"
            "  --files, -l           print only the paths of the matching files, best first, once each\n"
            "  --all                 keep duplicate texts (by default identical or near-identical\n"
            "                        chunks, e.g. many copies of a license, show once: \"and N more\")\n"
            "  --json   one JSON object with a \"results\" array (duplicates, duplicate_paths)\n"
            "  --index-info   print the search index's state (after catching up) as JSON\n");
}

static void iso_time(int64_t ns, char *out, size_t n)
{
    time_t t = (time_t)(ns / 1000000000);
    struct tm tm;
    if (ns <= 0 || !gmtime_r(&t, &tm) || !strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(out, n, "%s", "");
}

/* Print s[from, to) with control characters shown as spaces. */
static void put_clean(const char *s, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++)
        putchar((unsigned char)s[i] < 0x20 ? ' ' : s[i]);
}

static void print_human(const search_results *res, const char *query, bool tty)
{
    const char *B = tty ? "\033[1m" : "", *N = tty ? "\033[0m" : "", *D = tty ? "\033[2m" : "";
    if (res->n == 0 && res->only_stop_words) {
        printf("no results: \"%s\" has only stop words (too common to be indexed); add a more specific word\n",
               query);
        return;
    }
    if (res->n == 0) {
        printf("no results for \"%s\"\n", query);
        return;
    }
    for (size_t i = 0; i < res->n; i++) {
        const search_result *r = &res->r[i];
        const store_hit *h = &r->hit;
        printf("%s%2zu.%s %7.3f  %s%s%s", B, i + 1, N, r->score, B, h->path, N);
        if (h->rkey && *h->rkey)
            printf("#%s", h->rkey);
        if (h->heading_path && *h->heading_path)
            printf("  %s\xE2\x80\xBA %s%s", D, h->heading_path, N);
        if (h->page > 0)
            printf("  %sp. %d%s", D, h->page, N);
        printf("\n     ");
        size_t at = 0, len = strlen(r->snippet);
        for (size_t j = 0; j < r->n_hl; j++) {
            size_t a = r->hl[2 * j], b = r->hl[2 * j + 1];
            if (a < at || b > len || a > b)
                continue;
            put_clean(r->snippet, at, a);
            if (tty) {
                fputs(B, stdout);
                put_clean(r->snippet, a, b);
                fputs(N, stdout);
            } else {
                put_clean(r->snippet, a, b);
            }
            at = b;
        }
        put_clean(r->snippet, at, len);
        printf("\n");
        if (r->n_dups)
            printf("     %s(and %zu more with the same text%s%s%s)%s\n", D, r->n_dups, r->n_dup_paths ? ": " : "",
                   r->n_dup_paths ? r->dup_paths[0] : "", r->n_dup_paths > 1 ? ", ..." : "", N);
    }
}

static int print_json(const search_results *res, const char *query)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *arr = cJSON_CreateArray();
    bool ok = root && arr;
    if (ok) {
        cJSON_AddStringToObject(root, "query", query);
        cJSON_AddNumberToObject(root, "took_ms", res->took_ms);
        if (res->only_stop_words)
            cJSON_AddTrueToObject(root, "only_stop_words");
        cJSON_AddItemToObject(root, "results", arr);
    }
    for (size_t i = 0; ok && i < res->n; i++) {
        const search_result *r = &res->r[i];
        const store_hit *h = &r->hit;
        cJSON *o = cJSON_CreateObject();
        if (!o) {
            ok = false;
            break;
        }
        cJSON_AddItemToArray(arr, o);
        char ts[64];
        iso_time(h->ingested_at_ns, ts, sizeof ts);
        cJSON_AddNumberToObject(o, "rank", (double)(i + 1));
        cJSON_AddNumberToObject(o, "doc_id", (double)h->doc_id);
        cJSON_AddStringToObject(o, "path", h->path);   /* invalid UTF-8 printed as U+FFFD */
        if (!cli_utf8_valid(h->path)) {
            /* the real bytes, for opening the file */
            size_t pl = strlen(h->path);
            char *hex = cairn_malloc(2 * pl + 1);
            for (size_t k = 0; hex && k < pl; k++)
                snprintf(hex + 2 * k, 3, "%02x", (unsigned char)h->path[k]);
            if (hex)
                cJSON_AddStringToObject(o, "path_hex", pl ? hex : "");
            cairn_free(hex);
        }
        cJSON_AddStringToObject(o, "key", h->rkey ? h->rkey : "");
        cJSON_AddNumberToObject(o, "chunk_id", (double)h->chunk_id);
        cJSON_AddNumberToObject(o, "score", r->score);
        if (h->title)
            cJSON_AddStringToObject(o, "title", h->title);
        else
            cJSON_AddNullToObject(o, "title");
        cJSON_AddStringToObject(o, "heading_path", h->heading_path ? h->heading_path : "");
        cJSON_AddNumberToObject(o, "page", h->page);
        cJSON_AddStringToObject(o, "snippet", r->snippet);
        cJSON_AddStringToObject(o, "text", h->text);
        cJSON *meta = h->meta_json ? cJSON_Parse(h->meta_json) : NULL;
        cJSON_AddItemToObject(o, "metadata", meta ? meta : cJSON_CreateObject());
        cJSON_AddStringToObject(o, "ingested_at", ts);
        /* duplicate texts folded into this result (search_collapse) */
        cJSON_AddNumberToObject(o, "duplicates", (double)r->n_dups);
        cJSON *dp = cJSON_AddArrayToObject(o, "duplicate_paths");
        for (size_t j = 0; dp && j < r->n_dup_paths; j++)
            cJSON_AddItemToArray(dp, cJSON_CreateString(r->dup_paths[j]));
    }
    if (!ok) {
        cJSON_Delete(root);
        fprintf(stderr, "cairn search: out of memory\n");
        return 1;
    }
    return cli_print_json(root);
}

static void *json_malloc(size_t n) { return cairn_malloc(n); }

/* --index-info: the index after catching up, as JSON (tests, debugging). */
static int index_info(const char *db)
{
    store *s = NULL;
    search_engine *e = NULL;
    cairn_status st = cli_open_store(db, &s);
    if (st == CAIRN_OK)
        st = search_open(s, &e);
    if (st != CAIRN_OK) {
        cli_error("search", st);
        search_close(e);
        store_close(s);
        return 1;
    }
    const bm25_index *ix = search_index(e);
    char cfg[256];
    text_config_str(bm25_config(ix), cfg, sizeof cfg);
    printf("{\"analyzer\": \"%s\", \"hwm\": %llu, \"del_hwm\": %llu, \"chunks\": %llu, \"segments\": %zu, "
           "\"bytes\": %llu}\n",
           cfg, (unsigned long long)bm25_hwm(ix), (unsigned long long)bm25_del_hwm(ix),
           (unsigned long long)bm25_n_docs(ix), bm25_n_segments(ix), (unsigned long long)bm25_bytes(ix));
    search_close(e);
    store_close(s);
    return 0;
}

int cmd_search(int argc, char **argv)
{
    const char *db = NULL;
    if (!cli_take_db(&argc, argv, &db))
        return 2;
    size_t k = 10;
    bool json = false, info = false, by_doc = false, all = false, files_only = false;
    int context = 0;
    const char *where = NULL, *mode_s = NULL, *rerank = NULL;
    bool set_fusion = false, set_rrf = false, set_w = false, set_depth = false;
    hybrid_opts ho;
    hybrid_opts_default(&ho);
    int64_t fresh_s = 0;
    cairn_buf q;
    cairn_buf_init(&q, 1u << 16);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        double x;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            search_usage(stdout);
            cairn_buf_free(&q);
            return 0;
        } else if (!strcmp(a, "--json")) {
            json = true;
        } else if (!strcmp(a, "--all")) {
            all = true;
        } else if (!strcmp(a, "--files") || !strcmp(a, "-l")) {
            files_only = true;
        } else if (!strcmp(a, "-C") || !strcmp(a, "--context")) {
            if (i + 1 >= argc || !parse_num(argv[i + 1], &x) || x < 0 || x > 20 || x != (double)(int)x) {
                fprintf(stderr, "cairn search: -C needs a number of sentences from 0 to 20\n");
                cairn_buf_free(&q);
                return 2;
            }
            context = (int)x;
            i++;
        } else if (!strcmp(a, "--index-info")) {
            info = true;
        } else if (!strcmp(a, "--k") || !strcmp(a, "-k")) {
            if (i + 1 >= argc || !parse_num(argv[i + 1], &x) || x < 1 || x > 10000 || x != (double)(size_t)x) {
                fprintf(stderr, "cairn search: --k needs a whole number from 1 to 10000\n");
                cairn_buf_free(&q);
                return 2;
            }
            k = (size_t)x;
            i++;
        } else if (!strcmp(a, "--where") || !strcmp(a, "-w")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "cairn search: --where needs a filter expression (see docs/filters.md)\n");
                cairn_buf_free(&q);
                return 2;
            }
            where = argv[++i];
        } else if (!strcmp(a, "--mode") || !strcmp(a, "--fusion") || !strcmp(a, "--rrf-k") ||
                   !strcmp(a, "--dense-weight") || !strcmp(a, "--depth") || !strcmp(a, "--rerank") ||
                   !strcmp(a, "--rerank-top")) {
            const char *v = i + 1 < argc ? argv[i + 1] : NULL;
            bool ok = v != NULL;
            if (ok && !strcmp(a, "--mode"))
                mode_s = v, ok = search_mode_parse(v, &ho.mode) == CAIRN_OK;
            else if (ok && !strcmp(a, "--fusion"))
                ok = fuse_method_parse(v, &ho.fuse.method) == CAIRN_OK, set_fusion = true;
            else if (ok && !strcmp(a, "--rrf-k"))
                ok = parse_num(v, &x) && x >= 0 && x <= 100000, ho.fuse.rrf_k = (float)x, set_rrf = true;
            else if (ok && !strcmp(a, "--dense-weight"))
                ok = parse_num(v, &x) && x >= 0 && x <= 1, ho.fuse.dense_weight = (float)x, set_w = true;
            else if (ok && !strcmp(a, "--depth"))
                ok = parse_num(v, &x) && x >= 1 && x <= 10000 && x == (double)(size_t)x, ho.depth = (size_t)x,
                set_depth = true;
            else if (ok && !strcmp(a, "--rerank-top"))
                ok = parse_num(v, &x) && x >= 1 && x <= 1000 && x == (double)(size_t)x, ho.rerank_top = (size_t)x;
            else if (ok)
                rerank = v;
            if (!ok) {
                cairn_clear_error();
                fprintf(stderr, "cairn search: bad or missing value for %s (see cairn search --help)\n", a);
                cairn_buf_free(&q);
                return 2;
            }
            i++;
        } else if (!strcmp(a, "--group")) {
            if (i + 1 >= argc || (strcmp(argv[i + 1], "doc") && strcmp(argv[i + 1], "chunk"))) {
                fprintf(stderr, "cairn search: --group needs doc or chunk\n");
                cairn_buf_free(&q);
                return 2;
            }
            by_doc = !strcmp(argv[++i], "doc");
        } else if (!strcmp(a, "--fresh-within")) {
            if (i + 1 >= argc || cairn_parse_duration(argv[i + 1], &fresh_s) != CAIRN_OK || fresh_s <= 0) {
                fprintf(stderr, "cairn search: --fresh-within needs a duration such as 7d, 12h or 30m\n");
                cairn_buf_free(&q);
                return 2;
            }
            i++;
        } else if (a[0] == '-' && a[1] == '-' && a[2]) {
            fprintf(stderr, "cairn search: unknown option %s\n", a);
            search_usage(stderr);
            cairn_buf_free(&q);
            return 2;
        } else if ((q.len && cairn_buf_putc(&q, ' ') != CAIRN_OK) || cairn_buf_puts(&q, a) != CAIRN_OK) {
            fprintf(stderr, "cairn search: query too long\n");
            cairn_buf_free(&q);
            return 2;
        }
    }
    if (info) {
        cairn_buf_free(&q);
        return index_info(db);
    }
    if (q.len == 0) {
        search_usage(stderr);
        cairn_buf_free(&q);
        return 2;
    }
    cJSON_Hooks hooks = {json_malloc, cairn_free};
    cJSON_InitHooks(&hooks);
    store *s = NULL;
    search_engine *e = NULL;
    search_results res = {0};
    filter_node *filter = NULL;
    filter_bits bits = {0};
    bool everything = true;
    int64_t now = cairn_now_ns() / 1000000000LL;
    dense_engine *de = NULL;
    cairn_embedder *rr = NULL;
    dense_settings dset = {0};
    cairn_status st = cli_open_store(db, &s);
    if (st == CAIRN_OK)
        st = search_open(s, &e);
    if (st == CAIRN_OK)
        st = dense_settings_load(s, &dset);
    if (st == CAIRN_OK && !mode_s) {
        const char *m = store_config_get(store_get_config(s), "search", "mode");
        /* bm25 unless configured: measured with the embedders we have, no
         * dense or hybrid setting beat BM25 on nDCG@10 (docs/vectors.md) */
        if (m)
            st = search_mode_parse(m, &ho.mode);
    }
    if (st == CAIRN_OK) {
        /* [search] settings, then the flags given */
        hybrid_opts c = ho;
        hybrid_opts_default(&c);
        st = hybrid_opts_from_config(store_get_config(s), &c);
        if (!set_fusion)
            ho.fuse.method = c.fuse.method;
        if (!set_rrf)
            ho.fuse.rrf_k = c.fuse.rrf_k;
        if (!set_w)
            ho.fuse.dense_weight = c.fuse.dense_weight;
        if (!set_depth)
            ho.depth = c.depth;
    }
    if (st == CAIRN_OK && by_doc && ho.mode != SEARCH_MODE_BM25)
        st = cairn_fail(CAIRN_ERR_INVALID, "--group doc ranks by document-level BM25: use it with --mode bm25");
    if (st == CAIRN_OK && ho.mode != SEARCH_MODE_BM25) {
        cairn_embedder *em = NULL;
        if (!dset.model)
            st = cairn_fail(CAIRN_ERR_INVALID, "--mode %s needs an embedding model: 'cairn init --embed-model PATH' "
                                               "or [embed] model = PATH in .cairn/config", search_mode_name(ho.mode));
        if (st == CAIRN_OK)
            st = cli_embedder(&dset, &em);
        if (st == CAIRN_OK)
            st = dense_open_with(s, &dset, em, &de);
    }
    if (st == CAIRN_OK && rerank) {
        embed_opts eo = {.n_threads = dset.threads};
        st = embedder_load(rerank, &eo, &rr);
        if (st == CAIRN_OK)
            ho.reranker = rr;
    }
    if (st == CAIRN_OK)
        search_set_context(e, context);
    /* Pre-filtering: the allowed chunks are computed first, and the search
     * ranks only those (so a full top-k comes back however selective). */
    if (st == CAIRN_OK && where)
        st = filter_compile(s, where, now, &filter);
    if (st == CAIRN_OK)
        st = filter_allowed(s, filter, fresh_s, now, &bits, &everything);
    bm25_allowed allowed = {bits.bits, bits.nbits};
    if (st == CAIRN_OK)
        {
            size_t fetch = all ? k : search_collapse_fetch(k);
            st = by_doc ? search_run_docs(e, q.data, everything ? NULL : &allowed, fetch, &res)
                        : search_run_mode(e, de, q.data, everything ? NULL : &allowed, fetch, &ho, &res);
            if (st == CAIRN_OK && !all && (st = search_collapse(&res, k)) != CAIRN_OK)
                search_results_free(&res);
        }
    int rc = 0;
    if (st != CAIRN_OK) {
        cli_error("search", st);
        rc = 1;
    } else if (files_only) {
        /* ripgrep -l: the matching files, best first, each once */
        for (size_t i = 0; i < res.n; i++) {
            bool seen = false;
            for (size_t j = 0; j < i && !seen; j++)
                seen = !strcmp(res.r[j].hit.path, res.r[i].hit.path);
            if (!seen)
                printf("%s\n", res.r[i].hit.path);
        }
    } else if (json) {
        rc = print_json(&res, q.data);
    } else {
        print_human(&res, q.data, isatty(STDOUT_FILENO));
    }
    search_results_free(&res);
    filter_bits_free(&bits);
    filter_free(filter);
    dense_close(de);
    embedder_free(rr);
    dense_settings_free(&dset);
    search_close(e);
    store_close(s);
    cairn_buf_free(&q);
    return rc;
}

/* ---- eval ---- */

static void eval_usage(FILE *f)
{
    fprintf(f,
            "usage: cairn eval DIR [options]\n"
            "  DIR holds corpus.jsonl, queries.jsonl and qrels/test.tsv (BEIR layout)\n"
            "  --k N             nDCG/MRR cutoff (10)\n"
            "  --run FILE        write a TREC run file (qid Q0 docid rank score tag)\n"
            "  --json            print the metrics as one JSON object\n"
            "  --db DIR          use (and keep) the store in DIR instead of a temporary one\n"
            "  --direct          index corpus.jsonl records directly (one chunk per record), no store;\n"
            "                    --title-weight 0 then means title + text as one field\n"
            "  --k1 X --b X      BM25 parameters (1.5, 0.6)\n"
            "  --title-weight N  weight of the title / heading-path field (2; 0 = not indexed)\n"
            "  --chunk-size N --chunk-overlap N   chunker settings for the temporary store\n"
            "  --agg doc|max|sum|maxsum  document score from its chunks: doc (default) = a\n"
            "                    document-level BM25 over its chunks' terms (+ W * its best chunk);\n"
            "                    max = best chunk; maxsum = best chunk + W * the others\n"
            "  --agg-weight W    W for doc (0) and maxsum (0.1), 0..10\n"
            "  --rm3 DOCS        pseudo-relevance feedback from the top DOCS chunks (0: off)\n"
            "  --rm3-terms N     expansion terms (10)   --rm3-weight X  original query weight (0.5)\n"
            "  --stemmer NAME --stop none|lucene|english --accents keep|strip   analyzer\n"
            "  --mode bm25|dense|hybrid   ranking (bm25); dense and hybrid need --embed-model\n"
            "  --embed-model PATH  GGUF encoder: every chunk is embedded (kept in the --db store)\n"
            "  --embed-threads N   embedding threads (1)\n"
            "  --fusion weighted|rrf  --rrf-k N (60)  --dense-weight W (weighted 0.05, rrf 0.5)   hybrid fusion\n");
}

static int rm_rf(const char *dir)
{
    char cmd[4200];
    if (snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir) >= (int)sizeof cmd)
        return -1;
    return system(cmd);
}

int cmd_eval(int argc, char **argv)
{
    eval_options o;
    eval_options_default(&o);
    const char *dir = NULL, *db = NULL;
    bool json = false, direct = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        double x;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            eval_usage(stdout);
            return 0;
        } else if (!strcmp(a, "--json")) {
            json = true;
        } else if (!strcmp(a, "--direct")) {
            direct = true;
        } else if (a[0] == '-' && a[1] == '-' && !v) {
            fprintf(stderr, "cairn eval: %s needs a value\n", a);
            return 2;
        } else if (!strcmp(a, "--k") && parse_num(v, &x) && x >= 1 && x <= 64) {
            o.k = (size_t)x, i++;
        } else if (!strcmp(a, "--run")) {
            o.run_path = v, i++;
        } else if (!strcmp(a, "--db")) {
            db = v, i++;
        } else if (!strcmp(a, "--k1") && parse_num(v, &x) && x >= 0 && x <= 100) {
            o.params.k1 = (float)x, i++;
        } else if (!strcmp(a, "--b") && parse_num(v, &x) && x >= 0 && x <= 1) {
            o.params.b = (float)x, i++;
        } else if (!strcmp(a, "--title-weight") && parse_num(v, &x) && x >= 0 && x <= 100) {
            o.title_weight = (uint32_t)x, i++;
        } else if (!strcmp(a, "--agg") && (!strcmp(v, "max") || !strcmp(v, "sum") || !strcmp(v, "maxsum") || !strcmp(v, "doc"))) {
            o.agg = !strcmp(v, "max")   ? EVAL_AGG_MAX
                    : !strcmp(v, "sum") ? EVAL_AGG_SUM
                    : !strcmp(v, "doc") ? EVAL_AGG_DOC
                                        : EVAL_AGG_MAXSUM,
            i++;
        } else if (!strcmp(a, "--agg-weight") && parse_num(v, &x) && x >= 0 && x <= 10) {
            o.agg_weight = (float)x, i++;
        } else if (!strcmp(a, "--chunk-size") && parse_num(v, &x) && x >= 16 && x <= 8192) {
            o.chunk_tokens = (size_t)x, i++;
        } else if (!strcmp(a, "--chunk-overlap") && parse_num(v, &x) && x >= 0 && x <= 4096) {
            o.chunk_overlap = (size_t)x, i++;
        } else if (!strcmp(a, "--rm3") && parse_num(v, &x) && x >= 0 && x <= 1000) {
            o.fb_docs = (size_t)x, i++;
        } else if (!strcmp(a, "--rm3-terms") && parse_num(v, &x) && x >= 1 && x <= 1000) {
            o.fb_terms = (size_t)x, i++;
        } else if (!strcmp(a, "--rm3-weight") && parse_num(v, &x) && x >= 0 && x <= 1) {
            o.fb_orig_weight = (float)x, i++;
        } else if (!strcmp(a, "--mode") && search_mode_parse(v, &o.mode) == CAIRN_OK) {
            i++;
        } else if (!strcmp(a, "--fusion") && fuse_method_parse(v, &o.fuse.method) == CAIRN_OK) {
            i++;
        } else if (!strcmp(a, "--rrf-k") && parse_num(v, &x) && x >= 0 && x <= 100000) {
            o.fuse.rrf_k = (float)x, i++;
        } else if (!strcmp(a, "--dense-weight") && parse_num(v, &x) && x >= 0 && x <= 1) {
            o.fuse.dense_weight = (float)x, i++;
        } else if (!strcmp(a, "--embed-model")) {
            o.embed_model = v, i++;
        } else if (!strcmp(a, "--embed-threads") && parse_num(v, &x) && x >= 1 && x <= 64) {
            o.embed_threads = (int)x, i++;
        } else if (!strcmp(a, "--stemmer") || !strcmp(a, "--stop") || !strcmp(a, "--accents")) {
            if (text_config_set(&o.analyzer, a + 2, v) != CAIRN_OK) {
                fprintf(stderr, "cairn eval: %s\n", cairn_last_error());
                return 2;
            }
            i++;
        } else if (a[0] == '-') {
            cairn_clear_error();
            fprintf(stderr, "cairn eval: bad option or value: %s %s\n", a, v ? v : "");
            eval_usage(stderr);
            return 2;
        } else if (!dir) {
            dir = a;
        } else {
            fprintf(stderr, "cairn eval: unexpected argument '%s'\n", a);
            return 2;
        }
    }
    if (!dir) {
        eval_usage(stderr);
        return 2;
    }
    char corpus[4096], queries[4096], qrels_path[4096];
    snprintf(corpus, sizeof corpus, "%s/corpus.jsonl", dir);
    snprintf(queries, sizeof queries, "%s/queries.jsonl", dir);
    snprintf(qrels_path, sizeof qrels_path, "%s/qrels/test.tsv", dir);
    eval_qrels *qrels = NULL;
    if (eval_qrels_load(qrels_path, &qrels) != CAIRN_OK) {
        fprintf(stderr, "cairn eval: %s\n", cairn_last_error());
        return 1;
    }
    char tmp[4096] = "";
    const char *base = getenv("TMPDIR");
    snprintf(tmp, sizeof tmp, "%s/cairn-eval-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmp)) {
        fprintf(stderr, "cairn eval: cannot create a temporary directory: %s\n", strerror(errno));
        eval_qrels_free(qrels);
        return 1;
    }
    int rc = 0;
    eval_direct *d = NULL;
    eval_store *es = NULL;
    eval_corpus c;
    eval_result r;
    char path[4200];
    int64_t t0 = cairn_mono_ns();
    cairn_status st;
    if (direct) {
        snprintf(path, sizeof path, "%s/index", tmp);
        st = eval_direct_build(corpus, path, &o, &d, &c);
    } else {
        if (db) {
            char found[4200];
            if (cli_find_store(db, found, sizeof found) == CAIRN_OK)
                snprintf(path, sizeof path, "%s", found);
            else
                snprintf(path, sizeof path, "%s/.cairn", db);
            cairn_clear_error();
            if (mkdir(db, 0755) != 0 && errno != EEXIST) {
                fprintf(stderr, "cairn eval: %s: cannot create: %s\n", db, strerror(errno));
                eval_qrels_free(qrels);
                rm_rf(tmp);
                return 1;
            }
        } else {
            snprintf(path, sizeof path, "%s/.cairn", tmp);
        }
        st = eval_store_build(corpus, path, &o, &es, &c);
    }
    double build_s = (double)(cairn_mono_ns() - t0) / 1e9;
    if (st == CAIRN_OK)
        st = eval_run(&c, queries, qrels, &o, &r);
    if (st != CAIRN_OK) {
        fprintf(stderr, "cairn eval: %s\n", cairn_last_error());
        rc = 1;
    } else if (json) {
        printf("{\"dataset\": \"%s\", \"mode\": \"%s\", \"queries\": %zu, \"documents\": %zu, \"chunks\": %zu, "
               "\"ndcg@%zu\": %.4f, \"recall@%zu\": %.4f, \"mrr@%zu\": %.4f, \"map\": %.4f, "
               "\"p50_ms\": %.3f, \"p99_ms\": %.3f, \"build_s\": %.3f}\n",
               dir, search_mode_name(o.mode), r.n_queries, r.n_docs, r.n_chunks, o.k, r.ndcg, o.k_recall, r.recall, o.k, r.mrr, r.map,
               r.p50_ms, r.p99_ms, build_s);
    } else {
        printf("%s: %zu queries, %zu documents, %zu chunks\n", dir, r.n_queries, r.n_docs, r.n_chunks);
        printf("  nDCG@%zu %.4f  Recall@%zu %.4f  MRR@%zu %.4f  MAP %.4f\n", o.k, r.ndcg, o.k_recall, r.recall,
               o.k, r.mrr, r.map);
        printf("  latency p50 %.3f ms  p99 %.3f ms  (build %.2f s)\n", r.p50_ms, r.p99_ms, build_s);
    }
    eval_direct_free(d);
    eval_store_free(es);
    eval_qrels_free(qrels);
    rm_rf(tmp);
    return rc;
}
