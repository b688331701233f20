/*
 * store.h — the SQLite store: files, documents, chunks, typed metadata and
 * the change log that derived indexes (BM25, vectors) follow.
 *
 * A store is a directory (normally PROJECT/.cairn) holding `store.db`
 * (SQLite, WAL mode) and `config` (INI, see config.h). The schema is
 * versioned in the `meta` table (key 'schema_version'); opening a store
 * written by a newer cairn fails with CAIRN_ERR_VERSION, an older one is
 * migrated forward in one transaction.
 *
 * Schema (version 3; v2 re-keyed the doc_meta indexes on (key, type, ...);
 * v3 added chunks.text_hash, a checksum of the text verified on reading):
 *   meta(key TEXT PRIMARY KEY, value)            schema_version, sync_gen, ...
 *   sources(id, root UNIQUE, options, ttl_s, added_at_ns, last_sync_ns)
 *   files(id, path UNIQUE, source_id, size, mtime_ns, content_hash, meta_hash,
 *         type, state, reason, ndocs, ingested_at_ns, sync_gen)
 *         state: 0 = partial (ingest started, not finished), 1 = ok,
 *                2 = skipped (binary/too large; `reason` says why),
 *                3 = failed to parse (`reason` says why; retried once changed)
 *   docs(id, file_id, source_id, path, key UNIQUE, rkey, type, title, size,
 *        mtime_ns, content_hash, doc_hash, ingested_at_ns, sync_gen,
 *        expires_at, nchunks, nbytes)
 *   chunks(id INTEGER PRIMARY KEY AUTOINCREMENT, doc_id, ord, chunk_key,
 *          heading_path, page, text, ntokens, text_hash)
 *   doc_meta(doc_id, key, type, s, n, ord)       typed metadata; a list is
 *          one row per item (type = META_LIST, s = item, ord = position)
 *   chunk_deletions(seq INTEGER PRIMARY KEY AUTOINCREMENT, chunk_id, doc_id)
 *
 * Paths: a document's `path` is relative to the project root (the directory
 * holding .cairn/) when the file is under it, else absolute.
 *
 * Builtin metadata every document carries in doc_meta (so one filter
 * language covers them): path, type, title (when known), size (number, the
 * file's bytes), modified (date), ingested (date), content_hash (string, of
 * the whole file), plus expires (date) when set. Parser metadata (front
 * matter, sidecar FILE.meta.json, --tag) is stored next to them; builtin
 * names win over user keys of the same name.
 *
 * Derived indexes: chunk ids are monotonic (AUTOINCREMENT, never reused).
 * Every chunk delete logs (chunk_id, doc_id) into chunk_deletions in the
 * same transaction. A derived index therefore catches up by
 *   1) applying deletions with seq > its deletion mark (store_deletions_since)
 *   2) indexing chunks with id > its chunk mark (store_chunks_since)
 * A chunk whose text is unchanged keeps its id when its document is
 * re-ingested, so derived data for it stays valid.
 *
 * Transactions: every write API below is atomic per document. Callers may
 * group many documents into one transaction with store_begin/store_commit
 * (the ingest pipeline does, for speed); a crash then loses only whole,
 * uncommitted documents.
 */
#ifndef CAIRN_STORE_H
#define CAIRN_STORE_H

#include "base/base.h"
#include "ingest/ingest.h"
#include "chunk/chunk.h"
#include "store/config.h"

typedef struct sqlite3 sqlite3;

#define STORE_SCHEMA_VERSION 3
#define STORE_DIR_NAME ".cairn"
#define STORE_DB_NAME "store.db"

typedef struct store store;

/* Create a new store directory `dir` (the .cairn directory itself) with an
 * empty database and a default config. CAIRN_ERR_INVALID if one exists. */
cairn_status store_create(const char *dir);

/* Open an existing store (the .cairn directory). */
cairn_status store_open(const char *dir, store **out);
void store_close(store *s);

/* The underlying connection, for read-only queries of other parts (the
 * filter compiler queries doc_meta). Do not start transactions on it. */
sqlite3 *store_db(store *s);
const char *store_dir(const store *s);        /* the .cairn directory */
const char *store_root(const store *s);       /* the project root (parent of dir) */
const store_config *store_get_config(const store *s);

/* Transactions (nestable: only the outermost begin/commit touch SQLite). */
cairn_status store_begin(store *s);
cairn_status store_commit(store *s);
void store_rollback(store *s);

/* Small integer state in the meta table, e.g. a derived index's marks
 * ("bm25.chunk_mark"). Missing keys read as `def`. */
cairn_status store_state_get(store *s, const char *key, int64_t def, int64_t *out);
cairn_status store_state_set(store *s, const char *key, int64_t v);

/* Sync generation: a counter bumped once per add/sync run. */
cairn_status store_next_sync_gen(store *s, int64_t *gen);

/* ---- paths ---- */
/* Map a filesystem path (relative to cwd or absolute) to the form stored in
 * the `path` column. Caller frees *out. */
