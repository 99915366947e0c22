/* elementwise-wasmsimd.c - WebAssembly SIMD128 versions of the elementwise and reduction
 * kernels, with the contracts of ../ref/elementwise_ref.c. Float arithmetic follows the
 * reference operation by operation (WebAssembly has no FMA), so results are bit-identical
 * except for sums (double accumulators in another order), tanh (a polynomial within a few
 * ulp of libm) and NaN handling in max pooling. */
#include <math.h>
#include <wasm_simd128.h>

#include "../ref/ref.h"
#include "wasmsimd.h"

static inline v128_t promote_high(v128_t v) { return wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(v, v, 2, 3, 2, 3)); }
static inline double hsum_f64(v128_t v) { return wasm_f64x2_extract_lane(v, 0) + wasm_f64x2_extract_lane(v, 1); }

static double sum_wasmsimd(const float *x, long n) {
    v128_t s0 = wasm_f64x2_splat(0.0), s1 = s0;
    long i = 0;
    for (; i + 4 <= n; i += 4) {
        v128_t v = wasm_v128_load(x + i);
        s0 = wasm_f64x2_add(s0, wasm_f64x2_promote_low_f32x4(v));
        s1 = wasm_f64x2_add(s1, promote_high(v));
    }
    double s = hsum_f64(wasm_f64x2_add(s0, s1));
    for (; i < n; i++) s += x[i];
    return s;
}

static double centered_sum_squares_wasmsimd(const float *x, long n, double mean) {
    v128_t s0 = wasm_f64x2_splat(0.0), s1 = s0, m = wasm_f64x2_splat(mean);
    long i = 0;
    for (; i + 4 <= n; i += 4) {
        v128_t v = wasm_v128_load(x + i);
        v128_t d0 = wasm_f64x2_sub(wasm_f64x2_promote_low_f32x4(v), m), d1 = wasm_f64x2_sub(promote_high(v), m);
        s0 = wasm_f64x2_add(s0, wasm_f64x2_mul(d0, d0));
        s1 = wasm_f64x2_add(s1, wasm_f64x2_mul(d1, d1));
    }
    double s = hsum_f64(wasm_f64x2_add(s0, s1));
    for (; i < n; i++) {
        double d = x[i] - mean;
        s += d * d;
    }
    return s;
}

static double sum_squares_wasmsimd(const float *x, long n) {
    v128_t s0 = wasm_f64x2_splat(0.0), s1 = s0;
    long i = 0;
    for (; i + 4 <= n; i += 4) {
        v128_t v = wasm_v128_load(x + i);
        v128_t d0 = wasm_f64x2_promote_low_f32x4(v), d1 = promote_high(v);
        s0 = wasm_f64x2_add(s0, wasm_f64x2_mul(d0, d0));
        s1 = wasm_f64x2_add(s1, wasm_f64x2_mul(d1, d1));
    }
    double s = hsum_f64(wasm_f64x2_add(s0, s1));
    for (; i < n; i++) s += (double)x[i] * x[i];
    return s;
}

static void add_scalar_wasmsimd(float *y, const float *x, long n, float value) {
    v128_t v = wasm_f32x4_splat(value);
    long i = 0;
    for (; i + 4 <= n; i += 4) wasm_v128_store(y + i, wasm_f32x4_add(wasm_v128_load(x + i), v));
    for (; i < n; i++) y[i] = x[i] + value;
}

static void scale_wasmsimd(float *y, const float *x, long n, float value) {
    v128_t v = wasm_f32x4_splat(value);
    long i = 0;
    for (; i + 4 <= n; i += 4) wasm_v128_store(y + i, wasm_f32x4_mul(wasm_v128_load(x + i), v));
    for (; i < n; i++) y[i] = x[i] * value;
}

static void affine_relu_wasmsimd(float *y, const float *x, long n, float scale, float shift) {
    v128_t s = wasm_f32x4_splat(scale), t = wasm_f32x4_splat(shift), zero = wasm_f32x4_splat(0.0f);
    long i = 0;
    for (; i + 4 <= n; i += 4) {
        v128_t z = wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(x + i), s), t);
        wasm_v128_store(y + i, wasm_f32x4_pmax(zero, z)); /* 0 < z ? z : 0: NaN and -0 give +0 */
    }
    q4_ref_affine_relu(y + i, x + i, n - i, scale, shift);
}

