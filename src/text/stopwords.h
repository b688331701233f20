/* stopwords.h — static English stop lists (normalized form). */
#ifndef CAIRN_TEXT_STOPWORDS_H
#define CAIRN_TEXT_STOPWORDS_H

#include <stddef.h>

extern const char *const text_stop_lucene[];
extern const size_t text_stop_lucene_n;
extern const char *const text_stop_english[];
extern const size_t text_stop_english_n;

#endif
