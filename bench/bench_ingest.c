/* bench_ingest.c — end-to-end ingest speed of plain text: walk, read, hash,
 * parse, chunk, write to the SQLite store (what `cairn add` does, minus the
 * derived index update).
 *
 *   bench_ingest [MB] [FILES] [RUNS]     defaults: 100 MB in 1000 files, 3 runs
 *   bench_ingest --path PATH [RUNS]      ingest an existing file or directory
 *   bench_ingest --memory MB...          `cairn add` as a whole (ingest + BM25
 *                                        index) of MB of generated text, each
 *                                        size in a fresh child process: wall,
 *                                        MB/s and peak RSS (the child's
 *                                        ru_maxrss), to show memory is bounded
 *   bench_ingest --memory-jsonl MB...    --memory on a generated corpus.jsonl
 *   bench_ingest --gz MB FILES RUNS      the same generated text, plain and
 *                                        gzip -6 compressed (x.txt.gz), runs
 *                                        interleaved: CPU MB/s of the
 *                                        uncompressed bytes for both, and the
 *                                        ratio (the .gz target is >= 80%)
 *   bench_ingest --gz DIR RUNS           the same with DIR's .gz files (e.g.
 *                                        real Debian changelogs) against
 *                                        a gunzipped copy of them
 *   bench_ingest --jsonl MB...           the real `cairn add` (the binary next
 *                                        to this one, run as a child) of a
 *                                        BEIR-style corpus.jsonl of MB: wall,
 *                                        MB/s and the child's peak RSS; the
 *                                        file is streamed, so RSS stays flat
 *
 * Generates a synthetic English-like corpus (Zipf-ish word choice, sentences
 * and paragraphs) in a temporary directory, ingests it into a fresh store
 * RUNS times, and prints the median wall-clock and CPU throughput, then the
 * time to re-add the unchanged corpus (stat-only path). CPU throughput is
 * the useful number on a shared machine: wall time includes waiting for
 * other processes. */
#include "index/bm25.h"
#include "ingest/pipeline.h"
#include "search/search.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <libgen.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void make_corpus(const char *dir, size_t mb, size_t files)
{
    enum { NWORDS = 20000 };
    static char words[NWORDS][12];
    for (int i = 0; i < NWORDS; i++) {
        int len = 2 + (int)(next_rand() % 9);
        for (int k = 0; k < len; k++)
            words[i][k] = (char)('a' + next_rand() % 26);
        words[i][len] = 0;
    }
    size_t per_file = mb * 1000000 / files;
    char *buf = malloc(per_file + 4096);
    for (size_t f = 0; f < files; f++) {
        size_t n = 0;
        while (n < per_file) {
            int sentences = 2 + (int)(next_rand() % 5);
            for (int s = 0; s < sentences; s++) {
                int nw = 8 + (int)(next_rand() % 14);
                for (int w = 0; w < nw; w++) {
                    /* Zipf-ish: square a uniform number to favour low ranks */
                    uint64_t r = next_rand() % NWORDS;
                    const char *word = words[(r * r) / NWORDS];
                    size_t wl = strlen(word);
                    memcpy(buf + n, word, wl);
                    if (w == 0)
                        buf[n] = (char)(buf[n] - 32);
                    n += wl;
                    buf[n++] = w == nw - 1 ? '.' : ' ';
                }
                buf[n++] = ' ';
            }
            buf[n - 1] = '\n';
            buf[n++] = '\n';
        }
        char path[1400];
        snprintf(path, sizeof path, "%s/d%02zu", dir, f % 16);
        mkdir(path, 0755);
        snprintf(path, sizeof path, "%s/d%02zu/f%05zu.txt", dir, f % 16, f);
        FILE *fp = fopen(path, "w");
        if (!fp || fwrite(buf, 1, n, fp) != n) {
            fprintf(stderr, "cannot write %s\n", path);
            exit(1);
        }
        fclose(fp);
    }
    free(buf);
}

