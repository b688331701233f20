/* chunk.c — structure-aware windows over a document's blocks (see chunk.h).
 *
 * Per section (the blocks between two headings) the blocks are cut into
 * pieces — sentences of prose, lines of code, whole table rows; a piece
 * longer than a window is cut between words, and a word longer than a
 * window between characters. Windows are then packed greedily from pieces,
 * preferring to end at a block boundary once at least half full, and the
 * next window starts with the trailing pieces of the previous one that fit
 * in the overlap budget. Cost: O(bytes) plus O(pieces) per section.
 */
#include "chunk/chunk.h"
#include <string.h>

void chunk_options_default(chunk_options *o)
{
    o->max_tokens = CHUNK_DEFAULT_TOKENS;
    o->overlap_tokens = CHUNK_DEFAULT_OVERLAP;
}

cairn_status chunk_options_check(const chunk_options *o)
{
    if (o->max_tokens < CHUNK_MIN_TOKENS || o->max_tokens > CHUNK_MAX_TOKENS)
        return cairn_fail(CAIRN_ERR_INVALID, "chunk size %zu is outside %d..%d tokens",
                          o->max_tokens, CHUNK_MIN_TOKENS, CHUNK_MAX_TOKENS);
    if (o->overlap_tokens * 2 > o->max_tokens)
        return cairn_fail(CAIRN_ERR_INVALID, "chunk overlap %zu must be at most half the chunk size %zu",
                          o->overlap_tokens, o->max_tokens);
    return CAIRN_OK;
}

void chunk_key_hex(uint64_t key, char out[17])
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 15; i >= 0; i--) {
        out[i] = hex[key & 15];
        key >>= 4;
    }
    out[16] = 0;
}

/* ---- token estimate ---- */
enum { C_PUNCT = 0, C_SPACE = 1, C_WORD = 2, C_E = 3 };

/* Byte classes. Bytes >= 0x80 are parts of letters (UTF-8) except the
 * three-byte leads E0..EF, which need a look at the code point (CJK).
 * Everything not listed is punctuation (C_PUNCT = 0). */
static const uint8_t byte_class[256] = {
    [' '] = C_SPACE, ['\n'] = C_SPACE, ['\t'] = C_SPACE, ['\r'] = C_SPACE, ['\f'] = C_SPACE, ['\v'] = C_SPACE,
    ['0' ... '9'] = C_WORD, ['a' ... 'z'] = C_WORD, ['A' ... 'Z'] = C_WORD, ['_'] = C_WORD,
    [0x80 ... 0xDF] = C_WORD, [0xE0 ... 0xEF] = C_E, [0xF0 ... 0xFF] = C_WORD,
};

static inline bool is_space(unsigned char c) { return byte_class[c] == C_SPACE; }

/* CJK ideographs, kana and hangul: one token per character. */
static inline bool is_cjk_lead(const unsigned char *s, size_t left)
{
    if (left < 3 || (s[0] & 0xF0) != 0xE0)
        return false;
    unsigned cp = ((s[0] & 0x0Fu) << 12) | ((s[1] & 0x3Fu) << 6) | (s[2] & 0x3Fu);
    return (cp >= 0x3040 && cp <= 0x30FF) || (cp >= 0x3400 && cp <= 0x9FFF) ||
           (cp >= 0xAC00 && cp <= 0xD7AF) || (cp >= 0xF900 && cp <= 0xFAFF);
}

size_t chunk_count_tokens(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t tok = 0, i = 0;
    while (i < len) {
        unsigned c = byte_class[s[i]];
        if (c == C_SPACE) {
            i++;
        } else if (c == C_PUNCT) {
            tok++;
            i++;
        } else if (c == C_E && is_cjk_lead(s + i, len - i)) {
            tok++;
            i += 3;
        } else {
            /* a run of word bytes: one token per started 8 bytes */
            size_t start = i++;
            while (i < len) {
                unsigned d = byte_class[s[i]];
                if (d == C_WORD || (d == C_E && !is_cjk_lead(s + i, len - i)))
                    i++;
                else
                    break;
            }
            tok += (i - start + 7) / 8;
        }
    }
    return tok;
}

/* ---- pieces ---- */
typedef struct piece {
    const char *s;      /* into the block text */
    size_t n;
    uint32_t ntok;
    uint32_t block;     /* block index */
    int page;
} piece;

typedef struct pieces { piece *p; size_t n, cap; } pieces;

static cairn_status piece_push(pieces *ps, const char *s, size_t n, size_t ntok, uint32_t block, int page)
{
    if (!n)
        return CAIRN_OK;
    if (ps->n == ps->cap) {
        size_t nc = ps->cap ? ps->cap * 2 : 64;
        piece *np = cairn_reallocarray(ps->p, nc, sizeof *np);
        if (!np)
            return cairn_fail(CAIRN_ERR_NOMEM, "out of memory chunking");
        ps->p = np;
        ps->cap = nc;
    }
    ps->p[ps->n++] = (piece){s, n, (uint32_t)ntok, block, page};
    return CAIRN_OK;
}

