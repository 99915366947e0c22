/* ref.h - the scalar reference kernels (the specification every ISA version must match). */
#ifndef Q4_REF_H
#define Q4_REF_H

#include "../kernels.h"

double q4_ref_sum(const float *x, long n);
double q4_ref_centered_sum_squares(const float *x, long n, double mean);
double q4_ref_sum_squares(const float *x, long n);
void q4_ref_add_scalar(float *y, const float *x, long n, float value);
void q4_ref_scale(float *y, const float *x, long n, float value);
void q4_ref_affine_relu(float *y, const float *x, long n, float scale, float shift);
void q4_ref_affine_relu_backward_sums(double sums[2], const float *da, const float *x, long n,
                                      float scale, float shift, float mean, float invstd);
void q4_ref_affine_relu_backward_apply(float *dx, const float *da, const float *x, long n,
                                       float scale, float shift, float mean, float invstd,
                                       float k, float mean_dz, float mean_dz_xhat);
void q4_ref_maxpool2_forward(float *out, const float *in, long planes, int h, int w);
void q4_ref_maxpool2_backward(float *a, const float *dout, long planes, int h, int w);
float q4_ref_max_abs(const float *x, long n);
void q4_ref_quantize(float *y, const float *x, long n, float scale, float max_level);
void q4_ref_adamw(float *w, const float *g, float *m, float *v, long n, const q4_adamw_params *p);
void q4_ref_tanh_clip(float *w, long n, float bound);
void q4_exact_tanh_clip(float *w, long n, float bound);
void q4_ref_sgd(float *w, const float *g, float *b, long n, const q4_sgd_params *p);
void q4_ref_ema(float *avg, const float *x, long n, float decay, float one_minus);
void q4_ref_microkernel_4x8(int kc, const float *a, const float *b, float *c, long ldc, int accumulate);

void q4_ref_winograd_input(int m, float *v, long v_stride, const float *d, int lanes);
void q4_ref_winograd_output(int m, float *y, const float *mm, long m_stride, int lanes);
void q4_ref_winograd_gradient(int m, float *dm, long dm_stride, const float *dy, int lanes);
void q4_ref_winograd_spread(int m, int count, float *d, long d_stride, const float *row, int run);
void q4_ref_winograd_merge(int m, float *row, const float *y, long y_stride, int run, float bias);


extern const q4_iconv_variant q4_ref_iconv_4x8;
extern const q4_iwinograd_variant q4_ref_iwinograd_4x8;
void q4_ref_iwinograd_input(int16_t *v, long v_point, const uint8_t *x, long row_in, int k, int count);
void q4_ref_iwinograd_input_from(int16_t *v, long v_point, const uint8_t *x, long row_in, int k, int count, int first);
void q4_ref_iwinograd_output(float *y, long y_stride, long row, const int32_t *m, long m_point, long m_tile, int count,
                             int channels, float scale, const float *bias);
void q4_ref_iquantize_rows(uint8_t *out, long out_stride, const float *x, long x_stride, int channels, int count, float inv,
                           int low, int high, int zero);
/* The integer 3x3 convolution as plain loops (tests): x unsigned 8-bit [ci][n][h][w] with the given zero point
 * (the value of a zero, and of the padding), levels [co][ci][3][3]; y [n][h][w][co] = sum (x - zero_point) * level. */
void q4_ref_iconv3x3(int32_t *y, const uint8_t *x, int zero_point, const int8_t *levels, int n, int ci, int co, int h,
                     int wd);

#endif
