/*
 * tokenizer.h — tokenizers loaded from GGUF metadata (tokenizer.ggml.*):
 * SentencePiece-style ("llama": scores + byte fallback), byte-level BPE
 * ("gpt2": merges + a pre-tokenizer chosen by tokenizer.ggml.pre) and
 * WordPiece ("bert").
 */
#ifndef CAIRN_TOKENIZER_H
#define CAIRN_TOKENIZER_H

#include "gguf/gguf.h"

typedef struct cairn_tokenizer cairn_tokenizer;

cairn_status tokenizer_load(const gguf_file *g, cairn_tokenizer **out);
void tokenizer_free(cairn_tokenizer *t);

int32_t tokenizer_n_vocab(const cairn_tokenizer *t);
int32_t tokenizer_bos(const cairn_tokenizer *t);   /* -1 if none */
int32_t tokenizer_eos(const cairn_tokenizer *t);
bool tokenizer_add_bos(const cairn_tokenizer *t);  /* per tokenizer.ggml.add_bos_token / model default */
bool tokenizer_add_eos(const cairn_tokenizer *t);
bool tokenizer_is_eog(const cairn_tokenizer *t, int32_t id); /* end of generation (eos, eot, ...) */

/* The tokenizer copies what it needs: the gguf_file may be closed after load.
 * Encoding and decoding only read the tokenizer, so one tokenizer may be
 * used from several threads at once. */

/* Encode UTF-8 text. add_special: BOS/EOS (or CLS/SEP) per the model's flags.
 * parse_special: recognise special-token text like "<|im_start|>".
 * Writes at most `cap` ids; returns the number of ids needed in *n_out
 * (call again with a larger buffer if *n_out > cap). */
cairn_status tokenizer_encode(const cairn_tokenizer *t, const char *text, size_t len,
                              bool add_special, bool parse_special,
                              int32_t *ids, size_t cap, size_t *n_out);

/* Bytes of one token's text as it appears in the output (byte tokens decoded,
 * SentencePiece "▁" turned into a space, byte-level BPE unmapped; control
 * tokens give nothing, see tokenizer_piece_ex). Returns the number of bytes
 * needed (may exceed cap; nothing beyond cap is written). A byte token may be
 * part of a multi-byte character: buffer pieces before printing them. */
size_t tokenizer_piece(const cairn_tokenizer *t, int32_t id, char *buf, size_t cap);

/* Decode a sequence into `out` (appended). Control tokens (BOS, EOS, ...)
 * render as nothing; the space SentencePiece (and WordPiece) put before the
 * first word is dropped, so decode(encode(text)) == text for SentencePiece and
 * byte-level BPE (valid UTF-8 input). Unknown ids are CAIRN_ERR_INVALID. */
cairn_status tokenizer_decode(const cairn_tokenizer *t, const int32_t *ids, size_t n, cairn_buf *out);

/* ---- extensions ---- */
enum {
    TOKENIZER_DECODE_SPECIAL = 1 << 0,    /* render control tokens as their text ("<|im_end|>") */
    TOKENIZER_DECODE_KEEP_SPACE = 1 << 1, /* keep the leading dummy-prefix space */
};
size_t tokenizer_piece_ex(const cairn_tokenizer *t, int32_t id, unsigned flags, char *buf, size_t cap);
cairn_status tokenizer_decode_ex(const cairn_tokenizer *t, const int32_t *ids, size_t n, unsigned flags,
                                 cairn_buf *out);
/* Id of the token whose vocabulary text is exactly text[0..len), or -1. */
int32_t tokenizer_find(const cairn_tokenizer *t, const char *text, size_t len);
/* The raw vocabulary string of a token (not NUL-terminated; "" if out of range). */
const char *tokenizer_token_text(const cairn_tokenizer *t, int32_t id, size_t *len);
const char *tokenizer_type_name(const cairn_tokenizer *t);  /* "llama (SentencePiece)", ... */
const char *tokenizer_pre_name(const cairn_tokenizer *t);   /* tokenizer.ggml.pre, "" if absent */

#endif
