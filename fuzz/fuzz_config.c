/* fuzz_config.c — libFuzzer harness for the INI config file (.cairn/config,
 * store/config.h): parse the input on top of the defaults, then read keys
 * back. Bad lines must be errors naming the line, never crashes. */
#include "store/config.h"
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 16)
        return 0;
    char *text = cairn_malloc(size ? size : 1);   /* exactly sized, not terminated */
    if (!text)
        return 0;
    memcpy(text, data, size);
    store_config c;
    store_config_default(&c);
    if (store_config_parse(&c, "fuzz", text, size) == CAIRN_OK) {
        static const char *const keys[][2] = {{"ingest", "max_file_mb"}, {"chunk", "size"},
                                              {"analyzer", "stemmer"}, {"bm25", "k1"}, {"x", "y"}};
        volatile size_t sum = c.chunk_tokens + c.chunk_overlap + c.max_file_bytes;
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
            const char *v = store_config_get(&c, keys[i][0], keys[i][1]);
            sum += v ? strlen(v) : 0;
        }
        (void)sum;
    }
    store_config_free(&c);
    cairn_free(text);
    return 0;
}
