/* test_golden.c - the engine against PyTorch 1.13 (scripts/make_golden.py on
 * scripts/torch_ref.py): identical weights, BN state, inputs and dropout masks;
 * logits, loss, every gradient, the weights after two full optimizer steps (clip, AdamW,
 * tanh) and the BN running statistics must match, for the 4-bit model and the FP32 switch.
 * Tolerances (measured: see the comments at each check) allow for summation order only. */
#include "../core/model/vgg.h"
#include "../core/optim/optim.h"
#include "golden_values.h"
#include "test_util.h"

#define BATCH 16
#define CLASSES 10

typedef struct tensor_set {
    uint32_t count, samples;
    double norm;
    float *values;
} tensor_set;

typedef struct reader {
    FILE *file;
    const char *path;
    int failed;
} reader;

static void read_bytes(reader *r, void *out, size_t n) {
    if (!r->failed && fread(out, 1, n, r->file) != n) {
        fprintf(stderr, "FAIL %s: truncated fixture\n", r->path);
        r->failed = 1;
        memset(out, 0, n);
    }
}

static tensor_set read_set(reader *r) {
    tensor_set s;
    uint8_t head[16];
    read_bytes(r, head, 16);
    memcpy(&s.count, head, 4);
    memcpy(&s.samples, head + 4, 4);
    memcpy(&s.norm, head + 8, 8);
    if (s.samples > 1u << 20) s.samples = 0, r->failed = 1;
    s.values = malloc((s.samples ? s.samples : 1) * sizeof(float));
    read_bytes(r, s.values, s.samples * sizeof(float));
    return s;
}

/* compares a tensor with its sampled golden: relative L2 error of the samples and of the norm */
static void compare_set(const char *what, const float *ours, long count, tensor_set *g, double tolerance,
                        double norm_floor, double *worst) {
    CHECK((long)g->count == count, "%s: fixture has %u values, engine %ld", what, g->count, count);
    if ((long)g->count != count) return;
    long stride = g->samples < g->count ? (long)(g->count / g->samples) : 1;
    double diff2 = 0, ref2 = 0, mine2 = 0;
    for (uint32_t j = 0; j < g->samples; j++) {
        double d = (double)ours[j * stride] - g->values[j];
        diff2 += d * d;
        ref2 += (double)g->values[j] * g->values[j];
    }
    for (long i = 0; i < count; i++) mine2 += (double)ours[i] * ours[i];
    double rel = sqrt(diff2) / fmax(sqrt(ref2), norm_floor);
    if (getenv("GOLDEN_DUMP") && strstr(what, getenv("GOLDEN_DUMP")))
        for (uint32_t j = 0; j < g->samples; j++)
            if (fabs((double)ours[j * stride] - g->values[j]) > 1e-4 * fabs(g->values[j]) + 1e-9)
                printf("    [%ld] ours %.9g torch %.9g\n", (long)j * stride, ours[j * stride], g->values[j]);
    double norm_rel = fabs(sqrt(mine2) - g->norm) / fmax(g->norm, norm_floor);
    if (rel > *worst) *worst = rel;
    if (getenv("GOLDEN_VERBOSE")) printf("  %-40s rel %.3g norm %.3g\n", what, rel, norm_rel);
    CHECK(rel <= tolerance && norm_rel <= tolerance, "%s: relative error %.3g, norm relative error %.3g (> %.3g)", what,
          rel, norm_rel, tolerance);
}

/* Tolerances: relative L2 errors (logits: |diff| <= tol * max(1, |ref|)), per fixture and step,
 * about 3x the worst measured over the scalar, AVX2 and AVX-512 kernels at 1 and 2 threads and
 * the WebAssembly build (engine 0.10, `GOLDEN_VERBOSE=1`; the worst value is in brackets, its
 * log in results/logs/golden-tolerances.txt).
 * Step 1 starts from identical state, so only summation order differs.
 * Step 2 starts from weights that agree to ~1e-5; decisions on values within rounding of a
 * boundary (ReLU at z ~ 4e-6, a max-pool near-tie, a quantizer level at a .5 tie) can then
 * go the other way in one place and perturb everything below it: in the FP32 fixture one
 * ReLU decision in bn6 moves bn6.bias's gradient by 2.4e-2 with the scalar kernels (1.1e-2
 * with AVX2 and AVX-512), which is why its step-2 gradient tolerance is the loosest here. */