static int run_once(const char *root, const char *corpus, double *wall, double *cpu, const pipe_stats **out_stats,
                    pipe_stats *copy, bool fresh)
{
    char sd[1100], cmd[1200];
    snprintf(sd, sizeof sd, "%s/.cairn", root);
    if (fresh) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", sd);
        if (system(cmd) != 0)
            return 1;
        if (store_create(sd) != CAIRN_OK) {
            fprintf(stderr, "store_create: %s\n", cairn_last_error());
            return 1;
        }
    }
    store *s;
    if (store_open(sd, &s) != CAIRN_OK) {
        fprintf(stderr, "store_open: %s\n", cairn_last_error());
        return 1;
    }
    pipe_options po = {0};
    ingest_options_default(&po.ingest);
    po.ingest.max_file_bytes = (size_t)4 << 30;
    chunk_options_default(&po.chunk);
    store_next_sync_gen(s, &po.sync_gen);
    pipeline *p;
    double c0 = cpu_seconds();
    int64_t t0 = cairn_mono_ns();
    cairn_status st = pipeline_new(s, &po, &p);
    if (st == CAIRN_OK)
        st = pipeline_add_path(p, corpus);
    if (st == CAIRN_OK)
        st = pipeline_finish(p);
    *wall = (double)(cairn_mono_ns() - t0) / 1e9;
    *cpu = cpu_seconds() - c0;
    if (st != CAIRN_OK)
        fprintf(stderr, "ingest: %s\n", cairn_last_error());
    *copy = *pipeline_stats(p);
    *out_stats = copy;
    pipeline_free(p);
    store_close(s);
    return st != CAIRN_OK;
}

/* Child: fresh store, ingest `corpus`, catch the BM25 index up (what
 * `cairn add` does); writes "ingest_s index_s cpu_s mb chunks segments" to fd. */
static int memory_child(const char *root, const char *corpus, int fd)
{
    double wall, cpu;
    pipe_stats copy;
    const pipe_stats *ps;
    double c0 = cpu_seconds();
    if (run_once(root, corpus, &wall, &cpu, &ps, &copy, true))
        return 1;
    char sd[1100];
    snprintf(sd, sizeof sd, "%s/.cairn", root);
    store *s;
    if (store_open(sd, &s) != CAIRN_OK)
        return 1;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    long rss_ingest = ru.ru_maxrss;
    int64_t t0 = cairn_mono_ns();
    search_catchup_stats cs;
    if (search_catch_up(s, &cs) != CAIRN_OK) {
        fprintf(stderr, "index: %s\n", cairn_last_error());
        return 1;
    }
    double ix_s = (double)(cairn_mono_ns() - t0) / 1e9;
    char ixdir[1200];
    snprintf(ixdir, sizeof ixdir, "%s/index", sd);
    text_config cfg;
    text_config_default(&cfg);
    bm25_index *ix;
    size_t segs = 0;
    if (bm25_open(ixdir, &cfg, &ix, NULL) == CAIRN_OK) {
        segs = bm25_n_segments(ix);
        bm25_close(ix);
    }
    store_close(s);
    dprintf(fd, "%f %f %f %f %zu %zu %ld\n", wall, ix_s, cpu_seconds() - c0, (double)copy.bytes_read / 1e6,
            copy.chunks_added, segs, rss_ingest);
    return 0;
}

static int make_jsonl(const char *path, size_t mb);

static int memory_mode(int argc, char **argv)
{
    bool jsonl = !strcmp(argv[1], "--memory-jsonl");
    printf("%8s %8s %9s %9s %8s %8s %12s %11s %9s\n", "MB", "chunks", "ingest s", "index s", "total s", "MB/s",
           "peak RSS MB", "(ingest MB)", "segments");
    for (int a = 2; a < argc; a++) {
        size_t mb = (size_t)atol(argv[a]);
        if (mb < 1) {
            fprintf(stderr, "usage: bench_ingest --memory MB...\n");
            return 2;
        }
        char root[] = "/tmp/cairn_bench_mem.XXXXXX";
        if (!mkdtemp(root))
            return 1;
        char corpus[1100];
        snprintf(corpus, sizeof corpus, "%s/corpus%s", root, jsonl ? ".jsonl" : "");
        if (jsonl) {
            if (make_jsonl(corpus, mb))
                return 1;
        } else {
            mkdir(corpus, 0755);
            make_corpus(corpus, mb, mb * 10);
        }
        int pfd[2];
        if (pipe(pfd) != 0)
            return 1;
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            close(pfd[0]);
            _exit(memory_child(root, corpus, pfd[1]));
        }
        close(pfd[1]);
        char line[256] = {0};
        ssize_t got = read(pfd[0], line, sizeof line - 1);
        close(pfd[0]);
        int status;
        struct rusage ru;
        if (pid < 0 || wait4(pid, &status, 0, &ru) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0 || got <= 0) {
            fprintf(stderr, "bench_ingest: child failed\n");
            return 1;
        }
        double ing, ixs, cpu, mbr;
        size_t chunks, segs;
        long rss_ingest;
        if (sscanf(line, "%lf %lf %lf %lf %zu %zu %ld", &ing, &ixs, &cpu, &mbr, &chunks, &segs, &rss_ingest) != 7)
            return 1;
        printf("%8.1f %8zu %9.2f %9.2f %8.2f %8.1f %12.1f %11.1f %9zu\n", mbr, chunks, ing, ixs, ing + ixs,
               mbr / (ing + ixs), (double)ru.ru_maxrss / 1024.0, (double)rss_ingest / 1024.0, segs);
        fflush(stdout);
        char cmd[1200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
        if (system(cmd) != 0)
            return 1;
    }
    return 0;
}


