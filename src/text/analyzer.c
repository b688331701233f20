/* analyzer.c — word segmentation, NFKC + case folding, stop words, stemming.
 * See analyzer.h for the pipeline. Cost: one pass over the input; ASCII words
 * never touch utf8proc; each distinct word is stemmed once (memo table). */
#include "text/analyzer.h"
#include "text/stopwords.h"
#include <libstemmer.h>
#include <stdio.h>
#include <string.h>
#include <utf8proc.h>

/* ---- configuration ---- */

void text_config_default(text_config *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->stemmer, sizeof c->stemmer, "english");
    c->stop = TEXT_STOP_ENGLISH;
    c->strip_accents = false;
}

static bool stemmer_known(const char *name)
{
    if (!strcmp(name, "none"))
        return true;
    for (const char **l = sb_stemmer_list(); *l; l++)
        if (!strcmp(*l, name))
            return true;
    return false;
}

cairn_status text_config_set(text_config *c, const char *key, const char *value)
{
    if (!strcmp(key, "stemmer")) {
        if (strlen(value) >= sizeof c->stemmer || !stemmer_known(value))
            return cairn_fail(CAIRN_ERR_INVALID, "unknown stemmer '%s' (use none, english, porter or another Snowball algorithm)", value);
        snprintf(c->stemmer, sizeof c->stemmer, "%s", value);
    } else if (!strcmp(key, "stop") || !strcmp(key, "stopwords")) {
        if (!strcmp(value, "none"))
            c->stop = TEXT_STOP_NONE;
        else if (!strcmp(value, "lucene"))
            c->stop = TEXT_STOP_LUCENE;
        else if (!strcmp(value, "english"))
            c->stop = TEXT_STOP_ENGLISH;
        else
            return cairn_fail(CAIRN_ERR_INVALID, "unknown stop list '%s' (use none, lucene or english)", value);
    } else if (!strcmp(key, "accents")) {
        if (!strcmp(value, "keep"))
            c->strip_accents = false;
        else if (!strcmp(value, "strip"))
            c->strip_accents = true;
        else
            return cairn_fail(CAIRN_ERR_INVALID, "accents must be keep or strip, not '%s'", value);
    } else {
        return cairn_fail(CAIRN_ERR_INVALID, "unknown analyzer option '%s' (stemmer, stop, accents)", key);
    }
    return CAIRN_OK;
}

void text_config_str(const text_config *c, char *out, size_t n)
{
    static const char *stops[] = {"none", "lucene", "english"};
    snprintf(out, n, "stemmer=%s stop=%s accents=%s", c->stemmer, stops[c->stop],
             c->strip_accents ? "strip" : "keep");
}

cairn_status text_config_parse(text_config *c, const char *s)
{
    text_config_default(c);
    char buf[256];
    if (strlen(s) >= sizeof buf)
        return cairn_fail(CAIRN_ERR_INVALID, "analyzer description too long");
    snprintf(buf, sizeof buf, "%s", s);
    char *save = NULL;
    for (char *tok = strtok_r(buf, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq)
            return cairn_fail(CAIRN_ERR_INVALID, "analyzer option '%s' is not key=value", tok);
        *eq = 0;
        CAIRN_TRY(text_config_set(c, tok, eq + 1));
    }
    return CAIRN_OK;
}

/* ---- analyzer object ---- */

#define STOP_SLOTS 512          /* power of two, > 2x the longest list */
#define MEMO_SLOTS (1u << 15)   /* stem memo: cleared when half full */
#define MEMO_ARENA (1u << 20)

typedef struct memo_slot {
    uint64_t hash;      /* 0 = empty */
    uint32_t key_off;   /* into arena: key bytes then stem bytes */
    uint8_t key_len, stem_len;
} memo_slot;

struct text_analyzer {
    text_config cfg;
    struct sb_stemmer *stemmer;     /* NULL = no stemming */
    const char *stop[STOP_SLOTS];   /* open addressing set of static strings */
    uint8_t stop_len[STOP_SLOTS];
    memo_slot *memo;
    uint32_t memo_used;
    char *arena;
    uint32_t arena_len;
};

