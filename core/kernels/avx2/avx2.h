/* avx2.h - the AVX2+FMA kernel set: GEMM microkernels and elementwise kernels with the
 * same names and contracts as the scalar references in ../ref/. */
#ifndef Q4_AVX2_H
#define Q4_AVX2_H

#include "../kernels.h"

extern const q4_gemm_variant q4_avx2_gemm_6x16;
extern const q4_gemm_variant q4_avx2_gemm_4x24;
extern const q4_kernels q4_avx2_kernels;

#endif