/* A BEIR-style corpus.jsonl of about `mb` MB: {"_id","title","text",
 * "metadata"} records of 40-600 words (mean ~1.7 KB), Zipf-ish words. */
static int make_jsonl(const char *path, size_t mb)
{
    enum { NWORDS = 20000 };
    static char words[NWORDS][12];
    for (int i = 0; i < NWORDS; i++) {
        int len = 2 + (int)(next_rand() % 9);
        for (int k = 0; k < len; k++)
            words[i][k] = (char)('a' + next_rand() % 26);
        words[i][len] = 0;
    }
    FILE *fp = fopen(path, "w");
    if (!fp)
        return 1;
    uint64_t target = (uint64_t)mb * 1000000, n = 0;
    static char rec[16384];
    for (size_t id = 0; n < target; id++) {
        int len = snprintf(rec, sizeof rec, "{\"_id\": \"doc%zu\", \"title\": \"%s %s\", \"text\": \"", id,
                           words[next_rand() % NWORDS], words[next_rand() % NWORDS]);
        int nw = 40 + (int)(next_rand() % 5 == 0 ? next_rand() % 560 : next_rand() % 300);
        for (int w = 0; w < nw; w++) {
            uint64_t r = next_rand() % NWORDS;
            const char *word = words[(r * r) / NWORDS];
            size_t wl = strlen(word);
            memcpy(rec + len, word, wl);
            len += (int)wl;
            rec[len++] = w % 12 == 11 ? '.' : ' ';
        }
        len += snprintf(rec + len, sizeof rec - (size_t)len, "\", \"metadata\": {\"year\": %d}}\n",
                        1990 + (int)(next_rand() % 30));
        if (fwrite(rec, 1, (size_t)len, fp) != (size_t)len) {
            fclose(fp);
            return 1;
        }
        n += (uint64_t)len;
    }
    return fclose(fp) != 0;
}

/* Run argv as a child with stdout to `out`; wall seconds and peak RSS (KB). */
static int run_child(char *const argv[], const char *out, double *wall, long *rss_kb, double *cpu)
{
    int64_t t0 = cairn_mono_ns();
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            close(fd);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    int status;
    struct rusage ru;
    if (pid < 0 || wait4(pid, &status, 0, &ru) != pid)
        return 1;
    *wall = (double)(cairn_mono_ns() - t0) / 1e9;
    *rss_kb = ru.ru_maxrss;
    *cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    return !WIFEXITED(status) || WEXITSTATUS(status) != 0;
}

