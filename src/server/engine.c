/* engine.c — slots, queue, continuous batching, prompt cache; see engine.h. */
#include "server/engine.h"
#include "infer/batch.h"
#include "server/util.h"

#include <errno.h>
#include <stdio.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define ENGINE_MAX_TEXT (64u << 20)   /* one request's generated text */

struct engine_req {
    atomic_int refs;
    int efd;
    engine *e;
    engine_req *next;                 /* queue link */
    /* immutable after submit */
    int32_t *prompt;
    int n_prompt, max_tokens;
    sampler_params sp;
    char *stop[ENGINE_MAX_STOP];
    int n_stop;
    size_t max_stop;
    int64_t t_submit;
    atomic_bool cancel;
    /* under e->mu */
    bool queued, done;
    cairn_buf out;                    /* final text not yet taken */
    engine_poll st;
};

typedef struct slot {
    cairn_session *s;
    int32_t *toks;                    /* (n_ctx,) what the KV cache holds */
    int n_toks;
    int64_t last_used;
    engine_req *req;                  /* NULL: free */
    cairn_sampler *smp;
    int n_fed;                        /* prompt tokens in the cache */
    int32_t next;                     /* sampled, to be fed in the next step */
    int n_gen;
    cairn_buf text;                   /* generated text */
    size_t emitted, scan_from;
    uint64_t order;                   /* admission order: prefill budget goes FIFO */
} slot;

struct engine {
    engine_opts o;
    cairn_model *m;
    cairn_tokenizer *tok;
    chat_style style;
    char id[256];
    int n_ctx, n_par;
    slot *slots;
    pthread_t th;
    bool th_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    engine_req *q_head, *q_tail;
    int n_queued, n_busy;
    uint64_t admitted;
};

static int online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (int)CAIRN_MIN(n, 8);
}

/* ---- requests ---- */

static void req_notify(engine_req *r)
{
    uint64_t one = 1;
    ssize_t w = write(r->efd, &one, sizeof one);
    (void)w;   /* EAGAIN: already signalled */
}

void engine_req_release(engine_req *r)
{
    if (!r || atomic_fetch_sub(&r->refs, 1) != 1)
        return;
    if (r->efd >= 0)
        close(r->efd);
    cairn_free(r->prompt);
    for (int i = 0; i < r->n_stop; i++)
        cairn_free(r->stop[i]);
    cairn_buf_free(&r->out);
    cairn_free(r);
}

int engine_req_fd(const engine_req *r) { return r->efd; }

cairn_status engine_req_take(engine_req *r, cairn_buf *out, engine_poll *st)
{
    uint64_t v;
    ssize_t rd = read(r->efd, &v, sizeof v);
    (void)rd;
    pthread_mutex_lock(&r->e->mu);
    cairn_status s = cairn_buf_append(out, r->out.data ? r->out.data : "", r->out.len);
    cairn_buf_reset(&r->out);
    *st = r->st;
    st->done = r->done;
    pthread_mutex_unlock(&r->e->mu);
    return s;
}

/* Under e->mu: the request ends; the consumer is woken. */
static void req_finish(engine_req *r, engine_finish f, const char *err)
{
    if (r->done)
        return;
    r->done = true;
    r->st.finish = f;
    r->st.total_ns = cairn_mono_ns() - r->t_submit;
    if (err)
        snprintf(r->st.error, sizeof r->st.error, "%s", err);
    req_notify(r);
}

void engine_req_cancel(engine_req *r)
{
    engine *e = r->e;
    atomic_store(&r->cancel, true);
    pthread_mutex_lock(&e->mu);
    if (r->queued) {   /* never started: leaves the queue now */
        engine_req **pp = &e->q_head, *prev = NULL;
        while (*pp && *pp != r) {
            prev = *pp;
            pp = &(*pp)->next;
        }
        if (*pp) {
            *pp = r->next;
            if (e->q_tail == r)
                e->q_tail = prev;
            e->n_queued--;
        }
        r->queued = false;
        req_finish(r, ENGINE_CANCELLED, NULL);
        engine_req_release(r);           /* the queue's reference */
    }
    pthread_cond_signal(&e->cv);         /* a running one: freed before the next step */
    pthread_mutex_unlock(&e->mu);
}