static size_t utf8_char_len(const unsigned char *s, size_t left)
{
    size_t n = 1;
    if (s[0] >= 0xF0)
        n = 4;
    else if (s[0] >= 0xE0)
        n = 3;
    else if (s[0] >= 0xC0)
        n = 2;
    return n <= left ? n : left;
}

/* Push [s, s+n) as pieces of at most `max` tokens, cutting between words
 * (whitespace) and, for a giant word, between characters. */
static cairn_status push_bounded(pieces *ps, const char *s, size_t n, size_t max, uint32_t block, int page)
{
    size_t tok = chunk_count_tokens(s, n);
    if (tok <= max)
        return piece_push(ps, s, n, tok, block, page);
    const unsigned char *u = (const unsigned char *)s;
    size_t start = 0, i = 0, acc = 0;
    while (i < n) {
        /* next word [i, we) and the whitespace after it */
        size_t ws = i;
        while (ws < n && is_space(u[ws]))
            ws++;
        size_t we = ws;
        while (we < n && !is_space(u[we]))
            we++;
        size_t wt = chunk_count_tokens(s + ws, we - ws);
        if (wt > max) {
            /* flush what we have, then cut the word by characters */
            if (acc)
                CAIRN_TRY(piece_push(ps, s + start, i - start, acc, block, page));
            size_t cs = ws, k = ws;
            while (k < we) {
                size_t cl = utf8_char_len(u + k, we - k);
                if (chunk_count_tokens(s + cs, k + cl - cs) > max) {
                    CAIRN_TRY(piece_push(ps, s + cs, k - cs, chunk_count_tokens(s + cs, k - cs), block, page));
                    cs = k;
                }
                k += cl;
            }
            CAIRN_TRY(piece_push(ps, s + cs, we - cs, chunk_count_tokens(s + cs, we - cs), block, page));
            start = we;
            while (start < n && is_space(u[start]))
                start++;
            i = start;
            acc = 0;
            continue;
        }
        if (acc + wt > max && acc) {
            CAIRN_TRY(piece_push(ps, s + start, i - start, acc, block, page));
            start = ws;
            acc = 0;
        }
        acc += wt;
        i = we;
    }
    if (acc && start < n)
        CAIRN_TRY(piece_push(ps, s + start, n - start, acc, block, page));
    return CAIRN_OK;
}

static bool abbreviation_before(const char *s, size_t dot)
{
    /* the word ending at s[dot] == '.' */
    size_t b = dot;
    while (b > 0 && !is_space((unsigned char)s[b - 1]))
        b--;
    size_t wl = dot - b;
    if (wl == 1)
        return true;   /* initials: "J. Smith" */
    static const char *abbr[] = {"Mr", "Mrs", "Ms", "Dr", "Prof", "St", "Jr", "Sr", "vs", "etc", "e.g", "i.e",
                                 "Fig", "fig", "No", "no", "Vol", "pp", "cf", "al", "approx", "Inc", "Ltd", "Co"};
    for (size_t i = 0; i < CAIRN_ARRAY_LEN(abbr); i++)
        if (strlen(abbr[i]) == wl && !memcmp(s + b, abbr[i], wl))
            return true;
    return false;
}

/* Sentences of prose: end after . ! ? (plus closing quotes/brackets) and
 * whitespace. */
static cairn_status split_sentences(pieces *ps, const char *s, size_t n, size_t max, uint32_t block, int page)
{
    size_t start = 0, i = 0;
    while (i < n) {
        /* block texts are NUL-terminated, so strcspn stays inside */
        i += strcspn(s + i, ".!?");
        if (i >= n)
            break;
        char c = s[i];
        if (c == '.' || c == '!' || c == '?') {
            size_t e = i + 1;
            while (e < n && (s[e] == '"' || s[e] == '\'' || s[e] == ')' || s[e] == ']' || s[e] == '.' ||
                             s[e] == '!' || s[e] == '?'))
                e++;
            if (e < n && is_space((unsigned char)s[e]) && !(c == '.' && abbreviation_before(s, i))) {
                CAIRN_TRY(push_bounded(ps, s + start, e - start, max, block, page));
                while (e < n && is_space((unsigned char)s[e]))
                    e++;
                start = e;
                i = e;
                continue;
            }
            i = e;
            continue;
        }
        i++;
    }
    if (start < n)
        CAIRN_TRY(push_bounded(ps, s + start, n - start, max, block, page));
    return CAIRN_OK;
}

