/* vgg.c - forward and backward passes of the paper's VGG, written against the kernel
 * interface (no intrinsics here). Activations are channel-major [C][N][H][W], so every
 * BatchNorm channel is one contiguous run. To keep the peak memory small, only conv
 * outputs (pre-BN) are kept for the backward pass; BN+ReLU and pooled outputs are
 * recomputed from them, and so is conv1's output (cheap: K = 27). */
#include "vgg.h"

#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../quant/quant.h"
#include "../util/util.h"

const char *const q4_phase_names[Q4_PHASE_COUNT] = {
    "conv1 forward", "conv2 forward", "conv3 forward", "conv4 forward", "conv5 forward", "conv6 forward",
    "conv1 backward-input", "conv2 backward-input", "conv3 backward-input", "conv4 backward-input",
    "conv5 backward-input", "conv6 backward-input", "conv1 backward-weights", "conv2 backward-weights",
    "conv3 backward-weights", "conv4 backward-weights", "conv5 backward-weights", "conv6 backward-weights",
    "bn1+relu", "bn2+relu+pool", "bn3+relu", "bn4+relu+pool", "bn5+relu", "bn6+relu+pool",
    "fc1+bn7+dropout+fc2", "loss", "conv1 recomputation", "quantize weights", "optimizer step", "batch assembly",
};

const q4_conv_spec q4_conv_specs[Q4_NUM_CONV] = {
    {3, 64, 32, 0}, {64, 64, 32, 1}, {64, 128, 16, 0}, {128, 128, 16, 1}, {128, 256, 8, 0}, {256, 256, 8, 1},
};

/* ------------------------------------------------------------ parameter table */

#define VIEW(member) offsetof(q4_vgg_tensors, member)