static int jsonl_mode(int argc, char **argv)
{
    char self[1024], cairn[1100];
    snprintf(self, sizeof self, "%s", argv[0]);
    snprintf(cairn, sizeof cairn, "%s/cairn", dirname(self));
    if (access(cairn, X_OK) != 0) {
        fprintf(stderr, "bench_ingest: %s not found (build the cairn target)\n", cairn);
        return 1;
    }
    printf("%8s %8s %9s %8s %8s %8s %12s\n", "MB", "docs", "wall s", "MB/s", "cpu s", "cpu MB/s", "peak RSS MB");
    for (int a = 2; a < argc; a++) {
        size_t mb = (size_t)atol(argv[a]);
        if (mb < 1) {
            fprintf(stderr, "usage: bench_ingest --jsonl MB...\n");
            return 2;
        }
        char root[] = "/tmp/cairn_bench_jsonl.XXXXXX";
        if (!mkdtemp(root))
            return 1;
        char corpus[1100], db[1100], out[1100];
        snprintf(corpus, sizeof corpus, "%s/corpus.jsonl", root);
        snprintf(db, sizeof db, "%s/db", root);
        snprintf(out, sizeof out, "%s/out.txt", root);
        int rc = make_jsonl(corpus, mb);
        struct stat sb;
        double wall = 0, w0, cpu = 0, c0;
        long rss = 0, r0;
        if (!rc)
            rc = stat(corpus, &sb);
        char *init[] = {cairn, "init", "--db", db, NULL};
        if (!rc)
            rc = run_child(init, out, &w0, &r0, &c0);
        /* BENCH_CONFIG: lines appended to the store's config (e.g. "[bm25]\nflush_mb = 16") */
        const char *extra = getenv("BENCH_CONFIG");
        if (!rc && extra && *extra) {
            char cfg[1200];
            snprintf(cfg, sizeof cfg, "%s/.cairn/config", db);
            FILE *cf = fopen(cfg, "a");
            rc = !cf || fprintf(cf, "\n%s\n", extra) < 0;
            if (cf)
                fclose(cf);
        }
        fflush(stdout);
        char *add[] = {cairn, "add", corpus, "--db", db, NULL};
        if (!rc)
            rc = run_child(add, out, &wall, &rss, &cpu);
        /* the summary line: "...; N documents written ..." */
        size_t docs = 0;
        FILE *fp = rc ? NULL : fopen(out, "r");
        char line[1024];
        while (fp && fgets(line, sizeof line, fp)) {
            const char *d = strstr(line, "; ");
            if (d && strstr(line, " read in "))
                sscanf(d, "; %zu documents", &docs);
        }
        if (fp)
            fclose(fp);
        if (rc)
            fprintf(stderr, "bench_ingest: cairn add failed (output in %s)\n", out);
        else
            printf("%8.1f %8zu %9.2f %8.1f %8.2f %8.1f %12.1f\n", (double)sb.st_size / 1e6, docs, wall,
                   (double)sb.st_size / 1e6 / wall, cpu, (double)sb.st_size / 1e6 / cpu, (double)rss / 1024.0);
        fflush(stdout);
        char cmd[1200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
        if (system(cmd) != 0 || rc)
            return 1;
    }
    return 0;
}

/* --gz: plain vs gzip-compressed copies of the same corpus. */
static int gz_mode(int argc, char **argv)
{
    struct stat dsb;
    bool from_dir = argc > 2 && stat(argv[2], &dsb) == 0 && S_ISDIR(dsb.st_mode);
    size_t mb = from_dir ? 0 : argc > 2 ? (size_t)atol(argv[2]) : 50;
    size_t files = from_dir ? 1 : argc > 3 ? (size_t)atol(argv[3]) : 500;
    int runs = from_dir ? (argc > 3 ? atoi(argv[3]) : 3) : argc > 4 ? atoi(argv[4]) : 3;
    if ((!from_dir && mb < 1) || files < 1 || runs < 1 || runs > 15)
        return 2;
    char root[] = "/tmp/cairn_bench_ingest.XXXXXX";
    if (!mkdtemp(root))
        return 1;
    char corpus[1100], gz[1100], cmd[3400];
    snprintf(corpus, sizeof corpus, "%s/corpus", root);
    snprintf(gz, sizeof gz, "%s/corpus_gz", root);
    if (from_dir) {
        snprintf(cmd, sizeof cmd, "cp -r '%s' '%s' && cp -r '%s' '%s' && gzip -d -r '%s'", argv[2], gz, argv[2], corpus,
                 corpus);
    } else {
        mkdir(corpus, 0755);
        make_corpus(corpus, mb, files);
        snprintf(cmd, sizeof cmd, "cp -r '%s' '%s' && gzip -6 -r '%s'", corpus, gz, gz);
    }
    if (system(cmd) != 0) {
        fprintf(stderr, "gzip failed\n");
        return 1;
    }
    double cp[15], cz[15], wp[15], wz[15];
    pipe_stats copy;
    const pipe_stats *ps = NULL;
    size_t chunks_p = 0, chunks_z = 0;
    uint64_t raw_z = 0;
    for (int r = 0; r < runs; r++) {
        if (run_once(root, corpus, &wp[r], &cp[r], &ps, &copy, true))
            return 1;
        chunks_p = ps->chunks_added;
        if (from_dir)
            mb = (size_t)(ps->bytes_read / 1000000);
        if (run_once(root, gz, &wz[r], &cz[r], &ps, &copy, true))
            return 1;
        chunks_z = ps->chunks_added;
        raw_z = ps->bytes_read;
    }
    qsort(cp, (size_t)runs, sizeof *cp, cmp_double);
    qsort(cz, (size_t)runs, sizeof *cz, cmp_double);
    qsort(wp, (size_t)runs, sizeof *wp, cmp_double);
    qsort(wz, (size_t)runs, sizeof *wz, cmp_double);
    double umb = (double)mb;
    printf("corpus: %.1f MB of text%s (gzip: %.1f MB); chunks plain %zu, gz %zu\n", umb,
           from_dir ? " from a directory" : "", (double)raw_z / 1e6, chunks_p, chunks_z);
    printf("plain  median of %d: cpu %.2f s = %.1f MB/s, wall %.2f s\n", runs, cp[runs / 2], umb / cp[runs / 2],
           wp[runs / 2]);
    printf(".gz    median of %d: cpu %.2f s = %.1f MB/s, wall %.2f s\n", runs, cz[runs / 2], umb / cz[runs / 2],
           wz[runs / 2]);
    printf(".gz rate / plain rate (cpu): %.0f%%\n", 100.0 * cp[runs / 2] / cz[runs / 2]);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    return system(cmd) != 0 || chunks_p != chunks_z;
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "--gz"))
        return gz_mode(argc, argv);
    if (argc > 2 && !strcmp(argv[1], "--jsonl"))
        return jsonl_mode(argc, argv);
    if (argc > 2 && (!strcmp(argv[1], "--memory") || !strcmp(argv[1], "--memory-jsonl")))
        return memory_mode(argc, argv);
    if (argc > 2 && !strcmp(argv[1], "--path")) {
        int runs = argc > 3 ? atoi(argv[3]) : 3;
        if (runs < 1 || runs > 15)
            return 2;
        char root[] = "/tmp/cairn_bench_ingest.XXXXXX";
        if (!mkdtemp(root))
            return 1;
        double walls[15], cpus[15];
        pipe_stats copy;
        const pipe_stats *ps = NULL;
        for (int r = 0; r < runs; r++)
            if (run_once(root, argv[2], &walls[r], &cpus[r], &ps, &copy, true))
                return 1;
        qsort(walls, (size_t)runs, sizeof *walls, cmp_double);
        qsort(cpus, (size_t)runs, sizeof *cpus, cmp_double);
        double mbr = (double)ps->bytes_read / 1e6;
        printf("%s: %.1f MB, %zu documents, %zu chunks\n", argv[2], mbr, ps->docs_written, ps->chunks_added);
        printf("ingest (fresh store), median of %d: wall %.2f s = %.1f MB/s; cpu %.2f s = %.1f MB/s\n", runs,
               walls[runs / 2], mbr / walls[runs / 2], cpus[runs / 2], mbr / cpus[runs / 2]);
        char cmd[1200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
        return system(cmd) != 0;
    }
    size_t mb = argc > 1 ? (size_t)atol(argv[1]) : 100;
    size_t files = argc > 2 ? (size_t)atol(argv[2]) : 1000;
    int runs = argc > 3 ? atoi(argv[3]) : 3;
    if (mb < 1 || files < 1 || runs < 1 || runs > 15) {
        fprintf(stderr, "usage: bench_ingest [MB] [FILES] [RUNS<=15]\n");
        return 2;
    }
    char root[] = "/tmp/cairn_bench_ingest.XXXXXX";
    if (!mkdtemp(root))
        return 1;
    char corpus[1100];
    snprintf(corpus, sizeof corpus, "%s/corpus", root);
    mkdir(corpus, 0755);
    make_corpus(corpus, mb, files);
    double walls[15], cpus[15];
    pipe_stats copy;
    const pipe_stats *ps = NULL;
    for (int r = 0; r < runs; r++)
        if (run_once(root, corpus, &walls[r], &cpus[r], &ps, &copy, true))
            return 1;
    double bytes_mb = (double)ps->bytes_read / 1e6;
    size_t chunks = ps->chunks_added;
    qsort(walls, (size_t)runs, sizeof *walls, cmp_double);
    qsort(cpus, (size_t)runs, sizeof *cpus, cmp_double);
    double wm = walls[runs / 2], cm = cpus[runs / 2];
    printf("corpus: %.1f MB in %zu files -> %zu chunks (default chunk size %d, overlap %d)\n", bytes_mb, files, chunks,
           CHUNK_DEFAULT_TOKENS, CHUNK_DEFAULT_OVERLAP);
    printf("ingest (fresh store), median of %d: wall %.2f s = %.1f MB/s; cpu %.2f s = %.1f MB/s\n", runs, wm,
           bytes_mb / wm, cm, bytes_mb / cm);
    double w2, c2;
    if (run_once(root, corpus, &w2, &c2, &ps, &copy, false))
        return 1;
    printf("re-add unchanged: wall %.3f s (%zu files unchanged)\n", w2, ps->files_unchanged);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0)
        return 1;
    return 0;
}
