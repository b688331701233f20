/*
 * tok_pre.c — pre-tokenizers for byte-level BPE: the text is cut into words
 * by a list of regular expressions chosen by tokenizer.ggml.pre.
 *
 * Semantics (those of the Hugging Face "Split ... Isolated" pre-tokenizer
 * and of llama.cpp): the regexes are applied in order; each one cuts every
 * current piece into its matches AND the unmatched gaps between them, so
 * nothing is ever dropped. Each regex sees one piece at a time as its whole
 * subject (lookahead and $ stop at the piece's end).
 *
 * The patterns below are written for PCRE2 with UTF + UCP, so \p{L}, \p{N},
 * \p{P} and \s have their Unicode meaning (the reference emulates exactly
 * these classes). $ matches only at the very end (ECMAScript semantics, as
 * the reference's std::regex).
 */
#include "tokenizer/tok_internal.h"

#include <string.h>

/* ---- the patterns ---- */

/* GPT-2's original: contractions, letters, digits, other runs, spaces. */
#define RE_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"
/* Llama 3 (tiktoken cl100k style): case-insensitive contractions, a letter run
 * may take one leading non-letter/non-digit, digits in groups of up to 3. */
#define RE_CONTRACT "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
#define RE_LLAMA3 RE_CONTRACT "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
/* Qwen2 / StableLM2: as Llama 3 but single digits. */
#define RE_QWEN2 RE_CONTRACT "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
/* Pieces of DeepSeek's pre-tokenizers. */
#define RE_CJK "[\\x{4E00}-\\x{9FA5}\\x{0800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+"
#define RE_DS_LETTERS                                                                                      \
    "\\s?[A-Za-z\\x{B5}\\x{C0}-\\x{D6}\\x{D8}-\\x{F6}\\x{F8}-\\x{1BA}\\x{1BC}-\\x{1BF}\\x{1C4}-\\x{293}"      \
    "\\x{295}-\\x{2AF}\\x{370}-\\x{373}\\x{376}\\x{377}\\x{37B}-\\x{37D}\\x{37F}\\x{386}\\x{388}-\\x{38A}"    \
    "\\x{38C}\\x{38E}-\\x{3A1}\\x{3A3}-\\x{3F5}\\x{3F7}-\\x{481}\\x{48A}-\\x{52F}\\x{531}-\\x{556}"           \
    "\\x{10A0}-\\x{10C5}\\x{13A0}-\\x{13F5}\\x{13F8}-\\x{13FD}\\x{1C90}-\\x{1CBA}\\x{1CBD}-\\x{1CBF}"         \
    "\\x{1D00}-\\x{1D2B}\\x{1D6B}-\\x{1D77}\\x{1D79}-\\x{1D9A}\\x{1E00}-\\x{1F15}\\x{1F18}-\\x{1F1D}"         \
    "\\x{1F20}-\\x{1F45}\\x{1F48}-\\x{1F4D}\\x{1F50}-\\x{1F57}\\x{1F59}\\x{1F5B}\\x{1F5D}\\x{1F5F}-\\x{1F7D}" \
    "\\x{1F80}-\\x{1FB4}\\x{1FB6}-\\x{1FBC}\\x{1FBE}\\x{1FC2}-\\x{1FC4}\\x{1FC6}-\\x{1FCC}\\x{1FD0}-\\x{1FD3}" \
    "\\x{1FD6}-\\x{1FDB}\\x{1FE0}-\\x{1FEC}\\x{1FF2}-\\x{1FF4}\\x{1FF6}-\\x{1FFC}\\x{2102}\\x{2107}"          \
    "\\x{210A}-\\x{2113}\\x{2115}\\x{2119}-\\x{211D}\\x{2124}\\x{2126}\\x{2128}\\x{212A}-\\x{212D}"          \
    "\\x{212F}-\\x{2134}\\x{2139}\\x{213C}-\\x{213F}\\x{2145}-\\x{2149}\\x{214E}\\x{2183}\\x{2184}"          \
    "\\x{2C00}-\\x{2C7B}\\x{2C7E}-\\x{2CE4}\\x{2CEB}-\\x{2CEE}\\x{2CF2}\\x{2CF3}\\x{A640}-\\x{A66D}"          \
    "\\x{A680}-\\x{A69B}\\x{A722}-\\x{A76F}\\x{A771}-\\x{A787}\\x{A78B}-\\x{A78E}\\x{AB70}-\\x{ABBF}"         \
    "\\x{FB00}-\\x{FB06}\\x{FB13}-\\x{FB17}\\x{FF21}-\\x{FF3A}\\x{FF41}-\\x{FF5A}\\x{10400}-\\x{1044F}"       \
    "\\x{104B0}-\\x{104D3}\\x{104D8}-\\x{104FB}\\x{10C80}-\\x{10CB2}\\x{10CC0}-\\x{10CF2}\\x{118A0}-\\x{118DF}" \
    "\\x{1E900}-\\x{1E943}]+"
