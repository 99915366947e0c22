/* conv.c - convolution (3x3, stride 1, padding 1) and linear layers expressed as GEMMs
 * over implicit im2col operands (or by Winograd where it applies, in all three passes:
 * winograd.c),
 * plus their bias terms. ISA-neutral: the arithmetic is in the GEMM microkernel and the
 * elementwise table. */
#include <string.h>

#include "kernels.h"

typedef struct bias_job {
    const q4_kernels *k;
    float *y;
    const float *bias;
    float *dbias;
    const float *dy;
    long plane, stride; /* values per channel, and from one channel's to the next's (sum_rows) */
} bias_job;

static void add_bias_task(void *context, int c, int thread) {
    (void)thread;
    const bias_job *job = context;
    float *row = job->y + (long)c * job->plane;
    job->k->add_scalar(row, row, job->plane, job->bias[c]);
}

static void sum_rows_task(void *context, int c, int thread) {
    (void)thread;
    const bias_job *job = context;
    job->dbias[c] = (float)job->k->sum(job->dy + (long)c * job->stride, job->plane);
}

static void add_bias(const q4_compute *cc, float *y, const float *bias, int channels, long plane) {
    bias_job job = {cc->kernels, y, bias, NULL, NULL, plane, plane};
    q4_pool_run(cc->pool, channels, add_bias_task, &job);
}

static void sum_rows(const q4_compute *cc, float *dbias, const float *dy, int channels, long plane, long stride) {
    bias_job job = {cc->kernels, NULL, NULL, dbias, dy, plane, stride};
    q4_pool_run(cc->pool, channels, sum_rows_task, &job);
}

static q4_operand im2col(q4_operand_kind kind, const float *x, int channels, int n, int h, int wd) {
    q4_operand op = {kind, x, 0, 0, channels, n, h, wd};
    return op;
}

void q4_conv3x3_forward(const q4_compute *cc, float *y, const float *x, const float *w,
                        const float *bias, int n, int ci, int co, int h, int wd, int algorithm) {
    if (algorithm && q4_conv3x3_winograd(cc, y, x, w, bias, n, ci, co, h, wd, algorithm)) return;
    long pixels = (long)n * h * wd;
    q4_operand A = q4_dense(w, (long)ci * 9, 1);
    q4_operand B = im2col(Q4_IM2COL, x, ci, n, h, wd);
    q4_gemm(cc, co, (int)pixels, ci * 9, &A, &B, y, pixels, 0);
    if (bias) add_bias(cc, y, bias, co, pixels);
}

void q4_conv3x3_backward_input(const q4_compute *cc, float *dx, const float *dy, const float *w,
                               float *flipped, int n, int ci, int co, int h, int wd, int algorithm) {
    /* dx = correlation of dy with the kernel flipped in space and transposed in channels */
    for (int o = 0; o < co; o++)
        for (int i = 0; i < ci; i++)
            for (int t = 0; t < 9; t++)
                flipped[((long)i * co + o) * 9 + (8 - t)] = w[((long)o * ci + i) * 9 + t];
    if (algorithm && q4_conv3x3_winograd(cc, dx, dy, flipped, NULL, n, co, ci, h, wd, algorithm)) return;
    long pixels = (long)n * h * wd;
    q4_operand A = q4_dense(flipped, (long)co * 9, 1);
    q4_operand B = im2col(Q4_IM2COL, dy, co, n, h, wd);
    q4_gemm(cc, ci, (int)pixels, co * 9, &A, &B, dx, pixels, 0);
}

/* The weight and bias gradients of images [b0, b0 + count) of dy and x, which hold n images
 * (channel planes of n*h*wd values): the operands start at image b0 and keep n as their stride. */
