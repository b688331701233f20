/* test_sync.c — freshness: a randomized sequence of edits, appends,
 * truncations, renames, moves, deletions and new files, with a sync after
 * each step (sometimes after several), must leave the store holding exactly
 * the current content: every file's current version is findable, no stale
 * version and no duplicate chunk remains, deleted files are gone, moves keep
 * their chunk ids. */
#include "t.h"
#include "sync/sync.h"
#include <sqlite3.h>
#include <sys/stat.h>

#define MAXF 40

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void) { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return rng; }
static int rn(int n) { return (int)(rnd() % (uint64_t)n); }

typedef struct file_model {
    bool live;
    char rel[136];      /* path relative to the root */
    int id;             /* unique marker: word "fileNNN" */
    int version;        /* marker "verNNNvMMM" of the current content */
    int lines;
} file_model;

static file_model files[MAXF];
static char root[1200], sdir[1300];
static int next_id = 1;

static const char *words[] = {"river", "stone", "cloud", "maple", "orbit", "lantern", "copper", "meadow"};

static void write_file_at(file_model *f, bool append, const char *path)
{
    FILE *fp = fopen(path, append ? "a" : "w");
    CHECK(fp != NULL);
    if (!fp)
        return;
    int n = append ? 1 + rn(3) : 1 + rn(6);
    if (!append)
        f->lines = 0;
    for (int i = 0; i < n; i++) {
        fprintf(fp, "file%03d ver%03dv%03d %s %s %s.\n\n", f->id, f->id, f->version, words[rn(8)], words[rn(8)],
                words[rn(8)]);
        f->lines++;
    }
    fclose(fp);
}

static void write_file(file_model *f, bool append)
{
    char path[1500];
    snprintf(path, sizeof path, "%s/%s", root, f->rel);
    write_file_at(f, append, path);
}

static void random_dir(char *out, size_t cap)
{
    static const char *dirs[] = {"", "a/", "a/b/", "c/"};
    snprintf(out, cap, "%s", dirs[rn(4)]);
}

static void op_random(void)
{
    int k = rn(7);
    int i = rn(MAXF);
    file_model *f = &files[i];
    char path[1500], path2[1500];
    if (!f->live || k == 0) {
        /* create */
        if (f->live)
            return;
        char dir[16];
        random_dir(dir, sizeof dir);
        f->id = next_id++;
        f->version = 1;
        snprintf(f->rel, sizeof f->rel, "%sf%03d.txt", dir, f->id);
        f->live = true;
        write_file(f, false);
        return;
    }
    snprintf(path, sizeof path, "%s/%s", root, f->rel);
    switch (k) {
    case 1: /* rewrite */
        f->version++;
        write_file(f, false);
        break;
    case 2: /* append: all lines now carry the new version marker */
        f->version++;
        write_file(f, false);
        write_file(f, true);
        break;
    case 3: /* truncate to empty */
        f->version++;
        CHECK(truncate(path, 0) == 0);
        f->lines = 0;
        break;
    case 4: { /* rename or move (content unchanged) */
        char dir[16];
        random_dir(dir, sizeof dir);
        char rel[128];
        snprintf(rel, sizeof rel, "%sm%03d_%d.txt", dir, f->id, rn(1000));
        snprintf(path2, sizeof path2, "%s/%s", root, rel);
        CHECK(rename(path, path2) == 0);
        snprintf(f->rel, sizeof f->rel, "%s", rel);
        break;
    }
    case 5: /* delete */
        CHECK(unlink(path) == 0);
        f->live = false;
        break;
    default: /* editor save: write a temp file, rename over the original */
        f->version++;
        snprintf(path2, sizeof path2, "%s/%s.tmp~", root, f->rel);
        write_file_at(f, false, path2);
        CHECK(rename(path2, path) == 0);
        break;
    }
}

static int64_t count_sql(sqlite3 *db, const char *sql, const char *arg)
{
    sqlite3_stmt *st = NULL;
    int64_t n = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        if (arg)
            sqlite3_bind_text(st, 1, arg, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(st) == SQLITE_ROW)
            n = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    return n;
}

