/* sync.c — see sync.h. Per path: list the files on disk, match them against
 * the store's files under the same prefix, turn disappeared+appeared pairs
 * with equal content into moves, let the pipeline add/update/touch the rest,
 * and delete what is gone. */
#include "sync/sync.h"
#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

typedef struct disk_file { char *key; char *fs_path; int64_t size; bool known; } disk_file;
typedef struct gone_file { char *key; int64_t id, size; char hash[33]; bool ok, moved; } gone_file;

typedef struct scan {
    store *s;
    disk_file *d;
    size_t nd, capd;
    gone_file *g;       /* store files under the prefix (then: those not on disk) */
    size_t ng, capg;
} scan;

static cairn_status grow(void **p, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return CAIRN_OK;
    size_t nc = *cap ? *cap * 2 : 64;
    void *q = cairn_reallocarray(*p, nc, elem);
    if (!q)
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory during sync");
    *p = q;
    *cap = nc;
    return CAIRN_OK;
}

static cairn_status on_disk(void *ctx, const char *fs_path, const struct stat *sb)
{
    scan *sc = ctx;
    CAIRN_TRY(grow((void **)&sc->d, &sc->capd, sc->nd, sizeof *sc->d));
    disk_file *f = &sc->d[sc->nd];
    memset(f, 0, sizeof *f);
    CAIRN_TRY(store_path_key(sc->s, fs_path, &f->key));
    if (!(f->fs_path = cairn_strdup(fs_path))) {
        cairn_free(f->key);
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory during sync");
    }
    f->size = (int64_t)sb->st_size;
    sc->nd++;
    return CAIRN_OK;
}

static cairn_status in_store(void *ctx, const store_file *sf)
{
    scan *sc = ctx;
    CAIRN_TRY(grow((void **)&sc->g, &sc->capg, sc->ng, sizeof *sc->g));
    gone_file *g = &sc->g[sc->ng];
    memset(g, 0, sizeof *g);
    if (!(g->key = cairn_strdup(sf->path)))
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory during sync");
    g->id = sf->id;
    g->size = sf->size;
    g->ok = sf->state == STORE_FILE_OK;
    memcpy(g->hash, sf->content_hash, sizeof g->hash);
    sc->ng++;
    return CAIRN_OK;
}

static int cmp_disk(const void *a, const void *b) { return strcmp(((const disk_file *)a)->key, ((const disk_file *)b)->key); }
static int cmp_gone(const void *a, const void *b) { return strcmp(((const gone_file *)a)->key, ((const gone_file *)b)->key); }

static void scan_free(scan *sc)
{
    for (size_t i = 0; i < sc->nd; i++) {
        cairn_free(sc->d[i].key);
        cairn_free(sc->d[i].fs_path);
    }
    for (size_t i = 0; i < sc->ng; i++)
        cairn_free(sc->g[i].key);
    cairn_free(sc->d);
    cairn_free(sc->g);
}

/* Content hash of a file on disk, as the pipeline computes it. */
static cairn_status file_hash(const char *fs_path, size_t cap, char out[33])
{
    char *data = NULL;
    size_t len = 0;
    CAIRN_TRY(cairn_file_read_all(fs_path, cap, &data, &len));
    cairn_hash128_hex(data, len, out);
    cairn_free(data);
    return CAIRN_OK;
}

static cairn_status sync_path(store *s, pipeline *p, const char *fs_path, const sync_options *opt, sync_report *rep)
{
    scan sc = {.s = s};
    char *prefix = NULL;
    cairn_status st = store_path_key(s, fs_path, &prefix);
    if (st != CAIRN_OK)
        return st;
    if (!strcmp(prefix, "."))
        prefix[0] = 0;
    struct stat sb;
    bool exists = stat(fs_path, &sb) == 0;
    if (!exists && errno != ENOENT && errno != ENOTDIR) {
        cairn_free(prefix);
        return cairn_fail(CAIRN_ERR_IO, "%s: %s", fs_path, strerror(errno));
    }
    if (exists)
        st = pipeline_list(p, fs_path, on_disk, &sc);
    if (st == CAIRN_OK)
        st = store_files_under(s, prefix, in_store, &sc);
    if (st != CAIRN_OK)
        goto out;
    qsort(sc.d, sc.nd, sizeof *sc.d, cmp_disk);
    qsort(sc.g, sc.ng, sizeof *sc.g, cmp_gone);
    /* Merge the two sorted lists: keep in sc.g only the files not on disk. */
    size_t i = 0, j = 0, w = 0;
    while (j < sc.ng) {
        int c = i < sc.nd ? strcmp(sc.d[i].key, sc.g[j].key) : 1;
        if (c < 0) {
            i++;
        } else if (c == 0) {
            sc.d[i++].known = true;
            cairn_free(sc.g[j++].key);
        } else {
            sc.g[w++] = sc.g[j++];
        }
    }
    sc.ng = w;
    /* Moves: a new file whose content equals a disappeared file's. Only
     * same-size candidates are hashed. */
    for (i = 0; i < sc.nd && st == CAIRN_OK && sc.ng; i++) {
        if (sc.d[i].known)
            continue;
        char h[33] = "";
        for (j = 0; j < sc.ng && st == CAIRN_OK; j++) {
            gone_file *g = &sc.g[j];
            if (g->moved || !g->ok || g->size != sc.d[i].size)
                continue;
            if (!h[0] && file_hash(sc.d[i].fs_path, opt->pipe.ingest.max_file_bytes, h) != CAIRN_OK) {
                cairn_clear_error();
                break;  /* unreadable now: the pipeline reports it */
            }
            if (strcmp(h, g->hash) != 0)
                continue;
            st = store_file_move(s, g->id, sc.d[i].key);
            if (st == CAIRN_OK) {
                g->moved = true;
                rep->moved++;
            }
            break;
        }
    }
    /* Add new files, re-ingest changed ones, touch unchanged ones (moved
     * files are now known under their new path and come out unchanged). */
    if (st == CAIRN_OK && exists)
        st = pipeline_add_path(p, fs_path);
    if (st == CAIRN_OK)
        st = pipeline_finish(p);
    for (j = 0; j < sc.ng && st == CAIRN_OK; j++) {
        if (sc.g[j].moved)
            continue;
        st = store_file_delete(s, sc.g[j].id);
        if (st == CAIRN_OK)
            rep->removed++;
    }
out:
    scan_free(&sc);
    cairn_free(prefix);
    return st;
}

