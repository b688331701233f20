/*
 * rag_chat.c — one conversation over the store: retrieval, context, then an
 * extractive or a generated answer, with the history and the KV cache kept
 * between turns (see rag.h).
 *
 * Prefix reuse: the chat keeps the token ids whose KV the session holds
 * (`cached`). A new turn renders the whole conversation again, tokenizes it,
 * and evaluates only what follows the longest common prefix with `cached`
 * (session_truncate to that length). The system prompt and earlier turns
 * therefore cost nothing the second time; the first difference (usually
 * the end of the previous answer as re-tokenized text) is where work starts.
 *
 * Budget: the session's n_ctx holds the prompt and n_predict answer tokens.
 * The new turn's context gets what is left after the system prompt, the
 * history and the question, at most context_tokens; when less than a
 * quarter of that is left, the oldest turns are dropped first.
 */
#include "rag/rag.h"

#include <string.h>

#define DEFAULT_N_PREDICT 256
#define DEFAULT_CONTEXT 1500
#define PROMPT_MARGIN 8             /* tokens the markup may add beyond what was counted */
#define MAX_PROMPT_BYTES (8u << 20)

typedef struct hturn { char *user, *assistant; rag_context ctx; } hturn;

struct rag_chat {
    rag_chat_opts o;
    char *where;
    hturn *h;                   /* retained turns, oldest first */
    size_t n, cap;
    rag_context last;           /* the last turn's context when it is not kept in h */
    bool has_last;
    int next_marker;
    int32_t *cached;            /* ids whose KV the session holds */
    size_t n_cached, cap_cached;
};

static void hturn_free(hturn *t)
{
    cairn_free(t->user);
    cairn_free(t->assistant);
    rag_context_free(&t->ctx);
}

cairn_status rag_chat_new(const rag_chat_opts *o, rag_chat **out)
{
    *out = NULL;
    if (!o || !o->s || !o->e)
        return cairn_fail(CAIRN_ERR_INVALID, "rag_chat: a store and a search engine are needed");
    if (o->model && (!o->tok || !o->session || !o->sampler))
        return cairn_fail(CAIRN_ERR_INVALID, "rag_chat: a model needs its tokenizer, a session and a sampler");
    rag_chat *c = cairn_calloc(1, sizeof *c);
    if (!c)
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
    c->o = *o;
    c->o.where = NULL;
    if (o->where && *o->where) {
        cairn_status st = rag_chat_set_where(c, o->where);
        if (st != CAIRN_OK) {
            cairn_free(c);
            return st;
        }
    }
    if (!c->o.n_predict)
        c->o.n_predict = DEFAULT_N_PREDICT;
    if (!c->o.context_tokens)
        c->o.context_tokens = DEFAULT_CONTEXT;
    *out = c;
    return CAIRN_OK;
}

void rag_chat_reset(rag_chat *c)
{
    for (size_t i = 0; i < c->n; i++)
        hturn_free(&c->h[i]);
    c->n = 0;
    if (c->has_last)
        rag_context_free(&c->last);
    c->has_last = false;
    c->next_marker = 0;
    c->n_cached = 0;
    if (c->o.session)
        session_truncate(c->o.session, 0);
}

void rag_chat_free(rag_chat *c)
{
    if (!c)
        return;
    rag_chat_reset(c);
    cairn_free(c->h);
    cairn_free(c->cached);
    cairn_free(c->where);
    cairn_free(c);
}

size_t rag_chat_turns(const rag_chat *c) { return c->n; }
const char *rag_chat_where(const rag_chat *c) { return c->where; }

const rag_context *rag_chat_context(const rag_chat *c)
{
    if (c->has_last)
        return &c->last;
    return c->n ? &c->h[c->n - 1].ctx : NULL;
}

cairn_status rag_chat_set_where(rag_chat *c, const char *where)
{
    char *w = NULL;
    if (where && *where) {
        filter_node *f = NULL;
        CAIRN_TRY(filter_compile(c->o.s, where, cairn_now_ns() / 1000000000LL, &f));
        filter_free(f);
        if (!(w = cairn_strdup(where)))
            return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
    }
    cairn_free(c->where);
    c->where = w;
    return CAIRN_OK;
}

void rag_answer_free(rag_answer *a)
{
    cairn_free(a->text);
    cairn_free(a->cited);
    memset(a, 0, sizeof *a);
}

/* ---- tokens ---- */

static cairn_status tokenize(const cairn_tokenizer *tok, const char *text, size_t len, int32_t **ids, size_t *n)
{
    size_t cap = len + 8, need = 0;
    *ids = cairn_calloc(cap, sizeof **ids);
    if (!*ids)
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
    cairn_status st = tokenizer_encode(tok, text, len, true, true, *ids, cap, &need);
    if (st == CAIRN_OK && need > cap)
        st = cairn_fail(CAIRN_ERR_INVALID, "prompt: %zu tokens for %zu bytes", need, len);
    if (st != CAIRN_OK) {
        cairn_free(*ids);
        *ids = NULL;
        return st;
    }
    *n = need;
    return CAIRN_OK;
}

