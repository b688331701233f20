/*
 * pdf_lib.c — dlopen() of poppler-glib on first use (see pdf_lib.h).
 */
#define PDF_LIB_IMPL
#include "ingest/pdf_lib.h"
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#ifndef CAIRN_POPPLER_SONAME
#define CAIRN_POPPLER_SONAME "libpoppler-glib.so.8"
#endif

pdf_lib pdf_lib_fn;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static char load_error[512];     /* empty when loaded */

static void load(void)
{
    const char *name = getenv("CAIRN_PDF_LIB");
    if (!name || !*name)
        name = CAIRN_POPPLER_SONAME;
    /* RTLD_NODELETE: the table stays valid for the life of the process. */
    void *h = dlopen(name, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (!h) {
        const char *e = dlerror();
        snprintf(load_error, sizeof load_error, "PDF support needs %s, which could not be loaded (%s)", name,
                 e ? e : "unknown error");
        return;
    }
    /* dlsym with the library's handle also searches its dependencies (glib, gobject). */
#define PDF_LIB_RESOLVE(fn)                                                                                 \
    if (!load_error[0]) {                                                                                   \
        *(void **)&pdf_lib_fn.fn = dlsym(h, #fn);                                                           \
        if (!pdf_lib_fn.fn)                                                                                 \
            snprintf(load_error, sizeof load_error, "PDF support: %s has no function %s", name, #fn);      \
    }
    PDF_LIB_FUNCTIONS(PDF_LIB_RESOLVE)
#undef PDF_LIB_RESOLVE
}

cairn_status pdf_lib_load(void)
{
    pthread_once(&load_once, load);
    if (load_error[0])
        return cairn_fail(CAIRN_ERR_NOT_FOUND, "%s", load_error);
    return CAIRN_OK;
}
