/* integer.c - conv and linear layers in integer arithmetic (issue 26). A layer quantizes its
 * input per image (q4_iquantize), multiplies it by the weight levels in int32 (q4_iconv3x3,
 * q4_ilinear: the ISA's microkernel) and rescales once (level scale x activation scale, plus the
 * bias) as each tile is done; BatchNorm, ReLU and max pooling stay in floats. Which layers, at how
 * many levels, is the model's activation plan (act_levels), set once by q4_vgg_set_integer:
 *  - integer evaluation (setting integer_eval): every conv and linear layer of the evaluation
 *    forward pass, 8-bit activations (255 levels after a ReLU; conv1's input, the normalized
 *    images, is signed: 127 levels stored with zero point 128, whose share of each sum,
 *    128 x the channel's levels in int_shift, the rescaling takes off);
 *  - integer activations in training (setting act_bits < 32): conv2-6's inputs at
 *    2^act_bits - 1 levels in the training forward pass and in evaluation; the backward pass
 *    stays in floats, straight through the activation quantizer (q4_vgg_backward computes the
 *    weight gradients from the quantized values, q4_ifakequant).
 * Where the ISA has integer Winograd F(2x2) (WebAssembly, the scalar reference), conv2-6 take
 * it: the same sums as the direct convolution, with 2.25x fewer multiplies (iconv.c).
 * The weights are packed per layer when first used after each quantization. No intrinsics here. */
#include <string.h>

#include "../util/util.h"
#include "vgg.h"

/* images per chunk of the integer evaluation (measured: q4bench --integer, 2 to 16 alike) */
#define Q4_INTEGER_CHUNK 8
_Static_assert(3 * Q4_INTEGER_CHUNK * Q4_IMAGE_SIDE * Q4_IMAGE_SIDE <= 256 * 256 * 9, "a chunk's images fit in `flipped`");

/* channels of a layer's input as the kernels read them: a multiple of 4 (conv1's 3 become 4) */
static int padded_channels(int channels) { return (channels + 3) & ~3; }

/* the largest weight level: 7 for 4-bit weights */
static int max_level(const q4_vgg *m) { return (1 << (m->weight_bits - 1)) - 1; }

/* the per-image bytes of the largest padded input, and of the linear layers' inputs */
static size_t act_bytes(const q4_vgg *m) {
    size_t most = 0;
    for (int l = 0; l < Q4_NUM_CONV; l++) {
        const q4_conv_spec *s = &q4_conv_specs[l];
        size_t b = (size_t)(s->size + 2) * (s->size + 2) * padded_channels(s->in_channels);
        if (b > most) most = b;
    }
    if (most < Q4_FC_IN) most = Q4_FC_IN;
    /* the linear layers read whole tiles of images: room for one more tile */
    return most * (size_t)m->batch_capacity + (size_t)m->kernels.iconv->mr * Q4_FC_IN;
}

