/* elementwise-ref.c - scalar reference of every elementwise and reduction kernel. This is
 * the specification the SIMD versions are tested against, and the portable build's code.
 * Expressions are written exactly as the SIMD kernels evaluate them (no contraction). */
#include <math.h>

#include "../../util/exactmath.h"
#include "ref.h"

double q4_ref_sum(const float *x, long n) {
    double s = 0.0;
    for (long i = 0; i < n; i++) s += x[i];
    return s;
}

double q4_ref_centered_sum_squares(const float *x, long n, double mean) {
    double s = 0.0;
    for (long i = 0; i < n; i++) {
        double d = x[i] - mean;
        s += d * d;
    }
    return s;
}

double q4_ref_sum_squares(const float *x, long n) {
    double s = 0.0;
    for (long i = 0; i < n; i++) s += (double)x[i] * x[i];
    return s;
}

void q4_ref_add_scalar(float *y, const float *x, long n, float value) {
    for (long i = 0; i < n; i++) y[i] = x[i] + value;
}

void q4_ref_scale(float *y, const float *x, long n, float value) {
    for (long i = 0; i < n; i++) y[i] = x[i] * value;
}

void q4_ref_affine_relu(float *y, const float *x, long n, float scale, float shift) {
    for (long i = 0; i < n; i++) {
        float z = x[i] * scale + shift;
        y[i] = z > 0.0f ? z : 0.0f;
    }
}

void q4_ref_affine_relu_backward_sums(double sums[2], const float *da, const float *x, long n,
                                      float scale, float shift, float mean, float invstd) {
    double s0 = 0.0, s1 = 0.0;
    for (long i = 0; i < n; i++) {
        float z = x[i] * scale + shift;
        if (z > 0.0f) {
            float xhat = (x[i] - mean) * invstd;
            s0 += da[i];
            s1 += (double)da[i] * xhat;
        }
    }
    sums[0] += s0;
    sums[1] += s1;
}

void q4_ref_affine_relu_backward_apply(float *dx, const float *da, const float *x, long n,
                                       float scale, float shift, float mean, float invstd,
                                       float k, float mean_dz, float mean_dz_xhat) {
    for (long i = 0; i < n; i++) {
        float z = x[i] * scale + shift;
        float dz = z > 0.0f ? da[i] : 0.0f;
        float xhat = (x[i] - mean) * invstd;
        dx[i] = k * ((dz - mean_dz) - xhat * mean_dz_xhat);
    }
}

/* index (0..3) of a 2x2 window's maximum, scanned as PyTorch's CPU kernel does: the first
 * maximum wins, a NaN always takes over */
static inline int window_argmax(const float v[4]) {
    int best = 0;
    float m = -INFINITY;
    for (int i = 0; i < 4; i++)
        if (v[i] > m || isnan(v[i])) {
            m = v[i];
            best = i;
        }
    return best;
}

void q4_ref_maxpool2_forward(float *out, const float *in, long planes, int h, int w) {
    int oh = h / 2, ow = w / 2;
    for (long p = 0; p < planes; p++) {
        const float *src = in + p * h * w;
        float *dst = out + p * oh * ow;
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++) {
                const float *r0 = src + (2 * y) * w + 2 * x, *r1 = r0 + w;
                float v[4] = {r0[0], r0[1], r1[0], r1[1]};
                dst[y * ow + x] = v[window_argmax(v)];
            }
    }
}

void q4_ref_maxpool2_backward(float *a, const float *dout, long planes, int h, int w) {
    int oh = h / 2, ow = w / 2;
    for (long p = 0; p < planes; p++) {
        float *src = a + p * h * w;
        const float *g = dout + p * oh * ow;
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++) {
                float *r0 = src + (2 * y) * w + 2 * x, *r1 = r0 + w;
                float v[4] = {r0[0], r0[1], r1[0], r1[1]};
                int best = window_argmax(v);
                float gv = g[y * ow + x];
                r0[0] = best == 0 ? gv : 0.0f;
                r0[1] = best == 1 ? gv : 0.0f;
                r1[0] = best == 2 ? gv : 0.0f;
                r1[1] = best == 3 ? gv : 0.0f;
            }
    }
}

float q4_ref_max_abs(const float *x, long n) {
    float m = 0.0f;
    for (long i = 0; i < n; i++) {
        float a = fabsf(x[i]);
        if (a > m || isnan(a)) m = a;
    }
    return m;
}

void q4_ref_quantize(float *y, const float *x, long n, float scale, float max_level) {
    for (long i = 0; i < n; i++) {
        float q = rintf(x[i] / scale);
        q = q < -max_level ? -max_level : (q > max_level ? max_level : q);
        y[i] = q * scale;
    }
}

void q4_ref_adamw(float *w, const float *g, float *m, float *v, long n, const q4_adamw_params *p) {
    for (long i = 0; i < n; i++) {
        float wi = w[i] * p->decay;
        float mi = m[i] * p->beta1 + p->one_minus_beta1 * g[i];
        float vi = v[i] * p->beta2 + p->one_minus_beta2 * g[i] * g[i];
        float denom = sqrtf(vi) / p->bc2_sqrt + p->eps;
        w[i] = wi + p->neg_step_size * mi / denom;
        m[i] = mi;
        v[i] = vi;
    }
}

void q4_ref_sgd(float *w, const float *g, float *b, long n, const q4_sgd_params *p) {
    for (long i = 0; i < n; i++) {
        float d = g[i] + p->weight_decay * w[i];
        float bi = p->momentum * b[i] + d;
        if (p->nesterov) d = d + p->momentum * bi;
        else d = bi;
        w[i] = w[i] - p->lr * d;
        b[i] = bi;
    }
}

void q4_ref_ema(float *avg, const float *x, long n, float decay, float one_minus) {
    for (long i = 0; i < n; i++) avg[i] = avg[i] * decay + x[i] * one_minus;
}

void q4_exact_tanh_clip(float *w, long n, float bound) {
    for (long i = 0; i < n; i++) w[i] = bound * q4_exact_tanhf(w[i] / bound);
}

void q4_ref_tanh_clip(float *w, long n, float bound) {
    for (long i = 0; i < n; i++) w[i] = bound * tanhf(w[i] / bound);
}

/* The portable microkernel: a 4x8 register tile in plain C (compilers vectorize it). */
void q4_ref_microkernel_4x8(int kc, const float *a, const float *b, float *c, long ldc, int accumulate) {
    float acc[4][8] = {{0}};
    for (int p = 0; p < kc; p++)
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 8; j++) acc[i][j] += a[p * 4 + i] * b[p * 8 + j];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 8; j++) c[i * ldc + j] = accumulate ? c[i * ldc + j] + acc[i][j] : acc[i][j];
}
