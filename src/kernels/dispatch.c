/*
 * dispatch.c — the per-type traits tables and run-time kernel selection.
 *
 * One table per level (scalar, AVX2, AVX-512), built once: each starts as a
 * copy of the level below and the level's registration hook (dispatch.h)
 * overrides what it accelerates. qtype_get() serves the selected level: the
 * best the CPU and OS support, or the one CAIRN_KERNELS=scalar|avx2|avx512
 * forces. AMX (inside the AVX-512 table) is used when the CPU, the OS and
 * Linux's tile-state permission allow it, unless CAIRN_NO_AMX=1 (or the
 * older CAIRN_AMX=0) turns it off.
 *
 * Every decision taken from the host is a pure function of its inputs
 * (kernels_choose_level, kernels_amx_wanted, kernels_llc_pick), so tests
 * drive each branch with made-up inputs on any CPU; the detection code
 * below only gathers the inputs.
 */
#include "kernels/dispatch.h"
#include "kernels/quant_ref.h"
#include <cpuid.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Hooks live in quant_avx2.c / quant_avx512.c. They must be strong references:
 * a weak one does not pull the object out of libcairn_core.a, and the SIMD
 * levels would silently stay off. */

#define REF(t, bs, ts, vdt, deq, q, dot) \
    [t] = {.name = NULL, .block_size = bs, .type_size = ts, .vec_dot_type = vdt, \
           .to_float = deq, .from_float = q, .vec_dot = dot, .quantize_act = q}

static const qtype_traits ref_table[QT_COUNT] = {
    REF(QT_F32, 1, 4, QT_F32, dequant_f32_ref, quant_f32_ref, vec_dot_f32_f32_ref),
    REF(QT_F16, 1, 2, QT_F32, dequant_f16_ref, quant_f16_ref, vec_dot_f16_f32_ref),
    REF(QT_BF16, 1, 2, QT_F32, dequant_bf16_ref, quant_bf16_ref, vec_dot_bf16_f32_ref),
    REF(QT_Q4_0, QK, sizeof(block_q4_0), QT_Q8_0, dequant_q4_0_ref, quant_q4_0_ref, vec_dot_q4_0_q8_0_ref),
    REF(QT_Q4_1, QK, sizeof(block_q4_1), QT_Q8_1, dequant_q4_1_ref, quant_q4_1_ref, vec_dot_q4_1_q8_1_ref),
    REF(QT_Q5_0, QK, sizeof(block_q5_0), QT_Q8_0, dequant_q5_0_ref, quant_q5_0_ref, vec_dot_q5_0_q8_0_ref),
    REF(QT_Q5_1, QK, sizeof(block_q5_1), QT_Q8_1, dequant_q5_1_ref, quant_q5_1_ref, vec_dot_q5_1_q8_1_ref),
    REF(QT_Q8_0, QK, sizeof(block_q8_0), QT_Q8_0, dequant_q8_0_ref, quant_q8_0_ref, vec_dot_q8_0_q8_0_ref),
    REF(QT_Q8_1, QK, sizeof(block_q8_1), QT_Q8_1, dequant_q8_1_ref, quant_q8_1_ref, NULL),
    REF(QT_Q2_K, QK_K, sizeof(block_q2_K), QT_Q8_K, dequant_q2_K_ref, quant_q2_K_ref, vec_dot_q2_K_q8_K_ref),
    REF(QT_Q3_K, QK_K, sizeof(block_q3_K), QT_Q8_K, dequant_q3_K_ref, quant_q3_K_ref, vec_dot_q3_K_q8_K_ref),
    REF(QT_Q4_K, QK_K, sizeof(block_q4_K), QT_Q8_K, dequant_q4_K_ref, quant_q4_K_ref, vec_dot_q4_K_q8_K_ref),
    REF(QT_Q5_K, QK_K, sizeof(block_q5_K), QT_Q8_K, dequant_q5_K_ref, quant_q5_K_ref, vec_dot_q5_K_q8_K_ref),
    REF(QT_Q6_K, QK_K, sizeof(block_q6_K), QT_Q8_K, dequant_q6_K_ref, quant_q6_K_ref, vec_dot_q6_K_q8_K_ref),
    REF(QT_Q8_K, QK_K, sizeof(block_q8_K), QT_Q8_K, dequant_q8_K_ref, quant_q8_K_ref, NULL),
};