cairn_status engine_submit(engine *e, const engine_params *p, engine_req **out)
{
    *out = NULL;
    if (p->n_prompt <= 0 || p->n_stop < 0 || p->n_stop > ENGINE_MAX_STOP || p->max_tokens <= 0)
        return cairn_fail(CAIRN_ERR_INVALID, "engine: a request needs a prompt and max_tokens >= 1");
    if ((int64_t)p->n_prompt + p->max_tokens > e->n_ctx)
        return cairn_fail(CAIRN_ERR_TOO_LARGE,
                          "this model's context is %d tokens, but %d were requested (%d in the prompt, %d to generate)",
                          e->n_ctx, p->n_prompt + p->max_tokens, p->n_prompt, p->max_tokens);
    for (int i = 0; i < p->n_prompt; i++)
        if (p->prompt[i] < 0 || p->prompt[i] >= e->m->hp.n_vocab)
            return cairn_fail(CAIRN_ERR_INVALID, "engine: token id %d outside the vocabulary", p->prompt[i]);
    for (int i = 0; i < p->n_stop; i++) {
        size_t l = strlen(p->stop[i]);
        if (l == 0 || l > ENGINE_MAX_STOP_BYTES)
            return cairn_fail(CAIRN_ERR_INVALID, "stop strings must be 1..%d bytes", ENGINE_MAX_STOP_BYTES);
    }
    engine_req *r = cairn_calloc(1, sizeof *r);
    if (!r)
        return cairn_fail(CAIRN_ERR_NOMEM, "engine: out of memory");
    atomic_init(&r->refs, 1);
    cairn_buf_init(&r->out, ENGINE_MAX_TEXT);
    r->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    r->prompt = cairn_calloc((size_t)p->n_prompt, sizeof *r->prompt);
    bool ok = r->efd >= 0 && r->prompt;
    for (int i = 0; ok && i < p->n_stop; i++) {
        r->stop[i] = cairn_strdup(p->stop[i]);
        ok = r->stop[i] != NULL;
        r->n_stop = i + 1;
        r->max_stop = CAIRN_MAX(r->max_stop, strlen(p->stop[i]));
    }
    if (!ok) {
        engine_req_release(r);
        return cairn_fail(CAIRN_ERR_NOMEM, "engine: out of memory");
    }
    memcpy(r->prompt, p->prompt, (size_t)p->n_prompt * sizeof *r->prompt);
    r->n_prompt = p->n_prompt;
    r->max_tokens = p->max_tokens;
    r->sp = p->sp;
    r->e = e;
    r->t_submit = cairn_mono_ns();
    r->st.n_prompt = p->n_prompt;
    atomic_init(&r->cancel, false);

    pthread_mutex_lock(&e->mu);
    /* requests a free slot will take at the next step do not count as waiting */
    if (e->stop || e->n_queued >= e->o.max_queue + (e->n_par - e->n_busy)) {
        bool stopping = e->stop;
        pthread_mutex_unlock(&e->mu);
        engine_req_release(r);
        return stopping ? cairn_fail(CAIRN_ERR_BUSY, "the server is shutting down")
                        : cairn_fail(CAIRN_ERR_BUSY, "%d requests are already waiting for a slot", e->o.max_queue);
    }
    atomic_store(&r->refs, 2);   /* the caller's and the engine's */
    r->queued = true;
    if (e->q_tail)
        e->q_tail->next = r;
    else
        e->q_head = r;
    e->q_tail = r;
    e->n_queued++;
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
    *out = r;
    return CAIRN_OK;
}

/* ---- the engine thread ---- */

static int common_prefix(const int32_t *a, int na, const int32_t *b, int nb)
{
    int n = CAIRN_MIN(na, nb), i = 0;
    while (i < n && a[i] == b[i])
        i++;
    return i;
}

