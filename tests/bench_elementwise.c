/* bench_elementwise.c - milliseconds per call of each elementwise kernel over one model's worth of
 * floats (3.25M, the VGG's parameter count), the ISA's kernel beside the scalar reference. */
#include <stdio.h>
#include <stdlib.h>

#include "../core/kernels/kernels.h"
#include "../core/kernels/ref/ref.h"
#include "test_util.h"

#define N 3251018L

static double time_ms(void (*fn)(const q4_kernels *, float *, float *, float *, float *), const q4_kernels *k,
                      float *a, float *b, float *c, float *d) {
    double best = 1e30;
    for (int r = 0; r < 5; r++) {
        double t = q4_now();
        fn(k, a, b, c, d);
        t = (q4_now() - t) * 1e3;
        if (t < best) best = t;
    }
    return best;
}

static void run_sgd(const q4_kernels *k, float *w, float *g, float *m, float *v) {
    (void)v;
    q4_sgd_params p = {0.01f, 0.9f, 5e-4f, 1};
    k->sgd(w, g, m, N, &p);
}
static void run_adamw(const q4_kernels *k, float *w, float *g, float *m, float *v) {
    q4_adamw_params p = {0};
    p.decay = 0.9999f, p.beta1 = 0.9f, p.beta2 = 0.999f, p.one_minus_beta1 = 0.1f, p.one_minus_beta2 = 0.001f;
    p.bc2_sqrt = 0.5f, p.eps = 1e-8f, p.neg_step_size = -1e-3f;
    k->adamw(w, g, m, v, N, &p);
}
static void run_tanh(const q4_kernels *k, float *w, float *g, float *m, float *v) {
    (void)g, (void)m, (void)v;
    k->tanh_clip(w, N, 0.5f);
}
static void run_max_abs(const q4_kernels *k, float *w, float *g, float *m, float *v) {
    (void)g, (void)m, (void)v;
    volatile float x = k->max_abs(w, N);
    (void)x;
}
static void run_quantize(const q4_kernels *k, float *w, float *g, float *m, float *v) {
    (void)m, (void)v;
    k->quantize(g, w, N, 0.01f, 7.0f);
}
static void run_ema(const q4_kernels *k, float *w, float *g, float *m, float *v) {
    (void)m, (void)v;
    k->ema(g, w, N, 0.999f, 0.001f);
}

int main(void) {
    q4_kernels fast;
    q4_kernels_init(&fast, 0);
    float *a = malloc(N * sizeof(float)), *b = malloc(N * sizeof(float)), *c = calloc(N, sizeof(float)),
          *d = calloc(N, sizeof(float));
    for (long i = 0; i < N; i++) a[i] = (float)((i * 7919) % 1000 - 500) * 1e-4f, b[i] = a[i] * 0.1f;
    struct { const char *name; void (*fn)(const q4_kernels *, float *, float *, float *, float *); } runs[] = {
        {"sgd", run_sgd}, {"adamw", run_adamw}, {"tanh_clip", run_tanh}, {"max_abs", run_max_abs},
        {"quantize", run_quantize}, {"ema", run_ema}};
    printf("%-10s %10s %10s  (ms per call over %ld floats)\n", "kernel", fast.name, "scalar", N);
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++)
        printf("%-10s %10.2f %10.2f\n", runs[i].name, time_ms(runs[i].fn, &fast, a, b, c, d),
               time_ms(runs[i].fn, q4_kernels_reference(), a, b, c, d));
    free(a), free(b), free(c), free(d);
    return 0;
}
