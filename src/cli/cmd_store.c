/* cmd_store.c — placeholder until this part lands. */
#include "cli/commands.h"
#include <stdio.h>

int cmd_init(int argc, char **argv)
{
    (void)argc; (void)argv;
    fprintf(stderr, "cairn init: not built yet\n");
    return 2;
}

int cmd_add(int argc, char **argv)
{
    (void)argc; (void)argv;
    fprintf(stderr, "cairn add: not built yet\n");
    return 2;
}

int cmd_rm(int argc, char **argv)
{
    (void)argc; (void)argv;
    fprintf(stderr, "cairn rm: not built yet\n");
    return 2;
}

int cmd_status(int argc, char **argv)
{
    (void)argc; (void)argv;
    fprintf(stderr, "cairn status: not built yet\n");
    return 2;
}

