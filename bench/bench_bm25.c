/*
 * bench_bm25.c — BM25 query latency at 100k chunks: cairn's index (MaxScore
 * + block-max) against the exhaustive scorer and SQLite FTS5 bm25(), in one
 * run, on the same chunks and queries; plus filtered queries (1%, 0.1%).
 *
 * Corpus: every ../shared/data/ir collection and the SQuAD paragraphs,
 * concatenated into one word stream and cut into windows of 100-200 words;
 * each pass over the stream shifts the window boundaries, so chunks repeat
 * text but not whole chunks. Queries: natural-language queries of those
 * collections (7-16 analyzed terms, OR-ed), deterministic sample.
 *
 * Latency is reported as wall time and as the thread's CPU time: on a shared
 * machine the wall-time tail is mostly scheduling noise, CPU time is not.
 *
 *   bench_bm25 [--chunks N] [--queries N] [--no-fts] [--json] [--dump DIR]
 *
 * --dump DIR also writes the chunks (DIR/chunks.txt) and the chosen queries
 * (DIR/queries.txt), one per line, so another engine can be measured on the
 * same workload (bench/bench_xapian.sh).
 */
#include "index/bm25.h"
#include "search/eval.h"
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *collections[] = {"cranfield", "cisi", "medline", "cacm", "npl", "time", "adi"};

typedef struct words { char **w; size_t n, cap; } words;
typedef struct strs { char **s; size_t n, cap; } strs;

static void push_word(words *ws, const char *s, size_t n)
{
    if (ws->n == ws->cap) {
        ws->cap = ws->cap ? ws->cap * 2 : 1 << 16;
        ws->w = realloc(ws->w, ws->cap * sizeof *ws->w);
    }
    ws->w[ws->n++] = strndup(s, n);
}

static cairn_status on_doc(void *ctx, const beir_record *r)
{
    words *ws = ctx;
    const char *parts[2] = {r->title, r->text};
    for (int k = 0; k < 2; k++)
        for (const char *p = parts[k]; *p;) {
            while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
                p++;
            const char *s = p;
            while (*p && *p != ' ' && *p != '\n' && *p != '\t' && *p != '\r')
                p++;
            if (p > s)
                push_word(ws, s, (size_t)(p - s));
        }
    return CAIRN_OK;
}

static cairn_status on_query(void *ctx, const beir_record *r)
{
    strs *q = ctx;
    if (q->n == q->cap) {
        q->cap = q->cap ? q->cap * 2 : 1024;
        q->s = realloc(q->s, q->cap * sizeof *q->s);
    }
    q->s[q->n++] = strdup(r->text);
    return CAIRN_OK;
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static double cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(double *v, size_t n, double p)
{
    qsort(v, n, sizeof *v, cmp_d);
    return v[(size_t)(p * (double)(n - 1) + 0.5)];
}

static void die(const char *what)
{
    fprintf(stderr, "bench_bm25: %s: %s\n", what, cairn_last_error());
    exit(1);
}

typedef struct lat { double p50, p99, mean; } lat;

static lat summarize(double *v, size_t n)
{
    lat l = {0};
    for (size_t i = 0; i < n; i++)
        l.mean += v[i];
    l.mean /= (double)n;
    l.p50 = pct(v, n, 0.50);
    l.p99 = pct(v, n, 0.99);
    return l;
}

/* One line per chunk / query (chunks never contain a newline; queries may). */
static void dump_workload(const char *dir, char **chunks, size_t n_chunks, char **queries, size_t nq)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/chunks.txt", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        die(path);
    for (size_t c = 0; c < n_chunks; c++)
        fprintf(f, "%s\n", chunks[c]);
    if (fclose(f) != 0)
        die(path);
    snprintf(path, sizeof path, "%s/queries.txt", dir);
    if (!(f = fopen(path, "w")))
        die(path);
    for (size_t i = 0; i < nq; i++) {
        for (const char *p = queries[i]; *p; p++)
            fputc(*p == '\n' || *p == '\r' ? ' ' : *p, f);
        fputc('\n', f);
    }
    if (fclose(f) != 0)
        die(path);
}

