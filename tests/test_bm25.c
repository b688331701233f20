/* test_bm25.c — the inverted index: MaxScore/block-max and direct scoring
 * return exactly the exhaustive reference's top-k (random corpora and
 * queries, with and without allowed sets and tombstones), segments, merges,
 * reopen, crash leftovers, corruption, locking. */
#include "t.h"
#include "index/bm25.h"
#include <sys/stat.h>
#include <sys/wait.h>

#define VOCAB 3000
#define NDOCS 6000

static uint64_t rng = 88172645463325252ull;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* word i as letters only ("zq" + base-26), never a stop word */
static int word(int i, char *out)
{
    int n = 0;
    out[n++] = 'z';
    out[n++] = 'q';
    do {
        out[n++] = (char)('a' + i % 26);
        i /= 26;
    } while (i);
    out[n] = 0;
    return n;
}

/* Zipf-ish word id */
static int zipf(void)
{
    double u = (double)(rnd() % 1000000) / 1000000.0;
    int w = (int)(pow((double)VOCAB, u)) - 1;
    return w < 0 ? 0 : w >= VOCAB ? VOCAB - 1 : w;
}

static void make_doc(char *buf, size_t cap, int len)
{
    size_t n = 0;
    char w[16];
    for (int i = 0; i < len && n + 20 < cap; i++) {
        int l = word(zipf(), w);
        memcpy(buf + n, w, (size_t)l);
        n += (size_t)l;
        buf[n++] = ' ';
    }
    buf[n] = 0;
}

static text_config cfg_none(void)
{
    text_config c;
    text_config_default(&c);
    text_config_set(&c, "stemmer", "none");
    return c;
}

/* Compare fast vs exhaustive top-k: scores rank by rank within 1e-5
 * (relative), ids equal wherever the score is not tied with a neighbour.
 * b may hold one hit more than a (the exhaustive k+1-th) so that a tie
 * across the k boundary is recognized. */
static int compare(const bm25_hit *a, size_t na, const bm25_hit *b, size_t nb, const char *what)
{
    int bad = 0;
    size_t nb_all = nb;
    if (nb == na + 1)
        nb = na;
    if (na != nb) {
        fprintf(stderr, "%s: %zu vs %zu hits\n", what, na, nb);
        return 1;
    }
    for (size_t i = 0; i < na; i++) {
        double tol = 1e-5 * fabs(b[i].score) + 1e-6;
        if (fabs(a[i].score - b[i].score) > tol) {
            fprintf(stderr, "%s: rank %zu score %.7f vs %.7f\n", what, i, a[i].score, b[i].score);
            bad = 1;
            break;
        }
        bool tied = (i > 0 && fabs(b[i - 1].score - b[i].score) <= tol) ||
                    (i + 1 < nb_all && fabs(b[i + 1].score - b[i].score) <= tol);
        if (!tied && a[i].chunk_id != b[i].chunk_id) {
            fprintf(stderr, "%s: rank %zu id %llu vs %llu\n", what, i, (unsigned long long)a[i].chunk_id,
                    (unsigned long long)b[i].chunk_id);
            bad = 1;
            break;
        }
    }
    return bad;
}

static void random_query(bm25_query *q)
{
    memset(q, 0, sizeof *q);
    int n = 1 + (int)(rnd() % 12);
    char w[16];
    for (int i = 0; i < n; i++) {
        /* mix frequent and rare terms, like natural-language queries */
        int id = rnd() % 3 == 0 ? (int)(rnd() % 20) : zipf();
        int l = word(id, w);
        bm25_query_add(q, w, (size_t)l, rnd() % 5 == 0 ? 2.0f : 1.0f);
    }
}

static int check_queries(const bm25_index *ix, int nq, const bm25_allowed *al, const char *what)
{
    bm25_params p;
    bm25_params_default(&p);
    bm25_hit a[201], b[201];
    int fails = 0;
    size_t ks[] = {1, 10, 100};
    for (int i = 0; i < nq; i++) {
        bm25_query q;
        random_query(&q);
        size_t k = ks[rnd() % 3], na, nb;
        if (i % 7 == 0) {
            p.k1 = 1.2f;
            p.b = 0.75f;
        } else {
            bm25_params_default(&p);
        }
        bm25_search_stats st;
        CHECK_OK(bm25_search(ix, &q, &p, al, k, a, &na, &st));
        CHECK_OK(bm25_search_exhaustive(ix, &q, &p, al, k + 1, b, &nb));
        if (nb <= k && na != nb)
            fprintf(stderr, "%s: %zu vs %zu hits\n", what, na, nb);
        CHECK(na == (nb > k ? k : nb));
        fails += compare(a, na, b, nb, what);
        for (size_t j = 0; al && j < na; j++)
            CHECK(a[j].chunk_id < al->nbits && (al->bits[a[j].chunk_id >> 6] >> (a[j].chunk_id & 63)) & 1);
        for (size_t j = 0; j < na; j++)
            CHECK(bm25_is_live(ix, a[j].chunk_id));
        bm25_query_free(&q);
    }
    CHECKF(fails == 0, "%s: %d of %d queries differ", what, fails, nq);
    return fails;
}

