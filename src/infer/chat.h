/*
 * chat.h — chat prompts: the turn markup an instruction-tuned model was
 * trained with, chosen from the GGUF's `tokenizer.chat_template`.
 *
 * The template in the file is a Jinja program; cairn does not run Jinja.
 * It recognises the common families by their markers (as other engines do)
 * and renders them itself. An unrecognised template is an error that names
 * the styles a user can pick with `--chat-template`.
 */
#ifndef CAIRN_CHAT_H
#define CAIRN_CHAT_H

#include "base/base.h"

typedef enum {
    CHAT_CHATML,    /* <|im_start|>role\n...<|im_end|>\n (Qwen, SmolLM, ...) */
    CHAT_LLAMA2,    /* [INST] <<SYS>>\n...\n<</SYS>>\n\n... [/INST] */
    CHAT_MISTRAL,   /* [INST] ... [/INST], system text before the first user turn */
    CHAT_LLAMA3,    /* <|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|> */
    CHAT_ZEPHYR,    /* <|role|>\n...</s>\n */
    CHAT_GEMMA,     /* <start_of_turn>user\n...<end_of_turn>\n, "model" for the assistant */
    CHAT_PHI3,      /* <|role|>\n...<|end|>\n */
    CHAT_STYLES
} chat_style;

typedef struct chat_msg {
    const char *role;       /* "system", "user" or "assistant" */
    const char *content;
} chat_msg;

/* The family of a Jinja chat template; CAIRN_ERR_UNSUPPORTED if unknown. */
cairn_status chat_style_detect(const char *tmpl, chat_style *out);
/* By name (chatml, llama2, mistral, llama3, zephyr, gemma, phi3). */
cairn_status chat_style_from_name(const char *name, chat_style *out);
const char *chat_style_name(chat_style st);
/* "chatml, llama2, ..." for messages. */
const char *chat_style_list(void);

/* Render the conversation, then the opening of the assistant's turn. BOS is
 * not written: the tokenizer adds it per the model's metadata. Roles other
 * than system/user/assistant are CAIRN_ERR_INVALID; a system message is
 * only allowed first. The result is NUL-terminated in *out. */
cairn_status chat_render(chat_style st, const chat_msg *msgs, int n, cairn_buf *out);

#endif
