/*
 * tok_wpm.c — WordPiece ("bert" vocabularies) in llama.cpp's convention.
 *
 * Basic tokenizer: each code point is reduced to the first code point of its
 * NFD decomposition (which drops accents: "café" -> "cafe") and lower-cased;
 * whitespace ends a word; control characters, U+0000 and U+FFFD vanish;
 * punctuation, ASCII symbols and CJK ideographs are words of their own.
 *
 * WordPiece: the GGUF vocabulary marks word-initial pieces with U+2581
 * ("▁word") and keeps continuation pieces bare (the "##" of the original
 * vocab is removed at conversion). Each word, prefixed with U+2581, is cut
 * greedily into the longest matching pieces; if some position has no match
 * the whole word becomes the unknown token.
 */
#include "tokenizer/tok_internal.h"

#include <string.h>

static bool is_cjk(uint32_t c)
{
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
           (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) ||
           (c >= 0x2B920 && c <= 0x2CEAF) || /* sic: the reference (and HF) start at 2B920 */
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

static cairn_status wpm_word(const cairn_tokenizer *t, const char *w, size_t n, tok_ids *out)
{
    if (n <= 3)
        return CAIRN_OK; /* only the U+2581 prefix: empty word */
    size_t mark = out->n;
    for (size_t i = 0; i < n;) {
        size_t jmax = CAIRN_MIN(n, i + (size_t)t->max_token_len);
        bool found = false;
        for (size_t j = jmax; j > i; j--) {
            int32_t id = tok_lookup(t, w + i, j - i);
            if (id >= 0 && id < t->n_vocab) {
                CAIRN_TRY(tok_ids_push(out, id));
                i = j;
                found = true;
                break;
            }
        }
        if (!found) {
            out->n = mark;
            break;
        }
    }
    if (out->n == mark && t->unk >= 0)
        CAIRN_TRY(tok_ids_push(out, t->unk));
    return CAIRN_OK;
}

cairn_status tok_wpm_encode(const cairn_tokenizer *t, const char *text, size_t len, tok_ids *out)
{
    cairn_buf w;
    cairn_buf_init(&w, 0);
    cairn_status st = cairn_buf_append(&w, "\xe2\x96\x81", 3);
    for (size_t i = 0; i < len && st == CAIRN_OK;) {
        uint32_t cp = tok_cp_nfd_base(tok_utf8_next(text, len, &i));
        if (tok_cp_is_whitespace(cp)) {
            st = wpm_word(t, w.data, w.len, out);
            w.len = 3;
            continue;
        }
        if (cp == 0 || cp == 0xFFFD || tok_cp_is_control(cp))
            continue;
        char u[4];
        int k = tok_utf8_put(tok_cp_lower(cp), u);
        if (tok_cp_is_punct(cp) || (cp < 0x7F && tok_cp_is_symbol(cp)) || is_cjk(cp)) {
            st = wpm_word(t, w.data, w.len, out);
            w.len = 3;
            if (st == CAIRN_OK)
                st = cairn_buf_append(&w, u, (size_t)k);
            if (st == CAIRN_OK)
                st = wpm_word(t, w.data, w.len, out);
            w.len = 3;
        } else {
            st = cairn_buf_append(&w, u, (size_t)k);
        }
    }
    if (st == CAIRN_OK)
        st = wpm_word(t, w.data, w.len, out);
    cairn_buf_free(&w);
    return st;
}