static const char *const type_names[QT_COUNT] = {
    [QT_F32] = "F32", [QT_F16] = "F16", [QT_BF16] = "BF16", [QT_Q4_0] = "Q4_0", [QT_Q4_1] = "Q4_1",
    [QT_Q5_0] = "Q5_0", [QT_Q5_1] = "Q5_1", [QT_Q8_0] = "Q8_0", [QT_Q8_1] = "Q8_1", [QT_Q2_K] = "Q2_K",
    [QT_Q3_K] = "Q3_K", [QT_Q4_K] = "Q4_K", [QT_Q5_K] = "Q5_K", [QT_Q6_K] = "Q6_K", [QT_Q8_K] = "Q8_K",
};

static qtype_traits tables[KERNELS_LEVELS][QT_COUNT];
static bool level_ok[KERNELS_LEVELS];
static kernels_level selected = KERNELS_SCALAR;
static kernels_level requested = KERNELS_DEFAULT;
static bool amx_on;                 /* the AVX-512 table has the AMX tile kernels */
static cpu_features cpu;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void detect_cpu(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return;
    bool osxsave = c & (1u << 27), avx = c & (1u << 28);
    cpu.fma = c & (1u << 12);
    cpu.f16c = c & (1u << 29);
    uint64_t xcr0 = 0;
    if (osxsave) {
        unsigned lo, hi;
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        xcr0 = ((uint64_t)hi << 32) | lo;
    }
    bool ymm = avx && (xcr0 & 0x6) == 0x6;          /* SSE + AVX state saved by the OS */
    bool zmm = ymm && (xcr0 & 0xe0) == 0xe0;        /* opmask + ZMM0-15 upper + ZMM16-31 */
    unsigned max_leaf = __get_cpuid_max(0, NULL);
    if (max_leaf < 7)
        return;
    __cpuid_count(7, 0, a, b, c, d);
    cpu.avx2 = ymm && (b & (1u << 5));
    cpu.bmi2 = b & (1u << 8);
    cpu.avx512f = zmm && (b & (1u << 16));
    cpu.avx512dq = zmm && (b & (1u << 17));
    cpu.avx512bw = zmm && (b & (1u << 30));
    cpu.avx512vl = zmm && (b & (1u << 31));
    cpu.avx512vnni = zmm && (c & (1u << 11));
    unsigned sub_leaves = a;
    bool tile_os = (xcr0 & (3ull << 17)) == (3ull << 17);   /* XTILECFG + XTILEDATA */
    cpu.amx_bf16 = tile_os && (d & (1u << 22));
    cpu.amx_tile = tile_os && (d & (1u << 24));
    cpu.amx_int8 = tile_os && (d & (1u << 25));
    if (sub_leaves >= 1) {
        __cpuid_count(7, 1, a, b, c, d);
        cpu.avx_vnni = ymm && (a & (1u << 4));
        cpu.avx512bf16 = zmm && (a & (1u << 5));
    }
    if (!ymm)
        cpu.fma = cpu.f16c = false;
}

static bool names_level(const char *s, kernels_level *out)
{
    for (kernels_level l = KERNELS_SCALAR; l < KERNELS_LEVELS; l++) {
        if (strcasecmp(s, kernels_level_name(l)) == 0) {
            *out = l;
            return true;
        }
    }
    return false;
}

kernels_level kernels_choose_level(const bool ok[KERNELS_LEVELS], const char *request, char *warn, size_t cap)
{
    if (cap)
        warn[0] = 0;
    kernels_level best = KERNELS_SCALAR;
    for (kernels_level l = KERNELS_SCALAR; l < KERNELS_LEVELS; l++)
        if (ok[l])
            best = l;
    if (!request || !*request || strcasecmp(request, "auto") == 0)
        return best;
    kernels_level want;
    if (!names_level(request, &want)) {
        if (cap)
            snprintf(warn, cap, "CAIRN_KERNELS=%s is not a kernel level (scalar, avx2, avx512, auto); using %s",
                     request, kernels_level_name(best));
        return best;
    }
    kernels_level got = want;
    while (got > KERNELS_SCALAR && !ok[got])
        got--;
    if (got != want && cap)
        snprintf(warn, cap, "CAIRN_KERNELS=%s: this CPU (or its OS) lacks %s; using %s", request,
                 want == KERNELS_AVX512 ? "AVX-512 F/BW/VL/DQ/VNNI" : "AVX2 + FMA + F16C + BMI2",
                 kernels_level_name(got));
    return got;
}

