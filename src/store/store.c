/* store.c — opening, creating and migrating the SQLite store; transactions;
 * small state. The schema is described in store.h; documents and chunks are
 * written in store_docs.c, read in store_read.c. */
#include "store/store_int.h"
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Version 1 schema. Migrations from older versions would be added as
 * further steps in `migrations` below; each runs in the open transaction. */
static const char schema_v1[] =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;"
    "CREATE TABLE sources("
    "  id INTEGER PRIMARY KEY, root TEXT NOT NULL UNIQUE, options TEXT NOT NULL DEFAULT '',"
    "  ttl_s INTEGER NOT NULL DEFAULT 0, added_at_ns INTEGER NOT NULL DEFAULT 0,"
    "  last_sync_ns INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE files("
    "  id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE, source_id INTEGER,"
    "  size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, content_hash TEXT NOT NULL,"
    "  meta_hash TEXT NOT NULL DEFAULT '', type TEXT, state INTEGER NOT NULL, reason TEXT, ndocs INTEGER NOT NULL DEFAULT 0,"
    "  ingested_at_ns INTEGER NOT NULL, sync_gen INTEGER NOT NULL);"
    "CREATE INDEX files_hash ON files(content_hash);"
    "CREATE TABLE docs("
    "  id INTEGER PRIMARY KEY, file_id INTEGER, source_id INTEGER,"
    "  path TEXT NOT NULL, key TEXT NOT NULL, rkey TEXT NOT NULL DEFAULT '',"
    "  type TEXT NOT NULL, title TEXT, size INTEGER NOT NULL DEFAULT 0,"
    "  mtime_ns INTEGER NOT NULL DEFAULT 0, content_hash TEXT NOT NULL DEFAULT '',"
    "  doc_hash TEXT NOT NULL DEFAULT '', ingested_at_ns INTEGER NOT NULL,"
    "  sync_gen INTEGER NOT NULL DEFAULT 0, expires_at INTEGER NOT NULL DEFAULT 0,"
    "  nchunks INTEGER NOT NULL DEFAULT 0, nbytes INTEGER NOT NULL DEFAULT 0,"
    "  UNIQUE(path, rkey));"
    "CREATE INDEX docs_file ON docs(file_id);"
    "CREATE INDEX docs_hash ON docs(content_hash);"
    "CREATE TABLE chunks("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT, doc_id INTEGER NOT NULL, ord INTEGER NOT NULL,"
    "  chunk_key INTEGER NOT NULL, heading_path TEXT NOT NULL DEFAULT '', page INTEGER NOT NULL DEFAULT 0,"
    "  text TEXT NOT NULL, ntokens INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX chunks_doc ON chunks(doc_id, ord);"
    /* Clustered by document (no separate doc_id index); (key, s) serves
     * string/list predicates and HAS, (key, n) only rows that have n. */
    "CREATE TABLE doc_meta("
    "  doc_id INTEGER NOT NULL, key TEXT NOT NULL, ord INTEGER NOT NULL DEFAULT 0, type INTEGER NOT NULL,"
    "  s TEXT, n REAL, PRIMARY KEY(doc_id, key, ord)) WITHOUT ROWID;"
    "CREATE INDEX doc_meta_ks ON doc_meta(key, s, doc_id);"
    "CREATE INDEX doc_meta_kn ON doc_meta(key, n, doc_id) WHERE n IS NOT NULL;"
    "CREATE TABLE chunk_deletions("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT, chunk_id INTEGER NOT NULL, doc_id INTEGER NOT NULL);";

/* Version 2: the metadata indexes lead with (key, type) so a typed filter
 * predicate is one covering index range scan, and "does field K have type
 * T" is one index seek (filter/filter_store.c relies on both). */
static const char schema_v2[] =
    "DROP INDEX IF EXISTS doc_meta_ks;"
    "DROP INDEX IF EXISTS doc_meta_kn;"
    "CREATE INDEX doc_meta_kts ON doc_meta(key, type, s, doc_id);"
    "CREATE INDEX doc_meta_ktn ON doc_meta(key, type, n, doc_id);";

/* Version 3: a checksum of each chunk's text (XXH3-64 of its bytes, as a
 * signed 64-bit integer), so a damaged page that still decodes is caught
 * when read (store_hit_get, cairn check) instead of printed. Rows written
 * before v3 have NULL: not verified. */
static const char schema_v3[] = "ALTER TABLE chunks ADD COLUMN text_hash INTEGER;";

