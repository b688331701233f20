/* fuzz_gguf.c — libFuzzer harness for the GGUF reader (see docs/models.md):
 * parse the input with gguf_open_mem, then touch everything a caller may read. */
#include "gguf/gguf.h"
#include <stdio.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exactly sized copy so ASan sees any read past the end. */
    uint8_t *img = cairn_malloc(size ? size : 1);
    if (!img)
        return 0;
    memcpy(img, data, size);
    gguf_file *g = NULL;
    if (gguf_open_mem(img, size, "fuzz", &g) == CAIRN_OK) {
        volatile uint64_t sum = 0;
        for (uint64_t i = 0; i < gguf_kv_count(g); i++) {
            const gguf_kv *kv = gguf_kv_at(g, i);
            sum += (uint8_t)kv->key.ptr[kv->key.len - 1];
            if (kv->type == GGUF_TYPE_ARRAY && kv->v.arr.type == GGUF_TYPE_STRING)
                for (uint64_t j = 0; j < kv->v.arr.count; j++) {
                    gguf_str s = gguf_arr_str(kv, j);
                    if (s.len)
                        sum += (uint8_t)s.ptr[s.len - 1];
                }
            else if (kv->type == GGUF_TYPE_ARRAY && kv->v.arr.count) {
                double d;
                if (gguf_arr_f64(kv, kv->v.arr.count - 1, &d))
                    sum += d == d;
            }
            char key[256];
            snprintf(key, sizeof key, "%.*s", (int)(kv->key.len < 200 ? kv->key.len : 200), kv->key.ptr);
            uint32_t u;
            gguf_get_u32(g, key, &u);
        }
        for (uint64_t i = 0; i < gguf_tensor_count(g); i++) {
            const gguf_tensor *t = gguf_tensor_at(g, i);
            sum += ((const uint8_t *)t->data)[0] + ((const uint8_t *)t->data)[t->nbytes - 1];
        }
        (void)sum;
        gguf_close(g);
    }
    cairn_free(img);
    return 0;
}