/* Under e->mu: move queued requests into free slots, FIFO. */
static void admit(engine *e)
{
    while (e->q_head && e->n_busy < e->n_par) {
        engine_req *r = e->q_head;
        int best = -1, best_len = -1;
        for (int i = 0; i < e->n_par; i++) {
            slot *sl = &e->slots[i];
            if (sl->req)
                continue;
            int l = common_prefix(sl->toks, sl->n_toks, r->prompt, r->n_prompt);
            if (l > best_len || (l == best_len && sl->last_used < e->slots[best].last_used)) {
                best = i;
                best_len = l;
            }
        }
        slot *sl = &e->slots[best];
        sampler_free(sl->smp);
        sl->smp = NULL;
        if (sampler_new(&r->sp, e->m->hp.n_vocab, &sl->smp) != CAIRN_OK) {
            e->q_head = r->next;
            if (!e->q_head)
                e->q_tail = NULL;
            e->n_queued--;
            r->queued = false;
            req_finish(r, ENGINE_FAILED, "out of memory for the sampler");
            engine_req_release(r);
            continue;
        }
        e->q_head = r->next;
        if (!e->q_head)
            e->q_tail = NULL;
        e->n_queued--;
        r->queued = false;
        int reuse = CAIRN_MIN(best_len, r->n_prompt - 1);   /* the last prompt token is always evaluated: its logits */
        session_truncate(sl->s, reuse);
        sl->n_toks = reuse;
        sl->n_fed = reuse;
        sl->req = r;
        sl->n_gen = 0;
        sl->emitted = sl->scan_from = 0;
        cairn_buf_reset(&sl->text);
        sl->order = e->admitted++;
        for (int i = 0; i < r->n_prompt; i++)
            sampler_accept(sl->smp, r->prompt[i]);
        r->st.n_cached = reuse;
        r->st.queued_ns = cairn_mono_ns() - r->t_submit;
        e->n_busy++;
    }
}

/* Under e->mu: the slot's request ends; the slot keeps its cache. */
static void slot_end(engine *e, slot *sl, engine_finish f, const char *err)
{
    engine_req *r = sl->req;
    if (!r)
        return;
    if (f != ENGINE_CANCELLED && f != ENGINE_FAILED && sl->text.len > sl->emitted)
        srv_utf8_append(&r->out, sl->text.data + sl->emitted, sl->text.len - sl->emitted);
    sl->emitted = sl->text.len;
    req_finish(r, f, err);
    engine_req_release(r);
    sl->req = NULL;
    sl->last_used = cairn_mono_ns();
    e->n_busy--;
}

/* Longest suffix of text that is a proper prefix of a stop string. */
static size_t held_back(const engine_req *r, const char *text, size_t n)
{
    size_t hold = 0;
    for (int i = 0; i < r->n_stop; i++) {
        size_t sl = strlen(r->stop[i]);
        for (size_t k = CAIRN_MIN(sl - 1, n); k > hold; k--)
            if (!memcmp(text + n - k, r->stop[i], k)) {
                hold = k;
                break;
            }
    }
    return hold;
}

static long find_stop(const engine_req *r, const char *text, size_t n, size_t from)
{
    long best = -1;
    for (int i = 0; i < r->n_stop; i++) {
        size_t sl = strlen(r->stop[i]);
        for (size_t at = from; at + sl <= n; at++)
            if (!memcmp(text + at, r->stop[i], sl)) {
                if (best < 0 || (long)at < best)
                    best = (long)at;
                break;
            }
    }
    return best;
}