typedef struct migration { int to; const char *sql; } migration;
static const migration migrations[] = {
    {1, schema_v1},
    {2, schema_v2},
    {3, schema_v3},
};

static const char *const stmt_sql[STMT_COUNT] = {
    [STMT_STATE_GET] = "SELECT value FROM meta WHERE key = ?1",
    [STMT_STATE_SET] = "INSERT INTO meta(key, value) VALUES(?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    [STMT_FILE_GET] = "SELECT id, path, source_id, size, mtime_ns, content_hash, state, ndocs, sync_gen, meta_hash,"
                      " (SELECT count(*) FROM docs WHERE file_id = files.id) FROM files WHERE path = ?1",
    [STMT_FILE_INSERT] = "INSERT INTO files(path, source_id, size, mtime_ns, content_hash, type, state, reason, ndocs, ingested_at_ns, sync_gen, meta_hash)"
                         " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    [STMT_FILE_UPDATE] = "UPDATE files SET source_id = ?2, size = ?3, mtime_ns = ?4, content_hash = ?5, type = ?6, state = ?7,"
                         " reason = ?8, ndocs = ?9, ingested_at_ns = ?10, sync_gen = ?11, meta_hash = ?12 WHERE id = ?1",
    [STMT_FILE_TOUCH] = "UPDATE files SET mtime_ns = ?2, sync_gen = ?3 WHERE id = ?1",
    [STMT_FILE_DELETE] = "DELETE FROM files WHERE id = ?1",
    [STMT_FILE_DOCS] = "SELECT id FROM docs WHERE file_id = ?1",
    [STMT_FILE_COUNT_DOCS] = "SELECT count(*) FROM docs WHERE file_id = ?1",
    [STMT_FILE_STALE_DOCS] = "SELECT id FROM docs WHERE file_id = ?1 AND sync_gen != ?2",
    [STMT_DOC_FIND] = "SELECT id, doc_hash FROM docs WHERE path = ?1 AND rkey = ?2",
    [STMT_DOC_INSERT] = "INSERT INTO docs(file_id, source_id, path, key, rkey, type, title, size, mtime_ns, content_hash, doc_hash,"
                        " ingested_at_ns, sync_gen, expires_at, nchunks, nbytes)"
                        " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
    [STMT_DOC_UPDATE] = "UPDATE docs SET file_id = ?1, source_id = ?2, path = ?3, key = ?4, rkey = ?5, type = ?6, title = ?7,"
                        " size = ?8, mtime_ns = ?9, content_hash = ?10, doc_hash = ?11, ingested_at_ns = ?12, sync_gen = ?13,"
                        " expires_at = ?14, nchunks = ?15, nbytes = ?16 WHERE id = ?17",
    [STMT_DOC_TOUCH] = "UPDATE docs SET file_id = ?2, source_id = ?3, size = ?4, mtime_ns = ?5, content_hash = ?6, sync_gen = ?7 WHERE id = ?1",
    [STMT_DOC_DELETE] = "DELETE FROM docs WHERE id = ?1",
    [STMT_META_DELETE] = "DELETE FROM doc_meta WHERE doc_id = ?1",
    [STMT_META_DELETE_KEY] = "DELETE FROM doc_meta WHERE doc_id = ?1 AND key = ?2",
    [STMT_META_INSERT] = "INSERT INTO doc_meta(doc_id, key, type, s, n, ord) VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
    [STMT_META_SELECT] = "SELECT key, type, s, n FROM doc_meta WHERE doc_id = ?1 ORDER BY key, ord",
    [STMT_CHUNK_KEYS] = "SELECT id, chunk_key, ord FROM chunks WHERE doc_id = ?1",
    [STMT_CHUNK_INSERT] = "INSERT INTO chunks(doc_id, ord, chunk_key, heading_path, page, text, ntokens, text_hash)"
                          " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [STMT_CHUNK_SET_ORD] = "UPDATE chunks SET ord = ?2 WHERE id = ?1",
    [STMT_CHUNK_DELETE] = "DELETE FROM chunks WHERE id = ?1",
    [STMT_CHUNK_LOG] = "INSERT INTO chunk_deletions(chunk_id, doc_id) VALUES(?1, ?2)",
    [STMT_CHUNK_LOG_DOC] = "INSERT INTO chunk_deletions(chunk_id, doc_id) SELECT id, doc_id FROM chunks WHERE doc_id = ?1 ORDER BY id",
    [STMT_CHUNK_DELETE_DOC] = "DELETE FROM chunks WHERE doc_id = ?1",
    [STMT_CHUNKS_SINCE] = "SELECT c.id, c.doc_id, d.title, c.heading_path, c.text, c.page, c.ntokens"
                          " FROM chunks c JOIN docs d ON d.id = c.doc_id WHERE c.id > ?1 ORDER BY c.id LIMIT ?2",
    [STMT_DELETIONS_SINCE] = "SELECT seq, chunk_id FROM chunk_deletions WHERE seq > ?1 ORDER BY seq",
    [STMT_HIT] = "SELECT c.id, c.doc_id, d.path, d.rkey, d.title, d.type, c.heading_path, c.text, c.page,"
                 " d.ingested_at_ns, d.mtime_ns, d.expires_at, c.text_hash FROM chunks c JOIN docs d ON d.id = c.doc_id WHERE c.id = ?1",
    [STMT_FILES_UNDER] = "SELECT id FROM files"
                         " WHERE ?1 = '' OR path = ?1 OR (path >= ?2 AND path < ?3) ORDER BY path",
    [STMT_DOCS_UNDER_NOFILE] = "SELECT id FROM docs WHERE file_id IS NULL AND (?1 = '' OR path = ?1 OR (path >= ?2 AND path < ?3))",
    [STMT_FILE_MOVE] = "UPDATE files SET path = ?2 WHERE id = ?1",
    [STMT_DOCS_MOVE] = "UPDATE docs SET path = ?2, key = CASE WHEN rkey = '' THEN ?2 ELSE ?2 || '#' || rkey END WHERE file_id = ?1",
    [STMT_META_MOVE] = "UPDATE doc_meta SET s = ?2 WHERE key = 'path' AND doc_id IN (SELECT id FROM docs WHERE file_id = ?1)",
    [STMT_SOURCE_UPSERT] = "INSERT INTO sources(root, options, ttl_s, added_at_ns) VALUES(?1, ?2, ?3, ?4)"
                           " ON CONFLICT(root) DO UPDATE SET"
                           " options = CASE WHEN excluded.options = '' THEN sources.options ELSE excluded.options END,"
                           " ttl_s = CASE WHEN excluded.options = '' THEN sources.ttl_s ELSE excluded.ttl_s END RETURNING id",
    [STMT_BEGIN] = "BEGIN IMMEDIATE",
    [STMT_COMMIT] = "COMMIT",
    [STMT_SAVEPOINT1] = "SAVEPOINT sp1",
    [STMT_RELEASE1] = "RELEASE sp1",
    [STMT_SOURCE_TOUCH] = "UPDATE sources SET last_sync_ns = ?2 WHERE id = ?1",
};