static uint64_t *make_allowed(uint64_t nbits, double frac, size_t *count)
{
    uint64_t *bits = cairn_calloc((nbits + 63) / 64, 8);
    *count = 0;
    for (uint64_t id = 0; id < nbits; id++)
        if ((double)(rnd() % 1000000) < frac * 1000000.0) {
            bits[id >> 6] |= 1ull << (id & 63);
            (*count)++;
        }
    return bits;
}

static void build(const char *dir, int ndocs, int per_commit, int *deleted_out)
{
    text_config cfg = cfg_none();
    bm25_index *ix;
    CHECK_OK(bm25_open(dir, &cfg, &ix, NULL));
    char *buf = malloc(8192);
    int deleted = 0;
    uint64_t id = 0;
    while ((int)id < ndocs) {
        bm25_writer *w;
        CHECK_OK(bm25_writer_open(ix, &w));
        for (int i = 0; i < per_commit && (int)id < ndocs; i++) {
            id += 1 + (rnd() % 10 == 0);    /* gaps in ids, like deleted chunks */
            make_doc(buf, 8192, 3 + (int)(rnd() % 300));
            bm25_field f[2] = {{buf, strlen(buf), 1}, {"zqtitle", 7, 3}};
            CHECK_OK(bm25_writer_add(w, id, f, rnd() % 4 == 0 ? 2 : 1));
        }
        for (int i = 0; i < per_commit / 20; i++) {
            CHECK_OK(bm25_writer_delete(w, 1 + rnd() % id));
            deleted++;
        }
        CHECK_OK(bm25_writer_commit(w, id, (uint64_t)deleted));
        bm25_writer_free(w);
    }
    free(buf);
    bm25_close(ix);
    if (deleted_out)
        *deleted_out = deleted;
}

static void test_fast_equals_exhaustive(void)
{
    const char *dir = t_tmpdir("bm25_eq");
    char ixdir[1100];
    snprintf(ixdir, sizeof ixdir, "%s/index", dir);
    bm25_set_flush_postings(60000);     /* several segments per commit */
    build(ixdir, NDOCS, 700, NULL);
    bm25_set_flush_postings(0);
    text_config cfg = cfg_none();
    bm25_index *ix;
    bool mismatch;
    CHECK_OK(bm25_open(ixdir, &cfg, &ix, &mismatch));
    CHECK(!mismatch);
    CHECK(bm25_n_segments(ix) >= 2 && bm25_n_segments(ix) <= 8);
    CHECK(bm25_n_docs(ix) > NDOCS / 2);
    check_queries(ix, 300, NULL, "unfiltered");
    /* allowed sets from dense to tiny */
    double fracs[] = {0.5, 0.01, 0.001};
    for (size_t f = 0; f < 3; f++) {
        size_t count;
        uint64_t nbits = bm25_hwm(ix) + 1;
        uint64_t *bits = make_allowed(nbits, fracs[f], &count);
        bm25_allowed al = {bits, nbits};
        char what[64];
        snprintf(what, sizeof what, "allowed %.3f", fracs[f]);
        check_queries(ix, 150, &al, what);
        cairn_free(bits);
    }
    /* empty allowed set */
    bm25_allowed none = {NULL, 0};
    bm25_query q = {0};
    bm25_query_add(&q, "zqa", 3, 1);
    bm25_hit h[10];
    size_t n = 99;
    CHECK_OK(bm25_search(ix, &q, &(bm25_params){0.9f, 0.4f}, &none, 10, h, &n, NULL));
    CHECK_EQ_INT(n, 0);
    bm25_query_free(&q);
    bm25_close(ix);
}

