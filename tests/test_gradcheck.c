/* test_gradcheck.c - central-difference checks of every layer's backward pass: the 3x3
 * convolution and linear layers (FP32 and quantized, whose weight gradient is dL/dW_q passed
 * straight through to W), BatchNorm+ReLU in training mode, max pooling, dropout, flatten and
 * the softmax cross-entropy, on ragged sizes; then a directional derivative of the whole
 * network. Losses are L = sum(r * output) with fixed random r, evaluated in double.
 * A coordinate whose one-sided differences disagree sits on a ReLU or max-pool kink and is
 * skipped (counted; most coordinates must be checked). */
#include "../core/model/vgg.h"
#include "../core/quant/quant.h"
#include "test_util.h"

static q4_kernels kernels;
static q4_compute cc;

static void setup_compute(int threads) {
    q4_kernels_init(&kernels, 0);
    cc.kernels = &kernels;
    cc.pool = q4_pool_create(threads);
    cc.scratch_floats = q4_gemm_scratch_floats(kernels.gemm);
    cc.scratch = aligned_alloc(64, (size_t)threads * cc.scratch_floats * sizeof(float));
}

static double dot(const float *a, const float *b, long n) {
    double s = 0;
    for (long i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

typedef double (*loss_fn)(void *context);

/* Compares analytic[i] with (L(x+eps) - L(x-eps)) / 2eps for up to max_coords coordinates:
 * |numeric - analytic| <= atol + rtol * max(|numeric|, |analytic|), atol = atol_rms * RMS of
 * the analytic gradient (float rounding of L is spread evenly over coordinates). */
static void check_gradient(const char *what, float *x, long n, const float *analytic, loss_fn loss, void *context,
                           float eps, double rtol, double atol_rms, long max_coords) {
    long stride = n > max_coords ? n / max_coords : 1, checked = 0, skipped = 0, bad = 0;
    double worst = 0, rms = 0;
    for (long i = 0; i < n; i++) rms += (double)analytic[i] * analytic[i];
    double atol = atol_rms * sqrt(rms / n) + 1e-12;
    double base = loss(context);
    for (long i = 0; i < n; i += stride) {
        float saved = x[i];
        x[i] = saved + eps;
        double plus = loss(context);
        x[i] = saved - eps;
        double minus = loss(context);
        x[i] = saved;
        double numeric = (plus - minus) / (2.0 * (double)eps);
        double right = (plus - base) / eps, left = (base - minus) / eps;
        if (fabs(right - left) > 0.1 * fmax(fabs(right), fabs(left)) + 4 * atol) {
            skipped++; /* a kink between x - eps and x + eps */
            continue;
        }
        checked++;
        double diff = fabs(numeric - analytic[i]);
        double allowed = atol + rtol * fmax(fabs(numeric), fabs(analytic[i]));
        if (diff / allowed > worst) worst = diff / allowed;
        if (diff > allowed) {
            if (bad < 3)
                fprintf(stderr, "  %s[%ld]: analytic %.7g, central difference %.7g\n", what, i, analytic[i], numeric);
            bad++;
        }
    }
    CHECK(bad == 0, "%s: %ld of %ld coordinates disagree with central differences", what, bad, checked);
    if (getenv("GRADCHECK_VERBOSE")) printf("  %-60s worst error %.2g of the tolerance (%ld checked, %ld on kinks)\n", what, worst, checked, skipped);
    CHECK(checked >= (n < 4 ? n : 4) - skipped / 2 && skipped <= checked / 4 + 1, "%s: only %ld coordinates checked (%ld on kinks)", what, checked,
          skipped);
}

/* ------------------------------------------------------------ convolution */

typedef struct conv_case {
    int n, ci, co, h, wd, quantized;
    float *x, *w, *wq, *b, *y, *r;
    float scale;
} conv_case;

static double conv_loss(void *context) {
    conv_case *c = context;
    q4_conv3x3_forward(&cc, c->y, c->x, c->quantized ? c->wq : c->w, c->b, c->n, c->ci, c->co, c->h, c->wd,
                       q4_conv_plan(cc.kernels->gemm, c->ci, c->co, c->h, c->wd, Q4_PASS_TRAIN_FORWARD));
    return dot(c->y, c->r, (long)c->co * c->n * c->h * c->wd);
}

/* quantized: bits per weight (2..8), 0 for FP32 */
static void test_conv(int n, int ci, int co, int h, int w, int quantized) {
    conv_case c = {n, ci, co, h, w, quantized, 0, 0, 0, 0, 0, 0, 0};
    long xs = (long)ci * n * h * w, ys = (long)co * n * h * w, ws = (long)co * ci * 9;
    c.x = malloc(xs * 4), c.w = malloc(ws * 4), c.wq = malloc(ws * 4), c.b = malloc(co * 4);
    c.y = malloc(ys * 4), c.r = malloc(ys * 4);
    float *dx = malloc(xs * 4), *dw = malloc(ws * 4), *db = malloc(co * 4), *flipped = malloc(ws * 4);
    fill_values(c.x, xs, 1);
    fill_values(c.w, ws, 2);
    fill_values(c.b, co, 3);
    fill_values(c.r, ys, 4);
    if (quantized) {
        c.scale = q4_quant_scale(kernels.max_abs(c.w, ws), q4_max_level(quantized));
        kernels.quantize(c.wq, c.w, ws, c.scale, (float)q4_max_level(quantized));
    }
    const float *weights = quantized ? c.wq : c.w;
    q4_conv3x3_backward_input(&cc, dx, c.r, weights, flipped, n, ci, co, h, w,
                              q4_conv_plan(cc.kernels->gemm, ci, co, h, w, Q4_PASS_BACKWARD_INPUT));
    q4_conv3x3_backward_weights(&cc, dw, db, c.r, c.x, n, ci, co, h, w,
                                q4_conv_plan(cc.kernels->gemm, ci, co, h, w, Q4_PASS_BACKWARD_WEIGHTS));
    char what[96];
    char mode[16] = "";
    if (quantized) snprintf(mode, sizeof mode, "-%dbit", quantized);
    snprintf(what, sizeof what, "conv%s n%d ci%d co%d %dx%d dx", mode, n, ci, co, h, w);
    check_gradient(what, c.x, xs, dx, conv_loss, &c, 0.25f, 1e-3, 1e-3, 200);
    /* quantized: the weight gradient is dL/dW_q, checked against perturbations of W_q */
    snprintf(what, sizeof what, "conv%s n%d ci%d co%d %dx%d dW%s", mode, n, ci, co, h, w,
             quantized ? " (straight-through: dL/dW_q)" : "");
    check_gradient(what, quantized ? c.wq : c.w, ws, dw, conv_loss, &c, 0.25f, 1e-3, 1e-3, 200);
    snprintf(what, sizeof what, "conv n%d ci%d co%d %dx%d dbias", n, ci, co, h, w);
    check_gradient(what, c.b, co, db, conv_loss, &c, 0.25f, 1e-3, 1e-3, 200);
    free(c.x), free(c.w), free(c.wq), free(c.b), free(c.y), free(c.r), free(dx), free(dw), free(db), free(flipped);
}

/* ------------------------------------------------------------ linear */

typedef struct linear_case {
    int n, in, out, quantized;
    float *x, *w, *wq, *b, *y, *r;
} linear_case;

static double linear_loss(void *context) {
    linear_case *c = context;
    q4_linear_forward(&cc, c->y, c->x, c->quantized ? c->wq : c->w, c->b, c->n, c->in, c->out);
    return dot(c->y, c->r, (long)c->out * c->n);
}

static void test_linear(int n, int in, int out, int quantized) {
    linear_case c = {n, in, out, quantized, 0, 0, 0, 0, 0, 0};
    long xs = (long)in * n, ys = (long)out * n, ws = (long)out * in;
    c.x = malloc(xs * 4), c.w = malloc(ws * 4), c.wq = malloc(ws * 4), c.b = malloc(out * 4);
    c.y = malloc(ys * 4), c.r = malloc(ys * 4);
    float *dx = malloc(xs * 4), *dw = malloc(ws * 4), *db = malloc(out * 4);
    fill_values(c.x, xs, 11);
    fill_values(c.w, ws, 12);
    fill_values(c.b, out, 13);
    fill_values(c.r, ys, 14);
    if (quantized)
        kernels.quantize(c.wq, c.w, ws, q4_quant_scale(kernels.max_abs(c.w, ws), q4_max_level(quantized)),
                         (float)q4_max_level(quantized));
    q4_linear_backward_input(&cc, dx, c.r, quantized ? c.wq : c.w, n, in, out);
    q4_linear_backward_weights(&cc, dw, db, c.r, c.x, n, in, out);
    char what[96];
    char mode[16] = "";
    if (quantized) snprintf(mode, sizeof mode, "-%dbit", quantized);
    snprintf(what, sizeof what, "linear%s n%d %d->%d dx", mode, n, in, out);
    check_gradient(what, c.x, xs, dx, linear_loss, &c, 0.25f, 1e-3, 1e-3, 200);
    snprintf(what, sizeof what, "linear%s n%d %d->%d dW%s", mode, n, in, out,
             quantized ? " (straight-through: dL/dW_q)" : "");
    check_gradient(what, quantized ? c.wq : c.w, ws, dw, linear_loss, &c, 0.25f, 1e-3, 1e-3, 200);
    snprintf(what, sizeof what, "linear n%d %d->%d dbias", n, in, out);
    check_gradient(what, c.b, out, db, linear_loss, &c, 0.25f, 1e-3, 1e-3, 200);
    free(c.x), free(c.w), free(c.wq), free(c.b), free(c.y), free(c.r), free(dx), free(dw), free(db);
}

/* ------------------------------------------------------------ BatchNorm + ReLU */

typedef struct bn_case {
    long plane;
    int channels;
    float *y, *out, *r, *gamma, *beta;
    q4_batchnorm bn;
} bn_case;

static double bn_loss(void *context) {
    bn_case *c = context;
    q4_batchnorm_relu_forward(&cc, c->out, c->y, c->plane, 1, 1, NULL, &c->bn);
    return dot(c->out, c->r, c->channels * c->plane);
}

static void test_batchnorm(int channels, long plane) {
    bn_case c;
    long size = channels * plane;
    c.channels = channels;
    c.plane = plane;
    c.y = malloc(size * 4), c.out = malloc(size * 4), c.r = malloc(size * 4);
    float *state = calloc(10 * (size_t)channels, 4), *dy = malloc(size * 4);
    c.gamma = state, c.beta = state + channels;
    q4_batchnorm bn = {channels, 0.1, c.gamma, c.beta, state + 2 * channels, state + 3 * channels, state + 4 * channels,
                       state + 5 * channels, state + 6 * channels, state + 7 * channels, state + 8 * channels,
                       state + 9 * channels};
    c.bn = bn;
    fill_values(c.y, size, 21);
    for (long i = 0; i < size; i++) c.y[i] = 2.0f * c.y[i] + 0.5f;
    fill_values(c.r, size, 22);
    for (int i = 0; i < channels; i++) {
        c.gamma[i] = 1.0f + 0.5f * test_value(23, i);
        c.beta[i] = 0.3f * test_value(24, i);
    }
    bn_loss(&c);
    memcpy(dy, c.y, size * 4);
    q4_batchnorm_relu_backward(&cc, dy, c.r, plane, 1, NULL, &c.bn); /* dy: y in, dL/dy out */
    char what[96];
    snprintf(what, sizeof what, "batchnorm+relu %dx%ld dy", channels, plane);
    check_gradient(what, c.y, size, dy, bn_loss, &c, 2e-3f, 3e-3, 3e-3, 300);
    float dgamma[64], dbeta[64];
    memcpy(dgamma, c.bn.dgamma, channels * 4);
    memcpy(dbeta, c.bn.dbeta, channels * 4);
    snprintf(what, sizeof what, "batchnorm+relu %dx%ld dgamma", channels, plane);
    check_gradient(what, c.gamma, channels, dgamma, bn_loss, &c, 1e-3f, 3e-3, 3e-3, 64);
    snprintf(what, sizeof what, "batchnorm+relu %dx%ld dbeta", channels, plane);
    check_gradient(what, c.beta, channels, dbeta, bn_loss, &c, 1e-3f, 3e-3, 3e-3, 64);
    free(c.y), free(c.out), free(c.r), free(state), free(dy);
}

/* ------------------------------------------------------------ max pooling */

typedef struct pool_case {
    int channels, n, size;
    float *a, *out, *r;
} pool_case;

static double pool_loss(void *context) {
    pool_case *c = context;
    q4_maxpool2_forward(&cc, c->out, c->a, c->channels, c->n, c->size);
    return dot(c->out, c->r, (long)c->channels * c->n * c->size * c->size / 4);
}

static void test_maxpool(int channels, int n, int size) {
    pool_case c = {channels, n, size, 0, 0, 0};
    long in = (long)channels * n * size * size, out = in / 4;
    c.a = malloc(in * 4), c.out = malloc(out * 4), c.r = malloc(out * 4);
    float *da = malloc(in * 4);
    fill_values(c.a, in, 31);
    fill_values(c.r, out, 32);
    memcpy(da, c.a, in * 4);
    q4_maxpool2_backward(&cc, da, c.r, channels, n, size);
    char what[96];
    snprintf(what, sizeof what, "maxpool2 %dx%dx%dx%d da", channels, n, size, size);
    check_gradient(what, c.a, in, da, pool_loss, &c, 1e-3f, 1e-3, 1e-3, 400);
    free(c.a), free(c.out), free(c.r), free(da);
}

/* ------------------------------------------------------------ dropout, flatten, loss */

typedef struct small_case {
    float *x, *y, *r, *mask;
    uint8_t labels[8];
    long n;
    int classes, batch;
    float smoothing;
} small_case;

static double dropout_loss(void *context) {
    small_case *c = context;
    memcpy(c->y, c->x, c->n * 4);
    q4_dropout_apply(c->y, c->mask, c->n);
    return dot(c->y, c->r, c->n);
}

static double cross_entropy_loss(void *context) {
    small_case *c = context;
    return q4_softmax_cross_entropy(NULL, c->x, c->labels, c->classes, c->batch, 0, c->smoothing, 0, NULL, NULL);
}

static void test_small_layers(void) {
    small_case c;
    memset(&c, 0, sizeof c);
    c.n = 37;
    c.x = malloc(c.n * 4), c.y = malloc(c.n * 4), c.r = malloc(c.n * 4), c.mask = malloc(c.n * 4);
    fill_values(c.x, c.n, 41);
    fill_values(c.r, c.n, 42);
    q4_dropout_mask(c.mask, c.n, 0.5f, 7, 3);
    int kept = 0;
    for (long i = 0; i < c.n; i++) {
        CHECK(c.mask[i] == 0.0f || c.mask[i] == 2.0f, "dropout mask value %g", c.mask[i]);
        kept += c.mask[i] != 0.0f;
    }
    CHECK(kept > 5 && kept < 32, "dropout kept %d of 37", kept);
    float dx[37];
    memcpy(dx, c.r, sizeof dx);
    q4_dropout_apply(dx, c.mask, c.n);
    check_gradient("dropout dx", c.x, c.n, dx, dropout_loss, &c, 0.25f, 1e-4, 1e-4, 64);

    free(c.x);
    c.classes = 7;
    c.batch = 5;
    float logits[35], dlogits[35];
    fill_values(logits, 35, 43);
    for (int i = 0; i < 35; i++) logits[i] *= 3.0f;
    for (int b = 0; b < c.batch; b++) c.labels[b] = (uint8_t)((b * 3) % c.classes);
    c.x = logits;
    for (int k = 0; k < 2; k++) { /* plain, and with label smoothing 0.2 */
        c.smoothing = k ? 0.2f : 0.0f;
        q4_softmax_cross_entropy(dlogits, logits, c.labels, c.classes, c.batch, 0, c.smoothing, 0, NULL, NULL);
        check_gradient(k ? "softmax cross-entropy dlogits (label smoothing 0.2)" : "softmax cross-entropy dlogits", logits,
                       35, dlogits, cross_entropy_loss, &c, 1e-3f, 1e-3, 1e-3, 64);
    }
    /* the smoothed loss is (1 - e) * cross-entropy + e * mean over classes of -log p */
    {
        c.smoothing = 0.0f;
        double plain = cross_entropy_loss(&c), uniform = 0.0;
        for (int b = 0; b < c.batch; b++) {
            double m = -1e30, sum = 0.0;
            for (int k = 0; k < c.classes; k++) m = fmax(m, logits[k * c.batch + b]);
            for (int k = 0; k < c.classes; k++) sum += exp(logits[k * c.batch + b] - m);
            for (int k = 0; k < c.classes; k++) uniform += (m + log(sum) - logits[k * c.batch + b]) / c.classes;
        }
        uniform /= c.batch;
        c.smoothing = 0.2f;
        double e = (double)0.2f, smoothed = cross_entropy_loss(&c), expect = (1.0 - e) * plain + e * uniform;
        CHECK(fabs(smoothed - expect) < 1e-9 * fabs(expect), "label smoothing: loss %.12f, expected %.12f", smoothed, expect);
    }
    free(c.y), free(c.r), free(c.mask);

    /* flatten and unflatten are each other's inverse and adjoint */
    int channels = 3, n = 5, positions = 4;
    long size = (long)channels * n * positions;
    float *a = malloc(size * 4), *f = malloc(size * 4), *back = malloc(size * 4), *g = malloc(size * 4), *ug = malloc(size * 4);
    fill_values(a, size, 44);
    fill_values(g, size, 45);
    q4_flatten(f, a, channels, n, positions);
    q4_unflatten(back, f, channels, n, positions);
    CHECK(memcmp(a, back, size * 4) == 0, "unflatten(flatten(x)) != x");
    q4_unflatten(ug, g, channels, n, positions);
    CHECK(fabs(dot(f, g, size) - dot(a, ug, size)) < 1e-9, "flatten is not adjoint to unflatten");
    CHECK(f[(1 * positions + 2) * n + 3] == a[(1 * n + 3) * positions + 2], "flatten order is not channel*positions+p");
    free(a), free(f), free(back), free(g), free(ug);
}

/* ------------------------------------------------------------ the whole network */

typedef struct net_case {
    q4_vgg *m;
    uint8_t labels[4];
    float *input;
} net_case;

static double net_loss(void *context) {
    net_case *c = context;
    memcpy(c->m->input, c->input, 3 * 4 * 1024 * sizeof(float));
    q4_vgg_forward(c->m, 4, 1, 5, 0);
    return q4_vgg_loss(c->m, 4, c->labels, 0.0f, NULL, NULL);
}

static void test_network(void) {
    q4_error err = {0};
    q4_vgg m;
    if (q4_vgg_create(&m, 10, Q4_FP32_BITS, 4, 0, 2, 0.5f, 0, &err)) {
        CHECK(0, "%s", err.message);
        return;
    }
    q4_vgg_init(&m, 3);
    net_case c = {&m, {1, 7, 3, 9}, malloc(3 * 4 * 1024 * sizeof(float))};
    fill_values(c.input, 3 * 4 * 1024, 51);
    float *mask = malloc(512 * 4 * sizeof(float));
    q4_dropout_mask(mask, 512 * 4, 0.5f, 9, 0);
    m.dropout_override = mask;
    net_loss(&c);
    q4_vgg_backward(&m, 4);
    /* direction: each parameter moved by r * (its tensor's RMS value, or 1 for zeros) */
    long p = m.param_count;
    float *direction = malloc(p * sizeof(float)), *saved = malloc(p * sizeof(float));
    double analytic = 0;
    for (int t = 0; t < Q4_NUM_TENSORS; t++) {
        const q4_tensor_info *info = &m.tensors[t];
        double rms = sqrt(kernels.sum_squares(m.params + info->offset, info->count) / info->count);
        if (rms == 0) rms = 1;
        for (long i = 0; i < info->count; i++) {
            direction[info->offset + i] = (float)(rms * test_value(52, info->offset + i));
            analytic += (double)m.grads[info->offset + i] * direction[info->offset + i];
        }
    }
    memcpy(saved, m.params, p * sizeof(float));
    /* kinks (ReLU, max pool) bias large steps and float rounding small ones; the median of
     * four steps in between was measured within 3.4% of the analytic value (6.239 vs 6.028-6.448) */
    double estimates[4], eps = 6.25e-4;
    for (int e = 0; e < 4; e++, eps /= 2) {
        double values[2];
        for (int side = 0; side < 2; side++) {
            for (long i = 0; i < p; i++) m.params[i] = saved[i] + (float)((side ? -eps : eps) * direction[i]);
            values[side] = net_loss(&c);
        }
        estimates[e] = (values[0] - values[1]) / (2 * eps);
    }
    memcpy(m.params, saved, p * sizeof(float));
    for (int i = 0; i < 4; i++) /* sort the four estimates */
        for (int j = i + 1; j < 4; j++)
            if (estimates[j] < estimates[i]) {
                double t = estimates[i];
                estimates[i] = estimates[j];
                estimates[j] = t;
            }
    double numeric = (estimates[1] + estimates[2]) / 2;
    printf("whole network (FP32): directional derivative %.6g, central difference %.6g\n", analytic, numeric);
    CHECK(fabs(numeric - analytic) <= 6e-2 * fabs(analytic), "whole network: directional derivative %.6g vs %.6g",
          analytic, numeric);
    free(direction), free(saved), free(mask), free(c.input);
    q4_vgg_destroy(&m);
}

int main(void) {
    setup_compute(2);
    printf("kernels: %s, %s\n", kernels.name, kernels.gemm->name);
    test_conv(2, 3, 5, 6, 6, 0);
    test_conv(1, 4, 3, 5, 7, 0);
    test_conv(3, 17, 7, 4, 4, 0);
    /* quantized (the last argument: bits per weight), every width the settings allow */
    static const int widths[] = {2, 3, 4, 5, 6, 7, 8};
    for (int i = 0; i < 7; i++) {
        test_conv(2, 3, 5, 6, 6, widths[i]);
        test_linear(5, 7, 3, widths[i]);
    }
    test_conv(1, 9, 13, 3, 5, 4);
    test_linear(5, 7, 3, 0);
    test_linear(3, 33, 17, 0);
    test_linear(2, 40, 9, 4);
    test_batchnorm(3, 18);
    test_batchnorm(12, 37);
    test_batchnorm(4, 64);
    test_maxpool(2, 2, 4);
    test_maxpool(3, 2, 32);
    test_maxpool(1, 3, 6);
    test_small_layers();
    test_network();
    return test_finish("test_gradcheck");
}
