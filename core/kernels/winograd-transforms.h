/* winograd-transforms.h - the arithmetic of Winograd's F(2x2, 3x3) and F(4x4, 3x3) transforms, over `lanes`
 * tiles side by side (one tile per lane, lanes contiguous), as plain loops that every ISA's
 * kernel file includes with its vector width (ref/winograd-ref.c: one float; avx2/,
 * avx512/, wasmsimd/: their registers' width). No operation is reordered or fused (-ffp-contract=off), so
 * every ISA computes the same bits. For F(m x m, 3x3), with d the a x a input tile (a = m + 2),
 * g the 3x3 kernel and the B, G, A matrices of Lavin and Gray (2016):
 *   input     V = B^T d B     (a^2 values per tile: 16 or 36)
 *   output    Y = A^T M A     (m x m values per tile, from the a^2 products M)
 *   gradient  dM = A dY A^T   (a^2 values per tile, from the m x m output gradient dY;
 *                              the weight gradient is then G^T (sum over tiles dM . V) G)
 * Tile elements are row-major: element (r, q) of a tile is number r*a + q (or r*m + q). */
#ifndef Q4_WINOGRAD_TRANSFORMS_H
#define Q4_WINOGRAD_TRANSFORMS_H

#include <string.h>

/* The including file sets WT_VECTOR_BYTES to its vector width (the reference: 4, one float):
 * the loops below run on GCC/Clang vector types of that width, lane by lane the same
 * arithmetic, and a ragged last group goes through a zero-padded copy. */
#ifndef WT_VECTOR_BYTES
#error "define WT_VECTOR_BYTES before including winograd-transforms.h"
#endif
#define WT_LANES (WT_VECTOR_BYTES / 4)
typedef float wt_vec __attribute__((vector_size(WT_VECTOR_BYTES)));

static inline wt_vec wt_load(const float *p, int n) {
    wt_vec v;
    if (n == WT_LANES) {
        memcpy(&v, p, sizeof v);
    } else {
        float t[WT_LANES] = {0};
        memcpy(t, p, (size_t)n * sizeof(float));
        memcpy(&v, t, sizeof v);
    }
    return v;
}

static inline void wt_store(float *p, wt_vec v, int n) {
    if (n == WT_LANES) memcpy(p, &v, sizeof v);
    else memcpy(p, &v, (size_t)n * sizeof(float));
}

/* v[xi * v_stride + l] = V[xi] of tile l; d: [16][lanes], element 4r+q of the tile at d[(4r+q)*lanes + l] */
static inline void winograd2_input(float *restrict v, long v_stride, const float *restrict d, int lanes) {
    for (int l = 0; l < lanes; l += WT_LANES) {
        int n = lanes - l < WT_LANES ? lanes - l : WT_LANES;
        wt_vec b[4][4];
        for (int q = 0; q < 4; q++) {
            wt_vec d0 = wt_load(d + (0 + q) * lanes + l, n), d1 = wt_load(d + (4 + q) * lanes + l, n);
            wt_vec d2 = wt_load(d + (8 + q) * lanes + l, n), d3 = wt_load(d + (12 + q) * lanes + l, n);
            b[0][q] = d0 - d2;
            b[1][q] = d1 + d2;
            b[2][q] = d2 - d1;
            b[3][q] = d1 - d3;
        }
        for (int r = 0; r < 4; r++) {
            wt_store(v + (4 * r + 0) * v_stride + l, b[r][0] - b[r][2], n);
            wt_store(v + (4 * r + 1) * v_stride + l, b[r][1] + b[r][2], n);
            wt_store(v + (4 * r + 2) * v_stride + l, b[r][2] - b[r][1], n);
            wt_store(v + (4 * r + 3) * v_stride + l, b[r][1] - b[r][3], n);
        }
    }
}

/* y[j * lanes + l] = Y[j] of tile l (j = 2y + x); m[xi * m_stride + l] */
static inline void winograd2_output(float *restrict y, const float *restrict m, long m_stride, int lanes) {
    for (int l = 0; l < lanes; l += WT_LANES) {
        int n = lanes - l < WT_LANES ? lanes - l : WT_LANES;
        wt_vec a0[4], a1[4];
        for (int q = 0; q < 4; q++) {
            wt_vec s0 = wt_load(m + (0 + q) * m_stride + l, n), s1 = wt_load(m + (4 + q) * m_stride + l, n);
            wt_vec s2 = wt_load(m + (8 + q) * m_stride + l, n), s3 = wt_load(m + (12 + q) * m_stride + l, n);
            a0[q] = s0 + s1 + s2;
            a1[q] = s1 - s2 - s3;
        }
        wt_store(y + 0 * lanes + l, a0[0] + a0[1] + a0[2], n);
        wt_store(y + 1 * lanes + l, a0[1] - a0[2] - a0[3], n);
        wt_store(y + 2 * lanes + l, a1[0] + a1[1] + a1[2], n);
        wt_store(y + 3 * lanes + l, a1[1] - a1[2] - a1[3], n);
    }
}

