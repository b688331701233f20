/* fuzz_filter.c — libFuzzer harness for the filter language (docs/filters.md):
 * parse the input, type-check it against a fixed schema, and evaluate it
 * against a small document. Errors must come with a position inside the
 * source; nothing may crash or leak. */
#include "filter/filter.h"
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned types(void *ctx, const char *field)
{
    (void)ctx;
    if (!strcmp(field, "year") || !strcmp(field, "size"))
        return FT_NUMBER;
    if (!strcmp(field, "modified"))
        return FT_DATE;
    if (!strcmp(field, "draft"))
        return FT_BOOL;
    if (!strcmp(field, "tags"))
        return FT_LIST;
    if (!strcmp(field, "path") || !strcmp(field, "author") || !strcmp(field, "type"))
        return FT_STRING;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *src = cairn_malloc(size + 1);
    if (!src)
        return 0;
    memcpy(src, data, size);
    src[size] = 0;
    filter_node *f = NULL;
    if (filter_parse(src, 1700000000, &f) == CAIRN_OK) {
        if (filter_check(f, src, types, NULL) == CAIRN_OK) {
            meta_list doc = {0};
            const char *tags[] = {"a", "b"};
            if (meta_set_number(&doc, "year", 2020) == CAIRN_OK && meta_set_string(&doc, "path", "docs/x.md") == CAIRN_OK &&
                meta_set_string(&doc, "author", "ann") == CAIRN_OK && meta_set_bool(&doc, "draft", false) == CAIRN_OK &&
                meta_set_date(&doc, "modified", 1690000000) == CAIRN_OK && meta_set_list(&doc, "tags", tags, 2) == CAIRN_OK) {
                volatile bool m = filter_match(f, &doc);
                (void)m;
            }
            meta_list_free(&doc);
        }
        filter_free(f);
    }
    cairn_free(src);
    return 0;
}
