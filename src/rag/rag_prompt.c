/* rag_prompt.c — the system prompt, the user turn (context + question) and
 * the conversation in the model's markup (see rag.h). */
#include "rag/rag.h"

#include <string.h>

const char rag_default_system_prompt[] =
    "You answer questions using only the numbered sources you are given. After each statement, cite the "
    "sources that support it with their numbers in square brackets, like [1] or [2][3]. Cite only numbers "
    "that appear in the sources. If the sources do not contain the answer, say that you do not know. "
    "Answer briefly.";

cairn_status rag_style_for_model(const cairn_model *m, const char *name, rag_style *out)
{
    memset(out, 0, sizeof *out);
    if (name && !strcmp(name, "plain")) {
        out->plain = true;
        return CAIRN_OK;
    }
    if (name)
        return chat_style_from_name(name, &out->chat);
    gguf_str t = {0};
    if (!m || gguf_get_str(m->gguf, "tokenizer.chat_template", &t) != CAIRN_OK || t.len == 0) {
        cairn_clear_error();
        out->plain = true;      /* base models: a plain "Question: ... Answer:" layout */
        return CAIRN_OK;
    }
    char *tmpl = cairn_strndup(t.ptr, (size_t)t.len);
    if (!tmpl)
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
    cairn_status st = chat_style_detect(tmpl, &out->chat);
    cairn_free(tmpl);
    return st;
}

cairn_status rag_user_message(const rag_context *ctx, const char *question, cairn_buf *out)
{
    if (ctx && ctx->n) {
        CAIRN_TRY(cairn_buf_puts(out, "Sources:\n\n"));
        CAIRN_TRY(rag_context_render(ctx, out));
        CAIRN_TRY(cairn_buf_puts(out, "\n\n"));
    } else {
        CAIRN_TRY(cairn_buf_puts(out, "Sources: none matched the question.\n\n"));
    }
    return cairn_buf_printf(out, "Question: %s", question);
}

cairn_status rag_prompt_render(const rag_style *st, const char *system, const rag_turn *turns, size_t n,
                               cairn_buf *out)
{
    if (!system)
        system = rag_default_system_prompt;
    if (st->plain) {
        CAIRN_TRY(cairn_buf_printf(out, "%s\n\n", system));
        for (size_t i = 0; i < n; i++) {
            CAIRN_TRY(cairn_buf_printf(out, "%s\nAnswer:", turns[i].user));
            if (turns[i].assistant)
                CAIRN_TRY(cairn_buf_printf(out, " %s\n\n", turns[i].assistant));
        }
        return CAIRN_OK;
    }
    if (n > 64)
        return cairn_fail(CAIRN_ERR_INVALID, "prompt: at most 64 turns");
    chat_msg msgs[1 + 2 * 64];
    int nm = 0;
    msgs[nm++] = (chat_msg){"system", system};
    for (size_t i = 0; i < n; i++) {
        msgs[nm++] = (chat_msg){"user", turns[i].user};
        if (turns[i].assistant)
            msgs[nm++] = (chat_msg){"assistant", turns[i].assistant};
    }
    return chat_render(st->chat, msgs, nm, out);
}
