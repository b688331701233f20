/*
 * rag.h — answers from the store: retrieve, build a numbered context within a
 * token budget, prompt a model (or extract sentences without one), check the
 * citations, and list the sources with their age and staleness.
 *
 * The pieces are separate so that `cairn ask`, `cairn chat` and the HTTP
 * server (POST /v1/ask, the `cairn-rag` chat model, which batches generation
 * itself) each use the layers they need:
 *
 *   rag_retrieve        query [+ filter] -> ranked chunks (BM25 today; the
 *                       mode names the retriever so dense/hybrid slot in)
 *   rag_context_build   ranked chunks -> passages [1]..[n]: chunks of one
 *                       document that overlap or are adjacent are merged,
 *                       passages ordered by their best rank, cut to a token
 *                       budget (the model's tokenizer, else chunk_count_tokens)
 *   rag_context_render  the passages as prompt text ("[1] path > heading ...")
 *   rag_prompt_render   system prompt + earlier turns + the new user turn
 *                       (context + question) in the model's chat markup
 *   rag_cite_*          the streaming citation checker: markers that point at
 *                       no passage are removed (and counted) as text streams
 *   rag_extract         an extractive answer: the best sentences of the
 *                       passages, each with its marker (no model needed)
 *   rag_chat            one conversation over a model (or none): history kept
 *                       within the context, the KV cache of the common prompt
 *                       prefix reused between turns, streaming, timings
 *   rag_answer_json     the JSON object `cairn ask --json` prints (and
 *                       /v1/ask returns), so both have one shape
 *
 * Threads: a rag_chat (and the search_engine it is given) is used by one
 * thread at a time; the passage/answer structs are plain data.
 */
#ifndef CAIRN_RAG_H
#define CAIRN_RAG_H

#include "filter/filter.h"
#include "infer/chat.h"
#include "infer/generate.h"
#include "search/search.h"

#include <cjson/cJSON.h>

/* ---- retrieval ---- */
typedef enum {
    RAG_MODE_BM25,      /* search_run over the BM25 index */
    RAG_MODE_DENSE,     /* vector index (not in this build: CAIRN_ERR_UNSUPPORTED) */
    RAG_MODE_HYBRID,    /* fused BM25 + dense (likewise) */
} rag_mode;

/* "bm25", "dense", "hybrid" (CAIRN_ERR_INVALID names the modes otherwise). */
cairn_status rag_mode_from_name(const char *name, rag_mode *out);
const char *rag_mode_name(rag_mode m);

typedef struct rag_query {
    const char *text;           /* the question (also the search query) */
    const char *where;          /* filter language (filter.h), NULL = everything */
    size_t k;                   /* chunks to retrieve (0 = 8) */
    rag_mode mode;
    int64_t fresh_within_s;     /* 0 = any age */
    int64_t now_s;              /* 0 = the clock (tests pin it) */
} rag_query;

/* Retrieve the top k chunks for q among the chunks its filter allows.
 * A bad filter is CAIRN_ERR_INVALID with the filter's positioned message.
 * out->took_ms covers filter + search. */
cairn_status rag_retrieve(store *s, search_engine *e, const rag_query *q, search_results *out);

/* ---- context ---- */
typedef enum {
    RAG_FRESH = 0,      /* the source file is as it was ingested */
    RAG_CHANGED,        /* size or mtime differ from the store: re-run `cairn sync` */
    RAG_MISSING,        /* the source file is gone */
    RAG_NO_FILE,        /* the document has no file on disk to compare (uploads) */
} rag_staleness;
const char *rag_staleness_name(rag_staleness st);   /* "fresh", "changed", "missing", "no-file" */

typedef struct rag_passage {
    int marker;                 /* the n of [n] */
    int64_t doc_id;
    int64_t *chunk_ids;         /* merged chunks, document order */
    size_t n_chunks;
    int first_ord, last_ord;    /* their positions in the document */
    char *path, *rkey, *title, *heading_path;   /* heading of the first chunk */
    int page;                   /* of the first chunk; 0 = not paged */
    char *text;                 /* merged text, overlaps removed */
    size_t text_len;
    size_t ntokens;             /* of text (tokenizer or estimate) */
    int best_rank;              /* 0-based rank of its best chunk */
    float best_score;
    int64_t ingested_at_ns, mtime_ns;
    rag_staleness stale;
} rag_passage;

typedef struct rag_context {
    rag_passage *p;             /* ordered by best_rank; p[i].marker = marker_base + i + 1 */
    size_t n;
    size_t n_hits;              /* chunks retrieved */
    size_t n_cut;               /* retrieved chunks left out for the budget */
    size_t n_tokens;            /* of rag_context_render's text */
    size_t n_stale;             /* passages whose source is not fresh */
    double retrieval_ms;
} rag_context;

