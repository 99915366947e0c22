/* kernels.h - the narrow interface between layers and arithmetic. Layers call these
 * functions only; everything ISA-specific (intrinsics, tile sizes) lives behind the
 * q4_kernels table, filled once at start for the ISA chosen at run time (kernels.c). Kernels never
 * allocate: scratch comes from the caller. Tensors are channel-major: [C][N][H][W]. */
#ifndef Q4_KERNELS_H
#define Q4_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "../include/q4.h"
#include "../threads/pool.h"

/* ---------------------------------------------------------------- GEMM */

/* C[mr x nr] (+)= A_panel[kc][mr] * B_panel[kc][nr]; c has row stride ldc.
 * accumulate = 0 overwrites C. Every element's sum runs over p = 0..kc-1 in order. */
typedef void (*q4_microkernel_fn)(int kc, const float *a, const float *b, float *c, long ldc,
                                  int accumulate);

struct q4_operand;

/* Optional ISA packers (NULL: the generic C in gemm.c); they return 0 when they cannot
 * handle the shape, and the generic code runs instead. Results are identical either way.
 * pack_rows: out[p*mr + r] = a[r*lda + p] for r < rows, zeros for rows <= r < mr, p < kc.
 * pack_patch_t: a strip of the transposed 3x3 patch matrix: out[p*nr + c] = patch(tap0 + c,
 * pixel0 + p) for c < taps (zeros for taps <= c < nr), p < kc. */
typedef int (*q4_pack_rows_fn)(float *out, const float *a, long lda, int rows, int kc, int mr);
typedef int (*q4_pack_patch_t_fn)(float *out, const struct q4_operand *x, int tap0, int taps, long pixel0, int kc,
                                  int nr);
/* pack_patch: a whole B block of the patch matrix, rows (taps) [p0, p0+kc), columns
 * (pixels) [j0, j0+nc) of N, in strips of nr: out[s*kc*nr + p*nr + c]. */
typedef int (*q4_pack_patch_fn)(float *out, const struct q4_operand *x, int p0, int kc, long j0, int nc, long n,
                                int nr);

typedef struct q4_gemm_variant {
    const char *name; /* dtype-op-tile-isa, e.g. "f32-gemm-6x16-avx2" */
    int mr, nr;       /* register tile */
    int kc, mc, nc;   /* cache blocks: kc fixes the summation order, so results depend on
                         the variant but never on the thread count */
    q4_microkernel_fn microkernel;
    q4_pack_rows_fn pack_rows;
    q4_pack_patch_t_fn pack_patch_t;
    q4_pack_patch_fn pack_patch;
    int winograd_min_channels;  /* 3x3 convolutions with at least this many channels in and out
                                   go through Winograd F(2x2, 3x3) (winograd.c), measured per ISA */
    int winograd4_min_channels; /* ... the backward passes and evaluation through F(4x4, 3x3)
                                   from this many on (0: never; winograd.c says why not the
                                   training forward pass) */
} q4_gemm_variant;

/* How the GEMM reads an operand. DENSE: element (r, c) at data[r * row_stride + c *
 * col_stride]. IM2COL: the 3x3/pad-1 patch matrix of a [channels][images][h][w] tensor,
 * row r = channel*9 + ky*3 + kx, column c = (image*h + y)*w + x. IM2COL_T: its transpose. */
typedef enum { Q4_DENSE = 0, Q4_IM2COL = 1, Q4_IM2COL_T = 2 } q4_operand_kind;

typedef struct q4_operand {
    q4_operand_kind kind;
    const float *data;
    long row_stride, col_stride;             /* DENSE */
    int channels, images, height, width;     /* IM2COL, IM2COL_T */
} q4_operand;

static inline q4_operand q4_dense(const float *data, long row_stride, long col_stride) {
    q4_operand op = {Q4_DENSE, data, row_stride, col_stride, 0, 0, 0, 0};
    return op;
}