/* A switch counts as set unless empty or "0", "no", "off", "false". */
static bool switch_set(const char *v)
{
    return v && *v && strcmp(v, "0") != 0 && strcasecmp(v, "no") != 0 && strcasecmp(v, "off") != 0 &&
           strcasecmp(v, "false") != 0;
}

bool kernels_amx_wanted(const char *no_amx, const char *amx, bool hw_ok)
{
    if (switch_set(no_amx))
        return false;
    if (amx && *amx && !switch_set(amx))    /* CAIRN_AMX=0 (older spelling) */
        return false;
    return hw_ok;
}

/* cpuid + XCR0 say AMX tiles (bf16, int8) and the AVX512-BF16 conversions are there. */
static bool amx_hw(void)
{
    return level_ok[KERNELS_AVX512] && cpu.amx_tile && cpu.amx_int8 && cpu.amx_bf16 && cpu.avx512bf16;
}

static void build_tables(void)
{
    detect_cpu();
    memcpy(tables[KERNELS_SCALAR], ref_table, sizeof ref_table);
    for (int t = 0; t < QT_COUNT; t++)
        tables[KERNELS_SCALAR][t].name = type_names[t];
    level_ok[KERNELS_SCALAR] = true;

    bool avx2 = cpu.avx2 && cpu.fma && cpu.f16c && cpu.bmi2;
    bool avx512 = avx2 && cpu.avx512f && cpu.avx512bw && cpu.avx512vl && cpu.avx512dq && cpu.avx512vnni;
    memcpy(tables[KERNELS_AVX2], tables[KERNELS_SCALAR], sizeof tables[0]);
    if (avx2) {
        kernels_register_avx2(tables[KERNELS_AVX2]);
        level_ok[KERNELS_AVX2] = true;
    }
    memcpy(tables[KERNELS_AVX512], tables[KERNELS_AVX2], sizeof tables[0]);
    if (avx512 && level_ok[KERNELS_AVX2]) {
        level_ok[KERNELS_AVX512] = true;
        /* Linux hands out the tile data state only on request
         * (ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18); asked
         * only when AMX would be used. */
        amx_on = kernels_amx_wanted(getenv("CAIRN_NO_AMX"), getenv("CAIRN_AMX"), amx_hw()) &&
                 syscall(SYS_arch_prctl, 0x1023, 18) == 0;
        kernels_register_avx512(tables[KERNELS_AVX512], amx_on);
    }
    /* keep the invariants the users rely on, whatever a hook did */
    for (int l = KERNELS_SCALAR; l < KERNELS_LEVELS; l++) {
        for (int t = 0; t < QT_COUNT; t++) {
            qtype_traits *tr = &tables[l][t];
            tr->name = ref_table[t].to_float ? type_names[t] : NULL;
            tr->block_size = ref_table[t].block_size;
            tr->type_size = ref_table[t].type_size;
            tr->from_float = ref_table[t].from_float;
            if (!tr->quantize_act)
                tr->quantize_act = tr->from_float;
            if (!tr->gemm)
                tr->gemm_nr = tr->gemm_nc = 0;
        }
    }

    const char *env = getenv("CAIRN_KERNELS");
    char warn[160];
    selected = kernels_choose_level(level_ok, env, warn, sizeof warn);
    if (env && !names_level(env, &requested))
        requested = KERNELS_DEFAULT;
    if (warn[0])
        CAIRN_WARN("%s", warn);
}

static inline void ensure_init(void) { pthread_once(&init_once, build_tables); }

const char *kernels_init(void)
{
    ensure_init();
    return kernels_level_name(selected);
}

const char *kernels_isa(void) { return kernels_init(); }

kernels_level kernels_selected(void)
{
    ensure_init();
    return selected;
}

