/* cmd_search.c — placeholder until this part lands. */
#include "cli/commands.h"
#include <stdio.h>

int cmd_search(int argc, char **argv)
{
    (void)argc; (void)argv;
    fprintf(stderr, "cairn search: not built yet\n");
    return 2;
}

int cmd_eval(int argc, char **argv)
{
    (void)argc; (void)argv;
    fprintf(stderr, "cairn eval: not built yet\n");
    return 2;
}