/* Scalars of one AdamW step, each rounded to float from PyTorch's double arithmetic:
 * w *= decay; m = m*beta1 + one_minus_beta1*g; v = v*beta2 + (one_minus_beta2*g)*g;
 * w = w + (neg_step_size * m) / (sqrt(v) / bc2_sqrt + eps) */
typedef struct q4_adamw_params {
    float decay, beta1, one_minus_beta1, beta2, one_minus_beta2, eps, neg_step_size, bc2_sqrt;
} q4_adamw_params;

/* Scalars of one SGD step (PyTorch's, dampening 0): d = g + weight_decay*w;
 * b = momentum*b + d; d = nesterov ? d + momentum*b : b; w = w - lr*d */
typedef struct q4_sgd_params {
    float lr, momentum, weight_decay;
    int nesterov;
} q4_sgd_params;

/* ---------------------------------------------------------------- integer convolution
 * Integer arithmetic (issue 26): unsigned 8-bit activations times signed weight levels (4-bit
 * weights: -7..7), summed exactly in int32. Activations are pixel-major with the channels
 * innermost: pixel p's k channels at a[p * a_stride .. + k). Weights are packed per tile of nr
 * output channels: for each tap, the k channels in groups of kgroup, each group nr x kgroup
 * elements of wbytes bytes (int8, or int16 where the ISA multiplies 16-bit: WebAssembly).
 * The microkernel computes one mr x nr tile in full:
 * sum[i][j] = sum over taps t < taps and channels kk < k (a multiple of 4) of
 *     a[tap_offsets[t] + i * a_stride + kk] * w[t][kk / kgroup][j][kk % kgroup],
 * and stores c[i * ldc + j] = sum[i][j], or, given an epilogue, floats channel-major:
 * y[j * y_stride + i] = (float)(sum[i][j] - shift[j]) * scale[i] + bias[j] (multiplied, then added).
 * Levels times 255 summed in pairs stay within int16 for weights of up to 7 bits (AVX2's
 * vpmaddubsw saturates there), so the integer path takes 2- to 7-bit weights. */
typedef struct q4_iconv_epilogue {
    float *y;             /* output channel j of the tile, pixel i: y[j * y_stride + i] */
    long y_stride;
    const float *scale;   /* mr: per pixel (the weights' scale times its image's) */
    const int32_t *shift; /* nr: per output channel (a zero point's share of the sum) */
    const float *bias;    /* nr */
} q4_iconv_epilogue;
typedef void (*q4_iconv_ukernel_fn)(int taps, const long *tap_offsets, int k, const uint8_t *a, long a_stride,
                                    const void *w, int32_t *c, long ldc, const q4_iconv_epilogue *e);
typedef struct q4_iconv_variant {
    const char *name; /* e.g. "u8s8-iconv-8x32-avx512vnni" */
    int mr, nr;       /* pixels and output channels of the register tile */
    int kgroup;       /* channels multiplied together per lane: 4 (int8 weights) or 2 (int16) */
    int wbytes;       /* bytes per packed weight: 1 or 2 */
    q4_iconv_ukernel_fn ukernel;
} q4_iconv_variant;

/* Integer Winograd F(2x2, 3x3) (iconv.c, q4_iconv3x3_winograd): the GEMM of one of its 16 points,
 * int16 transformed activations times int16 transformed levels, summed in int32:
 * c[i * ldc + j] = sum over kk < k (even) of a[i * a_stride + kk] * w[kk / 2][j][kk % 2], for the
 * mr x nr tile (rows: Winograd tiles; columns: output channels). */