cairn_status sync_remove_expired(store *s, int64_t now_s, size_t *removed)
{
    sqlite3_stmt *q = NULL;
    int64_t *ids = NULL;
    size_t n = 0, cap = 0;
    cairn_status st = CAIRN_OK;
    *removed = 0;
    if (sqlite3_prepare_v2(store_db(s), "SELECT id FROM docs WHERE expires_at > 0 AND expires_at <= ?1", -1, &q, NULL) !=
        SQLITE_OK)
        return cairn_fail(CAIRN_ERR_IO, "finding expired documents: %s", sqlite3_errmsg(store_db(s)));
    sqlite3_bind_int64(q, 1, now_s);
    int rc;
    while (st == CAIRN_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        st = grow((void **)&ids, &cap, n, sizeof *ids);
        if (st == CAIRN_OK)
            ids[n++] = sqlite3_column_int64(q, 0);
    }
    sqlite3_finalize(q);
    for (size_t i = 0; i < n && st == CAIRN_OK; i++)
        if ((st = store_doc_delete(s, ids[i])) == CAIRN_OK)
            (*removed)++;
    cairn_free(ids);
    return st;
}

cairn_status sync_record_source(store *s, const char *fs_path)
{
    struct stat sb;
    if (stat(fs_path, &sb) != 0)
        return CAIRN_OK;
    char *key = NULL;
    CAIRN_TRY(store_path_key(s, fs_path, &key));
    int64_t id;
    /* Nested roots are fine: syncing both only repeats cheap stat checks. */
    cairn_status st = store_source_upsert(s, key, "", 0, &id);
    cairn_free(key);
    return st;
}

cairn_status sync_sources(store *s, char ***roots, size_t *n)
{
    sqlite3_stmt *q = NULL;
    *roots = NULL;
    *n = 0;
    size_t cap = 0;
    if (sqlite3_prepare_v2(store_db(s), "SELECT root FROM sources ORDER BY root", -1, &q, NULL) != SQLITE_OK)
        return cairn_fail(CAIRN_ERR_IO, "listing sources: %s", sqlite3_errmsg(store_db(s)));
    cairn_status st = CAIRN_OK;
    while (st == CAIRN_OK && sqlite3_step(q) == SQLITE_ROW) {
        char *abs = NULL;
        st = store_path_abs(s, (const char *)sqlite3_column_text(q, 0), &abs);
        if (st == CAIRN_OK && (st = grow((void **)roots, &cap, *n, sizeof **roots)) == CAIRN_OK)
            (*roots)[(*n)++] = abs;
        else
            cairn_free(abs);
    }
    sqlite3_finalize(q);
    if (st != CAIRN_OK) {
        for (size_t i = 0; i < *n; i++)
            cairn_free((*roots)[i]);
        cairn_free(*roots);
        *roots = NULL;
        *n = 0;
    }
    return st;
}

cairn_status sync_run(store *s, const char *const *paths, size_t n, sync_options *opt, sync_report *rep)
{
    memset(rep, 0, sizeof *rep);
    char **roots = NULL;
    size_t n_roots = 0;
    if (n == 0) {
        CAIRN_TRY(sync_sources(s, &roots, &n_roots));
        paths = (const char *const *)roots;
        n = n_roots;
    }
    pipeline *p = NULL;
    cairn_status st = store_next_sync_gen(s, &opt->pipe.sync_gen);
    if (st == CAIRN_OK)
        st = pipeline_new(s, &opt->pipe, &p);
    for (size_t i = 0; i < n && st == CAIRN_OK; i++)
        st = sync_path(s, p, paths[i], opt, rep);
    if (st == CAIRN_OK)
        st = sync_remove_expired(s, cairn_now_ns() / 1000000000LL, &rep->expired);
    if (p) {
        const pipe_stats *ps = pipeline_stats(p);
        rep->added = ps->files_added;
        rep->updated = ps->files_updated;
        rep->unchanged = ps->files_unchanged >= rep->moved ? ps->files_unchanged - rep->moved : 0;
        rep->skipped = ps->files_skipped;
        rep->failed = ps->files_failed;
    }
    pipeline_free(p);
    for (size_t i = 0; i < n_roots; i++)
        cairn_free(roots[i]);
    cairn_free(roots);
    if (st == CAIRN_OK)
        st = store_update_derived(s);
    return st;
}