/* Lines of code (blank-line runs are already block boundaries). */
static cairn_status split_lines(pieces *ps, const char *s, size_t n, size_t max, uint32_t block, int page)
{
    size_t i = 0;
    while (i < n) {
        const char *nl = memchr(s + i, '\n', n - i);
        size_t e = nl ? (size_t)(nl - s) : n;
        if (e > i)
            CAIRN_TRY(push_bounded(ps, s + i, e - i, max, block, page));
        i = e + 1;
    }
    return CAIRN_OK;
}

/* ---- assembling chunks ---- */
typedef struct chunker {
    const ingest_doc *d;
    const chunk_options *o;
    chunk_list *out;
    char *heads[7];         /* heading text by level 1..6 */
    cairn_buf path;         /* current heading path */
    cairn_buf text;
    pieces ps;
} chunker;

static const char *block_prefix(const ingest_block *b)
{
    if (b->kind == BLOCK_LIST_ITEM)
        return "- ";
    if (b->kind == BLOCK_QUOTE)
        return "> ";
    return "";
}

static const char *block_joiner(const ingest_block *prev, const ingest_block *cur)
{
    if (prev->kind == cur->kind && (cur->kind == BLOCK_LIST_ITEM || cur->kind == BLOCK_TABLE_ROW))
        return "\n";
    return "\n\n";
}

static cairn_status list_push(chunk_list *l, chunk *c)
{
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 16;
        chunk *nl = cairn_reallocarray(l->c, nc, sizeof *nl);
        if (!nl)
            return cairn_fail(CAIRN_ERR_NOMEM, "out of memory chunking");
        l->c = nl;
        l->cap = nc;
    }
    l->c[l->n++] = *c;
    return CAIRN_OK;
}

/* Emit pieces [a, b) as one chunk. */
static cairn_status emit_chunk(chunker *k, size_t a, size_t b, size_t ntok)
{
    cairn_buf_reset(&k->text);
    const piece *p = k->ps.p;
    for (size_t i = a; i < b; i++) {
        const ingest_block *blk = &k->d->blocks[p[i].block];
        if (i == a) {
            /* Start of a window: mark a list item / quote even mid-block. */
            CAIRN_TRY(cairn_buf_puts(&k->text, block_prefix(blk)));
        } else if (p[i].block != p[i - 1].block) {
            CAIRN_TRY(cairn_buf_puts(&k->text, block_joiner(&k->d->blocks[p[i - 1].block], blk)));
            CAIRN_TRY(cairn_buf_puts(&k->text, block_prefix(blk)));
        } else {
            /* same block: keep the original separator (space or newline) */
            const char *gap = p[i - 1].s + p[i - 1].n;
            size_t gl = (size_t)(p[i].s - gap);
            bool nl = memchr(gap, '\n', gl) != NULL;
            CAIRN_TRY(cairn_buf_putc(&k->text, nl ? '\n' : ' '));
        }
        CAIRN_TRY(cairn_buf_append(&k->text, p[i].s, p[i].n));
    }
    if (!k->text.len)
        return CAIRN_OK;
    chunk c = {0};
    c.len = k->text.len;
    c.text = cairn_buf_take(&k->text);
    c.heading_path = cairn_strdup(k->path.data ? k->path.data : "");
    if (!c.text || !c.heading_path) {
        cairn_free(c.text);
        cairn_free(c.heading_path);
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory chunking");
    }
    c.page = p[a].page;
    c.ntokens = (int)ntok;
    c.ord = (int)k->out->n;
    cairn_status st = list_push(k->out, &c);
    if (st != CAIRN_OK) {
        cairn_free(c.text);
        cairn_free(c.heading_path);
    }
    return st;
}

static cairn_status flush_section(chunker *k)
{
    size_t n = k->ps.n, max = k->o->max_tokens, ov = k->o->overlap_tokens;
    const piece *p = k->ps.p;
    size_t i = 0;
    while (i < n) {
        size_t j = i, tok = 0;
        while (j < n && tok + p[j].ntok <= max) {
            tok += p[j].ntok;
            j++;
        }
        if (j == i) {   /* cannot happen (pieces are bounded); be safe */
            tok = p[j].ntok;
            j++;
        }
        if (j < n && p[j].block == p[j - 1].block) {
            /* Prefer ending at a block boundary if the window stays at least
             * half full. */
            size_t t2 = tok;
            for (size_t m = j - 1; m > i; m--) {
                t2 -= p[m].ntok;
                if (t2 * 2 < max)
                    break;
                if (p[m].block != p[m - 1].block) {
                    j = m;
                    tok = t2;
                    break;
                }
            }
        }
        CAIRN_TRY(emit_chunk(k, i, j, tok));
        if (j >= n)
            break;
        size_t m = j, o = 0;
        while (m - 1 > i && o + p[m - 1].ntok <= ov) {
            m--;
            o += p[m].ntok;
        }
        i = m;
    }
    k->ps.n = 0;
    return CAIRN_OK;
}

