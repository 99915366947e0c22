/* vgg.h - the paper's VGG (6 quantized 3x3 convolutions with BatchNorm and ReLU, 3 max
 * pools, 2 quantized linear layers with BatchNorm1d, ReLU and dropout between) as explicit
 * forward and backward passes over channel-major tensors. Layers call kernels only.
 * Memory: parameters, gradients, quantized weights, BN statistics and activations are one
 * allocation each, carved by the tables below; nothing is allocated while training. */
#ifndef Q4_VGG_H
#define Q4_VGG_H

#include <stdint.h>

#include "../include/q4.h"
#include "../kernels/kernels.h"
#include "layers.h"

#define Q4_NUM_CONV 6
#define Q4_NUM_BN 7
#define Q4_NUM_TENSORS 30 /* PyTorch's parameters() order */
#define Q4_NUM_POOLS 3 /* one after each block of two convolutions */
#define Q4_LAYER_FC1 Q4_NUM_CONV /* the quantized layers: the convolutions, then fc1 and fc2 */
#define Q4_LAYER_FC2 (Q4_NUM_CONV + 1)
#define Q4_BN_FC1 Q4_NUM_CONV /* the BatchNorms: one after each convolution, then fc1's */
#define Q4_FC_IN 4096
#define Q4_FC_HIDDEN 512

/* What a parameter tensor is for. */
typedef enum q4_tensor_role {
    Q4_ROLE_WEIGHT,         /* a conv or linear weight: quantized, tanh-clipped */
    Q4_ROLE_BIAS,           /* fc2's bias */
    Q4_ROLE_BIAS_BEFORE_BN, /* conv and fc1 biases: the BatchNorm after them cancels them */
    Q4_ROLE_BN_GAMMA,
    Q4_ROLE_BN_BETA
} q4_tensor_role;

typedef struct q4_tensor_info {
    char name[16];    /* PyTorch's name, e.g. "conv3.weight" */
    long offset;      /* into the parameter array */
    long count;
    int ndim;         /* 4 (conv weight), 2 (linear weight) or 1 */
    int shape[4];
    q4_tensor_role role;
    int quant_layer;  /* 0..7 for the quantized weight tensors, else -1 */
    size_t view;      /* offsetof its pointer in q4_vgg_tensors */
} q4_tensor_info;

/* Named views of one parameter-sized block (the parameters, or their gradients). The block
 * is in PyTorch's parameters() order: conv1.weight, conv1.bias, bn1.weight, bn1.bias, ...,
 * conv6..., bn6..., fc1.weight, fc1.bias, bn7.weight, bn7.bias, fc2.weight, fc2.bias. */
typedef struct q4_vgg_tensors {
    float *conv_weight[Q4_NUM_CONV]; /* [out][in][3][3] */
    float *conv_bias[Q4_NUM_CONV];
    float *bn_gamma[Q4_NUM_BN], *bn_beta[Q4_NUM_BN]; /* bn1..bn6 after the convs, bn7 after fc1 */
    float *fc1_weight, *fc1_bias; /* [512][4096] */
    float *fc2_weight, *fc2_bias; /* [classes][512] */
} q4_vgg_tensors;

typedef struct q4_conv_spec {
    int in_channels, out_channels, size; /* size: input height = width */
    int pool_after;
} q4_conv_spec;

extern const q4_conv_spec q4_conv_specs[Q4_NUM_CONV];

/* Where a training step spends its time (seconds accumulated since the last reset). */
enum {
    Q4_PHASE_CONV_FORWARD = 0,            /* + layer, 6 entries */
    Q4_PHASE_CONV_BACKWARD_INPUT = 6,     /* + layer */
    Q4_PHASE_CONV_BACKWARD_WEIGHTS = 12,  /* + layer */
    Q4_PHASE_BN_RELU_POOL = 18,           /* + layer: forward, recomputation and backward */
    Q4_PHASE_FC = 24,                     /* both linear layers, bn7, dropout, flatten */
    Q4_PHASE_LOSS = 25,
    Q4_PHASE_RECOMPUTE_CONV1 = 26,
    Q4_PHASE_QUANTIZE = 27,
    Q4_PHASE_OPTIMIZER = 28,
    Q4_PHASE_BATCH = 29,
    Q4_PHASE_COUNT = 30
};
extern const char *const q4_phase_names[Q4_PHASE_COUNT];

