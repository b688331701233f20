/* main.c — the `cairn` command: dispatch to subcommands. */
#include "base/base.h"
#include "cli/commands.h"
#include <stdio.h>
#include <string.h>

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"init", cmd_init, "create a .cairn/ store here (or at --db DIR)"},
    {"add", cmd_add, "ingest files and directories"},
    {"rm", cmd_rm, "remove documents and everything derived from them"},
    {"status", cmd_status, "documents, chunks, bytes, index size, freshness"},
    {"ls", cmd_ls, "list documents (state, chunks, age) and skipped files with reasons"},
    {"show", cmd_show, "one document: metadata and chunks, where each came from"},
    {"search", cmd_search, "search the store (BM25)"},
    {"ask", cmd_ask, "answer a question from the store, with citations and sources"},
    {"chat", cmd_chat, "a conversation over the store (answers with citations)"},
    {"eval", cmd_eval, "evaluate retrieval on a BEIR-layout collection"},
    {"sync", cmd_sync, "bring the store in line with its sources"},
    {"watch", cmd_watch, "keep syncing as files change"},
    {"model", cmd_model, "inspect a GGUF model: model info FILE"},
    {"quantize", cmd_quantize, "quantize a GGUF model: quantize IN OUT TYPE"},
    {"generate", cmd_generate, "generate text with a local GGUF model"},
    {"bench", cmd_bench, "measure prompt and generation speed of a model"},
    {"tokenize", cmd_tokenize, "tokenize text (or decode ids) with a model's tokenizer"},
    {"check", cmd_check, "check the store, the index and the sources (exit 0 ok, 1 problems, 2 error)"},
    {"repair", cmd_repair, "rebuild a damaged store from its sources (keeps a backup)"},
    {"serve", cmd_serve, "OpenAI-compatible HTTP server over the store and models"},
    {"embed", cmd_embed, "sentence embeddings (or rerank scores) from a BERT-family model"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: cairn COMMAND [ARGS...]\n\ncommands:\n");
    for (size_t i = 0; i < CAIRN_ARRAY_LEN(commands); i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n'cairn COMMAND --help' shows a command's options.\n");
}

int main(int argc, char **argv)
{
    /* "cairn --db DIR COMMAND ..." = "cairn COMMAND ... --db DIR": move the
     * global option behind the command name (commands accept it anywhere). */
    if (argc >= 4 && !strcmp(argv[1], "--db")) {
        char *o = argv[1], *v = argv[2];
        for (int i = 3; i < argc; i++)
            argv[i - 2] = argv[i];
        argv[argc - 2] = o;
        argv[argc - 1] = v;
    } else if (argc >= 3 && !strncmp(argv[1], "--db=", 5)) {
        char *o = argv[1];
        for (int i = 2; i < argc; i++)
            argv[i - 1] = argv[i];
        argv[argc - 1] = o;
    }
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("cairn %s\n", CAIRN_VERSION);
        return 0;
    }
    for (size_t i = 0; i < CAIRN_ARRAY_LEN(commands); i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "cairn: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
