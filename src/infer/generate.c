/* generate.c — prompt, then sample/stream/feed back; see generate.h. */
#include "infer/generate.h"

#include <string.h>

#define GEN_MAX_PREDICT (1 << 20)

/* Length of the longest suffix of text[0..n) that is a proper prefix of a
 * stop string: those bytes must be held back. */
static size_t held_back(const char *text, size_t n, const gen_params *p)
{
    size_t hold = 0;
    for (int i = 0; i < p->n_stop; i++) {
        size_t sl = strlen(p->stop[i]);
        for (size_t k = CAIRN_MIN(sl - (sl > 0), n); k > hold; k--)
            if (memcmp(text + n - k, p->stop[i], k) == 0) {
                hold = k;
                break;
            }
    }
    return hold;
}

/* First occurrence of any stop string at or after `from`; returns its offset or -1. */
static long find_stop(const char *text, size_t n, size_t from, const gen_params *p)
{
    long best = -1;
    for (int i = 0; i < p->n_stop; i++) {
        size_t sl = strlen(p->stop[i]);
        if (sl == 0 || sl > n)
            continue;
        for (size_t at = from; at + sl <= n; at++)
            if (memcmp(text + at, p->stop[i], sl) == 0) {
                if (best < 0 || (long)at < best)
                    best = (long)at;
                break;
            }
    }
    return best;
}

cairn_status generate(cairn_session *s, const cairn_tokenizer *tok, cairn_sampler *smp,
                      const int32_t *prompt, int n_prompt, const gen_params *p, gen_result *out)
{
    memset(out, 0, sizeof *out);
    if (n_prompt <= 0 || p->n_predict <= 0 || p->n_predict > GEN_MAX_PREDICT || p->n_stop < 0)
        return cairn_fail(CAIRN_ERR_INVALID, "generate: need a prompt and 0 < n_predict <= %d", GEN_MAX_PREDICT);
    out->n_prompt = n_prompt;
    out->ids = cairn_calloc((size_t)p->n_predict, sizeof *out->ids);
    if (!out->ids)
        return cairn_fail(CAIRN_ERR_NOMEM, "generate: out of memory");
    cairn_buf text;
    cairn_buf_init(&text, 0);
    char piece[256];
    size_t emitted = 0, scan_from = 0;
    size_t max_stop = 0;
    for (int i = 0; i < p->n_stop; i++)
        max_stop = CAIRN_MAX(max_stop, strlen(p->stop[i]));

    cairn_status st = CAIRN_OK;
    float *logits;
    for (int i = 0; i < n_prompt; i++)
        sampler_accept(smp, prompt[i]);
    int64_t t0 = cairn_mono_ns();
    st = session_eval(s, prompt, n_prompt, &logits);
    out->prompt_ns = cairn_mono_ns() - t0;
    t0 = cairn_mono_ns();
    out->stop = GEN_STOP_LENGTH;
    while (st == CAIRN_OK && out->n_ids < p->n_predict) {
        int32_t id = sampler_sample(smp, logits);
        sampler_accept(smp, id);
        out->ids[out->n_ids++] = id;
        if (!p->ignore_eog && tokenizer_is_eog(tok, id)) {
            out->stop = GEN_STOP_EOG;
            break;
        }
        size_t plen = tokenizer_piece(tok, id, piece, sizeof piece);
        st = cairn_buf_append(&text, piece, CAIRN_MIN(plen, sizeof piece));
        if (st != CAIRN_OK)
            break;
        /* stop strings: search only where a new match can start */
        long at = p->n_stop ? find_stop(text.data, text.len, scan_from, p) : -1;
        if (at >= 0) {
            text.len = (size_t)at;
            text.data[text.len] = '\0';
            out->stop = GEN_STOP_STRING;
            break;
        }
        scan_from = text.len > max_stop ? text.len - max_stop + 1 : 0;
        size_t ready = text.len - held_back(text.data, text.len, p);
        if (p->on_text && ready > emitted) {
            if (!p->on_text(p->ud, text.data + emitted, ready - emitted)) {
                emitted = ready;
                out->stop = GEN_STOP_CALLBACK;
                break;
            }
            emitted = ready;
        }
        if (out->n_ids == p->n_predict)
            break;
        if (session_n_past(s) >= session_n_ctx(s)) {
            out->stop = GEN_STOP_CONTEXT;
            break;
        }
        st = session_eval(s, &id, 1, &logits);
    }
    out->gen_ns = cairn_mono_ns() - t0;
    if (st == CAIRN_OK && p->on_text && text.len > emitted && out->stop != GEN_STOP_CALLBACK)
        p->on_text(p->ud, text.data + emitted, text.len - emitted);
    if (st != CAIRN_OK) {
        cairn_buf_free(&text);
        gen_result_free(out);
        return st;
    }
    out->text_len = text.len;
    out->text = text.len ? cairn_buf_take(&text) : cairn_strdup("");
    cairn_buf_free(&text);
    if (!out->text) {
        gen_result_free(out);
        return cairn_fail(CAIRN_ERR_NOMEM, "generate: out of memory");
    }
    return CAIRN_OK;
}

void gen_result_free(gen_result *r)
{
    cairn_free(r->ids);
    cairn_free(r->text);
    memset(r, 0, sizeof *r);
}

double gen_prompt_tps(const gen_result *r)
{
    return r->prompt_ns > 0 ? r->n_prompt * 1e9 / (double)r->prompt_ns : 0;
}

double gen_tps(const gen_result *r)
{
    /* the first generated token comes from the prompt's logits: n_ids - 1 evals */
    return r->gen_ns > 0 && r->n_ids > 1 ? (r->n_ids - 1) * 1e9 / (double)r->gen_ns : 0;
}