/* dm[xi * dm_stride + l] = dM[xi] of tile l; dy: [4][lanes] (j = 2y + x) */
static inline void winograd2_gradient(float *restrict dm, long dm_stride, const float *restrict dy, int lanes) {
    for (int l = 0; l < lanes; l += WT_LANES) {
        int n = lanes - l < WT_LANES ? lanes - l : WT_LANES;
        wt_vec t[4][2];
        for (int j = 0; j < 2; j++) {
            wt_vec top = wt_load(dy + j * lanes + l, n), bottom = wt_load(dy + (2 + j) * lanes + l, n);
            t[0][j] = top;
            t[1][j] = top + bottom;
            t[2][j] = top - bottom;
            t[3][j] = -bottom;
        }
        for (int r = 0; r < 4; r++) {
            wt_store(dm + (4 * r + 0) * dm_stride + l, t[r][0], n);
            wt_store(dm + (4 * r + 1) * dm_stride + l, t[r][0] + t[r][1], n);
            wt_store(dm + (4 * r + 2) * dm_stride + l, t[r][0] - t[r][1], n);
            wt_store(dm + (4 * r + 3) * dm_stride + l, -t[r][1], n);
        }
    }
}

/* F(4x4, 3x3): 6x6 input tiles, 4x4 outputs. B^T rows: (4 0 -5 0 1 0) (0 -4 -4 1 1 0)
 * (0 4 -4 -1 1 0) (0 -2 -1 2 1 0) (0 2 -1 -2 1 0) (0 4 0 -5 0 1); A^T rows: (1 1 1 1 1 0)
 * (0 1 -1 2 -2 0) (0 1 1 4 4 0) (0 1 -1 8 -8 1). */
#define WT_B6(o, x)                                                   \
    do {                                                              \
        o[0] = 4.0f * x[0] - 5.0f * x[2] + x[4];                      \
        o[1] = x[3] + x[4] - 4.0f * x[1] - 4.0f * x[2];               \
        o[2] = 4.0f * x[1] - 4.0f * x[2] - x[3] + x[4];               \
        o[3] = 2.0f * x[3] - 2.0f * x[1] - x[2] + x[4];               \
        o[4] = 2.0f * x[1] - x[2] - 2.0f * x[3] + x[4];               \
        o[5] = 4.0f * x[1] - 5.0f * x[3] + x[5];                      \
    } while (0)

static inline void winograd4_input(float *restrict v, long v_stride, const float *restrict d, int lanes) {
    for (int l = 0; l < lanes; l += WT_LANES) {
        int n = lanes - l < WT_LANES ? lanes - l : WT_LANES;
        wt_vec b[6][6]; /* b = B^T d, column by column */
        for (int q = 0; q < 6; q++) {
            wt_vec x[6], o[6];
            for (int r = 0; r < 6; r++) x[r] = wt_load(d + (6 * r + q) * lanes + l, n);
            WT_B6(o, x);
            for (int r = 0; r < 6; r++) b[r][q] = o[r];
        }
        for (int r = 0; r < 6; r++) { /* V = b B, row by row */
            wt_vec o[6];
            WT_B6(o, b[r]);
            for (int q = 0; q < 6; q++) wt_store(v + (6 * r + q) * v_stride + l, o[q], n);
        }
    }
}

#define WT_A6(o, x)                                                   \
    do {                                                              \
        o[0] = x[0] + x[1] + x[2] + x[3] + x[4];                      \
        o[1] = x[1] - x[2] + 2.0f * x[3] - 2.0f * x[4];               \
        o[2] = x[1] + x[2] + 4.0f * x[3] + 4.0f * x[4];               \
        o[3] = x[1] - x[2] + 8.0f * x[3] - 8.0f * x[4] + x[5];        \
    } while (0)