/* A token was sampled for the slot: stream it, or end the request. Under e->mu. */
static void slot_token(engine *e, slot *sl, int32_t id)
{
    engine_req *r = sl->req;
    if (!r->st.first_token_ns)
        r->st.first_token_ns = cairn_mono_ns() - r->t_submit;
    if (tokenizer_is_eog(e->tok, id)) {
        slot_end(e, sl, ENGINE_STOP, NULL);
        return;
    }
    sl->n_gen++;
    r->st.n_completion = sl->n_gen;
    char piece[256];
    size_t pl = tokenizer_piece(e->tok, id, piece, sizeof piece);
    if (cairn_buf_append(&sl->text, piece, CAIRN_MIN(pl, sizeof piece)) != CAIRN_OK) {
        slot_end(e, sl, ENGINE_FAILED, "generated text over its cap");
        return;
    }
    if (r->n_stop) {
        long at = find_stop(r, sl->text.data, sl->text.len, sl->scan_from);
        if (at >= 0) {
            sl->text.len = (size_t)at;
            slot_end(e, sl, ENGINE_STOP, NULL);
            return;
        }
        sl->scan_from = sl->text.len > r->max_stop ? sl->text.len - r->max_stop + 1 : 0;
    }
    if (sl->n_gen >= r->max_tokens || session_n_past(sl->s) >= e->n_ctx) {
        slot_end(e, sl, ENGINE_LENGTH, NULL);
        return;
    }
    size_t ready = sl->text.len - held_back(r, sl->text.data, sl->text.len);
    if (ready > sl->emitted) {
        ready = sl->emitted + srv_utf8_ready(sl->text.data + sl->emitted, ready - sl->emitted);
        if (ready > sl->emitted) {
            srv_utf8_append(&r->out, sl->text.data + sl->emitted, ready - sl->emitted);
            sl->emitted = ready;
            req_notify(r);
        }
    }
    sl->next = id;
}

/* One forward pass over every running request. */
static void step(engine *e)
{
    batch_seq bs[ENGINE_MAX_PARALLEL];
    slot *who[ENGINE_MAX_PARALLEL];
    int n = 0, budget = session_n_batch(e->slots[0].s);
    pthread_mutex_lock(&e->mu);
    for (int i = 0; i < e->n_par; i++) {
        slot *sl = &e->slots[i];
        if (sl->req && atomic_load(&sl->req->cancel))
            slot_end(e, sl, ENGINE_CANCELLED, NULL);
    }
    for (int i = 0; i < e->n_par; i++) {     /* decodes first: one row each */
        slot *sl = &e->slots[i];
        if (sl->req && sl->n_fed == sl->req->n_prompt) {
            bs[n] = (batch_seq){sl->s, &sl->next, 1};
            who[n++] = sl;
            budget--;
        }
    }
    for (;;) {                               /* then prompts, oldest first, in the budget left */
        slot *pick = NULL;
        for (int i = 0; i < e->n_par; i++) {
            slot *sl = &e->slots[i];
            bool listed = false;
            for (int j = 0; j < n; j++)
                listed |= who[j] == sl;
            if (sl->req && !listed && sl->n_fed < sl->req->n_prompt && (!pick || sl->order < pick->order))
                pick = sl;
        }
        if (!pick || budget <= 0)
            break;
        int k = CAIRN_MIN(pick->req->n_prompt - pick->n_fed, budget);
        bs[n] = (batch_seq){pick->s, pick->req->prompt + pick->n_fed, k};
        who[n++] = pick;
        budget -= k;
    }
    pthread_mutex_unlock(&e->mu);
    if (!n)
        return;
    cairn_status st = batch_eval(e->slots[0].s, bs, n);
    pthread_mutex_lock(&e->mu);
    for (int j = 0; j < n; j++) {
        slot *sl = who[j];
        if (st != CAIRN_OK) {
            sl->n_toks = 0;                  /* the cache is not trusted after a failure */
            session_truncate(sl->s, 0);
            slot_end(e, sl, ENGINE_FAILED, cairn_last_error());
            continue;
        }
        memcpy(sl->toks + sl->n_toks, bs[j].ids, (size_t)bs[j].n * sizeof(int32_t));
        sl->n_toks += bs[j].n;
        if (sl->n_fed < sl->req->n_prompt) {
            sl->n_fed += bs[j].n;
            if (sl->n_fed < sl->req->n_prompt)
                continue;                    /* more prompt next step */
        }
        int32_t id = sampler_sample(sl->smp, session_logits(sl->s));
        sampler_accept(sl->smp, id);
        slot_token(e, sl, id);
    }
    pthread_mutex_unlock(&e->mu);
}

