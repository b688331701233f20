/* cmd_model.c — placeholder until this part lands. */
#include "cli/commands.h"
#include <stdio.h>

int cmd_model(int argc, char **argv)
{
    (void)argc; (void)argv;
    fprintf(stderr, "cairn model: not built yet\n");
    return 2;
}

int cmd_quantize(int argc, char **argv)
{
    (void)argc; (void)argv;
    fprintf(stderr, "cairn quantize: not built yet\n");
    return 2;
}