typedef struct q4_vgg {
    int num_classes;
    /* each conv layer's algorithm in each pass (q4_conv_plan), made once with the kernels */
    int conv_plan[Q4_NUM_CONV][Q4_PASSES];
    int quantized;   /* weight_bits < 32 */
    int weight_bits;
    int max_level;   /* 2^(bits-1) - 1: 7 for 4 bits */
    int global_scale; /* one quantizer scale for all layers (the paper's ablation) */
    float scale_rms;  /* > 0: a quantizer range of at most scale_rms x the weights' RMS (0: max|W|, the paper's) */
    int exact;       /* exact mode: the same bits in every build (kernels, loss, initialisation) */
    int batch_capacity;
    int micro_batch; /* images per micro-batch of the training passes' sums (0: the whole batch) */
    float dropout;

    long param_count;
    q4_tensor_info tensors[Q4_NUM_TENSORS];
    int weight_tensor[Q4_NUM_QUANT_LAYERS]; /* tensor index of quantized layer i */
    float *params;   /* param_count: the trainable FP32 parameters */
    float *grads;    /* param_count */
    q4_vgg_tensors param, grad; /* named views of params and grads */
    float *qweights; /* quantized copies of the 8 weight tensors (unused for FP32 runs) */
    float quant_scale[Q4_NUM_QUANT_LAYERS];
    long qweight_offset[Q4_NUM_QUANT_LAYERS];

    /* BatchNorm: running statistics (state) and this batch's statistics (per step) */
    int bn_channels[Q4_NUM_BN];
    long bn_offset[Q4_NUM_BN];
    long bn_total;
    /* The running statistics are one block of running_floats = 2 x bn_total floats, every
     * layer's means, then every layer's variances (running_var = running_mean + bn_total): a
     * checkpoint, the moving average and the state fingerprint take them as one array. The
     * batch statistics follow them in the same allocation. */
    float *running_mean, *running_var;
    long running_floats;
    q4_batchnorm bn[Q4_NUM_BN];        /* views into params, grads and that allocation */

    /* activations: one allocation, carved by the memory plan in vgg.c (buffers[], views[]),
     * which says what each buffer holds in which pass and what shares it */
    float *activations;
    size_t activation_floats;
    float *input;            /* [3][n][32][32] */
    float *conv_out[Q4_NUM_CONV]; /* each conv's output y; conv1's shares conv2's */
    float *work;             /* [64][n][32][32] */
    float *block_a, *block_b; /* the blocks' pooled outputs and their gradients, in turn */
    float *pool_out[Q4_NUM_POOLS]; /* each block's pooled output, then its gradient: in block_a, block_b, block_a */
    float *fc_in_grad;       /* fc1's input gradient (in block_b) */
    float *fc_in, *fc1_out, *fc1_act, *fc1_grad, *logits, *dlogits;
    float *dropout_mask;     /* [512][n], 0 or 1/(1-p) */
    float *flipped;          /* scratch for transposed-flipped conv weights */
    float *micro_grad;       /* one micro-batch's gradient of a layer, before it is added (micro_batch) */
    float *micro_sums;       /* room for the micro-batches' rows of sums, doubles (q4_micro) */
    q4_micro step;           /* the training step's micro-batches: q4_vgg_plan_step */
    const q4_combiner *combiner; /* data-parallel training: how this process meets the others; or NULL */
    float *held_grads;       /* with a combiner: each held micro-batch's gradient of the layer at hand */
    size_t held_grads_floats;
    const float *dropout_override; /* tests: use this mask instead of drawing one */

    /* integer arithmetic (integer.c, q4_vgg_set_integer): activations quantized per image times
     * the weight levels in int32 */
    int integer;             /* the evaluation forward pass: integer_eval (every layer) */
    int act_bits;            /* setting act_bits: 2..8, or 32 (floats) */
    int act_levels;          /* conv2-6's inputs in training and evaluation: 2^act_bits - 1, or 0 (floats) */
    int int_levels[Q4_NUM_QUANT_LAYERS]; /* each layer's input levels in evaluation (0: floats) */
    unsigned int_packed;     /* layers whose packed levels match the quantized weights (q4_vgg_quantize clears it) */
    unsigned int_winograd;   /* conv layers that take integer Winograd F(2x2) (the ISA has it; same sums as direct) */
    uint8_t *int_act;        /* a layer's input, quantized per image, pixel-major and padded */
    size_t int_act_bytes;
    float *int_scale;        /* its scale per image */
    void *int_weights;       /* every layer's levels, packed for the kernels' iconv */
    size_t int_weight_offset[Q4_NUM_QUANT_LAYERS];
    int32_t int_shift[64];   /* conv1's input's zero point (128) times its levels summed per output channel */

    q4_kernels kernels;
    q4_compute compute;
    double phase_seconds[Q4_PHASE_COUNT];
} q4_vgg;