cairn_status store_path_key(const store *s, const char *fs_path, char **out);
/* Inverse: absolute filesystem path of a stored path. Caller frees. */
cairn_status store_path_abs(const store *s, const char *stored, char **out);

/* ---- sources ----
 * A source is a root given to `cairn add` (stored path form) with the
 * options it was added with, as JSON written by the CLI:
 *   {"tags": ["k=v", ...], "exclude": ["GLOB", ...], "ttl_s": N}
 * Upserting with options "" only makes sure the root exists (keeps its
 * recorded options and TTL). */
cairn_status store_source_upsert(store *s, const char *root, const char *options, int64_t ttl_s, int64_t *id);
cairn_status store_source_touch(store *s, int64_t id, int64_t now_ns);
/* After `cairn rm PATH` (stored form): sources at or under PATH are
 * forgotten, and sources containing PATH get it as an exclude pattern, so a
 * later `cairn sync` does not bring it back. */
cairn_status store_sources_after_remove(store *s, const char *path, size_t *forgotten, size_t *excluded);
/* Only the first half: forget sources at or under PATH (a `cairn rm` that
 * removed no document must not add an exclude). */
cairn_status store_sources_forget_under(store *s, const char *path, size_t *forgotten);

/* ---- files ---- */
/* FAILED: the parser rejected the content (`reason` says why); not read
 * again until its size, mtime or options change. */
typedef enum { STORE_FILE_PARTIAL = 0, STORE_FILE_OK = 1, STORE_FILE_SKIPPED = 2, STORE_FILE_FAILED = 3 } store_file_state;

typedef struct store_file {
    int64_t id;
    char *path;
    int64_t source_id;
    int64_t size, mtime_ns;
    char content_hash[33];
    store_file_state state;
    char meta_hash[33];         /* hash of tags, sidecar and chunking options */
    int64_t ndocs;
    int64_t sync_gen;
    int64_t ndocs_stored;       /* store_file_get: documents actually stored for it (-1 = not read) */
} store_file;
void store_file_free(store_file *f);

/* CAIRN_ERR_NOT_FOUND when absent. */
cairn_status store_file_get(store *s, const char *path, store_file *out);
/* Insert (f->id == 0) or update the files row; sets f->id. `type` is the
 * parser's name, `reason` why a skipped file was skipped (may be NULL). */
cairn_status store_file_put(store *s, store_file *f, const char *type, const char *reason);
/* Update only stat data and generation (unchanged content). */
cairn_status store_file_touch(store *s, int64_t file_id, int64_t mtime_ns, int64_t sync_gen);
/* Delete docs of the file whose sync_gen != gen (records no longer in it). */
cairn_status store_file_prune_docs(store *s, int64_t file_id, int64_t gen, size_t *removed);
/* Number of documents stored for a file. */
cairn_status store_file_count_docs(store *s, int64_t file_id, int64_t *n);
/* Remove a file, its documents, chunks and metadata (chunk deletes logged). */
cairn_status store_file_delete(store *s, int64_t file_id);
/* Rename/move: update the path of the file and its documents (and their
 * `path` metadata). Nothing derived changes. */
cairn_status store_file_move(store *s, int64_t file_id, const char *new_path);

/* Iterate files whose path is `prefix` or under `prefix/` ("" = all).
 * The callback may not write to the store. */
typedef cairn_status (*store_file_fn)(void *ctx, const store_file *f);
cairn_status store_files_under(store *s, const char *prefix, store_file_fn fn, void *ctx);

/* ---- documents ---- */
typedef struct store_doc_in {
    int64_t file_id, source_id;
    const char *path;           /* stored form (store_path_key) */
    const char *rkey;           /* record key within the file ("" = whole file) */
    const char *type;
    const char *title;          /* may be NULL */
    int64_t size, mtime_ns;     /* of the file */
    const char *content_hash;   /* of the file */
    const char *doc_hash;       /* of this document's extracted content + metadata */
    int64_t ingested_at_ns;
    int64_t sync_gen;
    int64_t expires_at;         /* epoch seconds; 0 = never */
    const meta_list *meta;      /* all user/parser metadata (builtins are added) */
    const chunk_list *chunks;
} store_doc_in;

typedef struct store_put_result {
    int64_t doc_id;
    bool unchanged;             /* same doc_hash: only stat/gen updated */
    size_t chunks_added, chunks_kept, chunks_removed;
} store_put_result;

/* Insert or replace the document with key (path, rkey). Chunks with an
 * unchanged chunk_key keep their ids; others are deleted (logged) or added. */
cairn_status store_doc_put(store *s, const store_doc_in *in, store_put_result *res);
cairn_status store_doc_delete(store *s, int64_t doc_id);
/* Find a document by (path, rkey): its id and doc_hash (33 bytes).
 * CAIRN_ERR_NOT_FOUND when absent. */
cairn_status store_doc_find(store *s, const char *path, const char *rkey, int64_t *id, char doc_hash[33]);

/* ---- removal by path ---- */
/* Remove every file and document at `path` or under `path/` (stored form;
 * "" = everything). The counts removed go to files and docs. */
