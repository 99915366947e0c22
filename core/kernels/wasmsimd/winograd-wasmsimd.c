/* winograd-wasmsimd.c - the Winograd F(2x2, 3x3) and F(4x4, 3x3) transforms of
 * ../winograd-transforms.h, 4 tiles at a time (SIMD128 registers). */
#define WT_VECTOR_BYTES 16
#include "../winograd-transforms.h"
#include "wasmsimd.h"

WT_DEFINE_KERNELS(wasmsimd)
