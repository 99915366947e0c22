/* test_kernels.c - every fast kernel of this build against its scalar reference on ragged
 * sizes (1, 2, 3, 5, 7, 8, 15, 16, 17, 31, 33, ...): each GEMM variant with every operand
 * form, the convolution and linear layers against naive loops, and each elementwise
 * kernel. Also: GEMM and convolution results are bit-identical for 1, 2, 3 and 8 threads.
 * Tolerance for sums: |out - ref| <= 1e-5 * sqrt(K) * (sum of |terms|), the float bound. */
#include <time.h>

#include "../core/kernels/ref/ref.h"
#include "test_util.h"

static const int ragged[] = {1, 2, 3, 5, 7, 8, 15, 16, 17, 31, 33};
#define NRAGGED (int)(sizeof ragged / sizeof *ragged)

/* shared: room for A packed once (the model provides it); 0 tests the per-task packing path */
static q4_compute make_compute(const q4_kernels *k, int threads, size_t shared) {
    q4_compute cc;
    memset(&cc, 0, sizeof cc);
    cc.kernels = k;
    cc.pool = q4_pool_create(threads);
    cc.scratch_floats = q4_gemm_scratch_floats(k->gemm);
    if (shared && q4_winograd_scratch_floats(k->gemm, 256, 256) > cc.scratch_floats)
        cc.scratch_floats = q4_winograd_scratch_floats(k->gemm, 256, 256);
    cc.scratch = aligned_alloc(64, (size_t)threads * cc.scratch_floats * sizeof(float) + 64);
    if (shared) {
        cc.shared = aligned_alloc(64, shared * sizeof(float));
        cc.shared_floats = shared;
        cc.winograd_floats = q4_winograd_gradient_floats(k->gemm, 256, 256);
        cc.winograd = aligned_alloc(64, cc.winograd_floats * sizeof(float));
    }
    return cc;
}

static void free_compute(q4_compute *cc) {
    q4_pool_destroy(cc->pool);
    free(cc->scratch);
    free(cc->shared);
    free(cc->winograd);
}

/* reference with a per-element bound from the sum of |terms| */
static long compare_gemm(const char *what, const float *out, int M, int N, int K, const q4_operand *A,
                         const q4_operand *B, const float *c0, int accumulate) {
    long bad = 0;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = accumulate ? c0[(long)i * N + j] : 0.0, mag = fabs(s);
            for (int p = 0; p < K; p++) {
                double t = (double)q4_operand_at(A, i, p) * q4_operand_at(B, p, j);
                s += t;
                mag += fabs(t);
            }
            double diff = fabs(out[(long)i * N + j] - s), allowed = 1e-6 + 2e-6 * sqrt((double)K + 1) * mag;
            if (!(diff <= allowed)) {
                if (bad < 3)
                    fprintf(stderr, "  %s M%d N%d K%d [%d,%d]: got %.8g, expected %.8g\n", what, M, N, K, i, j,
                            out[(long)i * N + j], s);
                bad++;
            }
        }
    CHECK(bad == 0, "%s M%d N%d K%d: %ld elements out of tolerance", what, M, N, K, bad);
    return bad;
}

static void test_gemm_variant(const q4_gemm_variant *variant) {
    q4_kernels k;
    q4_kernels_init_with(&k, variant);
    q4_compute cc1 = make_compute(&k, 1, 0), cc3 = make_compute(&k, 3, 1 << 20);
    char what[96];
    /* dense operands in all four transpositions, ragged M, N, K; also K > kc */
    int ks[] = {1, 2, 3, 5, 7, 8, 15, 16, 17, 31, 33, 300};
    for (int mi = 0; mi < NRAGGED; mi++)
        for (int ni = 0; ni < NRAGGED; ni += 2)
            for (int ki = 0; ki < 12; ki += (mi % 3) + 1) {
                int M = ragged[mi], N = ragged[(ni + mi) % NRAGGED], K = ks[ki];
                float *a = malloc((size_t)M * K * 4), *b = malloc((size_t)K * N * 4), *c = malloc((size_t)M * N * 4);
                float *c0 = malloc((size_t)M * N * 4), *c3 = malloc((size_t)M * N * 4);
                fill_values(a, (long)M * K, M * 100 + K);
                fill_values(b, (long)K * N, N * 100 + K);
                fill_values(c0, (long)M * N, 5);
                for (int form = 0; form < 4; form++) {
                    q4_operand A = form & 1 ? q4_dense(a, 1, M) : q4_dense(a, K, 1);
                    q4_operand B = form & 2 ? q4_dense(b, 1, K) : q4_dense(b, N, 1);
                    int accumulate = (M + N + K + form) % 2;
                    memcpy(c, c0, (size_t)M * N * 4);
                    memcpy(c3, c0, (size_t)M * N * 4);
                    q4_gemm(&cc1, M, N, K, &A, &B, c, N, accumulate);
                    q4_gemm(&cc3, M, N, K, &A, &B, c3, N, accumulate);
                    snprintf(what, sizeof what, "%s dense form %d%s", variant->name, form, accumulate ? " +=" : "");
                    compare_gemm(what, c, M, N, K, &A, &B, c0, accumulate);
                    CHECK(memcmp(c, c3, (size_t)M * N * 4) == 0, "%s M%d N%d K%d: 1 and 3 threads differ", what, M, N, K);
                }
                free(a), free(b), free(c), free(c0), free(c3);
            }
    /* implicit im2col operands (convolution forward/backward-input and backward-weights forms) */
    int shapes[][4] = {{1, 1, 1, 1}, {2, 3, 5, 7}, {1, 2, 8, 8}, {3, 5, 4, 6}, {2, 1, 17, 3}, {1, 17, 2, 16}};
    for (int s = 0; s < 6; s++) {
        int n = shapes[s][0], ci = shapes[s][1], h = shapes[s][2], wd = shapes[s][3];
        long pixels = (long)n * h * wd;
        for (int mi = 0; mi < NRAGGED; mi += 3) {
            int M = ragged[mi];
            float *x = malloc((size_t)ci * pixels * 4), *a = malloc((size_t)M * (ci * 9 > pixels ? ci * 9 : pixels) * 4);
            float *c = malloc((size_t)M * (pixels > ci * 9 ? pixels : ci * 9) * 4), *c0 = calloc((size_t)M * (pixels + ci * 9), 4);
            fill_values(x, ci * pixels, s);
            fill_values(a, (long)M * (ci * 9 > pixels ? ci * 9 : pixels), s + 50);
            q4_operand X = {Q4_IM2COL, x, 0, 0, ci, n, h, wd};
            q4_operand A = q4_dense(a, ci * 9, 1);
            q4_gemm(&cc3, M, (int)pixels, ci * 9, &A, &X, c, pixels, 0);
            snprintf(what, sizeof what, "%s im2col n%d c%d %dx%d", variant->name, n, ci, h, wd);
            compare_gemm(what, c, M, (int)pixels, ci * 9, &A, &X, c0, 0);
            q4_operand XT = {Q4_IM2COL_T, x, 0, 0, ci, n, h, wd};
            q4_operand D = q4_dense(a, pixels, 1);
            q4_gemm(&cc3, M, ci * 9, (int)pixels, &D, &XT, c, ci * 9, 0);
            snprintf(what, sizeof what, "%s im2col^T n%d c%d %dx%d", variant->name, n, ci, h, wd);
            compare_gemm(what, c, M, ci * 9, (int)pixels, &D, &XT, c0, 0);
            free(x), free(a), free(c), free(c0);
        }
    }
    free_compute(&cc1);
    free_compute(&cc3);
}

/* Convolutions against the naive loops, through every path: the im2col GEMM (a context
 * without shared room), Winograd as the variant chooses it, and Winograd F(2x2, 3x3) and
 * F(4x4, 3x3) forced on (copies of the variant with other thresholds), wherever the shape
 * allows. Within a path, 1 and 8 threads must agree bit for bit. */