typedef struct tolerances {
    double logits, loss, gradient, weights, bn_mean, bn_var;
} tolerances;
static const tolerances step_tolerances[2][2] = {
    { /* FP32 weights */
        /* logits [1.1e-5], loss [2.7e-7], gradients [1.4e-5], weights [1.1e-5], BN mean [4.2e-7], var [9e-8] */
        {3e-5, 1e-6, 5e-5, 3e-5, 2e-6, 3e-7},
        /* logits [9e-5], loss [4.6e-6], gradients [2.4e-2], weights [1.9e-4], BN mean [7.7e-6], var [6.5e-7] */
        {3e-4, 1.5e-5, 5e-2, 6e-4, 3e-5, 3e-6},
    },
    { /* 4-bit weights */
        /* logits [1e-5], loss [4.4e-7], gradients [1.7e-5], weights [9.3e-6], BN mean [4.5e-7], var [9.5e-8] */
        {3e-5, 1.5e-6, 5e-5, 3e-5, 2e-6, 3e-7},
        /* logits [2.1e-3], loss [5.4e-5], gradients [3.4e-3], weights [4e-5], BN mean [1.7e-4], var [1.3e-5] */
        {6e-3, 1.5e-4, 1e-2, 1.5e-4, 5e-4, 4e-5},
    },
};

/* The conv and fc1 biases feed BatchNorm, which cancels them exactly: their true gradient is 0
 * and both engines return rounding noise. Checked as noise: far below the gradient of the same
 * layer's BN shift (beta), which sums the same per-position gradients before BN's centring.
 * Measured ratio (norm of the noise / norm of beta's gradient): at most 5.9e-6 for ours and
 * 7.2e-6 for PyTorch's over both fixtures, steps and every ISA; both are held to this bound. */
#define NOISE_RATIO_LIMIT 3e-5

/* conv and fc1 biases feed BatchNorm, which cancels them exactly */
static int bn_cancelled(const q4_tensor_info *t) { return t->role == Q4_ROLE_BIAS_BEFORE_BN; }

static void set_parameters(q4_vgg *m) {
    for (int t = 0; t < Q4_NUM_TENSORS; t++) {
        const q4_tensor_info *info = &m->tensors[t];
        float *p = m->params + info->offset;
        for (long i = 0; i < info->count; i++) {
            double u = golden_unit((uint32_t)t, (uint32_t)i), v;
            if (info->ndim >= 2) {
                long fan_in = info->count / info->shape[0];
                double std = info->ndim == 4 ? sqrt(2.0 / (double)fan_in) : sqrt(1.0 / (double)fan_in);
                v = std * u;
            } else if (info->role == Q4_ROLE_BN_GAMMA) {
                v = 1.0 + 0.2 * u;
            } else if (info->role == Q4_ROLE_BN_BETA) {
                v = 0.1 * u;
            } else {
                v = 0.05 * u;
            }
            p[i] = (float)v;
        }
    }
    for (long i = 0; i < m->bn_total; i++) {
        m->running_mean[i] = (float)(0.1 * golden_unit(300, (uint32_t)i));
        m->running_var[i] = (float)(1.0 + 0.25 * golden_unit(301, (uint32_t)i));
    }
}

