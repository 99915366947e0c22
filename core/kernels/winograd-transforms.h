/* winograd-transforms.h - the arithmetic of Winograd's F(2x2, 3x3) transforms, over `lanes`
 * tiles side by side (one tile per lane, lanes contiguous), as plain loops that every ISA's
 * kernel file includes with its vector width (ref/winograd-ref.c: one float; avx2/,
 * avx512/, wasmsimd/: their registers' width). No operation is reordered or fused (-ffp-contract=off), so
 * every ISA computes the same bits. With d the 4x4 input tile, g the 3x3 kernel and the
 * usual B, G, A matrices:
 *   input     V = B^T d B     (16 values per tile)
 *   output    Y = A^T M A     (2x2 values per tile, from the 16 products M)
 *   gradient  dM = A dY A^T   (16 values per tile, from the 2x2 output gradient dY;
 *                              the weight gradient is then G^T (sum over tiles dM . V) G) */
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
static inline void winograd_input_lanes(float *restrict v, long v_stride, const float *restrict d, int lanes) {
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
static inline void winograd_output_lanes(float *restrict y, const float *restrict m, long m_stride, int lanes) {
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
static inline void winograd_gradient_lanes(float *restrict dm, long dm_stride, const float *restrict dy, int lanes) {
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

#endif
