/* layers.h - the model's layer operations as forward/backward pairs (outputs first, sizes
 * last, gradients named d*), over channel-major tensors [C][N][H][W]. Convolution and
 * linear layers are in kernels.h; these are the rest: BatchNorm+ReLU, max pooling,
 * dropout, flatten and the softmax cross-entropy loss. They call kernels, never intrinsics,
 * and split work over channels only, so results do not depend on the thread count. */
#ifndef Q4_LAYERS_H
#define Q4_LAYERS_H

#include <stdint.h>

#include "../kernels/kernels.h"

#define Q4_BN_EPS 1e-5f

/* One BatchNorm layer's parameters, running statistics and this batch's statistics, each
 * an array of `channels` floats. */
typedef struct q4_batchnorm {
    int channels;
    double momentum;       /* weight of each batch in the running statistics (PyTorch's: 0.1) */
    const float *gamma, *beta;
    float *dgamma, *dbeta;
    float *running_mean, *running_var;
    float *mean, *invstd;  /* statistics the last forward pass normalized with */
    float *scale, *shift;  /* folded: bn(y) = y * scale + shift */
} q4_batchnorm;

/* One training step's micro-batches as this process sees them (setting micro_batch; see
 * q4_combiner in q4.h): the sums over the batch are taken per micro-batch into rows of `sums`,
 * made known to every process by the combiner, and added in micro-batch order. */
typedef struct q4_micro {
    int size;                    /* images per micro-batch; 0: none, the sums over the batch at once */
    int total, first, held;      /* micro-batches in the step; the first this process holds; how many */
    int images;                  /* images in the step, all processes' (this one's from first * size) */
    double *sums;                /* rows: room for total x 2 x Q4_MICRO_ROW doubles */
    const q4_combiner *combiner; /* NULL: this process holds every micro-batch */
} q4_micro;
#define Q4_MICRO_ROW 512 /* the most channels of a BatchNorm layer */

/* Plans a step of `images` images in micro-batches of `size` (0 or >= images: one sum over the
 * batch; with a combiner, one micro-batch held by process 0); `sums` is left as it is. */
void q4_micro_plan(q4_micro *micro, int size, int images, const q4_combiner *combiner);
/* the images this process holds: how many, and (first_image may be NULL) where they begin */
int q4_micro_images(const q4_micro *micro, int *first_image);

/* out = relu(bn(y)), per channel over the plane of the images this process holds (per_image
 * values each). train: batch statistics (mean, biased variance; running statistics updated
 * with the unbiased one, bn->momentum); otherwise the running statistics. out may alias y.
 * micro (training): NULL or size 0, the sums over the plane at once; else per micro-batch,
 * over the whole batch of every process, added in micro-batch order. */
void q4_batchnorm_relu_forward(const q4_compute *cc, float *out, const float *y, long plane, long per_image, int train,
                               const q4_micro *micro, const q4_batchnorm *bn);
/* out = relu(bn(y)) again with the statistics of the last forward pass (recomputation). */
void q4_batchnorm_relu_reapply(const q4_compute *cc, float *out, const float *y, long plane, const q4_batchnorm *bn);
/* Backward of a training forward: y (pre-BN values) is replaced by dL/dy, given da = dL/d
 * relu-output; dgamma, dbeta are overwritten (the whole batch's). micro: as in the forward pass. */
void q4_batchnorm_relu_backward(const q4_compute *cc, float *y_to_dy, const float *da, long plane, long per_image,
                                const q4_micro *micro, const q4_batchnorm *bn);

/* out = maxpool2(relu(bn(y))) with the last forward pass's statistics, y [channels][n][size][size],
 * a plane at a time through per-thread scratch (recomputes a pooled block output exactly). */
void q4_batchnorm_relu_maxpool(const q4_compute *cc, float *out, const float *y, int n, int size,
                               const q4_batchnorm *bn);

/* 2x2 max pooling, stride 2: a [channels][n][size][size] -> out [channels][n][size/2][size/2] */
void q4_maxpool2_forward(const q4_compute *cc, float *out, const float *a, int channels, int n, int size);
/* a (the pooled input) is replaced by dL/da from dout (to each window's first maximum) */
void q4_maxpool2_backward(const q4_compute *cc, float *a_to_da, const float *dout, int channels, int n, int size);

/* Inverted dropout: mask[i] is 0 or 1/(1-p), drawn from (seed, step, i); x *= mask. The
 * backward is the same product on the gradient. */
void q4_dropout_mask(float *mask, long count, float p, uint64_t seed, long long step);
/* The mask of images [first, first + n) of a batch of `images`, mask [units][n]: the draws a
 * mask [units][images] of the whole batch has there. */
void q4_dropout_mask_images(float *mask, int units, int n, int first, int images, float p, uint64_t seed,
                            long long step);
void q4_dropout_apply(float *x, const float *mask, long count);

/* [channels][n][positions] -> [channels*positions][n] (PyTorch's flatten order) and back */
void q4_flatten(float *out, const float *in, int channels, int n, int positions);
void q4_unflatten(float *out, const float *in, int channels, int n, int positions);

/* Mean softmax cross-entropy of logits [classes][n] against targets that put 1 - smoothing
 * on the label and smoothing / classes on every class (smoothing 0: plain cross-entropy);
 * dlogits (may be NULL) = d(mean loss)/d logits = (softmax - target) / n; the loss summed per
 * micro-batch of `micro` images and added in micro-batch order (micro <= 0 or > n: one sum); correct counts
 * argmax hits (first maximum); predictions (may be NULL) gets the argmax. exact: exp and log of
 * exactmath.h (the same bits in every build) instead of libm's. */
double q4_softmax_cross_entropy(float *dlogits, const float *logits, const uint8_t *labels, int classes, int n,
                                int micro, float smoothing, int exact, int *correct, uint8_t *predictions);
/* The same over the n images this process holds of a step planned in micro-batches: the loss
 * and correct count of each held micro-batch into micro->sums, gathered from every process and
 * added in micro-batch order; returns the whole batch's mean loss, *correct its count, and
 * dlogits divided by the whole batch's image count. */
double q4_softmax_cross_entropy_micro(float *dlogits, const float *logits, const uint8_t *labels, int classes, int n,
                                      const q4_micro *micro, float smoothing, int exact, int *correct,
                                      uint8_t *predictions);

#endif