q4_status q4_vgg_set_integer(q4_vgg *m, int integer_eval, int act_bits, q4_error *err) {
    q4_free_aligned(m->int_act);
    q4_free_aligned(m->int_weights);
    m->int_act = NULL;
    m->int_weights = NULL;
    m->int_act_bytes = 0;
    m->integer = m->act_levels = 0;
    m->act_bits = Q4_FP32_BITS;
    m->int_packed = m->int_winograd = 0;
    memset(m->int_levels, 0, sizeof m->int_levels);
    int act = act_bits > 0 && act_bits < Q4_FP32_BITS;
    if (!integer_eval && !act) return Q4_OK;
    if (!m->quantized || m->weight_bits > 7)
        return q4_fail(err, Q4_ERR_ARGUMENT,
                       "integer arithmetic needs 2- to 7-bit weights (this model has %s): their levels times the "
                       "activations are what it multiplies",
                       m->quantized ? "8-bit" : "FP32 weights");
    if (act && act_bits > 8) return q4_fail(err, Q4_ERR_ARGUMENT, "activations of %d bits do not fit in a byte", act_bits);
    if (q4_conv_specs[0].out_channels > (int)(sizeof m->int_shift / sizeof m->int_shift[0]))
        return q4_fail(err, Q4_ERR_STATE, "conv1 has more output channels than room for their sums");
    m->act_bits = act ? act_bits : Q4_FP32_BITS;
    m->act_levels = act ? (1 << act_bits) - 1 : 0;
    for (int layer = 0; layer < Q4_NUM_QUANT_LAYERS; layer++) {
        int inner = layer >= 1 && layer < Q4_NUM_CONV; /* conv2-6 */
        m->int_levels[layer] = inner && act ? m->act_levels : integer_eval ? (layer == 0 ? 127 : 255) : 0;
    }
    const q4_iconv_variant *v = m->kernels.iconv;
    const q4_iwinograd_variant *wv = m->kernels.iwinograd;
    size_t weights = 0;
    for (int layer = 0; layer < Q4_NUM_QUANT_LAYERS; layer++) {
        const q4_tensor_info *w = &m->tensors[m->weight_tensor[layer]];
        int taps = w->ndim == 4 ? 9 : 1, ci = (int)(w->count / w->shape[0] / taps), k = padded_channels(ci);
        /* integer Winograd where the ISA has it: the layers on unsigned inputs (conv2-6) */
        int wino = wv && layer >= 1 && layer < Q4_NUM_CONV && m->int_levels[layer] && q4_conv_specs[layer].size % 2 == 0 &&
                   q4_iwinograd_fits(k, max_level(m)) &&
                   q4_iwinograd_scratch_bytes(wv, k) <= m->compute.scratch_floats * sizeof(float);
        if (wino) m->int_winograd |= 1u << layer;
        m->int_weight_offset[layer] = weights;
        weights += ((wino ? q4_iwinograd_packed_bytes(wv, k, w->shape[0]) : q4_iconv_packed_bytes(v, taps, k, w->shape[0])) +
                    63) & ~(size_t)63;
    }
    size_t bytes = (act_bytes(m) + 63) & ~(size_t)63, scales = (size_t)m->batch_capacity * sizeof(float);
    if (!(m->int_act = q4_alloc_aligned(bytes + scales)) || !(m->int_weights = q4_alloc_aligned(weights))) {
        q4_free_aligned(m->int_act);
        m->int_act = NULL;
        return q4_fail(err, Q4_ERR_NOMEM, "out of memory allocating room for integer arithmetic (%.1f MB)",
                       (bytes + scales + weights) / 1e6);
    }
    m->int_act_bytes = bytes + scales + weights;
    m->int_scale = (float *)(m->int_act + bytes);
    m->integer = integer_eval;
    return Q4_OK;
}

/* a layer's levels, packed for the kernels, from the quantized weights (once per quantization) */
static const void *packed_weights(q4_vgg *m, int layer) {
    char *out = (char *)m->int_weights + m->int_weight_offset[layer];
    if (m->int_packed & (1u << layer)) return out;
    const q4_tensor_info *w = &m->tensors[m->weight_tensor[layer]];
    int taps = w->ndim == 4 ? 9 : 1, ci = (int)(w->count / w->shape[0] / taps);
    if (m->int_winograd & (1u << layer))
        q4_iwinograd_pack(m->kernels.iwinograd, (int16_t *)(void *)out, q4_vgg_layer_weights(m, layer), m->quant_scale[layer],
                          ci, padded_channels(ci), w->shape[0]);
    else
        q4_iconv_pack(m->kernels.iconv, out, layer == 0 ? m->int_shift : NULL, q4_vgg_layer_weights(m, layer),
                      m->quant_scale[layer], taps, ci, padded_channels(ci), w->shape[0]);
    if (layer == 0)
        for (int o = 0; o < q4_conv_specs[0].out_channels; o++) m->int_shift[o] *= 128; /* conv1's zero point */
    m->int_packed |= 1u << layer;
    return out;
}

void q4_vgg_conv_integer(q4_vgg *m, int l, const float *in, int n, int levels) {
    const q4_compute *cc = &m->compute;
    const q4_conv_spec *s = &q4_conv_specs[l];
    int k = padded_channels(s->in_channels), is_signed = l == 0;
    q4_iconv_rescale r = {m->int_scale, m->quant_scale[l], is_signed ? m->int_shift : NULL, m->param.conv_bias[l]};
    const void *w = packed_weights(m, l);
    q4_iquantize(cc, m->int_act, m->int_scale, in, n, s->in_channels, k, s->size, s->size, 1, levels, is_signed ? 128 : 0);
    if (m->int_winograd & (1u << l)) { /* the same sums; set_integer checked that it takes the shape */
        q4_iconv3x3_winograd(cc, m->conv_out[l], &r, m->int_act, w, n, k, s->out_channels, s->size, s->size, max_level(m));
        return;
    }
    q4_iconv3x3(cc, m->conv_out[l], &r, m->int_act, w, n, k, s->out_channels, s->size, s->size);
}