static uint64_t fnv1a(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h | 1;   /* never 0: 0 marks an empty memo slot */
}

static void stop_add(text_analyzer *a, const char *w)
{
    size_t n = strlen(w);
    for (uint64_t i = fnv1a(w, n) & (STOP_SLOTS - 1);; i = (i + 1) & (STOP_SLOTS - 1)) {
        if (!a->stop[i]) {
            a->stop[i] = w;
            a->stop_len[i] = (uint8_t)n;
            return;
        }
        if (!strcmp(a->stop[i], w))
            return;
    }
}

bool text_is_stopword(const text_analyzer *a, const char *w, size_t n)
{
    if (a->cfg.stop == TEXT_STOP_NONE)
        return false;
    for (uint64_t i = fnv1a(w, n) & (STOP_SLOTS - 1); a->stop[i]; i = (i + 1) & (STOP_SLOTS - 1))
        if (a->stop_len[i] == n && !memcmp(a->stop[i], w, n))
            return true;
    return false;
}

cairn_status text_analyzer_new(const text_config *c, text_analyzer **out)
{
    *out = NULL;
    text_analyzer *a = cairn_calloc(1, sizeof *a);
    if (!a)
        return cairn_fail(CAIRN_ERR_NOMEM, "analyzer: out of memory");
    a->cfg = *c;
    a->memo = cairn_calloc(MEMO_SLOTS, sizeof *a->memo);
    a->arena = cairn_malloc(MEMO_ARENA);
    if (!a->memo || !a->arena) {
        text_analyzer_free(a);
        return cairn_fail(CAIRN_ERR_NOMEM, "analyzer: out of memory");
    }
    if (strcmp(c->stemmer, "none") != 0) {
        a->stemmer = sb_stemmer_new(c->stemmer, "UTF_8");
        if (!a->stemmer) {
            text_analyzer_free(a);
            return cairn_fail(CAIRN_ERR_INVALID, "unknown stemmer '%s'", c->stemmer);
        }
    }
    if (c->stop == TEXT_STOP_LUCENE)
        for (size_t i = 0; i < text_stop_lucene_n; i++)
            stop_add(a, text_stop_lucene[i]);
    else if (c->stop == TEXT_STOP_ENGLISH)
        for (size_t i = 0; i < text_stop_english_n; i++)
            stop_add(a, text_stop_english[i]);
    *out = a;
    return CAIRN_OK;
}

void text_analyzer_free(text_analyzer *a)
{
    if (!a)
        return;
    if (a->stemmer)
        sb_stemmer_delete(a->stemmer);
    cairn_free(a->memo);
    cairn_free(a->arena);
    cairn_free(a);
}

const text_config *text_analyzer_config(const text_analyzer *a) { return &a->cfg; }

/* Stem `w` (normalized); the result points into the memo arena or
 * libstemmer's buffer and is valid until the next call. */
