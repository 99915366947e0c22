/* elementwise-wasmsimd.c - the elementwise and reduction kernels of ../elementwise.h on 4 floats
 * (WebAssembly SIMD128, which has no fused multiply-add); the kernel table of the SIMD128 set. */
#include <wasm_simd128.h>

#define EW_VECTOR_BYTES 16
#define EW_MAX(a, b) ((ew_f)wasm_f32x4_pmax((v128_t)(a), (v128_t)(b)))
#define EW_ROUND(a) ((ew_f)wasm_f32x4_nearest((v128_t)(a)))
#define EW_SQRT(a) ((ew_f)wasm_f32x4_sqrt((v128_t)(a)))
#define EW_MULADD(a, b, c) ((a) * (b) + (c))
#include "../elementwise.h"
#include "wasmsimd.h"

const q4_kernels q4_wasmsimd_kernels = {
    "wasmsimd",
    &q4_wasmsimd_gemm_6x8,
    &q4_wasmsimd_iconv_4x8,
    EW_TABLE_ENTRIES,
    q4_wasmsimd_winograd_input,
    q4_wasmsimd_winograd_output,
    q4_wasmsimd_winograd_gradient,
    q4_wasmsimd_winograd_spread,
    q4_wasmsimd_winograd_merge,
    q4_wasmsimd_iquantize_rows,
    &q4_wasmsimd_iwinograd_4x8,
};