cairn_status store_sql_fail(store *s, cairn_status st, const char *what)
{
    int ec = sqlite3_extended_errcode(s->db);
    int pc = ec & 0xff;
    if (pc == SQLITE_BUSY || pc == SQLITE_LOCKED)
        st = CAIRN_ERR_BUSY;
    else if (pc == SQLITE_CORRUPT || pc == SQLITE_NOTADB)
        st = CAIRN_ERR_CORRUPT;
    else if (pc == SQLITE_NOMEM)
        st = CAIRN_ERR_NOMEM;
    else if (pc == SQLITE_FULL || pc == SQLITE_IOERR || pc == SQLITE_CANTOPEN || pc == SQLITE_READONLY)
        st = CAIRN_ERR_IO;
    if (st == CAIRN_ERR_CORRUPT)
        return cairn_fail(st, "store %s: %s: %s; `cairn check` tells what is damaged, `cairn repair` rebuilds the store",
                          s->dir, what, sqlite3_errmsg(s->db));
    /* the operating system's reason, when SQLite's message does not say
     * ("unable to open database file" on a full disk) */
    int se = store_vfs_take_errno();
    if (!se && pc != SQLITE_FULL && (pc == SQLITE_IOERR || pc == SQLITE_CANTOPEN))
        se = sqlite3_system_errno(s->db);
    if (se && pc != SQLITE_FULL)
        return cairn_fail(st, "store %s: %s: %s (%s)", s->dir, what, sqlite3_errmsg(s->db), strerror(se));
    return cairn_fail(st, "store %s: %s: %s", s->dir, what, sqlite3_errmsg(s->db));
}

