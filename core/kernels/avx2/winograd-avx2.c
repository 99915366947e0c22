/* winograd-avx2.c - the Winograd F(2x2, 3x3) and F(4x4, 3x3) transforms of ../winograd-transforms.h,
 * run on 32-byte vectors of this kernel set (avx2), over the tiles. */
#define WT_VECTOR_BYTES 32
#include "../winograd-transforms.h"
#include "avx2.h"

void q4_avx2_winograd_input(int m, float *v, long v_stride, const float *d, int lanes) {
    winograd_input_lanes(m, v, v_stride, d, lanes);
}

void q4_avx2_winograd_output(int tile, float *y, const float *m, long m_stride, int lanes) {
    winograd_output_lanes(tile, y, m, m_stride, lanes);
}

void q4_avx2_winograd_gradient(int m, float *dm, long dm_stride, const float *dy, int lanes) {
    winograd_gradient_lanes(m, dm, dm_stride, dy, lanes);
}
