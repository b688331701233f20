/* cmd_check.c — cairn check and cairn repair (the library part is
 * src/repair/, see repair.h). Exit codes of check, fit for cron:
 * 0 no problem (notes allowed), 1 problems found, 2 check itself failed
 * (no store, bad usage, out of memory). */
#include "cli/cli_store.h"
#include "cli/cli_util.h"
#include "cli/commands.h"
#include "repair/repair.h"
#include "sync/sync.h"
#include <stdio.h>
#include <string.h>
#include <unistd.h>

typedef struct check_ui { bool json, quiet; cJSON *items; } check_ui;

static void on_finding(void *ctx, check_level lvl, const char *area, const char *msg)
{
    check_ui *u = ctx;
    if (u->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "level", lvl == CHECK_PROBLEM ? "problem" : "note");
        cJSON_AddStringToObject(o, "area", area);
        cJSON_AddStringToObject(o, "message", msg);
        cJSON_AddItemToArray(u->items, o);
        return;
    }
    if (u->quiet && lvl != CHECK_PROBLEM)
        return;
    char safe[1600];
    printf("%s: %s: %s\n", lvl == CHECK_PROBLEM ? "problem" : "note", area, cli_safe_name(msg, safe, sizeof safe));
}

int cmd_check(int argc, char **argv)
{
    const char *db = NULL;
    if (!cli_take_db(&argc, argv, &db))
        return 2;
    check_options o = {0};
    check_ui u = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: cairn check [--full] [--no-sources] [--json] [--quiet] [--db DIR]\n\n"
                   "Check the store: SQLite's quick_check (--full: integrity_check), the store's own\n"
                   "invariants and chunk checksums, the search index against the store, and the\n"
                   "sources against the disk. Reads only. Prints problems (damage, inconsistencies)\n"
                   "and notes (states the next command resolves: an index behind, stale sources).\n"
                   "Exit status: 0 no problem, 1 problems found (see `cairn repair`), 2 check failed.\n");
            return 0;
        }
        if (!strcmp(a, "--full"))
            o.full = true;
        else if (!strcmp(a, "--no-sources"))
            o.no_sources = true;
        else if (!strcmp(a, "--json"))
            u.json = true;
        else if (!strcmp(a, "--quiet") || !strcmp(a, "-q"))
            u.quiet = true;
        else {
            fprintf(stderr, "cairn check: unknown argument '%s'\n", a);
            return 2;
        }
    }
    char dir[4200];
    cairn_status st = cli_find_store(db, dir, sizeof dir);
    if (st != CAIRN_OK) {
        cli_error("check", st);
        return 2;
    }
    if (u.json && !(u.items = cJSON_CreateArray())) {
        fprintf(stderr, "cairn check: out of memory\n");
        return 2;
    }
    check_result r;
    st = store_check(dir, &o, on_finding, &u, &r);
    if (st != CAIRN_OK) {
        cJSON_Delete(u.items);
        cli_error("check", st);
        return 2;
    }
    if (u.json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "store", dir);
        cJSON_AddBoolToObject(j, "ok", r.problems == 0);
        cJSON_AddNumberToObject(j, "problems", (double)r.problems);
        cJSON_AddNumberToObject(j, "notes", (double)r.notes);
        cJSON_AddNumberToObject(j, "documents", (double)r.docs);
        cJSON_AddNumberToObject(j, "chunks", (double)r.chunks);
        cJSON_AddNumberToObject(j, "chunks_verified", (double)r.chunks_verified);
        cJSON_AddItemToObject(j, "findings", u.items);
        if (cli_print_json(j))
            return 2;
    } else if (!r.problems) {
        char notes[48] = "";
        if (r.notes)
            snprintf(notes, sizeof notes, "; %zu note%s", r.notes, r.notes == 1 ? "" : "s");
        if (!u.quiet)
            printf("cairn check: ok (%lld documents, %lld chunks, %lld checksums verified%s)\n", (long long)r.docs,
                   (long long)r.chunks, (long long)r.chunks_verified, notes);
    } else {
        printf("cairn check: %zu problem%s, %zu note%s; `cairn repair` rebuilds the store from its sources\n",
               r.problems, r.problems == 1 ? "" : "s", r.notes, r.notes == 1 ? "" : "s");
    }
    return r.problems ? 1 : 0;
}

