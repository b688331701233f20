/* fuzz_segment.c — libFuzzer harness for the BM25 index files: the input
 * is written as a segment file and opened with the validating reader
 * (seg_open: checksum, bounds, monotonic offsets), then every term's
 * postings are decoded; the same bytes are also tried as an index MANIFEST
 * (bm25_open). A damaged file must be CAIRN_ERR_CORRUPT, never a crash.
 * The first byte picks which: even = segment (the checksum is recomputed
 * so the fuzzer gets past it), odd = MANIFEST. */
#include "index/bm25.h"
#include "index/segment.h"
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[256];

static bool put_file(const char *path, const void *p, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return false;
    bool ok = write(fd, p, n) == (ssize_t)n;
    close(fd);
    return ok;
}

static void try_segment(const uint8_t *data, size_t size)
{
    uint8_t *img = cairn_malloc(size ? size : 1);
    if (!img)
        return;
    memcpy(img, data, size);
    if (size >= sizeof(seg_header)) {
        /* keep the fuzzer's magic/version/sizes, make the checksum right */
        seg_header h;
        memcpy(&h, img, sizeof h);
        memcpy(h.magic, "CAIRNBM1", 8);
        if (h.file_size == 0 || (img[1] & 1))
            h.file_size = size;
        h.checksum = XXH3_64bits(img + sizeof h, size - sizeof h);
        memcpy(img, &h, sizeof h);
    }
    char path[300];
    snprintf(path, sizeof path, "%s/seg-000001.bm25", dir);
    if (put_file(path, img, size)) {
        seg *s = NULL;
        if (seg_open(path, &s) == CAIRN_OK) {
            uint32_t docs[SEG_BLOCK], tfs[SEG_BLOCK], n;
            volatile uint64_t sum = 0;
            for (uint32_t t = 0; t < s->h.n_terms; t++) {
                size_t len;
                const char *term = seg_term_str(s, t, &len);
                sum += len ? (uint8_t)term[len - 1] : 0;
                if (seg_find(s, term, len) < 0)
                    __builtin_trap();   /* a validated dictionary finds its own terms */
                seg_postings it;
                seg_postings_init(&it, s, t);
                while (seg_postings_next(&it, docs, tfs, &n) == CAIRN_OK && n)
                    sum += docs[n - 1] + tfs[0];
            }
            (void)sum;
            seg_close(s);
        }
    }
    unlink(path);
    cairn_free(img);
}

static void try_manifest(const uint8_t *data, size_t size)
{
    char path[300];
    snprintf(path, sizeof path, "%s/MANIFEST", dir);
    if (!put_file(path, data, size))
        return;
    text_config cfg;
    text_config_default(&cfg);
    bm25_index *ix = NULL;
    bool mismatch;
    if (bm25_open(dir, &cfg, &ix, &mismatch) == CAIRN_OK) {
        volatile uint64_t sum = bm25_hwm(ix) + bm25_del_hwm(ix) + bm25_n_docs(ix) + bm25_n_segments(ix);
        (void)sum;
        bm25_close(ix);
    }
    unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "%s/cairn-fuzz-segment.%ld", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (long)getpid());
        mkdir(dir, 0755);
    }
    if (size < 1 || size > (1u << 20))
        return 0;
    if (data[0] & 1)
        try_manifest(data + 1, size - 1);
    else
        try_segment(data + 1, size - 1);
    return 0;
}