static void affine_relu_backward_sums_wasmsimd(double sums[2], const float *da, const float *x, long n, float scale,
                                               float shift, float mean, float invstd) {
    v128_t s = wasm_f32x4_splat(scale), t = wasm_f32x4_splat(shift), mu = wasm_f32x4_splat(mean);
    v128_t inv = wasm_f32x4_splat(invstd), zero = wasm_f32x4_splat(0.0f);
    v128_t a0 = wasm_f64x2_splat(0.0), a1 = a0, b0 = a0, b1 = a0;
    long i = 0;
    for (; i + 4 <= n; i += 4) {
        v128_t xv = wasm_v128_load(x + i);
        v128_t z = wasm_f32x4_add(wasm_f32x4_mul(xv, s), t);
        v128_t dz = wasm_v128_and(wasm_f32x4_gt(z, zero), wasm_v128_load(da + i));
        v128_t xhat = wasm_f32x4_mul(wasm_f32x4_sub(xv, mu), inv);
        v128_t dz0 = wasm_f64x2_promote_low_f32x4(dz), dz1 = promote_high(dz);
        a0 = wasm_f64x2_add(a0, dz0);
        a1 = wasm_f64x2_add(a1, dz1);
        b0 = wasm_f64x2_add(b0, wasm_f64x2_mul(dz0, wasm_f64x2_promote_low_f32x4(xhat)));
        b1 = wasm_f64x2_add(b1, wasm_f64x2_mul(dz1, promote_high(xhat)));
    }
    sums[0] += hsum_f64(wasm_f64x2_add(a0, a1));
    sums[1] += hsum_f64(wasm_f64x2_add(b0, b1));
    q4_ref_affine_relu_backward_sums(sums, da + i, x + i, n - i, scale, shift, mean, invstd);
}

static void affine_relu_backward_apply_wasmsimd(float *dx, const float *da, const float *x, long n, float scale,
                                                float shift, float mean, float invstd, float k, float mean_dz,
                                                float mean_dz_xhat) {
    v128_t s = wasm_f32x4_splat(scale), t = wasm_f32x4_splat(shift), mu = wasm_f32x4_splat(mean);
    v128_t inv = wasm_f32x4_splat(invstd), zero = wasm_f32x4_splat(0.0f), kv = wasm_f32x4_splat(k);
    v128_t mdz = wasm_f32x4_splat(mean_dz), mdzx = wasm_f32x4_splat(mean_dz_xhat);
    long i = 0;
    for (; i + 4 <= n; i += 4) {
        v128_t xv = wasm_v128_load(x + i);
        v128_t z = wasm_f32x4_add(wasm_f32x4_mul(xv, s), t);
        v128_t dz = wasm_v128_and(wasm_f32x4_gt(z, zero), wasm_v128_load(da + i));
        v128_t xhat = wasm_f32x4_mul(wasm_f32x4_sub(xv, mu), inv);
        v128_t r = wasm_f32x4_sub(wasm_f32x4_sub(dz, mdz), wasm_f32x4_mul(xhat, mdzx));
        wasm_v128_store(dx + i, wasm_f32x4_mul(kv, r));
    }
    q4_ref_affine_relu_backward_apply(dx + i, da + i, x + i, n - i, scale, shift, mean, invstd, k, mean_dz,
                                      mean_dz_xhat);
}

static inline v128_t max4(v128_t a, v128_t b) { return wasm_f32x4_pmax(a, b); }

static void maxpool2_forward_wasmsimd(float *out, const float *in, long planes, int h, int w) {
    if (w % 8) {
        q4_ref_maxpool2_forward(out, in, planes, h, w);
        return;
    }
    int ow = w / 2;
    for (long p = 0; p < planes; p++)
        for (int y = 0; y < h / 2; y++) {
            const float *r0 = in + (p * h + 2 * y) * w, *r1 = r0 + w;
            float *o = out + (p * (h / 2) + y) * ow;
            for (int x = 0; x < w; x += 8) {
                v128_t u0 = wasm_v128_load(r0 + x), u1 = wasm_v128_load(r0 + x + 4);
                v128_t l0 = wasm_v128_load(r1 + x), l1 = wasm_v128_load(r1 + x + 4);
                v128_t a = wasm_i32x4_shuffle(u0, u1, 0, 2, 4, 6), b = wasm_i32x4_shuffle(u0, u1, 1, 3, 5, 7);
                v128_t c = wasm_i32x4_shuffle(l0, l1, 0, 2, 4, 6), d = wasm_i32x4_shuffle(l0, l1, 1, 3, 5, 7);
                wasm_v128_store(o + x / 2, max4(max4(a, b), max4(c, d)));
            }
        }
}

