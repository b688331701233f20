/*
 * tok_internal.h — shared state of the tokenizers (not part of the contract).
 *
 * One cairn_tokenizer holds the vocabulary copied out of the GGUF file (so it
 * does not depend on the mapping staying open), a string -> id hash map, and
 * the per-model data of the three algorithms:
 *
 *   SPM ("llama")  tok_spm.c  score-ordered merging of adjacent symbols
 *   BPE ("gpt2")   tok_bpe.c  regex pre-tokenizer (tok_pre.c) + rank merges
 *   WPM ("bert")   tok_wpm.c  basic tokenizer + greedy longest match
 *
 * tok_load.c reads the GGUF metadata, tok_special.c splits special tokens out
 * of the text, tokenizer.c drives encoding and decodes, tok_cache.c caches
 * word -> ids, tok_unicode.c has the UTF-8 and Unicode-property helpers.
 *
 * The behaviour follows llama.cpp's tokenizers (the reference the shared test
 * vectors were produced with); every place where the exact behaviour matters
 * says so in a comment.
 */
#ifndef CAIRN_TOK_INTERNAL_H
#define CAIRN_TOK_INTERNAL_H

#include "tokenizer/tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

typedef enum { TOK_SPM, TOK_BPE, TOK_WPM } tok_kind;

/* Shared word -> ids cache (tok_cache.c). */
#define TOK_CACHE_WORD 30
#define TOK_CACHE_IDS 8
typedef struct tok_cache tok_cache;
cairn_status tok_cache_new(tok_cache **out);
void tok_cache_free(tok_cache *c);
bool tok_cache_get(tok_cache *c, const char *w, size_t n, uint64_t h, int32_t *ids, size_t *nids);
void tok_cache_put(tok_cache *c, const char *w, size_t n, uint64_t h, const int32_t *ids, size_t nids);

/* Token attributes, derived from tokenizer.ggml.token_type (GGUF numbering:
 * 1 normal, 2 unknown, 3 control, 4 user defined, 5 unused, 6 byte). */
enum {
    TOK_ATTR_NORMAL = 1 << 0,
    TOK_ATTR_UNKNOWN = 1 << 1,
    TOK_ATTR_CONTROL = 1 << 2,
    TOK_ATTR_USER = 1 << 3,
    TOK_ATTR_UNUSED = 1 << 4,
    TOK_ATTR_BYTE = 1 << 5,
    TOK_ATTR_LSTRIP = 1 << 6, /* special token eats whitespace on its left */
    TOK_ATTR_RSTRIP = 1 << 7, /* ... and on its right */
};

/* Pre-tokenizer regex sets for byte-level BPE (tok_pre.c). */
#define TOK_MAX_REGEX 8

/* A growable vector of token ids (encode output). */
typedef struct tok_ids {
    int32_t *v;
    size_t n, cap;
} tok_ids;
cairn_status tok_ids_push(tok_ids *o, int32_t id);

struct cairn_tokenizer {
    tok_kind kind;
    char pre_name[48];        /* tokenizer.ggml.pre as given ("" if absent) */
    int32_t n_vocab;

    /* Strings: ids [0, n_vocab) are the vocabulary; [n_vocab, n_str) are
     * strings that only occur in BPE merges (so every merge operand and
     * result has an index). All bytes live in `blob`; string i is
     * blob[off[i] .. off[i+1]). */
    char *blob;
    size_t blob_len, blob_cap;
    uint32_t *off;            /* n_str + 1 */
    uint32_t n_str, str_cap;

    float *score;             /* (n_vocab,) SPM merge priority */
    uint8_t *attr;            /* (n_vocab,) TOK_ATTR_* */
    int32_t max_token_len;    /* bytes, over the vocabulary */

    /* Open-addressing map string -> index; slot holds index + 1, 0 = empty.
     * Duplicate vocabulary strings resolve to the LAST id (as llama.cpp). */
    uint32_t *map;
    uint32_t map_mask;
    uint32_t map_used;

    int32_t bos, eos, unk, sep, pad, cls, mask, eot, eom;
    bool add_bos, add_eos, add_sep, add_space_prefix, ignore_merges;
    bool pre_unknown;         /* tokenizer.ggml.pre not recognised: default patterns */
    bool bpe_raw;             /* BPE over raw UTF-8 with spaces as U+2581 (Gemma 4), not byte-mapped */
    bool raw_split;           /* raw BPE: words may be cut before a U+2581 (tok_bpe.c) */
    uint32_t raw_joiners[64]; /* ... unless it follows one of these characters */
    uint32_t n_raw_joiners;

    /* Special tokens split out of the text before the model sees it:
     * control, user-defined and unknown tokens, longest text first.
     * Indexed by their first two bytes for the scan (tokenizer.c). */
    int32_t *special;         /* ids, sorted by length desc, then id */
    uint32_t n_special;
    uint32_t *sp_bucket;      /* (65537,) CSR starts over sp_items, key = b0 << 8 | b1 */
    uint32_t *sp_items;       /* ranks into special[] (only tokens of >= 2 bytes) */
    int32_t sp_single[256];   /* rank of the 1-byte special token with that byte, -1 none */
    bool any_user_special;    /* some user-defined token: split even without parse_special */

    int32_t *eog;             /* end-of-generation ids */
    uint32_t n_eog;