/* A linear layer: x [in][n] floats (non-negative) -> y [out][n], in integer arithmetic at
 * int_levels, or in floats */
static void linear(q4_vgg *m, int layer, float *y, const float *x, const float *bias, int n, int in, int out) {
    const q4_compute *cc = &m->compute;
    if (!m->int_levels[layer]) {
        q4_linear_forward(cc, y, x, q4_vgg_layer_weights(m, layer), bias, n, in, out);
        return;
    }
    q4_iconv_rescale r = {m->int_scale, m->quant_scale[layer], NULL, bias};
    const void *w = packed_weights(m, layer);
    q4_iquantize(cc, m->int_act, m->int_scale, x, n, in, in, 1, 1, 0, m->int_levels[layer], 0);
    q4_ilinear(cc, y, &r, m->int_act, w, n, in, out);
}

/* The evaluation layers for n images whose input is at `in` ([3][n][32][32]); logits into
 * `logits` [classes][n]. */
static void forward_chunk(q4_vgg *m, const float *in, float *logits, int n, double *t) {
    const q4_compute *cc = &m->compute;
    for (int l = 0, pool = 0; l < Q4_NUM_CONV; l++) {
        const q4_conv_spec *s = &q4_conv_specs[l];
        long plane = (long)s->size * s->size;
        if (m->int_levels[l]) q4_vgg_conv_integer(m, l, in, n, m->int_levels[l]);
        else
            q4_conv3x3_forward(cc, m->conv_out[l], in, q4_vgg_layer_weights(m, l), m->param.conv_bias[l], n,
                               s->in_channels, s->out_channels, s->size, s->size, m->conv_plan[l][Q4_PASS_EVAL_FORWARD]);
        q4_phase_end(m, Q4_PHASE_CONV_FORWARD + l, t);
        q4_batchnorm_relu_forward(cc, m->work, m->conv_out[l], plane * n, plane, 0, NULL, &m->bn[l]);
        in = m->work;
        if (s->pool_after) {
            q4_maxpool2_forward(cc, m->pool_out[pool], m->work, s->out_channels, n, s->size);
            in = m->pool_out[pool++];
        }
        q4_phase_end(m, Q4_PHASE_BN_RELU_POOL + l, t);
    }
    const q4_conv_spec *last = &q4_conv_specs[Q4_NUM_CONV - 1];
    q4_flatten(m->fc_in, in, last->out_channels, n, last->size * last->size / 4);
    linear(m, Q4_LAYER_FC1, m->fc1_out, m->fc_in, m->param.fc1_bias, n, Q4_FC_IN, Q4_FC_HIDDEN);
    q4_batchnorm_relu_forward(cc, m->fc1_act, m->fc1_out, n, 1, 0, NULL, &m->bn[Q4_BN_FC1]);
    linear(m, Q4_LAYER_FC2, logits, m->fc1_act, m->param.fc2_bias, n, Q4_FC_HIDDEN, m->num_classes);
    q4_phase_end(m, Q4_PHASE_FC, t);
}

void q4_vgg_forward_integer(q4_vgg *m, int n) {
    double t = q4_now();
    if (n <= Q4_INTEGER_CHUNK) {
        forward_chunk(m, m->input, m->logits, n, &t);
        return;
    }
    /* a few images at a time through every layer: their activations stay in the cache. Each
     * image's arithmetic is the same whatever its company (scales are per image; BatchNorm
     * uses its running statistics). The chunk's images go to `flipped` (backward only), its
     * logits to fc1_grad (backward only), then to their columns of the logits. */
    long pixels = (long)Q4_IMAGE_SIDE * Q4_IMAGE_SIDE;
    for (int b0 = 0; b0 < n; b0 += Q4_INTEGER_CHUNK) {
        int count = n - b0 < Q4_INTEGER_CHUNK ? n - b0 : Q4_INTEGER_CHUNK;
        for (int c = 0; c < 3; c++)
            memcpy(m->flipped + (long)c * count * pixels, m->input + ((long)c * n + b0) * pixels,
                   (size_t)count * pixels * sizeof(float));
        forward_chunk(m, m->flipped, m->fc1_grad, count, &t);
        for (int o = 0; o < m->num_classes; o++)
            memcpy(m->logits + (long)o * n + b0, m->fc1_grad + (long)o * count, (size_t)count * sizeof(float));
    }
}