static void verify(store *s, int step)
{
    sqlite3 *db = store_db(s);
    int live = 0;
    char pat[64], path[200];
    for (int i = 0; i < MAXF; i++) {
        file_model *f = &files[i];
        if (!f->live)
            continue;
        live++;
        snprintf(path, sizeof path, "data/%s", f->rel);
        int64_t docs = count_sql(db, "SELECT count(*) FROM docs WHERE path = ?1", path);
        CHECKF(docs == 1, "step %d: %s: %lld documents", step, path, (long long)docs);
        /* current version present iff the file has content; no older version anywhere */
        snprintf(pat, sizeof pat, "%%ver%03dv%03d %%", f->id, f->version);
        int64_t cur = count_sql(db, "SELECT count(*) FROM chunks WHERE text LIKE ?1", pat);
        CHECKF(f->lines ? cur >= 1 : cur == 0, "step %d: %s v%d: %lld chunks with the current version", step, path,
               f->version, (long long)cur);
        snprintf(pat, sizeof pat, "%%ver%03dv%%", f->id);
        int64_t any = count_sql(db, "SELECT count(*) FROM chunks WHERE text LIKE ?1", pat);
        CHECKF(any == cur, "step %d: %s: %lld chunks of file, %lld of the current version (stale chunks)", step, path,
               (long long)any, (long long)cur);
        /* the chunk lives in the document at the current path */
        int64_t here = count_sql(db, "SELECT count(*) FROM chunks c JOIN docs d ON d.id = c.doc_id WHERE d.path = ?1", path);
        CHECKF(here == cur, "step %d: %s: %lld chunks under the path, %lld expected", step, path, (long long)here,
               (long long)cur);
    }
    /* deleted files: no chunk of theirs remains */
    for (int id = 1; id < next_id; id++) {
        bool alive = false;
        for (int i = 0; i < MAXF; i++)
            alive |= files[i].live && files[i].id == id;
        if (alive)
            continue;
        snprintf(pat, sizeof pat, "%%ver%03dv%%", id);
        int64_t n = count_sql(db, "SELECT count(*) FROM chunks WHERE text LIKE ?1", pat);
        CHECKF(n == 0, "step %d: deleted file %d still has %lld chunks", step, id, (long long)n);
    }
    int64_t ndocs = count_sql(db, "SELECT count(*) FROM docs", NULL);
    CHECKF(ndocs == live, "step %d: %lld documents, %d live files", step, (long long)ndocs, live);
    int64_t nfiles = count_sql(db, "SELECT count(*) FROM files", NULL);
    CHECKF(nfiles == live, "step %d: %lld file rows, %d live files", step, (long long)nfiles, live);
}

/* A fresh project `name` with a data/ root prepared by the shell command
 * `setup` (each @ in it stands for the root), an empty store, and default
 * sync options. NULL when something failed (already reported). */
static store *fresh_project(const char *name, const char *setup, sync_options *o)
{
    const char *dir = t_tmpdir(name);
    snprintf(root, sizeof root, "%s/data", dir);
    snprintf(sdir, sizeof sdir, "%s/.cairn", dir);
    cairn_buf cmd;
    cairn_buf_init(&cmd, 0);
    for (const char *c = setup; *c; c++)
        CHECK_OK(*c == '@' ? cairn_buf_puts(&cmd, root) : cairn_buf_putc(&cmd, *c));
    CHECK(system(cmd.data) == 0);
    cairn_buf_free(&cmd);
    CHECK_OK(store_create(sdir));
    store *s = NULL;
    CHECK_OK(store_open(sdir, &s));
    memset(o, 0, sizeof *o);
    ingest_options_default(&o->pipe.ingest);
    chunk_options_default(&o->pipe.chunk);
    return s;
}

static void test_random_sequences(void)
{
    sync_options o;
    store *s = fresh_project("sync_random", "mkdir -p '@/a/b' '@/c'", &o);
    if (!s)
        return;
    o.pipe.chunk.max_tokens = 24; /* several chunks per file */
    o.pipe.chunk.overlap_tokens = 4;
    const char *paths[1] = {root};
    sync_report rep;
    size_t moved = 0;
    int failures0 = t_failures;
    for (int step = 0; step < 120; step++) {
        int ops = 1 + (rn(4) == 0 ? rn(8) : 0);   /* sometimes a burst before the sync */
        for (int k = 0; k < ops; k++)
            op_random();
        CHECK_OK(sync_run(s, paths, 1, &o, &rep));
        moved += rep.moved;
        verify(s, step);
        if (t_failures > failures0)
            break;
    }
    CHECKF(moved > 0, "the sequence exercised moves");
    /* a second sync of an unchanged tree changes nothing */
    CHECK_OK(sync_run(s, paths, 1, &o, &rep));
    CHECK(rep.added == 0 && rep.updated == 0 && rep.removed == 0 && rep.moved == 0);
    store_close(s);
}