/* The prompt of the retained history plus an open turn `user`. */
static cairn_status render(rag_chat *c, const char *user, cairn_buf *out)
{
    rag_turn turns[65];
    size_t nt = 0, first = c->n > 64 ? c->n - 64 : 0;
    for (size_t i = first; c->o.keep_history && i < c->n; i++)
        turns[nt++] = (rag_turn){c->h[i].user, c->h[i].assistant};
    turns[nt++] = (rag_turn){user, NULL};
    cairn_buf_reset(out);
    return rag_prompt_render(&c->o.style, c->o.system, turns, nt, out);
}

static void drop_oldest(rag_chat *c)
{
    hturn_free(&c->h[0]);
    memmove(c->h, c->h + 1, (c->n - 1) * sizeof *c->h);
    c->n--;
}

/* How many context tokens the new turn may use (history trimmed to make room). */
static cairn_status context_budget(rag_chat *c, const char *question, size_t *budget)
{
    *budget = c->o.context_tokens;
    if (!c->o.model)
        return CAIRN_OK;
    int n_ctx = session_n_ctx(c->o.session);
    cairn_buf b, u;
    cairn_buf_init(&b, MAX_PROMPT_BYTES);
    cairn_buf_init(&u, MAX_PROMPT_BYTES);
    cairn_status st = CAIRN_OK;
    for (;;) {
        cairn_buf_reset(&u);
        if ((st = rag_user_message(NULL, question, &u)) != CAIRN_OK || (st = render(c, u.data, &b)) != CAIRN_OK)
            break;
        long base = (long)rag_count_tokens(c->o.tok, b.data, b.len) + 1 /* BOS */ + PROMPT_MARGIN;
        long left = (long)n_ctx - c->o.n_predict - base;
        if (left >= (long)c->o.context_tokens || (left >= (long)c->o.context_tokens / 4 && left > 0) ||
            (c->n == 0 && left > 0)) {
            *budget = CAIRN_MIN((size_t)left, c->o.context_tokens);
            break;
        }
        if (c->n == 0 || !c->o.keep_history) {
            st = cairn_fail(CAIRN_ERR_TOO_LARGE,
                            "the question and the system prompt (%ld tokens) leave no room for sources and a "
                            "%d-token answer in a %d-token context", base, c->o.n_predict, n_ctx);
            break;
        }
        drop_oldest(c);
    }
    cairn_buf_free(&b);
    cairn_buf_free(&u);
    return st;
}

/* ---- citations over the retained contexts ---- */

static bool chat_valid(void *ctx, int marker)
{
    rag_chat *c = ctx;
    if (c->has_last && rag_context_find(&c->last, marker))
        return true;
    for (size_t i = 0; i < c->n; i++)
        if (rag_context_find(&c->h[i].ctx, marker))
            return true;
    return false;
}

typedef struct stream_state {
    char pend[4];               /* an incomplete UTF-8 sequence at the end of the last piece */
    size_t n_pend;
    rag_cite cite;
    rag_text_fn on_text;
    void *ud;
    cairn_buf text;             /* checked text */
    int64_t t0, first_ns;
    bool user_stopped;
} stream_state;

static bool to_user(void *ud, const char *s, size_t n)
{
    stream_state *ss = ud;
    if (cairn_buf_append(&ss->text, s, n) != CAIRN_OK)
        return false;
    if (ss->on_text && !ss->on_text(ss->ud, s, n)) {
        ss->user_stopped = true;
        return false;
    }
    return true;
}

/* Length of the valid UTF-8 sequence at s[0..n): > 0 valid, 0 incomplete
 * (could still be completed), -1 invalid. */
static int utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    int len = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : -1;
    if (len <= 1)
        return len;
    for (int i = 1; i < len; i++) {
        if ((size_t)i >= n)
            return 0;
        if ((s[i] & 0xC0) != 0x80)
            return -1;
    }
    /* overlong three/four-byte forms, surrogates, beyond U+10FFFF */
    if ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] > 0x9F) || (c == 0xF0 && s[1] < 0x90) ||
        (c == 0xF4 && s[1] > 0x8F))
        return -1;
    return len;
}

/* Byte tokens may split a character across pieces, and a random or confused
 * model may emit bytes that are no UTF-8 at all: complete sequences pass,
 * an incomplete tail waits for the next piece, invalid bytes become U+FFFD,
 * so the terminal and JSON only ever get valid text. */