static void test_conv_layers(const q4_kernels *k) {
    int shapes[][5] = {{1, 1, 1, 1, 1},    {2, 3, 5, 6, 6},   {1, 4, 3, 5, 7},    {3, 17, 7, 4, 4},    {2, 16, 33, 8, 8},
                       {1, 3, 64, 32, 32}, {2, 31, 15, 3, 2}, {1, 128, 128, 4, 6}, {2, 130, 131, 8, 8}, {1, 129, 128, 6, 2}, {1, 64, 65, 4, 4},
                       /* 324 F(2x2) or 81 F(4x4) tiles: the weight gradient's chunks at 256 channels (256 or 64
                          tiles), the last one ragged */
                       {1, 256, 128, 36, 36}};
    enum { PATHS = 4 };
    const char *names[PATHS] = {"im2col GEMM", "as chosen", "F(2x2) forced", "F(4x4) forced"};
    q4_gemm_variant forced[PATHS] = {*k->gemm, *k->gemm, *k->gemm, *k->gemm};
    forced[2].winograd_min_channels = 1, forced[2].winograd4_min_channels = 0;
    forced[3].winograd_min_channels = 1, forced[3].winograd4_min_channels = 1;
    q4_kernels tables[PATHS];
    q4_compute paths[PATHS][2];
    /* the same two pools for every path (the WASM test build has 8 pthreads in all) */
    tables[3] = *k, tables[3].gemm = &forced[3];
    paths[3][0] = make_compute(&tables[3], 1, q4_winograd_shared_floats(&forced[3], 256, 256));
    paths[3][1] = make_compute(&tables[3], 8, q4_winograd_shared_floats(&forced[3], 256, 256));
    for (int p = 0; p < 3; p++) {
        tables[p] = *k, tables[p].gemm = p == 0 ? k->gemm : &forced[p];
        for (int t = 0; t < 2; t++) {
            paths[p][t] = paths[3][t];
            paths[p][t].kernels = &tables[p];
            if (p == 0) paths[p][t].shared = NULL, paths[p][t].shared_floats = 0, paths[p][t].winograd = NULL;
        }
    }
    for (int s = 0; s < 12; s++) {
        int n = shapes[s][0], ci = shapes[s][1], co = shapes[s][2], h = shapes[s][3], w = shapes[s][4];
        long xs = (long)ci * n * h * w, ys = (long)co * n * h * w, ws = (long)co * ci * 9;
        float *x = malloc(xs * 4), *wt = malloc(ws * 4), *b = malloc(co * 4), *dy = malloc(ys * 4);
        float *y = malloc(ys * 4), *yr = malloc(ys * 4), *y8 = malloc(ys * 4), *flip = malloc(ws * 4);
        float *dx = malloc(xs * 4), *dxr = malloc(xs * 4), *dx8 = malloc(xs * 4);
        float *dw = malloc(ws * 4), *dwr = malloc(ws * 4), *dw8 = malloc(ws * 4), *db = malloc(co * 4), *dbr = malloc(co * 4);
        fill_values(x, xs, 1 + s), fill_values(wt, ws, 2 + s), fill_values(b, co, 3 + s), fill_values(dy, ys, 4 + s);
        q4_ref_conv3x3_forward(yr, x, wt, b, n, ci, co, h, w);
        q4_ref_conv3x3_backward_input(dxr, dy, wt, n, ci, co, h, w);
        q4_ref_conv3x3_backward_weights(dwr, dbr, dy, x, n, ci, co, h, w);
        int done[5][5] = {{0}}; /* Winograd tile sides (forward, backward) already tested for this shape */
        for (int path = 0; path < PATHS; path++) {
            q4_compute *one = &paths[path][0], *eight = &paths[path][1];
            /* each pass by its plan under this path's thresholds (path 0: the direct GEMM everywhere) */
            int plan[Q4_PASSES];
            for (int pass = 0; pass < Q4_PASSES; pass++) plan[pass] = path ? q4_conv_plan(&forced[path], ci, co, h, w, pass) : 0;
            int mf = plan[Q4_PASS_TRAIN_FORWARD], mb = plan[Q4_PASS_BACKWARD_INPUT];
            CHECK(plan[Q4_PASS_EVAL_FORWARD] == mb && plan[Q4_PASS_BACKWARD_WEIGHTS] == mb,
                  "conv %d->%d %dx%d: evaluation and both backward passes take one form", ci, co, h, w);
            if (path && done[mf][mb]) continue;
            done[mf][mb] = 1;
            /* float sums of ci*9 terms; Winograd's transforms add roundings, F(4x4)'s (with
               constants up to 8 and 1/24) many more: see report_winograd_error */
            double tol = 4e-6 * sqrt(ci * 9.0) * 3 * (mf == 4 ? 4 : 1), tol_in = 4e-6 * sqrt(co * 9.0) * 3 * (mb == 4 ? 4 : 1);
            double tolw = 2e-6 * sqrt((double)n * h * w) * 3 * (mb == 4 ? 4 : 1);
            char what[128], part[160];
            const char *form[5] = {"im2col GEMM", "", "Winograd F(2x2)", "", "Winograd F(4x4)"};
            snprintf(what, sizeof what, "%s conv n%d ci%d co%d %dx%d (%s: forward %s, backward %s)", k->name, n, ci, co,
                     h, w, names[path], form[mf], form[mb]);
            q4_conv3x3_forward(one, y, x, wt, b, n, ci, co, h, w, mf);
            q4_conv3x3_forward(eight, y8, x, wt, b, n, ci, co, h, w, mf);
            snprintf(part, sizeof part, "%s forward", what);
            compare_floats(part, y, yr, ys, tol, tol);
            CHECK(memcmp(y, y8, ys * 4) == 0, "%s: thread counts differ", part);
            /* evaluation's forward pass takes the backward passes' form */
            q4_conv3x3_forward(one, y, x, wt, b, n, ci, co, h, w, plan[Q4_PASS_EVAL_FORWARD]);
            q4_conv3x3_forward(eight, y8, x, wt, b, n, ci, co, h, w, plan[Q4_PASS_EVAL_FORWARD]);
            snprintf(part, sizeof part, "%s forward (evaluation)", what);
            double tol_eval = 4e-6 * sqrt(ci * 9.0) * 3 * (mb == 4 ? 4 : 1);
            compare_floats(part, y, yr, ys, tol_eval, tol_eval);
            CHECK(memcmp(y, y8, ys * 4) == 0, "%s: thread counts differ", part);
            q4_conv3x3_backward_input(one, dx, dy, wt, flip, n, ci, co, h, w, plan[Q4_PASS_BACKWARD_INPUT]);
            q4_conv3x3_backward_input(eight, dx8, dy, wt, flip, n, ci, co, h, w, plan[Q4_PASS_BACKWARD_INPUT]);
            snprintf(part, sizeof part, "%s backward input", what);
            compare_floats(part, dx, dxr, xs, tol_in, tol_in);
            CHECK(memcmp(dx, dx8, xs * 4) == 0, "%s: thread counts differ", part);
            q4_conv3x3_backward_weights(one, dw, db, dy, x, n, ci, co, h, w, plan[Q4_PASS_BACKWARD_WEIGHTS]);
            q4_conv3x3_backward_weights(eight, dw8, db, dy, x, n, ci, co, h, w, plan[Q4_PASS_BACKWARD_WEIGHTS]);
            snprintf(part, sizeof part, "%s backward weights", what);
            compare_floats(part, dw, dwr, ws, tolw, tolw);
            compare_floats(part, db, dbr, co, tolw, tolw);
            CHECK(memcmp(dw, dw8, ws * 4) == 0, "%s: thread counts differ", part);
        }
        free(x), free(wt), free(b), free(dy), free(y), free(yr), free(y8), free(flip), free(dx), free(dxr), free(dx8);
        free(dw), free(dwr), free(dw8), free(db), free(dbr);
    }
    free_compute(&paths[3][0]), free_compute(&paths[3][1]);
}

/* The numerical error of each path against the convolution in double precision, on a
 * conv4-like layer (128 channels in and out, 16x16): the worst |error| over the largest
 * |exact value|, printed for the README, and bounded: measured with the scalar, AVX2 and
 * AVX-512 kernels, the worst over the three passes is 5.3e-7 for im2col, 5.8e-7 for F(2x2)
 * and 1.0e-5 for F(4x4) (its constants up to 8 and 1/24 cost about 20 times the roundings);
 * the bounds are twice those. */
