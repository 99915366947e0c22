/* wasmsimd.h - the WebAssembly SIMD128 kernel set: GEMM microkernels and elementwise
 * kernels with the same names and contracts as the scalar references in ../ref/. */
#ifndef Q4_WASMSIMD_H
#define Q4_WASMSIMD_H

#include "../kernels.h"

extern const q4_gemm_variant q4_wasmsimd_gemm_4x8;
extern const q4_gemm_variant q4_wasmsimd_gemm_6x8;
extern const q4_kernels q4_wasmsimd_kernels;
extern const q4_iconv_variant q4_wasmsimd_iconv_4x8;
extern const q4_iwinograd_variant q4_wasmsimd_iwinograd_4x8;
void q4_wasmsimd_iquantize_rows(uint8_t *out, long out_stride, const float *x, long x_stride, int channels, int count,
                                float inv, int low, int high, int zero);

int q4_wasmsimd_pack_rows(float *out, const float *a, long lda, int rows, int kc, int mr);
int q4_wasmsimd_pack_patch(float *out, const q4_operand *x, int p0, int kc, long j0, int nc, long n, int nr);
int q4_wasmsimd_pack_patch_t(float *out, const q4_operand *x, int tap0, int taps, long pixel0, int kc, int nr);

void q4_wasmsimd_winograd_input(int m, float *v, long v_stride, const float *d, int lanes);
void q4_wasmsimd_winograd_output(int m, float *y, const float *mm, long m_stride, int lanes);
void q4_wasmsimd_winograd_gradient(int m, float *dm, long dm_stride, const float *dy, int lanes);
void q4_wasmsimd_winograd_spread(int m, int count, float *d, long d_stride, const float *row, int run);
void q4_wasmsimd_winograd_merge(int m, float *row, const float *y, long y_stride, int run, float bias);

#endif