static void test_tiny_filter_full_topk(void)
{
    /* A filter matching 0.1% still returns a full top-k when k matches exist. */
    const char *dir = t_tmpdir("bm25_tiny");
    char ixdir[1100];
    snprintf(ixdir, sizeof ixdir, "%s/index", dir);
    text_config cfg = cfg_none();
    bm25_index *ix;
    CHECK_OK(bm25_open(ixdir, &cfg, &ix, NULL));
    bm25_writer *w;
    CHECK_OK(bm25_writer_open(ix, &w));
    char buf[256];
    for (uint64_t id = 1; id <= 20000; id++) {
        /* every doc has "zqcommon"; high-scoring docs are outside the filter */
        snprintf(buf, sizeof buf, "zqcommon %s", id % 1000 == 7 ? "zqcommon zqcommon" : "zqother");
        bm25_field f = {buf, strlen(buf), 1};
        CHECK_OK(bm25_writer_add(w, id, &f, 1));
    }
    CHECK_OK(bm25_writer_commit(w, 20000, 0));
    bm25_writer_free(w);
    uint64_t nbits = 20001;
    uint64_t *bits = cairn_calloc((nbits + 63) / 64, 8);
    for (uint64_t id = 5; id <= 20000; id += 1000)     /* 20 allowed = 0.1% */
        bits[id >> 6] |= 1ull << (id & 63);
    bm25_allowed al = {bits, nbits};
    bm25_query q = {0};
    bm25_query_add(&q, "zqcommon", 8, 1);
    bm25_hit h[10];
    size_t n;
    bm25_search_stats st;
    CHECK_OK(bm25_search(ix, &q, &(bm25_params){0.9f, 0.4f}, &al, 10, h, &n, &st));
    CHECK_EQ_INT(n, 10);
    CHECK(st.direct);
    for (size_t i = 0; i < n; i++)
        CHECK(h[i].chunk_id % 1000 == 5);
    bm25_query_free(&q);
    cairn_free(bits);
    bm25_close(ix);
}

static void test_deletes_and_optimize(void)
{
    const char *dir = t_tmpdir("bm25_del");
    char ixdir[1100];
    snprintf(ixdir, sizeof ixdir, "%s/index", dir);
    build(ixdir, 3000, 3000, NULL);
    text_config cfg = cfg_none();
    bm25_index *ix;
    CHECK_OK(bm25_open(ixdir, &cfg, &ix, NULL));
    uint64_t before = bm25_n_docs(ix);
    bm25_writer *w;
    CHECK_OK(bm25_writer_open(ix, &w));
    size_t dead = 0;
    for (uint64_t id = 1; id <= bm25_hwm(ix); id += 3) {
        if (bm25_is_live(ix, id))
            dead++;
        CHECK_OK(bm25_writer_delete(w, id));
    }
    CHECK_OK(bm25_writer_delete(w, 999999));   /* unknown: ignored */
    CHECK_OK(bm25_writer_commit(w, bm25_hwm(ix), 77));
    CHECK_EQ_INT(bm25_n_docs(ix), before - dead);
    CHECK_EQ_INT(bm25_del_hwm(ix), 77);
    CHECK(!bm25_is_live(ix, 1));
    check_queries(ix, 100, NULL, "with tombstones");
    /* optimize: one segment, no tombstones, same live docs */
    CHECK_OK(bm25_writer_optimize(w));
    bm25_writer_free(w);
    CHECK_EQ_INT(bm25_n_segments(ix), 1);
    CHECK_EQ_INT(bm25_n_docs(ix), before - dead);
    check_queries(ix, 100, NULL, "after optimize");
    bm25_close(ix);
    /* reopen from disk */
    CHECK_OK(bm25_open(ixdir, &cfg, &ix, NULL));
    CHECK_EQ_INT(bm25_n_docs(ix), before - dead);
    CHECK(!bm25_is_live(ix, 4));
    check_queries(ix, 50, NULL, "reopened");
    bm25_close(ix);
}

static void test_crash_leftovers_and_lock(void)
{
    const char *dir = t_tmpdir("bm25_crash");
    char ixdir[1100], path[1200];
    snprintf(ixdir, sizeof ixdir, "%s/index", dir);
    build(ixdir, 500, 500, NULL);
    text_config cfg = cfg_none();
    bm25_index *ix;
    CHECK_OK(bm25_open(ixdir, &cfg, &ix, NULL));
    uint64_t docs = bm25_n_docs(ix), hwm = bm25_hwm(ix);
    /* A writer that flushed segments but never committed (as if killed). */
    bm25_set_flush_postings(1000);
    bm25_writer *w;
    CHECK_OK(bm25_writer_open(ix, &w));
    bm25_writer *w2;
    CHECK(bm25_writer_open(ix, &w2) == CAIRN_ERR_BUSY);
    char buf[4096];
    for (uint64_t id = hwm + 1; id < hwm + 200; id++) {
        make_doc(buf, sizeof buf, 50);
        bm25_field f = {buf, strlen(buf), 1};
        CHECK_OK(bm25_writer_add(w, id, &f, 1));
    }
    bm25_set_flush_postings(0);
    /* a stray segment file as a crash would leave */
    snprintf(path, sizeof path, "%s/seg-999999.bm25", ixdir);
    FILE *f = fopen(path, "w");
    fputs("partial", f);
    fclose(f);
    /* readers still see the committed state */
    bm25_index *r;
    CHECK_OK(bm25_open(ixdir, &cfg, &r, NULL));
    CHECK_EQ_INT(bm25_n_docs(r), docs);
    bm25_close(r);
    bm25_writer_free(w);    /* abort: its segments are removed */
    CHECK_OK(bm25_writer_open(ix, &w));
    make_doc(buf, sizeof buf, 50);
    bm25_field fld = {buf, strlen(buf), 1};
    CHECK_OK(bm25_writer_add(w, hwm + 1, &fld, 1));
    CHECK_OK(bm25_writer_commit(w, hwm + 1, 0));
    bm25_writer_free(w);
    CHECK_EQ_INT(bm25_n_docs(ix), docs + 1);
    struct stat sb;
    CHECK(stat(path, &sb) != 0);   /* stray file cleaned */
    /* ids must ascend */
    CHECK_OK(bm25_writer_open(ix, &w));
    CHECK(bm25_writer_add(w, 1, &fld, 1) == CAIRN_ERR_INVALID);
    bm25_writer_free(w);
    bm25_close(ix);
}