static void report_winograd_error(const q4_kernels *k) {
    const int n = 2, ci = 128, co = 128, h = 16, w = 16;
    const long hw = (long)h * w, xs = (long)ci * n * hw, ys = (long)co * n * hw, ws = (long)co * ci * 9;
    long most = xs > ys ? (xs > ws ? xs : ws) : (ys > ws ? ys : ws);
    float *x = malloc(xs * 4), *wt = malloc(ws * 4), *dy = malloc(ys * 4), *out = malloc(most * 4);
    float *flip = malloc(ws * 4), *db = malloc(co * 4);
    double *ey = calloc(ys, 8), *edx = calloc(xs, 8), *edw = calloc(ws, 8);
    fill_values(x, xs, 91), fill_values(wt, ws, 92), fill_values(dy, ys, 93);
    for (int o = 0; o < co; o++)
        for (int i = 0; i < ci; i++)
            for (int b = 0; b < n; b++)
                for (int t = 0; t < 9; t++)
                    for (int yy = 0; yy < h; yy++)
                        for (int xx = 0; xx < w; xx++) {
                            int sy = yy + t / 3 - 1, sx = xx + t % 3 - 1;
                            if (sy < 0 || sy >= h || sx < 0 || sx >= w) continue;
                            long yi = ((long)o * n + b) * hw + yy * w + xx, xi = ((long)i * n + b) * hw + sy * w + sx;
                            double g = wt[((long)o * ci + i) * 9 + t];
                            ey[yi] += g * x[xi];
                            edx[xi] += g * dy[yi];
                            edw[((long)o * ci + i) * 9 + t] += (double)dy[yi] * x[xi];
                        }
    q4_gemm_variant forced[3] = {*k->gemm, *k->gemm, *k->gemm};
    forced[0].winograd_min_channels = 100000, forced[0].winograd4_min_channels = 0;
    forced[1].winograd_min_channels = 1, forced[1].winograd4_min_channels = 0;
    forced[2].winograd_min_channels = 1, forced[2].winograd4_min_channels = 1;
    const char *names[3] = {"im2col GEMM", "Winograd F(2x2, 3x3)", "Winograd F(4x4, 3x3)"};
    const double bound[3] = {1.1e-6, 1.2e-6, 2e-5};
    for (int p = 0; p < 3; p++) {
        q4_kernels table = *k;
        table.gemm = &forced[p];
        q4_compute cc = make_compute(&table, 2, q4_winograd_shared_floats(&forced[2], 256, 256));
        double worst[3] = {0};
        for (int pass = 0; pass < 3; pass++) {
            const double *exact = pass == 0 ? ey : pass == 1 ? edx : edw;
            long count = pass == 0 ? ys : pass == 1 ? xs : ws;
            if (pass == 0) /* as in evaluation */
                q4_conv3x3_forward(&cc, out, x, wt, NULL, n, ci, co, h, w,
                                   q4_conv_plan(&forced[p], ci, co, h, w, Q4_PASS_EVAL_FORWARD));
            if (pass == 1)
                q4_conv3x3_backward_input(&cc, out, dy, wt, flip, n, ci, co, h, w,
                                          q4_conv_plan(&forced[p], ci, co, h, w, Q4_PASS_BACKWARD_INPUT));
            if (pass == 2)
                q4_conv3x3_backward_weights(&cc, out, db, dy, x, n, ci, co, h, w,
                                            q4_conv_plan(&forced[p], ci, co, h, w, Q4_PASS_BACKWARD_WEIGHTS));
            double err = 0, scale = 0;
            for (long e = 0; e < count; e++) err = fmax(err, fabs(out[e] - exact[e])), scale = fmax(scale, fabs(exact[e]));
            worst[pass] = err / scale;
            CHECK(worst[pass] <= bound[p], "%s %s: error %.3g of the largest value, above %.2g", k->name, names[p],
                  worst[pass], bound[p]);
        }
        printf("  %s %-22s error against double (conv 128->128, 16x16): forward %.2g, backward input %.2g, "
               "backward weights %.2g\n", k->name, names[p], worst[0], worst[1], worst[2]);
        free_compute(&cc);
    }
    free(x), free(wt), free(dy), free(out), free(flip), free(db), free(ey), free(edx), free(edw);
}

/* The Winograd transforms against the reference's, bit for bit, on every lane count up to
 * the widest tile (vector bodies and tails), with output strides wider than the lanes; and
 * the reference against the transforms' definition (B^T d B, A^T M A, A dY A^T) in double,
 * for F(2x2, 3x3) and F(4x4, 3x3). */
static void test_winograd_transforms(const q4_kernels *k) {
    const q4_kernels *r = q4_kernels_reference();
    static const double B2[4][4] = {{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}}; /* B^T */
    static const double A2[2][4] = {{1, 1, 1, 0}, {0, 1, -1, -1}};                              /* A^T */
    static const double B4[6][6] = {{4, 0, -5, 0, 1, 0}, {0, -4, -4, 1, 1, 0}, {0, 4, -4, -1, 1, 0},
                                    {0, -2, -1, 2, 1, 0}, {0, 2, -1, -2, 1, 0}, {0, 4, 0, -5, 0, 1}};
    static const double A4[4][6] = {{1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0}, {0, 1, 1, 4, 4, 0}, {0, 1, -1, 8, -8, 1}};
    float in[36 * 32], out_r[36 * 40], out_k[36 * 40];
    for (int m = 2; m <= 4; m += 2) {
        const int a = m + 2;
        for (int lanes = 1; lanes <= 32; lanes++) {
            long stride = lanes + 3;
            double BT[6][6], AT[4][6];
            for (int i = 0; i < a; i++)
                for (int j = 0; j < a; j++) {
                    BT[i][j] = m == 2 ? B2[i][j] : B4[i][j];
                    if (i < m) AT[i][j] = m == 2 ? A2[i][j] : A4[i][j];
                }
            fill_values(in, a * a * lanes, 70 + lanes);
            memset(out_r, 0, sizeof out_r), memset(out_k, 0, sizeof out_k);
            r->winograd_input(m, out_r, stride, in, lanes), k->winograd_input(m, out_k, stride, in, lanes);
            CHECK(memcmp(out_r, out_k, sizeof out_r) == 0, "%s winograd_input m%d differs with %d lanes", k->name, m, lanes);
            for (int l = 0; l < lanes; l++)
                for (int i = 0; i < a; i++)
                    for (int j = 0; j < a; j++) {
                        double v = 0;
                        for (int p = 0; p < a; p++)
                            for (int q = 0; q < a; q++) v += BT[i][p] * in[(a * p + q) * lanes + l] * BT[j][q];
                        CHECK(fabs(out_r[(a * i + j) * stride + l] - v) <= 1e-6 * (1 + fabs(v)) * a * a, "winograd_input m%d: B^T d B wrong", m);
                    }
            r->winograd_output(m, out_r, in, lanes, lanes), k->winograd_output(m, out_k, in, lanes, lanes);
            CHECK(memcmp(out_r, out_k, m * m * lanes * 4) == 0, "%s winograd_output m%d differs with %d lanes", k->name, m,
                  lanes);
            for (int l = 0; l < lanes; l++)
                for (int i = 0; i < m; i++)
                    for (int j = 0; j < m; j++) {
                        double v = 0;
                        for (int p = 0; p < a; p++)
                            for (int q = 0; q < a; q++) v += AT[i][p] * in[(a * p + q) * lanes + l] * AT[j][q];
                        CHECK(fabs(out_r[(m * i + j) * lanes + l] - v) <= 1e-6 * (1 + fabs(v)) * a * a, "winograd_output m%d: A^T M A wrong", m);
                    }
            /* the moves between image rows and lanes: the definition, and the reference's bits */
            for (int count = m; count <= a; count += 2) {
                memset(out_r, 0, sizeof out_r), memset(out_k, 0, sizeof out_k);
                r->winograd_spread(m, count, out_r, stride, in, lanes);
                k->winograd_spread(m, count, out_k, stride, in, lanes);
                long wrong = 0;
                for (int q = 0; q < count; q++)
                    for (int j = 0; j < lanes; j++) wrong += out_k[q * stride + j] != in[m * j + q];
                CHECK(wrong == 0 && memcmp(out_r, out_k, sizeof out_r) == 0, "%s winograd_spread m%d count %d, %d lanes",
                      k->name, m, count, lanes);
            }
            for (int i = 0; i < 36 * 40; i++) out_r[i] = out_k[i] = -1.0f;
            r->winograd_merge(m, out_r, in, stride, lanes, 0.375f);
            k->winograd_merge(m, out_k, in, stride, lanes, 0.375f);
            long wrong = out_k[m * lanes] != -1.0f;
            for (int q = 0; q < m; q++)
                for (int j = 0; j < lanes; j++) wrong += out_k[m * j + q] != in[q * stride + j] + 0.375f;
            CHECK(wrong == 0 && memcmp(out_r, out_k, sizeof out_r) == 0, "%s winograd_merge m%d, %d lanes", k->name, m,
                  lanes);
            memset(out_r, 0, sizeof out_r), memset(out_k, 0, sizeof out_k);
            r->winograd_gradient(m, out_r, stride, in, lanes), k->winograd_gradient(m, out_k, stride, in, lanes);
            CHECK(memcmp(out_r, out_k, sizeof out_r) == 0, "%s winograd_gradient m%d differs with %d lanes", k->name, m,
                  lanes);
            for (int l = 0; l < lanes; l++)
                for (int i = 0; i < a; i++)
                    for (int j = 0; j < a; j++) {
                        double v = 0;
                        for (int p = 0; p < m; p++)
                            for (int q = 0; q < m; q++) v += AT[p][i] * in[(m * p + q) * lanes + l] * AT[q][j];
                        CHECK(fabs(out_r[(a * i + j) * stride + l] - v) <= 1e-6 * (1 + fabs(v)) * a * a, "winograd_gradient m%d: A dY A^T wrong", m);
                    }
        }
    }
}