static inline void winograd4_output(float *restrict y, const float *restrict m, long m_stride, int lanes) {
    for (int l = 0; l < lanes; l += WT_LANES) {
        int n = lanes - l < WT_LANES ? lanes - l : WT_LANES;
        wt_vec a[4][6]; /* a = A^T M, column by column */
        for (int q = 0; q < 6; q++) {
            wt_vec x[6], o[4];
            for (int r = 0; r < 6; r++) x[r] = wt_load(m + (6 * r + q) * m_stride + l, n);
            WT_A6(o, x);
            for (int r = 0; r < 4; r++) a[r][q] = o[r];
        }
        for (int r = 0; r < 4; r++) { /* Y = a A, row by row */
            wt_vec o[4];
            WT_A6(o, a[r]);
            for (int q = 0; q < 4; q++) wt_store(y + (4 * r + q) * lanes + l, o[q], n);
        }
    }
}

/* A's rows applied to a 4-vector: (1 0 0 0) (1 1 1 1) (1 -1 1 -1) (1 2 4 8) (1 -2 4 -8) (0 0 0 1) */
#define WT_AT4(o, x)                                                  \
    do {                                                              \
        o[0] = x[0];                                                  \
        o[1] = x[0] + x[1] + x[2] + x[3];                             \
        o[2] = x[0] - x[1] + x[2] - x[3];                             \
        o[3] = x[0] + 2.0f * x[1] + 4.0f * x[2] + 8.0f * x[3];        \
        o[4] = x[0] - 2.0f * x[1] + 4.0f * x[2] - 8.0f * x[3];        \
        o[5] = x[3];                                                  \
    } while (0)

static inline void winograd4_gradient(float *restrict dm, long dm_stride, const float *restrict dy, int lanes) {
    for (int l = 0; l < lanes; l += WT_LANES) {
        int n = lanes - l < WT_LANES ? lanes - l : WT_LANES;
        wt_vec t[6][4]; /* t = A dY, column by column */
        for (int q = 0; q < 4; q++) {
            wt_vec x[4], o[6];
            for (int r = 0; r < 4; r++) x[r] = wt_load(dy + (4 * r + q) * lanes + l, n);
            WT_AT4(o, x);
            for (int r = 0; r < 6; r++) t[r][q] = o[r];
        }
        for (int r = 0; r < 6; r++) { /* dM = t A^T, row by row */
            wt_vec o[6];
            WT_AT4(o, t[r]);
            for (int q = 0; q < 6; q++) wt_store(dm + (6 * r + q) * dm_stride + l, o[q], n);
        }
    }
}

/* by tile size m (2 or 4) */
static inline void winograd_input_lanes(int m, float *v, long v_stride, const float *d, int lanes) {
    if (m == 4) winograd4_input(v, v_stride, d, lanes);
    else winograd2_input(v, v_stride, d, lanes);
}
static inline void winograd_output_lanes(int m, float *y, const float *mm, long m_stride, int lanes) {
    if (m == 4) winograd4_output(y, mm, m_stride, lanes);
    else winograd2_output(y, mm, m_stride, lanes);
}
static inline void winograd_gradient_lanes(int m, float *dm, long dm_stride, const float *dy, int lanes) {
    if (m == 4) winograd4_gradient(dm, dm_stride, dy, lanes);
    else winograd2_gradient(dm, dm_stride, dy, lanes);
}

/* Moves between image rows and tile lanes. A run of tiles side by side in a tile row starts m
 * pixels apart, so lane j's column q sits at row[m*j + q]:
 *   spread: d[q * d_stride + j] = row[m*j + q]            for q < count, j < run
 *   merge:  row[m*j + q] = y[q * y_stride + j] + bias     for q < m, j < run
 * Whole groups of lanes go through vector shuffles (even elements, interleaving), the rest
 * one by one; only values move (and one addition each), so every ISA gives the same bits.
 * spread's vector loads reach past the values it uses, up to row[m*run + count - 2]: callers
 * pass a padded copy. */
