/* sync.c — see sync.h. Per path: list the files on disk, match them against
 * the store's files under the same prefix, turn disappeared+appeared pairs
 * with equal content into moves, let the pipeline add/update/touch the rest,
 * and delete what is gone. */
#include "sync/sync.h"
#include <errno.h>
#include <cjson/cJSON.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct disk_file { char *key; char *fs_path; int64_t size, mtime_ns; bool known, stale; } disk_file;
typedef struct gone_file { char *key; int64_t id, size, mtime_ns; char hash[33]; bool ok, partial, moved; } gone_file;

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
    f->mtime_ns = (int64_t)sb->st_mtim.tv_sec * 1000000000LL + sb->st_mtim.tv_nsec;
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
    g->mtime_ns = sf->mtime_ns;
    g->ok = sf->state == STORE_FILE_OK;
    g->partial = sf->state == STORE_FILE_PARTIAL;
    memcpy(g->hash, sf->content_hash, sizeof g->hash);
    sc->ng++;
    return CAIRN_OK;
}

/* Is stored path `p` equal to `root` or under `root/`? ("" covers all) */
static bool path_within(const char *p, const char *root)
{
    size_t n = strlen(root);
    return !n || (!strncmp(p, root, n) && (p[n] == 0 || p[n] == '/'));
}

/* A stored file that this path's walk did not list but that another
 * recorded source covers and that is still on disk belongs to that source
 * (`cairn add notes --exclude '*.md'; cairn add notes/q.md`): it is not
 * gone. Without this rule every sync deleted and re-added it. */
static cairn_status claimed_elsewhere(store *s, const char *prefix, const char *key, bool *claimed)
{
    *claimed = false;
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(store_db(s), "SELECT root FROM sources", -1, &q, NULL) != SQLITE_OK)
        return cairn_fail(CAIRN_ERR_IO, "listing sources: %s", sqlite3_errmsg(store_db(s)));
    bool covered = false;
    while (!covered && sqlite3_step(q) == SQLITE_ROW) {
        const char *root = (const char *)sqlite3_column_text(q, 0);
        covered = root && strcmp(root, prefix) && path_within(key, root);
    }
    sqlite3_finalize(q);
    if (!covered)
        return CAIRN_OK;
    char *abs = NULL;
    CAIRN_TRY(store_path_abs(s, key, &abs));
    struct stat sb;
    *claimed = stat(abs, &sb) == 0 && S_ISREG(sb.st_mode);
    cairn_free(abs);
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
    /* read in pieces: a moved multi-GB corpus.jsonl is not held in memory */
    return cairn_file_hash128_hex(fs_path, cap, out, NULL);
}

/* List the files under fs_path on disk and in the store; afterwards sc->d
 * holds the disk files (known = also in the store, stale = stat differs)
 * and sc->g only the stored files that are gone from disk. */
static cairn_status scan_path(store *s, pipeline *p, const char *fs_path, scan *sc, bool *exists)
{
    char *prefix = NULL;
    CAIRN_TRY(store_path_key(s, fs_path, &prefix));
    if (!strcmp(prefix, "."))
        prefix[0] = 0;
    struct stat sb;
    *exists = stat(fs_path, &sb) == 0;
    cairn_status st = CAIRN_OK;
    if (!*exists && errno != ENOENT && errno != ENOTDIR)
        st = cairn_fail(CAIRN_ERR_IO, "%s: %s", fs_path, strerror(errno));
    if (st == CAIRN_OK && *exists)
        st = pipeline_list(p, fs_path, on_disk, sc);
    if (st == CAIRN_OK)
        st = store_files_under(s, prefix, in_store, sc);
    if (st != CAIRN_OK) {
        cairn_free(prefix);
        return st;
    }
    if (sc->nd)
        qsort(sc->d, sc->nd, sizeof *sc->d, cmp_disk);
    if (sc->ng)
        qsort(sc->g, sc->ng, sizeof *sc->g, cmp_gone);
    /* Merge the two sorted lists: keep in sc->g only the files not on disk. */
    size_t i = 0, j = 0, w = 0;
    while (j < sc->ng) {
        int c = i < sc->nd ? strcmp(sc->d[i].key, sc->g[j].key) : 1;
        if (c < 0) {
            i++;
        } else if (c == 0) {
            sc->d[i].known = true;
            /* a file skipped before (over a cap, binary) and unchanged
             * since is skipped again by the pipeline: not stale */
            sc->d[i].stale = sc->g[j].partial || sc->d[i].size != sc->g[j].size || sc->d[i].mtime_ns != sc->g[j].mtime_ns;
            i++;
            cairn_free(sc->g[j++].key);
        } else {
            sc->g[w++] = sc->g[j++];
        }
    }
    sc->ng = w;
    /* Not listed here but another source's: keep it (see claimed_elsewhere). */
    w = 0;
    for (j = 0; j < sc->ng && st == CAIRN_OK; j++) {
        bool claimed = false;
        st = claimed_elsewhere(s, prefix, sc->g[j].key, &claimed);
        if (claimed)
            cairn_free(sc->g[j].key);
        else
            sc->g[w++] = sc->g[j];
    }
    for (; j < sc->ng; j++)
        sc->g[w++] = sc->g[j];
    sc->ng = w;
    cairn_free(prefix);
    return st;
}

