/*
 * chat.c — chat markup families: detection from a GGUF Jinja template by
 * marker strings, and rendering (see chat.h).
 */
#include "infer/chat.h"
#include <string.h>

static const char *const names[CHAT_STYLES] = {
    [CHAT_CHATML] = "chatml", [CHAT_LLAMA2] = "llama2", [CHAT_MISTRAL] = "mistral", [CHAT_LLAMA3] = "llama3",
    [CHAT_ZEPHYR] = "zephyr", [CHAT_GEMMA] = "gemma", [CHAT_PHI3] = "phi3",
};

const char *chat_style_name(chat_style st) { return st < CHAT_STYLES ? names[st] : "?"; }

const char *chat_style_list(void) { return "chatml, llama2, mistral, llama3, zephyr, gemma, phi3"; }

cairn_status chat_style_from_name(const char *name, chat_style *out)
{
    for (int i = 0; i < CHAT_STYLES; i++)
        if (name && !strcmp(name, names[i])) {
            *out = (chat_style)i;
            return CAIRN_OK;
        }
    return cairn_fail(CAIRN_ERR_INVALID, "unknown chat template '%s' (known: %s)", name ? name : "", chat_style_list());
}

/* Order matters: the most specific markers first (phi-3 also writes
 * <|user|> and <|assistant|> like zephyr, but ends turns with <|end|>). */
cairn_status chat_style_detect(const char *t, chat_style *out)
{
    if (!t || !*t)
        return cairn_fail(CAIRN_ERR_NOT_FOUND, "the model has no chat template (pick one: --chat-template %s)",
                          chat_style_list());
    if (strstr(t, "<|im_start|>"))
        *out = CHAT_CHATML;
    else if (strstr(t, "<|start_header_id|>"))
        *out = CHAT_LLAMA3;
    else if (strstr(t, "<start_of_turn>"))
        *out = CHAT_GEMMA;
    else if (strstr(t, "<|end|>") && strstr(t, "<|assistant|>"))
        *out = CHAT_PHI3;
    else if (strstr(t, "<|user|>") && strstr(t, "<|assistant|>"))
        *out = CHAT_ZEPHYR;
    else if (strstr(t, "[INST]"))
        *out = strstr(t, "<<SYS>>") ? CHAT_LLAMA2 : CHAT_MISTRAL;
    else
        return cairn_fail(CAIRN_ERR_UNSUPPORTED, "the model's chat template is not one cairn knows (pick one: "
                          "--chat-template %s)", chat_style_list());
    return CAIRN_OK;
}

static bool role_ok(const char *r)
{
    return r && (!strcmp(r, "system") || !strcmp(r, "user") || !strcmp(r, "assistant"));
}

/* [INST] families: a system message goes into the first user turn. */
static cairn_status render_inst(chat_style st, const chat_msg *m, int n, cairn_buf *b)
{
    const char *sys = NULL;
    for (int i = 0; i < n; i++) {
        const char *r = m[i].role, *c = m[i].content;
        if (!strcmp(r, "system")) {
            sys = c;
        } else if (!strcmp(r, "user")) {
            CAIRN_TRY(cairn_buf_puts(b, "[INST] "));
            if (sys && st == CHAT_LLAMA2)
                CAIRN_TRY(cairn_buf_printf(b, "<<SYS>>\n%s\n<</SYS>>\n\n", sys));
            else if (sys)
                CAIRN_TRY(cairn_buf_printf(b, "%s\n\n", sys));
            sys = NULL;
            CAIRN_TRY(cairn_buf_printf(b, "%s [/INST]", c));
        } else {
            CAIRN_TRY(cairn_buf_printf(b, " %s</s>", c));
        }
    }
    return CAIRN_OK;
}

cairn_status chat_render(chat_style st, const chat_msg *m, int n, cairn_buf *b)
{
    if (st >= CHAT_STYLES || n < 0 || (n > 0 && !m))
        return cairn_fail(CAIRN_ERR_INVALID, "chat: bad arguments");
    for (int i = 0; i < n; i++) {
        if (!role_ok(m[i].role) || !m[i].content)
            return cairn_fail(CAIRN_ERR_INVALID, "chat: message %d: role must be system, user or assistant", i + 1);
        if (!strcmp(m[i].role, "system") && i > 0)
            return cairn_fail(CAIRN_ERR_INVALID, "chat: a system message must come first");
    }
    cairn_buf_reset(b);
    if (st == CHAT_LLAMA2 || st == CHAT_MISTRAL)
        return render_inst(st, m, n, b);
    const char *sys = NULL;     /* gemma has no system role: it opens the first user turn */
    for (int i = 0; i < n; i++) {
        const char *r = m[i].role, *c = m[i].content;
        switch (st) {
        case CHAT_CHATML:
            CAIRN_TRY(cairn_buf_printf(b, "<|im_start|>%s\n%s<|im_end|>\n", r, c));
            break;
        case CHAT_LLAMA3:
            CAIRN_TRY(cairn_buf_printf(b, "<|start_header_id|>%s<|end_header_id|>\n\n%s<|eot_id|>", r, c));
            break;
        case CHAT_ZEPHYR:
            CAIRN_TRY(cairn_buf_printf(b, "<|%s|>\n%s</s>\n", r, c));
            break;
        case CHAT_PHI3:
            CAIRN_TRY(cairn_buf_printf(b, "<|%s|>\n%s<|end|>\n", r, c));
            break;
        case CHAT_GEMMA:
            if (!strcmp(r, "system")) {
                sys = c;
                break;
            }
            CAIRN_TRY(cairn_buf_printf(b, "<start_of_turn>%s\n", !strcmp(r, "assistant") ? "model" : r));
            if (sys && !strcmp(r, "user"))
                CAIRN_TRY(cairn_buf_printf(b, "%s\n\n", sys));
            sys = NULL;
            CAIRN_TRY(cairn_buf_printf(b, "%s<end_of_turn>\n", c));
            break;
        default:
            break;
        }
    }
    switch (st) {   /* the assistant's turn opens */
    case CHAT_CHATML: return cairn_buf_puts(b, "<|im_start|>assistant\n");
    case CHAT_LLAMA3: return cairn_buf_puts(b, "<|start_header_id|>assistant<|end_header_id|>\n\n");
    case CHAT_ZEPHYR:
    case CHAT_PHI3: return cairn_buf_puts(b, "<|assistant|>\n");
    case CHAT_GEMMA: return cairn_buf_puts(b, "<start_of_turn>model\n");
    default: return CAIRN_OK;
    }
}
