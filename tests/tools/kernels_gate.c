/*
 * kernels_gate.c — runs a test again under a forced kernel level, or skips.
 *
 *   kernels_gate VARIANT TEST -- COMMAND [ARGS...]
 *
 * VARIANT is scalar, avx2 or noamx; ctest sets the matching switch
 * (CAIRN_KERNELS=scalar, CAIRN_KERNELS=avx2, CAIRN_NO_AMX=1) in the
 * environment of the `TEST@VARIANT` entries (tests/CMakeLists.txt). The gate
 * exits 77 (ctest: skipped) with the reason when the host cannot run the
 * variant, or when the variant is what the plain TEST entry already runs
 * here (a duplicate run would only cost time): so every host runs each
 * kernel path it has exactly once. Otherwise it checks that the switch took
 * effect (a forced level that did not force anything would make a green
 * run meaningless: exit 1) and execs COMMAND with the environment as is.
 */
#include "kernels/quant.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int skip(const char *test, const char *variant, const char *why)
{
    printf("SKIP: %s@%s: %s\n", test, variant, why);
    return 77;
}

int main(int argc, char **argv)
{
    if (argc < 5 || strcmp(argv[3], "--") != 0) {
        fprintf(stderr, "usage: kernels_gate scalar|avx2|noamx TEST -- COMMAND [ARGS...]\n");
        return 2;
    }
    const char *variant = argv[1], *test = argv[2];
    kernels_level best = KERNELS_SCALAR;
    for (kernels_level l = KERNELS_SCALAR; l < KERNELS_LEVELS; l++)
        if (kernels_level_supported(l))
            best = l;
    char why[256];
    if (!strcmp(variant, "scalar") || !strcmp(variant, "avx2")) {
        kernels_level want = !strcmp(variant, "scalar") ? KERNELS_SCALAR : KERNELS_AVX2;
        if (!kernels_level_supported(want))
            return skip(test, variant, "this CPU (or its OS) lacks AVX2 + FMA + F16C + BMI2");
        if (want == best) {
            snprintf(why, sizeof why, "%s is this host's default level: the plain %s entry runs it", variant, test);
            return skip(test, variant, why);
        }
        if (kernels_selected() != want || kernels_requested() != want) {
            fprintf(stderr, "%s@%s: CAIRN_KERNELS did not force %s (selected %s)\n", test, variant, variant,
                    kernels_isa());
            return 1;
        }
    } else if (!strcmp(variant, "noamx")) {
        if (best < KERNELS_AVX512)
            return skip(test, variant, "no AVX-512 on this host: there is no AMX to turn off");
        if (!kernels_amx_supported()) {
            snprintf(why, sizeof why, "no AMX on this host: the plain %s entry already runs AVX-512 without AMX", test);
            return skip(test, variant, why);
        }
        if (kernels_amx() || kernels_selected() != KERNELS_AVX512) {
            fprintf(stderr, "%s@noamx: CAIRN_NO_AMX=1 did not give AVX-512 without AMX (%s, AMX %s)\n", test,
                    kernels_isa(), kernels_amx() ? "on" : "off");
            return 1;
        }
    } else {
        fprintf(stderr, "kernels_gate: unknown variant %s\n", variant);
        return 2;
    }
    fprintf(stderr, "%s@%s: kernels %s, AMX %s\n", test, variant, kernels_isa(), kernels_amx() ? "on" : "off");
    fflush(stderr);
    execvp(argv[4], argv + 4);
    perror(argv[4]);
    return 1;
}
