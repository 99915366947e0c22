/* test_kernels.c - every fast kernel of this build against its scalar reference on ragged
 * sizes (1, 2, 3, 5, 7, 8, 15, 16, 17, 31, 33, ...): each GEMM variant with every operand
 * form, the convolution and linear layers against naive loops, and each elementwise
 * kernel. Also: GEMM and convolution results are bit-identical for 1, 2, 3 and 8 threads.
 * Tolerance for sums: |out - ref| <= 1e-5 * sqrt(K) * (sum of |terms|), the float bound. */
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
    if (shared && q4_winograd_scratch_floats(256, 256) > cc.scratch_floats)
        cc.scratch_floats = q4_winograd_scratch_floats(256, 256);
    cc.scratch = aligned_alloc(64, (size_t)threads * cc.scratch_floats * sizeof(float) + 64);
    if (shared) {
        cc.shared = aligned_alloc(64, shared * sizeof(float));
        cc.shared_floats = shared;
        cc.winograd_floats = q4_winograd_gradient_floats(256, 256);
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

/* Convolutions against the naive loops, through both paths where they differ: the im2col
 * GEMM (a context without shared room) and Winograd (with it; enough channels for the variant, even sides).
 * Within a path, 1 and 8 threads must agree bit for bit. */
static void test_conv_layers(const q4_kernels *k) {
    int shapes[][5] = {{1, 1, 1, 1, 1},    {2, 3, 5, 6, 6},   {1, 4, 3, 5, 7},    {3, 17, 7, 4, 4},    {2, 16, 33, 8, 8},
                       {1, 3, 64, 32, 32}, {2, 31, 15, 3, 2}, {1, 128, 128, 4, 6}, {2, 130, 131, 8, 8}, {1, 129, 128, 6, 2}, {1, 64, 65, 4, 4},
                       /* 289 tiles: the Winograd weight gradient's chunks of 256 tiles (at 256 channels), the last ragged */
                       {1, 256, 128, 34, 34}};
    size_t shared = q4_winograd_shared_floats(k->gemm, 256, 256);
    /* the same two pools for both paths (the WASM test build has 8 pthreads in all) */
    q4_compute paths[2][2] = {{{0}}, {make_compute(k, 1, shared), make_compute(k, 8, shared)}};
    for (int t = 0; t < 2; t++) {
        paths[0][t] = paths[1][t];
        paths[0][t].shared = NULL;
        paths[0][t].shared_floats = 0;
        paths[0][t].winograd = NULL;
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
        /* float sums of ci*9 terms; Winograd's transforms add a few roundings more */
        double tol = 4e-6 * sqrt(ci * 9.0) * 3, tol_in = 4e-6 * sqrt(co * 9.0) * 3;
        double tolw = 2e-6 * sqrt((double)n * h * w) * 3;
        for (int path = 0; path < 2; path++) {
            q4_compute *one = &paths[path][0], *eight = &paths[path][1];
            char what[128], part[160];
            int winograd = path && q4_winograd_applies(k->gemm, ci, co, h, w);
            snprintf(what, sizeof what, "%s conv n%d ci%d co%d %dx%d (%s)", k->name, n, ci, co, h, w,
                     winograd ? "Winograd" : "im2col GEMM");
            q4_conv3x3_forward(one, y, x, wt, b, n, ci, co, h, w);
            q4_conv3x3_forward(eight, y8, x, wt, b, n, ci, co, h, w);
            snprintf(part, sizeof part, "%s forward", what);
            compare_floats(part, y, yr, ys, tol, tol);
            CHECK(memcmp(y, y8, ys * 4) == 0, "%s: thread counts differ", part);
            q4_conv3x3_backward_input(one, dx, dy, wt, flip, n, ci, co, h, w);
            q4_conv3x3_backward_input(eight, dx8, dy, wt, flip, n, ci, co, h, w);
            snprintf(part, sizeof part, "%s backward input", what);
            compare_floats(part, dx, dxr, xs, tol_in, tol_in);
            CHECK(memcmp(dx, dx8, xs * 4) == 0, "%s: thread counts differ", part);
            q4_conv3x3_backward_weights(one, dw, db, dy, x, n, ci, co, h, w);
            q4_conv3x3_backward_weights(eight, dw8, db, dy, x, n, ci, co, h, w);
            snprintf(part, sizeof part, "%s backward weights", what);
            compare_floats(part, dw, dwr, ws, tolw, tolw);
            compare_floats(part, db, dbr, co, tolw, tolw);
            CHECK(memcmp(dw, dw8, ws * 4) == 0, "%s: thread counts differ", part);
        }
        free(x), free(wt), free(b), free(dy), free(y), free(yr), free(y8), free(flip), free(dx), free(dxr), free(dx8);
        free(dw), free(dwr), free(dw8), free(db), free(dbr);
    }
    free_compute(&paths[1][0]), free_compute(&paths[1][1]);
}

/* The Winograd transforms against the reference's, bit for bit, on every lane count up to
 * the widest tile (vector bodies and tails), with output strides wider than the lanes; and
 * the reference against the transforms' definition (B^T d B, A^T M A, A dY A^T) in double. */
static void test_winograd_transforms(const q4_kernels *k) {
    const q4_kernels *r = q4_kernels_reference();
    static const double B[4][4] = {{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}}; /* B^T */
    static const double A[2][4] = {{1, 1, 1, 0}, {0, 1, -1, -1}};                              /* A^T */
    float in[16 * 32], out_r[16 * 40], out_k[16 * 40];
    for (int lanes = 1; lanes <= 32; lanes++) {
        long stride = lanes + 3;
        fill_values(in, 16 * lanes, 70 + lanes);
        memset(out_r, 0, sizeof out_r), memset(out_k, 0, sizeof out_k);
        r->winograd_input(out_r, stride, in, lanes), k->winograd_input(out_k, stride, in, lanes);
        CHECK(memcmp(out_r, out_k, sizeof out_r) == 0, "%s winograd_input differs with %d lanes", k->name, lanes);
        for (int l = 0; l < lanes; l++)
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++) {
                    double v = 0;
                    for (int a = 0; a < 4; a++)
                        for (int b = 0; b < 4; b++) v += B[i][a] * in[(4 * a + b) * lanes + l] * B[j][b];
                    CHECK(fabs(out_r[(4 * i + j) * stride + l] - v) <= 1e-6, "winograd_input: B^T d B wrong");
                }
        r->winograd_output(out_r, in, lanes, lanes), k->winograd_output(out_k, in, lanes, lanes);
        CHECK(memcmp(out_r, out_k, 4 * lanes * 4) == 0, "%s winograd_output differs with %d lanes", k->name, lanes);
        for (int l = 0; l < lanes; l++)
            for (int i = 0; i < 2; i++)
                for (int j = 0; j < 2; j++) {
                    double v = 0;
                    for (int a = 0; a < 4; a++)
                        for (int b = 0; b < 4; b++) v += A[i][a] * in[(4 * a + b) * lanes + l] * A[j][b];
                    CHECK(fabs(out_r[(2 * i + j) * lanes + l] - v) <= 1e-6, "winograd_output: A^T M A wrong");
                }
        memset(out_r, 0, sizeof out_r), memset(out_k, 0, sizeof out_k);
        r->winograd_gradient(out_r, stride, in, lanes), k->winograd_gradient(out_k, stride, in, lanes);
        CHECK(memcmp(out_r, out_k, sizeof out_r) == 0, "%s winograd_gradient differs with %d lanes", k->name, lanes);
        for (int l = 0; l < lanes; l++)
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++) {
                    double v = 0;
                    for (int a = 0; a < 2; a++)
                        for (int b = 0; b < 2; b++) v += A[a][i] * in[(2 * a + b) * lanes + l] * A[b][j];
                    CHECK(fabs(out_r[(4 * i + j) * stride + l] - v) <= 1e-6, "winograd_gradient: A dY A^T wrong");
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

int main(void) {
    q4_kernels fast;
    q4_kernels_init(&fast, 0);
    printf("kernels: %s\n", fast.name);
    for (const q4_gemm_variant *const *v = q4_gemm_variants(NULL); *v; v++) {
        printf("GEMM variant %s (%dx%d, kc %d)\n", (*v)->name, (*v)->mr, (*v)->nr, (*v)->kc);
        test_gemm_variant(*v);
    }
    test_conv_layers(&fast);
    test_conv_layers(q4_kernels_reference());
    test_elementwise(&fast);
    test_winograd_transforms(&fast);
    return test_finish("test_kernels");
}
