/* test_gguf_fuzz.c — the reader against damaged real files: truncation at
 * sampled offsets (every offset in the header of small files) and random byte
 * flips in the header region. Each image lives in a heap buffer of exactly its
 * size, so under ASan any read past the end is caught. A successful open must
 * leave every string, array and tensor range readable. */
#include "gguf/gguf.h"
#include "t.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Touch everything the reader hands out; returns a checksum so nothing is optimized away. */
static uint64_t touch_all(const gguf_file *g, const uint8_t *base, size_t size)
{
    uint64_t sum = 0;
    for (uint64_t i = 0; i < gguf_kv_count(g); i++) {
        const gguf_kv *kv = gguf_kv_at(g, i);
        CHECK((const uint8_t *)kv->key.ptr >= base && (const uint8_t *)kv->key.ptr + kv->key.len <= base + size);
        sum += (uint8_t)kv->key.ptr[kv->key.len - 1];
        if (kv->type == GGUF_TYPE_STRING && kv->v.str.len)
            sum += (uint8_t)kv->v.str.ptr[kv->v.str.len - 1];
        if (kv->type != GGUF_TYPE_ARRAY || kv->v.arr.count == 0)
            continue;
        if (kv->v.arr.type == GGUF_TYPE_STRING) {
            for (uint64_t j = 0; j < kv->v.arr.count; j++) {
                gguf_str s = gguf_arr_str(kv, j);
                if (s.len)
                    sum += (uint8_t)s.ptr[0] + (uint8_t)s.ptr[s.len - 1];
            }
        } else {
            int64_t iv;
            double dv;
            uint64_t last = kv->v.arr.count - 1;
            if (gguf_arr_i64(kv, last, &iv))
                sum += (uint64_t)iv;
            if (gguf_arr_f64(kv, last, &dv))
                sum += (uint64_t)(dv == dv);
        }
    }
    for (uint64_t i = 0; i < gguf_tensor_count(g); i++) {
        const gguf_tensor *t = gguf_tensor_at(g, i);
        const uint8_t *d = t->data;
        CHECK(d >= base && t->nbytes <= size && d + t->nbytes <= base + size);
        sum += d[0] + d[t->nbytes - 1];
        CHECK(gguf_tensor_find(g, "") == NULL);
    }
    return sum;
}

static uint8_t *load(const char *path, size_t *len)
{
    char *data = NULL;
    if (cairn_file_read_all(path, (size_t)1 << 28, &data, len) != CAIRN_OK)
        return NULL;
    uint8_t *exact = cairn_malloc(*len);   /* exactly sized: ASan sees any overread */
    if (exact)
        memcpy(exact, data, *len);
    cairn_free(data);
    return exact;
}