static void maxpool2_backward_wasmsimd(float *a_inout, const float *dout, long planes, int h, int w) {
    if (w % 8) {
        q4_ref_maxpool2_backward(a_inout, dout, planes, h, w);
        return;
    }
    int ow = w / 2;
    for (long p = 0; p < planes; p++)
        for (int y = 0; y < h / 2; y++) {
            float *r0 = a_inout + (p * h + 2 * y) * w, *r1 = r0 + w;
            const float *g = dout + (p * (h / 2) + y) * ow;
            for (int x = 0; x < w; x += 8) {
                v128_t u0 = wasm_v128_load(r0 + x), u1 = wasm_v128_load(r0 + x + 4);
                v128_t l0 = wasm_v128_load(r1 + x), l1 = wasm_v128_load(r1 + x + 4);
                v128_t a = wasm_i32x4_shuffle(u0, u1, 0, 2, 4, 6), b = wasm_i32x4_shuffle(u0, u1, 1, 3, 5, 7);
                v128_t c = wasm_i32x4_shuffle(l0, l1, 0, 2, 4, 6), d = wasm_i32x4_shuffle(l0, l1, 1, 3, 5, 7);
                v128_t m = max4(max4(a, b), max4(c, d));
                /* the first maximum in window order a, b, c, d takes the gradient */
                v128_t ea = wasm_f32x4_eq(a, m);
                v128_t eb = wasm_v128_andnot(wasm_f32x4_eq(b, m), ea);
                v128_t taken = wasm_v128_or(ea, eb);
                v128_t ec = wasm_v128_andnot(wasm_f32x4_eq(c, m), taken);
                v128_t ed = wasm_v128_not(wasm_v128_or(taken, ec));
                v128_t gv = wasm_v128_load(g + x / 2);
                v128_t ga = wasm_v128_and(ea, gv), gb = wasm_v128_and(eb, gv);
                v128_t gc = wasm_v128_and(ec, gv), gd = wasm_v128_and(ed, gv);
                wasm_v128_store(r0 + x, wasm_i32x4_shuffle(ga, gb, 0, 4, 1, 5));
                wasm_v128_store(r0 + x + 4, wasm_i32x4_shuffle(ga, gb, 2, 6, 3, 7));
                wasm_v128_store(r1 + x, wasm_i32x4_shuffle(gc, gd, 0, 4, 1, 5));
                wasm_v128_store(r1 + x + 4, wasm_i32x4_shuffle(gc, gd, 2, 6, 3, 7));
            }
        }
}

static float max_abs_wasmsimd(const float *x, long n) {
    v128_t m = wasm_f32x4_splat(0.0f), nan = wasm_i32x4_splat(0);
    long i = 0;
    for (; i + 4 <= n; i += 4) {
        v128_t v = wasm_v128_load(x + i);
        nan = wasm_v128_or(nan, wasm_f32x4_ne(v, v));
        m = wasm_f32x4_pmax(m, wasm_f32x4_abs(v));
    }
    float lanes[4];
    wasm_v128_store(lanes, m);
    float best = q4_ref_max_abs(lanes, 4), tail = q4_ref_max_abs(x + i, n - i);
    if (tail > best || isnan(tail)) best = tail;
    return wasm_v128_any_true(nan) ? NAN : best;
}

