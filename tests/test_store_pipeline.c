/* test_store_pipeline.c — the ingest pipeline against a real store: adds,
 * unchanged files, edits, sidecars and tags, skipped files, and an
 * allocation failure at every point leaving the store consistent and a
 * rerun completing the job. */
#include "t.h"
#include "ingest/pipeline.h"
#include <sqlite3.h>
#include <fcntl.h>
#include <sys/stat.h>

static char root[1024], corpus[1100], sdir[1100];

static void write_file(const char *rel, const char *text)
{
    char p[1300];
    snprintf(p, sizeof p, "%s/%s", corpus, rel);
    char *slash = strrchr(p, '/');
    *slash = 0;
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", p);
    CHECK(system(cmd) == 0);
    *slash = '/';
    FILE *f = fopen(p, "w");
    CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void setup(const char *name)
{
    snprintf(root, sizeof root, "%s", t_tmpdir(name));
    snprintf(corpus, sizeof corpus, "%s/c", root);
    snprintf(sdir, sizeof sdir, "%s/.cairn", root);
    CHECK_OK(store_create(sdir));
    write_file("a.md", "---\ntags: [x, y]\n---\n# A\n\nFirst part of a. It has sentences.\n\n## Sub\n\nMore text.\n");
    write_file("b.txt", "Plain b text.\n\nSecond paragraph of b.\n");
    write_file("b.txt.meta.json", "{\"owner\": \"ann\", \"n\": 3}");
    write_file("d/c.py", "def f():\n    return 1\n");
    write_file("d/e.txt", "Another file in a directory with several words in it.\n");
}

typedef struct counter { int events[8]; } counter;

static void on_event(void *ctx, const pipe_event *ev)
{
    counter *c = ctx;
    c->events[ev->outcome]++;
}

static cairn_status run(pipe_stats *out, counter *c, const meta_list *tags)
{
    store *s;
    CAIRN_TRY(store_open(sdir, &s));
    pipe_options po = {0};
    ingest_options_default(&po.ingest);
    chunk_options_default(&po.chunk);
    po.on_event = on_event;
    po.event_ctx = c;
    po.tags = tags;
    cairn_status st = store_next_sync_gen(s, &po.sync_gen);
    pipeline *p = NULL;
    if (st == CAIRN_OK)
        st = pipeline_new(s, &po, &p);
    if (st == CAIRN_OK)
        st = pipeline_add_path(p, corpus);
    if (st == CAIRN_OK)
        st = pipeline_finish(p);
    if (p && out)
        *out = *pipeline_stats(p);
    pipeline_free(p);
    store_close(s);
    return st;
}

static long long q(const char *sql)
{
    char db[1300];
    snprintf(db, sizeof db, "%s/store.db", sdir);
    sqlite3 *h;
    long long v = -1;
    if (sqlite3_open(db, &h) == SQLITE_OK) {
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_int64(st, 0);
        else
            fprintf(stderr, "query failed: %s: %s\n", sql, sqlite3_errmsg(h));
        sqlite3_finalize(st);
    }
    sqlite3_close(h);
    return v;
}

static void check_consistent(void)
{
    CHECK_EQ_INT(q("select count(*) from docs d where d.nchunks != (select count(*) from chunks c where c.doc_id = d.id)"), 0);
    CHECK_EQ_INT(q("select count(*) from chunks c where not exists (select 1 from docs d where d.id = c.doc_id)"), 0);
    CHECK_EQ_INT(q("select count(*) from doc_meta m where not exists (select 1 from docs d where d.id = m.doc_id)"), 0);
    CHECK_EQ_INT(q("select count(*) from files f where f.state = 1 and f.ndocs != (select count(*) from docs d where d.file_id = f.id)"), 0);
}

static void test_add_edit_unchanged(void)
{
    setup("pipe_basic");
    counter c = {0};
    pipe_stats ps;
    CHECK_OK(run(&ps, &c, NULL));
    CHECK_EQ_INT(ps.files_added, 4);
    CHECK_EQ_INT(c.events[PIPE_ADDED], 4);
    CHECK_EQ_INT(q("select count(*) from docs"), 4);
    CHECK_EQ_INT(q("select count(*) from doc_meta where key = 'owner' and s = 'ann'"), 1);
    CHECK_EQ_INT(q("select count(*) from doc_meta where key = 'tags' and type = 5"), 2);
    CHECK_EQ_INT(q("select count(*) from doc_meta where key = 'language' and s = 'python'"), 1);
    check_consistent();
    long long chunks = q("select count(*) from chunks");
    long long maxid = q("select max(id) from chunks");

    /* unchanged */
    memset(&c, 0, sizeof c);
    CHECK_OK(run(&ps, &c, NULL));
    CHECK_EQ_INT(ps.files_unchanged, 4);
    CHECK_EQ_INT(ps.bytes_read, 0);
    CHECK_EQ_INT(q("select max(id) from chunks"), maxid);

    /* touched but identical content: read and hashed, still unchanged */
    char p[1300];
    snprintf(p, sizeof p, "%s/b.txt", corpus);
    struct timespec ts[2] = {{0, UTIME_OMIT}, {12345, 0}};
    CHECK(utimensat(AT_FDCWD, p, ts, 0) == 0);
    CHECK_OK(run(&ps, &c, NULL));
    CHECK_EQ_INT(ps.files_unchanged, 4);
    CHECK(ps.bytes_read > 0);
    CHECK_EQ_INT(q("select max(id) from chunks"), maxid);

    /* sidecar change: metadata updated, chunks kept */
    write_file("b.txt.meta.json", "{\"owner\": \"bob\"}");
    CHECK_OK(run(&ps, &c, NULL));
    CHECK_EQ_INT(ps.files_updated, 1);
    CHECK_EQ_INT(q("select count(*) from doc_meta where key = 'owner' and s = 'bob'"), 1);
    CHECK_EQ_INT(q("select count(*) from doc_meta where key = 'n'"), 0);
    CHECK_EQ_INT(q("select max(id) from chunks"), maxid);
    CHECK_EQ_INT(q("select count(*) from chunk_deletions"), 0);

    /* tags apply to every document */
    meta_list tags = {0};
    CHECK_OK(meta_set_parsed(&tags, "team", "search"));
    CHECK_OK(run(&ps, &c, &tags));
    CHECK_EQ_INT(ps.files_updated, 4);
    CHECK_EQ_INT(q("select count(*) from doc_meta where key = 'team'"), 4);
    CHECK_EQ_INT(q("select max(id) from chunks"), maxid);   /* no chunk re-derived */
    meta_list_free(&tags);

    /* edit: only the changed section's chunk is replaced */
    write_file("a.md", "---\ntags: [x, y]\n---\n# A\n\nFirst part of a. It has sentences.\n\n## Sub\n\nChanged text.\n");
    CHECK_OK(run(&ps, &c, NULL));
    CHECK_EQ_INT(ps.chunks_added, 1);
    CHECK_EQ_INT(ps.chunks_removed, 1);
    CHECK_EQ_INT(q("select count(*) from chunks"), chunks);
    CHECK_EQ_INT(q("select count(*) from chunk_deletions"), 1);

    /* a file turning binary is skipped and its documents removed */
    write_file("d/e.txt", "bin\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0e\x0f\x10\x11\x12\x13\x14\x15");
    memset(&c, 0, sizeof c);
    CHECK_OK(run(&ps, &c, NULL));
    CHECK_EQ_INT(ps.files_skipped, 1);
    CHECK_EQ_INT(q("select count(*) from docs where path like '%e.txt'"), 0);
    CHECK_EQ_INT(q("select state from files where path like '%e.txt'"), 2);
    check_consistent();
}

static void test_alloc_failures(void)
{
    setup("pipe_alloc");
    /* reference run */
    counter c = {0};
    CHECK_OK(run(NULL, &c, NULL));
    long long ref_chunks = q("select count(*) from chunks");
    long long ref_meta = q("select count(*) from doc_meta");
    int failures = 0;
    for (long n = 0; n < 400; n += 4) {
        store *s;
        CHECK_OK(store_open(sdir, &s));
        CHECK_OK(store_remove_under(s, "", NULL, NULL));
        store_close(s);
        cairn_alloc_fail_after(n, true);
        cairn_status st = run(NULL, &c, NULL);
        cairn_alloc_fail_after(-1, false);
        if (st != CAIRN_OK)
            failures++;
        check_consistent();
        /* a clean rerun completes the job */
        CHECK_OK(run(NULL, &c, NULL));
        check_consistent();
        CHECK_EQ_INT(q("select count(*) from chunks"), ref_chunks);
        CHECK_EQ_INT(q("select count(*) from doc_meta"), ref_meta);
        CHECK_EQ_INT(q("select count(*) from files where state != 1"), 0);
    }
    CHECK(failures > 10);
}

int main(void)
{
    RUN(test_add_edit_unchanged);
    RUN(test_alloc_failures);
    return t_done();
}