static cairn_status set_heading(chunker *k, int level, const char *text)
{
    if (level < 1)
        level = 1;
    if (level > 6)
        level = 6;
    for (int l = level; l <= 6; l++) {
        cairn_free(k->heads[l]);
        k->heads[l] = NULL;
    }
    /* headings are one line in the path */
    char *h = cairn_strdup(text);
    if (!h)
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory chunking");
    for (char *q = h; *q; q++)
        if (*q == '\n' || *q == '\r' || *q == '\t')
            *q = ' ';
    k->heads[level] = h;
    cairn_buf_reset(&k->path);
    for (int l = 1; l <= 6; l++) {
        if (!k->heads[l])
            continue;
        if (k->path.len)
            CAIRN_TRY(cairn_buf_puts(&k->path, " > "));
        CAIRN_TRY(cairn_buf_puts(&k->path, k->heads[l]));
    }
    return CAIRN_OK;
}

/* Stable keys: hash of content and context, disambiguated by repetition. */
static cairn_status assign_keys(const ingest_doc *d, chunk_list *out, size_t first)
{
    size_t n = out->n - first;
    if (!n)
        return CAIRN_OK;
    size_t cap = 16;
    while (cap < n * 2)
        cap *= 2;
    uint64_t *keys = cairn_calloc(cap, sizeof *keys);
    uint32_t *counts = cairn_calloc(cap, sizeof *counts);
    if (!keys || !counts) {
        cairn_free(keys);
        cairn_free(counts);
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory chunking");
    }
    cairn_buf b;
    cairn_buf_init(&b, 0);
    cairn_status st = CAIRN_OK;
    for (size_t i = first; i < out->n && st == CAIRN_OK; i++) {
        chunk *c = &out->c[i];
        /* context hash (cheap) combined with the text hash */
        cairn_buf_reset(&b);
        st = cairn_buf_printf(&b, "%s\x1f%s\x1f%s\x1f%d", d->key ? d->key : "", d->title ? d->title : "",
                              c->heading_path, c->page);
        if (st != CAIRN_OK)
            break;
        uint64_t h = cairn_hash64(b.data, b.len) * 0x9E3779B97F4A7C15ull ^ cairn_hash64(c->text, c->len);
        if (!h)
            h = 1;
        size_t slot = h & (cap - 1);
        while (keys[slot] && keys[slot] != h)
            slot = (slot + 1) & (cap - 1);
        uint32_t rep = counts[slot]++;
        keys[slot] = h;
        c->key = rep ? h ^ cairn_hash64(&rep, sizeof rep) : h;
    }
    cairn_buf_free(&b);
    cairn_free(keys);
    cairn_free(counts);
    return st;
}

void chunk_list_free(chunk_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        cairn_free(l->c[i].text);
        cairn_free(l->c[i].heading_path);
    }
    cairn_free(l->c);
    l->c = NULL;
    l->n = l->cap = 0;
}

cairn_status chunk_doc(const ingest_doc *d, const chunk_options *o, chunk_list *out)
{
    CAIRN_TRY(chunk_options_check(o));
    chunker k = {.d = d, .o = o, .out = out};
    cairn_buf_init(&k.path, 0);
    cairn_buf_init(&k.text, 0);
    size_t first = out->n;
    cairn_status st = CAIRN_OK;
    for (size_t i = 0; i < d->n_blocks && st == CAIRN_OK; i++) {
        const ingest_block *b = &d->blocks[i];
        if (b->kind == BLOCK_HEADING) {
            st = flush_section(&k);
            if (st == CAIRN_OK)
                st = set_heading(&k, b->level, b->text);
            continue;
        }
        if (b->kind == BLOCK_CODE)
            st = split_lines(&k.ps, b->text, b->len, o->max_tokens, (uint32_t)i, b->page);
        else if (b->kind == BLOCK_TABLE_ROW)
            st = push_bounded(&k.ps, b->text, b->len, o->max_tokens, (uint32_t)i, b->page);
        else
            st = split_sentences(&k.ps, b->text, b->len, o->max_tokens, (uint32_t)i, b->page);
    }
    if (st == CAIRN_OK)
        st = flush_section(&k);
    if (st == CAIRN_OK)
        st = assign_keys(d, out, first);
    if (st != CAIRN_OK) {
        /* leave `out` as it was */
        for (size_t i = first; i < out->n; i++) {
            cairn_free(out->c[i].text);
            cairn_free(out->c[i].heading_path);
        }
        out->n = first;
    }
    for (int l = 0; l <= 6; l++)
        cairn_free(k.heads[l]);
    cairn_buf_free(&k.path);
    cairn_buf_free(&k.text);
    cairn_free(k.ps.p);
    return st;
}