static void repair_event(void *ctx, const pipe_event *ev)
{
    (void)ctx;
    if (ev->outcome != PIPE_FAILED)
        return;
    char name[1024];
    fprintf(stderr, "failed: %s: %s\n", cli_safe_name(ev->path, name, sizeof name), ev->reason ? ev->reason : "");
}

int cmd_repair(int argc, char **argv)
{
    const char *db = NULL;
    if (!cli_take_db(&argc, argv, &db))
        return 2;
    bool wait = cli_take_flag(&argc, argv, "--wait");
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: cairn repair [--wait] [--db DIR]\n\n"
                   "Rebuild the store: the current store.db (and its WAL) is kept as\n"
                   "store.db.damaged-TIMESTAMP, the recorded sources are salvaged into a fresh\n"
                   "store.db, every source still on disk is ingested again, and the search index\n"
                   "is rebuilt. Documents whose files are no longer on disk cannot come back.\n");
            return 0;
        }
        fprintf(stderr, "cairn repair: unknown argument '%s'\n", argv[i]);
        return 2;
    }
    char dir[4200];
    cairn_status st = cli_find_store(db, dir, sizeof dir);
    if (st != CAIRN_OK) {
        cli_error("repair", st);
        return 1;
    }
    int fd = -1;
    st = store_lock_dir(dir, "cairn repair", false, &fd);
    if (st == CAIRN_ERR_BUSY && wait) {
        fprintf(stderr, "cairn repair: waiting: %s\n", cairn_last_error());
        st = store_lock_dir(dir, "cairn repair", true, &fd);
    }
    if (st == CAIRN_ERR_BUSY) {
        fprintf(stderr, "cairn repair: %s; retry later, or pass --wait to wait for it\n", cairn_last_error());
        return 1;
    }
    if (st != CAIRN_OK) {
        cli_error("repair", st);
        return 1;
    }
    repair_report rep;
    st = store_repair_salvage(dir, &rep);
    if (st != CAIRN_OK) {
        cli_error("repair", st);
        close(fd);
        return 1;
    }
    if (rep.backup[0])
        printf("the damaged store is kept as %s\n", rep.backup);
    printf("salvaged %zu source%s%s\n", rep.sources, rep.sources == 1 ? "" : "s",
           rep.sources_damaged ? " (the list of sources was damaged: add any missing one again with cairn add)" : "");
    store *s = NULL;
    st = cli_open_store(dir, &s);
    if (st != CAIRN_OK) {
        cli_error("repair", st);
        close(fd);
        return 1;
    }
    store_adopt_lock(s, fd);
    sync_options o;
    memset(&o, 0, sizeof o);
    pipeline_options_from_config(s, &o.pipe);
    o.pipe.on_event = repair_event;
    sync_report r;
    st = sync_run(s, NULL, 0, &o, &r);
    int rc = 0;
    if (st != CAIRN_OK) {
        cli_error("repair", st);
        rc = 1;
    } else {
        printf("re-ingested %zu file%s (%zu skipped, %zu failed)\n", r.added, r.added == 1 ? "" : "s", r.skipped,
               r.failed);
        if (rep.old_docs_without_file > 0)
            printf("%lld document%s of the damaged store came from files no longer on disk and could not be rebuilt\n",
                   (long long)rep.old_docs_without_file, rep.old_docs_without_file == 1 ? "" : "s");
        printf("repaired; `cairn check` should now report no problem\n");
        rc = r.failed ? 1 : 0;
    }
    store_close(s);
    return rc;
}