kernels_level kernels_requested(void)
{
    ensure_init();
    return requested;
}

bool kernels_amx(void)
{
    ensure_init();
    return amx_on && selected == KERNELS_AVX512;
}

bool kernels_amx_supported(void)
{
    ensure_init();
    return amx_hw();
}

bool kernels_level_supported(kernels_level level)
{
    ensure_init();
    return level > KERNELS_DEFAULT && level < KERNELS_LEVELS && level_ok[level];
}

const char *kernels_level_name(kernels_level level)
{
    switch (level) {
    case KERNELS_SCALAR: return "scalar";
    case KERNELS_AVX2: return "avx2";
    case KERNELS_AVX512: return "avx512";
    default: return "default";
    }
}

const cpu_features *kernels_cpu(void)
{
    ensure_init();
    return &cpu;
}

const qtype_traits *qtype_get_level(uint32_t type, kernels_level level)
{
    ensure_init();
    if (level == KERNELS_DEFAULT)
        level = selected;
    if (type >= QT_COUNT || level < KERNELS_SCALAR || level >= KERNELS_LEVELS || !level_ok[level])
        return NULL;
    const qtype_traits *t = &tables[level][type];
    return t->name ? t : NULL;
}

const qtype_traits *qtype_get(uint32_t type) { return qtype_get_level(type, KERNELS_DEFAULT); }
const qtype_traits *qtype_get_ref(uint32_t type) { return qtype_get_level(type, KERNELS_SCALAR); }

size_t qtype_row_size(uint32_t type, int64_t n)
{
    const qtype_traits *t = qtype_get_ref(type);
    if (!t || n < 0 || n % t->block_size != 0)
        return 0;
    size_t out;
    if (!cairn_mul_ok((size_t)(n / t->block_size), t->type_size, &out))
        return 0;
    return out;
}

/* ---- per-thread scratch (dispatch.h) ---- */

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
typedef struct { void *p; size_t size; } scratch_buf;

static void scratch_free(void *v)
{
    scratch_buf *s = v;
    cairn_free_aligned(s->p);
    cairn_free(s);
}
static void scratch_init(void) { pthread_key_create(&scratch_key, scratch_free); }

void *kernels_thread_scratch(size_t size)
{
    pthread_once(&scratch_once, scratch_init);
    scratch_buf *s = pthread_getspecific(scratch_key);
    if (!s) {
        if (!(s = cairn_calloc(1, sizeof *s)))
            return NULL;
        pthread_setspecific(scratch_key, s);
    }
    if (s->size < size) {
        cairn_free_aligned(s->p);
        s->size = 0;
        if (!(s->p = cairn_malloc_aligned(size, 64)))
            return NULL;
        s->size = size;
    }
    return s->p;
}

void kernels_gemm_by_dot(qt_vec_dot_fn dot, int n, float *s, size_t bs, const void *x, size_t bx, const void *y,
                         size_t by, int nr, int nc)
{
    for (int j = 0; j < nc; j++)
        for (int i = 0; i < nr; i++)
            dot(n, s + j * bs + i, (const uint8_t *)x + (size_t)i * bx, (const uint8_t *)y + (size_t)j * by);
}

size_t kernels_llc_pick(const char *env, long l3, long l2)
{
    if (env && *env) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(env, &end, 10);
        unsigned shift = 0;
        if (*end == 'K' || *end == 'k')
            shift = 10, end++;
        else if (*end == 'M' || *end == 'm')
            shift = 20, end++;
        else if (*end == 'G' || *end == 'g')
            shift = 30, end++;
        if (!errno && end != env && !*end && env[0] != '-' && v <= (SIZE_MAX >> shift))
            return (size_t)v << shift;
        CAIRN_WARN("CAIRN_LLC_BYTES=%s is not a size (bytes, or with K/M/G); using the CPU's cache size", env);
    }
    if (l3 > 0)
        return (size_t)l3;
    return l2 > 0 ? (size_t)l2 : (size_t)32 << 20;
}

size_t kernels_llc_bytes(void)
{
    return kernels_llc_pick(getenv("CAIRN_LLC_BYTES"), sysconf(_SC_LEVEL3_CACHE_SIZE), sysconf(_SC_LEVEL2_CACHE_SIZE));
}