typedef void (*q4_iwinograd_ukernel_fn)(int k, const int16_t *a, long a_stride, const int16_t *w, int32_t *c, long ldc);
/* Its transforms, over `count` tiles side by side in one tile row:
 * input: V = B^T d B of tile i's 4x4 pixels (pixel (r, s) at x + r * row_in + (2 i + s) * k, k
 * bytes each, k a multiple of 4): v[xi * v_point + i * k + c] (int16), xi = 4 * row + column;
 * output: Y = A^T M A / 4 from m[xi * m_point + i * m_tile + o], for channels o < channels, as
 * floats: y[o * y_stride + r * row + 2 i + s] = (float)Y[r][s] * scale + bias[o] (multiplied,
 * then added: the direct path's rounding). */
typedef void (*q4_iwinograd_input_fn)(int16_t *v, long v_point, const uint8_t *x, long row_in, int k, int count);
typedef void (*q4_iwinograd_output_fn)(float *y, long y_stride, long row, const int32_t *m, long m_point, long m_tile,
                                       int count, int channels, float scale, const float *bias);
typedef struct q4_iwinograd_variant {
    const char *name; /* e.g. "s16-iwinograd-4x8-wasmsimd" */
    int mr, nr;
    q4_iwinograd_ukernel_fn ukernel;
    q4_iwinograd_input_fn input;
    q4_iwinograd_output_fn output;
} q4_iwinograd_variant;

/* Elementwise and reduction kernels, each over one contiguous run of n floats. */
typedef struct q4_kernels {
    const char *name; /* ISA: "scalar", "avx2", "avx512", "wasmsimd" */
    const q4_gemm_variant *gemm;
    const q4_iconv_variant *iconv; /* the integer convolution's microkernel for this CPU */

    /* sum of x, in double */
    double (*sum)(const float *x, long n);
    /* sum of (x - mean)^2, in double */
    double (*centered_sum_squares)(const float *x, long n, double mean);
    /* sum of x^2, in double */
    double (*sum_squares)(const float *x, long n);
    /* y = x + value */
    void (*add_scalar)(float *y, const float *x, long n, float value);
    /* y = x * value */
    void (*scale)(float *y, const float *x, long n, float value);
    /* y = max(0, x * scale + shift): BatchNorm (folded) then ReLU; y may alias x */
    void (*affine_relu)(float *y, const float *x, long n, float scale, float shift);
    /* BatchNorm+ReLU backward sums over one channel: with z = x*scale + shift,
     * dz = da where z > 0 else 0, xhat = (x - mean) * invstd:
     * sums[0] += sum dz, sums[1] += sum dz * xhat */
    void (*affine_relu_backward_sums)(double sums[2], const float *da, const float *x, long n,
                                      float scale, float shift, float mean, float invstd);
    /* dx = k * (dz - mean_dz - xhat * mean_dz_xhat), k = gamma * invstd; dx may alias x */
    void (*affine_relu_backward_apply)(float *dx, const float *da, const float *x, long n,
                                       float scale, float shift, float mean, float invstd,
                                       float k, float mean_dz, float mean_dz_xhat);
    /* 2x2 max pooling, stride 2, of `planes` planes of h x w (h, w even): out planes h/2 x w/2.
     * The first maximum in row-major window order wins, as in PyTorch. */
    void (*maxpool2_forward)(float *out, const float *in, long planes, int h, int w);
    /* In place: `a` holds the pooled layer's input; afterwards it holds the gradient with
     * respect to it (dout routed to each window's first maximum, zeros elsewhere). */
    void (*maxpool2_backward)(float *a, const float *dout, long planes, int h, int w);
    /* max |x| */
    float (*max_abs)(const float *x, long n);
    /* y = clamp(rint(x / scale), -max_level, max_level) * scale (rint: ties to even) */
    void (*quantize)(float *y, const float *x, long n, float scale, float max_level);
    /* decoupled AdamW on a run of one tensor, in PyTorch 1.13's order of operations */
    void (*adamw)(float *w, const float *g, float *m, float *v, long n, const struct q4_adamw_params *p);
    /* w = bound * tanh(w / bound) */
    void (*tanh_clip)(float *w, long n, float bound);
    /* SGD with momentum buffer b, in PyTorch 1.13's order of operations */
    void (*sgd)(float *w, const float *g, float *b, long n, const struct q4_sgd_params *p);
    /* exponential moving average: avg = avg * decay + x * (1 - decay), with one_minus = 1 - decay */
    void (*ema)(float *avg, const float *x, long n, float decay, float one_minus);
    /* Winograd F(m x m, 3x3) transforms (m = 2 or 4, a = m + 2) of `lanes` tiles side by side
     * (winograd-transforms.h): input V = B^T d B: d [a*a][lanes] -> v[xi * v_stride + l];
     * output Y = A^T M A: m[xi * m_stride + l] -> y [m*m][lanes]; gradient dM = A dY A^T:
     * dy [m*m][lanes] -> dm[xi * dm_stride + l] */
    void (*winograd_input)(int m, float *v, long v_stride, const float *d, int lanes);
    void (*winograd_output)(int m, float *y, const float *mm, long m_stride, int lanes);
    void (*winograd_gradient)(int m, float *dm, long dm_stride, const float *dy, int lanes);
    /* moves between an image row and the lanes of a run of tiles side by side (lane j's column q
     * at row[m*j + q]): spread d[q * d_stride + j] = row[m*j + q] (q < count; row readable to
     * m*run + count floats), merge row[m*j + q] = y[q * y_stride + j] + bias (q < m) */
    void (*winograd_spread)(int m, int count, float *d, long d_stride, const float *row, int run);
    void (*winograd_merge)(int m, float *row, const float *y, long y_stride, int run, float bias);
    /* integer layers' input (iconv.c): for channels c < channels (a multiple of 16) and pixels
     * p < count, out[p * out_stride + c] = level + zero, level = x[c * x_stride + p] * inv rounded to
     * nearest (ties to even) and clamped to [low, high] (the transpose from channel planes to
     * channels innermost, with the quantization) */
    void (*iquantize_rows)(uint8_t *out, long out_stride, const float *x, long x_stride, int channels, int count,
                           float inv, int low, int high, int zero);
    /* the integer Winograd GEMM where it is faster than iconv's direct convolution (NULL: not;
     * both give the same sums, so the choice never changes a bit) */
    const q4_iwinograd_variant *iwinograd;
} q4_kernels;

