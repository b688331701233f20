/*
 * store_list.h — reading the store for people: every document with its
 * state, chunks and age, the files that were skipped or did not finish (with
 * their reasons), and one document's chunks with where each came from
 * (`cairn ls`, `cairn show`). Read-only; one SQL query per call, rows handed
 * to a callback (strings valid during the call only).
 */
#ifndef CAIRN_STORE_LIST_H
#define CAIRN_STORE_LIST_H

#include "store/store.h"

typedef struct store_doc_row {
    int64_t id;
    const char *path, *rkey, *type, *title;
    const char *state;          /* "ok", or "partial" when its file has not finished */
    int64_t nchunks, nbytes, ingested_at_ns, expires_at;
} store_doc_row;
typedef cairn_status (*store_doc_row_fn)(void *ctx, const store_doc_row *r);

/* Documents by path and key. */
cairn_status store_list_docs(store *s, store_doc_row_fn fn, void *ctx);
/* One document by id (CAIRN_ERR_NOT_FOUND). */
cairn_status store_doc_row_get(store *s, int64_t doc_id, store_doc_row_fn fn, void *ctx);
/* The documents of one stored path (a JSONL file has many); *n = how many. */
cairn_status store_docs_of_path(store *s, const char *path, store_doc_row_fn fn, void *ctx, size_t *n);

typedef struct store_file_row {
    const char *path, *type, *reason;
    const char *state;          /* "skipped" or "partial" (failed or interrupted: retried next run) */
    int64_t size, ingested_at_ns;
} store_file_row;
typedef cairn_status (*store_file_row_fn)(void *ctx, const store_file_row *r);

/* Files that are not fully in: skipped (with the reason) and partial. */
cairn_status store_list_problem_files(store *s, store_file_row_fn fn, void *ctx);

typedef struct store_chunk_info {
    int64_t id;
    int ord, page, ntokens;
    const char *heading_path, *text;
} store_chunk_info;
typedef cairn_status (*store_chunk_info_fn)(void *ctx, const store_chunk_info *c);

/* A document's chunks in order. */
cairn_status store_doc_chunks(store *s, int64_t doc_id, store_chunk_info_fn fn, void *ctx);

#endif
