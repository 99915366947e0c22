/* bench_conv.c - `make bench-conv`: milliseconds per pass of each convolution of the
 * network (batch 128) by the direct im2col GEMM, Winograd F(2x2, 3x3) and F(4x4, 3x3),
 * whatever the thresholds say: the measurements the variants' winograd_min_channels and
 * winograd4_min_channels come from (kernels/winograd.c). Q4_ISA and Q4_GEMM_VARIANT choose the
 * kernels (tests/test_util.h). Usage: bench_conv [threads [repetitions]] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/kernels/kernels.h"
#include "test_util.h"
static float *filled(size_t n) {
    float *p = aligned_alloc(64, (n * 4 + 63) / 64 * 64);
    if (!p)
        exit(1);
    fill_values(p, (long)n, (int)n);
    return p;
}
int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 1, reps = argc > 2 ? atoi(argv[2]) : 3, n = 128;
    q4_kernels k;
    q4_kernels_init(&k, 0);
    int layers[5][3] = {{64, 64, 32}, {64, 128, 16}, {128, 128, 16}, {128, 256, 8}, {256, 256, 8}};
    q4_gemm_variant forced[3] = {*k.gemm, *k.gemm, *k.gemm};
    forced[0].winograd_min_channels = 100000, forced[0].winograd4_min_channels = 0;
    forced[1].winograd_min_channels = 1, forced[1].winograd4_min_channels = 0;
    forced[2].winograd_min_channels = 1, forced[2].winograd4_min_channels = 1;
    q4_compute cc;
    memset(&cc, 0, sizeof cc);
    cc.pool = q4_pool_create(threads);
    cc.scratch_floats = q4_gemm_scratch_floats(k.gemm);
    if (q4_winograd_scratch_floats(&forced[2], 256, 256) > cc.scratch_floats)
        cc.scratch_floats = q4_winograd_scratch_floats(&forced[2], 256, 256);
    cc.scratch = filled(cc.scratch_floats * threads);
    cc.shared_floats = (size_t)(256 + 16) * 256 * 9;
    if (q4_winograd_shared_floats(&forced[2], 256, 256) > cc.shared_floats)
        cc.shared_floats = q4_winograd_shared_floats(&forced[2], 256, 256);
    cc.shared = filled(cc.shared_floats);
    cc.winograd_floats = q4_winograd_gradient_floats(&forced[2], 256, 256);
    cc.winograd = filled(cc.winograd_floats);
    printf("%s, %d thread(s), batch %d: ms per pass (best of %d)\n", k.gemm->name, threads, n, reps);
    printf("%-18s %-16s %8s %8s %8s\n", "layer", "pass", "direct", "F(2x2)", "F(4x4)");
    for (int L = 0; L < 5; L++) {
        int ci = layers[L][0], co = layers[L][1], h = layers[L][2];
        float *x = filled((size_t)ci * n * h * h), *y = filled((size_t)co * n * h * h),
              *dx = filled((size_t)ci * n * h * h), *w = filled((size_t)co * ci * 9), *fl = filled((size_t)co * ci * 9),
              *dw = filled((size_t)co * ci * 9), *db = filled(co);
        for (int pass = 0; pass < 3; pass++) {
            double t[3];
            for (int f = 0; f < 3; f++) {
                q4_kernels table = k;
                table.gemm = &forced[f];
                cc.kernels = &table;
                double best = 1e9;
                for (int r = 0; r < reps; r++) {
                    double t0 = q4_now();
                    int algorithm = f == 0 ? Q4_CONV_DIRECT : f == 1 ? Q4_CONV_F2 : Q4_CONV_F4;
                    if (pass == 0) /* as in evaluation: training's forward pass never takes F(4x4) */
                        q4_conv3x3_forward(&cc, y, x, w, NULL, n, ci, co, h, h, algorithm);
                    else if (pass == 1)
                        q4_conv3x3_backward_input(&cc, dx, y, w, fl, n, ci, co, h, h, algorithm);
                    else
                        q4_conv3x3_backward_weights(&cc, dw, db, y, x, n, ci, co, h, h, algorithm);
                    double dt = q4_now() - t0;
                    if (dt < best)
                        best = dt;
                }
                t[f] = best * 1e3;
            }
            char name[32];
            snprintf(name, sizeof name, "%d->%d %dx%d", ci, co, h, h);
            printf("%-18s %-16s %8.1f %8.1f %8.1f\n", name,
                   (const char *[]){"forward", "backward-input", "backward-weights"}[pass], t[0], t[1], t[2]);
        }
        free(x);
        free(y);
        free(dx);
        free(w);
        free(fl);
        free(dw);
        free(db);
    }
}
