/* bench_iconv.c - `make bench-iconv`: milliseconds per evaluation forward pass of each conv and
 * linear layer of the network (batch 128), in floats (the algorithm the evaluation plan gives
 * it: direct, F(2x2) or F(4x4)) and in integer arithmetic (quantizing the input per image to
 * 8 bits, then the integer sums rescaled to floats, directly and, where the ISA has it, by
 * integer Winograd F(2x2)): the measurements behind which layers integer evaluation takes and
 * how (issue 26). Q4_ISA chooses the kernels (tests/test_util.h).
 * Usage: bench_iconv [threads [repetitions]] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/kernels/kernels.h"
#include "test_util.h"

static void *filled(size_t floats) {
    float *p = aligned_alloc(64, (floats * 4 + 63) / 64 * 64);
    if (!p) exit(1);
    fill_values(p, (long)floats, (int)floats);
    return p;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 1, reps = argc > 2 ? atoi(argv[2]) : 3, n = 128;
    q4_kernels k;
    q4_kernels_init(&k, 0);
    /* ci, co, side (0: a linear layer) */
    static const int layers[8][3] = {{3, 64, 32},   {64, 64, 32}, {64, 128, 16}, {128, 128, 16},
                                     {128, 256, 8}, {256, 256, 8}, {4096, 512, 0}, {512, 10, 0}};
    q4_compute cc;
    memset(&cc, 0, sizeof cc);
    cc.kernels = &k;
    cc.pool = q4_pool_create(threads);
    cc.scratch_floats = q4_gemm_scratch_floats(k.gemm);
    if (q4_winograd_scratch_floats(k.gemm, 256, 256) > cc.scratch_floats)
        cc.scratch_floats = q4_winograd_scratch_floats(k.gemm, 256, 256);
    cc.scratch = filled(cc.scratch_floats * threads);
    cc.shared_floats = (size_t)(256 + 16) * 256 * 9;
    if (q4_winograd_shared_floats(k.gemm, 256, 256) > cc.shared_floats)
        cc.shared_floats = q4_winograd_shared_floats(k.gemm, 256, 256);
    cc.shared = filled(cc.shared_floats);
    const q4_iconv_variant *v = k.iconv;
    printf("%s and %s, %d thread(s), batch %d: ms per evaluation forward pass (best of %d)\n", k.gemm->name, v->name,
           threads, n, reps);
    const q4_iwinograd_variant *wv = k.iwinograd;
    if (wv) printf("integer Winograd F(2x2): %s (conv2-6: the model's choice; the direct column beside it)\n", wv->name);
    printf("%-20s %-8s %8s %10s %10s %10s %10s %8s\n", "layer", "float", "ms", "quantize", "direct", "winograd", "int total",
           "ratio");
    double sum_float = 0, sum_int = 0;
    for (int L = 0; L < 8; L++) {
        int ci = layers[L][0], co = layers[L][1], h = layers[L][2], conv = h > 0, side = conv ? h : 1;
        int kp = (ci + 3) & ~3, pad = conv ? 1 : 0;
        long hw = (long)side * side;
        float *x = filled((size_t)ci * n * hw), *y = filled((size_t)co * n * hw), *w = filled((size_t)co * ci * (conv ? 9 : 1));
        float *bias = filled(co), scale[128];
        for (long i = 0; i < (long)ci * n * hw; i++)
            if (L > 0 && x[i] < 0) x[i] = -x[i]; /* after a ReLU */
        for (long i = 0; i < (long)co * ci * (conv ? 9 : 1); i++) w[i] = (float)((int)(w[i] * 7.0f)) * 0.01f;
        size_t act = (size_t)n * (side + 2 * pad) * (side + 2 * pad) * kp + (size_t)v->mr * kp;
        uint8_t *q = aligned_alloc(64, (act + 63) / 64 * 64);
        void *packed = aligned_alloc(64, (q4_iconv_packed_bytes(v, conv ? 9 : 1, kp, co) + 63) / 64 * 64);
        int wino = wv && conv && L > 0 && h % 2 == 0; /* as q4_vgg_set_integer chooses (4-bit weights) */
        int16_t *wpacked = wino ? aligned_alloc(64, (q4_iwinograd_packed_bytes(wv, kp, co) + 63) / 64 * 64) : NULL;
        if (wino) q4_iwinograd_pack(wv, wpacked, w, 0.01f, ci, kp, co);
        int32_t shift[512] = {0};
        q4_iconv_pack(v, packed, shift, w, 0.01f, conv ? 9 : 1, ci, kp, co);
        q4_iconv_rescale r = {scale, 0.01f, L == 0 ? shift : NULL, bias};
        int algorithm = conv ? q4_conv_plan(k.gemm, ci, co, h, h, Q4_PASS_EVAL_FORWARD) : 0;
        double best[4] = {1e9, 1e9, 1e9, 1e9};
        for (int rep = 0; rep < reps; rep++) {
            double t0 = q4_now();
            if (conv) q4_conv3x3_forward(&cc, y, x, w, bias, n, ci, co, h, h, algorithm);
            else q4_linear_forward(&cc, y, x, w, bias, n, ci, co);
            double t1 = q4_now();
            q4_iquantize(&cc, q, scale, x, n, ci, kp, side, side, pad, L == 0 ? 127 : 255, L == 0 ? 128 : 0);
            double t2 = q4_now();
            if (conv) q4_iconv3x3(&cc, y, &r, q, packed, n, kp, co, h, h);
            else q4_ilinear(&cc, y, &r, q, packed, n, kp, co);
            double t3 = q4_now();
            if (wino) q4_iconv3x3_winograd(&cc, y, &r, q, wpacked, n, kp, co, h, h, 7);
            double t4 = q4_now(), t[4] = {t1 - t0, t2 - t1, t3 - t2, t4 - t3};
            for (int i = 0; i < 4; i++) best[i] = t[i] < best[i] ? t[i] : best[i];
        }
        char name[32];
        if (conv) snprintf(name, sizeof name, "conv%d %d->%d %dx%d", L + 1, ci, co, h, h);
        else snprintf(name, sizeof name, "fc%d %d->%d", L - 5, ci, co);
        double integer = wino ? best[3] : best[2];
        char wcol[16] = "-";
        if (wino) snprintf(wcol, sizeof wcol, "%.2f", best[3] * 1e3);
        printf("%-20s %-8s %8.2f %10.2f %10.2f %10s %10.2f %7.2fx\n", name, conv ? q4_conv_algorithm_name(algorithm) : "GEMM",
               best[0] * 1e3, best[1] * 1e3, best[2] * 1e3, wcol, (best[1] + integer) * 1e3, best[0] / (best[1] + integer));
        sum_float += best[0];
        sum_int += best[1] + integer;
        free(x), free(y), free(w), free(bias), free(q), free(packed), free(wpacked);
    }
    printf("%-20s %-8s %8.2f %10s %10s %10s %10.2f %7.2fx\n", "all layers", "", sum_float * 1e3, "", "", "", sum_int * 1e3,
           sum_float / sum_int);
    return 0;
}
