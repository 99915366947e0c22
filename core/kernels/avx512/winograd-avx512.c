/* winograd-avx512.c - the Winograd F(2x2, 3x3) and F(4x4, 3x3) transforms of
 * ../winograd-transforms.h, 16 tiles at a time (AVX-512 registers). */
#define WT_VECTOR_BYTES 64
#include "../winograd-transforms.h"
#include "avx512.h"

WT_DEFINE_KERNELS(avx512)