typedef struct rag_context_opts {
    size_t budget_tokens;       /* most tokens of rendered context (0 = 1500) */
    const cairn_tokenizer *tok; /* counts tokens; NULL = chunk_count_tokens estimate */
    int marker_base;            /* first marker is marker_base + 1 (chat numbers on) */
    int64_t now_ns;             /* for ages; 0 = the clock */
} rag_context_opts;

/* Build passages from ranked hits (res from rag_retrieve). At least part of
 * the best hit is kept even when it alone exceeds the budget (cut at a
 * sentence or word boundary). Staleness: one stat per document. */
cairn_status rag_context_build(store *s, const search_results *res, const rag_context_opts *o, rag_context *out);
void rag_context_free(rag_context *c);

/* The passages as prompt text, appended to out:
 *   [1] docs/search.md > BM25 > Parameters (p. 3)
 *   text ...
 *   (blank line between passages) */
cairn_status rag_context_render(const rag_context *c, cairn_buf *out);

/* Tokens of text by tok, or the estimate when tok is NULL. */
size_t rag_count_tokens(const cairn_tokenizer *tok, const char *text, size_t len);

/* The passage with marker m, or NULL. */
const rag_passage *rag_context_find(const rag_context *c, int marker);

/* ---- citation checking (streaming) ----
 * Markers are "[n]" and lists "[n, m]" / "[n][m]". A number that names no
 * passage (rag_cite_valid_fn says no) is removed from its list; an emptied
 * bracket is removed with the whitespace before it. Anything else in
 * brackets ("[note]", "[a-z]") passes through unchanged. Text that could
 * still become a marker is held back (at most RAG_CITE_HOLD bytes). */
#define RAG_CITE_HOLD 64
typedef bool (*rag_cite_valid_fn)(void *ctx, int marker);
typedef bool (*rag_text_fn)(void *ud, const char *text, size_t len);   /* false = stop */

typedef struct rag_cite {
    rag_cite_valid_fn valid;
    void *valid_ctx;
    rag_text_fn out;
    void *out_ud;
    char hold[RAG_CITE_HOLD + 8];
    size_t n_hold;
    int *cited;                 /* valid markers in order of first use (distinct) */
    size_t n_cited, cap_cited;
    size_t n_markers;           /* valid markers seen (with repeats) */
    size_t dropped;             /* invalid markers removed */
    bool stopped;               /* `out` returned false */
    cairn_status err;           /* first allocation failure */
} rag_cite;

void rag_cite_init(rag_cite *c, rag_cite_valid_fn valid, void *valid_ctx, rag_text_fn out, void *out_ud);
/* A validity test for rag_cite over a context's markers (ctx = the rag_context). */
bool rag_cite_valid_context(void *ctx, int marker);
/* Feed generated text; returns false once `out` asked to stop. */
bool rag_cite_feed(rag_cite *c, const char *text, size_t len);
/* End of text: flush what is held. */
void rag_cite_finish(rag_cite *c);
void rag_cite_free(rag_cite *c);

/* Whole-text form: the checked text into *clean (cairn_free), counts in *cite
 * (free with rag_cite_free). */
cairn_status rag_cite_check(const rag_context *ctx, const char *text, size_t len, char **clean, rag_cite *cite);

/* ---- extractive answers ----
 * Sentences of the passages are scored by the query terms they contain
 * (IDF-weighted, analyzer-normalized: stems and stop words as the index),
 * how close together those terms are, and the rank of their passage; the
 * best `max_sentences` (0 = 3) are returned best first, each followed by its
 * marker: "The crisis began in October 1973. [1]". */
typedef struct rag_sentence {
    int marker;
    size_t passage;             /* index into ctx->p */
    size_t off, len;            /* byte span in ctx->p[passage].text */
    double score;
} rag_sentence;

typedef struct rag_extract_opts {
    size_t max_sentences;       /* 0 = 3 */
    double rank_decay;          /* weight of passage rank r: 1 / (1 + rank_decay * r); < 0 = default */
    double proximity;           /* weight of the term-proximity bonus; < 0 = default */
} rag_extract_opts;

/* Best sentences for question q. `e` gives the analyzer and the IDF of
 * terms (its index statistics). *sent (cairn_free) holds *n_sent entries;
 * *text (cairn_free) the answer text with markers, "" when nothing matched. */
cairn_status rag_extract(search_engine *e, const rag_context *ctx, const char *q, const rag_extract_opts *o,
                         rag_sentence **sent, size_t *n_sent, char **text);

/* ---- prompts ---- */
/* The default system prompt: answer from the numbered sources only, cite
 * them as [n], say so when they do not contain the answer. */
extern const char rag_default_system_prompt[];

typedef struct rag_turn {
    const char *user;           /* the user message exactly as sent (context + question) */
    const char *assistant;      /* the answer as generated, NULL for the open turn */
} rag_turn;

/* How the conversation is marked up: a chat style (infer/chat.h), or plain
 * text for models without a chat template ("Question: ...\nAnswer:"). */
typedef struct rag_style {
    bool plain;
    chat_style chat;
} rag_style;

