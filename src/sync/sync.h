/*
 * sync.h — bring the store in line with its sources.
 *
 * For each path (a file or a directory): files on disk that the store lacks
 * are added; changed files (content hash, checked only when size or mtime
 * changed) are re-ingested, their old chunks removed in the same
 * transaction; files that disappeared are removed with everything derived
 * from them; a file that disappeared while a file with the same content
 * appeared is a move: its path and path metadata are updated and nothing is
 * re-derived. Expired documents (`expires` metadata or a source TTL) are
 * removed. Unchanged files cost one stat and one indexed lookup.
 *
 * Crash safety comes from the pipeline (one transaction per document group;
 * partial files are redone) and from moves and deletions being single
 * transactions: a sync killed at any point leaves a consistent store, and the
 * next sync completes the job.
 */
#ifndef CAIRN_SYNC_H
#define CAIRN_SYNC_H

#include "ingest/pipeline.h"

typedef struct sync_report {
    size_t added, updated, moved, removed, unchanged, skipped, failed, expired;
} sync_report;

typedef struct sync_options {
    pipe_options pipe;          /* as for `cairn add`; pipe.sync_gen is set by sync_run */
} sync_options;

/* Sync the given filesystem paths, or every recorded source when n == 0. */
cairn_status sync_run(store *s, const char *const *paths, size_t n, sync_options *opt, sync_report *rep);

/* Remove documents whose expiry time has passed. */
cairn_status sync_remove_expired(store *s, int64_t now_s, size_t *removed);

/* Staleness without changing anything: per recorded source, files new on
 * disk, changed (size or mtime differ from the store) and gone. Costs one
 * walk and stat per file. */
typedef struct sync_stale_report { size_t sources, new_files, changed_files, missing_files; } sync_stale_report;
cairn_status sync_stale(store *s, sync_stale_report *rep);

/* Recorded sources (filesystem roots given to `cairn add`). Caller frees
 * each string and the array with cairn_free. */
cairn_status sync_sources(store *s, char ***roots, size_t *n);

#endif