static void test_move_keeps_chunk_ids(void)
{
    sync_options o;
    store *s = fresh_project("sync_move", "mkdir -p '@/x' && printf 'one two three\\n\\nfour five six\\n' > '@/x/a.txt'", &o);
    if (!s)
        return;
    char cmd[6000];
    const char *paths[1] = {root};
    sync_report rep;
    CHECK_OK(sync_run(s, paths, 1, &o, &rep));
    CHECK_EQ_INT(rep.added, 1);
    int64_t before = count_sql(store_db(s), "SELECT max(id) FROM chunks", NULL);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/y' && mv '%s/x/a.txt' '%s/y/b.txt'", root, root, root);
    CHECK(system(cmd) == 0);
    CHECK_OK(sync_run(s, paths, 1, &o, &rep));
    CHECK_EQ_INT(rep.moved, 1);
    CHECK_EQ_INT(rep.added, 0);
    CHECK_EQ_INT(rep.removed, 0);
    CHECK_EQ_INT(count_sql(store_db(s), "SELECT max(id) FROM chunks", NULL), before); /* nothing re-derived */
    CHECK_EQ_INT(count_sql(store_db(s), "SELECT count(*) FROM docs WHERE path = 'data/y/b.txt'", NULL), 1);
    CHECK_EQ_INT(count_sql(store_db(s), "SELECT count(*) FROM doc_meta WHERE key = 'path' AND s = 'data/y/b.txt'", NULL), 1);
    CHECK_EQ_INT(count_sql(store_db(s), "SELECT count(*) FROM chunk_deletions", NULL), 0);
    /* deleting the directory removes everything under it */
    snprintf(cmd, sizeof cmd, "rm -rf '%s/y'", root);
    CHECK(system(cmd) == 0);
    CHECK_OK(sync_run(s, paths, 1, &o, &rep));
    CHECK_EQ_INT(rep.removed, 1);
    CHECK_EQ_INT(count_sql(store_db(s), "SELECT count(*) FROM chunks", NULL), 0);
    store_close(s);
}

static void test_expiry(void)
{
    sync_options o;
    store *s = fresh_project("sync_expiry",
                             "mkdir -p '@' && printf -- '---\nexpires: 2020-01-01\n---\nold news\n' > '@/old.md' && "
                             "printf -- '---\nexpires: 2999-01-01\n---\nfresh news\n' > '@/new.md' && echo plain > '@/p.txt'",
                             &o);
    if (!s)
        return;
    char cmd[6000];
    const char *paths[1] = {root};
    sync_report rep;
    CHECK_OK(sync_run(s, paths, 1, &o, &rep));
    CHECK_EQ_INT(rep.expired, 1);
    CHECK_EQ_INT(count_sql(store_db(s), "SELECT count(*) FROM docs", NULL), 2);
    CHECK_EQ_INT(count_sql(store_db(s), "SELECT count(*) FROM chunks WHERE text LIKE '%old news%'", NULL), 0);
    /* a TTL: documents expire ttl after ingest */
    o.pipe.ttl_s = 1;
    snprintf(cmd, sizeof cmd, "echo changed > '%s/p.txt'", root);
    CHECK(system(cmd) == 0);
    CHECK_OK(sync_run(s, paths, 1, &o, &rep));
    /* options are part of every file's identity: a new TTL re-derives all
     * three files, and the expired one is dropped again */
    CHECK_EQ_INT(rep.updated, 3);
    CHECK_EQ_INT(rep.expired, 1);
    CHECK_EQ_INT(count_sql(store_db(s), "SELECT count(*) FROM docs WHERE expires_at > 0 AND path LIKE '%p.txt'", NULL), 1);
    store_close(s);
}

int main(void)
{
    RUN(test_expiry);
    RUN(test_move_keeps_chunk_ids);
    RUN(test_random_sequences);
    return t_done();
}