/* Fills *table for the ISA q4_kernels_select chose (default: the best this CPU runs) with
 * the GEMM variant it chose (default: the ISA's first). Called when a model is created.
 * exact: the table every build shares bit for bit (setting `exact`): the scalar reductions
 * (their summation order), our own tanh, and the ISA's GEMM without fused multiply-add,
 * with kc = 256 and Winograd from 64 channels, as every build's exact variant has. */
void q4_kernels_init(q4_kernels *table, int exact);
/* The same with a given GEMM variant (tests walk them all). */
void q4_kernels_init_with(q4_kernels *table, const q4_gemm_variant *variant);
/* A row of the table that gives a CPU family its default ISA (kernels.c): cpuid's vendor and
 * family (base + extended), the ISA, and the measurement it rests on. */
typedef struct q4_isa_preference {
    const char *vendor;
    int family;
    const char *isa;
    const char *why;
} q4_isa_preference;
/* The row for this vendor and family whose ISA is among `available` (space-separated, as
 * q4_kernels_available gives), or NULL: the CPU gets the widest ISA it runs. */
const q4_isa_preference *q4_isa_preference_find(const char *vendor, int family, const char *available);
/* The scalar reference table (tests compare every fast kernel with it). */
const q4_kernels *q4_kernels_reference(void);
/* GEMM variants of an ISA (NULL: the one in use), NULL-terminated. */
const q4_gemm_variant *const *q4_gemm_variants(const char *isa);

/* ---------------------------------------------------------------- compute context */

/* What the convolution and linear kernels need to run: the table, the pool and
 * per-thread GEMM packing scratch. */