static void test_elementwise(const q4_kernels *k) {
    const q4_kernels *r = q4_kernels_reference();
    long sizes[] = {1, 2, 3, 5, 7, 8, 15, 16, 17, 31, 33, 100, 1000, 4099};
    char what[96];
    for (int s = 0; s < 14; s++) {
        long n = sizes[s];
        float *x = malloc(n * 4), *y = malloc(n * 4), *a = malloc(n * 4), *b = malloc(n * 4), *da = malloc(n * 4);
        fill_values(x, n, 10 + s);
        fill_values(da, n, 20 + s);
        snprintf(what, sizeof what, "%s n=%ld", k->name, n);
        double sr = r->sum(x, n), sk = k->sum(x, n);
        CHECK(fabs(sr - sk) <= 1e-12 * n, "%s sum %.17g vs %.17g", what, sk, sr);
        CHECK(fabs(r->centered_sum_squares(x, n, 0.1) - k->centered_sum_squares(x, n, 0.1)) <= 1e-12 * n,
              "%s centered_sum_squares", what);
        CHECK(fabs(r->sum_squares(x, n) - k->sum_squares(x, n)) <= 1e-12 * n, "%s sum_squares", what);
        r->add_scalar(a, x, n, 0.37f), k->add_scalar(b, x, n, 0.37f);
        CHECK(memcmp(a, b, n * 4) == 0, "%s add_scalar differs from the reference", what);
        r->scale(a, x, n, -1.7f), k->scale(b, x, n, -1.7f);
        CHECK(memcmp(a, b, n * 4) == 0, "%s scale differs", what);
        r->affine_relu(a, x, n, 1.3f, 0.2f), k->affine_relu(b, x, n, 1.3f, 0.2f);
        CHECK(memcmp(a, b, n * 4) == 0, "%s affine_relu differs", what);
        memcpy(b, x, n * 4);
        k->affine_relu(b, b, n, 1.3f, 0.2f); /* in place */
        CHECK(memcmp(a, b, n * 4) == 0, "%s affine_relu in place differs", what);
        double s1[2] = {0.5, 0.25}, s2[2] = {0.5, 0.25};
        r->affine_relu_backward_sums(s1, da, x, n, 1.3f, 0.2f, 0.05f, 1.7f);
        k->affine_relu_backward_sums(s2, da, x, n, 1.3f, 0.2f, 0.05f, 1.7f);
        CHECK(fabs(s1[0] - s2[0]) <= 1e-12 * n && fabs(s1[1] - s2[1]) <= 1e-12 * n, "%s backward sums", what);
        r->affine_relu_backward_apply(a, da, x, n, 1.3f, 0.2f, 0.05f, 1.7f, 0.9f, 0.01f, -0.02f);
        memcpy(b, x, n * 4);
        k->affine_relu_backward_apply(b, da, b, n, 1.3f, 0.2f, 0.05f, 1.7f, 0.9f, 0.01f, -0.02f);
        CHECK(memcmp(a, b, n * 4) == 0, "%s backward apply (in place) differs", what);
        CHECK(r->max_abs(x, n) == k->max_abs(x, n), "%s max_abs", what);
        float scale = (r->max_abs(x, n) + 1e-8f) / 7.0f;
        r->quantize(a, x, n, scale, Q4_MAX_LEVEL), k->quantize(b, x, n, scale, Q4_MAX_LEVEL);
        CHECK(memcmp(a, b, n * 4) == 0, "%s quantize differs", what);
        /* AdamW: identical operations in identical order */
        float *w1 = malloc(n * 4), *w2 = malloc(n * 4), *m1 = malloc(n * 4), *m2 = malloc(n * 4), *v1 = malloc(n * 4),
              *v2 = malloc(n * 4);
        fill_values(w1, n, 30 + s), fill_values(m1, n, 31 + s), fill_values(v1, n, 32 + s);
        for (long i = 0; i < n; i++) v1[i] = fabsf(v1[i]) * 1e-3f, m1[i] *= 1e-2f;
        memcpy(w2, w1, n * 4), memcpy(m2, m1, n * 4), memcpy(v2, v1, n * 4);
        q4_adamw_params p = {0.9999995f, 0.9f, 0.1f, 0.999f, 0.001f, 1e-8f, -0.0052631578f, 0.0447102f};
        r->adamw(w1, da, m1, v1, n, &p), k->adamw(w2, da, m2, v2, n, &p);
        CHECK(memcmp(w1, w2, n * 4) == 0 && memcmp(m1, m2, n * 4) == 0 && memcmp(v1, v2, n * 4) == 0,
              "%s adamw differs", what);
        /* SGD (plain and Nesterov) and the moving average: identical operations in identical order */
        for (int nesterov = 0; nesterov < 2; nesterov++) {
            fill_values(w1, n, 33 + s), fill_values(m1, n, 34 + s);
            memcpy(w2, w1, n * 4), memcpy(m2, m1, n * 4);
            q4_sgd_params sp = {0.05f, 0.9f, 5e-4f, nesterov};
            r->sgd(w1, da, m1, n, &sp), k->sgd(w2, da, m2, n, &sp);
            CHECK(memcmp(w1, w2, n * 4) == 0 && memcmp(m1, m2, n * 4) == 0, "%s sgd (nesterov %d) differs", what, nesterov);
        }
        memcpy(w2, w1, n * 4);
        r->ema(w1, da, n, 0.999f, 1.0f - 0.999f), k->ema(w2, da, n, 0.999f, 1.0f - 0.999f);
        CHECK(memcmp(w1, w2, n * 4) == 0, "%s ema differs", what);
        /* tanh: a few ulp from libm */
        for (long i = 0; i < n; i++) w1[i] = x[i] * 4.0f, w2[i] = w1[i];
        r->tanh_clip(w1, n, 3.0f), k->tanh_clip(w2, n, 3.0f);
        compare_floats("tanh_clip", w2, w1, n, 1e-7, 4e-7);
        free(w1), free(w2), free(m1), free(m2), free(v1), free(v2);
        free(x), free(y), free(a), free(b), free(da);
    }
    /* tanh over its whole range, including both branches and saturation */
    long n = 20001;
    float *t1 = malloc(n * 4), *t2 = malloc(n * 4);
    for (long i = 0; i < n; i++) t1[i] = t2[i] = (float)(i - 10000) * 0.003f;
    r->tanh_clip(t1, n, 3.0f), k->tanh_clip(t2, n, 3.0f);
    compare_floats("tanh_clip over [-30, 30]", t2, t1, n, 1e-7, 4e-7);
    free(t1), free(t2);
    /* max pooling: planes x h x w, with ties (quantized values) */
    int dims[][2] = {{2, 2}, {4, 6}, {6, 4}, {8, 8}, {2, 16}, {4, 32}, {32, 32}, {6, 48}};
    for (int d = 0; d < 8; d++) {
        int h = dims[d][0], w = dims[d][1];
        long planes = 3, in = planes * h * w, out = in / 4;
        float *x = malloc(in * 4), *o1 = malloc(out * 4), *o2 = malloc(out * 4), *g = malloc(out * 4);
        float *a1 = malloc(in * 4), *a2 = malloc(in * 4);
        fill_values(x, in, 40 + d);
        /* ties and zeros, as after ReLU (no -0: pooling inputs are ReLU outputs) */
        for (long i = 0; i < in; i++) x[i] = (i % 3 ? rintf(x[i] * 2.0f) : fmaxf(x[i], 0.0f)) + 0.0f;
        fill_values(g, out, 50 + d);
        r->maxpool2_forward(o1, x, planes, h, w), k->maxpool2_forward(o2, x, planes, h, w);
        snprintf(what, sizeof what, "%s maxpool %dx%d", k->name, h, w);
        CHECK(memcmp(o1, o2, out * 4) == 0, "%s forward differs", what);
        memcpy(a1, x, in * 4), memcpy(a2, x, in * 4);
        r->maxpool2_backward(a1, g, planes, h, w), k->maxpool2_backward(a2, g, planes, h, w);
        CHECK(memcmp(a1, a2, in * 4) == 0, "%s backward differs", what);
        free(x), free(o1), free(o2), free(g), free(a1), free(a2);
    }
}