static void fuzz_file(const char *path, int n_trunc, int n_flip)
{
    size_t size = 0;
    uint8_t *img = load(path, &size);
    CHECKF(img != NULL, "cannot read %s", path);
    if (!img)
        return;
    gguf_file *g = NULL;
    CHECK_OK(gguf_open_mem(img, size, path, &g));
    if (!g) {
        cairn_free(img);
        return;
    }
    uint64_t header_end = gguf_data_offset(g);
    uint64_t data_end = header_end;
    for (uint64_t i = 0; i < gguf_tensor_count(g); i++) {
        const gguf_tensor *t = gguf_tensor_at(g, i);
        data_end = CAIRN_MAX(data_end, header_end + t->offset + t->nbytes);
    }
    /* A cut below fail_below must fail, a cut at or above ok_from must open. Without
     * tensors the last KV ends somewhere in (header_end - alignment, header_end]. */
    uint64_t n_tensors = gguf_tensor_count(g);
    uint64_t fail_below = n_tensors ? data_end : header_end - gguf_alignment(g) + 1;
    uint64_t ok_from = n_tensors ? data_end : header_end;
    gguf_close(g);

    /* Truncations: every offset of small headers, else a sample; plus a sample of the data. */
    uint64_t sum = 0;
    int failures_seen = 0, opened = 0;
    for (int k = 0; k < n_trunc; k++) {
        size_t cut;
        if (header_end <= (uint64_t)n_trunc / 2)
            cut = k < (int)header_end ? (size_t)k : (size_t)(next_rand() % size);
        else
            cut = k % 2 ? (size_t)(next_rand() % (header_end + 1)) : (size_t)(next_rand() % size);
        uint8_t *part = cairn_malloc(cut ? cut : 1);
        memcpy(part, img, cut);
        gguf_file *t = NULL;
        cairn_status st = gguf_open_mem(part, cut, "truncated", &t);
        if (st == CAIRN_OK) {
            opened++;
            CHECKF(cut >= fail_below, "%s: truncated at %zu of %zu still opens", path, cut, size);
            sum += touch_all(t, part, cut);
        } else {
            failures_seen++;
            CHECKF(st == CAIRN_ERR_CORRUPT, "%s: cut %zu: %s (%s)", path, cut, cairn_status_str(st),
                   cairn_last_error());
            CHECKF(cut < ok_from, "%s: truncation at %zu >= %llu failed: %s", path, cut,
                   (unsigned long long)ok_from, cairn_last_error());
        }
        gguf_close(t);
        cairn_free(part);
    }
    CHECK(failures_seen > 0);

    /* Byte flips in the header region (restored after each try). */
    int flip_ok = 0;
    for (int k = 0; k < n_flip; k++) {
        int nflips = 1 + (int)(next_rand() % 4);
        size_t pos[4];
        uint8_t old[4];
        for (int j = 0; j < nflips; j++) {
            uint64_t r = next_rand();
            /* Half the flips hit the first 64 bytes (counts, first key), the rest anywhere in the header. */
            pos[j] = (r & 1) ? (size_t)((r >> 1) % CAIRN_MIN(64, size)) : (size_t)((r >> 1) % header_end);
            old[j] = img[pos[j]];
            uint64_t how = next_rand() % 4;
            img[pos[j]] = how == 0 ? 0xff : how == 1 ? 0 : how == 2 ? (uint8_t)(old[j] ^ (1u << (next_rand() % 8)))
                                                                   : (uint8_t)next_rand();
        }
        gguf_file *t = NULL;
        cairn_status st = gguf_open_mem(img, size, "flipped", &t);
        if (st == CAIRN_OK) {
            flip_ok++;
            sum += touch_all(t, img, size);
        } else {
            CHECKF(st == CAIRN_ERR_CORRUPT || st == CAIRN_ERR_UNSUPPORTED, "%s: flip: %s (%s)", path,
                   cairn_status_str(st), cairn_last_error());
            CHECK(cairn_last_error()[0] != 0);
        }
        gguf_close(t);
        for (int j = nflips - 1; j >= 0; j--)
            img[pos[j]] = old[j];
    }
    fprintf(stderr, "  %s: %d truncations (%d opened), %d flips (%d opened), checksum %llu\n", path, n_trunc,
            opened, n_flip, flip_ok, (unsigned long long)(sum & 0xffff));
    cairn_free(img);
}

static void test_fuzz_shared(void)
{
    const char *shared = cairn_test_shared_dir();
    if (!shared) {
        fprintf(stderr, "  (shared assets absent: skipped)\n");
        return;
    }
    bool asan = getenv("CAIRN_SANITIZED") != NULL;
    static const char *files[] = {
        "stories260K/stories260K.gguf",
        "stories260K/stories260K-Q4_0.gguf",
        "glove-bert/glove6B-100d-bert-22k-d128-Q4_K_M.gguf",
        "llamacpp-vocab/ggml-vocab-gpt-2.gguf",
        "llama-2-tiny-random/llama-2-tiny-random.gguf",
    };
    for (size_t i = 0; i < CAIRN_ARRAY_LEN(files); i++) {
        char p[1200];
        snprintf(p, sizeof p, "%s/models/%s", shared, files[i]);
        bool big_header = i >= 2;   /* tens of thousands of strings: each open parses them all */
        int n_trunc = big_header ? (asan ? 300 : 600) : (asan ? 6000 : 12000);
        int n_flip = big_header ? (asan ? 300 : 600) : (asan ? 4000 : 8000);
        fuzz_file(p, n_trunc, n_flip);
    }
}

int main(void)
{
    RUN(test_fuzz_shared);
    if (!cairn_test_shared_dir())
        SKIP_ALL("shared models absent");
    return t_done();
}