static void test_corruption(void)
{
    const char *dir = t_tmpdir("bm25_corrupt");
    char ixdir[1100], path[1200];
    snprintf(ixdir, sizeof ixdir, "%s/index", dir);
    build(ixdir, 300, 300, NULL);
    text_config cfg = cfg_none();
    bm25_index *ix;
    /* flip one byte in the middle of the segment */
    snprintf(path, sizeof path, "%s/seg-000001.bm25", ixdir);
    FILE *f = fopen(path, "r+b");
    CHECK(f != NULL);
    if (!f)
        return;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, len / 2, SEEK_SET);
    int c = fgetc(f);
    fseek(f, len / 2, SEEK_SET);
    fputc(c ^ 0x40, f);
    fclose(f);
    CHECK(bm25_open(ixdir, &cfg, &ix, NULL) == CAIRN_ERR_CORRUPT);
    CHECK(strstr(cairn_last_error(), "seg-000001") != NULL);
    /* truncated */
    CHECK(truncate(path, 40) == 0);
    CHECK(bm25_open(ixdir, &cfg, &ix, NULL) == CAIRN_ERR_CORRUPT);
    /* a manifest with a bad checksum */
    snprintf(path, sizeof path, "%s/MANIFEST", ixdir);
    f = fopen(path, "r+b");
    fputc('X', f);
    fclose(f);
    CHECK(bm25_open(ixdir, &cfg, &ix, NULL) == CAIRN_ERR_CORRUPT);
}

static void test_analyzer_mismatch(void)
{
    const char *dir = t_tmpdir("bm25_cfg");
    char ixdir[1100];
    snprintf(ixdir, sizeof ixdir, "%s/index", dir);
    build(ixdir, 50, 50, NULL);
    text_config other;
    text_config_default(&other);
    bm25_index *ix;
    bool mismatch = false;
    CHECK_OK(bm25_open(ixdir, &other, &ix, &mismatch));
    CHECK(mismatch);
    bm25_writer *w;
    CHECK_OK(bm25_writer_open(ix, &w));
    CHECK_OK(bm25_writer_reset(w, &other));
    bm25_field f = {"Running dogs", 12, 1};
    CHECK_OK(bm25_writer_add(w, 1, &f, 1));
    CHECK_OK(bm25_writer_commit(w, 1, 0));
    bm25_writer_free(w);
    CHECK_EQ_INT(bm25_n_docs(ix), 1);
    CHECK_EQ_INT(bm25_df(ix, "run", 3), 1);
    bm25_close(ix);
    CHECK_OK(bm25_open(ixdir, &other, &ix, &mismatch));
    CHECK(!mismatch);
    bm25_close(ix);
}

static void test_alloc_failures(void)
{
    /* Every allocation failure in build + commit is clean, and the index
     * then still opens with its last committed state. */
    const char *dir = t_tmpdir("bm25_oom");
    char ixdir[1100];
    snprintf(ixdir, sizeof ixdir, "%s/index", dir);
    build(ixdir, 20, 20, NULL);
    text_config cfg = cfg_none();
    for (long n = 0; n < 400; n += 3) {
        bm25_index *ix = NULL;
        CHECK_OK(bm25_open(ixdir, &cfg, &ix, NULL));
        uint64_t docs = bm25_n_docs(ix), hwm = bm25_hwm(ix);
        bm25_writer *w = NULL;
        cairn_alloc_fail_after(n, false);
        cairn_status st = bm25_writer_open(ix, &w);
        if (st == CAIRN_OK) {
            bm25_field f = {"zqa zqb zqc", 11, 1};
            st = bm25_writer_add(w, hwm + 1, &f, 1);
            if (st == CAIRN_OK)
                st = bm25_writer_commit(w, hwm + 1, 0);
            bm25_writer_free(w);
        }
        cairn_alloc_fail_after(-1, false);
        bm25_close(ix);
        CHECK_OK(bm25_open(ixdir, &cfg, &ix, NULL));
        if (ix) {
            CHECK(bm25_n_docs(ix) == docs || bm25_n_docs(ix) == docs + 1);
            bm25_close(ix);
        }
    }
}

