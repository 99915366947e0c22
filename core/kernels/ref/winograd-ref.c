/* winograd-ref.c - the Winograd F(2x2, 3x3) and F(4x4, 3x3) transforms of ../winograd-transforms.h,
 * compiled for the base ISA: the reference the other kernel sets are tested against. */
#define WT_VECTOR_BYTES 4
#include "../winograd-transforms.h"
#include "ref.h"

void q4_ref_winograd_input(int m, float *v, long v_stride, const float *d, int lanes) {
    winograd_input_lanes(m, v, v_stride, d, lanes);
}

void q4_ref_winograd_output(int tile, float *y, const float *m, long m_stride, int lanes) {
    winograd_output_lanes(tile, y, m, m_stride, lanes);
}

void q4_ref_winograd_gradient(int m, float *dm, long dm_stride, const float *dy, int lanes) {
    winograd_gradient_lanes(m, dm, dm_stride, dy, lanes);
}
