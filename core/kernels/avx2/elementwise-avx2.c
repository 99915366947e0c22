/* elementwise-avx2.c - AVX2 versions of the elementwise and reduction kernels. Each has
 * the contract of its scalar reference in ../ref/elementwise_ref.c; where the reference
 * rounds in float, this code uses the same operations in the same order (no FMA), so the
 * results are bit-identical except for: sums (double accumulators in another order),
 * tanh (a polynomial within a few ulp of libm), and NaN handling in max pooling. */
#include <immintrin.h>
#include <math.h>

#include "../ref/ref.h"
#include "avx2.h"

static inline double hsum_pd(__m256d v) {
    __m128d lo = _mm256_castpd256_pd128(v), hi = _mm256_extractf128_pd(v, 1);
    lo = _mm_add_pd(lo, hi);
    return _mm_cvtsd_f64(_mm_add_sd(lo, _mm_unpackhi_pd(lo, lo)));
}

static double sum_avx2(const float *x, long n) {
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    long i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
        s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
    }
    double s = hsum_pd(_mm256_add_pd(s0, s1));
    for (; i < n; i++) s += x[i];
    return s;
}

static double centered_sum_squares_avx2(const float *x, long n, double mean) {
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd(), m = _mm256_set1_pd(mean);
    long i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256d d0 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)), m);
        __m256d d1 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)), m);
        s0 = _mm256_add_pd(s0, _mm256_mul_pd(d0, d0));
        s1 = _mm256_add_pd(s1, _mm256_mul_pd(d1, d1));
    }
    double s = hsum_pd(_mm256_add_pd(s0, s1));
    for (; i < n; i++) {
        double d = x[i] - mean;
        s += d * d;
    }
    return s;
}

static double sum_squares_avx2(const float *x, long n) {
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    long i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256d d0 = _mm256_cvtps_pd(_mm256_castps256_ps128(v)), d1 = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
        s0 = _mm256_add_pd(s0, _mm256_mul_pd(d0, d0));
        s1 = _mm256_add_pd(s1, _mm256_mul_pd(d1, d1));
    }
    double s = hsum_pd(_mm256_add_pd(s0, s1));
    for (; i < n; i++) s += (double)x[i] * x[i];
    return s;
}

static void add_scalar_avx2(float *y, const float *x, long n, float value) {
    __m256 v = _mm256_set1_ps(value);
    long i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(x + i), v));
    for (; i < n; i++) y[i] = x[i] + value;
}

static void scale_avx2(float *y, const float *x, long n, float value) {
    __m256 v = _mm256_set1_ps(value);
    long i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), v));
    for (; i < n; i++) y[i] = x[i] * value;
}

static void affine_relu_avx2(float *y, const float *x, long n, float scale, float shift) {
    __m256 s = _mm256_set1_ps(scale), t = _mm256_set1_ps(shift), zero = _mm256_setzero_ps();
    long i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 z = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), s), t);
        _mm256_storeu_ps(y + i, _mm256_max_ps(z, zero)); /* NaN and -0 give +0, as z > 0 ? z : 0 */
    }
    q4_ref_affine_relu(y + i, x + i, n - i, scale, shift);
}

static void affine_relu_backward_sums_avx2(double sums[2], const float *da, const float *x, long n, float scale,
                                           float shift, float mean, float invstd) {
    __m256 s = _mm256_set1_ps(scale), t = _mm256_set1_ps(shift), mu = _mm256_set1_ps(mean);
    __m256 inv = _mm256_set1_ps(invstd), zero = _mm256_setzero_ps();
    __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd(), b0 = _mm256_setzero_pd(), b1 = _mm256_setzero_pd();
    long i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 xv = _mm256_loadu_ps(x + i);
        __m256 z = _mm256_add_ps(_mm256_mul_ps(xv, s), t);
        __m256 dz = _mm256_and_ps(_mm256_cmp_ps(z, zero, _CMP_GT_OQ), _mm256_loadu_ps(da + i));
        __m256 xhat = _mm256_mul_ps(_mm256_sub_ps(xv, mu), inv);
        __m256d dz0 = _mm256_cvtps_pd(_mm256_castps256_ps128(dz)), dz1 = _mm256_cvtps_pd(_mm256_extractf128_ps(dz, 1));
        __m256d xh0 = _mm256_cvtps_pd(_mm256_castps256_ps128(xhat)), xh1 = _mm256_cvtps_pd(_mm256_extractf128_ps(xhat, 1));
        a0 = _mm256_add_pd(a0, dz0);
        a1 = _mm256_add_pd(a1, dz1);
        b0 = _mm256_add_pd(b0, _mm256_mul_pd(dz0, xh0));
        b1 = _mm256_add_pd(b1, _mm256_mul_pd(dz1, xh1));
    }
    sums[0] += hsum_pd(_mm256_add_pd(a0, a1));
    sums[1] += hsum_pd(_mm256_add_pd(b0, b1));
    q4_ref_affine_relu_backward_sums(sums, da + i, x + i, n - i, scale, shift, mean, invstd);
}