void q4_conv3x3_backward_weights_images(const q4_compute *cc, float *dw, float *dbias, const float *dy, const float *x,
                                        int n, int b0, int count, int ci, int co, int h, int wd, int algorithm) {
    long hw = (long)h * wd, pixels = (long)count * hw;
    dy += b0 * hw;
    x += b0 * hw;
    if (!algorithm || !q4_conv3x3_winograd_backward_weights_strided(cc, dw, dy, x, n, count, ci, co, h, wd, algorithm)) {
        q4_operand A = q4_dense(dy, (long)n * hw, 1);
        q4_operand B = im2col(Q4_IM2COL_T, x, ci, n, h, wd);
        q4_gemm(cc, co, ci * 9, (int)pixels, &A, &B, dw, (long)ci * 9, 0);
    }
    if (dbias) sum_rows(cc, dbias, dy, co, pixels, (long)n * hw);
}

void q4_conv3x3_backward_weights(const q4_compute *cc, float *dw, float *dbias, const float *dy,
                                 const float *x, int n, int ci, int co, int h, int wd, int algorithm) {
    q4_conv3x3_backward_weights_images(cc, dw, dbias, dy, x, n, 0, n, ci, co, h, wd, algorithm);
}

/* to += from, element by element (a micro-batch's gradient added to the sum of those before it) */
static void add_into(float *to, const float *from, long count) {
    for (long i = 0; i < count; i++) to[i] += from[i];
}

void q4_conv3x3_backward_weights_micro(const q4_compute *cc, float *dw, float *dbias, float *partial, const float *dy,
                                       const float *x, int n, int micro, int ci, int co, int h, int wd, int algorithm) {
    if (micro <= 0 || micro >= n) micro = n;
    long weights = (long)co * ci * 9;
    q4_conv3x3_backward_weights_images(cc, dw, dbias, dy, x, n, 0, micro, ci, co, h, wd, algorithm);
    for (int b0 = micro; b0 < n; b0 += micro) {
        q4_conv3x3_backward_weights_images(cc, partial, dbias ? partial + weights : NULL, dy, x, n, b0,
                                    n - b0 < micro ? n - b0 : micro, ci, co, h, wd, algorithm);
        add_into(dw, partial, weights);
        if (dbias) add_into(dbias, partial + weights, co);
    }
}

void q4_linear_forward(const q4_compute *cc, float *y, const float *x, const float *w,
                       const float *bias, int n, int in, int out) {
    q4_operand A = q4_dense(w, in, 1), B = q4_dense(x, n, 1);
    q4_gemm(cc, out, n, in, &A, &B, y, n, 0);
    if (bias) add_bias(cc, y, bias, out, n);
}

void q4_linear_backward_input(const q4_compute *cc, float *dx, const float *dy, const float *w,
                              int n, int in, int out) {
    q4_operand A = q4_dense(w, 1, in), B = q4_dense(dy, n, 1);
    q4_gemm(cc, in, n, out, &A, &B, dx, n, 0);
}

/* images [b0, b0 + count) of dy [out][n] and x [in][n] */
void q4_linear_backward_weights_images(const q4_compute *cc, float *dw, float *dbias, const float *dy,
                                          const float *x, int n, int b0, int count, int in, int out) {
    q4_operand A = q4_dense(dy + b0, n, 1), B = q4_dense(x + b0, 1, n);
    q4_gemm(cc, out, in, count, &A, &B, dw, in, 0);
    if (dbias) sum_rows(cc, dbias, dy + b0, out, count, n);
}

void q4_linear_backward_weights(const q4_compute *cc, float *dw, float *dbias, const float *dy,
                                const float *x, int n, int in, int out) {
    q4_linear_backward_weights_images(cc, dw, dbias, dy, x, n, 0, n, in, out);
}

void q4_linear_backward_weights_micro(const q4_compute *cc, float *dw, float *dbias, float *partial, const float *dy,
                                      const float *x, int n, int micro, int in, int out) {
    if (micro <= 0 || micro >= n) micro = n;
    long weights = (long)out * in;
    q4_linear_backward_weights_images(cc, dw, dbias, dy, x, n, 0, micro, in, out);
    for (int b0 = micro; b0 < n; b0 += micro) {
        q4_linear_backward_weights_images(cc, partial, dbias ? partial + weights : NULL, dy, x, n, b0,
                                      n - b0 < micro ? n - b0 : micro, in, out);
        add_into(dw, partial, weights);
        if (dbias) add_into(dbias, partial + weights, out);
    }
}