/* the pool: every task of every run runs exactly once, on a thread index below the count, and
 * the caller returns only when all are done; runs follow each other at once (workers may still
 * be finishing the last one), after a pause (they are asleep), and with 1 to 40 tasks */
typedef struct pool_check {
    int run, threads;
    int done[40];
    long bad;
} pool_check;

static void pool_check_task(void *context, int task, int thread) {
    pool_check *p = context;
    if (thread < 0 || thread >= p->threads || p->done[task] != p->run - 1) p->bad++;
    p->done[task] = p->run;
}

static void test_pool(void) {
    const int counts[] = {2, 3, 8};
    for (int c = 0; c < 3; c++) {
        pool_check p = {.threads = counts[c]};
        q4_pool *pool = q4_pool_create(p.threads);
        CHECK(pool && q4_pool_threads(pool) == p.threads, "pool of %d threads", p.threads);
        if (!pool) continue;
        long missing = 0;
        for (p.run = 1; p.run <= 5000; p.run++) {
            int tasks = 1 + p.run % 40;
            if (p.run % 1000 == 0) {
                struct timespec pause = {0, 5000000}; /* 5 ms: the workers are asleep */
                nanosleep(&pause, NULL);
            }
            for (int t = 0; t < tasks; t++) p.done[t] = p.run - 1;
            q4_pool_run(pool, tasks, pool_check_task, &p);
            for (int t = 0; t < tasks; t++) missing += p.done[t] != p.run;
        }
        q4_pool_destroy(pool);
        CHECK(p.bad == 0 && missing == 0, "pool of %d threads: %ld tasks run twice or on a bad thread, %ld not run",
              p.threads, p.bad, missing);
    }
    /* the probe the page uses to offer threads: it runs and reports a time (never a speed:
     * timings are benchmarks' business, not a test's) */
    for (int threads = 1; threads <= 3; threads++) {
        double seconds = q4_threads_probe(threads);
        CHECK(seconds > 0 && seconds < 60, "q4_threads_probe(%d) = %g s", threads, seconds);
    }
}

/* The rooms the model allocates (q4_winograd_*_floats for 256 channels, as vgg.c asks) must
 * let every layer of the network take Winograd: when a room is short, the convolution falls
 * back to the direct GEMM with the same results, so only this test (or a slower bench) sees it.
 * Every ISA's variants, forward (both forms) and weight gradient, with the variant's thresholds. */
static void test_winograd_rooms(const q4_kernels *k) {
    static const int layers[5][3] = {{64, 64, 32}, {64, 128, 16}, {128, 128, 16}, {128, 256, 8}, {256, 256, 8}};
    const int n = 2;
    q4_compute cc = make_compute(k, 2, q4_winograd_shared_floats(k->gemm, 256, 256));
    for (int l = 0; l < 5; l++) {
        int ci = layers[l][0], co = layers[l][1], h = layers[l][2];
        long xs = (long)ci * n * h * h, ys = (long)co * n * h * h, ws = (long)co * ci * 9;
        float *x = malloc(xs * 4), *y = malloc(ys * 4), *w = malloc(ws * 4), *dw = malloc(ws * 4);
        fill_values(x, xs, 5 + l), fill_values(y, ys, 6 + l), fill_values(w, ws, 7 + l);
        /* the plan (README, the per-layer table of the convolution paths): conv2-6 take F(2x2) in
         * the training forward pass and F(4x4) in evaluation and the backward passes, with every
         * variant; conv1 (3 channels in) none */
        for (int pass = 0; pass < Q4_PASSES; pass++) {
            int m = q4_conv_plan(k->gemm, ci, co, h, h, pass), planned = pass == Q4_PASS_TRAIN_FORWARD ? 2 : 4;
            CHECK(m == planned, "%s: conv %d->%d %dx%d takes %s in pass %d, not F(%dx%d)", k->gemm->name, ci, co, h, h,
                  q4_conv_algorithm_name(m), pass, planned, planned);
            int done = pass == Q4_PASS_BACKWARD_WEIGHTS ? q4_conv3x3_winograd_backward_weights(&cc, dw, y, x, n, ci, co, h, h, m)
                                                        : q4_conv3x3_winograd(&cc, y, x, w, NULL, n, ci, co, h, h, m);
            CHECK(done, "%s: conv %d->%d %dx%d cannot take %s in pass %d in the rooms the model allocates",
                  k->gemm->name, ci, co, h, h, q4_conv_algorithm_name(m), pass);
        }
        free(x), free(y), free(w), free(dw);
    }
    for (int pass = 0; pass < Q4_PASSES; pass++)
        CHECK(q4_conv_plan(k->gemm, 3, 64, 32, 32, pass) == Q4_CONV_DIRECT, "%s: conv1 (3 channels in) takes Winograd",
              k->gemm->name);
    free_compute(&cc);
}

/* The table that gives a CPU family its default ISA: a row counts only for its vendor and
 * family and only where that ISA is available */
static void test_isa_preference(void) {
    const q4_isa_preference *zen5 = q4_isa_preference_find("AuthenticAMD", 0x1a, "avx512 avx2 scalar");
    CHECK(zen5 && !strcmp(zen5->isa, "avx512") && strstr(zen5->why, "images/s"),
          "AMD family 1Ah with AVX-512: %s", zen5 ? zen5->isa : "no row");
    CHECK(!q4_isa_preference_find("AuthenticAMD", 0x1a, "avx2 scalar"), "a CPU without AVX-512 took the AVX-512 row");
    CHECK(!q4_isa_preference_find("AuthenticAMD", 0x1a, "xavx512 avx2"), "a row matched part of an ISA's name");
    CHECK(!q4_isa_preference_find("GenuineIntel", 0x1a, "avx512 avx2 scalar"), "another vendor took AMD's row");
    CHECK(!q4_isa_preference_find("AuthenticAMD", 0x19, "avx512 avx2 scalar"), "family 19h took 1Ah's row");
    const char *choice = q4_kernels_choice();
    CHECK(choice && *choice, "no reason given for the ISA");
    printf("default ISA: %s\n", choice);
}

/* ------------------------------------------------------------ integer arithmetic (issue 26) */

static uint64_t mix(uint64_t x) {
    x ^= x >> 33, x *= 0xff51afd7ed558ccdULL, x ^= x >> 33, x *= 0xc4ceb9fe1a85ec53ULL;
    return x ^ (x >> 33);
}

/* levels in [-top, top] as floats times scale (as the quantizer gives them); every 7th one at an end */
static void fill_levels(float *w, long n, int top, float scale, uint64_t seed) {
    for (long i = 0; i < n; i++) {
        uint64_t r = mix(seed * 1000003 + (uint64_t)i);
        int level = i % 7 == 3 ? (i % 2 ? top : -top) : (int)(r % (uint64_t)(2 * top + 1)) - top;
        w[i] = (float)level * scale;
    }
}

/* bytes in 0..255, every 5th one at an end (0 or 255), or all 255 (the largest sums) */
static void fill_bytes(uint8_t *x, long n, uint64_t seed, int all_top) {
    for (long i = 0; i < n; i++) x[i] = all_top ? 255 : i % 5 == 1 ? (i % 2 ? 255 : 0) : (uint8_t)mix(seed + (uint64_t)i);
}

/* The microkernel against plain sums: ragged channel counts, one and nine taps, levels up to
 * 63 (7-bit weights) with every activation 255: where AVX2's int16 pairs would saturate first. */