static void affine_relu_backward_apply_avx2(float *dx, const float *da, const float *x, long n, float scale,
                                            float shift, float mean, float invstd, float k, float mean_dz,
                                            float mean_dz_xhat) {
    __m256 s = _mm256_set1_ps(scale), t = _mm256_set1_ps(shift), mu = _mm256_set1_ps(mean);
    __m256 inv = _mm256_set1_ps(invstd), zero = _mm256_setzero_ps(), kv = _mm256_set1_ps(k);
    __m256 mdz = _mm256_set1_ps(mean_dz), mdzx = _mm256_set1_ps(mean_dz_xhat);
    long i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 xv = _mm256_loadu_ps(x + i);
        __m256 z = _mm256_add_ps(_mm256_mul_ps(xv, s), t);
        __m256 dz = _mm256_and_ps(_mm256_cmp_ps(z, zero, _CMP_GT_OQ), _mm256_loadu_ps(da + i));
        __m256 xhat = _mm256_mul_ps(_mm256_sub_ps(xv, mu), inv);
        __m256 r = _mm256_sub_ps(_mm256_sub_ps(dz, mdz), _mm256_mul_ps(xhat, mdzx));
        _mm256_storeu_ps(dx + i, _mm256_mul_ps(kv, r));
    }
    q4_ref_affine_relu_backward_apply(dx + i, da + i, x + i, n - i, scale, shift, mean, invstd, k, mean_dz,
                                      mean_dz_xhat);
}

/* Splits 16 consecutive floats (two vectors) into even and odd columns. Both come out in
 * the window order 0,1,4,5,2,3,6,7, which swap_middle_pairs puts back in order. */
static inline void deinterleave(__m256 v0, __m256 v1, __m256 *even, __m256 *odd) {
    *even = _mm256_shuffle_ps(v0, v1, _MM_SHUFFLE(2, 0, 2, 0));
    *odd = _mm256_shuffle_ps(v0, v1, _MM_SHUFFLE(3, 1, 3, 1));
}
static inline __m256 swap_middle_pairs(__m256 v) {
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(v), _MM_SHUFFLE(3, 1, 2, 0)));
}

static void maxpool2_forward_avx2(float *out, const float *in, long planes, int h, int w) {
    if (w % 16) {
        q4_ref_maxpool2_forward(out, in, planes, h, w);
        return;
    }
    int ow = w / 2;
    for (long p = 0; p < planes; p++)
        for (int y = 0; y < h / 2; y++) {
            const float *r0 = in + (p * h + 2 * y) * w, *r1 = r0 + w;
            float *o = out + (p * (h / 2) + y) * ow;
            for (int x = 0; x < w; x += 16) {
                __m256 a, b, c, d;
                deinterleave(_mm256_loadu_ps(r0 + x), _mm256_loadu_ps(r0 + x + 8), &a, &b);
                deinterleave(_mm256_loadu_ps(r1 + x), _mm256_loadu_ps(r1 + x + 8), &c, &d);
                __m256 m = _mm256_max_ps(_mm256_max_ps(a, b), _mm256_max_ps(c, d));
                _mm256_storeu_ps(o + x / 2, swap_middle_pairs(m));
            }
        }
}

