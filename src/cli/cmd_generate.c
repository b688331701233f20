/* cmd_generate.c — placeholder until this part lands. */
#include "cli/commands.h"
#include <stdio.h>

int cmd_generate(int argc, char **argv)
{
    (void)argc; (void)argv;
    fprintf(stderr, "cairn generate: not built yet\n");
    return 2;
}

int cmd_bench(int argc, char **argv)
{
    (void)argc; (void)argv;
    fprintf(stderr, "cairn bench: not built yet\n");
    return 2;
}