cairn_status store_remove_under(store *s, const char *path, size_t *files, size_t *docs);

/* ---- reading for derived indexes ---- */
typedef struct store_chunk_row {
    int64_t id, doc_id;
    const char *title;          /* document title, may be NULL */
    const char *heading_path;   /* "" when none */
    const char *text;
    size_t text_len;
    int page;
    int ntokens;
} store_chunk_row;

/* Call fn for every chunk with id > after_id in id order (at most `limit`
 * rows when limit > 0). Pointers are valid during the call only. */
typedef cairn_status (*store_chunk_fn)(void *ctx, const store_chunk_row *row);
cairn_status store_chunks_since(store *s, int64_t after_id, size_t limit, store_chunk_fn fn, void *ctx);

/* Deleted chunk ids with seq > after_seq, in seq order. */
typedef cairn_status (*store_deletion_fn)(void *ctx, int64_t seq, int64_t chunk_id);
cairn_status store_deletions_since(store *s, int64_t after_seq, store_deletion_fn fn, void *ctx);
/* Drop log entries with seq <= upto (when every consumer has applied them). */
cairn_status store_deletions_trim(store *s, int64_t upto_seq);
/* A consumer of the log (a derived index, by name) has applied every entry
 * up to applied_seq: record it, and trim the log to the smallest position
 * every recorded consumer has applied (one transaction). A consumer that
 * falls behind a trim (e.g. its files were deleted) must rebuild from the
 * live chunks: the BM25 catch-up detects that (search.c). */
cairn_status store_deletions_ack(store *s, const char *consumer, int64_t applied_seq);

/* Highest chunk id ever assigned and highest deletion seq (0 when none). */
cairn_status store_marks(store *s, int64_t *max_chunk_id, int64_t *max_deletion_seq);

/* One chunk with its document, for displaying a result. */
typedef struct store_hit {
    int64_t chunk_id, doc_id;
    char *path, *rkey, *title, *type, *heading_path, *text;
    int page;
    int64_t ingested_at_ns, mtime_ns, expires_at;
    char *meta_json;            /* {"key": value, ...}; lists as arrays, dates as ISO strings */
} store_hit;
/* CAIRN_ERR_NOT_FOUND if the chunk no longer exists; CAIRN_ERR_CORRUPT if
 * its text does not match its checksum (a damaged page). */
cairn_status store_hit_get(store *s, int64_t chunk_id, store_hit *out);
/* The checksum stored with a chunk's text (chunks.text_hash). */
int64_t store_text_hash(const char *text, size_t len);
void store_hit_free(store_hit *h);

/* True for the builtin metadata names (path, type, title, size, modified,
 * ingested, content_hash, expires). */
bool store_meta_is_builtin(const char *key);

/* Typed metadata of one document (builtins included). */
cairn_status store_doc_meta(store *s, int64_t doc_id, meta_list *out);
/* Metadata as one JSON object (dates as ISO 8601 strings). Caller frees. */
cairn_status store_meta_json(const meta_list *m, char **out);

/* ---- status ---- */
typedef struct store_stats {
    int64_t files, files_skipped, files_partial, docs, chunks;
    int64_t files_failed;       /* state 3: the parser rejected them */
    int64_t bytes;              /* sum of source file sizes */
    int64_t text_bytes;         /* sum of chunk text bytes */
    int64_t db_bytes;           /* store.db + WAL on disk */
    int64_t last_sync_ns;       /* newest ingest time; 0 = never */
    int64_t oldest_ingest_ns;   /* oldest document ingest time */
    int64_t sync_gen;
} store_stats;
cairn_status store_get_stats(store *s, store_stats *out);

/* ---- one writer at a time (lock.c) ----
 * Every command that writes the store takes the writer lock first (an
 * flock on STORE_DIR/writer.lock, released by store_unlock_writer, by
 * store_close or by the process dying). Readers never take it. Without
 * `wait`, a held lock is CAIRN_ERR_BUSY with a message naming the holder:
 * "store is busy (pid N, cairn add since 2026-...Z); ...". `what` names the
 * command for that message. Taking it twice is a no-op. */
cairn_status store_lock_writer(store *s, const char *what, bool wait);
void store_unlock_writer(store *s);
bool store_is_locked(const store *s);
/* The same lock on a store directory without opening the database (cairn
 * repair, when store.db itself is damaged): *fd holds it until closed, or
 * until handed to an open store with store_adopt_lock. */
cairn_status store_lock_dir(const char *dir, const char *what, bool wait, int *fd);
void store_adopt_lock(store *s, int fd);

/* ---- derived-index hook ----
 * Commands that change the store (add, rm, sync, watch) call
 * store_update_derived() at the end so derived indexes catch up. The CLI
 * installs the hook when it opens a store (src/cli/cli_store.c). */
typedef cairn_status (*store_derived_fn)(store *s, void *ctx);
void store_set_derived_hook(store *s, store_derived_fn fn, void *ctx);
cairn_status store_update_derived(store *s);

#endif