cairn_status store_stmt(store *s, store_stmt_id id, sqlite3_stmt **out)
{
    if (!s->stmts[id]) {
        if (sqlite3_prepare_v3(s->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &s->stmts[id], NULL) != SQLITE_OK)
            return store_sql_fail(s, CAIRN_ERR_INTERNAL, "preparing a statement");
    } else {
        sqlite3_reset(s->stmts[id]);
        sqlite3_clear_bindings(s->stmts[id]);
    }
    *out = s->stmts[id];
    return CAIRN_OK;
}

cairn_status store_step_done(store *s, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        return store_sql_fail(s, CAIRN_ERR_IO, what);
    return CAIRN_OK;
}

cairn_status store_exec(store *s, const char *sql, const char *what)
{
    char *err = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &err) != SQLITE_OK) {
        cairn_status st = store_sql_fail(s, CAIRN_ERR_IO, what);
        sqlite3_free(err);
        return st;
    }
    return CAIRN_OK;
}

/* ---- transactions (savepoints nest inside the outer transaction) ---- */
/* The outer BEGIN/COMMIT and the first savepoint level run for every
 * document, so they use cached statements; deeper levels are rare. */
cairn_status store_begin(store *s)
{
    if (s->txn_depth <= 1) {
        sqlite3_stmt *st;
        CAIRN_TRY(store_stmt(s, s->txn_depth == 0 ? STMT_BEGIN : STMT_SAVEPOINT1, &st));
        CAIRN_TRY(store_step_done(s, st, "beginning a transaction"));
    } else {
        char sql[64];
        snprintf(sql, sizeof sql, "SAVEPOINT sp%d", s->txn_depth);
        CAIRN_TRY(store_exec(s, sql, "beginning a transaction"));
    }
    s->txn_depth++;
    return CAIRN_OK;
}

cairn_status store_commit(store *s)
{
    if (s->txn_depth <= 0)
        return cairn_fail(CAIRN_ERR_INTERNAL, "store_commit without store_begin");
    cairn_status st;
    if (s->txn_depth <= 2) {
        sqlite3_stmt *q;
        st = store_stmt(s, s->txn_depth == 1 ? STMT_COMMIT : STMT_RELEASE1, &q);
        if (st == CAIRN_OK)
            st = store_step_done(s, q, "committing");
    } else {
        char sql[64];
        snprintf(sql, sizeof sql, "RELEASE sp%d", s->txn_depth - 1);
        st = store_exec(s, sql, "committing");
    }
    if (st != CAIRN_OK) {
        store_rollback(s);
        return st;
    }
    s->txn_depth--;
    return CAIRN_OK;
}

void store_rollback(store *s)
{
    if (s->txn_depth <= 0)
        return;
    char sql[96];
    if (s->txn_depth == 1)
        snprintf(sql, sizeof sql, "ROLLBACK");
    else
        snprintf(sql, sizeof sql, "ROLLBACK TO sp%d; RELEASE sp%d", s->txn_depth - 1, s->txn_depth - 1);
    sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    s->txn_depth--;
}

/* ---- state ---- */
cairn_status store_state_get(store *s, const char *key, int64_t def, int64_t *out)
{
    sqlite3_stmt *st;
    CAIRN_TRY(store_stmt(s, STMT_STATE_GET, &st));
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    else if (rc == SQLITE_DONE)
        *out = def;
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return store_sql_fail(s, CAIRN_ERR_IO, "reading state");
    return CAIRN_OK;
}

cairn_status store_state_set(store *s, const char *key, int64_t v)
{
    sqlite3_stmt *st;
    CAIRN_TRY(store_stmt(s, STMT_STATE_SET, &st));
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, v);
    return store_step_done(s, st, "writing state");
}

cairn_status store_next_sync_gen(store *s, int64_t *gen)
{
    int64_t g;
    CAIRN_TRY(store_begin(s));
    cairn_status st = store_state_get(s, "sync_gen", 0, &g);
    if (st == CAIRN_OK)
        st = store_state_set(s, "sync_gen", g + 1);
    if (st == CAIRN_OK)
        st = store_commit(s);
    else
        store_rollback(s);
    if (st == CAIRN_OK)
        *gen = g + 1;
    return st;
}