static void test_hostile_segments(void)
{
    /* Bytes flipped anywhere after the header, with the checksum then made
     * to match (as a buggy writer or a crafted file would): open and search
     * must return an error or some result, never crash or read out of
     * bounds (the asan build checks the latter). */
    const char *dir = t_tmpdir("bm25_hostile");
    char ixdir[1100], path[1200], orig[1200];
    snprintf(ixdir, sizeof ixdir, "%s/index", dir);
    build(ixdir, 400, 400, NULL);
    snprintf(path, sizeof path, "%s/seg-000001.bm25", ixdir);
    snprintf(orig, sizeof orig, "%s/orig.bin", dir);
    char *data;
    size_t len;
    CHECK_OK(cairn_file_read_all(path, 1 << 26, &data, &len));
    if (!data)
        return;
    text_config cfg = cfg_none();
    int opened = 0, rejected = 0;
    for (int it = 0; it < 300; it++) {
        char *d = malloc(len);
        memcpy(d, data, len);
        int flips = 1 + (int)(rnd() % 4);
        for (int f = 0; f < flips; f++) {
            size_t at = 80 + (size_t)(rnd() % (len - 80));
            d[at] = (char)(rnd() & 0xff);
        }
        if (it % 10 == 0) {     /* header fields too (counts, sizes) */
            size_t at = 8 + (size_t)(rnd() % 56);
            d[at] = (char)(rnd() & 0xff);
        }
        uint64_t sum = cairn_hash64(d + 80, len - 80);
        memcpy(d + 72, &sum, 8);    /* seg_header.checksum */
        FILE *fp = fopen(path, "wb");
        fwrite(d, 1, len, fp);
        fclose(fp);
        free(d);
        bm25_index *ix = NULL;
        if (bm25_open(ixdir, &cfg, &ix, NULL) != CAIRN_OK) {
            rejected++;
            continue;
        }
        opened++;
        bm25_params p;
        bm25_params_default(&p);
        for (int qn = 0; qn < 10; qn++) {
            bm25_query q;
            random_query(&q);
            bm25_hit h[101];
            size_t n;
            size_t k = qn % 2 ? 10 : 100;
            cairn_status st = bm25_search(ix, &q, &p, NULL, k, h, &n, NULL);
            CHECK(st == CAIRN_OK || st == CAIRN_ERR_CORRUPT);
            st = bm25_search_exhaustive(ix, &q, &p, NULL, k, h, &n);
            CHECK(st == CAIRN_OK || st == CAIRN_ERR_CORRUPT);
            uint64_t nbits = 512;
            uint64_t bits[8];
            for (int b = 0; b < 8; b++)
                bits[b] = rnd() & rnd() & rnd();
            bm25_allowed al = {bits, nbits};
            st = bm25_search(ix, &q, &p, &al, k, h, &n, NULL);
            CHECK(st == CAIRN_OK || st == CAIRN_ERR_CORRUPT);
            bm25_query_free(&q);
        }
        bm25_close(ix);
    }
    fprintf(stderr, "hostile segments: %d opened, %d rejected\n", opened, rejected);
    CHECK(opened > 0 && rejected > 0);
    cairn_free(data);
}

static void test_reader_during_merges(void)
{
    /* A child commits many small segments (each commit may merge and delete
     * files); the parent keeps opening and searching. Every open must see a
     * complete committed state: a segment deleted under it is retried. */
    const char *dir = t_tmpdir("bm25_conc");
    char ixdir[1100];
    snprintf(ixdir, sizeof ixdir, "%s/index", dir);
    build(ixdir, 200, 200, NULL);
    pid_t pid = fork();
    if (pid == 0) {
        text_config cfg = cfg_none();
        bm25_index *ix;
        if (bm25_open(ixdir, &cfg, &ix, NULL) != CAIRN_OK)
            _exit(1);
        char buf[2048];
        for (int c = 0; c < 60; c++) {
            bm25_writer *w;
            if (bm25_writer_open(ix, &w) != CAIRN_OK)
                _exit(2);
            uint64_t id = bm25_hwm(ix);
            for (int i = 0; i < 20; i++) {
                make_doc(buf, sizeof buf, 40);
                bm25_field f = {buf, strlen(buf), 1};
                if (bm25_writer_add(w, ++id, &f, 1) != CAIRN_OK)
                    _exit(3);
            }
            bm25_writer_delete(w, 1 + rnd() % id);
            if (bm25_writer_commit(w, id, (uint64_t)c + 1) != CAIRN_OK)
                _exit(4);
            bm25_writer_free(w);
        }
        bm25_close(ix);
        _exit(0);
    }
    text_config cfg = cfg_none();
    int opens = 0, failures = 0;
    uint64_t last = 0;
    for (;;) {
        int status;
        bool done = waitpid(pid, &status, WNOHANG) == pid;
        bm25_index *ix;
        if (bm25_open(ixdir, &cfg, &ix, NULL) != CAIRN_OK) {
            fprintf(stderr, "open failed: %s\n", cairn_last_error());
            failures++;
        } else {
            opens++;
            CHECK(bm25_hwm(ix) >= last);     /* states only move forward */
            last = bm25_hwm(ix);
            failures += check_queries(ix, 2, NULL, "concurrent") != 0;
            bm25_close(ix);
        }
        if (done) {
            CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
            break;
        }
    }
    CHECK_EQ_INT(failures, 0);
    CHECK(opens > 0);
}


