/* test_chat.c — chat markup: exact rendering per family, detection from
 * template text (and from a real GGUF's template), bad conversations, and
 * the markers tokenizing as special tokens. */
#include "t.h"
#include "gguf/gguf.h"
#include "infer/chat.h"
#include "tokenizer/tokenizer.h"

static const chat_msg conv[] = {
    {"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello."}, {"user", "Why?"},
};

static void expect(chat_style st, const chat_msg *m, int n, const char *want)
{
    cairn_buf b;
    cairn_buf_init(&b, 0);
    CHECK_OK(chat_render(st, m, n, &b));
    CHECKF(b.data && !strcmp(b.data, want), "%s: got [%s]", chat_style_name(st), b.data ? b.data : "(null)");
    cairn_buf_free(&b);
}

static void test_render(void)
{
    expect(CHAT_CHATML, conv, 4,
           "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n"
           "<|im_start|>user\nWhy?<|im_end|>\n<|im_start|>assistant\n");
    expect(CHAT_LLAMA2, conv, 4, "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello.</s>[INST] Why? [/INST]");
    expect(CHAT_MISTRAL, conv, 4, "[INST] Be brief.\n\nHi [/INST] Hello.</s>[INST] Why? [/INST]");
    expect(CHAT_LLAMA3, conv + 1, 1,
           "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
    expect(CHAT_ZEPHYR, conv, 2, "<|system|>\nBe brief.</s>\n<|user|>\nHi</s>\n<|assistant|>\n");
    expect(CHAT_PHI3, conv + 1, 3, "<|user|>\nHi<|end|>\n<|assistant|>\nHello.<|end|>\n<|user|>\nWhy?<|end|>\n<|assistant|>\n");
    expect(CHAT_GEMMA, conv, 3,
           "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello.<end_of_turn>\n<start_of_turn>model\n");
}

static void test_detect(void)
{
    static const struct { const char *tmpl; chat_style want; } cases[] = {
        {"{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>{% endfor %}", CHAT_CHATML},
        {"{{ bos_token }}[INST] <<SYS>>\n{{ sys }}\n<</SYS>>", CHAT_LLAMA2},
        {"{{ bos_token }}{% for m in messages %}[INST] {{ m.content }} [/INST]{% endfor %}", CHAT_MISTRAL},
        {"<|start_header_id|>{{ m.role }}<|end_header_id|>\n\n{{ m.content }}<|eot_id|>", CHAT_LLAMA3},
        {"<|user|>\n{{ c }}</s>\n<|assistant|>\n", CHAT_ZEPHYR},
        {"<|user|>\n{{ c }}<|end|>\n<|assistant|>\n", CHAT_PHI3},
        {"<start_of_turn>user\n{{ c }}<end_of_turn>\n", CHAT_GEMMA},
    };
    for (size_t i = 0; i < CAIRN_ARRAY_LEN(cases); i++) {
        chat_style st = CHAT_STYLES;
        CHECK_OK(chat_style_detect(cases[i].tmpl, &st));
        CHECKF(st == cases[i].want, "case %zu: %s", i, chat_style_name(st));
    }
    chat_style st;
    CHECK(chat_style_detect("{{ messages | tojson }}", &st) == CAIRN_ERR_UNSUPPORTED);
    CHECK(strstr(cairn_last_error(), "--chat-template") != NULL);
    CHECK(chat_style_detect("", &st) == CAIRN_ERR_NOT_FOUND);
    CHECK(chat_style_detect(NULL, &st) == CAIRN_ERR_NOT_FOUND);
    CHECK_OK(chat_style_from_name("llama3", &st));
    CHECK(st == CHAT_LLAMA3);
    CHECK(chat_style_from_name("jinja", &st) == CAIRN_ERR_INVALID);
    CHECK(chat_style_from_name(NULL, &st) == CAIRN_ERR_INVALID);
}

static void test_bad_conversations(void)
{
    cairn_buf b;
    cairn_buf_init(&b, 0);
    const chat_msg late_system[] = {{"user", "a"}, {"system", "b"}};
    CHECK(chat_render(CHAT_CHATML, late_system, 2, &b) == CAIRN_ERR_INVALID);
    const chat_msg tool[] = {{"tool", "a"}};
    CHECK(chat_render(CHAT_PHI3, tool, 1, &b) == CAIRN_ERR_INVALID);
    const chat_msg null_text[] = {{"user", NULL}};
    CHECK(chat_render(CHAT_LLAMA2, null_text, 1, &b) == CAIRN_ERR_INVALID);
    CHECK(chat_render(CHAT_STYLES, conv, 1, &b) == CAIRN_ERR_INVALID);
    /* a capped buffer: a clear error, not a truncated prompt */
    cairn_buf small;
    cairn_buf_init(&small, 8);
    CHECK(chat_render(CHAT_CHATML, conv, 4, &small) == CAIRN_ERR_TOO_LARGE);
    cairn_buf_free(&small);
    for (int n = 0; n < 6; n++) {   /* allocation failures: an error, no leak (ASan) */
        cairn_alloc_fail_after(n, false);
        cairn_status st = chat_render(CHAT_LLAMA3, conv, 4, &b);
        cairn_alloc_fail_after(-1, false);
        CHECK(st == CAIRN_OK || st == CAIRN_ERR_NOMEM);
    }
    cairn_buf_free(&b);
}

/* phi-3's vocabulary carries its Jinja template: detected as phi3, and the
 * rendered markers come out as single special tokens. */
static void test_real_template(void)
{
    const char *shared = cairn_test_shared_dir();
    if (!shared) {
        fprintf(stderr, "note: ../shared absent, real-template case not run\n");
        return;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/models/llamacpp-vocab/ggml-vocab-phi-3.gguf", shared);
    gguf_file *g;
    if (gguf_open(path, &g) != CAIRN_OK) {
        fprintf(stderr, "note: phi-3 vocabulary absent, real-template case not run\n");
        return;
    }
    gguf_str t;
    CHECK_OK(gguf_get_str(g, "tokenizer.chat_template", &t));
    char *tmpl = cairn_strndup(t.ptr, (size_t)t.len);
    chat_style st = CHAT_STYLES;
    CHECK_OK(chat_style_detect(tmpl, &st));
    CHECK(st == CHAT_PHI3);
    cairn_buf b;
    cairn_buf_init(&b, 0);
    const chat_msg m[] = {{"user", "Hi"}};
    CHECK_OK(chat_render(st, m, 1, &b));
    cairn_tokenizer *tok;
    CHECK_OK(tokenizer_load(g, &tok));
    int32_t ids[64];
    size_t n = 0;
    CHECK_OK(tokenizer_encode(tok, b.data, b.len, false, true, ids, 64, &n));
    int32_t user = -1, end = -1, asst = -1;
    size_t k = 0;
    CHECK_OK(tokenizer_encode(tok, "<|user|>", 8, false, true, &user, 1, &k));
    CHECK_OK(tokenizer_encode(tok, "<|end|>", 7, false, true, &end, 1, &k));
    CHECK_OK(tokenizer_encode(tok, "<|assistant|>", 13, false, true, &asst, 1, &k));
    CHECKF(n >= 4 && ids[0] == user, "n %zu, first %d %d %d, <|user|> %d", n, ids[0], ids[1], ids[2], user);
    bool has_end = false, has_asst = false;
    for (size_t i = 0; i < n; i++)
        has_end |= ids[i] == end, has_asst |= ids[i] == asst;
    CHECK(has_end && has_asst);
    CHECK(tokenizer_is_eog(tok, end));    /* the turn end stops generation */
    tokenizer_free(tok);
    cairn_buf_free(&b);
    cairn_free(tmpl);
    gguf_close(g);
}

int main(void)
{
    RUN(test_render);
    RUN(test_detect);
    RUN(test_bad_conversations);
    RUN(test_real_template);
    return t_done();
}