typedef struct q4_compute {
    const q4_kernels *kernels;
    q4_pool *pool;
    float *scratch;          /* threads x scratch_floats, 64-byte aligned blocks */
    size_t scratch_floats;   /* per thread */
    float *shared;           /* optional: A packed once per GEMM when it fits (may be NULL) */
    size_t shared_floats;
    float *winograd;         /* optional: room for Winograd's weight gradient (may be NULL) */
    size_t winograd_floats;
} q4_compute;

/* Scratch floats one thread needs for a GEMM with this variant. */
size_t q4_gemm_scratch_floats(const q4_gemm_variant *variant);

/* C[M][N] (row stride ldc) = A[M][K] * B[K][N]  (+ C when accumulate). */
void q4_gemm(const q4_compute *cc, int M, int N, int K, const q4_operand *A, const q4_operand *B,
             float *C, long ldc, int accumulate);

/* ---------------------------------------------------------------- layer-level kernels
 * 3x3 convolution, stride 1, padding 1; x: [ci][n][h][w], y: [co][n][h][w],
 * w: [co][ci][3][3] (PyTorch layout). */
/* Each by the algorithm its pass's plan gives (q4_conv_plan: Q4_CONV_DIRECT, _F2 or _F4). */
void q4_conv3x3_forward(const q4_compute *cc, float *y, const float *x, const float *w,
                        const float *bias, int n, int ci, int co, int h, int wd, int algorithm);
/* dx = conv_transpose(dy, w); flipped: scratch of ci*co*9 floats */
void q4_conv3x3_backward_input(const q4_compute *cc, float *dx, const float *dy, const float *w,
                               float *flipped, int n, int ci, int co, int h, int wd, int algorithm);
/* dw = dy (x) im2col(x)^T, dbias = row sums of dy (overwritten) */
void q4_conv3x3_backward_weights(const q4_compute *cc, float *dw, float *dbias, const float *dy,
                                 const float *x, int n, int ci, int co, int h, int wd, int algorithm);
/* The same over images [b0, b0 + count) of dy and x, which hold n images (data-parallel
 * training: one micro-batch's gradient) */
void q4_conv3x3_backward_weights_images(const q4_compute *cc, float *dw, float *dbias, const float *dy, const float *x,
                                        int n, int b0, int count, int ci, int co, int h, int wd, int algorithm);
/* The same sums split by micro-batch (setting micro_batch): the gradient of images [0, micro)
 * into dw and dbias, then each next micro-batch's into `partial` (room for dw and dbias after
 * it) and added to them in micro-batch order. micro <= 0 or >= n: the whole batch at once, as
 * q4_conv3x3_backward_weights. */
void q4_conv3x3_backward_weights_micro(const q4_compute *cc, float *dw, float *dbias, float *partial, const float *dy,
                                       const float *x, int n, int micro, int ci, int co, int h, int wd, int algorithm);
/* linear: x [in][n], y [out][n], w [out][in] */
void q4_linear_forward(const q4_compute *cc, float *y, const float *x, const float *w,
                       const float *bias, int n, int in, int out);
void q4_linear_backward_input(const q4_compute *cc, float *dx, const float *dy, const float *w,
                              int n, int in, int out);
void q4_linear_backward_weights(const q4_compute *cc, float *dw, float *dbias, const float *dy,
                                const float *x, int n, int in, int out);
void q4_linear_backward_weights_images(const q4_compute *cc, float *dw, float *dbias, const float *dy,
                                       const float *x, int n, int b0, int count, int in, int out);
void q4_linear_backward_weights_micro(const q4_compute *cc, float *dw, float *dbias, float *partial, const float *dy,
                                      const float *x, int n, int micro, int in, int out);

/* The passes of a 3x3 convolution, and the algorithm each takes: the direct GEMM (0) or Winograd
 * F(m x m, 3x3) with output tiles of side m = 2 or 4. q4_conv_plan is the one place the choice is
 * made, from the GEMM variant's thresholds (measured per ISA: make bench-conv) and the layer's
 * shape: Winograd from winograd_min_channels in and out with even sides, F(4x4) from
 * winograd4_min_channels with sides a multiple of 4, but never in the training forward pass
 * (winograd.c says why). The model makes its plan once (q4_vgg.conv_plan) and every pass reads it. */