#if WT_LANES == 4
#define WT_EVEN(x, y) __builtin_shufflevector(x, y, 0, 2, 4, 6)
#define WT_ZIPLO(x, y) __builtin_shufflevector(x, y, 0, 4, 1, 5)
#define WT_ZIPHI(x, y) __builtin_shufflevector(x, y, 2, 6, 3, 7)
#elif WT_LANES == 8
#define WT_EVEN(x, y) __builtin_shufflevector(x, y, 0, 2, 4, 6, 8, 10, 12, 14)
#define WT_ZIPLO(x, y) __builtin_shufflevector(x, y, 0, 8, 1, 9, 2, 10, 3, 11)
#define WT_ZIPHI(x, y) __builtin_shufflevector(x, y, 4, 12, 5, 13, 6, 14, 7, 15)
#elif WT_LANES == 16
#define WT_EVEN(x, y) __builtin_shufflevector(x, y, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30)
#define WT_ZIPLO(x, y) __builtin_shufflevector(x, y, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23)
#define WT_ZIPHI(x, y) __builtin_shufflevector(x, y, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31)
#elif WT_LANES != 1
#error "winograd-transforms.h: no shuffles for this vector width"
#endif

static inline void wt_spread(int m, int count, float *restrict d, long d_stride, const float *restrict row, int run) {
    int j = 0;
#if WT_LANES > 1
    const int w = WT_LANES;
    for (; j + w <= run; j += w)
        for (int q = 0; q < count; q++) {
            const float *p = row + m * j + q;
            wt_vec v = WT_EVEN(wt_load(p, w), wt_load(p + w, w));
            if (m == 4) v = WT_EVEN(v, WT_EVEN(wt_load(p + 2 * w, w), wt_load(p + 3 * w, w)));
            wt_store(d + q * d_stride + j, v, w);
        }
#endif
    for (; j < run; j++)
        for (int q = 0; q < count; q++) d[q * d_stride + j] = row[m * j + q];
}

static inline void wt_merge(int m, float *restrict row, const float *restrict y, long y_stride, int run, float bias) {
    int j = 0;
#if WT_LANES > 1
    const int w = WT_LANES;
    const wt_vec b = (wt_vec){0} + bias;
    for (; j + w <= run; j += w) {
        float *p = row + m * j;
        wt_vec y0 = wt_load(y + j, w) + b, y1 = wt_load(y + y_stride + j, w) + b;
        if (m == 2) {
            wt_store(p, WT_ZIPLO(y0, y1), w);
            wt_store(p + w, WT_ZIPHI(y0, y1), w);
        } else {
            wt_vec y2 = wt_load(y + 2 * y_stride + j, w) + b, y3 = wt_load(y + 3 * y_stride + j, w) + b;
            wt_vec lo02 = WT_ZIPLO(y0, y2), hi02 = WT_ZIPHI(y0, y2), lo13 = WT_ZIPLO(y1, y3), hi13 = WT_ZIPHI(y1, y3);
            wt_store(p, WT_ZIPLO(lo02, lo13), w);
            wt_store(p + w, WT_ZIPHI(lo02, lo13), w);
            wt_store(p + 2 * w, WT_ZIPLO(hi02, hi13), w);
            wt_store(p + 3 * w, WT_ZIPHI(hi02, hi13), w);
        }
    }
#endif
    for (; j < run; j++)
        for (int q = 0; q < m; q++) row[m * j + q] = y[q * y_stride + j] + bias;
}

/* The table entries of a kernel set, e.g. WT_DEFINE_KERNELS(avx2) defines
 * q4_avx2_winograd_input, q4_avx2_winograd_output and q4_avx2_winograd_gradient, and the moves
 * q4_avx2_winograd_spread and q4_avx2_winograd_merge. */
#define WT_DEFINE_KERNELS(isa)                                                                  \
    void q4_##isa##_winograd_input(int m, float *v, long v_stride, const float *d, int lanes) {   \
        winograd_input_lanes(m, v, v_stride, d, lanes);                                         \
    }                                                                                           \
    void q4_##isa##_winograd_output(int m, float *y, const float *mm, long m_stride, int lanes) { \
        winograd_output_lanes(m, y, mm, m_stride, lanes);                                       \
    }                                                                                           \
    void q4_##isa##_winograd_gradient(int m, float *dm, long dm_stride, const float *dy, int lanes) { \
        winograd_gradient_lanes(m, dm, dm_stride, dy, lanes);                                   \
    }                                                                                           \
    void q4_##isa##_winograd_spread(int m, int count, float *d, long d_stride, const float *row, int run) { \
        wt_spread(m, count, d, d_stride, row, run);                                             \
    }                                                                                           \
    void q4_##isa##_winograd_merge(int m, float *row, const float *y, long y_stride, int run, float bias) { \
        wt_merge(m, row, y, y_stride, run, bias);                                               \
    }

#endif