static void add_tensor(q4_vgg *m, int *index, const char *name, int ndim, const int *shape, q4_tensor_role role,
                       int quant_layer, size_t view, long *offset) {
    q4_tensor_info *t = &m->tensors[(*index)++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = ndim;
    t->count = 1;
    for (int d = 0; d < 4; d++) {
        t->shape[d] = d < ndim ? shape[d] : 1;
        t->count *= t->shape[d];
    }
    t->offset = *offset;
    t->role = role;
    t->quant_layer = quant_layer;
    t->view = view;
    *offset += t->count;
    if (quant_layer >= 0) m->weight_tensor[quant_layer] = (int)(t - m->tensors);
}

static void setup_tensors(q4_vgg *m) {
    long offset = 0;
    int t = 0;
    char name[16];
    for (int i = 0; i < Q4_NUM_CONV; i++) {
        const q4_conv_spec *s = &q4_conv_specs[i];
        int w_shape[4] = {s->out_channels, s->in_channels, 3, 3}, c_shape[1] = {s->out_channels};
        size_t slot = (size_t)i * sizeof(float *);
        snprintf(name, sizeof name, "conv%d.weight", i + 1);
        add_tensor(m, &t, name, 4, w_shape, Q4_ROLE_WEIGHT, i, VIEW(conv_weight) + slot, &offset);
        snprintf(name, sizeof name, "conv%d.bias", i + 1);
        add_tensor(m, &t, name, 1, c_shape, Q4_ROLE_BIAS_BEFORE_BN, -1, VIEW(conv_bias) + slot, &offset);
        snprintf(name, sizeof name, "bn%d.weight", i + 1);
        add_tensor(m, &t, name, 1, c_shape, Q4_ROLE_BN_GAMMA, -1, VIEW(bn_gamma) + slot, &offset);
        snprintf(name, sizeof name, "bn%d.bias", i + 1);
        add_tensor(m, &t, name, 1, c_shape, Q4_ROLE_BN_BETA, -1, VIEW(bn_beta) + slot, &offset);
    }
    int fc1_shape[2] = {Q4_FC_HIDDEN, Q4_FC_IN}, hidden[1] = {Q4_FC_HIDDEN};
    int fc2_shape[2] = {m->num_classes, Q4_FC_HIDDEN}, classes[1] = {m->num_classes};
    size_t bn7 = (size_t)(Q4_NUM_BN - 1) * sizeof(float *);
    add_tensor(m, &t, "fc1.weight", 2, fc1_shape, Q4_ROLE_WEIGHT, 6, VIEW(fc1_weight), &offset);
    add_tensor(m, &t, "fc1.bias", 1, hidden, Q4_ROLE_BIAS_BEFORE_BN, -1, VIEW(fc1_bias), &offset);
    add_tensor(m, &t, "bn7.weight", 1, hidden, Q4_ROLE_BN_GAMMA, -1, VIEW(bn_gamma) + bn7, &offset);
    add_tensor(m, &t, "bn7.bias", 1, hidden, Q4_ROLE_BN_BETA, -1, VIEW(bn_beta) + bn7, &offset);
    add_tensor(m, &t, "fc2.weight", 2, fc2_shape, Q4_ROLE_WEIGHT, 7, VIEW(fc2_weight), &offset);
    add_tensor(m, &t, "fc2.bias", 1, classes, Q4_ROLE_BIAS, -1, VIEW(fc2_bias), &offset);
    m->param_count = offset;

    long q = 0;
    for (int i = 0; i < Q4_NUM_QUANT_LAYERS; i++) {
        m->qweight_offset[i] = q;
        q += m->tensors[m->weight_tensor[i]].count;
    }
    long b = 0;
    for (int i = 0; i < Q4_NUM_BN; i++) {
        m->bn_channels[i] = i < Q4_NUM_CONV ? q4_conv_specs[i].out_channels : Q4_FC_HIDDEN;
        m->bn_offset[i] = b;
        b += m->bn_channels[i];
    }
    m->bn_total = b;
}

/* points every named view of `views` into a parameter-sized block */
static void carve_views(const q4_vgg *m, float *block, q4_vgg_tensors *views) {
    for (int t = 0; t < Q4_NUM_TENSORS; t++)
        *(float **)((char *)views + m->tensors[t].view) = block + m->tensors[t].offset;
}

void q4_vgg_point_params(q4_vgg *m, float *block) {
    m->params = block;
    carve_views(m, m->params, &m->param);
    for (int i = 0; i < Q4_NUM_BN; i++) {
        m->bn[i].gamma = m->param.bn_gamma[i];
        m->bn[i].beta = m->param.bn_beta[i];
    }
}

const q4_tensor_info *q4_vgg_tensor(const q4_vgg *m, const char *name) {
    for (int t = 0; t < Q4_NUM_TENSORS; t++)
        if (strcmp(m->tensors[t].name, name) == 0) return &m->tensors[t];
    return NULL;
}

/* ------------------------------------------------------------ memory */

static size_t round16(size_t n) { return (n + 15) & ~(size_t)15; }

/* the weights of the largest convolution packed once: as im2col GEMM A panels or as the 16
 * Winograd-transformed matrices */
static size_t shared_floats(const q4_vgg *m) {
    size_t gemm = (size_t)(256 + 16) * 256 * 9, winograd = q4_winograd_shared_floats(m->kernels.gemm, 256, 256);
    return gemm > winograd ? gemm : winograd;
}

/* The memory plan: every buffer of the activation block, in its order, with its size (floats
 * per image of the batch and fixed floats; two sizes come from the kernels) and what it holds
 * in which pass. One allocation holds them all (plan_activations). */
typedef struct buffer_spec {
    const char *name;
    size_t member;           /* offsetof(q4_vgg, its pointer) */
    size_t per_image, fixed; /* floats */
    int sized_by;            /* 0: the sizes above; CLASSES: per_image x the classes; PACKED, WINOGRAD: the
                                kernels' room for the packed conv weights, for Winograd's weight gradient;
                                MICRO: the fixed size where the model has micro-batches, else none;
                                MICRO_ROWS: the fixed size per micro-batch of a full batch, or none */
    const char *holds;
} buffer_spec;

enum { SIZES = 0, CLASSES, PACKED, WINOGRAD, MICRO, MICRO_ROWS };
#define MEMBER(field) offsetof(q4_vgg, field)
static const buffer_spec buffers[] = {
    {"input", MEMBER(input), 3 * 1024, 0, 0, "the batch's images, normalized: conv1's input in both passes"},
    {"conv2.out", MEMBER(conv_out[1]), 64 * 1024, 0, 0,
     "conv2's output y2; before it, conv1's y1 (recomputed in the backward pass once y2 is no longer needed)"},
    {"work", MEMBER(work), 64 * 1024, 0, 0,
     "forward: the BatchNorm+ReLU output of the layer at hand; backward: the activation recomputed, then its gradient"},
    {"conv3.out", MEMBER(conv_out[2]), 128 * 256, 0, 0, "conv3's output y3, then its gradient"},
    {"conv4.out", MEMBER(conv_out[3]), 128 * 256, 0, 0, "conv4's output y4, then its gradient"},
    {"conv5.out", MEMBER(conv_out[4]), 256 * 64, 0, 0, "conv5's output y5, then its gradient"},
    {"conv6.out", MEMBER(conv_out[5]), 256 * 64, 0, 0, "conv6's output y6, then its gradient"},
    {"block_a", MEMBER(block_a), 64 * 256, 0, 0,
     "forward: pool1's output, then pool3's; backward: pool3's gradient, then pool1's (pool1's output recomputed "
     "when conv3's weight gradient needs it)"},
    {"block_b", MEMBER(block_b), 128 * 64, 0, 0,
     "forward: pool2's output; backward: fc1's input gradient, then pool2's gradient (pool2's output recomputed "
     "when conv5's weight gradient needs it)"},
    {"fc_in", MEMBER(fc_in), Q4_FC_IN, 0, 0, "pool3's output flattened: fc1's input"},
    {"fc1.out", MEMBER(fc1_out), Q4_FC_HIDDEN, 0, 0, "fc1's output, then its gradient"},
    {"fc1.act", MEMBER(fc1_act), Q4_FC_HIDDEN, 0, 0, "BatchNorm+ReLU(+dropout) of fc1's output: fc2's input"},
    {"fc1.grad", MEMBER(fc1_grad), Q4_FC_HIDDEN, 0, 0, "the gradient of fc2's input; integer evaluation: a chunk's logits"},
    {"logits", MEMBER(logits), 1, 0, CLASSES, "fc2's output"},
    {"dlogits", MEMBER(dlogits), 1, 0, CLASSES, "the loss's gradient"},
    {"dropout_mask", MEMBER(dropout_mask), Q4_FC_HIDDEN, 0, 0, "0 or 1/(1-p) per unit of fc1"},
    {"flipped", MEMBER(flipped), 0, 256 * 256 * 9, 0, "a conv's weights transposed and flipped (backward to the input); integer evaluation: a chunk's images"},
    {"packed_weights", MEMBER(compute.shared), 0, 0, PACKED, "the weights of the conv at hand, packed for the GEMM or Winograd"},
    {"winograd_gradient", MEMBER(compute.winograd), 0, 0, WINOGRAD, "Winograd's weight-gradient matrices"},
    {"micro_grad", MEMBER(micro_grad), 0, (size_t)Q4_FC_IN * Q4_FC_HIDDEN + Q4_FC_HIDDEN, MICRO,
     "one micro-batch's weight and bias gradient of the layer at hand (the largest: fc1), before it is added to "
     "those of the micro-batches before it"},
    {"micro_sums", MEMBER(micro_sums), 0, 2 * 2 * Q4_MICRO_ROW, MICRO_ROWS,
     "per micro-batch, two doubles per channel: the sums BatchNorm and the loss take per micro-batch, before they are "
     "added in micro-batch order (data-parallel training: every process's)"},
};
#define BUFFER_COUNT (int)(sizeof buffers / sizeof buffers[0])

/* Names for a buffer's contents at other times: a view is the buffer it lives in. */
typedef struct view_spec {
    size_t member, in;
} view_spec;
static const view_spec views[] = {
    {MEMBER(conv_out[0]), MEMBER(conv_out[1])}, /* conv1's output, recomputed when needed */
    {MEMBER(pool_out[0]), MEMBER(block_a)},     /* pool1's output, then pool1's gradient */
    {MEMBER(pool_out[1]), MEMBER(block_b)},     /* pool2's output, then pool2's gradient */
    {MEMBER(pool_out[2]), MEMBER(block_a)},     /* pool3's output, then pool3's gradient */
    {MEMBER(fc_in_grad), MEMBER(block_b)},      /* fc1's input gradient */
};
#undef MEMBER

/* the micro-batches of a full batch */
static int micro_rows(const q4_vgg *m) { return (m->batch_capacity + m->micro_batch - 1) / m->micro_batch; }

static size_t buffer_floats(const q4_vgg *m, const buffer_spec *b) {
    if (b->sized_by == PACKED) return shared_floats(m);
    if (b->sized_by == WINOGRAD) return q4_winograd_gradient_floats(m->kernels.gemm, 256, 256);
    if (b->sized_by == MICRO) return m->micro_batch > 0 && m->micro_batch < m->batch_capacity ? b->fixed : 0;
    if (b->sized_by == MICRO_ROWS) return m->micro_batch > 0 ? b->fixed * (size_t)micro_rows(m) : 0;
    size_t per_image = b->sized_by == CLASSES ? b->per_image * (size_t)m->num_classes : b->per_image;
    return per_image * (size_t)m->batch_capacity + b->fixed;
}

static float **pointer(q4_vgg *m, size_t member) { return (float **)((char *)m + member); }

/* Carves the activation block by the plan; with base NULL only counts. Returns floats used. */
static size_t plan_activations(q4_vgg *m, float *base) {
    size_t at = 0;
    for (int i = 0; i < BUFFER_COUNT; i++) {
        if (base) *pointer(m, buffers[i].member) = base + at;
        at += round16(buffer_floats(m, &buffers[i]));
    }
    if (base) {
        for (size_t i = 0; i < sizeof views / sizeof views[0]; i++) *pointer(m, views[i].member) = *pointer(m, views[i].in);
        m->compute.shared_floats = shared_floats(m);
        m->compute.winograd_floats = q4_winograd_gradient_floats(m->kernels.gemm, 256, 256);
    }
    return at;
}

static q4_status alloc_floats(float **out, size_t count, const char *what, int zero, q4_error *err) {
    *out = q4_alloc_aligned(count * sizeof(float));
    if (!*out)
        return q4_fail(err, Q4_ERR_NOMEM, "out of memory allocating %s (%.1f MB)", what,
                       count * 4.0 / 1048576.0);
    if (zero) memset(*out, 0, count * sizeof(float));
    return Q4_OK;
}

void q4_vgg_describe(q4_vgg *m, int num_classes) {
    memset(m, 0, sizeof *m);
    m->num_classes = num_classes;
    setup_tensors(m);
}

/* The old pool's threads end before the new pool's start: a browser build has a fixed set of
 * web workers for threads, and starting more than it has needs the calling thread to return
 * to its event loop, which a training step never does (it would wait forever). */
q4_status q4_vgg_set_threads(q4_vgg *m, int threads, q4_error *err) {
    if (threads < 1) threads = 1;
    if (m->compute.pool && q4_pool_threads(m->compute.pool) == threads) return Q4_OK;
    size_t per_thread = q4_gemm_scratch_floats(m->kernels.gemm), winograd = q4_winograd_scratch_floats(m->kernels.gemm, 256, 256);
    if (winograd > per_thread) per_thread = winograd;
    float *scratch = q4_alloc_aligned((size_t)threads * per_thread * sizeof(float));
    if (!scratch) return q4_fail(err, Q4_ERR_NOMEM, "out of memory allocating GEMM scratch for %d threads", threads);
    q4_pool_destroy(m->compute.pool);
    q4_free_aligned(m->compute.scratch);
    m->compute.scratch = scratch;
    m->compute.scratch_floats = per_thread;
    m->compute.pool = q4_pool_create(threads);
    if (!m->compute.pool) { /* one thread needs no new thread: it always works */
        m->compute.pool = q4_pool_create(1);
        return q4_fail(err, Q4_ERR_NOMEM, "could not start %d threads: training goes on with one", threads);
    }
    return Q4_OK;
}

q4_status q4_vgg_create(q4_vgg *m, int num_classes, int weight_bits, int batch_capacity, int micro_batch, int threads,
                        float dropout, int exact, q4_error *err) {
    int quantized = weight_bits < Q4_FP32_BITS;
    memset(m, 0, sizeof *m);
    if (num_classes < 2 || num_classes > Q4_MAX_CLASSES)
        return q4_fail(err, Q4_ERR_ARGUMENT, "number of classes must be 2..%d, not %d", Q4_MAX_CLASSES, num_classes);
    if (batch_capacity < 2 || batch_capacity > 4096)
        return q4_fail(err, Q4_ERR_ARGUMENT, "batch size must be 2..4096, not %d", batch_capacity);
    q4_vgg_describe(m, num_classes);
    m->quantized = quantized;
    m->weight_bits = weight_bits;
    m->max_level = quantized ? q4_max_level(weight_bits) : 0;
    m->batch_capacity = batch_capacity;
    m->micro_batch = micro_batch > 0 && micro_batch < batch_capacity ? micro_batch : 0;
    m->dropout = dropout;
    m->exact = exact;
    q4_kernels_init(&m->kernels, exact);
    m->compute.kernels = &m->kernels;
    for (int l = 0; l < Q4_NUM_CONV; l++)
        for (int pass = 0; pass < Q4_PASSES; pass++) {
            const q4_conv_spec *c = &q4_conv_specs[l];
            m->conv_plan[l][pass] = q4_conv_plan(m->kernels.gemm, c->in_channels, c->out_channels, c->size, c->size, pass);
        }

    q4_status st;
    long quant_total = m->qweight_offset[Q4_NUM_QUANT_LAYERS - 1] +
                       m->tensors[m->weight_tensor[Q4_NUM_QUANT_LAYERS - 1]].count;
    m->activation_floats = plan_activations(m, NULL);
    /* activations are always written before they are read: left untouched until used */
    if ((st = alloc_floats(&m->params, (size_t)m->param_count, "parameters", 1, err)) ||
        (st = alloc_floats(&m->grads, (size_t)m->param_count, "gradients", 1, err)) ||
        (st = alloc_floats(&m->qweights, quantized ? (size_t)quant_total : 16, "quantized weights", 1, err)) ||
        (st = alloc_floats(&m->running_mean, 6 * (size_t)m->bn_total, "BatchNorm statistics", 1, err)) ||
        (st = alloc_floats(&m->activations, m->activation_floats, "activations", 0, err)) ||
        (st = q4_vgg_set_threads(m, threads, err))) {
        q4_vgg_destroy(m);
        return st;
    }
    m->running_var = m->running_mean + m->bn_total;
    m->running_floats = 2 * m->bn_total;
    float *batch_stats = m->running_var + m->bn_total; /* mean, invstd, scale, shift */
    carve_views(m, m->grads, &m->grad);
    q4_vgg_point_params(m, m->params);
    for (int i = 0; i < Q4_NUM_BN; i++) {
        long at = m->bn_offset[i];
        q4_batchnorm *bn = &m->bn[i];
        bn->channels = m->bn_channels[i];
        bn->momentum = 0.1;
        bn->dgamma = m->grad.bn_gamma[i];
        bn->dbeta = m->grad.bn_beta[i];
        bn->running_mean = m->running_mean + at;
        bn->running_var = m->running_var + at;
        bn->mean = batch_stats + at;
        bn->invstd = batch_stats + m->bn_total + at;
        bn->scale = batch_stats + 2 * m->bn_total + at;
        bn->shift = batch_stats + 3 * m->bn_total + at;
    }
    plan_activations(m, m->activations);
    return Q4_OK;
}

void q4_vgg_destroy(q4_vgg *m) {
    q4_pool_destroy(m->compute.pool);
    q4_free_aligned(m->compute.scratch);
    q4_free_aligned(m->params);
    q4_free_aligned(m->grads);
    q4_free_aligned(m->qweights);
    q4_free_aligned(m->running_mean);
    q4_free_aligned(m->activations);
    q4_free_aligned(m->held_grads);
    q4_free_aligned(m->int_act);
    q4_free_aligned(m->int_weights);
    memset(m, 0, sizeof *m);
}

/* a conv or linear layer's weight and bias gradients, one array (the bias after the weights) */
static long layer_gradient_floats(const q4_vgg *m, int layer) {
    const q4_tensor_info *w = &m->tensors[m->weight_tensor[layer]];
    return w->count + w->shape[0];
}

q4_status q4_vgg_set_combiner(q4_vgg *m, const q4_combiner *combiner, q4_error *err) {
    q4_free_aligned(m->held_grads);
    m->held_grads = NULL;
    m->held_grads_floats = 0;
    m->combiner = NULL;
    if (!combiner) return Q4_OK;
    if (m->micro_batch <= 0)
        return q4_fail(err, Q4_ERR_ARGUMENT, "data-parallel training needs micro-batches smaller than the batch "
                       "(micro_batch from 1 to %d): they fix the order of every sum over the batch",
                       m->batch_capacity - 1);
    if (combiner->processes < 1 || combiner->rank < 0 || combiner->rank >= combiner->processes)
        return q4_fail(err, Q4_ERR_ARGUMENT, "process %d of %d does not exist", combiner->rank, combiner->processes);
    long largest = 0;
    for (int layer = 0; layer < Q4_NUM_QUANT_LAYERS; layer++) {
        const q4_tensor_info *w = &m->tensors[m->weight_tensor[layer]], *b = w + 1;
        if (b->offset != w->offset + w->count || b->count != w->shape[0]) /* the combiner sums them as one array */
            return q4_fail(err, Q4_ERR_STATE, "%s does not follow %s in the parameters", b->name, w->name);
        if (layer_gradient_floats(m, layer) > largest) largest = layer_gradient_floats(m, layer);
    }
    int total = micro_rows(m), held = (total + combiner->processes - 1) / combiner->processes;
    size_t bytes = (size_t)held * (size_t)largest * sizeof(float);
    if (!(m->held_grads = q4_alloc_aligned(bytes)))
        return q4_fail(err, Q4_ERR_NOMEM, "out of memory allocating the gradients of %d micro-batches (%.1f MB)", held,
                       bytes / 1e6);
    m->held_grads_floats = (size_t)held * (size_t)largest;
    m->combiner = combiner;
    return Q4_OK;
}

int q4_vgg_plan_step(q4_vgg *m, int images, int *first_image) {
    q4_micro_plan(&m->step, m->micro_batch, images, m->combiner);
    m->step.sums = (double *)m->micro_sums;
    return q4_micro_images(&m->step, first_image);
}

size_t q4_vgg_memory_bytes(const q4_vgg *m) {
    size_t quant = m->quantized ? (size_t)(m->qweight_offset[Q4_NUM_QUANT_LAYERS - 1] + m->tensors[m->weight_tensor[Q4_NUM_QUANT_LAYERS - 1]].count) : 16;
    size_t floats = 2 * (size_t)m->param_count + quant + 6 * (size_t)m->bn_total + m->activation_floats +
                    (size_t)q4_pool_threads(m->compute.pool) * m->compute.scratch_floats + m->held_grads_floats;
    return floats * sizeof(float) + m->int_act_bytes;
}

/* ------------------------------------------------------------ initialisation */

void q4_vgg_init(q4_vgg *m, uint64_t seed) {
    for (int t = 0; t < Q4_NUM_TENSORS; t++) {
        q4_tensor_info *info = &m->tensors[t];
        float *p = m->params + info->offset;
        if (info->role == Q4_ROLE_WEIGHT) {
            long fan_in = info->count / info->shape[0];
            /* conv: N(0, 2/(in*9)); linear: N(0, 1/in) */
            double std = info->ndim == 4 ? sqrt(2.0 / (double)fan_in) : sqrt(1.0 / (double)fan_in);
            for (long i = 0; i < info->count; i += 2) {
                double z[2];
                q4_random_normal_pair(seed, Q4_STREAM_INIT, (uint64_t)t, (uint64_t)(i / 2), m->exact, z);
                p[i] = (float)(std * z[0]);
                if (i + 1 < info->count) p[i + 1] = (float)(std * z[1]);
            }
        } else {
            /* biases and BN beta are 0, BN gamma is 1 */
            float value = info->role == Q4_ROLE_BN_GAMMA ? 1.0f : 0.0f;
            for (long i = 0; i < info->count; i++) p[i] = value;
        }
    }
    for (long i = 0; i < m->bn_total; i++) {
        m->running_mean[i] = 0.0f;
        m->running_var[i] = 1.0f;
    }
}

/* ------------------------------------------------------------ quantization */

#define QUANT_CHUNK 65536

typedef struct quant_job {
    q4_vgg *m;
    int chunk_layer[256];
    long chunk_begin[256], chunk_end[256];
    float chunk_max[256];
    double chunk_squares[256]; /* with scale_rms: the sum of the chunk's squared weights */
    int chunks;
} quant_job;

/* The sum of squares in double, in a fixed order (four interleaved partial sums, then added in
 * order): the same bits in every build and for any number of threads. */
static double sum_squares(const float *x, long n) {
    double s[4] = {0.0, 0.0, 0.0, 0.0};
    long i = 0;
    for (; i + 4 <= n; i += 4)
        for (int k = 0; k < 4; k++) s[k] += (double)x[i + k] * (double)x[i + k];
    for (; i < n; i++) s[0] += (double)x[i] * (double)x[i];
    return (s[0] + s[1]) + (s[2] + s[3]);
}

static void quant_max_task(void *context, int c, int thread) {
    (void)thread;
    quant_job *job = context;
    q4_vgg *m = job->m;
    const float *w = m->params + m->tensors[m->weight_tensor[job->chunk_layer[c]]].offset;
    long b = job->chunk_begin[c], n = job->chunk_end[c] - b;
    job->chunk_max[c] = m->kernels.max_abs(w + b, n);
    job->chunk_squares[c] = m->scale_rms > 0.0f ? sum_squares(w + b, n) : 0.0;
}

static void quant_apply_task(void *context, int c, int thread) {
    (void)thread;
    quant_job *job = context;
    q4_vgg *m = job->m;
    int layer = job->chunk_layer[c];
    const float *w = m->params + m->tensors[m->weight_tensor[layer]].offset;
    float *q = m->qweights + m->qweight_offset[layer];
    long b = job->chunk_begin[c];
    m->kernels.quantize(q + b, w + b, job->chunk_end[c] - b, m->quant_scale[layer], (float)m->max_level);
}

void q4_vgg_quantize(q4_vgg *m) {
    if (!m->quantized) return;
    double t = q4_now();
    quant_job job;
    job.m = m;
    job.chunks = 0;
    for (int layer = 0; layer < Q4_NUM_QUANT_LAYERS; layer++) {
        long count = m->tensors[m->weight_tensor[layer]].count;
        for (long b = 0; b < count; b += QUANT_CHUNK) {
            job.chunk_layer[job.chunks] = layer;
            job.chunk_begin[job.chunks] = b;
            job.chunk_end[job.chunks] = b + QUANT_CHUNK < count ? b + QUANT_CHUNK : count;
            job.chunks++;
        }
    }
    q4_pool_run(m->compute.pool, job.chunks, quant_max_task, &job);
    float max_abs[Q4_NUM_QUANT_LAYERS] = {0};
    double squares[Q4_NUM_QUANT_LAYERS] = {0};
    for (int c = 0; c < job.chunks; c++) {
        float v = job.chunk_max[c];
        if (v > max_abs[job.chunk_layer[c]] || isnan(v)) max_abs[job.chunk_layer[c]] = v;
        squares[job.chunk_layer[c]] += job.chunk_squares[c];
    }
    if (m->scale_rms > 0.0f) /* the range: at most scale_rms times the tensor's RMS (a NaN stays) */
        for (int layer = 0; layer < Q4_NUM_QUANT_LAYERS; layer++) {
            float limit = (float)((double)m->scale_rms *
                                  sqrt(squares[layer] / (double)m->tensors[m->weight_tensor[layer]].count));
            if (limit < max_abs[layer]) max_abs[layer] = limit;
        }
    if (m->global_scale) { /* one scale: the largest weight of all layers */
        float all = 0.0f;
        for (int layer = 0; layer < Q4_NUM_QUANT_LAYERS; layer++)
            if (max_abs[layer] > all || isnan(max_abs[layer])) all = max_abs[layer];
        for (int layer = 0; layer < Q4_NUM_QUANT_LAYERS; layer++) max_abs[layer] = all;
    }
    for (int layer = 0; layer < Q4_NUM_QUANT_LAYERS; layer++)
        m->quant_scale[layer] = q4_quant_scale(max_abs[layer], m->max_level);
    q4_pool_run(m->compute.pool, job.chunks, quant_apply_task, &job);
    m->int_packed = 0;
    q4_phase_end(m, Q4_PHASE_QUANTIZE, &t);
}

/* appends to out (of size bytes) at *used, counting what does not fit (like snprintf) */
static void put(char *out, size_t size, size_t *used, const char *format, ...) {
    char line[256];
    va_list args;
    va_start(args, format);
    int k = vsnprintf(line, sizeof line, format, args);
    va_end(args);
    if (k <= 0) return;
    if (out && *used < size) snprintf(out + *used, size - *used, "%s", line);
    *used += (size_t)k;
}

/* The plan as text: a table of every conv layer's algorithm per pass, or (compact) one line
 * that groups neighbouring layers with the same plan. */
size_t q4_vgg_plan_text(const q4_vgg *m, int compact, char *out, size_t size) {
    static const char *const pass_names[Q4_PASSES] = {"training forward", "evaluation forward", "backward to input",
                                                      "backward to weights"};
    size_t used = 0;
#define PUT(...) put(out, size, &used, __VA_ARGS__)
    if (out && size) out[0] = '\0';
    if (!compact) {
        PUT("%-6s %-15s", "layer", "channels, side");
        for (int p = 0; p < Q4_PASSES; p++) PUT(p + 1 < Q4_PASSES ? " %-20s" : " %s", pass_names[p]);
        PUT("\n");
        for (int l = 0; l < Q4_NUM_CONV; l++) {
            const q4_conv_spec *c = &q4_conv_specs[l];
            char shape[32];
            snprintf(shape, sizeof shape, "%d->%d, %dx%d", c->in_channels, c->out_channels, c->size, c->size);
            PUT("conv%-2d %-15s", l + 1, shape);
            for (int p = 0; p < Q4_PASSES; p++)
                PUT(p + 1 < Q4_PASSES ? " %-20s" : " %s", q4_conv_algorithm_name(m->conv_plan[l][p]));
            PUT("\n");
        }
        PUT("fc1, fc2: the GEMM (%s)\n", m->kernels.gemm->name);
        return used;
    }
    for (int l = 0; l < Q4_NUM_CONV;) {
        int last = l;
        while (last + 1 < Q4_NUM_CONV && !memcmp(m->conv_plan[last + 1], m->conv_plan[l], sizeof m->conv_plan[l])) last++;
        const int *a = m->conv_plan[l];
        if (l) PUT("; ");
        if (last > l) PUT("conv%d-%d ", l + 1, last + 1);
        else PUT("conv%d ", l + 1);
        int rest_same = a[Q4_PASS_EVAL_FORWARD] == a[Q4_PASS_BACKWARD_INPUT] &&
                        a[Q4_PASS_BACKWARD_INPUT] == a[Q4_PASS_BACKWARD_WEIGHTS];
        if (rest_same && a[Q4_PASS_TRAIN_FORWARD] == a[Q4_PASS_EVAL_FORWARD]) PUT("%s", q4_conv_algorithm_name(a[0]));
        else if (rest_same)
            PUT("%s in the training forward pass, %s elsewhere", q4_conv_algorithm_name(a[Q4_PASS_TRAIN_FORWARD]),
                q4_conv_algorithm_name(a[Q4_PASS_EVAL_FORWARD]));
        else
            for (int p = 0; p < Q4_PASSES; p++)
                PUT("%s%s %s", p ? ", " : "", pass_names[p], q4_conv_algorithm_name(a[p]));
        l = last + 1;
    }
    if (m->integer || m->act_levels) { /* which integer kernels: the same sums either way */
        unsigned wino = m->int_winograd;
        PUT("; integer arithmetic (%s): %s", m->integer ? "every layer in evaluation" : "conv2-6", m->kernels.iconv->name);
        if (wino) PUT(", %s for conv%d-%d", m->kernels.iwinograd->name, __builtin_ctz(wino) + 1, 32 - __builtin_clz(wino));
    }
#undef PUT
    return used;
}

const float *q4_vgg_layer_weights(const q4_vgg *m, int layer) {
    if (!m->quantized) return m->params + m->tensors[m->weight_tensor[layer]].offset;
    return m->qweights + m->qweight_offset[layer];
}

/* ------------------------------------------------------------ forward */

void q4_vgg_forward(q4_vgg *m, int n, int train, uint64_t seed, long long step) {
    if (!train && (m->integer || m->act_levels)) {
        q4_vgg_forward_integer(m, n);
        return;
    }
    const q4_compute *cc = &m->compute;
    const float *in = m->input;
    double t = q4_now();
    int first_image = 0;
    if (train && !m->combiner) q4_vgg_plan_step(m, n, &first_image); /* alone: the whole step is here */
    else if (train) q4_micro_images(&m->step, &first_image);
    const q4_micro *micro = train ? &m->step : NULL;
    for (int l = 0, pool = 0; l < Q4_NUM_CONV; l++) {
        const q4_conv_spec *s = &q4_conv_specs[l];
        long plane = (long)n * s->size * s->size;
        if (l > 0 && m->act_levels) q4_vgg_conv_integer(m, l, in, n, m->act_levels); /* act_bits: integer.c */
        else
            q4_conv3x3_forward(cc, m->conv_out[l], in, q4_vgg_layer_weights(m, l), m->param.conv_bias[l], n,
                               s->in_channels, s->out_channels, s->size, s->size,
                               m->conv_plan[l][train ? Q4_PASS_TRAIN_FORWARD : Q4_PASS_EVAL_FORWARD]);
        q4_phase_end(m, Q4_PHASE_CONV_FORWARD + l, &t);
        q4_batchnorm_relu_forward(cc, m->work, m->conv_out[l], plane, (long)s->size * s->size, train, micro, &m->bn[l]);
        in = m->work;
        if (s->pool_after) {
            q4_maxpool2_forward(cc, m->pool_out[pool], m->work, s->out_channels, n, s->size);
            in = m->pool_out[pool++];
        }
        q4_phase_end(m, Q4_PHASE_BN_RELU_POOL + l, &t);
    }
    const q4_conv_spec *last = &q4_conv_specs[Q4_NUM_CONV - 1];
    q4_flatten(m->fc_in, in, last->out_channels, n, last->size * last->size / 4);
    q4_linear_forward(cc, m->fc1_out, m->fc_in, q4_vgg_layer_weights(m, Q4_LAYER_FC1), m->param.fc1_bias, n, Q4_FC_IN,
                      Q4_FC_HIDDEN);
    q4_batchnorm_relu_forward(cc, m->fc1_act, m->fc1_out, n, 1, train, micro, &m->bn[Q4_BN_FC1]);
    if (train && m->dropout > 0.0f) {
        long count = (long)Q4_FC_HIDDEN * n;
        if (m->dropout_override) memcpy(m->dropout_mask, m->dropout_override, (size_t)count * sizeof(float));
        else q4_dropout_mask_images(m->dropout_mask, Q4_FC_HIDDEN, n, first_image, m->step.images, m->dropout, seed, step);
        q4_dropout_apply(m->fc1_act, m->dropout_mask, count);
    }
    q4_linear_forward(cc, m->logits, m->fc1_act, q4_vgg_layer_weights(m, Q4_LAYER_FC2), m->param.fc2_bias, n, Q4_FC_HIDDEN,
                      m->num_classes);
    q4_phase_end(m, Q4_PHASE_FC, &t);
}

double q4_vgg_loss(q4_vgg *m, int n, const uint8_t *labels, float smoothing, int *correct, uint8_t *predictions) {
    double t = q4_now();
    double loss = m->combiner || (m->step.size && m->step.images == n)
                      ? q4_softmax_cross_entropy_micro(m->dlogits, m->logits, labels, m->num_classes, n, &m->step,
                                                       smoothing, m->exact, correct, predictions)
                      : q4_softmax_cross_entropy(m->dlogits, m->logits, labels, m->num_classes, n, 0, smoothing,
                                                 m->exact, correct, predictions);
    q4_phase_end(m, Q4_PHASE_LOSS, &t);
    return loss;
}

/* ------------------------------------------------------------ backward */

/* A conv layer's (conv >= 0) or a linear layer's weight and bias gradients of the n images
 * here: alone, per micro-batch added in order (q4_*_backward_weights_micro); with a combiner,
 * each held micro-batch's apart, then every process's added in micro-batch order. */
static void weight_gradients(q4_vgg *m, int layer, const float *dy, const float *x, int n) {
    const q4_compute *cc = &m->compute;
    const q4_tensor_info *w = &m->tensors[m->weight_tensor[layer]];
    float *dw = m->grads + w->offset, *dbias = dw + w->count;
    const q4_micro *mc = &m->step;
    int conv = layer < Q4_NUM_CONV, in = (int)(w->count / w->shape[0]), out = w->shape[0];
    const q4_conv_spec *s = conv ? &q4_conv_specs[layer] : NULL;
    int algorithm = conv ? m->conv_plan[layer][Q4_PASS_BACKWARD_WEIGHTS] : 0;
    if (!m->combiner) {
        if (conv)
            q4_conv3x3_backward_weights_micro(cc, dw, dbias, m->micro_grad, dy, x, n, mc->size, s->in_channels,
                                              s->out_channels, s->size, s->size, algorithm);
        else q4_linear_backward_weights_micro(cc, dw, dbias, m->micro_grad, dy, x, n, mc->size, in, out);
        return;
    }
    long count = layer_gradient_floats(m, layer);
    for (int j = 0; j < mc->held; j++) {
        int b0 = j * mc->size, images = n - b0 < mc->size ? n - b0 : mc->size;
        float *row = m->held_grads + (long)j * count;
        if (conv)
            q4_conv3x3_backward_weights_images(cc, row, row + w->count, dy, x, n, b0, images, s->in_channels,
                                               s->out_channels, s->size, s->size, algorithm);
        else q4_linear_backward_weights_images(cc, row, row + w->count, dy, x, n, b0, images, in, out);
    }
    m->combiner->sum(m->combiner->context, dw, m->held_grads, count, mc->total);
}

void q4_vgg_backward(q4_vgg *m, int n) {
    const q4_compute *cc = &m->compute;
    int k = m->num_classes;
    double t = q4_now();
    /* fc2, dropout, bn7 + ReLU (fc1_out becomes its gradient), fc1 */
    const q4_micro *micro = &m->step;
    weight_gradients(m, Q4_LAYER_FC2, m->dlogits, m->fc1_act, n);
    q4_linear_backward_input(cc, m->fc1_grad, m->dlogits, q4_vgg_layer_weights(m, Q4_LAYER_FC2), n, Q4_FC_HIDDEN, k);
    if (m->dropout > 0.0f) q4_dropout_apply(m->fc1_grad, m->dropout_mask, (long)Q4_FC_HIDDEN * n);
    q4_batchnorm_relu_backward(cc, m->fc1_out, m->fc1_grad, n, 1, micro, &m->bn[Q4_BN_FC1]);
    weight_gradients(m, Q4_LAYER_FC1, m->fc1_out, m->fc_in, n);
    q4_linear_backward_input(cc, m->fc_in_grad, m->fc1_out, q4_vgg_layer_weights(m, Q4_LAYER_FC1), n, Q4_FC_IN,
                             Q4_FC_HIDDEN);
    const q4_conv_spec *last = &q4_conv_specs[Q4_NUM_CONV - 1];
    q4_unflatten(m->pool_out[Q4_NUM_POOLS - 1], m->fc_in_grad, last->out_channels, n, last->size * last->size / 4);
    q4_phase_end(m, Q4_PHASE_FC, &t);

    /* conv blocks, last first; `work` holds recomputed activations, then gradients; a block's
     * pooled output buffer receives the gradient of that output */
    for (int block = Q4_NUM_POOLS - 1; block >= 0; block--) {
        const float *dpool = m->pool_out[block];
        int l1 = 2 * block, l2 = l1 + 1;
        const q4_conv_spec *s1 = &q4_conv_specs[l1], *s2 = &q4_conv_specs[l2];
        int size = s2->size;
        long plane = (long)n * size * size, per_image = (long)size * size;
        /* max pool: work = relu(bn(y2)), then the routed gradient in place; y2 -> dy2 */
        q4_batchnorm_relu_reapply(cc, m->work, m->conv_out[l2], plane, &m->bn[l2]);
        q4_maxpool2_backward(cc, m->work, dpool, s2->out_channels, n, size);
        q4_batchnorm_relu_backward(cc, m->conv_out[l2], m->work, plane, per_image, micro, &m->bn[l2]);
        q4_phase_end(m, Q4_PHASE_BN_RELU_POOL + l2, &t);
        /* conv l2's input relu(bn(y1)); conv1's output y1 is recomputed from the images */
        if (block == 0) {
            q4_conv3x3_forward(cc, m->work, m->input, q4_vgg_layer_weights(m, 0), m->param.conv_bias[0], n, s1->in_channels,
                               s1->out_channels, size, size, m->conv_plan[0][Q4_PASS_TRAIN_FORWARD]);
            q4_phase_end(m, Q4_PHASE_RECOMPUTE_CONV1, &t);
        }
        q4_batchnorm_relu_reapply(cc, m->work, block == 0 ? m->work : m->conv_out[l1], plane, &m->bn[l1]);
        /* integer activations (act_bits): the weights met their quantized values (straight through) */
        if (m->act_levels) q4_ifakequant(cc, m->work, n, s2->in_channels, size, size, m->act_levels);
        q4_phase_end(m, Q4_PHASE_BN_RELU_POOL + l1, &t);
        weight_gradients(m, l2, m->conv_out[l2], m->work, n);
        q4_phase_end(m, Q4_PHASE_CONV_BACKWARD_WEIGHTS + l2, &t);
        q4_conv3x3_backward_input(cc, m->work, m->conv_out[l2], q4_vgg_layer_weights(m, l2), m->flipped, n,
                                  s2->in_channels, s2->out_channels, size, size, m->conv_plan[l2][Q4_PASS_BACKWARD_INPUT]);
        q4_phase_end(m, Q4_PHASE_CONV_BACKWARD_INPUT + l2, &t);
        if (block == 0) { /* conv1's output shares conv2's storage, free again now */
            q4_conv3x3_forward(cc, m->conv_out[0], m->input, q4_vgg_layer_weights(m, 0), m->param.conv_bias[0], n,
                               s1->in_channels, s1->out_channels, size, size, m->conv_plan[0][Q4_PASS_TRAIN_FORWARD]);
            q4_phase_end(m, Q4_PHASE_RECOMPUTE_CONV1, &t);
        }
        q4_batchnorm_relu_backward(cc, m->conv_out[l1], m->work, plane, per_image, micro, &m->bn[l1]);
        q4_phase_end(m, Q4_PHASE_BN_RELU_POOL + l1, &t);
        const float *block_in = m->input;
        if (block > 0) { /* pool(relu(bn(y))) of the previous block again, where dP will go */
            const q4_conv_spec *prev = &q4_conv_specs[l1 - 1];
            q4_batchnorm_relu_maxpool(cc, m->pool_out[block - 1], m->conv_out[l1 - 1], n, prev->size, &m->bn[l1 - 1]);
            if (m->act_levels) q4_ifakequant(cc, m->pool_out[block - 1], n, s1->in_channels, size, size, m->act_levels);
            block_in = m->pool_out[block - 1];
            q4_phase_end(m, Q4_PHASE_BN_RELU_POOL + l1 - 1, &t);
        }
        weight_gradients(m, l1, m->conv_out[l1], block_in, n);
        q4_phase_end(m, Q4_PHASE_CONV_BACKWARD_WEIGHTS + l1, &t);
        if (block > 0) {
            q4_conv3x3_backward_input(cc, m->pool_out[block - 1], m->conv_out[l1], q4_vgg_layer_weights(m, l1), m->flipped, n,
                                      s1->in_channels, s1->out_channels, size, size, m->conv_plan[l1][Q4_PASS_BACKWARD_INPUT]);
            q4_phase_end(m, Q4_PHASE_CONV_BACKWARD_INPUT + l1, &t);
        }
    }
}