static void maxpool2_backward_avx2(float *a_inout, const float *dout, long planes, int h, int w) {
    if (w % 16) {
        q4_ref_maxpool2_backward(a_inout, dout, planes, h, w);
        return;
    }
    int ow = w / 2;
    for (long p = 0; p < planes; p++)
        for (int y = 0; y < h / 2; y++) {
            float *r0 = a_inout + (p * h + 2 * y) * w, *r1 = r0 + w;
            const float *g = dout + (p * (h / 2) + y) * ow;
            for (int x = 0; x < w; x += 16) {
                __m256 a, b, c, d;
                deinterleave(_mm256_loadu_ps(r0 + x), _mm256_loadu_ps(r0 + x + 8), &a, &b);
                deinterleave(_mm256_loadu_ps(r1 + x), _mm256_loadu_ps(r1 + x + 8), &c, &d);
                __m256 m = _mm256_max_ps(_mm256_max_ps(a, b), _mm256_max_ps(c, d));
                /* the first maximum in window order a, b, c, d takes the gradient */
                __m256 ea = _mm256_cmp_ps(a, m, _CMP_EQ_OQ);
                __m256 eb = _mm256_andnot_ps(ea, _mm256_cmp_ps(b, m, _CMP_EQ_OQ));
                __m256 taken = _mm256_or_ps(ea, eb);
                __m256 ec = _mm256_andnot_ps(taken, _mm256_cmp_ps(c, m, _CMP_EQ_OQ));
                __m256 ed = _mm256_andnot_ps(_mm256_or_ps(taken, ec), _mm256_castsi256_ps(_mm256_set1_epi32(-1)));
                __m256 gv = swap_middle_pairs(_mm256_loadu_ps(g + x / 2));
                __m256 ga = _mm256_and_ps(ea, gv), gb = _mm256_and_ps(eb, gv);
                __m256 gc = _mm256_and_ps(ec, gv), gd = _mm256_and_ps(ed, gv);
                _mm256_storeu_ps(r0 + x, _mm256_unpacklo_ps(ga, gb));
                _mm256_storeu_ps(r0 + x + 8, _mm256_unpackhi_ps(ga, gb));
                _mm256_storeu_ps(r1 + x, _mm256_unpacklo_ps(gc, gd));
                _mm256_storeu_ps(r1 + x + 8, _mm256_unpackhi_ps(gc, gd));
            }
        }
}

static float max_abs_avx2(const float *x, long n) {
    __m256 sign = _mm256_set1_ps(-0.0f), m = _mm256_setzero_ps(), nan = _mm256_setzero_ps();
    long i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
        m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v));
    }
    float lanes[8];
    _mm256_storeu_ps(lanes, m);
    float best = q4_ref_max_abs(lanes, 8), tail = q4_ref_max_abs(x + i, n - i);
    if (tail > best || isnan(tail)) best = tail;
    return _mm256_movemask_ps(nan) ? NAN : best;
}

static void quantize_avx2(float *y, const float *x, long n, float scale, float max_level) {
    __m256 s = _mm256_set1_ps(scale), lo = _mm256_set1_ps(-max_level), hi = _mm256_set1_ps(max_level);
    long i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 q = _mm256_round_ps(_mm256_div_ps(_mm256_loadu_ps(x + i), s), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        q = _mm256_min_ps(_mm256_max_ps(q, lo), hi);
        _mm256_storeu_ps(y + i, _mm256_mul_ps(q, s));
    }
    q4_ref_quantize(y + i, x + i, n - i, scale, max_level);
}

static void sgd_avx2(float *w, const float *g, float *b, long n, const q4_sgd_params *p) {
    __m256 lr = _mm256_set1_ps(p->lr), mu = _mm256_set1_ps(p->momentum), wd = _mm256_set1_ps(p->weight_decay);
    long i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 wi = _mm256_loadu_ps(w + i);
        __m256 d = _mm256_add_ps(_mm256_loadu_ps(g + i), _mm256_mul_ps(wd, wi));
        __m256 bi = _mm256_add_ps(_mm256_mul_ps(mu, _mm256_loadu_ps(b + i)), d);
        d = p->nesterov ? _mm256_add_ps(d, _mm256_mul_ps(mu, bi)) : bi;
        _mm256_storeu_ps(w + i, _mm256_sub_ps(wi, _mm256_mul_ps(lr, d)));
        _mm256_storeu_ps(b + i, bi);
    }
    q4_ref_sgd(w + i, g + i, b + i, n - i, p);
}

static void ema_avx2(float *avg, const float *x, long n, float decay, float one_minus) {
    __m256 d = _mm256_set1_ps(decay), c = _mm256_set1_ps(one_minus);
    long i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(avg + i, _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(avg + i), d), _mm256_mul_ps(_mm256_loadu_ps(x + i), c)));
    q4_ref_ema(avg + i, x + i, n - i, decay, one_minus);
}