static void test_iconv_ukernel(const q4_iconv_variant *v) {
    static const int ks[] = {4, 8, 12, 20, 36, 68, 132};
    static const int tops[] = {7, 63, 1};
    int mr = v->mr, nr = v->nr;
    CHECK(mr <= 16 && nr <= 64 && (v->kgroup == 4 || v->kgroup == 2) && (v->wbytes == 1 || v->wbytes == 2),
          "%s: tile %dx%d, group %d, %d bytes: outside what the driver handles", v->name, mr, nr, v->kgroup, v->wbytes);
    for (int ki = 0; ki < (int)(sizeof ks / sizeof *ks); ki++)
        for (int taps = 1; taps <= 9; taps += 8)
            for (int ti = 0; ti < 3; ti++) {
                int k = ks[ki], top = tops[ti], all_top = ti == 1;
                long stride = k + 4, offsets[9], span = 0;
                for (int t = 0; t < taps; t++) {
                    offsets[t] = (long)t * (mr * stride + 3) ;
                    span = offsets[t] + mr * stride;
                }
                uint8_t *a = malloc((size_t)span + 16);
                float *w = malloc((size_t)nr * k * taps * sizeof(float));
                void *packed = aligned_alloc(64, (q4_iconv_packed_bytes(v, taps, k, nr) + 63) / 64 * 64);
                int32_t *c = malloc((size_t)mr * (nr + 3) * sizeof(int32_t));
                fill_bytes(a, span + 16, (uint64_t)(k * 31 + taps), all_top);
                fill_levels(w, (long)nr * k * taps, top, 0.25f, (uint64_t)(k + taps + top));
                if (all_top)
                    for (long i = 0; i < (long)nr * k * taps; i++) w[i] = (float)(i % 3 ? top : -top) * 0.25f;
                q4_iconv_pack(v, packed, NULL, w, 0.25f, taps, k, k, nr);
                v->ukernel(taps, offsets, k, a, stride, packed, c, nr + 3, NULL);
                /* the same tile rescaled to floats, channel-major (rows of mr + 5: a gap after each) */
                float scale[16], bias[64], *y = malloc((size_t)nr * (mr + 5) * sizeof(float));
                int32_t shift[64];
                for (int i = 0; i < mr; i++) scale[i] = 0.001f * (float)(i + 1);
                for (int j = 0; j < nr; j++) shift[j] = 128 * (j - 3), bias[j] = 0.5f * (float)j - 1.0f;
                q4_iconv_epilogue e = {y, mr + 5, scale, shift, bias};
                v->ukernel(taps, offsets, k, a, stride, packed, NULL, 0, &e);
                long wrong = 0;
                for (int i = 0; i < mr; i++)
                    for (int j = 0; j < nr; j++)
                        wrong += y[j * (mr + 5) + i] != (float)(c[i * (nr + 3) + j] - shift[j]) * scale[i] + bias[j];
                CHECK(wrong == 0, "%s k %d taps %d: %ld values of the rescaled tile wrong", v->name, k, taps, wrong);
                free(y);
                long bad = 0;
                for (int i = 0; i < mr; i++)
                    for (int j = 0; j < nr; j++) {
                        int64_t sum = 0;
                        for (int t = 0; t < taps; t++)
                            for (int kk = 0; kk < k; kk++)
                                sum += (int64_t)a[offsets[t] + i * stride + kk] * (int64_t)lrintf(w[((long)j * k + kk) * taps + t] / 0.25f);
                        bad += c[i * (nr + 3) + j] != sum;
                    }
                CHECK(bad == 0, "%s k %d taps %d levels to %d%s: %ld sums wrong", v->name, k, taps, top,
                      all_top ? " (every activation 255)" : "", bad);
                free(a);
                free(w);
                free(packed);
                free(c);
            }
}

/* The quantizing transpose against the reference, bit for bit: ragged pixel counts, 16 to 48
 * channels, unsigned and signed (zero point 128), values past the clamp and at ties */
static void test_iquantize_rows(const q4_kernels *k) {
    enum { CH = 48, PX = 37 };
    float x[CH * 40];
    uint8_t a[PX * (CH + 5)], b[PX * (CH + 5)];
    fill_values(x, CH * 40, 5);
    for (int i = 0; i < CH * 40; i += 7) x[i] = (float)(i % 9) * 0.25f - 1.0f; /* ties (k + 0.5) after scaling by 2 */
    for (int ch = 16; ch <= CH; ch += 16)
        for (int count = 1; count <= PX; count += count < 18 ? 1 : 5)
            for (int s = 0; s < 2; s++) {
                int low = s ? -127 : 0, high = s ? 127 : 255, zero = s ? 128 : 0;
                float inv = s ? 200.0f : 2.0f;
                memset(a, 0xee, sizeof a), memset(b, 0xee, sizeof b);
                q4_ref_iquantize_rows(a, ch + 5, x, 40, ch, count, inv, low, high, zero);
                k->iquantize_rows(b, ch + 5, x, 40, ch, count, inv, low, high, zero);
                CHECK(memcmp(a, b, sizeof a) == 0, "%s iquantize_rows: %d channels, %d pixels, zero point %d differ", k->name,
                      ch, count, zero);
            }
}

/* The layers: q4_iquantize, q4_iconv3x3 and q4_ilinear (sums, and rescaled to floats) against plain loops
 * (q4_ref_iconv3x3), on ragged channel counts and images, the same for 1 and 3 threads. */
