/* testenv.c — where tests find ../shared. */
#include "base.h"
#include <stdlib.h>
#include <sys/stat.h>

const char *cairn_test_shared_dir(void)
{
    const char *cands[] = {getenv("CAIRN_TEST_SHARED"), getenv("CAIRN_TEST_SHARED_DEFAULT"), "../shared"};
    for (size_t i = 0; i < CAIRN_ARRAY_LEN(cands); i++) {
        struct stat sb;
        if (cands[i] && *cands[i] && stat(cands[i], &sb) == 0 && S_ISDIR(sb.st_mode))
            return cands[i];
        if (cands[i] && *cands[i])
            return NULL; /* an explicit setting that does not exist: absent */
    }
    return NULL;
}
