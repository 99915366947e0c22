/* wasmsimd.h - the WebAssembly SIMD128 kernel set: GEMM microkernels and elementwise
 * kernels with the same names and contracts as the scalar references in ../ref/. */
#ifndef Q4_WASMSIMD_H
#define Q4_WASMSIMD_H

#include "../kernels.h"

extern const q4_gemm_variant q4_wasmsimd_gemm_4x8;
extern const q4_gemm_variant q4_wasmsimd_gemm_6x8;
extern const q4_kernels q4_wasmsimd_kernels;

#endif