static void test_integer_layers(const q4_kernels *k) {
    static const struct { int n, ci, co, size, is_signed; } shapes[] = {
        {2, 3, 64, 8, 1}, {3, 13, 37, 16, 0}, {1, 64, 33, 32, 0}, {5, 20, 10, 8, 0}, {1, 4, 70, 16, 1}};
    const q4_iconv_variant *v = k->iconv;
    printf("integer convolution %s (%dx%d)\n", v->name, v->mr, v->nr);
    for (int si = 0; si < (int)(sizeof shapes / sizeof *shapes); si++) {
        int n = shapes[si].n, ci = shapes[si].ci, co = shapes[si].co, h = shapes[si].size, wd = h;
        int is_signed = shapes[si].is_signed, kp = (ci + 3) & ~3, levels = is_signed ? 127 : 255, zero = is_signed ? 128 : 0;
        long hw = (long)h * wd, xs = (long)ci * n * hw, ws = (long)co * ci * 9, ys = (long)n * hw * co;
        float *x = malloc((size_t)xs * sizeof(float)), *w = malloc((size_t)ws * sizeof(float));
        float scale[8], scale3[8], *y = malloc((size_t)ys * sizeof(float)), *yref = malloc((size_t)ys * sizeof(float));
        float bias[80];
        long act = (long)n * (h + 2) * (wd + 2) * kp;
        uint8_t *q = malloc((size_t)act), *q3 = malloc((size_t)act), *qref = malloc((size_t)xs);
        int8_t *lv = malloc((size_t)ws);
        int32_t *acc = malloc((size_t)ys * sizeof(int32_t)), *acc3 = malloc((size_t)ys * sizeof(int32_t));
        int32_t *accref = malloc((size_t)ys * sizeof(int32_t)), rowsum[80];
        void *packed = aligned_alloc(64, (q4_iconv_packed_bytes(v, 9, kp, co) + 63) / 64 * 64);
        fill_values(x, xs, (uint64_t)si + 1);
        for (long i = 0; i < xs; i++)
            if (!is_signed && x[i] < 0) x[i] = 0; /* after a ReLU */
        for (long i = 0; i < hw * ci; i++) x[(i / hw) * n * hw + (n - 1) * hw + i % hw] = 0; /* the last image: zeros */
        fill_levels(w, ws, 7, 0.03125f, (uint64_t)si + 7);
        for (int o = 0; o < co; o++) bias[o] = 0.125f * (float)(o % 5) - 0.25f;
        q4_compute c1 = make_compute(k, 1, 0), c3 = make_compute(k, 3, 0);
        q4_iquantize(&c1, q, scale, x, n, ci, kp, h, wd, 1, levels, zero);
        q4_iquantize(&c3, q3, scale3, x, n, ci, kp, h, wd, 1, levels, zero);
        CHECK(memcmp(q, q3, (size_t)act) == 0 && memcmp(scale, scale3, (size_t)n * sizeof(float)) == 0,
              "%s iquantize shape %d: 1 and 3 threads differ", k->name, si);
        long wrong = 0;
        for (int b = 0; b < n; b++) {
            float top = 0;
            for (int c = 0; c < ci; c++)
                for (long p = 0; p < hw; p++) top = fmaxf(top, fabsf(x[((long)c * n + b) * hw + p]));
            wrong += scale[b] != (top > 0 ? top / (float)levels : 0.0f);
            float inv = top > 0 ? (float)levels / top : 0.0f;
            for (int yy = -1; yy <= h; yy++)
                for (int xx = -1; xx <= wd; xx++)
                    for (int c = 0; c < kp; c++) {
                        int inside = yy >= 0 && yy < h && xx >= 0 && xx < wd && c < ci;
                        int want = zero;
                        if (inside) {
                            float r = rintf(x[((long)c * n + b) * hw + yy * wd + xx] * inv);
                            want = (int)fmaxf(-(float)levels, fminf((float)levels, r)) + zero;
                            qref[((long)c * n + b) * hw + yy * wd + xx] = (uint8_t)want;
                        }
                        wrong += q[(((long)b * (h + 2) + yy + 1) * (wd + 2) + xx + 1) * kp + c] != want;
                    }
        }
        CHECK(wrong == 0, "%s iquantize shape %d: %ld bytes or scales wrong", k->name, si, wrong);
        if (!is_signed) /* the straight-through pass's inputs: exactly the values the levels stand for, at 255 and 15 levels */
            for (int few = 0; few < 2; few++) {
                int top = few ? 15 : 255;
                float *fake = malloc((size_t)xs * sizeof(float)), sc[8];
                memcpy(fake, x, (size_t)xs * sizeof(float));
                q4_ifakequant(&c3, fake, n, ci, h, wd, top);
                q4_iquantize(&c1, q3, sc, x, n, ci, kp, h, wd, 1, top, 0);
                long off = 0;
                for (int c = 0; c < ci; c++)
                    for (int b = 0; b < n; b++)
                        for (long p = 0; p < hw; p++) {
                            int level = q3[(((long)b * (h + 2) + p / wd + 1) * (wd + 2) + p % wd + 1) * kp + c];
                            off += level > top || fake[((long)c * n + b) * hw + p] != (float)level * sc[b];
                        }
                CHECK(off == 0, "%s ifakequant shape %d, %d levels: %ld values are not level x scale", k->name, si, top, off);
                free(fake);
            }
        CHECK(scale[n - 1] == 0.0f, "%s iquantize: an image of zeros has scale %g", k->name, scale[n - 1]);
        for (long i = 0; i < ws; i++) lv[i] = (int8_t)lrintf(w[i] / 0.03125f);
        q4_iconv_pack(v, packed, rowsum, w, 0.03125f, 9, ci, kp, co);
        q4_ref_iconv3x3(accref, qref, zero, lv, n, ci, co, h, wd);
        q4_iconv3x3(&c1, acc, NULL, q, packed, n, kp, co, h, wd);
        q4_iconv3x3(&c3, acc3, NULL, q, packed, n, kp, co, h, wd);
        long bad = 0;
        for (long i = 0; i < ys; i++) bad += acc[i] - zero * rowsum[i % co] != accref[i];
        CHECK(bad == 0, "%s iconv3x3 n%d ci%d co%d %dx%d: %ld of %ld sums wrong", k->name, n, ci, co, h, wd, bad, ys);
        CHECK(memcmp(acc, acc3, (size_t)ys * sizeof(int32_t)) == 0, "%s iconv3x3 shape %d: 1 and 3 threads differ", k->name, si);
        int32_t shift[80];
        for (int o = 0; o < co; o++) shift[o] = zero * rowsum[o];
        q4_iconv_rescale rescale = {scale, 0.03125f, is_signed ? shift : NULL, bias};
        q4_iconv3x3(&c3, y, &rescale, q, packed, n, kp, co, h, wd);
        bad = 0;
        for (int o = 0; o < co; o++)
            for (int b = 0; b < n; b++)
                for (long p = 0; p < hw; p++) {
                    float want = (float)accref[((long)b * hw + p) * co + o] * (0.03125f * scale[b]) + bias[o];
                    bad += y[((long)o * n + b) * hw + p] != want;
                }
        CHECK(bad == 0, "%s iconv3x3 rescaled, shape %d: %ld values wrong", k->name, si, bad);
        /* the integer convolution is the float one of the quantized values: within rounding */
        for (long i = 0; i < xs; i++) x[i] = (float)((int)qref[i] - zero) * scale[(i / hw) % n];
        q4_ref_conv3x3_forward(yref, x, w, bias, n, ci, co, h, wd);
        CHECK(compare_floats("iconv vs float conv", y, yref, ys, 1e-4, 1e-4) == 0, "%s shape %d", k->name, si);
        free_compute(&c1);
        free_compute(&c3);
        free(x), free(w), free(y), free(yref), free(q), free(q3), free(qref), free(lv), free(acc), free(acc3), free(accref);
        free(packed);
    }
    /* a linear layer: n images (ragged) of k features; the kernels read whole tiles of images */
    static const int images[] = {1, 3, 9, 17}, outs[] = {10, 33, 64};
    for (int ii = 0; ii < 4; ii++)
        for (int oi = 0; oi < 3; oi++) {
            int n = images[ii], out = outs[oi], kk = 68;
            long rows = (n + v->mr - 1) / v->mr * v->mr;
            uint8_t *x = calloc((size_t)rows * kk, 1);
            float *w = malloc((size_t)out * kk * sizeof(float));
            int32_t *y = malloc((size_t)n * out * sizeof(int32_t));
            void *packed = aligned_alloc(64, (q4_iconv_packed_bytes(v, 1, kk, out) + 63) / 64 * 64);
            fill_bytes(x, (long)n * kk, (uint64_t)(n * 100 + out), 0);
            fill_levels(w, (long)out * kk, 7, 1.0f, (uint64_t)out);
            q4_iconv_pack(v, packed, NULL, w, 1.0f, 1, kk, kk, out);
            q4_compute c2 = make_compute(k, 2, 0);
            /* the input quantized from floats [kk][n] (a linear layer's: one value per channel) */
            float *xf = malloc((size_t)kk * n * sizeof(float)), xs[17];
            for (long i = 0; i < (long)kk * n; i++) xf[i] = (float)x[(i % n) * kk + i / n] * (ii + 1.0f) / 255.0f;
            memset(x, 7, (size_t)n * kk);
            q4_iquantize(&c2, x, xs, xf, n, kk, kk, 1, 1, 0, 255, 0);
            long off = 0;
            for (int b = 0; b < n; b++) {
                float top = 0;
                for (int i = 0; i < kk; i++) top = fmaxf(top, xf[(long)i * n + b]);
                off += xs[b] != top / 255.0f;
                for (int i = 0; i < kk; i++) off += x[(long)b * kk + i] != (uint8_t)rintf(xf[(long)i * n + b] * (255.0f / top));
            }
            CHECK(off == 0, "%s iquantize of a linear layer's input, n%d: %ld bytes or scales wrong", k->name, n, off);
            free(xf);
            q4_ilinear(&c2, y, NULL, x, packed, n, kk, out);
            float *yf = malloc((size_t)n * out * sizeof(float)), scale[17], bias[64];
            for (int b = 0; b < n; b++) scale[b] = 0.5f + 0.25f * (float)b;
            for (int o = 0; o < out; o++) bias[o] = (float)o;
            q4_iconv_rescale rescale = {scale, 0.125f, NULL, bias};
            q4_ilinear(&c2, yf, &rescale, x, packed, n, kk, out);
            long bad = 0;
            for (int b = 0; b < n; b++)
                for (int o = 0; o < out; o++) {
                    int32_t sum = 0;
                    for (int i = 0; i < kk; i++) sum += (int32_t)x[(long)b * kk + i] * (int32_t)w[(long)o * kk + i];
                    bad += y[(long)b * out + o] != sum;
                    bad += yf[(long)o * n + b] != (float)sum * (0.125f * scale[b]) + bias[o];
                }
            CHECK(bad == 0, "%s ilinear n%d out%d: %ld sums wrong", k->name, n, out, bad);
            free_compute(&c2);
            free(x), free(w), free(y), free(yf), free(packed);
        }
}

/* Integer Winograd F(2x2): the microkernel against plain sums (the largest transformed values:
 * 4 x 255 and 9 x 63), then whole convolutions against plain loops (q4_ref_iconv3x3) bit for bit,
 * sums and rescaled floats alike (the same floats q4_iconv3x3 gives): ragged channels, tile
 * counts that fill no task or tile row evenly, output channels past a block of 64, 1 and 3
 * threads, a scratch with room for a few tiles only; and the shapes it must refuse. */
