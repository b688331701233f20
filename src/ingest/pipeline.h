/*
 * pipeline.h — files and directories into the store:
 *   walk → stat → (unchanged? skip) → read → hash → detect → parse →
 *   metadata (parser, sidecar FILE.meta.json, --tag) → chunk → store.
 *
 * Used by `cairn add` and `cairn sync`. Each document is written atomically
 * (a savepoint); documents are grouped into transactions of about half a
 * second for speed, so a killed process loses at most the last group, and
 * the files of that group stay marked partial (or absent) so the next run
 * redoes them. Memory is bounded by one file (capped by max_file_bytes)
 * or, for record files (JSONL, CSV with a row per document, streamed),
 * one record (max_record_bytes) plus a 1 MiB window, plus its chunks:
 * nothing accumulates across files or records.
 *
 * Walking: directories recursively; symbolic links are followed, with loops
 * detected by (device, inode); hidden entries (".name") and the store
 * directory are skipped inside directories (not when named explicitly);
 * FILE.meta.json sidecars are metadata, never documents.
 */
#ifndef CAIRN_PIPELINE_H
#define CAIRN_PIPELINE_H

#include "ingest/ingest.h"
#include "chunk/chunk.h"
#include "store/store.h"
#include <signal.h>
#include <sys/stat.h>

typedef enum {
    PIPE_ADDED = 1,     /* new file ingested */
    PIPE_UPDATED,       /* changed file re-ingested */
    PIPE_UNCHANGED,     /* same size/mtime or same content: nothing to do */
    PIPE_SKIPPED,       /* binary, too large, unsupported: `reason` */
    PIPE_FAILED,        /* unreadable, permission denied, corrupt: `reason` */
    PIPE_WARNING        /* a note about a file that was still ingested (repaired UTF-8, bad sidecar) */
} pipe_outcome;

typedef struct pipe_event {
    pipe_outcome outcome;
    const char *path;       /* as given / found on disk */
    const char *reason;     /* skipped/failed/warning: why */
    uint64_t bytes;
    size_t docs, chunks;    /* added/updated: written */
    bool again;             /* skipped: nothing new (skipped before and unchanged since, or
                             * not a regular file): sync sums these up instead of listing them */
} pipe_event;

typedef void (*pipe_event_fn)(void *ctx, const pipe_event *ev);

typedef struct pipe_stats {
    size_t files_added, files_updated, files_unchanged, files_skipped, files_failed, warnings;
    size_t docs_written, docs_unchanged, docs_removed;
    size_t chunks_added, chunks_kept, chunks_removed;
    size_t files_lost;          /* added/updated in a group whose commit failed: not kept, redone next run */
    uint64_t bytes_read;        /* bytes of files read and parsed */
    uint64_t bytes_seen;        /* bytes of every regular file considered */
} pipe_stats;

typedef struct pipe_options {
    ingest_options ingest;
    chunk_options chunk;
    const meta_list *tags;          /* --tag k=v (override everything) */
    const char *const *excludes;    /* --exclude GLOB: matched against the base name and the path */
    size_t n_excludes;
    int64_t source_id;              /* 0 = none */
    int64_t ttl_s;                  /* 0 = none: documents expire ingest time + ttl */
    int64_t sync_gen;               /* generation stamped on files and documents */
    pipe_event_fn on_event;
    void *event_ctx;
    /* Optional: progress inside a big streamed record file (JSONL, CSV),
     * at most every 200 ms: bytes of `path` read so far out of `size`; the
     * file's own event follows when it is done. Called with event_ctx. */
    void (*on_progress)(void *ctx, const char *path, uint64_t done, uint64_t size);
    volatile sig_atomic_t *stop;    /* set by a signal handler: stop at the next file */
} pipe_options;

/* The options every command starts from: everything zero except the
 * ingest caps (max_file_mb, max_stream_gb, max_record_mb) and the chunk
 * size and overlap, read from the store's config (and its CAIRN_*
 * environment overrides). `cairn add`, `sync`, `watch` and `status` all
 * take theirs from here, so a cap set in config applies to every one. */
void pipeline_options_from_config(store *s, pipe_options *po);

typedef struct pipeline pipeline;

cairn_status pipeline_new(store *s, const pipe_options *opt, pipeline **out);
/* Add a file or a directory (recursively). Per-file problems are reported
 * through on_event and counted, not returned; the return value is for
 * failures of the store itself or an interruption. */
cairn_status pipeline_add_path(pipeline *p, const char *fs_path);
/* Set the source (and its TTL) stamped on the files and documents added
 * from now on. */
void pipeline_set_source(pipeline *p, int64_t source_id, int64_t ttl_s);
/* Walk without ingesting: the files and bytes pipeline_add_path would
 * consider (for progress ETA). Gives up with CAIRN_ERR_TOO_LARGE after
 * about 2 s (the caller then shows progress without a total). */
cairn_status pipeline_count(pipeline *p, const char *fs_path, uint64_t *files, uint64_t *bytes);
/* Walk like pipeline_add_path but only report each regular file it would
 * consider (after excludes, hidden entries, sidecars and the store itself
 * are left out). Used by sync to find new, moved and deleted files. */
typedef cairn_status (*pipe_list_fn)(void *ctx, const char *fs_path, const struct stat *sb);
cairn_status pipeline_list(pipeline *p, const char *fs_path, pipe_list_fn fn, void *ctx);
/* Commit the pending group. */
cairn_status pipeline_finish(pipeline *p);
const pipe_stats *pipeline_stats(const pipeline *p);
void pipeline_free(pipeline *p);

/* fnmatch-style glob ('*', '?', '[...]'); '*' does not cross '/' unless the
 * pattern is matched against a base name. */
bool pipeline_glob_match(const char *pattern, const char *s);

#endif
