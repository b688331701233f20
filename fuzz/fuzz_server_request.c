/* fuzz_server_request.c — libFuzzer harness for what the server does with a
 * request body before any handler logic (src/server/util.c): UTF-8 checks,
 * the escaped-NUL scan, cJSON parsing into an object, field lookups as the
 * handlers make them, upload-name checks, base64 both ways. HTTP framing
 * itself is libmicrohttpd's. Invariants checked: sanitized text is valid
 * UTF-8 and equals the input when that was valid; the ready prefix never
 * ends inside a character; base64 round-trips. util.c is compiled in (the
 * server part needs libmicrohttpd and the engine, which the fuzz library
 * does not build). */
#include "../src/server/util.c"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *d = cairn_malloc(size ? size : 1);   /* exactly sized: ASan sees overreads */
    if (!d)
        return 0;
    memcpy(d, data, size);
    const char *code;
    char msg[256];
    cJSON *j = srv_parse_body(d, size, &code, msg, sizeof msg);
    if (j) {
        static const char *const fields[] = {"model", "messages", "prompt", "stop", "max_tokens", "stream",
                                             "stream_options", "input", "query", "filter", "k", "name", "text"};
        for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, fields[i]);
            if (cJSON_IsString(v) && !srv_utf8_valid(v->valuestring, strlen(v->valuestring)))
                abort();   /* a string out of a valid UTF-8 body must be valid */
            if (cJSON_IsString(v))
                (void)srv_upload_name_ok(v->valuestring, strlen(v->valuestring));
            const cJSON *it;
            cJSON_ArrayForEach(it, v) (void)cJSON_GetObjectItemCaseSensitive(it, "content");
        }
        cJSON_Delete(j);
    }
    cairn_buf b;
    cairn_buf_init(&b, 0);
    if (srv_utf8_append(&b, d, size) == CAIRN_OK) {
        if (!srv_utf8_valid(b.data ? b.data : "", b.len))
            abort();
        if (srv_utf8_valid(d, size) && (b.len != size || (size && memcmp(b.data, d, size))))
            abort();
    }
    size_t r = srv_utf8_ready(d, size);
    if (r > size)
        abort();
    cairn_buf_reset(&b);
    if (srv_base64_encode(d, size, &b) == CAIRN_OK) {
        char *back = NULL;
        size_t blen = 0;
        if (srv_base64_decode(b.data ? b.data : "", b.len, size + 1, &back, &blen) == CAIRN_OK &&
            (blen != size || (size && memcmp(back, d, size))))
            abort();
        cairn_free(back);
    }
    char *junk = NULL;
    size_t jl = 0;
    if (srv_base64_decode(d, size, 1 << 20, &junk, &jl) == CAIRN_OK)
        cairn_free(junk);
    cairn_buf_free(&b);
    cairn_free(d);
    return 0;
}