typedef enum {
    Q4_PASS_TRAIN_FORWARD,
    Q4_PASS_EVAL_FORWARD,
    Q4_PASS_BACKWARD_INPUT,
    Q4_PASS_BACKWARD_WEIGHTS,
    Q4_PASSES
} q4_conv_pass;
enum { Q4_CONV_DIRECT = 0, Q4_CONV_F2 = 2, Q4_CONV_F4 = 4 };
int q4_conv_plan(const q4_gemm_variant *variant, int ci, int co, int h, int wd, q4_conv_pass pass);
/* "direct", "F(2x2)" or "F(4x4)" */
const char *q4_conv_algorithm_name(int algorithm);

/* Winograd F(m x m, 3x3), m = 2 or 4, for the same convolution, forward or backward to the input
 * (with the transposed-flipped kernel), or backward to the weights (dw only; the caller sums
 * dbias). They return 0, having done nothing, when the compute context lacks room for it (the
 * model allocates room for its plan; test_kernels checks that it suffices). */
int q4_conv3x3_winograd(const q4_compute *cc, float *y, const float *x, const float *w, const float *bias, int n,
                        int ci, int co, int h, int wd, int m);
int q4_conv3x3_winograd_backward_weights(const q4_compute *cc, float *dw, const float *dy, const float *x, int n,
                                         int ci, int co, int h, int wd, int m);
/* the same for `count` images of tensors whose channel planes hold `stride` images each */
int q4_conv3x3_winograd_backward_weights_strided(const q4_compute *cc, float *dw, const float *dy, const float *x,
                                                 int stride, int count, int ci, int co, int h, int wd, int m);
/* room they need for the largest layers: per-thread scratch, shared and weight-gradient floats */
size_t q4_winograd_scratch_floats(const q4_gemm_variant *variant, int max_ci, int max_co);
size_t q4_winograd_shared_floats(const q4_gemm_variant *variant, int max_ci, int max_co);
size_t q4_winograd_gradient_floats(const q4_gemm_variant *variant, int max_ci, int max_co);

/* ---------------------------------------------------------------- integer layers (iconv.c)
 * Activations for an integer layer: a float tensor [c][n][h][w] quantized per image,
 * scale[b] = max|x| of image b / levels, level = x / scale rounded to nearest (ties to even)
 * and clamped to [-min(levels, zero_point), levels], stored as level + zero_point (levels 255,
 * zero point 0: the non-negative activations after a ReLU in 8 bits; 127 and 128: signed
 * inputs), laid out as [n][h + 2 pad][w + 2 pad][k] bytes: channels innermost (padded to k, a
 * multiple of 4, with the zero point), a border of `pad` pixels of the zero point. An image of
 * zeros gets scale 0. */
void q4_iquantize(const q4_compute *cc, uint8_t *out, float *scale, const float *x, int n, int c, int k, int h, int wd,
                  int pad, int levels, int zero_point);
/* In place, per image: the non-negative x replaced by the values q4_iquantize's levels stand
 * for (level x scale, zero point 0): the straight-through backward pass's inputs. */
void q4_ifakequant(const q4_compute *cc, float *x, int n, int c, int h, int wd, int levels);
/* Bytes of a layer's packed weights, and the packing: w [co][ci][taps] floats that are levels
 * times `scale` (the quantizer's output), channels padded to k; rowsum[o] (may be NULL): the
 * sum of output channel o's levels (for a zero point's correction). */
size_t q4_iconv_packed_bytes(const q4_iconv_variant *v, int taps, int k, int co);
void q4_iconv_pack(const q4_iconv_variant *v, void *out, int32_t *rowsum, const float *w, float scale, int taps, int ci,
                   int k, int co);