static void run(const char *path, int quantized, int threads) {
    reader r = {fopen(path, "rb"), path, 0};
    CHECK(r.file != NULL, "cannot open %s (run from the repository root)", path);
    if (!r.file) return;
    char magic[8];
    uint32_t head[3];
    read_bytes(&r, magic, 8);
    read_bytes(&r, head, 12);
    CHECK(memcmp(magic, "Q4GOLD01", 8) == 0 && head[0] == BATCH && head[1] == CLASSES && (int)head[2] == quantized,
          "%s: unexpected fixture header", path);

    q4_error err = {0};
    q4_vgg m;
    if (q4_vgg_create(&m, CLASSES, quantized ? 4 : Q4_FP32_BITS, BATCH, 0, threads, 0.5f, 0, &err)) {
        CHECK(0, "create: %s", err.message);
        fclose(r.file);
        return;
    }
    set_parameters(&m);
    float *moments = calloc(2 * (size_t)m.param_count, sizeof(float));
    float *mask = malloc(512 * BATCH * sizeof(float));
    q4_config config;
    q4_config_default(&config);
    config.weight_bits = quantized ? 4 : Q4_FP32_BITS;
    uint8_t labels[BATCH];
    double worst_grad = 0, worst_param = 0, worst_stat = 0, worst_noise = 0;

    for (int step = 0; step < 2; step++) {
        for (int b = 0; b < BATCH; b++)
            for (int c = 0; c < 3; c++)
                for (int p = 0; p < 1024; p++)
                    m.input[((long)c * BATCH + b) * 1024 + p] =
                        (float)golden_unit(100 + step, (uint32_t)((b * 3 + c) * 1024 + p));
        for (int b = 0; b < BATCH; b++) labels[b] = (uint8_t)((b * (step == 0 ? 7 : 3) + (step == 0 ? 3 : 1)) % CLASSES);
        for (int b = 0; b < BATCH; b++)
            for (int f = 0; f < 512; f++)
                mask[f * BATCH + b] = (golden_hash(200 + step, (uint32_t)(b * 512 + f)) & 1) ? 2.0f : 0.0f;
        m.dropout_override = mask;

        q4_vgg_quantize(&m);
        q4_vgg_forward(&m, BATCH, 1, 0, step);
        double loss = q4_vgg_loss(&m, BATCH, labels, 0.0f, NULL, NULL);
        q4_vgg_backward(&m, BATCH);

        float golden_logits[BATCH * CLASSES], ours[BATCH * CLASSES];
        double golden_loss;
        read_bytes(&r, golden_logits, sizeof golden_logits);
        read_bytes(&r, &golden_loss, 8);
        for (int b = 0; b < BATCH; b++)
            for (int k = 0; k < CLASSES; k++) ours[b * CLASSES + k] = m.logits[k * BATCH + b];
        const tolerances *tol = &step_tolerances[quantized][step];
        char what[96];
        const char *mode = quantized ? "4-bit" : "fp32";
        snprintf(what, sizeof what, "%s step %d logits", mode, step + 1);
        compare_floats(what, ours, golden_logits, BATCH * CLASSES, tol->logits, tol->logits);
        if (getenv("GOLDEN_VERBOSE")) {
            double worst_logit = 0;
            for (int i = 0; i < BATCH * CLASSES; i++)
                worst_logit = fmax(worst_logit, fabs((double)ours[i] - golden_logits[i]) / fmax(1.0, fabs(golden_logits[i])));
            printf("  %-40s rel %.3g\n  %s step %d loss%29s rel %.3g\n", what, worst_logit, mode, step + 1, "",
                   fabs(loss - golden_loss) / fabs(golden_loss));
        }
        CHECK(fabs(loss - golden_loss) <= tol->loss * fabs(golden_loss), "%s step %d loss %.9f, PyTorch %.9f", mode,
              step + 1, loss, golden_loss);

        tensor_set grad_sets[Q4_NUM_TENSORS];
        for (int t = 0; t < Q4_NUM_TENSORS; t++) grad_sets[t] = read_set(&r);
        for (int t = 0; t < Q4_NUM_TENSORS; t++) {
            const q4_tensor_info *info = &m.tensors[t];
            snprintf(what, sizeof what, "%s step %d grad %s", mode, step + 1, info->name);
            if (bn_cancelled(info)) {
                /* the BN shift (beta) of the same layer is two tensors on: bias, gamma, beta */
                const q4_tensor_info *beta = &m.tensors[t + 2];
                CHECK(beta->role == Q4_ROLE_BN_BETA && beta->count == info->count, "%s: no BN shift after it", what);
                double ours2 = 0, beta2 = 0;
                for (long i = 0; i < info->count; i++) ours2 += (double)m.grads[info->offset + i] * m.grads[info->offset + i];
                for (long i = 0; i < beta->count; i++) beta2 += (double)m.grads[beta->offset + i] * m.grads[beta->offset + i];
                double ratio = sqrt(ours2) / sqrt(beta2), torch_ratio = grad_sets[t].norm / grad_sets[t + 2].norm;
                if (ratio > worst_noise) worst_noise = ratio;
                if (torch_ratio > worst_noise) worst_noise = torch_ratio;
                if (getenv("GOLDEN_VERBOSE")) printf("  %-40s noise/beta %.3g (PyTorch %.3g)\n", what, ratio, torch_ratio);
                CHECK(ratio <= NOISE_RATIO_LIMIT && grad_sets[t].count == (uint32_t)info->count,
                      "%s: |grad| / |grad of %s| = %.3g, not rounding noise (> %g)", what, beta->name, ratio,
                      NOISE_RATIO_LIMIT);
                CHECK(torch_ratio <= NOISE_RATIO_LIMIT, "%s: PyTorch's |grad| / |grad of %s| = %.3g (> %g)", what,
                      beta->name, torch_ratio, NOISE_RATIO_LIMIT);
            } else {
                compare_set(what, m.grads + info->offset, info->count, &grad_sets[t], tol->gradient, 1e-12, &worst_grad);
            }
        }
        for (int t = 0; t < Q4_NUM_TENSORS; t++) free(grad_sets[t].values);
        double lr = q4_cosine_lr(1e-3, 0, 100);
        q4_optimizer_step(&m, moments, moments + m.param_count, step + 1, lr, &config, NULL);
        for (int t = 0; t < Q4_NUM_TENSORS; t++) {
            tensor_set g = read_set(&r);
            const q4_tensor_info *info = &m.tensors[t];
            snprintf(what, sizeof what, "%s step %d weights %s", mode, step + 1, info->name);
            if (bn_cancelled(info)) {
                /* noise gradients make Adam move these by up to lr per step in either engine */
                const float *mine = m.params + info->offset;
                for (uint32_t j = 0; j < g.samples && g.samples == g.count; j++)
                    CHECK(fabs((double)mine[j] - g.values[j]) <= 2.0 * lr * (step + 1), "%s[%u]: %.9g vs %.9g", what, j,
                          mine[j], g.values[j]);
                /* keep the engines on the same values so step 2 compares like with like */
                if (g.samples == g.count) memcpy(m.params + info->offset, g.values, g.count * sizeof(float));
            } else {
                compare_set(what, m.params + info->offset, info->count, &g, tol->weights, 1e-12, &worst_param);
            }
            free(g.values);
        }
        for (int bn = 0; bn < Q4_NUM_BN; bn++)
            for (int k = 0; k < 2; k++) {
                tensor_set g = read_set(&r);
                const float *ours_stat = (k ? m.running_var : m.running_mean) + m.bn_offset[bn];
                snprintf(what, sizeof what, "%s step %d bn%d running %s", mode, step + 1, bn + 1, k ? "var" : "mean");
                /* the running mean includes the BN-cancelled conv bias, whose noise differs */
                compare_set(what, ours_stat, m.bn_channels[bn], &g, k ? tol->bn_var : tol->bn_mean, 1e-12, &worst_stat);
                free(g.values);
            }
    }
    CHECK(!r.failed, "%s: fixture read failed", path);
    printf("%s (%d threads): worst relative error: gradients %.2g, weights after a step %.2g, BN statistics %.2g "
           "(BN-cancelled bias gradients: noise / BN shift gradient %.2g)\n", path, threads, worst_grad, worst_param, worst_stat, worst_noise);
    free(moments);
    free(mask);
    q4_vgg_destroy(&m);
    fclose(r.file);
}

int main(void) {
    run("tests/fixtures/golden_q4.bin", 1, getenv("GOLDEN_THREADS") ? atoi(getenv("GOLDEN_THREADS")) : 2);
    run("tests/fixtures/golden_fp32.bin", 0, 1);
    return test_finish("test_golden");
}
