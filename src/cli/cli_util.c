/* cli_util.c — see cli_util.h. */
#include "cli/cli_util.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

int cli_print_json(cJSON *j)
{
    char *s = j ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    if (!s) {
        fprintf(stderr, "cairn: out of memory\n");
        return 1;
    }
    puts(s);
    cJSON_free(s);
    return 0;
}

bool cli_parse_u64(const char *s, uint64_t *out)
{
    if (!s || *s < '0' || *s > '9')
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}