static cairn_status sync_path(store *s, pipeline *p, const char *fs_path, const sync_options *opt, sync_report *rep)
{
    scan sc = {.s = s};
    bool exists;
    cairn_status st = scan_path(s, p, fs_path, &sc, &exists);
    /* Moves: a new file whose content equals a disappeared file's. Only
     * same-size candidates are hashed. */
    for (size_t i = 0; i < sc.nd && st == CAIRN_OK && sc.ng; i++) {
        if (sc.d[i].known)
            continue;
        char h[33] = "";
        for (size_t j = 0; j < sc.ng && st == CAIRN_OK; j++) {
            gone_file *g = &sc.g[j];
            if (g->moved || !g->ok || g->size != sc.d[i].size)
                continue;
            if (!h[0] && file_hash(sc.d[i].fs_path, CAIRN_MAX(opt->pipe.ingest.max_file_bytes, opt->pipe.ingest.max_stream_bytes), h) != CAIRN_OK) {
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
    for (size_t j = 0; j < sc.ng && st == CAIRN_OK; j++) {
        if (sc.g[j].moved)
            continue;
        st = store_file_delete(s, sc.g[j].id);
        if (st == CAIRN_OK)
            rep->removed++;
    }
    scan_free(&sc);
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

/* A recorded source: its root and the options `cairn add` was given. */
typedef struct source_row {
    char *abs;
    int64_t id, ttl_s;
    meta_list tags;
    char **excludes;
    size_t n_excludes;
} source_row;

static void source_free(source_row *r)
{
    cairn_free(r->abs);
    meta_list_free(&r->tags);
    for (size_t i = 0; i < r->n_excludes; i++)
        cairn_free(r->excludes[i]);
    cairn_free(r->excludes);
    memset(r, 0, sizeof *r);
}

/* options: {"tags": ["k=v", ...], "exclude": ["glob", ...], "ttl_s": N}.
 * A repeated tag key makes a list, as with `cairn add --tag`. */
static cairn_status source_options(source_row *r, const char *json)
{
    cJSON *j = json && *json ? cJSON_Parse(json) : NULL;
    if (!j)
        return CAIRN_OK;
    cairn_status st = CAIRN_OK;
    const cJSON *tags = cJSON_GetObjectItemCaseSensitive(j, "tags"), *t;
    cJSON_ArrayForEach(t, tags)
    {
        if (st != CAIRN_OK || !cJSON_IsString(t))
            continue;
        st = meta_add_tag(&r->tags, t->valuestring);
        if (st == CAIRN_ERR_INVALID) {     /* `add` never saves one; skip it */
            cairn_clear_error();
            st = CAIRN_OK;
        }
    }
    const cJSON *ex = cJSON_GetObjectItemCaseSensitive(j, "exclude"), *e;
    size_t cnt = (size_t)cJSON_GetArraySize(ex);
    if (st == CAIRN_OK && cnt) {
        r->excludes = cairn_calloc(cnt, sizeof *r->excludes);
        if (!r->excludes)
            st = cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
        cJSON_ArrayForEach(e, ex)
        {
            if (st == CAIRN_OK && cJSON_IsString(e) && r->n_excludes < cnt) {
                if (!(r->excludes[r->n_excludes] = cairn_strdup(e->valuestring)))
                    st = cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
                else
                    r->n_excludes++;
            }
        }
    }
    cJSON_Delete(j);
    return st;
}

static cairn_status load_sources(store *s, source_row **rows, size_t *n)
{
    sqlite3_stmt *q = NULL;
    size_t cap = 0;
    *rows = NULL;
    *n = 0;
    if (sqlite3_prepare_v2(store_db(s), "SELECT id, root, options, ttl_s FROM sources ORDER BY root", -1, &q, NULL) !=
        SQLITE_OK)
        return cairn_fail(CAIRN_ERR_IO, "listing sources: %s", sqlite3_errmsg(store_db(s)));
    cairn_status st = CAIRN_OK;
    while (st == CAIRN_OK && sqlite3_step(q) == SQLITE_ROW) {
        if ((st = grow((void **)rows, &cap, *n, sizeof **rows)) != CAIRN_OK)
            break;
        source_row *r = &(*rows)[*n];
        memset(r, 0, sizeof *r);
        (*n)++;
        r->id = sqlite3_column_int64(q, 0);
        r->ttl_s = sqlite3_column_int64(q, 3);
        st = store_path_abs(s, (const char *)sqlite3_column_text(q, 1), &r->abs);
        if (st == CAIRN_OK)
            st = source_options(r, (const char *)sqlite3_column_text(q, 2));
    }
    sqlite3_finalize(q);
    if (st != CAIRN_OK) {
        for (size_t i = 0; i < *n; i++)
            source_free(&(*rows)[i]);
        cairn_free(*rows);
        *rows = NULL;
        *n = 0;
    }
    return st;
}

cairn_status sync_sources(store *s, char ***roots, size_t *n)
{
    source_row *rows = NULL;
    size_t nr = 0;
    *roots = NULL;
    *n = 0;
    CAIRN_TRY(load_sources(s, &rows, &nr));
    cairn_status st = CAIRN_OK;
    if (nr && !(*roots = cairn_calloc(nr, sizeof **roots)))
        st = cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < nr; i++) {
        if (st == CAIRN_OK) {
            (*roots)[i] = rows[i].abs;
            rows[i].abs = NULL;
        }
        source_free(&rows[i]);
    }
    cairn_free(rows);
    if (st == CAIRN_OK)
        *n = nr;
    return st;
}

static void add_stats(sync_report *rep, const pipe_stats *ps)
{
    rep->added += ps->files_added;
    rep->updated += ps->files_updated;
    rep->unchanged += ps->files_unchanged;
    rep->skipped += ps->files_skipped;
    rep->failed += ps->files_failed;
}

/* Sync one path with its own pipeline (options of its source, if any). */
static cairn_status sync_one(store *s, const char *path, const pipe_options *po, const sync_options *opt,
                             sync_report *rep)
{
    pipeline *p = NULL;
    CAIRN_TRY(pipeline_new(s, po, &p));
    cairn_status st = sync_path(s, p, path, opt, rep);
    add_stats(rep, pipeline_stats(p));
    pipeline_free(p);
    return st;
}

cairn_status sync_run(store *s, const char *const *paths, size_t n, sync_options *opt, sync_report *rep)
{
    memset(rep, 0, sizeof *rep);
    cairn_status st = store_next_sync_gen(s, &opt->pipe.sync_gen);
    if (n > 0) {
        for (size_t i = 0; i < n && st == CAIRN_OK; i++)
            st = sync_one(s, paths[i], &opt->pipe, opt, rep);
    } else if (st == CAIRN_OK) {
        source_row *rows = NULL;
        size_t nr = 0;
        st = load_sources(s, &rows, &nr);
        for (size_t i = 0; i < nr; i++) {
            if (st == CAIRN_OK) {
                pipe_options po = opt->pipe;
                po.tags = &rows[i].tags;
                po.excludes = (const char *const *)rows[i].excludes;
                po.n_excludes = rows[i].n_excludes;
                po.source_id = rows[i].id;
                po.ttl_s = rows[i].ttl_s;
                st = sync_one(s, rows[i].abs, &po, opt, rep);
                if (st == CAIRN_OK)
                    st = store_source_touch(s, rows[i].id, cairn_now_ns());
            }
            source_free(&rows[i]);
        }
        cairn_free(rows);
    }
    rep->unchanged = rep->unchanged >= rep->moved ? rep->unchanged - rep->moved : 0;
    if (st == CAIRN_OK)
        st = sync_remove_expired(s, cairn_now_ns() / 1000000000LL, &rep->expired);
    if (st == CAIRN_OK)
        st = store_update_derived(s);
    return st;
}

cairn_status sync_stale(store *s, sync_stale_report *rep)
{
    memset(rep, 0, sizeof *rep);
    source_row *rows = NULL;
    size_t nr = 0;
    CAIRN_TRY(load_sources(s, &rows, &nr));
    cairn_status st = CAIRN_OK;
    for (size_t i = 0; i < nr; i++) {
        if (st == CAIRN_OK) {
            pipe_options po;
            pipeline_options_from_config(s, &po);   /* as sync would walk */
            po.excludes = (const char *const *)rows[i].excludes;
            po.n_excludes = rows[i].n_excludes;
            pipeline *p = NULL;
            st = pipeline_new(s, &po, &p);
            scan sc = {.s = s};
            bool exists;
            if (st == CAIRN_OK)
                st = scan_path(s, p, rows[i].abs, &sc, &exists);
            for (size_t k = 0; st == CAIRN_OK && k < sc.nd; k++) {
                if (!sc.d[k].known)
                    rep->new_files++;
                else if (sc.d[k].stale)
                    rep->changed_files++;
            }
            if (st == CAIRN_OK)
                rep->missing_files += sc.ng;
            scan_free(&sc);
            pipeline_free(p);
        }
        source_free(&rows[i]);
    }
    cairn_free(rows);
    rep->sources = nr;
    return st;
}