static cairn_status stem(text_analyzer *a, const char *w, size_t n, const char **out, size_t *out_n)
{
    if (!a->stemmer) {
        *out = w;
        *out_n = n;
        return CAIRN_OK;
    }
    uint64_t h = fnv1a(w, n);
    uint32_t i = (uint32_t)h & (MEMO_SLOTS - 1);
    for (; a->memo[i].hash; i = (i + 1) & (MEMO_SLOTS - 1)) {
        memo_slot *m = &a->memo[i];
        if (m->hash == h && m->key_len == n && !memcmp(a->arena + m->key_off, w, n)) {
            *out = a->arena + m->key_off + m->key_len;
            *out_n = m->stem_len;
            return CAIRN_OK;
        }
    }
    const sb_symbol *s = sb_stemmer_stem(a->stemmer, (const sb_symbol *)w, (int)n);
    if (!s)
        return cairn_fail(CAIRN_ERR_NOMEM, "stemmer: out of memory");
    int sn = sb_stemmer_length(a->stemmer);
    if (sn < 0 || sn > TEXT_MAX_TERM * 4)
        sn = (int)n, s = (const sb_symbol *)w;
    if (a->memo_used >= MEMO_SLOTS / 2 || a->arena_len + n + (size_t)sn > MEMO_ARENA) {
        memset(a->memo, 0, MEMO_SLOTS * sizeof *a->memo);
        a->memo_used = 0;
        a->arena_len = 0;
        for (i = (uint32_t)h & (MEMO_SLOTS - 1); a->memo[i].hash; i = (i + 1) & (MEMO_SLOTS - 1)) {}
    }
    if (n <= 255 && sn <= 255) {
        memo_slot *m = &a->memo[i];
        m->hash = h;
        m->key_off = a->arena_len;
        m->key_len = (uint8_t)n;
        m->stem_len = (uint8_t)sn;
        memcpy(a->arena + a->arena_len, w, n);
        memcpy(a->arena + a->arena_len + n, s, (size_t)sn);
        a->arena_len += (uint32_t)(n + (size_t)sn);
        a->memo_used++;
        *out = a->arena + m->key_off + n;
    } else {
        *out = (const char *)s;
    }
    *out_n = (size_t)sn;
    return CAIRN_OK;
}

/* ---- segmentation ---- */

static bool is_cjk(int32_t c)
{
    return (c >= 0x3040 && c <= 0x30FF) || (c >= 0x3400 && c <= 0x4DBF) ||
           (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0xF900 && c <= 0xFAFF) ||
           (c >= 0x20000 && c <= 0x2FFFF);
}

typedef enum { CP_OTHER, CP_LETTER, CP_DIGIT, CP_MARK, CP_CJK } cp_class;

static cp_class classify(int32_t c)
{
    if (c < 0x80) {
        if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')
            return CP_LETTER;
        if (c >= '0' && c <= '9')
            return CP_DIGIT;
        return CP_OTHER;
    }
    if (is_cjk(c))
        return CP_CJK;
    switch (utf8proc_category(c)) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO:
        return CP_LETTER;
    case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_NO:
        return CP_DIGIT;
    case UTF8PROC_CATEGORY_MN: case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME:
        return CP_MARK;
    default:
        return CP_OTHER;
    }
}

/* Decode one code point at s[i]; returns its byte length, *c = -1 if invalid. */
static inline size_t decode(const char *s, size_t len, size_t i, int32_t *c)
{
    uint8_t b = (uint8_t)s[i];
    if (b < 0x80) {
        *c = b;
        return 1;
    }
    utf8proc_ssize_t n = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(len - i), c);
    if (n <= 0) {
        *c = -1;
        return 1;
    }
    return (size_t)n;
}

#define WORD_CP_CAP (TEXT_MAX_TERM * 4)

/* Normalize s[0..n) into out (cap 4*TEXT_MAX_TERM+1 bytes); returns length,
 * 0 when the word is dropped (too long or nothing left). */