/* The model's style from tokenizer.chat_template, or `name` when given
 * ("chatml", ..., or "plain"). A model without a template gets plain. */
cairn_status rag_style_for_model(const cairn_model *m, const char *name, rag_style *out);

/* The user message of a new turn: the rendered context then the question.
 * Text that spells a chat control marker ("<|im_start|>", "[INST]", "</s>"
 * ...) gets a zero-width space after its first byte, so documents and
 * questions cannot open turns when the prompt is tokenized with special
 * tokens parsed. */
cairn_status rag_user_message(const rag_context *ctx, const char *question, cairn_buf *out);

/* system (NULL = default), then turns[0..n) (the last one open: assistant
 * NULL), ending with the opening of the assistant's reply. */
cairn_status rag_prompt_render(const rag_style *st, const char *system, const rag_turn *turns, size_t n,
                               cairn_buf *out);

/* ---- sources and staleness ---- */
/* A stored document's file compared with the disk (one stat). */
cairn_status rag_doc_staleness(store *s, int64_t doc_id, rag_staleness *out);

/* ---- answers ---- */
typedef enum { RAG_EXTRACTIVE, RAG_GENERATED } rag_answer_kind;

typedef struct rag_timings {
    double retrieval_ms;        /* filter + search */
    double context_ms;          /* passages, staleness, rendering */
    int prompt_tokens;          /* of the whole prompt */
    int reused_tokens;          /* of those, served from the previous turn's KV */
    int gen_tokens;
    double ttft_ms;             /* from the question to the first answer byte */
    double prompt_ms;           /* evaluating the new prompt tokens */
    double tokens_per_s;        /* generation */
    double total_ms;
} rag_timings;

typedef struct rag_answer {
    rag_answer_kind kind;
    char *text;                 /* checked answer (markers valid) */
    size_t len;
    int *cited;                 /* distinct markers in order of first use */
    size_t n_cited;
    size_t dropped_citations;
    bool stale;                 /* a passage of the context is not fresh */
    gen_stop stop;              /* generated answers */
    rag_timings t;
} rag_answer;
void rag_answer_free(rag_answer *a);

/* One JSON object: {question, answer, kind, citations: [{marker, chunk_ids,
 * doc_id, path, heading_path, page}], sources: [{marker, doc_id, chunk_ids,
 * path, key, title, heading_path, page, ingested_at, age_s, stale,
 * staleness}], dropped_citations, stale, stale_sources, timings: {...}}.
 * ctx may hold passages the answer does not cite (they are still sources). */
cJSON *rag_answer_json(const char *question, const rag_context *ctx, const rag_answer *a, int64_t now_ns);

/* ---- conversations ---- */
typedef struct rag_chat rag_chat;

typedef struct rag_chat_opts {
    store *s;                   /* borrowed */
    search_engine *e;           /* borrowed */
    /* generation: all NULL for extractive answers */
    const cairn_model *model;   /* borrowed */
    const cairn_tokenizer *tok; /* borrowed */
    cairn_session *session;     /* borrowed; its KV holds the conversation so far */
    cairn_sampler *sampler;     /* borrowed */
    rag_style style;
    const char *system;         /* NULL = rag_default_system_prompt */
    int n_predict;              /* most answer tokens (0 = 256) */
    size_t context_tokens;      /* budget of one turn's context (0 = 1500; capped by the session) */
    size_t k;                   /* chunks per question (0 = 8) */
    rag_mode mode;
    const char *where;          /* filter for every turn (rag_chat_set_where changes it) */
    size_t max_sentences;       /* extractive */
    bool keep_history;          /* chat: earlier turns go into the prompt (ask: false) */
    bool no_prefix_cache;       /* evaluate every prompt from scratch (to measure what the cache saves) */
} rag_chat_opts;

cairn_status rag_chat_new(const rag_chat_opts *o, rag_chat **out);
void rag_chat_free(rag_chat *c);

/* Answer `question`: retrieve, build the context (within what the session
 * has left after the history; the oldest turns are dropped when needed),
 * then extract or generate. Answer text goes to on_text as it is final
 * (citations checked; generated text streams, extractive comes at once).
 * out->t.reused_tokens counts the prompt tokens whose KV was kept from the
 * previous turn. The turn's context stays readable with rag_chat_context. */
cairn_status rag_chat_ask(rag_chat *c, const char *question, rag_text_fn on_text, void *ud, rag_answer *out);

/* The context of the last answered turn (NULL before the first). */
const rag_context *rag_chat_context(const rag_chat *c);
/* Change the filter for the next turns (NULL = everything); checked now:
 * a bad filter is CAIRN_ERR_INVALID and the old one stays. */
cairn_status rag_chat_set_where(rag_chat *c, const char *where);
const char *rag_chat_where(const rag_chat *c);
/* Forget the history (the KV cache is truncated to empty). */
void rag_chat_reset(rag_chat *c);
size_t rag_chat_turns(const rag_chat *c);

#endif