/* Document-level scoring (bm25_search_groups) against a brute-force
 * document BM25 computed from the words put in: tf summed over a document's
 * live chunks (title field weighted), lengths summed, N and df over
 * documents; tombstoned and disallowed chunks do not count for tf. */
#define G_CHUNKS 900
#define G_VOCAB 60
static void test_groups_reference(void)
{
    const char *dir = t_tmpdir("bm25_groups");
    char ixdir[1100];
    snprintf(ixdir, sizeof ixdir, "%s/index", dir);
    text_config cfg = cfg_none();
    bm25_index *ix;
    CHECK_OK(bm25_open(ixdir, &cfg, &ix, NULL));
    static uint16_t counts[G_CHUNKS + 1][G_VOCAB];
    static uint32_t len[G_CHUNKS + 1];
    static int32_t of[G_CHUNKS + 1];
    static bool dead[G_CHUNKS + 1];
    memset(counts, 0, sizeof counts);
    char *buf = malloc(8192);
    uint32_t n_groups = 0;
    int left = 0;
    bm25_set_flush_postings(4000);  /* several segments, groups across them */
    for (int half = 0; half < 2; half++) {
        bm25_writer *w;
        CHECK_OK(bm25_writer_open(ix, &w));
        for (int id = 1 + half * G_CHUNKS / 2; id <= (half + 1) * G_CHUNKS / 2; id++) {
            if (left == 0) {
                left = 1 + (int)(rnd() % 6);
                n_groups++;
            }
            left--;
            of[id] = (int32_t)n_groups - 1;
            size_t n = 0;
            int nw = 1 + (int)(rnd() % 40);
            for (int i = 0; i < nw; i++) {
                int wi = (int)(rnd() % 7 == 0 ? rnd() % G_VOCAB : rnd() % 8);
                n += (size_t)word(wi, buf + n);
                buf[n++] = ' ';
                counts[id][wi]++;
            }
            buf[n] = 0;
            len[id] = (uint32_t)nw;
            char tw[16];
            int tl = word(G_VOCAB - 1, tw);
            bool title = rnd() % 3 == 0;
            if (title) {
                counts[id][G_VOCAB - 1] += 2;
                len[id] += 2;
            }
            bm25_field f[2] = {{buf, n, 1}, {tw, (size_t)tl, 2}};
            CHECK_OK(bm25_writer_add(w, (uint64_t)id, f, title ? 2 : 1));
        }
        for (int i = 0; i < 40; i++) {
            int id = 1 + (int)(rnd() % ((half + 1) * G_CHUNKS / 2));
            CHECK_OK(bm25_writer_delete(w, (uint64_t)id));
            dead[id] = true;
        }
        CHECK_OK(bm25_writer_commit(w, (uint64_t)(half + 1) * G_CHUNKS / 2, 40u * (half + 1)));
        bm25_writer_free(w);
    }
    bm25_set_flush_postings(0);
    free(buf);
    CHECK(bm25_n_segments(ix) >= 2);
    of[0] = -1;
    bm25_groups *g;
    CHECK_OK(bm25_groups_new(ix, of, G_CHUNKS + 1, n_groups, &g));
    size_t nbits = G_CHUNKS + 1;
    size_t count;
    bm25_params p;
    bm25_params_default(&p);
    static double dtf[G_CHUNKS][G_VOCAB], dlen[G_CHUNKS], want[G_CHUNKS];
    static bool has[G_CHUNKS];
    bm25_group_hit *got = calloc(n_groups, sizeof *got);
    int fails = 0;
    for (int round = 0; round < 60; round++) {
        uint64_t *bits = round % 3 == 2 ? make_allowed(nbits, 0.3, &count) : NULL;
        bm25_allowed al = {bits, nbits};
        /* stats: N and lengths over live chunks; tf over allowed live chunks */
        memset(dtf, 0, sizeof dtf);
        memset(dlen, 0, sizeof dlen);
        memset(has, 0, sizeof has);
        double N = 0, total = 0;
        for (int id = 1; id <= G_CHUNKS; id++) {
            if (dead[id])
                continue;
            int d = of[id];
            if (!has[d])
                N++;
            has[d] = true;
            dlen[d] += len[id];
            total += len[id];
            for (int t = 0; t < G_VOCAB; t++)
                dtf[d][t] += counts[id][t];
        }
        double avg = total / N;
        bm25_query q = {0};
        int qn = 1 + (int)(rnd() % 5);
        double qw[G_VOCAB] = {0};
        char w[16];
        for (int i = 0; i < qn; i++) {
            int t = (int)(rnd() % G_VOCAB);
            CHECK_OK(bm25_query_add(&q, w, (size_t)word(t, w), 1.0f));
            qw[t] += 1;
        }
        for (uint32_t d = 0; d < n_groups; d++)
            want[d] = 0;
        for (int t = 0; t < G_VOCAB; t++) {
            if (qw[t] == 0)
                continue;
            double df = 0;
            for (uint32_t d = 0; d < n_groups; d++)
                df += dtf[d][t] > 0;
            double idf = log(1 + (N - df + 0.5) / (df + 0.5));
            for (uint32_t d = 0; d < n_groups; d++)
                if (dtf[d][t] > 0)
                    want[d] += qw[t] * idf * (p.k1 + 1) * dtf[d][t] /
                               (dtf[d][t] + p.k1 * (1 - p.b + p.b * dlen[d] / avg));
        }
        size_t ng;
        CHECK_OK(bm25_search_groups(ix, g, &q, &p, 0, bits ? &al : NULL, n_groups, got, &ng));
        /* returned: the documents with an allowed live chunk holding a query term */
        static bool eligible[G_CHUNKS];
        memset(eligible, 0, sizeof eligible);
        for (int id = 1; id <= G_CHUNKS; id++) {
            bool allowed = !bits || ((bits[id >> 6] >> (id & 63)) & 1);
            for (int t = 0; allowed && !dead[id] && t < G_VOCAB; t++)
                if (qw[t] > 0 && counts[id][t] > 0)
                    eligible[of[id]] = true;
        }
        size_t nwant = 0;
        for (uint32_t d = 0; d < n_groups; d++)
            nwant += eligible[d];
        if (ng != nwant)
            fails++;
        for (size_t i = 0; i < ng; i++) {
            uint32_t d = got[i].group;
            bool allowed = !bits || ((bits[got[i].best_chunk >> 6] >> (got[i].best_chunk & 63)) & 1);
            if (d >= n_groups || !eligible[d] || !allowed || fabs(got[i].score - want[d]) > 1e-4 * want[d] + 1e-5 ||
                (i > 0 && got[i].score > got[i - 1].score) || of[got[i].best_chunk] != (int32_t)d ||
                dead[got[i].best_chunk]) {
                fails++;
                break;
            }
        }
        bm25_query_free(&q);
        cairn_free(bits);
    }
    CHECKF(fails == 0, "grouped scores differ from the reference in %d of 60 queries", fails);
    /* the best chunk weight adds the chunk's own score */
    bm25_query q = {0};
    CHECK_OK(bm25_query_add(&q, "zqa", 3, 1));
    size_t n0, n1;
    bm25_group_hit *a = calloc(n_groups, sizeof *a);
    CHECK_OK(bm25_search_groups(ix, g, &q, &p, 0, NULL, 5, got, &n0));
    CHECK_OK(bm25_search_groups(ix, g, &q, &p, 1, NULL, n_groups, a, &n1));
    bm25_hit best[1];
    size_t nb;
    CHECK_OK(bm25_search(ix, &q, &p, NULL, 1, best, &nb, NULL));
    CHECK(n0 == 5 && n1 >= 5 && nb == 1);
    bool found = false;
    for (size_t i = 0; i < n1; i++)
        if (a[i].best_chunk == best[0].chunk_id) {
            for (size_t j = 0; j < n0; j++)
                if (got[j].group == a[i].group)
                    CHECK_NEAR(a[i].score, got[j].score + best[0].score, 1e-3);
            found = true;
        }
    CHECK(found);
    bm25_query_free(&q);
    free(a);
    free(got);
    bm25_groups_free(g);
    bm25_close(ix);
}

