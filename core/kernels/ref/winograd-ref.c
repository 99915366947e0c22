/* winograd-ref.c - the Winograd F(2x2, 3x3) and F(4x4, 3x3) transforms of
 * ../winograd-transforms.h, one float at a time: the reference the other kernel sets are tested against. */
#define WT_VECTOR_BYTES 4
#include "../winograd-transforms.h"
#include "ref.h"

WT_DEFINE_KERNELS(ref)