#define RE_DS_PUNCT "\\s?[!-/:-~\\x{FF01}-\\x{FF0F}\\x{FF1A}-\\x{FF5E}\\x{2018}-\\x{201F}\\x{3000}-\\x{3002}]+"

enum {
    PRE_IGNORE_MERGES = 1 << 0, /* a word that is a token is taken whole */
    PRE_ADD_BOS = 1 << 1,       /* add BOS by default */
    PRE_ADD_SEP = 1 << 2,       /* add SEP by default (RoBERTa-style embedders) */
    PRE_NO_BOS = 1 << 3,        /* the model has no BOS unless the file names one */
    PRE_RAW = 1 << 4,           /* raw-text BPE: U+2581 for spaces, no byte mapping */
};

typedef struct pre_def {
    const char *names[12];
    unsigned flags;
    const char *re[TOK_MAX_REGEX];
} pre_def;

static const pre_def k_pre[] = {
    { { "default", "" }, 0,
      { "[\\p{P}\\$\\+<=>\\^~\\|]+", RE_GPT2, "\\p{N}+", "[0-9][0-9][0-9]" } },
    { { "llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2" },
      PRE_IGNORE_MERGES | PRE_ADD_BOS, { RE_LLAMA3 } },
    { { "dbrx", "smaug-bpe" }, 0, { RE_LLAMA3 } },
    { { "chatglm-bpe", "glm4" }, PRE_NO_BOS, { RE_LLAMA3 } },
    { { "deepseek-llm" }, 0,
      { "[\\r\\n]", RE_DS_LETTERS, RE_DS_PUNCT, "\\s+$", RE_CJK, "\\p{N}+" } },
    { { "deepseek-coder" }, 0,
      { "[\\r\\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", RE_CJK, "\\p{N}" } },
    { { "deepseek-v3" }, 0,
      { "\\p{N}{1,3}", "[\\x{4E00}-\\x{9FA5}\\x{3040}-\\x{309F}\\x{30A0}-\\x{30FF}]+",
        "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+" } },
    { { "falcon" }, 0,
      { "[\\p{P}\\$\\+<=>\\^~\\|`]+", RE_GPT2, "[0-9][0-9][0-9]" } },
    { { "starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b" }, 0,
      { "\\p{N}", RE_GPT2 } },
    { { "gpt-2", "mpt", "olmo", "jais", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de",
        "exaone4", "mellum" }, 0, { RE_GPT2 } },
    { { "jina-v1-en", "jina-v2-code", "roberta-bpe" }, PRE_ADD_SEP, { RE_GPT2 } },
    { { "qwen2", "stablelm2", "deepseek-r1-qwen", "megrez", "kormo" }, 0, { RE_QWEN2 } },
    /* Qwen3.5: combining marks stay with their letters */
    { { "qwen35" }, 0,
      { RE_CONTRACT "|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+" } },
    { { "poro-chat", "bloom", "gpt3-finnish" }, 0, { " ?[^(\\s|.,!?\\x{2026}\\x{3002}\\x{FF0C}\\x{3001}\\x{0964}\\x{06D4}\\x{060C})]+" } },
    { { "viking" }, 0,
      { " ?[^(\\s|.,!?\\x{2026}\\x{3002}\\x{FF0C}\\x{3001}\\x{0964}\\x{06D4}\\x{060C})]+", "\\p{N}" } },
    { { "tekken" }, PRE_IGNORE_MERGES | PRE_ADD_BOS,
      { "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+" } },
    /* Gemma 4: BPE over characters of the text with spaces as U+2581; only
     * newline runs are split off */
    { { "gemma4" }, PRE_RAW, { "[^\\n]+|[\\n]+" } },
    { { "gpt-4o", "llama4" }, 0,
      { "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+" } },
};

/* PCRE2 allocates through cairn's allocator (fault injection reaches it). */
static void *pcre_malloc(PCRE2_SIZE n, void *ctx) { (void)ctx; return cairn_malloc(n); }
static void pcre_free(void *p, void *ctx) { (void)ctx; cairn_free(p); }

