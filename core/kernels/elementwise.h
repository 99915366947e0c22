/* elementwise.h - the elementwise and reduction kernels (BatchNorm with ReLU, max pooling, the
 * quantizer, the optimizers, the tanh clip, the sums), written once on GCC/Clang vector types.
 * Each SIMD kernel file includes it with its vector width (avx2/: 32 bytes, wasmsimd/: 16) and
 * the few operations vector types lack, as macros on ew_f vectors:
 *   EW_MAX(a, b)                the ISA's own max (their NaN rules differ; kept as they were)
 *   EW_ROUND(a)                 to the nearest integer, ties to even
 *   EW_SQRT(a)
 *   EW_MULADD(a, b, c)          a*b + c, fused where the ISA has it (only tanh's polynomial uses it)
 * The contracts are those of the scalar references in ref/elementwise-ref.c, which stay plain
 * loops written apart from this file: they are the specification the tests hold every instance
 * to. Where the reference rounds in float, the code here does the same operations in the same
 * order (no FMA: -ffp-contract=off), so the results are bit-identical to it, except for: sums
 * (double accumulators: lane by lane, two half-vectors, then the halves of the sum folded),
 * tanh (a polynomial within a few ulp of libm) and NaN handling in max pooling. */
#ifndef Q4_ELEMENTWISE_H
#define Q4_ELEMENTWISE_H

#include <math.h>
#include <string.h>

#include "ref/ref.h"

#if !defined(EW_VECTOR_BYTES) || !defined(EW_MAX) || !defined(EW_ROUND) || !defined(EW_SQRT) || !defined(EW_MULADD)
#error "define EW_VECTOR_BYTES and EW_MAX, EW_ROUND, EW_SQRT, EW_MULADD before including elementwise.h"
#endif
#define EW_LANES (EW_VECTOR_BYTES / 4)
typedef float ew_f __attribute__((vector_size(EW_VECTOR_BYTES)));
typedef int ew_i __attribute__((vector_size(EW_VECTOR_BYTES)));
typedef float ew_half __attribute__((vector_size(EW_VECTOR_BYTES / 2)));
typedef double ew_d __attribute__((vector_size(EW_VECTOR_BYTES))); /* EW_LANES / 2 doubles */

/* lane index lists: the low and high halves, even and odd lanes of two vectors, and the
 * interleave of two vectors' low (then high) halves */
#if EW_LANES == 8
#define EW_LOW 0, 1, 2, 3
#define EW_HIGH 4, 5, 6, 7
#define EW_EVEN 0, 2, 4, 6, 8, 10, 12, 14
#define EW_ODD 1, 3, 5, 7, 9, 11, 13, 15
#define EW_ZIP_LOW 0, 8, 1, 9, 2, 10, 3, 11
#define EW_ZIP_HIGH 4, 12, 5, 13, 6, 14, 7, 15
#elif EW_LANES == 4
#define EW_LOW 0, 1
#define EW_HIGH 2, 3
#define EW_EVEN 0, 2, 4, 6
#define EW_ODD 1, 3, 5, 7
#define EW_ZIP_LOW 0, 4, 1, 5
#define EW_ZIP_HIGH 2, 6, 3, 7
#else
#error "elementwise.h: 16- or 32-byte vectors"
#endif

