/* winograd-avx2.c - the Winograd F(2x2, 3x3) and F(4x4, 3x3) transforms of
 * ../winograd-transforms.h, 8 tiles at a time (AVX2 registers). */
#define WT_VECTOR_BYTES 32
#include "../winograd-transforms.h"
#include "avx2.h"

WT_DEFINE_KERNELS(avx2)