cairn_status tok_pre_init(cairn_tokenizer *t, const char *pre)
{
    const pre_def *d = NULL;
    for (size_t i = 0; i < CAIRN_ARRAY_LEN(k_pre) && !d; i++)
        for (size_t j = 0; j < CAIRN_ARRAY_LEN(k_pre[i].names) && k_pre[i].names[j]; j++)
            if (strcmp(pre, k_pre[i].names[j]) == 0) {
                d = &k_pre[i];
                break;
            }
    if (!d) {
        /* as the reference does today: warn and use the default cascade */
        CAIRN_WARN("tokenizer: unknown BPE pre-tokenizer \"%s\", using \"default\" (tokenization may differ "
                   "from the model's)", pre);
        d = &k_pre[0];
        t->pre_unknown = true;
    }
    t->ignore_merges = d->flags & PRE_IGNORE_MERGES;
    t->add_bos = d->flags & PRE_ADD_BOS;
    t->add_sep = d->flags & PRE_ADD_SEP;
    if (d->flags & PRE_NO_BOS)
        t->bos = -1;
    t->bpe_raw = d->flags & PRE_RAW;
    t->pgc = pcre2_general_context_create(pcre_malloc, pcre_free, NULL);
    if (!t->pgc)
        return cairn_fail(CAIRN_ERR_NOMEM, "tokenizer: out of memory (pcre2)");
    pcre2_compile_context *cc = pcre2_compile_context_create(t->pgc);
    if (!cc)
        return cairn_fail(CAIRN_ERR_NOMEM, "tokenizer: out of memory (pcre2)");
    cairn_status st = CAIRN_OK;
    for (int i = 0; i < TOK_MAX_REGEX && d->re[i]; i++) {
        int err;
        PCRE2_SIZE eoff;
        pcre2_code *re = pcre2_compile((PCRE2_SPTR)d->re[i], PCRE2_ZERO_TERMINATED,
                                       PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY | PCRE2_NO_UTF_CHECK, &err,
                                       &eoff, cc);
        if (!re) {
            PCRE2_UCHAR msg[128];
            pcre2_get_error_message(err, msg, sizeof msg);
            st = cairn_fail(err == PCRE2_ERROR_HEAP_FAILED || err == PCRE2_ERROR_NOMEMORY ? CAIRN_ERR_NOMEM
                                                                                         : CAIRN_ERR_INTERNAL,
                            "tokenizer: pre-tokenizer regex %d of \"%s\": %s at %zu", i, pre, (char *)msg,
                            (size_t)eoff);
            break;
        }
        /* JIT is an optimisation only: without it the interpreter runs. */
        (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
        t->re[t->n_re++] = re;
    }
    pcre2_compile_context_free(cc);
    return st;
}

void tok_bpe_free_regex(cairn_tokenizer *t);
void tok_bpe_free_regex(cairn_tokenizer *t)
{
    for (int i = 0; i < t->n_re; i++)
        pcre2_code_free(t->re[i]);
    t->n_re = 0;
    if (t->pgc)
        pcre2_general_context_free(t->pgc);
    t->pgc = NULL;
}

typedef struct span {
    size_t off, len;
} span;

typedef struct spans {
    span *v;
    size_t n, cap;
} spans;

static cairn_status spans_push(spans *s, size_t off, size_t len)
{
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 64;
        span *p = cairn_reallocarray(s->v, nc, sizeof *p);
        if (!p)
            return cairn_fail(CAIRN_ERR_NOMEM, "tokenizer: out of memory");
        s->v = p;
        s->cap = nc;
    }
    s->v[s->n++] = (span){ off, len };
    return CAIRN_OK;
}

/* Cut [off, off+len) by regex re into matches and gaps, appended to out. */
static cairn_status split_one(const pcre2_code *re, pcre2_match_data *md, const char *text, size_t off, size_t len,
                              spans *out)
{
    const char *subj = text + off;
    size_t start = 0, last = 0;
    while (start < len) {
        int rc = pcre2_match(re, (PCRE2_SPTR)subj, len, start, PCRE2_NO_UTF_CHECK, md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH)
            break;
        if (rc < 0) {
            PCRE2_UCHAR msg[128];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return cairn_fail(rc == PCRE2_ERROR_NOMEMORY ? CAIRN_ERR_NOMEM : CAIRN_ERR_TOO_LARGE,
                              "tokenizer: pre-tokenizer regex failed: %s", (char *)msg);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t ms = ov[0], me = ov[1];
        if (me == ms) { /* empty match: step over one character */
            start = ms + 1;
            while (start < len && ((uint8_t)subj[start] & 0xC0) == 0x80)
                start++;
            continue;
        }
        if (ms > last)
            CAIRN_TRY(spans_push(out, off + last, ms - last));
        CAIRN_TRY(spans_push(out, off + ms, me - ms));
        last = start = me;
    }
    if (last < len)
        CAIRN_TRY(spans_push(out, off + last, len - last));
    return CAIRN_OK;
}

cairn_status tok_pre_split(const cairn_tokenizer *t, const char *text, size_t len, tok_word_fn fn, void *ctx)
{
    if (len == 0)
        return CAIRN_OK;
    spans a = { 0 }, b = { 0 };
    cairn_status st = CAIRN_OK;
    pcre2_match_data *md = pcre2_match_data_create(1, t->pgc);
    if (!md)
        return cairn_fail(CAIRN_ERR_NOMEM, "tokenizer: out of memory (pcre2)");
    if ((st = spans_push(&a, 0, len)) != CAIRN_OK)
        goto done;
    for (int r = 0; r < t->n_re; r++) {
        b.n = 0;
        for (size_t i = 0; i < a.n; i++)
            if ((st = split_one(t->re[r], md, text, a.v[i].off, a.v[i].len, &b)) != CAIRN_OK)
                goto done;
        spans tmp = a;
        a = b;
        b = tmp;
    }
    for (size_t i = 0; i < a.n; i++)
        if ((st = fn(t, text + a.v[i].off, a.v[i].len, ctx)) != CAIRN_OK)
            goto done;
done:
    pcre2_match_data_free(md);
    cairn_free(a.v);
    cairn_free(b.v);
    return st;
}
