/* repair.c — cairn repair, steps 1-3 (see repair.h): back up the damaged
 * database, salvage the recorded sources row by row, start a fresh store
 * with them and drop the derived index. Re-ingesting is the caller's (sync).
 *
 * Salvage reads with a plain SQLite connection, not store_open: a damaged
 * schema or page must not stop it from reading what is still readable. */
#include "repair/repair.h"
#include "index/bm25.h"
#include "store/store.h"
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct src_row { char *root, *options; int64_t ttl_s; } src_row;

static void salvage_sources(sqlite3 *db, src_row **rows, size_t *n, bool *damaged)
{
    *rows = NULL;
    *n = 0;
    *damaged = false;
    sqlite3_stmt *q = NULL;
    size_t cap = 0;
    if (sqlite3_prepare_v2(db, "SELECT root, options, ttl_s FROM sources ORDER BY id", -1, &q, NULL) != SQLITE_OK) {
        *damaged = true;
        return;
    }
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        const char *r = (const char *)sqlite3_column_text(q, 0), *o = (const char *)sqlite3_column_text(q, 1);
        if (!r)
            continue;
        if (*n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            src_row *nr = cairn_reallocarray(*rows, nc, sizeof *nr);
            if (!nr)
                break;
            *rows = nr;
            cap = nc;
        }
        src_row *x = &(*rows)[*n];
        x->root = cairn_strdup(r);
        x->options = cairn_strdup(o ? o : "");
        x->ttl_s = sqlite3_column_int64(q, 2);
        if (!x->root || !x->options) {
            cairn_free(x->root);
            cairn_free(x->options);
            break;
        }
        (*n)++;
    }
    if (rc != SQLITE_DONE)
        *damaged = true;
    sqlite3_finalize(q);
}

static int64_t count_docs(sqlite3 *db, const char *root_dir, int64_t *without_file)
{
    *without_file = -1;
    sqlite3_stmt *q = NULL;
    int64_t n = -1;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM docs", -1, &q, NULL) == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW)
        n = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    q = NULL;
    /* documents whose file is gone from disk: sync cannot bring them back */
    if (sqlite3_prepare_v2(db, "SELECT DISTINCT path FROM docs", -1, &q, NULL) == SQLITE_OK) {
        int64_t gone = 0;
        int rc;
        while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
            const char *p = (const char *)sqlite3_column_text(q, 0);
            char abs[8192];
            if (!p)
                continue;
            snprintf(abs, sizeof abs, "%s%s%s", p[0] == '/' ? "" : root_dir, p[0] == '/' ? "" : "/", p);
            struct stat sb;
            if (stat(abs, &sb) != 0)
                gone++;
        }
        if (rc == SQLITE_DONE)
            *without_file = gone;
    }
    sqlite3_finalize(q);
    return n;
}

/* Rename path -> path.damaged-TS (and its -wal/-shm along). */
static cairn_status backup(const char *db_path, char *out, size_t n)
{
    char ts[32];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(ts, sizeof ts, "%Y%m%dT%H%M%SZ", &tm);
    for (int k = 0;; k++) {
        int w = k ? snprintf(out, n, "%s.damaged-%s-%d", db_path, ts, k) : snprintf(out, n, "%s.damaged-%s", db_path, ts);
        if (w < 0 || (size_t)w >= n)
            return cairn_fail(CAIRN_ERR_INVALID, "%s: path too long", db_path);
        if (access(out, F_OK) != 0)
            break;
        if (k > 100)
            return cairn_fail(CAIRN_ERR_IO, "%s: too many backups", db_path);
    }
    static const char *const sfx[] = {"-wal", "-shm"};
    for (size_t i = 0; i < CAIRN_ARRAY_LEN(sfx); i++) {
        char a[4400], b[4400];
        snprintf(a, sizeof a, "%s%s", db_path, sfx[i]);
        snprintf(b, sizeof b, "%s%s", out, sfx[i]);
        if (access(a, F_OK) == 0 && cairn_io_rename(a, b) != 0)
            return cairn_fail(CAIRN_ERR_IO, "%s: cannot move it aside: %s", a, strerror(errno));
    }
    if (cairn_io_rename(db_path, out) != 0)
        return cairn_fail(CAIRN_ERR_IO, "%s: cannot move it aside: %s", db_path, strerror(errno));
    return CAIRN_OK;
}

cairn_status store_repair_salvage(const char *store_dir, repair_report *rep)
{
    memset(rep, 0, sizeof *rep);
    rep->old_docs = rep->old_docs_without_file = -1;
    char dbp[4096], root[4096];
    snprintf(dbp, sizeof dbp, "%s/%s", store_dir, STORE_DB_NAME);
    snprintf(root, sizeof root, "%s", store_dir);
    char *slash = strrchr(root, '/');
    if (slash && slash != root)
        *slash = 0;
    src_row *rows = NULL;
    size_t nr = 0;
    if (access(dbp, F_OK) == 0) {
        sqlite3 *db = NULL;
        if (sqlite3_open_v2(dbp, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK) {
            sqlite3_busy_timeout(db, 5000);
            salvage_sources(db, &rows, &nr, &rep->sources_damaged);
            rep->old_docs = count_docs(db, root, &rep->old_docs_without_file);
        } else {
            rep->sources_damaged = true;
        }
        sqlite3_close(db);
        cairn_status st = backup(dbp, rep->backup, sizeof rep->backup);
        if (st != CAIRN_OK) {
            for (size_t i = 0; i < nr; i++) {
                cairn_free(rows[i].root);
                cairn_free(rows[i].options);
            }
            cairn_free(rows);
            return st;
        }
    }
    cairn_status st = store_create(store_dir);
    store *s = NULL;
    if (st == CAIRN_OK)
        st = store_open(store_dir, &s);
    if (st == CAIRN_OK)
        st = store_begin(s);
    for (size_t i = 0; st == CAIRN_OK && i < nr; i++) {
        int64_t id;
        st = store_source_upsert(s, rows[i].root, rows[i].options[0] ? rows[i].options : "{}", rows[i].ttl_s, &id);
        if (st == CAIRN_OK)
            rep->sources++;
    }
    if (st == CAIRN_OK)
        st = store_commit(s);
    store_close(s);
    for (size_t i = 0; i < nr; i++) {
        cairn_free(rows[i].root);
        cairn_free(rows[i].options);
    }
    cairn_free(rows);
    /* chunk ids start over in the new store: the index is rebuilt */
    char ixdir[4300];
    snprintf(ixdir, sizeof ixdir, "%s/index", store_dir);
    struct stat sb;
    if (st == CAIRN_OK && stat(ixdir, &sb) == 0)
        st = bm25_destroy(ixdir);
    return st;
}