static void *engine_main(void *arg)
{
    engine *e = arg;
    for (;;) {
        pthread_mutex_lock(&e->mu);
        while (!e->stop && !e->n_busy && !e->q_head)
            pthread_cond_wait(&e->cv, &e->mu);
        if (e->stop) {
            pthread_mutex_unlock(&e->mu);
            break;
        }
        admit(e);
        pthread_mutex_unlock(&e->mu);
        step(e);
    }
    return NULL;
}

/* ---- construction ---- */

static void model_id_from_path(const char *path, char *out, size_t cap)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    size_t l = strlen(b);
    if (l > 5 && !strcmp(b + l - 5, ".gguf"))
        l -= 5;
    snprintf(out, cap, "%.*s", (int)CAIRN_MIN(l, cap - 1), b);
}

cairn_status engine_new(const engine_opts *o, engine **out)
{
    *out = NULL;
    engine *e = cairn_calloc(1, sizeof *e);
    if (!e)
        return cairn_fail(CAIRN_ERR_NOMEM, "engine: out of memory");
    e->o = *o;
    if (e->o.n_parallel <= 0) e->o.n_parallel = 4;
    if (e->o.n_threads <= 0) e->o.n_threads = online_cpus();
    if (e->o.n_batch <= 0) e->o.n_batch = 256;
    if (e->o.max_queue <= 0) e->o.max_queue = 64;
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->cv, NULL);
    cairn_status st;
    if (e->o.n_parallel > ENGINE_MAX_PARALLEL) {
        st = cairn_fail(CAIRN_ERR_INVALID, "--parallel: at most %d slots", ENGINE_MAX_PARALLEL);
        goto fail;
    }
    if ((st = model_load(o->model_path, &e->m)) != CAIRN_OK || (st = tokenizer_load(e->m->gguf, &e->tok)) != CAIRN_OK)
        goto fail;
    model_id_from_path(o->model_path, e->id, sizeof e->id);
    if (o->chat_template) {
        if ((st = chat_style_from_name(o->chat_template, &e->style)) != CAIRN_OK)
            goto fail;
    } else {
        gguf_str t = {0};
        char *tmpl = NULL;
        if (gguf_get_str(e->m->gguf, "tokenizer.chat_template", &t) == CAIRN_OK)
            tmpl = cairn_strndup(t.ptr, (size_t)t.len);
        if (chat_style_detect(tmpl, &e->style) != CAIRN_OK) {
            CAIRN_WARN("serve: %s: no known chat template; chat requests use chatml (--chat-template to choose)", e->id);
            e->style = CHAT_CHATML;
        }
        cairn_free(tmpl);
        cairn_clear_error();
    }
    e->n_ctx = o->n_ctx > 0 ? o->n_ctx : CAIRN_MIN(e->m->hp.n_ctx_train, 4096);
    e->n_par = e->o.n_parallel;
    e->slots = cairn_calloc((size_t)e->n_par, sizeof *e->slots);
    if (!e->slots) {
        st = cairn_fail(CAIRN_ERR_NOMEM, "engine: out of memory");
        goto fail;
    }
    for (int i = 0; i < e->n_par; i++) {
        slot *sl = &e->slots[i];
        session_opts so = session_opts_default();
        so.n_ctx = e->n_ctx;
        /* slot 0 hosts the batched pass (buffers, threads); the others only hold a cache */
        so.n_batch = i == 0 ? CAIRN_MAX(e->o.n_batch, e->n_par) : 1;
        so.n_threads = i == 0 ? e->o.n_threads : 1;
        cairn_buf_init(&sl->text, ENGINE_MAX_TEXT);
        if ((st = session_new(e->m, &so, &sl->s)) != CAIRN_OK)
            goto fail;
        sl->toks = cairn_calloc((size_t)e->n_ctx, sizeof *sl->toks);
        if (!sl->toks) {
            st = cairn_fail(CAIRN_ERR_NOMEM, "engine: out of memory");
            goto fail;
        }
    }
    if (pthread_create(&e->th, NULL, engine_main, e) != 0) {
        st = cairn_fail(CAIRN_ERR_INTERNAL, "engine: cannot start its thread");
        goto fail;
    }
    e->th_started = true;
    *out = e;
    return CAIRN_OK;
