/* conv_ref.c - the specification of the convolution and GEMM kernels as plain loops,
 * summing in double. Tests compare the fast paths with these; nothing else calls them. */
#include "../kernels.h"

float q4_operand_at(const q4_operand *op, long r, long c) {
    if (op->kind == Q4_DENSE) return op->data[r * op->row_stride + c * op->col_stride];
    long tap = op->kind == Q4_IM2COL ? r : c, pixel = op->kind == Q4_IM2COL ? c : r;
    int h = op->height, w = op->width;
    long hw = (long)h * w;
    long channel = tap / 9, ky = (tap % 9) / 3, kx = tap % 3;
    long image = pixel / hw, y = (pixel % hw) / w + ky - 1, x = pixel % w + kx - 1;
    if (y < 0 || y >= h || x < 0 || x >= w) return 0.0f;
    return op->data[(channel * op->images + image) * hw + y * w + x];
}

void q4_ref_gemm(int M, int N, int K, const q4_operand *A, const q4_operand *B, float *C,
                 long ldc, int accumulate) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = accumulate ? C[(long)i * ldc + j] : 0.0;
            for (int p = 0; p < K; p++) s += (double)q4_operand_at(A, i, p) * q4_operand_at(B, p, j);
            C[(long)i * ldc + j] = (float)s;
        }
}

/* x: [ci][n][h][w], y: [co][n][h][w], w: [co][ci][3][3] */
void q4_ref_conv3x3_forward(float *y, const float *x, const float *w, const float *bias, int n,
                            int ci, int co, int h, int wd) {
    for (int o = 0; o < co; o++)
        for (int b = 0; b < n; b++)
            for (int r = 0; r < h; r++)
                for (int c = 0; c < wd; c++) {
                    double s = bias ? bias[o] : 0.0;
                    for (int i = 0; i < ci; i++)
                        for (int ky = 0; ky < 3; ky++)
                            for (int kx = 0; kx < 3; kx++) {
                                int sy = r + ky - 1, sx = c + kx - 1;
                                if (sy < 0 || sy >= h || sx < 0 || sx >= wd) continue;
                                s += (double)w[((o * ci + i) * 3 + ky) * 3 + kx] *
                                     x[(((long)i * n + b) * h + sy) * wd + sx];
                            }
                    y[(((long)o * n + b) * h + r) * wd + c] = (float)s;
                }
}

void q4_ref_conv3x3_backward_input(float *dx, const float *dy, const float *w, int n, int ci,
                                   int co, int h, int wd) {
    for (int i = 0; i < ci; i++)
        for (int b = 0; b < n; b++)
            for (int r = 0; r < h; r++)
                for (int c = 0; c < wd; c++) {
                    double s = 0.0;
                    /* x(r, c) feeds y(r - ky + 1, c - kx + 1) through tap (ky, kx) */
                    for (int o = 0; o < co; o++)
                        for (int ky = 0; ky < 3; ky++)
                            for (int kx = 0; kx < 3; kx++) {
                                int oy = r - ky + 1, ox = c - kx + 1;
                                if (oy < 0 || oy >= h || ox < 0 || ox >= wd) continue;
                                s += (double)w[((o * ci + i) * 3 + ky) * 3 + kx] *
                                     dy[(((long)o * n + b) * h + oy) * wd + ox];
                            }
                    dx[(((long)i * n + b) * h + r) * wd + c] = (float)s;
                }
}

void q4_ref_conv3x3_backward_weights(float *dw, float *dbias, const float *dy, const float *x,
                                     int n, int ci, int co, int h, int wd) {
    for (int o = 0; o < co; o++) {
        if (dbias) {
            double s = 0.0;
            for (long p = 0; p < (long)n * h * wd; p++) s += dy[(long)o * n * h * wd + p];
            dbias[o] = (float)s;
        }
        for (int i = 0; i < ci; i++)
            for (int ky = 0; ky < 3; ky++)
                for (int kx = 0; kx < 3; kx++) {
                    double s = 0.0;
                    for (int b = 0; b < n; b++)
                        for (int r = 0; r < h; r++)
                            for (int c = 0; c < wd; c++) {
                                int sy = r + ky - 1, sx = c + kx - 1;
                                if (sy < 0 || sy >= h || sx < 0 || sx >= wd) continue;
                                s += (double)dy[(((long)o * n + b) * h + r) * wd + c] *
                                     x[(((long)i * n + b) * h + sy) * wd + sx];
                            }
                    dw[((o * ci + i) * 3 + ky) * 3 + kx] = (float)s;
                }
    }
}