/* ---- open / create ---- */
static cairn_status schema_version(store *s, int64_t *v)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, "SELECT value FROM meta WHERE key = 'schema_version'", -1, &st, NULL);
    if (rc != SQLITE_OK) {
        sqlite3_finalize(st);
        if ((rc & 0xff) == SQLITE_ERROR) {   /* no meta table: not a cairn store (or empty) */
            *v = 0;
            return CAIRN_OK;
        }
        return store_sql_fail(s, CAIRN_ERR_CORRUPT, "reading the schema version");
    }
    rc = sqlite3_step(st);
    *v = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return store_sql_fail(s, CAIRN_ERR_CORRUPT, "reading the schema version");
    return CAIRN_OK;
}

static cairn_status migrate(store *s, int64_t from)
{
    CAIRN_TRY(store_begin(s));
    cairn_status st = CAIRN_OK;
    for (size_t i = 0; i < CAIRN_ARRAY_LEN(migrations) && st == CAIRN_OK; i++) {
        if (migrations[i].to <= from)
            continue;
        st = store_exec(s, migrations[i].sql, "migrating the schema");
        if (st == CAIRN_OK)
            st = store_state_set(s, "schema_version", migrations[i].to);
    }
    if (st == CAIRN_OK)
        st = store_commit(s);
    else
        store_rollback(s);
    return st;
}

static cairn_status pragmas(store *s)
{
    sqlite3_busy_timeout(s->db, 15000);
    CAIRN_TRY(store_exec(s, "PRAGMA journal_mode=WAL", "enabling WAL"));
    CAIRN_TRY(store_exec(s, "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=OFF; PRAGMA temp_store=MEMORY;"
                            "PRAGMA cache_size=-32768; PRAGMA wal_autocheckpoint=4000",
                         "setting pragmas"));
    return CAIRN_OK;
}

static char *path_join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *p = cairn_malloc(la + lb + 2);
    if (!p)
        return NULL;
    memcpy(p, a, la);
    p[la] = '/';
    memcpy(p + la + 1, b, lb + 1);
    return p;
}

static cairn_status open_db(const char *dir, bool create, store **out)
{
    *out = NULL;
    store *s = cairn_calloc(1, sizeof *s);
    if (!s)
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory opening the store");
    store_config_default(&s->cfg);
    char abs[PATH_MAX];
    if (!realpath(dir, abs)) {
        cairn_free(s);
        return cairn_fail(CAIRN_ERR_NOT_FOUND, "%s: %s", dir, strerror(errno));
    }
    s->dir = cairn_strdup(abs);
    char *slash = strrchr(abs, '/');
    if (slash && slash != abs)
        *slash = 0;
    else
        snprintf(abs, sizeof abs, "/");
    s->root = cairn_strdup(abs);
    char *dbpath = s->dir ? path_join(s->dir, STORE_DB_NAME) : NULL;
    char *cfgpath = s->dir ? path_join(s->dir, "config") : NULL;
    cairn_status st = CAIRN_OK;
    if (!s->dir || !s->root || !dbpath || !cfgpath) {
        st = cairn_fail(CAIRN_ERR_NOMEM, "out of memory opening the store");
        goto done;
    }
    if (!create && access(dbpath, F_OK) != 0) {
        st = cairn_fail(CAIRN_ERR_NOT_FOUND, "%s: not a cairn store (no %s)", s->dir, STORE_DB_NAME);
        goto done;
    }
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
    if (sqlite3_open_v2(dbpath, &s->db, flags, store_vfs_name()) != SQLITE_OK) {
        st = s->db ? store_sql_fail(s, CAIRN_ERR_IO, "opening") : cairn_fail(CAIRN_ERR_NOMEM, "out of memory opening the store");
        goto done;
    }
    sqlite3_extended_result_codes(s->db, 1);
    st = pragmas(s);
    int64_t v = 0;
    if (st == CAIRN_OK)
        st = schema_version(s, &v);
    if (st == CAIRN_OK && v > STORE_SCHEMA_VERSION)
        st = cairn_fail(CAIRN_ERR_VERSION,
                        "%s was written by a newer cairn (schema version %lld; this cairn supports up to %d): upgrade cairn",
                        s->dir, (long long)v, STORE_SCHEMA_VERSION);
    if (st == CAIRN_OK && v == 0 && !create)
        st = cairn_fail(CAIRN_ERR_CORRUPT, "%s: %s has no cairn schema", s->dir, STORE_DB_NAME);
    if (st == CAIRN_OK && v < STORE_SCHEMA_VERSION)
        st = migrate(s, v);
    if (st == CAIRN_OK)
        st = store_config_load(&s->cfg, cfgpath);
done:
    cairn_free(dbpath);
    cairn_free(cfgpath);
    if (st != CAIRN_OK) {
        store_close(s);
        return st;
    }
    *out = s;
    return CAIRN_OK;
}

