/*
 * repair.h — checking a store and rebuilding a damaged one.
 *
 * check (check.c) reads, never writes, and reports findings one by one:
 *   store     SQLite's quick_check (integrity_check with `full`), then the
 *             store's own invariants in one read transaction: every
 *             document has exactly its chunks, no chunk or metadata row
 *             without its document, every file recorded complete has all
 *             its documents, every chunk's text matches its checksum.
 *   index     the BM25 index against the store: it opens and validates,
 *             holds no chunk the store lacks (beyond deletions it has yet
 *             to apply), misses no chunk it claims to cover.
 *   sources   the recorded sources against the disk: roots that are gone,
 *             files new, changed or deleted since the last sync.
 * A PROBLEM is damage or an inconsistency; a NOTE is a state the next
 * command resolves by itself (an index behind the store, partial files of
 * an interrupted run, stale sources, files that failed to parse).
 *
 * repair (repair.c) rebuilds: it keeps the damaged store.db (and its WAL)
 * as store.db.damaged-TIMESTAMP, salvages the recorded sources (what is
 * readable), creates a fresh store.db with them, and drops the derived
 * index; the caller then re-ingests the sources (sync) and the index
 * catches up. Documents whose files are no longer on disk cannot be
 * re-ingested: repair counts the ones it could read.
 */
#ifndef CAIRN_REPAIR_H
#define CAIRN_REPAIR_H

#include "base/base.h"

typedef enum { CHECK_NOTE, CHECK_PROBLEM } check_level;

/* area: "store", "index" or "sources". */
typedef void (*check_report_fn)(void *ctx, check_level level, const char *area, const char *msg);

typedef struct check_options {
    bool full;          /* PRAGMA integrity_check instead of quick_check */
    bool no_sources;    /* skip the walk of the sources */
} check_options;

typedef struct check_result {
    size_t problems, notes;
    int64_t docs, chunks, chunks_verified;  /* what was looked at */
} check_result;

/* Check the store in `store_dir` (the .cairn directory). A store that
 * cannot be opened is a PROBLEM, not an error: the return value is for
 * failures of the check itself (out of memory). */
cairn_status store_check(const char *store_dir, const check_options *o, check_report_fn fn, void *ctx,
                         check_result *res);

typedef struct repair_report {
    char backup[4200];          /* where the damaged store.db went ("" = nothing to back up) */
    size_t sources;             /* sources salvaged */
    bool sources_damaged;       /* the sources table could not be read to its end */
    int64_t old_docs;           /* documents the damaged store held (-1: unreadable) */
    int64_t old_docs_without_file;  /* of those, documents whose file is no longer on disk (-1: unknown) */
} repair_report;

/* Steps 1-3 of a repair (backup, salvage, fresh store, index dropped).
 * The caller holds the writer lock (store_lock_dir) and re-ingests after. */
cairn_status store_repair_salvage(const char *store_dir, repair_report *rep);

#endif