/* The memory budget: a writer that flushes many small segments in one
 * commit (then merges them, streaming) answers exactly like one that holds
 * everything in one segment; so does the fully merged (optimized) index. */
static void index_corpus(const char *dir, size_t flush_bytes, int ndocs, bool deletes)
{
    uint64_t saved = rng;
    rng = 0x1234567887654321ull;    /* the same corpus every time */
    text_config cfg = cfg_none();
    bm25_index *ix;
    CHECK_OK(bm25_open(dir, &cfg, &ix, NULL));
    bm25_set_flush_bytes(flush_bytes);
    bm25_writer *w;
    CHECK_OK(bm25_writer_open(ix, &w));
    char *buf = malloc(8192);
    for (int id = 1; id <= ndocs; id++) {
        make_doc(buf, 8192, 3 + (int)(rnd() % 200));
        bm25_field f[2] = {{buf, strlen(buf), 1}, {"zqtitle", 7, 2}};
        CHECK_OK(bm25_writer_add(w, (uint64_t)id, f, id % 3 ? 1 : 2));
    }
    for (int i = 0; deletes && i < ndocs / 25; i++)
        CHECK_OK(bm25_writer_delete(w, 1 + rnd() % (uint64_t)ndocs));
    CHECK_OK(bm25_writer_commit(w, (uint64_t)ndocs, 1));
    bm25_writer_free(w);
    bm25_set_flush_bytes(0);
    free(buf);
    bm25_close(ix);
    rng = saved;
}

