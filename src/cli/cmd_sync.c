/* cmd_sync.c — placeholder until this part lands. */
#include "cli/commands.h"
#include <stdio.h>

int cmd_sync(int argc, char **argv)
{
    (void)argc; (void)argv;
    fprintf(stderr, "cairn sync: not built yet\n");
    return 2;
}

int cmd_watch(int argc, char **argv)
{
    (void)argc; (void)argv;
    fprintf(stderr, "cairn watch: not built yet\n");
    return 2;
}