cairn_status store_create(const char *dir)
{
    char *dbpath = path_join(dir, STORE_DB_NAME);
    char *cfgpath = path_join(dir, "config");
    cairn_status st = CAIRN_OK;
    if (!dbpath || !cfgpath) {
        st = cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
        goto done;
    }
    if (access(dbpath, F_OK) == 0) {
        st = cairn_fail(CAIRN_ERR_INVALID, "%s: a cairn store already exists here", dir);
        goto done;
    }
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        st = cairn_fail(CAIRN_ERR_IO, "%s: cannot create directory: %s", dir, strerror(errno));
        goto done;
    }
    if (access(cfgpath, F_OK) != 0) {
        st = cairn_file_write_atomic(cfgpath, store_config_template, strlen(store_config_template));
        if (st != CAIRN_OK)
            goto done;
    }
    store *s;
    st = open_db(dir, true, &s);
    if (st == CAIRN_OK)
        store_close(s);
done:
    cairn_free(dbpath);
    cairn_free(cfgpath);
    return st;
}

cairn_status store_open(const char *dir, store **out) { return open_db(dir, false, out); }

void store_close(store *s)
{
    if (!s)
        return;
    while (s->txn_depth > 0)
        store_rollback(s);
    store_unlock_writer(s);
    for (int i = 0; i < STMT_COUNT; i++)
        sqlite3_finalize(s->stmts[i]);
    if (s->db)
        sqlite3_close(s->db);
    store_config_free(&s->cfg);
    cairn_free(s->dir);
    cairn_free(s->root);
    cairn_free(s);
}

sqlite3 *store_db(store *s) { return s->db; }
const char *store_dir(const store *s) { return s->dir; }
const char *store_root(const store *s) { return s->root; }
const store_config *store_get_config(const store *s) { return &s->cfg; }

void store_set_derived_hook(store *s, store_derived_fn fn, void *ctx)
{
    s->hook = fn;
    s->hook_ctx = ctx;
}

cairn_status store_update_derived(store *s) { return s->hook ? s->hook(s, s->hook_ctx) : CAIRN_OK; }

/* ---- paths ---- */
/* Lexically normalize an absolute path: collapse //, ".", "..". */
static void normalize_abs(char *p)
{
    char *out = p, *in = p;
    while (*in) {
        while (*in == '/')
            in++;
        if (!*in)
            break;
        char *seg = in;
        while (*in && *in != '/')
            in++;
        size_t n = (size_t)(in - seg);
        if (n == 1 && seg[0] == '.')
            continue;
        if (n == 2 && seg[0] == '.' && seg[1] == '.') {
            while (out > p && *--out != '/')
                ;
            continue;
        }
        *out++ = '/';
        memmove(out, seg, n);
        out += n;
    }
    if (out == p)
        *out++ = '/';
    *out = 0;
}

cairn_status store_path_key(const store *s, const char *fs_path, char **out)
{
    *out = NULL;
    char buf[PATH_MAX * 2];
    if (fs_path[0] == '/') {
        if (snprintf(buf, sizeof buf, "%s", fs_path) >= (int)sizeof buf)
            return cairn_fail(CAIRN_ERR_INVALID, "%s: path too long", fs_path);
    } else {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof cwd))
            return cairn_fail(CAIRN_ERR_IO, "cannot get the current directory: %s", strerror(errno));
        if (snprintf(buf, sizeof buf, "%s/%s", cwd, fs_path) >= (int)sizeof buf)
            return cairn_fail(CAIRN_ERR_INVALID, "%s: path too long", fs_path);
    }
    normalize_abs(buf);
    size_t rl = strlen(s->root);
    const char *rel = buf;
    if (!strcmp(s->root, "/"))
        rel = buf + 1;
    else if (!strncmp(buf, s->root, rl) && buf[rl] == '/')
        rel = buf + rl + 1;
    else if (!strcmp(buf, s->root))
        rel = "";
    *out = cairn_strdup(rel);
    return *out ? CAIRN_OK : cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
}

cairn_status store_path_abs(const store *s, const char *stored, char **out)
{
    if (stored[0] == '/')
        *out = cairn_strdup(stored);
    else if (!stored[0])
        *out = cairn_strdup(s->root);
    else
        *out = path_join(!strcmp(s->root, "/") ? "" : s->root, stored);
    return *out ? CAIRN_OK : cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
}