static void same_results(const bm25_index *a, const bm25_index *b, const char *what)
{
    bm25_params p;
    bm25_params_default(&p);
    bm25_hit ha[50], hb[50];
    int fails = 0;
    for (int i = 0; i < 200; i++) {
        bm25_query q;
        random_query(&q);
        size_t na, nb;
        CHECK_OK(bm25_search(a, &q, &p, NULL, 50, ha, &na, NULL));
        CHECK_OK(bm25_search(b, &q, &p, NULL, 50, hb, &nb, NULL));
        fails += compare(ha, na, hb, nb, what);
        bm25_query_free(&q);
    }
    CHECKF(fails == 0, "%s: %d of 200 queries differ", what, fails);
}

static void test_flush_budget_segments(void)
{
    const char *dir = t_tmpdir("bm25_flush");
    char path[4][1100];
    for (int i = 0; i < 4; i++)
        snprintf(path[i], sizeof path[i], "%s/ix%d", dir, i);
    index_corpus(path[0], 0, 5000, false);             /* default budget: one segment */
    index_corpus(path[1], 200 << 10, 5000, false);     /* 200 KB: many flushes, merged down */
    text_config cfg = cfg_none();
    bm25_index *a, *b;
    CHECK_OK(bm25_open(path[0], &cfg, &a, NULL));
    CHECK_OK(bm25_open(path[1], &cfg, &b, NULL));
    CHECK_EQ_INT(bm25_n_segments(a), 1);
    CHECKF(bm25_n_segments(b) >= 2 && bm25_n_segments(b) <= 8, "%zu segments", bm25_n_segments(b));
    CHECK_EQ_INT(bm25_n_docs(a), bm25_n_docs(b));
    CHECK_EQ_INT(bm25_total_len(a), bm25_total_len(b));
    CHECK_EQ_INT(bm25_df(a, "zqa", 3), bm25_df(b, "zqa", 3));
    same_results(a, b, "flushed segments vs one");
    bm25_close(a);
    bm25_close(b);
    /* with deletions, fully merged (streaming merge drops the tombstones) */
    index_corpus(path[2], 0, 5000, true);
    index_corpus(path[3], 200 << 10, 5000, true);
    CHECK_OK(bm25_open(path[2], &cfg, &a, NULL));
    CHECK_OK(bm25_open(path[3], &cfg, &b, NULL));
    CHECK(bm25_n_segments(b) >= 2);
    bm25_writer *w;
    CHECK_OK(bm25_writer_open(a, &w));
    CHECK_OK(bm25_writer_optimize(w));
    bm25_writer_free(w);
    CHECK_OK(bm25_writer_open(b, &w));
    CHECK_OK(bm25_writer_optimize(w));
    bm25_writer_free(w);
    CHECK_EQ_INT(bm25_n_segments(a), 1);
    CHECK_EQ_INT(bm25_n_segments(b), 1);
    CHECK(bm25_n_docs(a) < 5000);
    CHECK_EQ_INT(bm25_n_docs(a), bm25_n_docs(b));
    CHECK_EQ_INT(bm25_df(a, "zqa", 3), bm25_df(b, "zqa", 3));
    same_results(a, b, "optimized, with deletions");
    bm25_close(a);
    bm25_close(b);
}

int main(void)
{
    RUN(test_fast_equals_exhaustive);
    RUN(test_tiny_filter_full_topk);
    RUN(test_deletes_and_optimize);
    RUN(test_crash_leftovers_and_lock);
    RUN(test_corruption);
    RUN(test_analyzer_mismatch);
    RUN(test_alloc_failures);
    RUN(test_hostile_segments);
    RUN(test_reader_during_merges);
    RUN(test_groups_reference);
    RUN(test_flush_budget_segments);
    return t_done();
}