static size_t normalize(const text_analyzer *a, const char *s, size_t n, bool ascii, char *out)
{
    size_t o = 0;
    if (ascii) {
        if (n > TEXT_MAX_TERM)
            return 0;
        for (size_t i = 0; i < n; i++) {
            char c = s[i];
            if (c >= 'A' && c <= 'Z')
                c = (char)(c + 32);
            if (c == ',')
                continue;   /* 1,000 -> 1000 */
            out[o++] = c;
        }
    } else {
        if (n > WORD_CP_CAP)
            return 0;
        utf8proc_int32_t cps[WORD_CP_CAP];
        int opts = UTF8PROC_STABLE | UTF8PROC_COMPAT | UTF8PROC_CASEFOLD | UTF8PROC_IGNORE | UTF8PROC_DECOMPOSE;
        if (a->cfg.strip_accents)
            opts |= UTF8PROC_STRIPMARK;
        utf8proc_ssize_t m = utf8proc_decompose((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n,
                                                cps, WORD_CP_CAP, (utf8proc_option_t)opts);
        if (m <= 0 || m > WORD_CP_CAP)
            return 0;
        m = utf8proc_normalize_utf32(cps, m, (utf8proc_option_t)((opts & ~UTF8PROC_DECOMPOSE) | UTF8PROC_COMPOSE));
        if (m <= 0)
            return 0;
        for (utf8proc_ssize_t i = 0; i < m; i++) {
            if (cps[i] == ',')
                continue;
            if (o + 4 > TEXT_MAX_TERM * 4)
                return 0;
            o += (size_t)utf8proc_encode_char(cps[i], (utf8proc_uint8_t *)out + o);
        }
    }
    /* English possessive, then apostrophes out. */
    if (o >= 2 && out[o - 1] == 's' && out[o - 2] == '\'')
        o -= 2;
    else if (o >= 4 && out[o - 1] == 's' && !memcmp(out + o - 4, "\xE2\x80\x99", 3))
        o -= 4;
    size_t w = 0;
    for (size_t i = 0; i < o; i++) {
        if (out[i] == '\'')
            continue;
        if (i + 2 < o && !memcmp(out + i, "\xE2\x80\x99", 3)) {
            i += 2;
            continue;
        }
        out[w++] = out[i];
    }
    return w <= TEXT_MAX_TERM ? w : 0;
}

static cairn_status run(text_analyzer *a, const char *s, size_t len, text_term_fn fn, void *ctx, bool words)
{
    char norm[TEXT_MAX_TERM * 4 + 8];
    uint32_t pos = 0;
    size_t i = 0;
    while (i < len) {
        int32_t c;
        size_t n = decode(s, len, i, &c);
        cp_class k = c < 0 ? CP_OTHER : classify(c);
        if (k == CP_OTHER || k == CP_MARK) {
            i += n;
            continue;
        }
        size_t start = i, j = i + n;
        bool ascii = c < 0x80;
        cp_class prev = k;
        if (k != CP_CJK) {
            while (j < len) {
                int32_t d;
                size_t m = decode(s, len, j, &d);
                cp_class dk = d < 0 ? CP_OTHER : classify(d);
                if (dk == CP_LETTER || dk == CP_DIGIT || dk == CP_MARK) {
                    if (d >= 0x80)
                        ascii = false;
                    prev = dk == CP_MARK ? prev : dk;
                    j += m;
                    continue;
                }
                /* joiners: apostrophe between letters, '.'/',' between digits */
                bool join = false;
                if (j + m < len) {
                    int32_t e;
                    decode(s, len, j + m, &e);
                    cp_class ek = e < 0 ? CP_OTHER : classify(e);
                    if ((d == '\'' || d == 0x2019) && prev == CP_LETTER && ek == CP_LETTER)
                        join = true;
                    else if ((d == '.' || d == ',') && prev == CP_DIGIT && ek == CP_DIGIT)
                        join = true;
                }
                if (!join)
                    break;
                if (d >= 0x80)
                    ascii = false;
                j += m;
            }
        }
        size_t wn = normalize(a, s + start, j - start, ascii, norm);
        uint32_t p = pos++;
        i = j;
        if (wn == 0 || text_is_stopword(a, norm, wn)) {
            if (words)
                CAIRN_TRY(fn(ctx, "", 0, p, start, j));
            continue;
        }
        const char *t = NULL;
        size_t tn = 0;
        CAIRN_TRY(stem(a, norm, wn, &t, &tn));
        if (tn == 0)
            continue;
        CAIRN_TRY(fn(ctx, t, tn, p, start, j));
    }
    return CAIRN_OK;
}

cairn_status text_analyze(text_analyzer *a, const char *s, size_t len, text_term_fn fn, void *ctx)
{
    return run(a, s, len, fn, ctx, false);
}

cairn_status text_analyze_words(text_analyzer *a, const char *s, size_t len, text_term_fn fn, void *ctx)
{
    return run(a, s, len, fn, ctx, true);
}
