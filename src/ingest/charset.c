/*
 * charset.c — plain text that is not UTF-8: the charset is guessed with
 * uchardet (Debian libuchardet, Mozilla's detector) and the text converted
 * with iconv, so "Cr\xe8me" in Latin-1 becomes "Crème" instead of
 * "Cr\uFFFDme". The charset assumed is recorded (metadata `encoding`,
 * ingest_doc.encoding) and said by the pipeline as a warning.
 *
 * An XML declaration's encoding="..." is taken as it says (uchardet reads
 * short Latin-2 text as IBM852, for one). When nothing is converted: valid UTF-8 (or ASCII); a detector answer of
 * UTF-8/ASCII or none (mostly UTF-8 with a few bad bytes: those are
 * repaired to U+FFFD as before); a charset iconv does not know.
 * UTF-16/UTF-32 with a byte order mark are converted too (charset_bom).
 * Bytes invalid in the detected charset become U+FFFD.
 * Cost: uchardet over at most the first 4 MiB, then one iconv pass;
 * output at most 4 bytes per input byte.
 */
#include "ingest/parse_common.h"
#include <errno.h>
#include <iconv.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <uchardet/uchardet.h>

#define DETECT_BYTES ((size_t)4 << 20)

const char *charset_bom(const char *data, size_t len, size_t *bom_len)
{
    const unsigned char *u = (const unsigned char *)data;
    *bom_len = 0;
    if (len >= 4 && u[0] == 0xFF && u[1] == 0xFE && u[2] == 0 && u[3] == 0) {
        *bom_len = 4;
        return "UTF-32LE";
    }
    if (len >= 4 && u[0] == 0 && u[1] == 0 && u[2] == 0xFE && u[3] == 0xFF) {
        *bom_len = 4;
        return "UTF-32BE";
    }
    if (len >= 2 && u[0] == 0xFF && u[1] == 0xFE) {
        *bom_len = 2;
        return "UTF-16LE";
    }
    if (len >= 2 && u[0] == 0xFE && u[1] == 0xFF) {
        *bom_len = 2;
        return "UTF-16BE";
    }
    return NULL;
}

cairn_status charset_convert(const char *data, size_t len, const char *from, char **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    iconv_t cd = iconv_open("UTF-8", from);
    if (cd == (iconv_t)-1)
        return cairn_fail(CAIRN_ERR_UNSUPPORTED, "charset %s is not known to iconv", from);
    size_t cap;
    if (!cairn_mul_ok(len, 4, &cap) || !cairn_add_ok(cap, 16, &cap)) {
        iconv_close(cd);
        return cairn_fail(CAIRN_ERR_TOO_LARGE, "text too large to convert");
    }
    char *o = cairn_malloc(cap);
    if (!o) {
        iconv_close(cd);
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory converting from %s", from);
    }
    char *in = (char *)data, *op = o;
    size_t inleft = len, outleft = cap - 1;
    while (inleft) {
        size_t r = iconv(cd, &in, &inleft, &op, &outleft);
        if (r != (size_t)-1)
            break;
        if (errno == EILSEQ || errno == EINVAL) {
            /* not valid in that charset (or cut short at the end): U+FFFD, go on */
            if (outleft < 3)
                break;
            memcpy(op, "\xEF\xBF\xBD", 3);
            op += 3;
            outleft -= 3;
            in++;
            inleft--;
            iconv(cd, NULL, NULL, NULL, NULL);
            continue;
        }
        break; /* E2BIG cannot happen: 4 bytes out per byte in is the maximum */
    }
    iconv_close(cd);
    /* NUL bytes cannot live in C strings: the callers already refused
     * files with NULs, but UTF-16 "\0\0" would make one */
    size_t n = (size_t)(op - o), j = 0;
    for (size_t i = 0; i < n; i++)
        if (o[i])
            o[j++] = o[i];
    o[j] = 0;
    *out = o;
    *out_len = j;
    return CAIRN_OK;
}

/* The charset an XML declaration names (<?xml version="1.0"
 * encoding="iso-8859-2"?>), which beats a guess; "" when there is none. */
static void xml_declared(const char *data, size_t len, char name[32])
{
    name[0] = 0;
    size_t n = len < 256 ? len : 256;
    if (n < 6 || memcmp(data, "<?xml", 5) != 0)
        return;
    const char *end = memchr(data, '>', n);
    if (!end)
        return;
    for (const char *p = data; p + 9 < end; p++) {
        if (memcmp(p, "encoding=", 9) != 0)
            continue;
        p += 9;
        char q = *p;
        if (q != '"' && q != '\'')
            return;
        p++;
        size_t k = 0;
        while (p < end && *p != q && k < 31)
            name[k++] = *p++;
        name[k] = 0;
        return;
    }
}

cairn_status charset_to_utf8(const char *data, size_t len, char **out, size_t *out_len, char enc[32])
{
    *out = NULL;
    *out_len = 0;
    enc[0] = 0;
    if (utf8_valid(data, len))
        return CAIRN_OK;
    char decl[32];
    xml_declared(data, len, decl);
    if (decl[0] && strcasecmp(decl, "UTF-8") != 0) {
        cairn_status dst = charset_convert(data, len, decl, out, out_len);
        if (dst == CAIRN_OK) {
            snprintf(enc, 32, "%s", decl);
            return CAIRN_OK;
        }
        if (dst != CAIRN_ERR_UNSUPPORTED)
            return dst;
        cairn_clear_error();
    }
    uchardet_t ud = uchardet_new();
    if (!ud)
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory (uchardet)");
    cairn_status st = CAIRN_OK;
    if (uchardet_handle_data(ud, data, CAIRN_MIN(len, DETECT_BYTES)) != 0)
        st = cairn_fail(CAIRN_ERR_NOMEM, "out of memory (uchardet)");
    uchardet_data_end(ud);
    const char *cs = st == CAIRN_OK ? uchardet_get_charset(ud) : NULL;
    char name[32] = "";
    if (cs)
        snprintf(name, sizeof name, "%s", cs);
    uchardet_delete(ud);
    CAIRN_TRY(st);
    if (!name[0] || !strcasecmp(name, "ASCII") || !strcasecmp(name, "UTF-8"))
        return CAIRN_OK; /* broken UTF-8: repaired by the caller */
    st = charset_convert(data, len, name, out, out_len);
    if (st == CAIRN_ERR_UNSUPPORTED) {
        cairn_clear_error();
        return CAIRN_OK;
    }
    CAIRN_TRY(st);
    snprintf(enc, 32, "%s", name);
    return CAIRN_OK;
}