static void quantize_wasmsimd(float *y, const float *x, long n, float scale, float max_level) {
    v128_t s = wasm_f32x4_splat(scale), lo = wasm_f32x4_splat(-max_level), hi = wasm_f32x4_splat(max_level);
    long i = 0;
    for (; i + 4 <= n; i += 4) {
        v128_t q = wasm_f32x4_nearest(wasm_f32x4_div(wasm_v128_load(x + i), s)); /* ties to even */
        q = wasm_f32x4_pmin(hi, wasm_f32x4_pmax(lo, q));
        wasm_v128_store(y + i, wasm_f32x4_mul(q, s));
    }
    q4_ref_quantize(y + i, x + i, n - i, scale, max_level);
}

static void sgd_wasmsimd(float *w, const float *g, float *b, long n, const q4_sgd_params *p) {
    v128_t lr = wasm_f32x4_splat(p->lr), mu = wasm_f32x4_splat(p->momentum), wd = wasm_f32x4_splat(p->weight_decay);
    long i = 0;
    for (; i + 4 <= n; i += 4) {
        v128_t wi = wasm_v128_load(w + i);
        v128_t d = wasm_f32x4_add(wasm_v128_load(g + i), wasm_f32x4_mul(wd, wi));
        v128_t bi = wasm_f32x4_add(wasm_f32x4_mul(mu, wasm_v128_load(b + i)), d);
        d = p->nesterov ? wasm_f32x4_add(d, wasm_f32x4_mul(mu, bi)) : bi;
        wasm_v128_store(w + i, wasm_f32x4_sub(wi, wasm_f32x4_mul(lr, d)));
        wasm_v128_store(b + i, bi);
    }
    q4_ref_sgd(w + i, g + i, b + i, n - i, p);
}

static void ema_wasmsimd(float *avg, const float *x, long n, float decay, float one_minus) {
    v128_t d = wasm_f32x4_splat(decay), c = wasm_f32x4_splat(one_minus);
    long i = 0;
    for (; i + 4 <= n; i += 4)
        wasm_v128_store(avg + i, wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(avg + i), d), wasm_f32x4_mul(wasm_v128_load(x + i), c)));
    q4_ref_ema(avg + i, x + i, n - i, decay, one_minus);
}

static void adamw_wasmsimd(float *w, const float *g, float *m, float *v, long n, const q4_adamw_params *p) {
    v128_t decay = wasm_f32x4_splat(p->decay), b1 = wasm_f32x4_splat(p->beta1), c1 = wasm_f32x4_splat(p->one_minus_beta1);
    v128_t b2 = wasm_f32x4_splat(p->beta2), c2 = wasm_f32x4_splat(p->one_minus_beta2), eps = wasm_f32x4_splat(p->eps);
    v128_t step = wasm_f32x4_splat(p->neg_step_size), bc2 = wasm_f32x4_splat(p->bc2_sqrt);
    long i = 0;
    for (; i + 4 <= n; i += 4) {
        v128_t gv = wasm_v128_load(g + i);
        v128_t wi = wasm_f32x4_mul(wasm_v128_load(w + i), decay);
        v128_t mi = wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(m + i), b1), wasm_f32x4_mul(c1, gv));
        v128_t vi = wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(v + i), b2), wasm_f32x4_mul(wasm_f32x4_mul(c2, gv), gv));
        v128_t denom = wasm_f32x4_add(wasm_f32x4_div(wasm_f32x4_sqrt(vi), bc2), eps);
        wasm_v128_store(w + i, wasm_f32x4_add(wi, wasm_f32x4_div(wasm_f32x4_mul(step, mi), denom)));
        wasm_v128_store(m + i, mi);
        wasm_v128_store(v + i, vi);
    }
    q4_ref_adamw(w + i, g + i, m + i, v + i, n - i, p);
}