static inline ew_f ew_load(const float *p) {
    ew_f v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline void ew_store(float *p, ew_f v) { memcpy(p, &v, sizeof v); }
/* x in every lane, as an initializer list: Emscripten's clang turned a lane-by-lane loop into
 * stores and a reload through the stack in every iteration of the loops that use it (the
 * SIMD128 tanh clip took 26 times as long as with wasm_f32x4_splat) */
static inline ew_f ew_splat(float x) {
#if EW_LANES == 8
    return (ew_f){x, x, x, x, x, x, x, x};
#else
    return (ew_f){x, x, x, x};
#endif
}
/* a where mask is set (all ones), else b */
static inline ew_f ew_select(ew_i mask, ew_f a, ew_f b) { return (ew_f)((mask & (ew_i)a) | (~mask & (ew_i)b)); }
static inline ew_f ew_and(ew_i mask, ew_f a) { return (ew_f)(mask & (ew_i)a); }
static inline ew_f ew_abs(ew_f a) { return (ew_f)((ew_i)a & 0x7fffffff); }
/* the low and high halves of a float vector, in double precision */
static inline ew_d ew_low(ew_f v) { return __builtin_convertvector((ew_half)__builtin_shufflevector(v, v, EW_LOW), ew_d); }
static inline ew_d ew_high(ew_f v) { return __builtin_convertvector((ew_half)__builtin_shufflevector(v, v, EW_HIGH), ew_d); }
/* the lanes of a double vector summed by folding halves: (d0 + d2) + (d1 + d3), or d0 + d1 */
static inline double ew_hsum(ew_d v) {
#if EW_LANES == 8
    typedef double d2 __attribute__((vector_size(16)));
    d2 a = __builtin_shufflevector(v, v, 0, 1) + __builtin_shufflevector(v, v, 2, 3);
    return a[0] + a[1];
#else
    return v[0] + v[1];
#endif
}

/* ------------------------------------------------------------ sums (double accumulators) */

static double ew_sum(const float *x, long n) {
    ew_d s0 = {0}, s1 = {0};
    long i = 0;
    for (; i + EW_LANES <= n; i += EW_LANES) {
        ew_f v = ew_load(x + i);
        s0 += ew_low(v);
        s1 += ew_high(v);
    }
    double s = ew_hsum(s0 + s1);
    for (; i < n; i++) s += x[i];
    return s;
}

static double ew_centered_sum_squares(const float *x, long n, double mean) {
    ew_d s0 = {0}, s1 = {0};
    long i = 0;
    for (; i + EW_LANES <= n; i += EW_LANES) {
        ew_f v = ew_load(x + i);
        ew_d d0 = ew_low(v) - mean, d1 = ew_high(v) - mean;
        s0 += d0 * d0;
        s1 += d1 * d1;
    }
    double s = ew_hsum(s0 + s1);
    for (; i < n; i++) {
        double d = x[i] - mean;
        s += d * d;
    }
    return s;
}

static double ew_sum_squares(const float *x, long n) {
    ew_d s0 = {0}, s1 = {0};
    long i = 0;
    for (; i + EW_LANES <= n; i += EW_LANES) {
        ew_f v = ew_load(x + i);
        ew_d d0 = ew_low(v), d1 = ew_high(v);
        s0 += d0 * d0;
        s1 += d1 * d1;
    }
    double s = ew_hsum(s0 + s1);
    for (; i < n; i++) s += (double)x[i] * x[i];
    return s;
}

/* ------------------------------------------------------------ bias, scale, BatchNorm + ReLU */

static void ew_add_scalar(float *y, const float *x, long n, float value) {
    long i = 0;
    for (; i + EW_LANES <= n; i += EW_LANES) ew_store(y + i, ew_load(x + i) + value);
    for (; i < n; i++) y[i] = x[i] + value;
}

static void ew_scale(float *y, const float *x, long n, float value) {
    long i = 0;
    for (; i + EW_LANES <= n; i += EW_LANES) ew_store(y + i, ew_load(x + i) * value);
    for (; i < n; i++) y[i] = x[i] * value;
}

static void ew_affine_relu(float *y, const float *x, long n, float scale, float shift) {
    long i = 0;
    for (; i + EW_LANES <= n; i += EW_LANES) {
        ew_f z = ew_load(x + i) * scale + shift;
        ew_store(y + i, ew_and(z > 0.0f, z)); /* NaN and -0 give +0, as z > 0 ? z : 0 */
    }
    q4_ref_affine_relu(y + i, x + i, n - i, scale, shift);
}

static void ew_affine_relu_backward_sums(double sums[2], const float *da, const float *x, long n, float scale,
                                         float shift, float mean, float invstd) {
    ew_d a0 = {0}, a1 = {0}, b0 = {0}, b1 = {0};
    long i = 0;
    for (; i + EW_LANES <= n; i += EW_LANES) {
        ew_f xv = ew_load(x + i);
        ew_f z = xv * scale + shift;
        ew_f dz = ew_and(z > 0.0f, ew_load(da + i));
        ew_f xhat = (xv - mean) * invstd;
        ew_d dz0 = ew_low(dz), dz1 = ew_high(dz);
        a0 += dz0;
        a1 += dz1;
        b0 += dz0 * ew_low(xhat);
        b1 += dz1 * ew_high(xhat);
    }
    sums[0] += ew_hsum(a0 + a1);
    sums[1] += ew_hsum(b0 + b1);
    q4_ref_affine_relu_backward_sums(sums, da + i, x + i, n - i, scale, shift, mean, invstd);
}

static void ew_affine_relu_backward_apply(float *dx, const float *da, const float *x, long n, float scale, float shift,
                                          float mean, float invstd, float k, float mean_dz, float mean_dz_xhat) {
    long i = 0;
    for (; i + EW_LANES <= n; i += EW_LANES) {
        ew_f xv = ew_load(x + i);
        ew_f z = xv * scale + shift;
        ew_f dz = ew_and(z > 0.0f, ew_load(da + i));
        ew_f xhat = (xv - mean) * invstd;
        ew_store(dx + i, k * ((dz - mean_dz) - xhat * mean_dz_xhat));
    }
    q4_ref_affine_relu_backward_apply(dx + i, da + i, x + i, n - i, scale, shift, mean, invstd, k, mean_dz, mean_dz_xhat);
}

/* ------------------------------------------------------------ 2x2 max pooling
 * Two vectors of a row at a time: their even and odd columns are the windows' left and right
 * values. A row's width must be a multiple of 2 * EW_LANES (else the reference runs). */

/* EW_LANES windows' values, top left (a), top right (b), bottom left (c), bottom right (d),
 * from two rows of 2 * EW_LANES floats */
static inline void ew_windows(const float *top, const float *bottom, ew_f *a, ew_f *b, ew_f *c, ew_f *d) {
    ew_f u0 = ew_load(top), u1 = ew_load(top + EW_LANES), l0 = ew_load(bottom), l1 = ew_load(bottom + EW_LANES);
    *a = __builtin_shufflevector(u0, u1, EW_EVEN);
    *b = __builtin_shufflevector(u0, u1, EW_ODD);
    *c = __builtin_shufflevector(l0, l1, EW_EVEN);
    *d = __builtin_shufflevector(l0, l1, EW_ODD);
}

static void ew_maxpool2_forward(float *out, const float *in, long planes, int h, int w) {
    if (w % (2 * EW_LANES)) {
        q4_ref_maxpool2_forward(out, in, planes, h, w);
        return;
    }
    int ow = w / 2;
    for (long p = 0; p < planes; p++)
        for (int y = 0; y < h / 2; y++) {
            const float *r0 = in + (p * h + 2 * y) * w, *r1 = r0 + w;
            float *o = out + (p * (h / 2) + y) * ow;
            for (int x = 0; x < w; x += 2 * EW_LANES) {
                ew_f a, b, c, d;
                ew_windows(r0 + x, r1 + x, &a, &b, &c, &d);
                ew_store(o + x / 2, EW_MAX(EW_MAX(a, b), EW_MAX(c, d)));
            }
        }
}

static void ew_maxpool2_backward(float *a_inout, const float *dout, long planes, int h, int w) {
    if (w % (2 * EW_LANES)) {
        q4_ref_maxpool2_backward(a_inout, dout, planes, h, w);
        return;
    }
    int ow = w / 2;
    for (long p = 0; p < planes; p++)
        for (int y = 0; y < h / 2; y++) {
            float *r0 = a_inout + (p * h + 2 * y) * w, *r1 = r0 + w;
            const float *g = dout + (p * (h / 2) + y) * ow;
            for (int x = 0; x < w; x += 2 * EW_LANES) {
                ew_f a, b, c, d;
                ew_windows(r0 + x, r1 + x, &a, &b, &c, &d);
                ew_f m = EW_MAX(EW_MAX(a, b), EW_MAX(c, d));
                /* the first maximum in window order a, b, c, d takes the gradient */
                ew_i ea = a == m, eb = (b == m) & ~ea, taken = ea | eb, ec = (c == m) & ~taken, ed = ~(taken | ec);
                ew_f gv = ew_load(g + x / 2);
                ew_f ga = ew_and(ea, gv), gb = ew_and(eb, gv), gc = ew_and(ec, gv), gd = ew_and(ed, gv);
                ew_store(r0 + x, __builtin_shufflevector(ga, gb, EW_ZIP_LOW));
                ew_store(r0 + x + EW_LANES, __builtin_shufflevector(ga, gb, EW_ZIP_HIGH));
                ew_store(r1 + x, __builtin_shufflevector(gc, gd, EW_ZIP_LOW));
                ew_store(r1 + x + EW_LANES, __builtin_shufflevector(gc, gd, EW_ZIP_HIGH));
            }
        }
}

/* ------------------------------------------------------------ the quantizer */

static float ew_max_abs(const float *x, long n) {
    ew_f m = {0};
    ew_i nan = {0};
    long i = 0;
    for (; i + EW_LANES <= n; i += EW_LANES) {
        ew_f v = ew_load(x + i);
        nan |= v != v;
        m = EW_MAX(m, ew_abs(v));
    }
    float lanes[EW_LANES];
    ew_store(lanes, m);
    float best = q4_ref_max_abs(lanes, EW_LANES), tail = q4_ref_max_abs(x + i, n - i);
    if (tail > best || isnan(tail)) best = tail;
    int any = 0;
    for (int l = 0; l < EW_LANES; l++) any |= nan[l];
    return any ? NAN : best;
}

static void ew_quantize(float *y, const float *x, long n, float scale, float max_level) {
    long i = 0;
    for (; i + EW_LANES <= n; i += EW_LANES) {
        ew_f q = EW_ROUND(ew_load(x + i) / scale);
        q = ew_select(q > -max_level, q, ew_splat(-max_level)); /* NaN gives -max_level */
        q = ew_select(q < max_level, q, ew_splat(max_level));
        ew_store(y + i, q * scale);
    }
    q4_ref_quantize(y + i, x + i, n - i, scale, max_level);
}

/* ------------------------------------------------------------ optimizers */

/* The optimizers take their scalars into locals first: w and the buffers might alias *p as far
 * as the compiler knows, which made it reload and re-broadcast each one in every iteration. */
static void ew_sgd(float *w, const float *g, float *b, long n, const q4_sgd_params *p) {
    const ew_f lr = ew_splat(p->lr), mu = ew_splat(p->momentum), wd = ew_splat(p->weight_decay);
    const int nesterov = p->nesterov;
    long i = 0;
    for (; i + EW_LANES <= n; i += EW_LANES) {
        ew_f wi = ew_load(w + i);
        ew_f d = ew_load(g + i) + wd * wi;
        ew_f bi = mu * ew_load(b + i) + d;
        d = nesterov ? d + mu * bi : bi;
        ew_store(w + i, wi - lr * d);
        ew_store(b + i, bi);
    }
    q4_ref_sgd(w + i, g + i, b + i, n - i, p);
}

static void ew_ema(float *avg, const float *x, long n, float decay, float one_minus) {
    long i = 0;
    for (; i + EW_LANES <= n; i += EW_LANES) ew_store(avg + i, ew_load(avg + i) * decay + ew_load(x + i) * one_minus);
    q4_ref_ema(avg + i, x + i, n - i, decay, one_minus);
}

static void ew_adamw(float *w, const float *g, float *m, float *v, long n, const q4_adamw_params *p) {
    const ew_f decay = ew_splat(p->decay), beta1 = ew_splat(p->beta1), beta2 = ew_splat(p->beta2),
               one_minus_beta1 = ew_splat(p->one_minus_beta1), one_minus_beta2 = ew_splat(p->one_minus_beta2),
               bc2_sqrt = ew_splat(p->bc2_sqrt), eps = ew_splat(p->eps), neg_step_size = ew_splat(p->neg_step_size);
    long i = 0;
    for (; i + EW_LANES <= n; i += EW_LANES) {
        ew_f gv = ew_load(g + i);
        ew_f wi = ew_load(w + i) * decay;
        ew_f mi = ew_load(m + i) * beta1 + one_minus_beta1 * gv;
        ew_f vi = ew_load(v + i) * beta2 + one_minus_beta2 * gv * gv;
        ew_f denom = EW_SQRT(vi) / bc2_sqrt + eps;
        ew_store(w + i, wi + neg_step_size * mi / denom);
        ew_store(m + i, mi);
        ew_store(v + i, vi);
    }
    q4_ref_adamw(w + i, g + i, m + i, v + i, n - i, p);
}

/* ------------------------------------------------------------ the tanh clip
 * tanh: odd polynomial below 0.625 (Cephes tanhf), else 1 - 2 / (exp(2|x|) + 1) with a
 * Cephes-style exp; within a few ulp of libm's tanhf. */

static inline ew_f ew_exp(ew_f x) {
    x = ew_select(x > -87.0f, x, ew_splat(-87.0f));
    x = ew_select(x < 88.0f, x, ew_splat(88.0f));
    ew_f fx = EW_ROUND(x * 1.44269504088896341f);
    x = x - fx * 0.693359375f;
    x = x - fx * -2.12194440e-4f;
    ew_f z = x * x;
    ew_f y = ew_splat(1.9875691500e-4f);
    y = EW_MULADD(y, x, ew_splat(1.3981999507e-3f));
    y = EW_MULADD(y, x, ew_splat(8.3334519073e-3f));
    y = EW_MULADD(y, x, ew_splat(4.1665795894e-2f));
    y = EW_MULADD(y, x, ew_splat(1.6666665459e-1f));
    y = EW_MULADD(y, x, ew_splat(5.0000001201e-1f));
    y = EW_MULADD(y, z, x + 1.0f);
    ew_i e = (__builtin_convertvector(fx, ew_i) + 127) << 23; /* fx is a whole number */
    return y * (ew_f)e;
}

static inline ew_f ew_tanh(ew_f x) {
    ew_f ax = ew_abs(x);
    ew_f z = x * x;
    ew_f p = ew_splat(-5.70498872745e-3f);
    p = EW_MULADD(p, z, ew_splat(2.06390887954e-2f));
    p = EW_MULADD(p, z, ew_splat(-5.37397155531e-2f));
    p = EW_MULADD(p, z, ew_splat(1.33314422036e-1f));
    p = EW_MULADD(p, z, ew_splat(-3.33332819422e-1f));
    ew_f small = EW_MULADD(p * z, x, x);
    ew_f e = ew_exp(ax + ax);
    ew_f large = 1.0f - 2.0f / (e + 1.0f);
    large = (ew_f)((ew_i)large | ((ew_i)x & (-2147483647 - 1))); /* the sign of x */
    return ew_select(ax < 0.625f, small, large);
}

static void ew_tanh_clip(float *w, long n, float bound) {
    long i = 0;
    for (; i + EW_LANES <= n; i += EW_LANES) ew_store(w + i, bound * ew_tanh(ew_load(w + i) / bound));
    q4_ref_tanh_clip(w + i, n - i, bound);
}

/* The kernel table's elementwise entries, in its order (kernels.h), between the GEMM variant and
 * the Winograd transforms. */
#define EW_TABLE_ENTRIES                                                                                              \
    ew_sum, ew_centered_sum_squares, ew_sum_squares, ew_add_scalar, ew_scale, ew_affine_relu,                         \
        ew_affine_relu_backward_sums, ew_affine_relu_backward_apply, ew_maxpool2_forward, ew_maxpool2_backward,       \
        ew_max_abs, ew_quantize, ew_adamw, ew_tanh_clip, ew_sgd, ew_ema

#endif