    bool spm_split;           /* SPM: merge per segment (tok_spm_splittable) */
    tok_cache *cache;         /* BPE words / SPM segments; NULL = off */
    /* SPM: token id of each byte value ("<0xXX>"), -1 if the vocab lacks it. */
    int32_t byte_tok[256];

    /* BPE: the merge table, key (left << 32 | right) over string indices. */
    struct tok_merge {
        uint64_t key;         /* (left << 32 | right) + 1; 0 = empty slot */
        uint32_t rank;
        uint32_t res;         /* string index of the merged text */
    } *merge;                 /* open addressing, one cache line per probe */
    uint32_t mmask;
    int32_t byte_sym[256];    /* string index of the byte's mapped char, -1 if none */
    int32_t byte_fb[256][2];  /* output when a symbol is no token: ids of the single
                                 bytes of the mapped char (llama.cpp), -1 none */
    uint16_t byte_cp[256];    /* GPT-2 bytes_to_unicode: byte -> code point */
    int16_t cp_byte[324];     /* inverse for code points < 324, -1 if none */
    pcre2_general_context *pgc;
    pcre2_code *re[TOK_MAX_REGEX];
    int n_re;
};

/* ---- strings and maps (tokenizer.c) ---- */
static inline const char *tok_str(const cairn_tokenizer *t, uint32_t i, size_t *len)
{
    *len = t->off[i + 1] - t->off[i];
    return t->blob + t->off[i];
}
/* Index of the string s[0..n), or -1. */
int32_t tok_lookup(const cairn_tokenizer *t, const char *s, size_t n);
/* Index of s, adding it as a new (non-vocabulary) string if absent. */
cairn_status tok_intern(cairn_tokenizer *t, const char *s, size_t n, int32_t *idx);

/* ---- unicode helpers (tok_unicode.c) ---- */
/* Length of the UTF-8 sequence started by `lead` as llama.cpp counts it
 * (from the high bits only; continuation bytes count as 1). */
static inline int tok_utf8_len(uint8_t lead)
{
    static const uint8_t lens[16] = { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4 };
    return lens[lead >> 4];
}
/* Decode one code point at s[*i] (i < n), advancing *i. Invalid sequences
 * give U+FFFD and advance by one byte. Surrogates and values above U+10FFFF
 * also give U+FFFD so the result is always encodable. */
uint32_t tok_utf8_next(const char *s, size_t n, size_t *i);
int tok_utf8_put(uint32_t cp, char out[4]);
/* Copy text to out as valid UTF-8 (each invalid byte becomes U+FFFD).
 * Returns true if it had to change anything. */
cairn_status tok_utf8_sanitize(const char *s, size_t n, cairn_buf *out);
bool tok_utf8_valid(const char *s, size_t n);

bool tok_cp_is_whitespace(uint32_t cp);
bool tok_cp_is_control(uint32_t cp);     /* general category Cc, Cf, Co, Cs */
bool tok_cp_is_punct(uint32_t cp);       /* P* */
bool tok_cp_is_symbol(uint32_t cp);      /* S* */
uint32_t tok_cp_lower(uint32_t cp);
uint32_t tok_cp_nfd_base(uint32_t cp);   /* first code point of the NFD decomposition */

/* ---- special tokens (tok_special.c) ---- */
typedef struct tok_frag {
    int32_t id;               /* special token, or -1 for raw text */
    size_t off, len;          /* raw text span */
} tok_frag;
/* Split text into raw fragments and special tokens (cairn_malloc'd array). */
cairn_status tok_split_specials(const cairn_tokenizer *t, const char *text, size_t len, bool parse_special,
                                tok_frag **out, size_t *nout);

/* ---- algorithms ---- */
/* prefix_space: prepend " " (SentencePiece's dummy prefix) before escaping. */
cairn_status tok_spm_encode(const cairn_tokenizer *t, const char *text, size_t len, bool prefix_space,
                            tok_ids *out);
bool tok_spm_splittable(const cairn_tokenizer *t);
cairn_status tok_bpe_init(cairn_tokenizer *t, const gguf_file *g);
void tok_bpe_free(cairn_tokenizer *t);
cairn_status tok_bpe_encode(const cairn_tokenizer *t, const char *text, size_t len, tok_ids *out);
cairn_status tok_wpm_encode(const cairn_tokenizer *t, const char *text, size_t len, tok_ids *out);

/* Pre-tokenizer (tok_pre.c): choose the regex set for tokenizer.ggml.pre. */
cairn_status tok_pre_init(cairn_tokenizer *t, const char *pre);
/* Split text (valid UTF-8) into words; calls fn for each. */
typedef cairn_status (*tok_word_fn)(const cairn_tokenizer *t, const char *w, size_t n, void *ctx);
cairn_status tok_pre_split(const cairn_tokenizer *t, const char *text, size_t len, tok_word_fn fn, void *ctx);

/* Min-heap used by SPM and BPE: an array of fixed-size entries ordered by
 * (key, left): smaller key first, then the leftmost pair. */
typedef struct tok_heap_ent {
    int64_t key;              /* SPM: -score as ordered bits; BPE: rank */
    int32_t left, right;
    uint32_t a, b;            /* algorithm data (sizes / ids) */
} tok_heap_ent;
typedef struct tok_heap {
    tok_heap_ent *e;
    size_t n, cap;
} tok_heap;
cairn_status tok_heap_push(tok_heap *h, tok_heap_ent x);
bool tok_heap_pop(tok_heap *h, tok_heap_ent *out);

#endif
