/*
 * tok_unicode.c — UTF-8 decoding and the few Unicode properties the
 * tokenizers need (general categories, lower case, NFD base) via utf8proc.
 */
#include "tokenizer/tok_internal.h"

#include <string.h>
#include <utf8proc.h>

/* Lenient like llama.cpp's decoder (lead-byte length, continuation bytes
 * checked, overlong forms accepted), except that surrogates and values above
 * U+10FFFF become U+FFFD so that re-encoding always yields valid UTF-8. */
uint32_t tok_utf8_next(const char *s, size_t n, size_t *i)
{
    const uint8_t *p = (const uint8_t *)s + *i;
    size_t left = n - *i;
    uint8_t c = p[0];
    uint32_t cp;
    int len;
    if (c < 0x80) {
        *i += 1;
        return c;
    }
    if ((c & 0xE0) == 0xC0) {
        len = 2;
        cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3;
        cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4;
        cp = c & 0x07;
    } else {
        *i += 1;
        return 0xFFFD;
    }
    if ((size_t)len > left) {
        *i += 1;
        return 0xFFFD;
    }
    for (int k = 1; k < len; k++) {
        if ((p[k] & 0xC0) != 0x80) {
            *i += 1;
            return 0xFFFD;
        }
        cp = (cp << 6) | (p[k] & 0x3F);
    }
    *i += (size_t)len;
    if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
        return 0xFFFD;
    return cp;
}

int tok_utf8_put(uint32_t cp, char out[4])
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Strict validity (shortest form, no surrogates, <= U+10FFFF): such text
 * decodes and re-encodes to itself, so it needs no copy. */
bool tok_utf8_valid(const char *s, size_t n)
{
    const uint8_t *p = (const uint8_t *)s;
    size_t i = 0;
    while (i < n) {
        /* fast path over ASCII, 8 bytes at a time */
        while (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            if (w & 0x8080808080808080ull)
                break;
            i += 8;
        }
        if (i >= n)
            break;
        uint8_t c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            if (i + 1 >= n || (p[i + 1] & 0xC0) != 0x80)
                return false;
            i += 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            if (i + 2 >= n || (p[i + 1] & 0xC0) != 0x80 || (p[i + 2] & 0xC0) != 0x80)
                return false;
            if (c == 0xE0 && p[i + 1] < 0xA0)
                return false;
            if (c == 0xED && p[i + 1] >= 0xA0)
                return false;
            i += 3;
        } else if (c >= 0xF0 && c <= 0xF4) {
            if (i + 3 >= n || (p[i + 1] & 0xC0) != 0x80 || (p[i + 2] & 0xC0) != 0x80 ||
                (p[i + 3] & 0xC0) != 0x80)
                return false;
            if (c == 0xF0 && p[i + 1] < 0x90)
                return false;
            if (c == 0xF4 && p[i + 1] >= 0x90)
                return false;
            i += 4;
        } else {
            return false;
        }
    }
    return true;
}

cairn_status tok_utf8_sanitize(const char *s, size_t n, cairn_buf *out)
{
    CAIRN_TRY(cairn_buf_reserve(out, n + n / 2 + 4));
    size_t i = 0;
    while (i < n) {
        char tmp[4];
        uint32_t cp = tok_utf8_next(s, n, &i);
        int k = tok_utf8_put(cp, tmp);
        CAIRN_TRY(cairn_buf_append(out, tmp, (size_t)k));
    }
    return CAIRN_OK;
}

/* White_Space property (the list llama.cpp's flags use). */
bool tok_cp_is_whitespace(uint32_t cp)
{
    if (cp < 0x80)
        return cp == 0x20 || (cp >= 0x09 && cp <= 0x0D);
    switch (cp) {
    case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029:
    case 0x202F: case 0x205F: case 0x3000:
        return true;
    default:
        return cp >= 0x2000 && cp <= 0x200A;
    }
}

bool tok_cp_is_control(uint32_t cp)
{
    utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
    return c == UTF8PROC_CATEGORY_CC || c == UTF8PROC_CATEGORY_CF || c == UTF8PROC_CATEGORY_CO ||
           c == UTF8PROC_CATEGORY_CS;
}

bool tok_cp_is_punct(uint32_t cp)
{
    utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
    return c >= UTF8PROC_CATEGORY_PC && c <= UTF8PROC_CATEGORY_PO;
}

bool tok_cp_is_symbol(uint32_t cp)
{
    utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
    return c >= UTF8PROC_CATEGORY_SM && c <= UTF8PROC_CATEGORY_SO;
}

uint32_t tok_cp_lower(uint32_t cp)
{
    if (cp < 0x80)
        return (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
    return (uint32_t)utf8proc_tolower((utf8proc_int32_t)cp);
}

uint32_t tok_cp_nfd_base(uint32_t cp)
{
    if (cp < 0xC0)
        return cp;
    utf8proc_int32_t buf[8];
    int last = 0;
    utf8proc_ssize_t n = utf8proc_decompose_char((utf8proc_int32_t)cp, buf, 8, UTF8PROC_DECOMPOSE, &last);
    if (n <= 0)
        return cp;
    return (uint32_t)buf[0];
}
