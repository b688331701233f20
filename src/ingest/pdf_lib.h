/*
 * pdf_lib.h — poppler-glib, loaded on first use.
 *
 * poppler-glib drags in some 40 shared libraries (glib, gio, cairo, pixman,
 * freetype, libstdc++, ...). Linked at build time they cost every cairn
 * process ~8 MiB of resident memory — `cairn generate` included, which
 * never opens a PDF. So the PDF parser dlopen()s the library the first time
 * it meets a PDF and calls it through this table; the rest of cairn never
 * maps it.
 *
 * Include after <poppler.h>: the macros below route pdf.c's calls through
 * the table, so the parser reads as plain poppler-glib code.
 *
 * The library is found by its soname at configure time (CAIRN_POPPLER_SONAME);
 * the environment variable CAIRN_PDF_LIB names another file to load instead.
 */
#ifndef CAIRN_PDF_LIB_H
#define CAIRN_PDF_LIB_H

#include "base/base.h"
#include <poppler.h>

#define PDF_LIB_FUNCTIONS(X)                                                   \
    X(g_bytes_new_static) X(g_bytes_unref) X(g_error_free) X(g_free)           \
    X(g_object_unref) X(g_utf8_validate) X(g_utf8_strlen)                      \
    X(poppler_error_quark) X(poppler_document_new_from_bytes)                  \
    X(poppler_document_get_n_pages) X(poppler_document_get_page)               \
    X(poppler_document_get_title) X(poppler_document_get_author)               \
    X(poppler_document_get_subject) X(poppler_document_get_creator)            \
    X(poppler_document_get_producer) X(poppler_document_get_keywords)          \
    X(poppler_document_get_creation_date)                                      \
    X(poppler_document_get_modification_date) X(poppler_page_get_text)        \
    X(poppler_page_get_text_layout)

typedef struct pdf_lib {
#define PDF_LIB_FIELD(name) __typeof__(name) *name;
    PDF_LIB_FUNCTIONS(PDF_LIB_FIELD)
#undef PDF_LIB_FIELD
} pdf_lib;

extern pdf_lib pdf_lib_fn;

/* Loads the library once (thread-safe). CAIRN_ERR_NOT_FOUND with the
 * loader's message when it or one of its functions is missing (the same
 * answer every later call): not UNSUPPORTED, because the file is fine and
 * the pipeline must retry it once the library is there. */
cairn_status pdf_lib_load(void);

#ifndef PDF_LIB_IMPL
#define g_bytes_new_static (pdf_lib_fn.g_bytes_new_static)
#define g_bytes_unref (pdf_lib_fn.g_bytes_unref)
#define g_error_free (pdf_lib_fn.g_error_free)
#define g_free (pdf_lib_fn.g_free)
#define g_object_unref (pdf_lib_fn.g_object_unref)
#define g_utf8_validate (pdf_lib_fn.g_utf8_validate)
#define g_utf8_strlen (pdf_lib_fn.g_utf8_strlen)
#define poppler_error_quark (pdf_lib_fn.poppler_error_quark)
#define poppler_document_new_from_bytes (pdf_lib_fn.poppler_document_new_from_bytes)
#define poppler_document_get_n_pages (pdf_lib_fn.poppler_document_get_n_pages)
#define poppler_document_get_page (pdf_lib_fn.poppler_document_get_page)
#define poppler_document_get_title (pdf_lib_fn.poppler_document_get_title)
#define poppler_document_get_author (pdf_lib_fn.poppler_document_get_author)
#define poppler_document_get_subject (pdf_lib_fn.poppler_document_get_subject)
#define poppler_document_get_creator (pdf_lib_fn.poppler_document_get_creator)
#define poppler_document_get_producer (pdf_lib_fn.poppler_document_get_producer)
#define poppler_document_get_keywords (pdf_lib_fn.poppler_document_get_keywords)
#define poppler_document_get_creation_date (pdf_lib_fn.poppler_document_get_creation_date)
#define poppler_document_get_modification_date (pdf_lib_fn.poppler_document_get_modification_date)
#define poppler_page_get_text (pdf_lib_fn.poppler_page_get_text)
#define poppler_page_get_text_layout (pdf_lib_fn.poppler_page_get_text_layout)
#endif

#endif
