/* test_util.h - the few helpers every test program shares: failure counting, tolerance
 * comparison in XNNPACK's form |out - ref| <= max(atol, rtol * |ref|) with messages that
 * name the index and shape, and deterministic test data. A test exits non-zero on failure. */
#ifndef Q4_TEST_UTIL_H
#define Q4_TEST_UTIL_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/include/q4.h"

static int test_failures;
static int test_checks;

#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        test_checks++;                                                     \
        if (!(cond)) {                                                     \
            test_failures++;                                               \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);           \
            fprintf(stderr, __VA_ARGS__);                                  \
            fputc('\n', stderr);                                           \
        }                                                                  \
    } while (0)

/* Before main: the kernels Q4_ISA and Q4_GEMM_VARIANT name, as the front ends choose them
 * (`make test-isas` runs the kernel, gradient and golden tests with every ISA this CPU has). */
__attribute__((constructor)) static void test_select_kernels(void) {
    q4_error err = {0};
    if (q4_kernels_select(getenv("Q4_ISA"), getenv("Q4_GEMM_VARIANT"), &err)) {
        fprintf(stderr, "test: %s\n", err.message);
        exit(2);
    }
}

static inline int test_finish(const char *name) {
    if (test_failures) {
        fprintf(stderr, "%s: %d of %d checks FAILED\n", name, test_failures, test_checks);
        return 1;
    }
    printf("%s: all %d checks passed\n", name, test_checks);
    return 0;
}

/* Compares n floats; reports the first few mismatches. Returns the count of mismatches. */
static inline long compare_floats(const char *what, const float *out, const float *ref, long n, double atol, double rtol) {
    long bad = 0;
    double worst = 0.0;
    long worst_at = -1;
    for (long i = 0; i < n; i++) {
        double diff = fabs((double)out[i] - (double)ref[i]);
        double allowed = fmax(atol, rtol * fabs((double)ref[i]));
        if (!(diff <= allowed)) {
            if (bad < 3)
                fprintf(stderr, "  %s[%ld]: got %.9g, expected %.9g (|diff| %.3g > %.3g)\n", what, i, out[i], ref[i],
                        diff, allowed);
            bad++;
        }
        if (diff > worst || isnan(diff)) {
            worst = diff;
            worst_at = i;
        }
    }
    test_checks++;
    if (bad) {
        test_failures++;
        fprintf(stderr, "FAIL %s: %ld of %ld values out of tolerance (worst |diff| %.3g at %ld)\n", what, bad, n, worst,
                worst_at);
    }
    return bad;
}

/* deterministic values in [-1, 1) */
static inline float test_value(uint64_t seed, long i) {
    uint64_t z = seed * 0x9e3779b97f4a7c15ULL + (uint64_t)i * 0xbf58476d1ce4e5b9ULL + 0x94d049bb133111ebULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return (float)((double)(z >> 11) * 0x1.0p-53 * 2.0 - 1.0);
}

static inline void fill_values(float *x, long n, uint64_t seed) {
    for (long i = 0; i < n; i++) x[i] = test_value(seed, i);
}

/* A small learnable set: 150 training and 40 test images whose class shows in one colour
 * channel, the rest noise (session tests that must run anywhere, without CIFAR). */
#define SYNTHETIC_TRAIN 150
#define SYNTHETIC_TEST 40
typedef struct synthetic_data {
    uint8_t pixels[SYNTHETIC_TRAIN + SYNTHETIC_TEST][Q4_IMAGE_BYTES], labels[SYNTHETIC_TRAIN + SYNTHETIC_TEST];
    q4_dataset train, test;
} synthetic_data;

static inline void make_synthetic(synthetic_data *d) {
    for (int i = 0; i < SYNTHETIC_TRAIN + SYNTHETIC_TEST; i++) {
        d->labels[i] = (uint8_t)(i * 7 % 10);
        for (int p = 0; p < Q4_IMAGE_BYTES; p++) {
            float v = 128 + 60 * test_value(i, p) + 40 * ((p / 1024) == d->labels[i] % 3 ? 1 : -1);
            d->pixels[i][p] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    }
    q4_dataset tr = {SYNTHETIC_TRAIN, 10, 1, {{SYNTHETIC_TRAIN, d->pixels[0], d->labels, NULL}}};
    q4_dataset te = {SYNTHETIC_TEST, 10, 1, {{SYNTHETIC_TEST, d->pixels[SYNTHETIC_TRAIN], d->labels + SYNTHETIC_TRAIN, NULL}}};
    d->train = tr;
    d->test = te;
}

/* A session of `c` refined by `settings` (the text form, "name=value" lines; NULL: none) over
 * `train` and `test`; a test cannot go on without one, so failing to make it ends the program. */
static inline q4_session *test_session(q4_config *c, const char *settings, const q4_dataset *train, const q4_dataset *test) {
    q4_error err = {0};
    CHECK(!settings || q4_config_parse(c, settings, &err) == Q4_OK, "settings: %s", err.message);
    q4_session *s = q4_session_create(c, train, test, &err);
    CHECK(s != NULL, "session: %s", err.message);
    if (!s) exit(1);
    return s;
}

/* `n` training steps, one at a time */
static inline void test_steps(q4_session *s, int n) {
    q4_progress p;
    for (int i = 0; i < n; i++) CHECK(q4_session_train(s, 1, &p) == Q4_OK, "train: %s", q4_session_error(s));
}

#endif