fail:
    engine_free(e);
    return st;
}

void engine_free(engine *e)
{
    if (!e)
        return;
    pthread_mutex_lock(&e->mu);
    e->stop = true;
    pthread_cond_broadcast(&e->cv);
    pthread_mutex_unlock(&e->mu);
    if (e->th_started)
        pthread_join(e->th, NULL);
    pthread_mutex_lock(&e->mu);
    while (e->q_head) {
        engine_req *r = e->q_head;
        e->q_head = r->next;
        r->queued = false;
        req_finish(r, ENGINE_FAILED, "the server is shutting down");
        engine_req_release(r);
    }
    for (int i = 0; e->slots && i < e->n_par; i++)
        slot_end(e, &e->slots[i], ENGINE_FAILED, "the server is shutting down");
    pthread_mutex_unlock(&e->mu);
    for (int i = 0; e->slots && i < e->n_par; i++) {
        session_free(e->slots[i].s);
        sampler_free(e->slots[i].smp);
        cairn_free(e->slots[i].toks);
        cairn_buf_free(&e->slots[i].text);
    }
    cairn_free(e->slots);
    tokenizer_free(e->tok);
    model_free(e->m);
    pthread_cond_destroy(&e->cv);
    pthread_mutex_destroy(&e->mu);
    cairn_free(e);
}

const char *engine_model_id(const engine *e) { return e->id; }
int engine_n_ctx(const engine *e) { return e->n_ctx; }
int engine_n_parallel(const engine *e) { return e->n_par; }
const cairn_model *engine_model(const engine *e) { return e->m; }
const cairn_tokenizer *engine_tokenizer(const engine *e) { return e->tok; }

void engine_gauges(engine *e, int *queued, int *busy)
{
    pthread_mutex_lock(&e->mu);
    *queued = e->n_queued;
    *busy = e->n_busy;
    pthread_mutex_unlock(&e->mu);
}

static cairn_status tokenize(engine *e, const char *text, size_t len, bool special, int max_tokens, int32_t **ids,
                             int *n)
{
    *ids = NULL;
    *n = 0;
    size_t cap = CAIRN_MIN(len + 8, (size_t)max_tokens + 8), need = 0;
    int32_t *buf = cairn_calloc(cap, sizeof *buf);
    if (!buf)
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory tokenizing the prompt");
    cairn_status st = tokenizer_encode(e->tok, text, len, true, special, buf, cap, &need);
    if (st == CAIRN_OK && need > (size_t)max_tokens) {
        *n = need > (size_t)INT32_MAX ? INT32_MAX : (int)need;
        cairn_free(buf);
        return cairn_fail(CAIRN_ERR_TOO_LARGE, "the prompt is %zu tokens, more than the %d allowed", need, max_tokens);
    }
    if (st == CAIRN_OK && need > cap)   /* cannot happen: need <= max_tokens < cap */
        st = cairn_fail(CAIRN_ERR_INTERNAL, "tokenizer buffer");
    if (st != CAIRN_OK) {
        cairn_free(buf);
        return st;
    }
    *ids = buf;
    *n = (int)need;
    return CAIRN_OK;
}

cairn_status engine_tokenize_chat(engine *e, const chat_msg *msgs, int n_msgs, int max_tokens, int32_t **ids, int *n)
{
    cairn_buf b;
    cairn_buf_init(&b, 0);
    cairn_status st = chat_render(e->style, msgs, n_msgs, &b);
    if (st == CAIRN_OK)
        st = tokenize(e, b.data ? b.data : "", b.len, true, max_tokens, ids, n);
    cairn_buf_free(&b);
    return st;
}

cairn_status engine_tokenize_text(engine *e, const char *text, size_t len, int max_tokens, int32_t **ids, int *n)
{
    return tokenize(e, text, len, false, max_tokens, ids, n);
}
