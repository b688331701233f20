/* cli_store.h — finding and opening the store from the command line.
 *
 * A store is found, in order: from `--db DIR` (DIR/.cairn, or DIR itself
 * when it is a .cairn directory), from $CAIRN_DB (same forms), or by
 * walking up from the current directory to the first directory holding
 * .cairn/, like git. */
#ifndef CAIRN_CLI_STORE_H
#define CAIRN_CLI_STORE_H

#include "ingest/pipeline.h"
#include "search/dense.h"
#include "store/store.h"
#include <stddef.h>

/* Remove "--db DIR" / "--db=DIR" from anywhere in argv (argv[0] is the
 * command name). Returns false (after printing) on a missing value. */
bool cli_take_db(int *argc, char **argv, const char **db);

/* Resolve the .cairn directory into `out`. */
cairn_status cli_find_store(const char *db, char *out, size_t out_len);

/* Find, open, and install the derived-index hook. Prints nothing. */
cairn_status cli_open_store(const char *db, store **out);

/* Remove every `flag` (e.g. "--wait") from argv; true if there was one. */
bool cli_take_flag(int *argc, char **argv, const char *flag);

/* cli_open_store for a command that writes: also takes the store's writer
 * lock (store_lock_writer). With `wait`, a held lock is waited for (after
 * printing whom for); without, it fails with "store is busy (pid N, ...)".
 * Prints on failure (as "cairn CMD: ..."). */
cairn_status cli_open_store_writer(const char *db, const char *cmd, bool wait, store **out);
/* The store's embedding model (set->model), loaded once per process. */
cairn_status cli_embedder(const dense_settings *set, cairn_embedder **out);

/* Print "cairn CMD: <detail>" for a failed status. */
void cli_error(const char *cmd, cairn_status st);

#endif