static bool feed_utf8(stream_state *ss, const char *s, size_t n, bool final)
{
    char buf[512];
    size_t o = 0;
    bool go = true;
    for (size_t i = 0; i < n + ss->n_pend && go;) {
        unsigned char tmp[4];
        size_t avail = 0;
        for (; avail < 4 && i + avail < ss->n_pend + n; avail++) {
            size_t k = i + avail;
            tmp[avail] = (unsigned char)(k < ss->n_pend ? ss->pend[k] : s[k - ss->n_pend]);
        }
        int len = utf8_seq(tmp, avail);
        if (len == 0 && !final) {           /* keep the tail for the next piece */
            memcpy(ss->pend, tmp, avail);
            ss->n_pend = avail;
            n = 0;
            break;
        }
        if (len <= 0) {
            memcpy(buf + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i += 1;
        } else {
            memcpy(buf + o, tmp, (size_t)len);
            o += (size_t)len;
            i += (size_t)len;
        }
        if (o > sizeof buf - 8) {
            go = rag_cite_feed(&ss->cite, buf, o);
            o = 0;
        }
        if (i >= ss->n_pend + n) {
            ss->n_pend = 0;
            n = 0;
            break;
        }
    }
    if (final)
        ss->n_pend = 0;
    return go && (o == 0 || rag_cite_feed(&ss->cite, buf, o));
}

static bool from_generator(void *ud, const char *s, size_t n)
{
    stream_state *ss = ud;
    if (!ss->first_ns && n)
        ss->first_ns = cairn_mono_ns();
    return feed_utf8(ss, s, n, false);
}

static cairn_status finish_answer(stream_state *ss, rag_answer *out)
{
    if (ss->n_pend)
        feed_utf8(ss, "", 0, true);
    rag_cite_finish(&ss->cite);
    if (ss->cite.err != CAIRN_OK)
        return ss->cite.err;
    if (ss->cite.stopped && !ss->user_stopped)
        return cairn_fail(CAIRN_ERR_NOMEM, "answer: out of memory");
    out->len = ss->text.len;
    out->text = ss->text.len ? cairn_buf_take(&ss->text) : cairn_strdup("");
    if (!out->text)
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
    out->dropped_citations = ss->cite.dropped;
    out->n_cited = ss->cite.n_cited;
    out->cited = ss->cite.cited;
    ss->cite.cited = NULL;
    return CAIRN_OK;
}

static cairn_status keep_cached(rag_chat *c, const int32_t *a, size_t na, const int32_t *b, size_t nb)
{
    size_t n = na + nb;
    if (n > c->cap_cached) {
        int32_t *p = cairn_reallocarray(c->cached, n, sizeof *p);
        if (!p)
            return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
        c->cached = p;
        c->cap_cached = n;
    }
    if (a != c->cached)
        memmove(c->cached, a, na * sizeof *a);
    memcpy(c->cached + na, b, nb * sizeof *b);
    c->n_cached = n;
    return CAIRN_OK;
}

static cairn_status generate_answer(rag_chat *c, const char *user_msg, stream_state *ss, rag_answer *out)
{
    cairn_buf prompt;
    cairn_buf_init(&prompt, MAX_PROMPT_BYTES);
    int32_t *ids = NULL;
    size_t n_ids = 0;
    gen_result res = {0};
    cairn_status st = render(c, user_msg, &prompt);
    if (st == CAIRN_OK)
        st = tokenize(c->o.tok, prompt.data, prompt.len, &ids, &n_ids);
    if (st != CAIRN_OK)
        goto done;
    if (n_ids + (size_t)c->o.n_predict > (size_t)session_n_ctx(c->o.session)) {
        st = cairn_fail(CAIRN_ERR_TOO_LARGE, "the prompt (%zu tokens) and a %d-token answer do not fit the %d-token "
                        "context", n_ids, c->o.n_predict, session_n_ctx(c->o.session));
        goto done;
    }
    /* the longest common prefix with what the KV cache holds; at least one token is evaluated */
    size_t cp = 0, have = c->o.no_prefix_cache ? 0 : CAIRN_MIN(c->n_cached, (size_t)session_n_past(c->o.session));
    while (cp < have && cp < n_ids && c->cached[cp] == ids[cp])
        cp++;
    if (cp == n_ids && cp > 0)
        cp--;
    session_truncate(c->o.session, (int)cp);
    c->n_cached = cp;
    sampler_reset(c->o.sampler);
    gen_params gp = {.n_predict = c->o.n_predict, .on_text = from_generator, .ud = ss};
    st = generate(c->o.session, c->o.tok, c->o.sampler, ids + cp, (int)(n_ids - cp), &gp, &res);
    if (st != CAIRN_OK) {
        session_truncate(c->o.session, 0);
        c->n_cached = 0;
        goto done;
    }
    /* the KV holds the prompt and every generated token but the last (never fed back) */
    size_t kv = (size_t)session_n_past(c->o.session), gen_in_kv = res.n_ids > 0 ? (size_t)res.n_ids - 1 : 0;
    if (kv == n_ids + gen_in_kv)
        st = keep_cached(c, ids, n_ids, res.ids, gen_in_kv);
    else
        c->n_cached = 0, session_truncate(c->o.session, 0);
    out->t.prompt_tokens = (int)n_ids;
    out->t.reused_tokens = (int)cp;
    out->t.gen_tokens = res.n_ids;
    out->t.prompt_ms = (double)res.prompt_ns / 1e6;
    out->t.tokens_per_s = gen_tps(&res);
    out->stop = res.stop;
    if (st == CAIRN_OK)
        st = finish_answer(ss, out);
done:
    gen_result_free(&res);
    cairn_free(ids);
    cairn_buf_free(&prompt);
    return st;
}

cairn_status rag_chat_ask(rag_chat *c, const char *question, rag_text_fn on_text, void *ud, rag_answer *out)
{
    memset(out, 0, sizeof *out);
    int64_t t0 = cairn_mono_ns();
    search_results res = {0};
    rag_context ctx = {0};
    char *ex = NULL;
    rag_sentence *sent = NULL;
    size_t n_sent = 0, budget = 0;
    cairn_buf user;
    cairn_buf_init(&user, MAX_PROMPT_BYTES);
    stream_state ss = {.on_text = on_text, .ud = ud, .t0 = t0};
    cairn_buf_init(&ss.text, 0);
    bool generated = c->o.model != NULL;

    rag_query q = {.text = question, .where = c->where, .k = c->o.k, .mode = c->o.mode};
    cairn_status st = rag_retrieve(c->o.s, c->o.e, &q, &res);
    out->t.retrieval_ms = res.took_ms;
    int64_t t1 = cairn_mono_ns();
    if (st == CAIRN_OK)
        st = context_budget(c, question, &budget);
    rag_context_opts co = {.budget_tokens = budget, .tok = c->o.tok,
                           .marker_base = generated && c->o.keep_history ? c->next_marker : 0};
    if (st == CAIRN_OK)
        st = rag_context_build(c->o.s, &res, &co, &ctx);
    if (st == CAIRN_OK)
        st = rag_user_message(&ctx, question, &user);
    out->t.context_ms = (double)(cairn_mono_ns() - t1) / 1e6;
    if (st != CAIRN_OK)
        goto done;
    out->stale = ctx.n_stale > 0;
    /* the new context is what markers are checked against (with the retained turns') */
    if (c->has_last)
        rag_context_free(&c->last);
    c->last = ctx;
    c->has_last = true;
    memset(&ctx, 0, sizeof ctx);
    rag_cite_init(&ss.cite, chat_valid, c, to_user, &ss);
    if (!generated) {
        out->kind = RAG_EXTRACTIVE;
        rag_extract_opts eo = {.max_sentences = c->o.max_sentences, .rank_decay = -1, .proximity = -1};
        if ((st = rag_extract(c->o.e, &c->last, question, &eo, &sent, &n_sent, &ex)) != CAIRN_OK)
            goto done;
        ss.first_ns = cairn_mono_ns();
        rag_cite_feed(&ss.cite, ex, strlen(ex));
        st = finish_answer(&ss, out);
    } else {
        out->kind = RAG_GENERATED;
        st = generate_answer(c, user.data, &ss, out);
    }
    if (st != CAIRN_OK)
        goto done;
    out->t.ttft_ms = ss.first_ns ? (double)(ss.first_ns - t0) / 1e6 : 0;
    if (generated && c->o.keep_history) {
        if (c->n == c->cap) {
            size_t cap = c->cap ? 2 * c->cap : 8;
            hturn *h = cairn_reallocarray(c->h, cap, sizeof *h);
            if (!h) {
                st = cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
                goto done;
            }
            c->h = h;
            c->cap = cap;
        }
        hturn *t = &c->h[c->n];
        t->user = cairn_buf_take(&user);
        t->assistant = cairn_strdup(out->text);
        if (!t->user || !t->assistant) {
            cairn_free(t->user);
            cairn_free(t->assistant);
            st = cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
            goto done;
        }
        t->ctx = c->last;
        c->has_last = false;
        memset(&c->last, 0, sizeof c->last);
        c->next_marker = t->ctx.n ? t->ctx.p[t->ctx.n - 1].marker : c->next_marker;
        c->n++;
    }
done:
    out->t.total_ms = (double)(cairn_mono_ns() - t0) / 1e6;
    rag_cite_free(&ss.cite);
    cairn_buf_free(&ss.text);
    cairn_buf_free(&user);
    cairn_free(ex);
    cairn_free(sent);
    rag_context_free(&ctx);
    search_results_free(&res);
    if (st != CAIRN_OK)
        rag_answer_free(out);
    return st;
}
