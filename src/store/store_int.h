/* store_int.h — internals shared by the store's source files. */
#ifndef CAIRN_STORE_INT_H
#define CAIRN_STORE_INT_H

#include "store/store.h"
#include <sqlite3.h>

typedef enum {
    STMT_STATE_GET, STMT_STATE_SET,
    STMT_FILE_GET, STMT_FILE_INSERT, STMT_FILE_UPDATE, STMT_FILE_TOUCH, STMT_FILE_DELETE,
    STMT_FILE_DOCS, STMT_FILE_STALE_DOCS, STMT_FILE_COUNT_DOCS,
    STMT_DOC_FIND, STMT_DOC_INSERT, STMT_DOC_UPDATE, STMT_DOC_TOUCH, STMT_DOC_DELETE,
    STMT_META_DELETE, STMT_META_DELETE_KEY, STMT_META_INSERT, STMT_META_SELECT,
    STMT_CHUNK_KEYS, STMT_CHUNK_INSERT, STMT_CHUNK_SET_ORD, STMT_CHUNK_DELETE, STMT_CHUNK_LOG,
    STMT_CHUNK_LOG_DOC, STMT_CHUNK_DELETE_DOC,
    STMT_CHUNKS_SINCE, STMT_DELETIONS_SINCE, STMT_HIT,
    STMT_FILES_UNDER, STMT_DOCS_UNDER_NOFILE,
    STMT_FILE_MOVE, STMT_DOCS_MOVE, STMT_META_MOVE,
    STMT_SOURCE_UPSERT, STMT_SOURCE_TOUCH,
    STMT_BEGIN, STMT_COMMIT, STMT_SAVEPOINT1, STMT_RELEASE1,
    STMT_COUNT
} store_stmt_id;

struct store {
    sqlite3 *db;
    char *dir, *root;
    store_config cfg;
    int txn_depth;
    sqlite3_stmt *stmts[STMT_COUNT];
    store_derived_fn hook;
    void *hook_ctx;
    int lock_fd;            /* > 0 while this process holds writer.lock (lock.c) */
};

/* The fault-injecting VFS (vfs_fault.c) when I/O fault injection is armed,
 * else NULL (the default VFS). */
const char *store_vfs_name(void);
/* errno of the shim's last injected failure on this thread (then reset). */
int store_vfs_take_errno(void);

/* A cached prepared statement, reset and unbound. */
cairn_status store_stmt(store *s, store_stmt_id id, sqlite3_stmt **out);
/* Step a write statement to completion and reset it. */
cairn_status store_step_done(store *s, sqlite3_stmt *st, const char *what);
cairn_status store_exec(store *s, const char *sql, const char *what);
/* Map the connection's last error to a status with a detail. */
cairn_status store_sql_fail(store *s, cairn_status st, const char *what);

#endif