static void adamw_avx2(float *w, const float *g, float *m, float *v, long n, const q4_adamw_params *p) {
    __m256 decay = _mm256_set1_ps(p->decay), b1 = _mm256_set1_ps(p->beta1), c1 = _mm256_set1_ps(p->one_minus_beta1);
    __m256 b2 = _mm256_set1_ps(p->beta2), c2 = _mm256_set1_ps(p->one_minus_beta2), eps = _mm256_set1_ps(p->eps);
    __m256 step = _mm256_set1_ps(p->neg_step_size), bc2 = _mm256_set1_ps(p->bc2_sqrt);
    long i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 gv = _mm256_loadu_ps(g + i);
        __m256 wi = _mm256_mul_ps(_mm256_loadu_ps(w + i), decay);
        __m256 mi = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(m + i), b1), _mm256_mul_ps(c1, gv));
        __m256 vi = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(v + i), b2), _mm256_mul_ps(_mm256_mul_ps(c2, gv), gv));
        __m256 denom = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(vi), bc2), eps);
        _mm256_storeu_ps(w + i, _mm256_add_ps(wi, _mm256_div_ps(_mm256_mul_ps(step, mi), denom)));
        _mm256_storeu_ps(m + i, mi);
        _mm256_storeu_ps(v + i, vi);
    }
    q4_ref_adamw(w + i, g + i, m + i, v + i, n - i, p);
}

/* tanh: odd polynomial below 0.625 (Cephes tanhf), else 1 - 2 / (exp(2|x|) + 1) with a
 * Cephes-style exp; within a few ulp of libm's tanhf. */
static inline __m256 exp_avx2(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.0f)), _mm256_set1_ps(88.0f));
    __m256 fx = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    x = _mm256_sub_ps(x, _mm256_mul_ps(fx, _mm256_set1_ps(0.693359375f)));
    x = _mm256_sub_ps(x, _mm256_mul_ps(fx, _mm256_set1_ps(-2.12194440e-4f)));
    __m256 z = _mm256_mul_ps(x, x);
    __m256 y = _mm256_set1_ps(1.9875691500e-4f);
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507e-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073e-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894e-2f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459e-1f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201e-1f));
    y = _mm256_fmadd_ps(y, z, _mm256_add_ps(x, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
}

static inline __m256 tanh_avx2(__m256 x) {
    __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 ax = _mm256_andnot_ps(sign, x);
    __m256 z = _mm256_mul_ps(x, x);
    __m256 p = _mm256_set1_ps(-5.70498872745e-3f);
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(2.06390887954e-2f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-5.37397155531e-2f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(1.33314422036e-1f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-3.33332819422e-1f));
    __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(p, z), x, x);
    __m256 e = exp_avx2(_mm256_add_ps(ax, ax));
    __m256 large = _mm256_sub_ps(_mm256_set1_ps(1.0f), _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, _mm256_set1_ps(1.0f))));
    large = _mm256_or_ps(large, _mm256_and_ps(sign, x));
    return _mm256_blendv_ps(large, small, _mm256_cmp_ps(ax, _mm256_set1_ps(0.625f), _CMP_LT_OQ));
}

static void tanh_clip_avx2(float *w, long n, float bound) {
    __m256 b = _mm256_set1_ps(bound);
    long i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(w + i, _mm256_mul_ps(b, tanh_avx2(_mm256_div_ps(_mm256_loadu_ps(w + i), b))));
    q4_ref_tanh_clip(w + i, n - i, bound);
}

const q4_kernels q4_avx2_kernels = {
    "avx2",
    &q4_avx2_gemm_6x16,
    sum_avx2,
    centered_sum_squares_avx2,
    sum_squares_avx2,
    add_scalar_avx2,
    scale_avx2,
    affine_relu_avx2,
    affine_relu_backward_sums_avx2,
    affine_relu_backward_apply_avx2,
    maxpool2_forward_avx2,
    maxpool2_backward_avx2,
    max_abs_avx2,
    quantize_avx2,
    adamw_avx2,
    tanh_clip_avx2,
    sgd_avx2,
    ema_avx2,
    q4_avx2_winograd_input,
    q4_avx2_winograd_output,
    q4_avx2_winograd_gradient,
    q4_avx2_winograd_spread,
    q4_avx2_winograd_merge,
};