/* adds the time since *t to a phase and restarts *t */
static inline void q4_phase_end(q4_vgg *m, int phase, double *t) {
    double now = q4_now();
    m->phase_seconds[phase] += now - *t;
    *t = now;
}

/* Fills only the tensor tables (names, shapes, offsets, counts): nothing is allocated. */
void q4_vgg_describe(q4_vgg *model, int num_classes);
/* The parameters the model computes with become the param_count floats at block (its named
 * views follow): the session points the model at the moving average and back. */
void q4_vgg_point_params(q4_vgg *model, float *block);
/* A tensor by its PyTorch name ("conv3.bias"), or NULL. */
const q4_tensor_info *q4_vgg_tensor(const q4_vgg *model, const char *name);
/* Creates the model for batches up to batch_capacity with the given threads, on the
 * kernels q4_kernels_select chose; micro_batch: the setting (0: the whole batch). */
q4_status q4_vgg_create(q4_vgg *model, int num_classes, int weight_bits, int batch_capacity, int micro_batch,
                        int threads, float dropout, int exact, q4_error *err);
void q4_vgg_destroy(q4_vgg *model);
q4_status q4_vgg_set_threads(q4_vgg *model, int threads, q4_error *err);
size_t q4_vgg_memory_bytes(const q4_vgg *model);

/* He-normal convolutions, N(0, 1/in) linear layers, zero biases, BN gamma 1 beta 0,
 * running mean 0 and variance 1; every draw keyed by (seed, tensor, element). */
void q4_vgg_init(q4_vgg *model, uint64_t seed);

/* Recomputes the quantized weights and their scales from the FP32 weights: per tensor, or one
 * scale from the largest weight of all layers when global_scale is set; the range of each
 * tensor (max|W|) capped at scale_rms times its RMS first when scale_rms > 0. */
void q4_vgg_quantize(q4_vgg *model);
/* Weights used by layer i in the forward pass (quantized, or FP32 for FP32 runs). */
const float *q4_vgg_layer_weights(const q4_vgg *model, int layer);
/* The conv plan as text (a table, or one compact line); returns the length (like snprintf). */
size_t q4_vgg_plan_text(const q4_vgg *model, int compact, char *out, size_t size);

/* Data-parallel training: the combiner (q4.h) this model's training steps meet the other
 * processes through (NULL: alone). Needs micro-batches smaller than the batch; allocates room for the gradients of
 * the micro-batches a process holds. */
q4_status q4_vgg_set_combiner(q4_vgg *model, const q4_combiner *combiner, q4_error *err);
/* Plans a training step of `images` images (all processes'): returns how many this process
 * holds, from *first_image (may be NULL) on; model->input must then hold those. Alone, the
 * training forward pass plans its own step. */
int q4_vgg_plan_step(q4_vgg *model, int images, int *first_image);

/* Integer arithmetic (issue 26, integer.c): integer_eval (setting integer_eval): the evaluation
 * forward pass multiplies 8-bit activations (quantized per image: conv1's signed input with 127
 * levels, every other layer's input, non-negative after a ReLU, with 255) by the weight levels
 * in integer arithmetic; act_bits < 32 (setting act_bits): conv2-6's inputs at that many bits in
 * the training forward pass and in evaluation. Bias, BatchNorm, ReLU and pooling stay in floats.
 * Needs 2- to 7-bit weights. */
q4_status q4_vgg_set_integer(q4_vgg *model, int integer_eval, int act_bits, q4_error *err);
/* The evaluation forward pass with some layers in integer arithmetic (q4_vgg_forward calls it
 * when integer or act_levels is set). */
void q4_vgg_forward_integer(q4_vgg *model, int n);
/* conv layer l of n images from `in` into conv_out[l], in integer arithmetic with `levels` */
void q4_vgg_conv_integer(q4_vgg *model, int l, const float *in, int n, int levels);

/* Forward pass of n images already in model->input. train: batch statistics (and running
 * statistics updated), dropout drawn from (seed, step). Leaves logits in model->logits. */
void q4_vgg_forward(q4_vgg *model, int n, int train, uint64_t seed, long long step);

/* Softmax cross-entropy of the logits against labels (smoothed by `smoothing`, 0: plain):
 * mean loss, fills dlogits with d(mean loss)/d(logits), counts correct predictions.
 * Predictions may be NULL. */
double q4_vgg_loss(q4_vgg *model, int n, const uint8_t *labels, float smoothing, int *correct, uint8_t *predictions);

/* Backward pass after a training forward and q4_vgg_loss: fills model->grads. */
void q4_vgg_backward(q4_vgg *model, int n);

#endif
