/*
 * tokenizer.c — the encode driver, accessors and detokenization.
 * Loading is in tok_load.c, special-token splitting in tok_special.c.
 */
#include "tokenizer/tok_internal.h"

#include <stdlib.h>
#include <string.h>

#define TOK_MAX_INPUT ((size_t)1 << 30)

/* ------------------------------------------------------------------ */
/* small containers                                                    */

cairn_status tok_ids_push(tok_ids *o, int32_t id)
{
    if (o->n == o->cap) {
        size_t ncap = o->cap ? o->cap * 2 : 64;
        int32_t *p = cairn_reallocarray(o->v, ncap, sizeof *p);
        if (!p)
            return cairn_fail(CAIRN_ERR_NOMEM, "tokenizer: out of memory for %zu ids", ncap);
        o->v = p;
        o->cap = ncap;
    }
    o->v[o->n++] = id;
    return CAIRN_OK;
}

static inline bool heap_less(const tok_heap_ent *x, const tok_heap_ent *y)
{
    return x->key < y->key || (x->key == y->key && x->left < y->left);
}

cairn_status tok_heap_push(tok_heap *h, tok_heap_ent x)
{
    if (h->n == h->cap) {
        size_t ncap = h->cap ? h->cap * 2 : 64;
        tok_heap_ent *p = cairn_reallocarray(h->e, ncap, sizeof *p);
        if (!p)
            return cairn_fail(CAIRN_ERR_NOMEM, "tokenizer: out of memory for the merge queue");
        h->e = p;
        h->cap = ncap;
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!heap_less(&x, &h->e[parent]))
            break;
        h->e[i] = h->e[parent];
        i = parent;
    }
    h->e[i] = x;
    return CAIRN_OK;
}

bool tok_heap_pop(tok_heap *h, tok_heap_ent *out)
{
    if (h->n == 0)
        return false;
    *out = h->e[0];
    tok_heap_ent last = h->e[--h->n];
    size_t i = 0, n = h->n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && heap_less(&h->e[c + 1], &h->e[c]))
            c++;
        if (!heap_less(&h->e[c], &last))
            break;
        h->e[i] = h->e[c];
        i = c;
    }
    if (n)
        h->e[i] = last;
    return true;
}

int32_t tokenizer_n_vocab(const cairn_tokenizer *t) { return t->n_vocab; }
int32_t tokenizer_bos(const cairn_tokenizer *t) { return t->bos; }
/* WordPiece models end a sequence with [SEP] and usually have no EOS */
int32_t tokenizer_eos(const cairn_tokenizer *t) { return t->eos >= 0 || t->kind != TOK_WPM ? t->eos : t->sep; }
bool tokenizer_add_bos(const cairn_tokenizer *t) { return t->add_bos && t->bos >= 0; }
bool tokenizer_add_eos(const cairn_tokenizer *t) { return (t->add_eos && t->eos >= 0) || (t->add_sep && t->sep >= 0); }

bool tokenizer_is_eog(const cairn_tokenizer *t, int32_t id)
{
    for (uint32_t i = 0; i < t->n_eog; i++)
        if (t->eog[i] == id)
            return true;
    return false;
}

