/*
 * analyzer.h — the text analyzer: the one place that turns text into index
 * terms, used identically for chunks at index time and for queries.
 *
 * Pipeline per word:
 *   1. word segmentation on the original UTF-8: runs of letters, digits and
 *      combining marks (Unicode categories L*, N*, M*); an apostrophe between
 *      letters and a '.' or ',' between digits stay inside the word; each
 *      CJK ideograph / kana is a word of its own;
 *   2. normalization: NFKC + Unicode case folding (utf8proc), optionally
 *      accent stripping; pure-ASCII words take a fast path (lowercase);
 *   3. English possessive "'s" removed, then apostrophes dropped ("don't" ->
 *      "dont");
 *   4. stop words dropped (none | lucene: the 33 classic English words |
 *      english: Snowball's English list);
 *   5. stemming (libstemmer: any Snowball algorithm name, e.g. english,
 *      porter; or none). Stems are memoized per analyzer.
 *
 * The configuration is recorded in the index, so a store that changes it
 * rebuilds its index instead of mixing terms from two analyzers.
 *
 * An analyzer is not thread-safe (stem cache and libstemmer state); use one
 * per thread.
 */
#ifndef CAIRN_TEXT_ANALYZER_H
#define CAIRN_TEXT_ANALYZER_H

#include "base/base.h"

#define TEXT_MAX_TERM 64   /* longer words are dropped (base64 blobs, hashes) */

typedef enum { TEXT_STOP_NONE = 0, TEXT_STOP_LUCENE = 1, TEXT_STOP_ENGLISH = 2 } text_stoplist;

typedef struct text_config {
    char stemmer[24];       /* Snowball algorithm name, or "none" */
    text_stoplist stop;
    bool strip_accents;     /* fold "café" to "cafe" */
} text_config;

/* Defaults (chosen by cairn eval, docs/eval.md): stemmer=english,
 * stop=english, accents kept. */
void text_config_default(text_config *c);
/* Set one option by name ("stemmer", "stop", "accents"); CAIRN_ERR_INVALID with
 * a detail for unknown names or values. */
cairn_status text_config_set(text_config *c, const char *key, const char *value);
/* Canonical one-line description ("stemmer=english stop=lucene accents=keep"). */
void text_config_str(const text_config *c, char *out, size_t n);
/* Parse what text_config_str wrote. */
cairn_status text_config_parse(text_config *c, const char *s);

typedef struct text_analyzer text_analyzer;

cairn_status text_analyzer_new(const text_config *c, text_analyzer **out);
void text_analyzer_free(text_analyzer *a);
const text_config *text_analyzer_config(const text_analyzer *a);

/* Called for each term: `term` (not NUL-terminated, valid during the call),
 * its position among the words (stop words count), and the byte span
 * [start, end) of the word in the input. A non-OK return stops analysis. */
typedef cairn_status (*text_term_fn)(void *ctx, const char *term, size_t len,
                                     uint32_t pos, size_t start, size_t end);

/* Analyze `len` bytes of UTF-8 (invalid bytes are treated as separators). */
cairn_status text_analyze(text_analyzer *a, const char *s, size_t len, text_term_fn fn, void *ctx);

/* Word spans only (step 1), for highlighting: fn gets each word's span with
 * its analyzed term, or len 0 when the word is a stop word / dropped. */
cairn_status text_analyze_words(text_analyzer *a, const char *s, size_t len, text_term_fn fn, void *ctx);

/* True if the normalized word is a stop word under this configuration. */
bool text_is_stopword(const text_analyzer *a, const char *w, size_t len);

#endif
