/* avx512.h - the AVX-512 kernel set: GEMM register tiles that use the 32 zmm registers
 * (AVX-512F), with the AVX2 packers (they handle these tile widths) and the AVX2 elementwise
 * kernels (memory-bound: wider vectors do not make them faster). */
#ifndef Q4_AVX512_H
#define Q4_AVX512_H

#include "../kernels.h"

extern const q4_gemm_variant q4_avx512_gemm_12x32;
extern const q4_gemm_variant q4_avx512_gemm_8x32;
extern const q4_gemm_variant q4_avx512_gemm_12x32_nofma;
/* the integer convolution with AVX-512 VNNI (vpdpbusd): CPUs with AVX-512 but not VNNI use AVX2's */
extern const q4_iconv_variant q4_avx512_iconv_8x32;
void q4_avx512_iquantize_rows(uint8_t *out, long out_stride, const float *x, long x_stride, int channels, int count,
                              float inv, int low, int high, int zero);

void q4_avx512_winograd_input(int m, float *v, long v_stride, const float *d, int lanes);
void q4_avx512_winograd_output(int m, float *y, const float *mm, long m_stride, int lanes);
void q4_avx512_winograd_gradient(int m, float *dm, long dm_stride, const float *dy, int lanes);
void q4_avx512_winograd_spread(int m, int count, float *d, long d_stride, const float *row, int run);
void q4_avx512_winograd_merge(int m, float *row, const float *y, long y_stride, int run, float bias);

#endif