static int parse_byte_token(const char *s, size_t n)
{
    if (n != 6 || s[0] != '<' || s[1] != '0' || s[2] != 'x' || s[5] != '>')
        return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10
                : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* ------------------------------------------------------------------ */
/* encode                                                              */

cairn_status tokenizer_encode(const cairn_tokenizer *t, const char *text, size_t len, bool add_special,
                              bool parse_special, int32_t *ids, size_t cap, size_t *n_out)
{
    if (!t || !n_out || (!text && len) || (!ids && cap))
        return cairn_fail(CAIRN_ERR_INVALID, "tokenizer_encode: NULL argument");
    *n_out = 0;
    if (len > TOK_MAX_INPUT)
        return cairn_fail(CAIRN_ERR_TOO_LARGE, "tokenizer: input of %zu bytes exceeds the %zu byte limit", len,
                          TOK_MAX_INPUT);
    tok_frag *fr = NULL;
    size_t nf = 0;
    tok_ids o = { 0 };
    cairn_status st = tok_split_specials(t, text, len, parse_special, &fr, &nf);
    if (st != CAIRN_OK)
        return st;

    if (add_special && t->add_bos && t->bos >= 0 && (st = tok_ids_push(&o, t->bos)) != CAIRN_OK)
        goto done;
    bool prev_special = true; /* SPM: the dummy space goes before the first text */
    for (size_t i = 0; i < nf; i++) {
        if (fr[i].id >= 0) {
            st = tok_ids_push(&o, fr[i].id);
            prev_special = true;
        } else {
            const char *s = text + fr[i].off;
            switch (t->kind) {
            case TOK_SPM:
                st = tok_spm_encode(t, s, fr[i].len, t->add_space_prefix && prev_special, &o);
                break;
            case TOK_BPE:
                st = tok_bpe_encode(t, s, fr[i].len, &o);
                break;
            case TOK_WPM:
                st = tok_wpm_encode(t, s, fr[i].len, &o);
                break;
            }
            prev_special = false;
        }
        if (st != CAIRN_OK)
            goto done;
    }
    if (add_special && t->add_eos && t->eos >= 0 && (st = tok_ids_push(&o, t->eos)) != CAIRN_OK)
        goto done;
    if (add_special && t->add_sep && t->sep >= 0 && (st = tok_ids_push(&o, t->sep)) != CAIRN_OK)
        goto done;
    if (o.n && cap)
        memcpy(ids, o.v, CAIRN_MIN(o.n, cap) * sizeof *ids);
    *n_out = o.n;
done:
    cairn_free(fr);
    cairn_free(o.v);
    return st;
}

int32_t tokenizer_find(const cairn_tokenizer *t, const char *text, size_t len)
{
    int32_t id = tok_lookup(t, text, len);
    return id < t->n_vocab ? id : -1;
}

const char *tokenizer_token_text(const cairn_tokenizer *t, int32_t id, size_t *len)
{
    if (id < 0 || id >= t->n_vocab) {
        *len = 0;
        return "";
    }
    return tok_str(t, (uint32_t)id, len);
}

const char *tokenizer_type_name(const cairn_tokenizer *t)
{
    switch (t->kind) {
    case TOK_SPM: return "llama (SentencePiece)";
    case TOK_BPE: return t->bpe_raw ? "gpt2 (BPE over text, U+2581 spaces)" : "gpt2 (byte-level BPE)";
    case TOK_WPM: return "bert (WordPiece)";
    }
    return "?";
}

const char *tokenizer_pre_name(const cairn_tokenizer *t) { return t->pre_name; }

/* ------------------------------------------------------------------ */
/* decode                                                              */

static size_t put(char *buf, size_t cap, size_t at, const void *p, size_t n)
{
    if (at < cap)
        memcpy(buf + at, p, CAIRN_MIN(n, cap - at));
    return at + n;
}

size_t tokenizer_piece_ex(const cairn_tokenizer *t, int32_t id, unsigned flags, char *buf, size_t cap)
{
    if (!t || id < 0 || id >= t->n_vocab)
        return 0;
    uint8_t a = t->attr[id];
    size_t len;
    const char *s = tok_str(t, (uint32_t)id, &len);
    if (a & TOK_ATTR_CONTROL)
        return (flags & TOKENIZER_DECODE_SPECIAL) ? put(buf, cap, 0, s, len) : 0;
    if (a & TOK_ATTR_USER)
        return put(buf, cap, 0, s, len);
    size_t n = 0;
    switch (t->bpe_raw ? TOK_SPM : t->kind) { /* raw-text BPE renders like SentencePiece */
    case TOK_SPM:
    case TOK_WPM:
        if (a & TOK_ATTR_NORMAL) {
            /* U+2581 (E2 96 81) -> ' ' */
            for (size_t i = 0; i < len;) {
                if (i + 2 < len && (uint8_t)s[i] == 0xE2 && (uint8_t)s[i + 1] == 0x96 && (uint8_t)s[i + 2] == 0x81) {
                    n = put(buf, cap, n, " ", 1);
                    i += 3;
                } else {
                    n = put(buf, cap, n, s + i, 1);
                    i++;
                }
            }
            return n;
        }
        if (a & TOK_ATTR_BYTE) {
            int b = parse_byte_token(s, len);
            if (b >= 0) {
                char c = (char)b;
                return put(buf, cap, 0, &c, 1);
            }
            return put(buf, cap, 0, s, len);
        }
        if (a & TOK_ATTR_UNKNOWN)
            return put(buf, cap, 0, "\xe2\x96\x85", 3); /* U+2585, as the reference renders <unk> */
        return 0;
    case TOK_BPE:
        if (a & TOK_ATTR_NORMAL) {
            /* map each code point back to its byte; others pass through */
            for (size_t i = 0; i < len;) {
                size_t i0 = i;
                uint32_t cp = tok_utf8_next(s, len, &i);
                if (cp < 324 && t->cp_byte[cp] >= 0) {
                    char c = (char)t->cp_byte[cp];
                    n = put(buf, cap, n, &c, 1);
                } else {
                    n = put(buf, cap, n, s + i0, i - i0);
                }
            }
            return n;
        }
        return 0;
    }
    return 0;
}

size_t tokenizer_piece(const cairn_tokenizer *t, int32_t id, char *buf, size_t cap)
{
    return tokenizer_piece_ex(t, id, 0, buf, cap);
}

cairn_status tokenizer_decode_ex(const cairn_tokenizer *t, const int32_t *ids, size_t n, unsigned flags,
                                 cairn_buf *out)
{
    if (!t || !out || (!ids && n))
        return cairn_fail(CAIRN_ERR_INVALID, "tokenizer_decode: NULL argument");
    bool strip = ((t->kind == TOK_SPM && t->add_space_prefix) || t->kind == TOK_WPM) &&
                 !(flags & TOKENIZER_DECODE_KEEP_SPACE);
    for (size_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (id < 0 || id >= t->n_vocab)
            return cairn_fail(CAIRN_ERR_INVALID, "tokenizer_decode: token id %d outside the vocabulary of %d",
                              id, t->n_vocab);
        char small[64];
        size_t need = tokenizer_piece_ex(t, id, flags, small, sizeof small);
        size_t at = out->len;
        if (need <= sizeof small) {
            CAIRN_TRY(cairn_buf_append(out, small, need));
        } else {
            CAIRN_TRY(cairn_buf_reserve(out, need));
            tokenizer_piece_ex(t, id, flags, out->data + out->len, need);
            out->len += need;
            out->data[out->len] = 0;
        }
        /* The SentencePiece dummy prefix: drop one leading space of the first
         * text (leading control tokens that render nothing do not count). */
        if (strip && !(need == 0 && (t->attr[id] & TOK_ATTR_CONTROL))) {
            if (out->len > at && out->data[at] == ' ') {
                memmove(out->data + at, out->data + at + 1, out->len - at - 1);
                out->len--;
                out->data[out->len] = 0;
            }
            strip = false;
        }
    }
    if (out->data == NULL) { /* keep the promise that data is a C string */
        CAIRN_TRY(cairn_buf_reserve(out, 0));
        out->data[0] = 0;
    }
    return CAIRN_OK;
}

cairn_status tokenizer_decode(const cairn_tokenizer *t, const int32_t *ids, size_t n, cairn_buf *out)
{
    return tokenizer_decode_ex(t, ids, n, 0, out);
}