/* tanh as in the AVX2 kernels: Cephes polynomial below 0.625, else via exp */
static inline v128_t exp_wasmsimd(v128_t x) {
    x = wasm_f32x4_pmin(wasm_f32x4_splat(88.0f), wasm_f32x4_pmax(wasm_f32x4_splat(-87.0f), x));
    v128_t fx = wasm_f32x4_nearest(wasm_f32x4_mul(x, wasm_f32x4_splat(1.44269504088896341f)));
    x = wasm_f32x4_sub(x, wasm_f32x4_mul(fx, wasm_f32x4_splat(0.693359375f)));
    x = wasm_f32x4_sub(x, wasm_f32x4_mul(fx, wasm_f32x4_splat(-2.12194440e-4f)));
    v128_t z = wasm_f32x4_mul(x, x);
    v128_t y = wasm_f32x4_splat(1.9875691500e-4f);
    y = wasm_f32x4_add(wasm_f32x4_mul(y, x), wasm_f32x4_splat(1.3981999507e-3f));
    y = wasm_f32x4_add(wasm_f32x4_mul(y, x), wasm_f32x4_splat(8.3334519073e-3f));
    y = wasm_f32x4_add(wasm_f32x4_mul(y, x), wasm_f32x4_splat(4.1665795894e-2f));
    y = wasm_f32x4_add(wasm_f32x4_mul(y, x), wasm_f32x4_splat(1.6666665459e-1f));
    y = wasm_f32x4_add(wasm_f32x4_mul(y, x), wasm_f32x4_splat(5.0000001201e-1f));
    y = wasm_f32x4_add(wasm_f32x4_mul(y, z), wasm_f32x4_add(x, wasm_f32x4_splat(1.0f)));
    v128_t e = wasm_i32x4_shl(wasm_i32x4_add(wasm_i32x4_trunc_sat_f32x4(fx), wasm_i32x4_splat(127)), 23);
    return wasm_f32x4_mul(y, e);
}

static inline v128_t tanh_wasmsimd(v128_t x) {
    v128_t sign = wasm_f32x4_splat(-0.0f);
    v128_t ax = wasm_f32x4_abs(x);
    v128_t z = wasm_f32x4_mul(x, x);
    v128_t p = wasm_f32x4_splat(-5.70498872745e-3f);
    p = wasm_f32x4_add(wasm_f32x4_mul(p, z), wasm_f32x4_splat(2.06390887954e-2f));
    p = wasm_f32x4_add(wasm_f32x4_mul(p, z), wasm_f32x4_splat(-5.37397155531e-2f));
    p = wasm_f32x4_add(wasm_f32x4_mul(p, z), wasm_f32x4_splat(1.33314422036e-1f));
    p = wasm_f32x4_add(wasm_f32x4_mul(p, z), wasm_f32x4_splat(-3.33332819422e-1f));
    v128_t small = wasm_f32x4_add(wasm_f32x4_mul(wasm_f32x4_mul(p, z), x), x);
    v128_t e = exp_wasmsimd(wasm_f32x4_add(ax, ax));
    v128_t large = wasm_f32x4_sub(wasm_f32x4_splat(1.0f),
                                  wasm_f32x4_div(wasm_f32x4_splat(2.0f), wasm_f32x4_add(e, wasm_f32x4_splat(1.0f))));
    large = wasm_v128_or(large, wasm_v128_and(sign, x));
    return wasm_v128_bitselect(small, large, wasm_f32x4_lt(ax, wasm_f32x4_splat(0.625f)));
}

static void tanh_clip_wasmsimd(float *w, long n, float bound) {
    v128_t b = wasm_f32x4_splat(bound);
    long i = 0;
    for (; i + 4 <= n; i += 4)
        wasm_v128_store(w + i, wasm_f32x4_mul(b, tanh_wasmsimd(wasm_f32x4_div(wasm_v128_load(w + i), b))));
    q4_ref_tanh_clip(w + i, n - i, bound);
}

const q4_kernels q4_wasmsimd_kernels = {
    "wasmsimd",
    &q4_wasmsimd_gemm_6x8,
    sum_wasmsimd,
    centered_sum_squares_wasmsimd,
    sum_squares_wasmsimd,
    add_scalar_wasmsimd,
    scale_wasmsimd,
    affine_relu_wasmsimd,
    affine_relu_backward_sums_wasmsimd,
    affine_relu_backward_apply_wasmsimd,
    maxpool2_forward_wasmsimd,
    maxpool2_backward_wasmsimd,
    max_abs_wasmsimd,
    quantize_wasmsimd,
    adamw_wasmsimd,
    tanh_clip_wasmsimd,
    sgd_wasmsimd,
    ema_wasmsimd,
    q4_wasmsimd_winograd_input,
    q4_wasmsimd_winograd_output,
    q4_wasmsimd_winograd_gradient,
    q4_wasmsimd_winograd_spread,
    q4_wasmsimd_winograd_merge,
};