static void test_iwinograd(const q4_kernels *k) {
    const q4_iwinograd_variant *v = k->iwinograd;
    if (!v) {
        printf("integer Winograd: none in %s (direct only)\n", k->name);
        return;
    }
    printf("integer Winograd %s (%dx%d)\n", v->name, v->mr, v->nr);
    int mr = v->mr, nr = v->nr;
    for (int kk = 2; kk <= 132; kk += kk < 8 ? 2 : 62)
        for (int extreme = 0; extreme < 2; extreme++) {
            long stride = kk + 6;
            int16_t *a = malloc((size_t)mr * stride * sizeof(int16_t)), *w = malloc((size_t)kk * nr * sizeof(int16_t));
            int32_t *c = malloc((size_t)mr * (nr + 3) * sizeof(int32_t));
            for (long i = 0; i < (long)mr * stride; i++) a[i] = extreme ? (i % 3 ? 1020 : -1020) : (int16_t)(mix((uint64_t)i) % 2041) - 1020;
            for (long i = 0; i < (long)kk * nr; i++) w[i] = extreme ? (i % 2 ? 567 : -567) : (int16_t)(mix((uint64_t)i + 99) % 1135) - 567;
            v->ukernel(kk, a, stride, w, c, nr + 3);
            long bad = 0;
            for (int i = 0; i < mr; i++)
                for (int j = 0; j < nr; j++) {
                    int64_t sum = 0;
                    for (int q = 0; q < kk; q++) sum += (int64_t)a[i * stride + q] * w[(q / 2) * nr * 2 + j * 2 + q % 2];
                    bad += c[i * (nr + 3) + j] != sum;
                }
            CHECK(bad == 0, "%s k %d%s: %ld sums wrong", v->name, kk, extreme ? " (extremes)" : "", bad);
            free(a), free(w), free(c);
        }
    static const struct { int n, ci, co, h, wd, top, all_top; } shapes[] = {
        {1, 4, 8, 2, 2, 7, 0}, {3, 13, 37, 8, 8, 7, 0}, {2, 64, 70, 16, 16, 7, 0}, {1, 20, 130, 4, 4, 3, 0},
        {5, 36, 9, 6, 6, 63, 0}, {2, 68, 16, 8, 8, 63, 1}, {1, 8, 64, 32, 32, 7, 0}, {3, 12, 11, 4, 10, 7, 0}};
    for (int si = 0; si < (int)(sizeof shapes / sizeof *shapes); si++) {
        int n = shapes[si].n, ci = shapes[si].ci, co = shapes[si].co, h = shapes[si].h, wd = shapes[si].wd, top = shapes[si].top;
        int kp = (ci + 3) & ~3;
        long hw = (long)h * wd, ws = (long)co * ci * 9, ys = (long)n * hw * co, act = (long)n * (h + 2) * (wd + 2) * kp;
        uint8_t *q = calloc((size_t)act, 1), *plain = malloc((size_t)ci * n * hw);
        float *w = malloc((size_t)ws * sizeof(float)), *y = malloc((size_t)ys * sizeof(float)), *yd = malloc((size_t)ys * sizeof(float));
        int8_t *lv = malloc((size_t)ws);
        int32_t *ref = malloc((size_t)ys * sizeof(int32_t)), *acc = malloc((size_t)ys * sizeof(int32_t)), *acc3 = malloc((size_t)ys * sizeof(int32_t));
        int16_t *packed = aligned_alloc(64, (q4_iwinograd_packed_bytes(v, kp, co) + 63) / 64 * 64);
        void *direct = aligned_alloc(64, (q4_iconv_packed_bytes(k->iconv, 9, kp, co) + 63) / 64 * 64);
        fill_bytes(plain, (long)ci * n * hw, (uint64_t)si + 40, shapes[si].all_top);
        for (int c = 0; c < ci; c++) /* into the padded pixel-major bytes (border and channels past ci: 0) */
            for (int b = 0; b < n; b++)
                for (long p = 0; p < hw; p++)
                    q[(((long)b * (h + 2) + p / wd + 1) * (wd + 2) + p % wd + 1) * kp + c] = plain[((long)c * n + b) * hw + p];
        fill_levels(w, ws, top, 0.5f, (uint64_t)si + 3);
        if (shapes[si].all_top)
            for (long i = 0; i < ws; i++) w[i] = (float)((i / 9) % 2 ? top : -top) * 0.5f; /* |U| at its largest */
        for (long i = 0; i < ws; i++) lv[i] = (int8_t)lrintf(w[i] / 0.5f);
        q4_ref_iconv3x3(ref, plain, 0, lv, n, ci, co, h, wd);
        q4_iwinograd_pack(v, packed, w, 0.5f, ci, kp, co);
        q4_compute c1 = make_compute(k, 1, 0), c3 = make_compute(k, 3, 0);
        int ran = q4_iconv3x3_winograd(&c1, acc, NULL, q, packed, n, kp, co, h, wd, top);
        ran += q4_iconv3x3_winograd(&c3, acc3, NULL, q, packed, n, kp, co, h, wd, top);
        CHECK(ran == 2, "%s shape %d: not taken", v->name, si);
        long bad = 0, bad3 = 0;
        for (long i = 0; i < ys; i++) bad += acc[i] != ref[i], bad3 += acc3[i] != ref[i];
        CHECK(bad == 0 && bad3 == 0, "%s n%d ci%d co%d %dx%d levels to %d: %ld (1 thread) and %ld (3) of %ld sums wrong", v->name,
              n, ci, co, h, wd, top, bad, bad3, ys);
        /* rescaled: the direct path's arithmetic ((float)sum * (wscale * scale) + bias), bit for bit, and
         * its floats where it takes the shape (rows a multiple of its mr) */
        float scale[8], bias[160];
        for (int b = 0; b < n; b++) scale[b] = 0.001f * (float)(b + 3);
        for (int o = 0; o < co; o++) bias[o] = 0.125f * (float)(o % 5) - 0.25f;
        q4_iconv_rescale rescale = {scale, 0.5f, NULL, bias};
        q4_iconv3x3_winograd(&c3, y, &rescale, q, packed, n, kp, co, h, wd, top);
        long off = 0;
        for (int o = 0; o < co; o++)
            for (int b = 0; b < n; b++)
                for (long p = 0; p < hw; p++)
                    off += y[((long)o * n + b) * hw + p] != (float)ref[((long)b * hw + p) * co + o] * (0.5f * scale[b]) + bias[o];
        CHECK(off == 0, "%s shape %d: %ld rescaled floats wrong", v->name, si, off);
        if (wd % k->iconv->mr == 0) {
            q4_iconv_pack(k->iconv, direct, NULL, w, 0.5f, 9, ci, kp, co);
            q4_iconv3x3(&c3, yd, &rescale, q, direct, n, kp, co, h, wd);
            CHECK(memcmp(y, yd, (size_t)ys * sizeof(float)) == 0, "%s shape %d: rescaled floats differ from the direct path's", v->name,
                  si);
        }
        /* room for one task of mr tiles only: the same sums */
        q4_compute small = c1;
        small.scratch_floats = q4_iwinograd_scratch_bytes(v, kp) / sizeof(float);
        memset(acc, 0x5a, (size_t)ys * sizeof(int32_t));
        ran = q4_iconv3x3_winograd(&small, acc, NULL, q, packed, n, kp, co, h, wd, top);
        CHECK(ran && memcmp(acc, ref, (size_t)ys * sizeof(int32_t)) == 0, "%s shape %d: wrong with room for %d tiles", v->name, si, mr);
        small.scratch_floats--;
        CHECK(!q4_iconv3x3_winograd(&small, acc, NULL, q, packed, n, kp, co, h, wd, top), "%s: ran without room", v->name);
        free_compute(&c1);
        free_compute(&c3);
        free(q), free(plain), free(w), free(y), free(yd), free(lv), free(ref), free(acc), free(acc3), free(packed), free(direct);
    }
    /* refused: odd sides, a zero point, sums that could pass int32 */
    q4_compute c1 = make_compute(k, 1, 0);
    int32_t shift[8] = {0}, sums[9 * 8];
    float scale[1] = {1}, out[9 * 8];
    uint8_t x[5 * 5 * 4] = {0};
    int16_t wp[16 * 8 * 4] = {0};
    q4_iconv_rescale with_shift = {scale, 1.0f, shift, NULL};
    CHECK(!q4_iconv3x3_winograd(&c1, sums, NULL, x, wp, 1, 4, 8, 3, 3, 7), "%s took 3x3 images", v->name);
    CHECK(!q4_iconv3x3_winograd(&c1, out, &with_shift, x, wp, 1, 4, 8, 2, 2, 7), "%s took a zero point", v->name);
    CHECK(q4_iwinograd_fits(256, 63) && !q4_iwinograd_fits(512, 63) && q4_iwinograd_fits(3700, 7) && !q4_iwinograd_fits(3800, 7),
          "q4_iwinograd_fits: wrong bound");
    free_compute(&c1);
}

int main(void) {
    q4_kernels fast;
    q4_kernels_init(&fast, 0);
    printf("kernels: %s\n", fast.name);
    test_pool();
    test_isa_preference();
    for (const q4_gemm_variant *const *v = q4_gemm_variants(NULL); *v; v++) {
        printf("GEMM variant %s (%dx%d, kc %d)\n", (*v)->name, (*v)->mr, (*v)->nr, (*v)->kc);
        test_gemm_variant(*v);
    }
    test_conv_layers(&fast);
    test_conv_layers(q4_kernels_reference());
    test_elementwise(&fast);
    test_winograd_transforms(&fast);
    test_winograd_rooms(&fast);
    report_winograd_error(&fast);
    test_iconv_ukernel(fast.iconv);
    test_iconv_ukernel(q4_kernels_reference()->iconv);
    test_iquantize_rows(&fast);
    test_integer_layers(&fast);
    test_integer_layers(q4_kernels_reference());
    test_iwinograd(&fast);
    test_iwinograd(q4_kernels_reference());
    return test_finish("test_kernels");
}
