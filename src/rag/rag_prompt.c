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

/* The prompt is tokenized with special-token parsing (the markup needs it),
 * so text from documents and users must not spell a control token: a zero
 * width space (U+200B) goes after the opening bracket of the markers the
 * chat families use ("<|...|>", "<s>", "</s>", "<start_of_turn>",
 * "<end_of_turn>", "[INST]", "[/INST]", "<<SYS>>"). The model still reads
 * the text; it can no longer open a turn. */
static cairn_status append_neutral(cairn_buf *out, const char *t, size_t n)
{
    static const char *const marks[] = {"<|", "<s>", "</s>", "<start_of_turn>", "<end_of_turn>", "[INST]", "[/INST]",
                                        "<<SYS>>", "<</SYS>>"};
    size_t from = 0;
    for (size_t i = 0; i < n; i++) {
        if (t[i] != '<' && t[i] != '[')
            continue;
        for (size_t k = 0; k < CAIRN_ARRAY_LEN(marks); k++) {
            size_t l = strlen(marks[k]);
            if (l <= n - i && !memcmp(t + i, marks[k], l)) {
                CAIRN_TRY(cairn_buf_append(out, t + from, i + 1 - from));
                CAIRN_TRY(cairn_buf_puts(out, "\xE2\x80\x8B"));
                from = i + 1;
                break;
            }
        }
    }
    return cairn_buf_append(out, t + from, n - from);
}

cairn_status rag_user_message(const rag_context *ctx, const char *question, cairn_buf *out)
{
    if (ctx && ctx->n) {
        cairn_buf c;
        cairn_buf_init(&c, out->limit);
        cairn_status st = rag_context_render(ctx, &c);
        if (st == CAIRN_OK)
            st = cairn_buf_puts(out, "Sources:\n\n");
        if (st == CAIRN_OK)
            st = append_neutral(out, c.data, c.len);
        cairn_buf_free(&c);
        CAIRN_TRY(st);
        CAIRN_TRY(cairn_buf_puts(out, "\n\n"));
    } else {
        CAIRN_TRY(cairn_buf_puts(out, "Sources: none matched the question.\n\n"));
    }
    CAIRN_TRY(cairn_buf_puts(out, "Question: "));
    return append_neutral(out, question, strlen(question));
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
