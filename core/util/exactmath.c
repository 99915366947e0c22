/* exactmath.c - the functions of exactmath.h. Range reduction in the classic Cody-Waite way
 * (constants split so that k * hi is exact), then polynomials evaluated by Horner's rule.
 * Only +, -, *, / on doubles and exact operations on bits: the result depends on nothing but
 * IEEE 754 (and -ffp-contract=off, which the whole build uses). */
#include "exactmath.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

static double from_bits(uint64_t u) {
    double d;
    memcpy(&d, &u, 8);
    return d;
}

static uint64_t to_bits(double d) {
    uint64_t u;
    memcpy(&u, &d, 8);
    return u;
}

/* x * 2^k: exact where the result is normal; below, one more rounding (the same in every build) */
static double scale2(double x, int k) {
    while (k > 1023) {
        x *= 0x1p1023;
        k -= 1023;
    }
    while (k < -1022) {
        x *= 0x1p-1022;
        k += 1022;
    }
    return x * from_bits((uint64_t)(k + 1023) << 52);
}

/* round to nearest, ties to even, without libm */
static double round_even(double x) {
    const double shift = 0x1.8p52; /* adding and subtracting it rounds |x| < 2^51 to an integer */
    return x >= 0 ? (x + shift) - shift : (x - shift) + shift;
}

double q4_exact_exp(double x) {
    if (x != x) return x;
    if (x > 709.782712893384) return INFINITY;
    if (x < -745.1332191019412) return 0.0;
    const double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;
    const double inv_ln2 = 1.44269504088896338700e+00;
    double k = round_even(x * inv_ln2);
    double r = (x - k * ln2_hi) - k * ln2_lo; /* |r| <= 0.3466 */
    /* e^r = sum r^n / n!, n = 0..14: the first term left out is below 1e-18 */
    static const double c[15] = {1.0,
                                 1.0,
                                 1.0 / 2,
                                 1.0 / 6,
                                 1.0 / 24,
                                 1.0 / 120,
                                 1.0 / 720,
                                 1.0 / 5040,
                                 1.0 / 40320,
                                 1.0 / 362880,
                                 1.0 / 3628800,
                                 1.0 / 39916800,
                                 1.0 / 479001600,
                                 1.0 / 6227020800.0,
                                 1.0 / 87178291200.0};
    double p = c[14];
    for (int i = 13; i >= 0; i--) p = p * r + c[i];
    return scale2(p, (int)k);
}

double q4_exact_log(double x) {
    if (x != x || x < 0) return NAN;
    if (x == 0) return -INFINITY;
    if (x == INFINITY) return x;
    int e = 0;
    if (x < 0x1p-1022) { /* subnormal: make it normal first */
        x *= 0x1p54;
        e = -54;
    }
    uint64_t u = to_bits(x);
    e += (int)((u >> 52) & 0x7ff) - 1023;
    double m = from_bits((u & 0x000fffffffffffffull) | 0x3ff0000000000000ull); /* in [1, 2) */
    if (m > 1.4142135623730951) {
        m *= 0.5;
        e++;
    }
    /* log m = 2 atanh(s), s = (m - 1) / (m + 1), |s| <= 0.1716 */
    double s = (m - 1.0) / (m + 1.0), s2 = s * s;
    double p = 1.0 / 25;
    for (int k = 11; k >= 0; k--) p = p * s2 + 1.0 / (2 * k + 1);
    const double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;
    return (double)e * ln2_hi + (2.0 * s * p + (double)e * ln2_lo);
}

/* sin and cos of r, |r| <= pi/4, by their Taylor series to r^19 and r^20 (the next terms are
 * below 1e-20), in Horner's form over r^2 */
static double sin_small(double r) {
    static const double c[9] = {1.0 / 355687428096000.0, -1.0 / 1307674368000.0, 1.0 / 6227020800.0,
                                -1.0 / 39916800.0,       1.0 / 362880.0,         -1.0 / 5040.0,
                                1.0 / 120.0,             -1.0 / 6.0};
    double r2 = r * r, p = -1.0 / 121645100408832000.0; /* r^19: -1/19! */
    for (int i = 0; i < 8; i++) p = p * r2 + c[i];    /* r^17 ... r^3 */
    return r + r * r2 * p;
}

static double cos_small(double r) {
    static const double c[10] = {-1.0 / 6402373705728000.0, 1.0 / 20922789888000.0, -1.0 / 87178291200.0,
                                 1.0 / 479001600.0,         -1.0 / 3628800.0,     1.0 / 40320.0,
                                 -1.0 / 720.0,              1.0 / 24.0,           -1.0 / 2.0};
    double r2 = r * r, p = 1.0 / 2432902008176640000.0; /* r^20: 1/20! */
    for (int i = 0; i < 9; i++) p = p * r2 + c[i];       /* r^18 ... r^2 */
    return 1.0 + r2 * p;
}

/* x = k * pi/2 + r, |r| <= pi/4 (|x| below 2^30: the split constant keeps k * hi exact) */
static double reduce_half_pi(double x, int *quadrant) {
    const double pio2_hi = 1.57079632673412561417e+00, pio2_lo = 6.07710050650619224932e-11;
    const double two_over_pi = 6.36619772367581382433e-01;
    double k = round_even(x * two_over_pi);
    *quadrant = (int)((long long)k & 3);
    return (x - k * pio2_hi) - k * pio2_lo;
}

double q4_exact_sin(double x) {
    if (x != x || x == INFINITY || x == -INFINITY) return NAN;
    int q;
    double r = reduce_half_pi(x, &q);
    switch (q) {
    case 0: return sin_small(r);
    case 1: return cos_small(r);
    case 2: return -sin_small(r);
    default: return -cos_small(r);
    }
}

double q4_exact_cos(double x) {
    if (x != x || x == INFINITY || x == -INFINITY) return NAN;
    int q;
    double r = reduce_half_pi(x, &q);
    switch (q) {
    case 0: return cos_small(r);
    case 1: return -sin_small(r);
    case 2: return -cos_small(r);
    default: return sin_small(r);
    }
}

double q4_exact_pow_int(double x, long long n) {
    double result = 1.0;
    while (n > 0) {
        if (n & 1) result *= x;
        x *= x;
        n >>= 1;
    }
    return result;
}

float q4_exact_tanhf(float x) {
    double a = x < 0 ? -(double)x : (double)x;
    double t = a > 20.0 ? 1.0 : 1.0 - 2.0 / (q4_exact_exp(2.0 * a) + 1.0);
    return (float)(x < 0 ? -t : t);
}