/* How an integer layer's sums become floats: y = (sum - shift[o]) * wscale * scale[image] + bias[o]
 * (shift: the zero point times the channel's levels, or NULL; bias may be NULL). */
typedef struct q4_iconv_rescale {
    const float *scale; /* per image, as q4_iquantize gives it */
    float wscale;       /* the weights' quantizer scale */
    const int32_t *shift;
    const float *bias;
} q4_iconv_rescale;
/* The 3x3 (padding 1) convolution of x ([n][h+2][w+2][k], as q4_iquantize writes it with pad 1)
 * with the packed weights: without rescale, the int32 sums y [n][h][w][co]; with it, floats
 * y [co][n][h][w], each tile rescaled while it is in the cache. wd must be a multiple of the
 * variant's mr. */
void q4_iconv3x3(const q4_compute *cc, void *y, const q4_iconv_rescale *rescale, const uint8_t *x, const void *w, int n,
                 int k, int co, int h, int wd);
/* A linear layer, x [n][k] times the packed weights (taps 1): sums y [n][out], or floats
 * y [out][n]; x must be readable for n rounded up to the variant's mr rows. */
void q4_ilinear(const q4_compute *cc, void *y, const q4_iconv_rescale *rescale, const uint8_t *x, const void *w, int n,
                int k, int out);

/* The same convolution by integer Winograd F(2x2, 3x3), for unsigned activations (zero point 0:
 * rescale's shift must be NULL) and even sides: per tile of 2x2 outputs, V = B^T d B of the 4x4
 * input bytes (|V| <= 4 x 255: int16), U = (2G) g (2G)^T of the levels (4 times G g G^T: integers,
 * int16), the 16 points' products summed over channels in int32 by the variant's microkernel,
 * and Y = A^T M A / 4 (exact: the division leaves no remainder). Exact integer arithmetic, so the
 * sums are q4_iconv3x3's bit for bit, whichever runs. Weights packed by q4_iwinograd_pack.
 * Returns 0, having done nothing, when the shape is not one it takes (odd sides, a zero point,
 * sums that could pass int32: q4_iwinograd_fits) or the compute context's scratch lacks room. */
int q4_iconv3x3_winograd(const q4_compute *cc, void *y, const q4_iconv_rescale *rescale, const uint8_t *x,
                         const int16_t *w, int n, int k, int co, int h, int wd, int max_level);
/* 1 when sums of k channels of activations up to 255 and weight levels up to max_level stay
 * within int32 at every step of the integer Winograd transform */
int q4_iwinograd_fits(int k, int max_level);
size_t q4_iwinograd_packed_bytes(const q4_iwinograd_variant *v, int k, int co);
/* the per-thread scratch (q4_compute) it needs for k input channels: with less it returns 0 */
size_t q4_iwinograd_scratch_bytes(const q4_iwinograd_variant *v, int k);
/* w [co][ci][3][3] floats that are levels times `scale`, channels padded to k (even) */
void q4_iwinograd_pack(const q4_iwinograd_variant *v, int16_t *out, const float *w, float scale, int ci, int k, int co);

/* ---------------------------------------------------------------- naive references
 * The specification of the layer-level kernels above, as plain loops (tests only). */
void q4_ref_conv3x3_forward(float *y, const float *x, const float *w, const float *bias, int n,
                            int ci, int co, int h, int wd);
void q4_ref_conv3x3_backward_input(float *dx, const float *dy, const float *w, int n, int ci,
                                   int co, int h, int wd);
void q4_ref_conv3x3_backward_weights(float *dw, float *dbias, const float *dy, const float *x,
                                     int n, int ci, int co, int h, int wd);
void q4_ref_gemm(int M, int N, int K, const q4_operand *A, const q4_operand *B, float *C,
                 long ldc, int accumulate);
float q4_operand_at(const q4_operand *op, long r, long c);

#endif