int main(int argc, char **argv)
{
    size_t n_chunks = 100000, n_queries = 300;
    bool fts = true, json = false;
    const char *dump = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--chunks") && i + 1 < argc)
            n_chunks = (size_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "--queries") && i + 1 < argc)
            n_queries = (size_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "--no-fts"))
            fts = false;
        else if (!strcmp(argv[i], "--json"))
            json = true;
        else if (!strcmp(argv[i], "--dump") && i + 1 < argc)
            dump = argv[++i];
        else {
            fprintf(stderr, "usage: bench_bm25 [--chunks N] [--queries N] [--no-fts] [--json] [--dump DIR]\n");
            return 2;
        }
    }
    const char *shared = cairn_test_shared_dir();
    if (!shared) {
        fprintf(stderr, "bench_bm25: ../shared not found (set CAIRN_TEST_SHARED)\n");
        return 77;
    }
    /* ---- corpus and queries ---- */
    words ws = {0};
    strs qs = {0};
    char path[4096];
    for (size_t c = 0; c < CAIRN_ARRAY_LEN(collections); c++) {
        snprintf(path, sizeof path, "%s/data/ir/%s/corpus.jsonl", shared, collections[c]);
        if (beir_read_jsonl(path, on_doc, &ws) != CAIRN_OK)
            die(path);
        snprintf(path, sizeof path, "%s/data/ir/%s/queries.jsonl", shared, collections[c]);
        if (beir_read_jsonl(path, on_query, &qs) != CAIRN_OK)
            die(path);
    }
    snprintf(path, sizeof path, "%s/data/qa/squad-v1.1-dev/corpus.jsonl", shared);
    if (beir_read_jsonl(path, on_doc, &ws) != CAIRN_OK)
        die(path);
    snprintf(path, sizeof path, "%s/data/qa/squad-v1.1-dev/queries.jsonl", shared);
    if (beir_read_jsonl(path, on_query, &qs) != CAIRN_OK)
        die(path);
    char **chunks = calloc(n_chunks, sizeof *chunks);
    size_t pos = 0, pass = 0, total_words = 0;
    for (size_t c = 0; c < n_chunks; c++) {
        size_t len = 100 + (size_t)(rnd() % 101);
        if (pos + len > ws.n) {
            pass++;
            pos = (pass * 37) % 97;
        }
        size_t bytes = 0;
        for (size_t i = 0; i < len; i++)
            bytes += strlen(ws.w[pos + i]) + 1;
        char *s = malloc(bytes + 1), *o = s;
        for (size_t i = 0; i < len; i++) {
            size_t l = strlen(ws.w[pos + i]);
            memcpy(o, ws.w[pos + i], l);
            o += l;
            *o++ = ' ';
        }
        *o = 0;
        chunks[c] = s;
        pos += len;
        total_words += len;
    }
    /* ---- our index ---- */
    char dir[] = "/tmp/cairn-bench-XXXXXX";
    if (!mkdtemp(dir))
        die("mkdtemp");
    char ixdir[4200];
    snprintf(ixdir, sizeof ixdir, "%s/index", dir);
    text_config cfg;
    text_config_default(&cfg);
    bm25_index *ix;
    bm25_writer *w;
    int64_t t0 = cairn_mono_ns();
    if (bm25_open(ixdir, &cfg, &ix, NULL) != CAIRN_OK || bm25_writer_open(ix, &w) != CAIRN_OK)
        die("open index");
    size_t bytes_total = 0;
    for (size_t c = 0; c < n_chunks; c++) {
        bm25_field f = {chunks[c], strlen(chunks[c]), 1};
        bytes_total += f.len;
        if (bm25_writer_add(w, c + 1, &f, 1) != CAIRN_OK)
            die("add");
    }
    if (bm25_writer_commit(w, n_chunks, 0) != CAIRN_OK)
        die("commit");
    bm25_writer_free(w);
    double build_s = (double)(cairn_mono_ns() - t0) / 1e9;
    /* open cost (MANIFEST, mmap, validation): what every CLI search pays */
    bm25_close(ix);
    t0 = cairn_mono_ns();
    if (bm25_open(ixdir, &cfg, &ix, NULL) != CAIRN_OK)
        die("reopen");
    double open_ms = (double)(cairn_mono_ns() - t0) / 1e6;
    /* queries: 7..16 analyzed terms */
    text_analyzer *an;
    if (text_analyzer_new(&cfg, &an) != CAIRN_OK)
        die("analyzer");
    char **qsel = calloc(n_queries, sizeof *qsel);
    bm25_query *qv = calloc(n_queries, sizeof *qv);
    size_t nq = 0, tries = 0;
    double mean_terms = 0;
    while (nq < n_queries && tries++ < 100000) {
        const char *t = qs.s[rnd() % qs.n];
        bm25_query q = {0};
        bm25_query_parse(&q, an, t, strlen(t));
        if (q.n >= 7 && q.n <= 16) {
            qsel[nq] = (char *)t;
            qv[nq++] = q;
            mean_terms += (double)q.n;
        } else {
            bm25_query_free(&q);
        }
    }
    mean_terms /= (double)nq;
    if (dump)
        dump_workload(dump, chunks, n_chunks, qsel, nq);
    bm25_params p;
    bm25_params_default(&p);
    double *tv = calloc(nq, sizeof *tv);
    bm25_hit hits[10], ref[10];
    size_t nh, nr;
    /* warm-up: fault the mapped pages in */
    for (size_t i = 0; i < nq; i++)
        bm25_search(ix, &qv[i], &p, NULL, 10, hits, &nh, NULL);
    uint64_t decoded = 0, decoded_ex = 0;
    double *cv = calloc(nq, sizeof *cv);
    for (size_t i = 0; i < nq; i++) {
        int64_t a = cairn_mono_ns();
        double c0 = cpu_ms();
        bm25_query q = {0};
        bm25_query_parse(&q, an, qsel[i], strlen(qsel[i]));   /* analysis is part of the query */
        bm25_search_stats st;
        bm25_search(ix, &q, &p, NULL, 10, hits, &nh, &st);
        cv[i] = cpu_ms() - c0;
        tv[i] = (double)(cairn_mono_ns() - a) / 1e6;
        decoded += st.postings_decoded;
        bm25_query_free(&q);
    }
    lat ours = summarize(tv, nq), ours_cpu = summarize(cv, nq);
    /* exhaustive reference: latency and agreement */
    size_t mismatches = 0;
    for (size_t i = 0; i < nq; i++) {
        int64_t a = cairn_mono_ns();
        double c0 = cpu_ms();
        bm25_search_exhaustive(ix, &qv[i], &p, NULL, 10, ref, &nr);
        cv[i] = cpu_ms() - c0;
        tv[i] = (double)(cairn_mono_ns() - a) / 1e6;
        bm25_search(ix, &qv[i], &p, NULL, 10, hits, &nh, NULL);
        bool same = nh == nr;
        for (size_t j = 0; same && j < nh; j++)
            same = hits[j].score - ref[j].score < 1e-4f * ref[j].score && ref[j].score - hits[j].score < 1e-4f * ref[j].score;
        mismatches += !same;
        for (size_t k = 0; k < qv[i].n; k++)
            decoded_ex += bm25_df(ix, qv[i].terms[k].term, qv[i].terms[k].len);
    }
    lat exh = summarize(tv, nq), exh_cpu = summarize(cv, nq);
    /* filtered: random allowed sets */
    double fr[2] = {0.01, 0.001};
    lat filt[2], filt_cpu[2];
    uint64_t nbits = n_chunks + 1;
    uint64_t *bits = calloc((nbits + 63) / 64, 8);
    for (int f = 0; f < 2; f++) {
        memset(bits, 0, (nbits + 63) / 64 * 8);
        for (uint64_t id = 1; id < nbits; id++)
            if ((double)(rnd() % 1000000) < fr[f] * 1e6)
                bits[id >> 6] |= 1ull << (id & 63);
        bm25_allowed al = {bits, nbits};
        for (size_t i = 0; i < nq; i++) {
            int64_t a = cairn_mono_ns();
            double c0 = cpu_ms();
            bm25_search(ix, &qv[i], &p, &al, 10, hits, &nh, NULL);
            cv[i] = cpu_ms() - c0;
            tv[i] = (double)(cairn_mono_ns() - a) / 1e6;
        }
        filt[f] = summarize(tv, nq);
        filt_cpu[f] = summarize(cv, nq);
    }
    /* document-level scoring (cairn search --group doc): 4 chunks per document */
    int32_t *of = calloc(nbits, sizeof *of);
    of[0] = -1;
    for (uint64_t id = 1; id < nbits; id++)
        of[id] = (int32_t)((id - 1) / 4);
    bm25_groups *groups;
    if (bm25_groups_new(ix, of, nbits, (uint32_t)((n_chunks + 3) / 4), &groups) != CAIRN_OK)
        die("groups");
    bm25_group_hit ghits[10];
    for (size_t i = 0; i < nq; i++) {
        int64_t a = cairn_mono_ns();
        double c0 = cpu_ms();
        bm25_search_groups(ix, groups, &qv[i], &p, 0, NULL, 10, ghits, &nh);
        cv[i] = cpu_ms() - c0;
        tv[i] = (double)(cairn_mono_ns() - a) / 1e6;
    }
    lat grp = summarize(tv, nq), grp_cpu = summarize(cv, nq);
    bm25_groups_free(groups);
    free(of);
    /* ---- SQLite FTS5 ---- */
    lat fl = {0}, fl_cpu = {0};
    double fts_build = 0;
    if (fts) {
        sqlite3 *db;
        snprintf(path, sizeof path, "%s/fts.db", dir);
        sqlite3_open(path, &db);
        sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF;"
                         "CREATE VIRTUAL TABLE t USING fts5(body, tokenize='porter unicode61');",
                     NULL, NULL, NULL);
        t0 = cairn_mono_ns();
        sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
        sqlite3_stmt *ins;
        sqlite3_prepare_v2(db, "INSERT INTO t(rowid, body) VALUES(?, ?)", -1, &ins, NULL);
        for (size_t c = 0; c < n_chunks; c++) {
            sqlite3_bind_int64(ins, 1, (sqlite3_int64)c + 1);
            sqlite3_bind_text(ins, 2, chunks[c], -1, SQLITE_STATIC);
            sqlite3_step(ins);
            sqlite3_reset(ins);
        }
        sqlite3_finalize(ins);
        sqlite3_exec(db, "COMMIT; INSERT INTO t(t) VALUES('optimize');", NULL, NULL, NULL);
        fts_build = (double)(cairn_mono_ns() - t0) / 1e9;
        sqlite3_stmt *q;
        sqlite3_prepare_v2(db, "SELECT rowid, bm25(t) FROM t WHERE t MATCH ? ORDER BY bm25(t) LIMIT 10", -1, &q, NULL);
        for (int round = 0; round < 2; round++)
            for (size_t i = 0; i < nq; i++) {
                /* the same analyzed words, OR-ed and quoted */
                char m[4096];
                size_t o = 0;
                for (size_t k = 0; k < qv[i].n && o + 80 < sizeof m; k++)
                    o += (size_t)snprintf(m + o, sizeof m - o, "%s\"%.*s\"", k ? " OR " : "", (int)qv[i].terms[k].len,
                                          qv[i].terms[k].term);
                int64_t a = cairn_mono_ns();
                double c0 = cpu_ms();
                sqlite3_bind_text(q, 1, m, -1, SQLITE_TRANSIENT);
                while (sqlite3_step(q) == SQLITE_ROW) {
                }
                sqlite3_reset(q);
                cv[i] = cpu_ms() - c0;
                tv[i] = (double)(cairn_mono_ns() - a) / 1e6;
            }
        fl = summarize(tv, nq);
        fl_cpu = summarize(cv, nq);
        sqlite3_finalize(q);
        sqlite3_close(db);
    }
    struct { const char *name; lat wall, cpu; } rows[] = {
        {"cairn (MaxScore+block-max)", ours, ours_cpu},
        {"cairn exhaustive", exh, exh_cpu},
        {"cairn, filter 1%", filt[0], filt_cpu[0]},
        {"cairn, filter 0.1%", filt[1], filt_cpu[1]},
        {"cairn documents (4 chunks)", grp, grp_cpu},
        {"SQLite FTS5 bm25()", fl, fl_cpu},
    };
    size_t n_rows = fts ? 6 : 5;
    if (json) {
        printf("{\"chunks\": %zu, \"words\": %zu, \"queries\": %zu, \"mean_terms\": %.1f, \"build_s\": %.2f, "
               "\"open_ms\": %.2f, \"fts5_build_s\": %.2f, \"mismatches\": %zu, \"engines\": [",
               n_chunks, total_words, nq, mean_terms, build_s, open_ms, fts_build, mismatches);
        for (size_t r = 0; r < n_rows; r++)
            printf("%s{\"name\": \"%s\", \"p50_ms\": %.3f, \"p99_ms\": %.3f, \"cpu_p50_ms\": %.3f, \"cpu_p99_ms\": %.3f}",
                   r ? ", " : "", rows[r].name, rows[r].wall.p50, rows[r].wall.p99, rows[r].cpu.p50, rows[r].cpu.p99);
        printf("]}\n");
    } else {
        printf("corpus: %zu chunks, %zu words (%.1f MB), %zu queries, %.1f terms on average, top-10\n", n_chunks,
               total_words, (double)bytes_total / 1e6, nq, mean_terms);
        printf("index build: %.2f s wall (%.1f MB/s), %.1f MB on disk, %zu segment(s), open %.2f ms\n", build_s,
               (double)bytes_total / 1e6 / build_s, (double)bm25_bytes(ix) / 1e6, bm25_n_segments(ix), open_ms);
        printf("%-28s %9s %9s %9s %9s\n", "engine", "p50 ms", "p99 ms", "cpu p50", "cpu p99");
        for (size_t r = 0; r < n_rows; r++)
            printf("%-28s %9.3f %9.3f %9.3f %9.3f\n", rows[r].name, rows[r].wall.p50, rows[r].wall.p99, rows[r].cpu.p50,
                   rows[r].cpu.p99);
        if (fts)
            printf("SQLite FTS5 build: %.2f s\n", fts_build);
        printf("postings decoded: %.0f per query (exhaustive: %.0f); top-10 differences vs exhaustive: %zu\n",
               (double)decoded / (double)nq, (double)decoded_ex / (double)nq, mismatches);
    }
    for (size_t i = 0; i < nq; i++)
        bm25_query_free(&qv[i]);
    text_analyzer_free(an);
    bm25_close(ix);
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return 0;
}
