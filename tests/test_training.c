/* test_training.c - the training settings beside the paper's, each against its definition:
 * the learning-rate schedules (the paper's per-epoch cosine, the one-cycle), SGD with and
 * without Nesterov momentum against PyTorch's update written out, gradient clipping and tanh
 * clipping switched off, the moving average of the weights (its recurrence, what evaluation
 * and export use, resume), cutout and alternating flips in a batch, and test-time views. */
#include <pthread.h>

#include "../core/data/batch.h"
#include "../core/optim/optim.h"
#include "../core/session/session.h"
#include "../core/util/util.h"
#include "test_util.h"

static void test_schedules(void) {
    q4_config c;
    q4_config_default(&c);
    /* the paper's: per epoch, constant within it, continued past T_max */
    CHECK(q4_learning_rate(&c, 0, 0, 391) == 1e-3 && q4_learning_rate(&c, 0, 390, 391) == 1e-3, "cosine epoch 0");
    CHECK(fabs(q4_learning_rate(&c, 50, 7, 391) - 0.5e-3) < 1e-15, "cosine at T/2: %g", q4_learning_rate(&c, 50, 7, 391));
    CHECK(q4_learning_rate(&c, 100, 0, 391) < 1e-18, "cosine at T_max: %g", q4_learning_rate(&c, 100, 0, 391));
    CHECK(fabs(q4_learning_rate(&c, 150, 0, 391) - 0.5e-3) < 1e-15, "cosine continued past T_max");
    /* one-cycle: 10 epochs of 100 steps, warm-up 0.2: 200 steps up, 800 down */
    c.schedule = Q4_SCHEDULE_ONECYCLE;
    c.epochs = 10;
    c.warmup = 0.2;
    c.learning_rate = 0.1;
    CHECK(q4_learning_rate(&c, 0, 0, 100) == 0.1 * 1 / 200, "one-cycle first step: %g", q4_learning_rate(&c, 0, 0, 100));
    CHECK(q4_learning_rate(&c, 1, 99, 100) == 0.1, "one-cycle peak at step 200: %g", q4_learning_rate(&c, 1, 99, 100));
    CHECK(q4_learning_rate(&c, 2, 0, 100) == 0.1, "one-cycle first step down: %g", q4_learning_rate(&c, 2, 0, 100));
    CHECK(fabs(q4_learning_rate(&c, 6, 0, 100) - 0.05) < 1e-15, "one-cycle half way down: %g", q4_learning_rate(&c, 6, 0, 100));
    CHECK(q4_learning_rate(&c, 9, 99, 100) == 0.1 / 800, "one-cycle last step: %g", q4_learning_rate(&c, 9, 99, 100));
    CHECK(q4_learning_rate(&c, 10, 0, 100) == 0.0, "one-cycle past the plan: %g", q4_learning_rate(&c, 10, 0, 100));
    c.warmup = 0;
    CHECK(q4_learning_rate(&c, 0, 0, 100) == 0.1, "one-cycle without warm-up starts at the peak");
}

/* PyTorch 1.13's SGD step (torch/optim/sgd.py, dampening 0), written out in float */
static void torch_sgd(float *w, float g, float *buf, float lr, float momentum, float wd, int nesterov, int first) {
    float d = g + wd * *w; /* grad.add(param, alpha=weight_decay) */
    *buf = first ? d : momentum * *buf + d;
    if (nesterov) d = d + momentum * *buf;
    else d = *buf;
    *w = *w - lr * d;
}

static void test_sgd(const q4_kernels *k) {
    enum { N = 37 };
    float w[N], g[N], b[N], w2[N], b2[N];
    for (int nesterov = 0; nesterov < 2; nesterov++) {
        fill_values(w, N, 1);
        memcpy(w2, w, sizeof w);
        memset(b, 0, sizeof b), memset(b2, 0, sizeof b2);
        q4_sgd_params p = {0.05f, 0.9f, 5e-4f, nesterov};
        for (int step = 0; step < 3; step++) {
            fill_values(g, N, 10 + step);
            k->sgd(w, g, b, N, &p);
            for (int i = 0; i < N; i++) torch_sgd(&w2[i], g[i], &b2[i], 0.05f, 0.9f, 5e-4f, nesterov, step == 0);
        }
        CHECK(memcmp(w, w2, sizeof w) == 0 && memcmp(b, b2, sizeof b) == 0, "%s sgd (nesterov %d) differs from PyTorch's",
              k->name, nesterov);
    }
}

/* a small session on synthetic data */
#define TRAIN SYNTHETIC_TRAIN
#define TEST SYNTHETIC_TEST
static synthetic_data data;
static q4_dataset train_set, test_set;

static void make_data(void) {
    make_synthetic(&data);
    train_set = data.train;
    test_set = data.test;
}

static q4_session *session_with(const char *settings) {
    q4_config c;
    q4_config_default(&c);
    c.batch_size = 32;
    c.threads = 2;
    c.seed = 3;
    return test_session(&c, settings, &train_set, &test_set);
}

/* clip_norm 0 and tanh_bound 0 switch the clips off: one step equals the unclipped update */
static void test_clips_off(void) {
    q4_session *s = session_with("clip_norm=0\ntanh_bound=0\noptimizer=sgd\nmomentum=0\nweight_decay=0\nlearning_rate=0.5");
    q4_vgg *m = &s->model;
    long p = m->param_count;
    float *before = malloc(p * 4);
    memcpy(before, m->params, p * 4);
    test_steps(s, 1);
    /* with momentum 0 and no decay, w1 = w0 - lr * g exactly, g the unclipped gradient */
    long bad = 0;
    double norm = 0;
    for (long i = 0; i < p; i++) {
        norm += (double)m->grads[i] * m->grads[i];
        if (m->params[i] != before[i] - 0.5f * m->grads[i]) bad++;
    }
    CHECK(bad == 0, "clips off: %ld weights are not w - lr*g", bad);
    CHECK(sqrt(norm) > 0.5, "the gradient norm %.3f is too small to show that clipping is off", sqrt(norm));
    /* and a weight beyond the tanh bound stays where the step put it */
    float big = 5.0f;
    m->param.fc2_weight[0] = big;
    memcpy(before, m->params, p * 4);
    test_steps(s, 1);
    CHECK(fabsf(m->param.fc2_weight[0] - (big - 0.5f * m->grad.fc2_weight[0])) == 0.0f, "tanh clip off: %g",
          m->param.fc2_weight[0]);
    free(before);
    q4_session_destroy(s);

    /* and on (the paper's): the step is clipped to norm 0.5 and the weight squashed below 3 */
    s = session_with("optimizer=sgd\nmomentum=0\nweight_decay=0\nlearning_rate=0.5");
    s->model.param.fc2_weight[0] = 5.0f;
    test_steps(s, 1);
    CHECK(fabsf(s->model.param.fc2_weight[0]) < 3.0f, "tanh clip on: %g", s->model.param.fc2_weight[0]);
    norm = 0;
    for (long i = 0; i < s->model.param_count; i++) norm += (double)s->model.grads[i] * s->model.grads[i];
    CHECK(fabs(sqrt(norm) - 0.5) < 1e-3, "clip on: the clipped gradient norm is %.6f", sqrt(norm));
    q4_session_destroy(s);
}

/* shift_lr: one step from the same state with shift_lr 1 and 4 (weight decay 0.1, the shifts set
 * to 0.25 first so that their decay shows). Every parameter but the BN shifts ends bit for bit
 * where it did; a shift's step (what it moved beyond its decay) is 4 times as long, and its
 * decay per step is the same: SGD without momentum at lr 0.5, w - 2 (g + 0.025 w) against
 * w - 0.5 (g + 0.1 w); AdamW, w (1 - lr wd) - 4 lr u against w (1 - lr wd) - lr u. */
static void test_shift_lr(void) {
    const char *optimizers[2] = {"optimizer=sgd\nmomentum=0\nlearning_rate=0.5", "optimizer=adamw\nlearning_rate=0.01"};
    for (int o = 0; o < 2; o++) {
        float *after[2] = {NULL, NULL}, *grads = NULL;
        long p = 0;
        for (int run = 0; run < 2; run++) {
            char settings[200];
            snprintf(settings, sizeof settings, "clip_norm=0\ntanh_bound=0\nweight_decay=0.1\nshift_lr=%d\n%s",
                     run ? 4 : 1, optimizers[o]);
            q4_session *s = session_with(settings);
            q4_vgg *m = &s->model;
            p = m->param_count;
            for (int t = 0; t < Q4_NUM_TENSORS; t++)
                if (m->tensors[t].role == Q4_ROLE_BN_BETA)
                    for (long i = m->tensors[t].offset; i < m->tensors[t].offset + m->tensors[t].count; i++)
                        m->params[i] = 0.25f;
            test_steps(s, 1);
            after[run] = malloc(p * 4);
            memcpy(after[run], m->params, p * 4);
            if (!run) {
                grads = malloc(p * 4);
                memcpy(grads, m->grads, p * 4);
            }
            if (run) {
                long shifts = 0, bad = 0, moved = 0;
                for (int t = 0; t < Q4_NUM_TENSORS; t++) {
                    const q4_tensor_info *info = &m->tensors[t];
                    for (long i = info->offset; i < info->offset + info->count; i++) {
                        if (info->role != Q4_ROLE_BN_BETA) {
                            if (memcmp(&after[0][i], &after[1][i], 4) != 0) bad++;
                            continue;
                        }
                        shifts++;
                        double one, four;
                        if (o == 0) {
                            one = 0.25 - 0.5 * ((double)grads[i] + 0.1 * 0.25);
                            four = 0.25 - 2.0 * ((double)grads[i] + 0.025 * 0.25);
                            if (fabs(after[0][i] - one) > 1e-6 || fabs(after[1][i] - four) > 1e-6) bad++;
                        } else {
                            double decayed = 0.25 * (1.0 - 0.01 * 0.1);
                            one = after[0][i] - decayed;
                            four = after[1][i] - decayed;
                            if (fabs(four - 4.0 * one) > 1e-6) bad++;
                        }
                        if (grads[i] != 0.0f && after[1][i] != after[0][i]) moved++;
                    }
                }
                CHECK(bad == 0, "shift_lr 4 (%s): %ld parameters moved otherwise than the rule", o ? "adamw" : "sgd", bad);
                CHECK(shifts > 1000 && moved > shifts / 2,
                      "shift_lr 4 (%s): %ld shifts, %ld moved otherwise than with shift_lr 1", o ? "adamw" : "sgd", shifts, moved);
            }
            q4_session_destroy(s);
        }
        free(after[0]);
        free(after[1]);
        free(grads);
    }
}

/* freeze_bn_scale 1: one SGD step (weight decay 0.1, gradients clipped to a global norm of 0.001,
 * far below theirs, so the clip always acts). Every BN scale is still exactly 1 (with 0 they move),
 * and the clipped gradients of every other parameter have a global norm of exactly the clip norm:
 * the frozen scales' gradients were left out of it, as PyTorch leaves out a parameter that does
 * not require a gradient. */
static void test_freeze_bn_scale(void) {
    for (int freeze = 0; freeze < 2; freeze++) {
        char settings[200];
        snprintf(settings, sizeof settings,
                 "clip_norm=0.001\ntanh_bound=0\nweight_decay=0.1\noptimizer=sgd\nmomentum=0\nlearning_rate=0.5\n"
                 "freeze_bn_scale=%d", freeze);
        q4_session *s = session_with(settings);
        q4_vgg *m = &s->model;
        test_steps(s, 1);
        long scales = 0, at_one = 0;
        double others = 0.0, all = 0.0;
        for (int t = 0; t < Q4_NUM_TENSORS; t++) {
            const q4_tensor_info *info = &m->tensors[t];
            for (long i = info->offset; i < info->offset + info->count; i++) {
                if (info->role == Q4_ROLE_BN_GAMMA) {
                    scales++;
                    at_one += m->params[i] == 1.0f;
                    all += (double)m->grads[i] * m->grads[i];
                } else {
                    others += (double)m->grads[i] * m->grads[i];
                }
            }
        }
        all = sqrt(all + others);
        others = sqrt(others);
        if (freeze) {
            CHECK(scales > 1000 && at_one == scales, "freeze_bn_scale 1: %ld of %ld BN scales moved from 1",
                  scales - at_one, scales);
            CHECK(fabs(others - 0.001) < 1e-7, "freeze_bn_scale 1: the other gradients were clipped to a norm of %.9f, not 0.001",
                  others);
        } else {
            CHECK(at_one < scales / 2, "freeze_bn_scale 0: %ld of %ld BN scales stayed at 1", at_one, scales);
            /* measured: the others 0.000999221, all 0.001000000 */
            CHECK(fabs(all - 0.001) < 1e-7 && others < 0.001 - 1e-7,
                  "freeze_bn_scale 0: the clipped gradients' norm %.9f (the scales left out: %.9f), not 0.001 with them",
                  all, others);
        }
        q4_session_destroy(s);
    }
}

/* bn_recalibrate: the rule on the model (q4_recalibrate_bn), then the session's step and the
 * exported model's q4_model_recalibrate_bn giving the same statistics. */
static void bn_stats(const q4_vgg *m, float *out) {
    memcpy(out, m->running_mean, (size_t)m->running_floats * sizeof(float));
}

static void test_bn_recalibrate(void) {
    q4_session *s = session_with("");
    q4_vgg *m = &s->model;
    q4_vgg_quantize(m);
    long p = m->param_count, r = m->running_floats;
    float *params = malloc(p * 4), *one = malloc(r * 4), *other = malloc(r * 4), *both = malloc(r * 4), *again = malloc(r * 4);
    memcpy(params, m->params, p * 4);
    const int B = 32; /* the session's batch_size */
    q4_dataset first = {B, train_set.num_classes, 1, {{B, data.train.shards[0].pixels, data.train.shards[0].labels, NULL}}};
    q4_dataset second = {B, train_set.num_classes, 1,
                         {{B, data.train.shards[0].pixels + (size_t)B * Q4_IMAGE_BYTES, data.train.shards[0].labels + B, NULL}}};
    q4_dataset two = q4_dataset_prefix(&train_set, 2 * B), two_and_one = q4_dataset_prefix(&train_set, 2 * B + 1);
    /* one batch: its own statistics (the mean as the forward pass computed it, the variance unbiased) */
    CHECK(q4_recalibrate_bn(m, &first, B) == Q4_OK, "recalibrate on one batch");
    bn_stats(m, one);
    double worst_var = 0;
    for (int b = 0; b < Q4_NUM_BN; b++) {
        const q4_batchnorm *bn = &m->bn[b];
        double count = b < Q4_NUM_CONV ? (double)B * q4_conv_specs[b].size * q4_conv_specs[b].size : B;
        for (int c = 0; c < bn->channels; c++) {
            CHECK(bn->running_mean[c] == bn->mean[c], "bn %d channel %d: running mean %g, the batch's %g", b, c,
                  bn->running_mean[c], bn->mean[c]);
            double biased = 1.0 / ((double)bn->invstd[c] * bn->invstd[c]) - Q4_BN_EPS;
            double unbiased = biased * count / (count - 1.0), d = fabs(bn->running_var[c] - unbiased) / unbiased;
            if (d > worst_var) worst_var = d;
        }
    }
    /* measured: 1.2e-7 (the batch's variance through a float 1/sqrt and back) */
    CHECK(worst_var < 1e-5, "one batch: the running variance is %.2g from the batch's unbiased variance", worst_var);
    CHECK(q4_recalibrate_bn(m, &second, B) == Q4_OK, "recalibrate on the other batch");
    bn_stats(m, other);
    /* two batches: the plain average of theirs; a last batch of one image adds nothing */
    CHECK(q4_recalibrate_bn(m, &two, B) == Q4_OK, "recalibrate on two batches");
    bn_stats(m, both);
    long bad = 0;
    for (long i = 0; i < r; i++) {
        double avg = ((double)one[i] + other[i]) / 2;
        if (fabs(both[i] - avg) > 1e-6 * fabs(avg) + 1e-12) bad++;
    }
    CHECK(bad == 0, "two batches: %ld of %ld statistics are not the average of the batches'", bad, r);
    CHECK(q4_recalibrate_bn(m, &two_and_one, B) == Q4_OK, "recalibrate on two batches and one image");
    bn_stats(m, again);
    CHECK(memcmp(both, again, r * 4) == 0, "a last batch of one image changed the statistics");
    CHECK(memcmp(params, m->params, p * 4) == 0, "recalibration changed a parameter");
    CHECK(m->bn[0].momentum == 0.1 && m->bn[Q4_BN_FC1].momentum == 0.1, "the momentum was not restored");
    CHECK(q4_recalibrate_bn(m, &two, 1) == Q4_ERR_ARGUMENT && q4_recalibrate_bn(m, &two, B + 1) == Q4_ERR_ARGUMENT,
          "batches of 1 or beyond the capacity accepted");
    q4_session_destroy(s);

    /* a run: after its last step the statistics are recomputed, nothing else changes; its export
     * recalibrated instead evaluates to the same */
    q4_session *runs[2];
    q4_epoch_report reports[2];
    for (int k = 0; k < 2; k++) {
        runs[k] = session_with(k ? "epochs=1\nlookahead=2\ntrain_limit=64\nbn_recalibrate=1" : "epochs=1\nlookahead=2\ntrain_limit=64");
        q4_progress pr;
        do CHECK(q4_session_train(runs[k], 100, &pr) == Q4_OK, "train"); while (!pr.epoch_done);
        CHECK(q4_session_end_epoch(runs[k], &reports[k]) == Q4_OK, "end epoch");
    }
    CHECK(memcmp(runs[0]->model.params, runs[1]->model.params, p * 4) == 0, "recalibration changed a parameter of the run");
    bn_stats(&runs[0]->model, one);
    bn_stats(&runs[1]->model, other);
    long same = 0;
    for (long i = 0; i < r; i++) same += one[i] == other[i];
    CHECK(same < r / 10, "the run's statistics were not recomputed (%ld of %ld as before)", same, r);
    CHECK(memcmp(runs[1]->ema + p, runs[1]->model.running_mean, r * 4) == 0, "lookahead's slow copy kept the old statistics");
    uint8_t *bytes;
    size_t size;
    CHECK(q4_session_export(runs[0], &bytes, &size) == Q4_OK, "export");
    q4_error err = {0};
    q4_model *model = q4_model_load(bytes, size, 1, 0, &err);
    q4_evaluation e;
    CHECK(model && q4_model_recalibrate_bn(model, &two, B, &err) == Q4_OK, "%s", err.message);
    CHECK(q4_model_evaluate(model, &test_set, Q4_TTA_NONE, &e, &err) == Q4_OK, "%s", err.message);
    /* (the export evaluates in batches of 128, the session in its own: the loss sums in another order) */
    CHECK(e.correct == reports[1].test.correct && fabs(e.loss - reports[1].test.loss) <= 1e-6 * e.loss &&
              e.loss != reports[0].test.loss,
          "the export recalibrated: %d right, loss %.9g; the run recalibrated %d, %.9g; not recalibrated %.9g", e.correct,
          e.loss, reports[1].test.correct, reports[1].test.loss, reports[0].test.loss);
    CHECK(q4_model_recalibrate_bn(model, &train_set, 129, &err) == Q4_ERR_ARGUMENT && strstr(err.message, "2 to 128"),
          "a batch beyond the model's capacity: %s", err.message);
    q4_model_destroy(model);
    free(bytes);
    for (int k = 0; k < 2; k++) q4_session_destroy(runs[k]);
    free(params), free(one), free(other), free(both), free(again);
}

/* decay_all 0: weight decay on conv and linear weights only. One SGD step without momentum at
 * lr 0.5 (a power of two, so w - lr*g is exact) and decay 0.1: every bias and BN parameter moves
 * by exactly -lr*g, every weight by -lr*(g + 0.1*w); with decay_all 1 the BN scales (1 at the
 * start) are decayed too. */
static void test_decay_groups(void) {
    for (int all = 0; all <= 1; all++) {
        char settings[200];
        snprintf(settings, sizeof settings,
                 "clip_norm=0\ntanh_bound=0\noptimizer=sgd\nmomentum=0\nweight_decay=0.1\nlearning_rate=0.5\ndecay_all=%d", all);
        q4_session *s = session_with(settings);
        q4_vgg *m = &s->model;
        long p = m->param_count;
        float *before = malloc(p * 4);
        memcpy(before, m->params, p * 4);
        test_steps(s, 1);
        long undecayed = 0, decayed = 0, others = 0, bad = 0;
        for (int t = 0; t < Q4_NUM_TENSORS; t++) {
            const q4_tensor_info *info = &m->tensors[t];
            int decay = all || info->role == Q4_ROLE_WEIGHT;
            for (long i = info->offset; i < info->offset + info->count; i++) {
                float plain = before[i] - 0.5f * m->grads[i];
                float with_decay = before[i] - 0.5f * (m->grads[i] + 0.1f * before[i]);
                if (before[i] == 0.0f) continue; /* decay cannot show */
                others++;
                if (decay) {
                    if (fabsf(m->params[i] - with_decay) > 1e-6f * (1.0f + fabsf(with_decay))) bad++;
                    else decayed++;
                } else if (m->params[i] != plain) bad++;
                else undecayed++;
            }
        }
        CHECK(bad == 0, "decay_all %d: %ld of %ld parameters moved otherwise than their group's rule", all, bad, others);
        CHECK(all ? undecayed == 0 && decayed == others : undecayed >= 1000 && decayed > 3000000,
              "decay_all %d: %ld decayed, %ld not", all, decayed, undecayed);
        free(before);
        q4_session_destroy(s);
    }
}

/* micro_batch: the batch's sums (BatchNorm statistics and their gradients, weight and bias
 * gradients, the loss) taken per micro-batch and added in micro-batch order. The same
 * mathematics in another summation order: one step of FP32 weights (no clipping, no dropout)
 * gives every weight gradient within rounding of the whole batch's and the same loss to 1e-6,
 * yet other bits; a micro-batch of the batch's size or more is the whole batch, bit for bit.
 * 32 images in micro-batches of 12: 12 + 12 + 8, the last one short. */
static void test_micro_batch(void) {
#define MICRO_BASE "weight_bits=32\nclip_norm=0\ntanh_bound=0\ndropout=0"
    q4_session *whole = session_with(MICRO_BASE), *same = session_with(MICRO_BASE "\nmicro_batch=40"),
               *micro = session_with(MICRO_BASE "\nmicro_batch=12");
#undef MICRO_BASE
    CHECK(whole->model.micro_batch == 0 && same->model.micro_batch == 0 && micro->model.micro_batch == 12,
          "micro_batch in the model: %d, %d, %d", whole->model.micro_batch, same->model.micro_batch,
          micro->model.micro_batch);
    test_steps(whole, 1);
    test_steps(same, 1);
    test_steps(micro, 1);
    const q4_vgg *a = &whole->model, *b = &micro->model;
    size_t bytes = (size_t)a->param_count * sizeof(float);
    CHECK(!memcmp(a->params, same->model.params, bytes) && whole->last_loss == same->last_loss,
          "micro_batch 40 at batch 32 is not the whole batch bit for bit");
    CHECK(memcmp(a->grads, b->grads, bytes) != 0, "micro-batches of 12 gave the whole batch's bits: nothing split");
    double worst = 0.0;
    for (int t = 0; t < Q4_NUM_TENSORS; t++) {
        const q4_tensor_info *info = &a->tensors[t];
        if (info->role != Q4_ROLE_WEIGHT) continue;
        double largest = 0.0, diff = 0.0;
        for (long i = info->offset; i < info->offset + info->count; i++) {
            largest = fmax(largest, fabs(a->grads[i]));
            diff = fmax(diff, fabs((double)a->grads[i] - b->grads[i]));
        }
        worst = fmax(worst, diff / largest);
    }
    /* measured 2026-12-05: 3.1e-06 (AVX-512); float sums of up to 32 x 1024 terms in another order */
    CHECK(worst < 1e-4, "micro-batches of 12: a weight gradient %.2g (relative to its tensor's largest) from the whole batch's",
          worst);
    double loss_diff = fabs((double)whole->last_loss - micro->last_loss) / fabs(whole->last_loss);
    CHECK(loss_diff < 1e-6, "micro-batches of 12: loss %.9g against %.9g", micro->last_loss, whole->last_loss);
    printf("micro-batches of 12 in a batch of 32: weight gradients within %.2g of the whole batch's (relative to each "
           "tensor's largest), loss within %.2g; micro_batch 40: the whole batch, bit for bit\n", worst, loss_diff);
    q4_session_destroy(whole);
    q4_session_destroy(same);
    q4_session_destroy(micro);
}

/* ---- data-parallel training (q4_combiner) without MPI: P threads stand for P processes, each
 * with its own session, meeting through shared memory and a barrier. */
#define MAX_MEMBERS 3
typedef struct meeting {
    pthread_barrier_t barrier;
    int processes;
    double *rows[MAX_MEMBERS];
    const float *held[MAX_MEMBERS];
} meeting;
typedef struct member {
    q4_combiner combiner;
    meeting *meeting;
    q4_session *session;
    q4_epoch_report report;
    char sha[65];
    int failed;
} member;

static void meet_gather(void *context, double *rows, long row_values, int micro_total) {
    member *me = context;
    meeting *m = me->meeting;
    m->rows[me->combiner.rank] = rows;
    pthread_barrier_wait(&m->barrier);
    for (int p = 0; p < m->processes; p++) {
        int first, held;
        q4_micro_share(micro_total, m->processes, p, &first, &held);
        if (p != me->combiner.rank)
            memcpy(rows + (long)first * row_values, m->rows[p] + (long)first * row_values,
                   (size_t)held * (size_t)row_values * sizeof(double));
    }
    pthread_barrier_wait(&m->barrier); /* nobody's rows change before everyone has copied */
}

static void meet_sum(void *context, float *out, const float *held_rows, long count, int micro_total) {
    member *me = context;
    meeting *m = me->meeting;
    m->held[me->combiner.rank] = held_rows;
    pthread_barrier_wait(&m->barrier);
    for (int j = 0; j < micro_total; j++) { /* micro-batch j: from the process holding it */
        const float *row = NULL;
        for (int p = 0; p < m->processes && !row; p++) {
            int first, held;
            q4_micro_share(micro_total, m->processes, p, &first, &held);
            if (j >= first && j < first + held) row = m->held[p] + (long)(j - first) * count;
        }
        for (long i = 0; i < count; i++) out[i] = j ? out[i] + row[i] : row[i];
    }
    pthread_barrier_wait(&m->barrier);
}

static void *member_run(void *context) {
    member *me = context;
    q4_progress p;
    do
        if (q4_session_train(me->session, 1, &p)) me->failed = 1;
    while (!me->failed && !p.epoch_done);
    if (!me->failed && q4_session_end_epoch(me->session, &me->report)) me->failed = 1;
    q4_session_state_sha256(me->session, me->sha);
    return NULL;
}

/* One epoch (100 images at batch 32 in micro-batches of 12: three steps of 12 + 12 + 8, then one
 * of 4; with dropout, cutout, alternating flips, the moving average, test-time views) alone and
 * as 3 processes (each holds one micro-batch of a full step; two hold none of the last step, and
 * one none of the 2 test batches; the BatchNorm statistics recomputed after the last step, which
 * each process does alone): every process ends with the same state hash as one process, and the
 * same evaluation. A process combining in another order would not. */
static void test_data_parallel(void) {
#define PARALLEL_SETTINGS                                                                                        \
    "recipe=fast\nbatch_size=32\ntrain_limit=100\nepochs=1\nmicro_batch=12\nthreads=1\ndropout=0.3\ncutout=8\nema=0.9\n" \
    "flip=alternate\nbn_recalibrate=1"
    q4_session *alone = session_with(PARALLEL_SETTINGS);
    member one = {.session = alone};
    member_run(&one);
    CHECK(!one.failed, "one process: %s", q4_session_error(alone));
    CHECK(one.report.tta_accuracy >= 0, "the last epoch evaluates with test-time views");
    CHECK(alone->config.batch_size == 32 && alone->steps_per_epoch == 4, "the plan: batch %d, %d steps",
          alone->config.batch_size, alone->steps_per_epoch);
    for (int processes = MAX_MEMBERS; processes <= MAX_MEMBERS; processes++) {
        meeting m = {.processes = processes};
        pthread_barrier_init(&m.barrier, NULL, (unsigned)processes);
        member members[MAX_MEMBERS];
        pthread_t threads[MAX_MEMBERS];
        for (int r = 0; r < processes; r++) {
            members[r] = (member){{&members[r], processes, r, meet_gather, meet_sum}, &m, session_with(PARALLEL_SETTINGS),
                                  {0}, {0}, 0};
            CHECK(q4_session_set_combiner(members[r].session, &members[r].combiner) == Q4_OK, "set_combiner: %s",
                  q4_session_error(members[r].session));
        }
        for (int r = 0; r < processes; r++) pthread_create(&threads[r], NULL, member_run, &members[r]);
        for (int r = 0; r < processes; r++) pthread_join(threads[r], NULL);
        for (int r = 0; r < processes; r++) {
            const q4_epoch_report *a = &one.report, *b = &members[r].report;
            CHECK(!members[r].failed, "%d processes, rank %d: %s", processes, r, q4_session_error(members[r].session));
            CHECK(!strcmp(one.sha, members[r].sha), "%d processes, rank %d: state %.12s..., one process %.12s...", processes,
                  r, members[r].sha, one.sha);
            CHECK(a->train_loss == b->train_loss && a->train_accuracy == b->train_accuracy &&
                      a->test.correct == b->test.correct && a->test.loss == b->test.loss &&
                      a->tta_accuracy == b->tta_accuracy && !memcmp(a->predictions, b->predictions, (size_t)a->n_predictions),
                  "%d processes, rank %d: the epoch's report differs from one process's (loss %.9g against %.9g, test "
                  "correct %d against %d)", processes, r, b->train_loss, a->train_loss, b->test.correct, a->test.correct);
            q4_session_destroy(members[r].session);
        }
        pthread_barrier_destroy(&m.barrier);
    }
    /* and without micro-batches there is no order to keep: refused */
    q4_session *whole = session_with("threads=1");
    q4_combiner two = {NULL, 2, 0, meet_gather, meet_sum};
    CHECK(q4_session_set_combiner(whole, &two) == Q4_ERR_ARGUMENT &&
              strstr(q4_session_error(whole), "needs micro-batches"),
          "a combiner without micro-batches: %s", q4_session_error(whole));
    /* the shares: contiguous, in rank order, covering every micro-batch once, at most one apart */
    for (int total = 1; total <= 9; total++)
        for (int processes = 1; processes <= 5; processes++) {
            int next = 0, least = total, most = 0;
            for (int r = 0; r < processes; r++) {
                int first, held;
                q4_micro_share(total, processes, r, &first, &held);
                CHECK(first == next && held >= 0, "share of %d among %d: rank %d starts at %d", total, processes, r, first);
                next = first + held;
                least = held < least ? held : least;
                most = held > most ? held : most;
            }
            CHECK(next == total && most - least <= 1, "share of %d among %d: %d covered, %d..%d each", total, processes,
                  next, least, most);
        }
    printf("data-parallel: 3 processes (threads meeting through shared memory) end an epoch with one process's "
           "state hash %.12s... and its evaluation (test %d of %d right, TTA %.4f)\n", one.sha, one.report.test.correct,
           one.report.test.count, one.report.tta_accuracy);
    q4_session_destroy(whole);
    q4_session_destroy(alone);
#undef PARALLEL_SETTINGS
}

/* the moving average follows avg = d*avg + (1-d)*w with d = min(ema, (1+t)/(10+t)) */
static void test_moving_average(void) {
    q4_session *s = session_with("ema=0.9");
    q4_vgg *m = &s->model;
    long p = m->param_count, bn = m->bn_total;
    float *avg = malloc((p + 2 * bn) * 4);
    memcpy(avg, m->params, p * 4);
    memcpy(avg + p, m->running_mean, 2 * bn * 4);
    for (int t = 1; t <= 6; t++) {
        test_steps(s, 1);
        double d = fmin(0.9, (1.0 + t) / (10.0 + t));
        float decay = (float)d, keep = (float)(1.0 - d);
        for (long i = 0; i < p; i++) avg[i] = avg[i] * decay + m->params[i] * keep;
        for (long i = 0; i < 2 * bn; i++) avg[p + i] = avg[p + i] * decay + m->running_mean[i] * keep;
    }
    CHECK(memcmp(avg, s->ema, (p + 2 * bn) * 4) == 0, "the moving average does not follow its recurrence");
    /* evaluation, statistics and export use it, and leave the live weights as they were */
    float *live = malloc(p * 4);
    memcpy(live, m->params, p * 4);
    q4_evaluation e;
    CHECK(q4_session_evaluate(s, &e, NULL, 0) == Q4_OK, "evaluate");
    CHECK(memcmp(live, m->params, p * 4) == 0 && !s->averaged_in, "evaluation changed the live weights");
    uint8_t *bytes;
    size_t size;
    CHECK(q4_session_export(s, &bytes, &size) == Q4_OK, "export");
    q4_error err = {0};
    q4_model *model = q4_model_load(bytes, size, 1, 0, &err);
    q4_evaluation from_export;
    CHECK(model && q4_model_evaluate(model, &test_set, Q4_TTA_NONE, &from_export, &err) == Q4_OK, "%s", err.message);
    /* (the export evaluates in batches of 128, the session in its own: the loss sums in another order) */
    CHECK(from_export.correct == e.correct && fabs(from_export.loss - e.loss) <= 1e-6 * e.loss,
          "the export evaluates to %d correct (loss %.9g), the session's moving average to %d (%.9g)", from_export.correct,
          from_export.loss, e.correct, e.loss);
    q4_model_destroy(model);
    free(bytes);
    /* the average is part of the state: save, load, train on equals training straight */
    CHECK(q4_session_save(s, &bytes, &size) == Q4_OK, "save");
    q4_session *r = session_with("ema=0.9");
    CHECK(q4_session_load(r, bytes, size) == Q4_OK, "load: %s", q4_session_error(r));
    test_steps(s, 2);
    test_steps(r, 2);
    CHECK(memcmp(s->ema, r->ema, (p + 2 * bn) * 4) == 0 && memcmp(s->model.params, r->model.params, p * 4) == 0,
          "resumed moving average differs");
    /* a checkpoint without it does not load into a session with it */
    q4_session *plain = session_with("");
    uint8_t *plain_bytes;
    size_t plain_size;
    CHECK(q4_session_save(plain, &plain_bytes, &plain_size) == Q4_OK, "q4_session_save failed");
    CHECK(q4_session_load(r, plain_bytes, plain_size) == Q4_ERR_MISMATCH && strstr(q4_session_error(r), "ema"),
          "a checkpoint without the average: %s", q4_session_error(r));
    free(plain_bytes);
    q4_session_destroy(plain);
    free(bytes), free(avg), free(live);
    q4_session_destroy(s);
    q4_session_destroy(r);
}

/* lookahead=2: after every second step t of T the slow copy moves toward the weights by
 * 1 - 0.95^5 (t/T)^3 and the weights and BN statistics take its values; after step T (odd here)
 * they take it without the move. Checked against a twin session without lookahead whose weights
 * the test moves by hand; evaluation uses the live weights; the slow copy is saved state. */
static void test_lookahead(void) {
    q4_session *s = session_with("lookahead=2\nepochs=1"), *twin = session_with("epochs=1");
    q4_vgg *m = &s->model, *tm = &twin->model;
    long p = m->param_count, bn = m->bn_total, n = p + 2 * bn;
    int total = s->steps_per_epoch;
    CHECK(total >= 5 && total % 2 == 1, "the test wants an odd number of steps (at least 5), not %d", total);
    float *slow = malloc(n * 4);
    memcpy(slow, tm->params, p * 4);
    memcpy(slow + p, tm->running_mean, 2 * bn * 4);
    uint8_t *saved = NULL;
    size_t saved_size = 0;
    for (int t = 1; t <= total; t++) {
        test_steps(s, 1);
        test_steps(twin, 1);
        if (t % 2 == 0) {
            double r = (double)t / (double)total, d = 0.95 * 0.95 * 0.95 * 0.95 * 0.95 * r * r * r;
            float decay = (float)d, keep = (float)(1.0 - d);
            for (long i = 0; i < p; i++) slow[i] = slow[i] * decay + tm->params[i] * keep;
            for (long i = 0; i < 2 * bn; i++) slow[p + i] = slow[p + i] * decay + tm->running_mean[i] * keep;
            if (t == 2) CHECK(memcmp(slow, tm->params, p * 4) != 0, "the slow copy is the weights after step 2");
        }
        if (t % 2 == 0 || t == total) {
            memcpy(tm->params, slow, p * 4);
            memcpy(tm->running_mean, slow + p, 2 * bn * 4);
        }
        CHECK(memcmp(m->params, tm->params, p * 4) == 0 && memcmp(m->running_mean, tm->running_mean, 2 * bn * 4) == 0 &&
              memcmp(s->ema, slow, n * 4) == 0, "lookahead differs from its rule after step %d of %d", t, total);
        if (t == 3) {
            q4_evaluation e, te;
            CHECK(q4_session_evaluate(s, &e, NULL, 0) == Q4_OK && q4_session_evaluate(twin, &te, NULL, 0) == Q4_OK,
                  "evaluate");
            CHECK(e.correct == te.correct && e.loss == te.loss, "evaluation does not use the live weights (%d, %.9g "
                  "against %d, %.9g)", e.correct, e.loss, te.correct, te.loss);
            CHECK(q4_session_save(s, &saved, &saved_size) == Q4_OK, "save");
        }
    }
    /* resumed after step 3: the same end, bit for bit */
    q4_session *r = session_with("lookahead=2\nepochs=1");
    CHECK(q4_session_load(r, saved, saved_size) == Q4_OK, "load: %s", q4_session_error(r));
    test_steps(r, total - 3);
    CHECK(memcmp(r->model.params, m->params, p * 4) == 0 && memcmp(r->ema, s->ema, n * 4) == 0,
          "resumed lookahead differs");
    /* its checkpoint does not load where lookahead is off, nor is it allowed beside ema */
    CHECK(q4_session_load(twin, saved, saved_size) == Q4_ERR_MISMATCH && strstr(q4_session_error(twin), "lookahead"),
          "a lookahead checkpoint into a session without it: %s", q4_session_error(twin));
    q4_config both;
    q4_config_default(&both);
    q4_error err = {0};
    CHECK(q4_config_parse(&both, "ema=0.9\nlookahead=5", &err) == Q4_OK &&
              q4_config_check(&both, &err) == Q4_ERR_ARGUMENT && strstr(err.message, "lookahead"),
          "ema and lookahead together: %s", err.message);
    free(saved), free(slow);
    q4_session_destroy(r);
    q4_session_destroy(twin);
    q4_session_destroy(s);
}

/* q4_model_levels counts an exported model's levels as the session quantized them (counted here
 * from the session's own quantized weights, level = round(w / scale)); FP32 models have none */
static void test_levels(void) {
    q4_session *s = session_with("weight_bits=3");
    test_steps(s, 2);
    q4_vgg *m = &s->model;
    uint8_t *bytes;
    size_t size;
    q4_error err = {0};
    CHECK(q4_session_export(s, &bytes, &size) == Q4_OK, "export");
    q4_model *model = q4_model_load(bytes, size, 1, 0, &err);
    CHECK(model != NULL, "load: %s", err.message);
    for (int layer = 0; model && layer < Q4_NUM_QUANT_LAYERS; layer++) {
        q4_layer_levels l;
        CHECK(q4_model_levels(model, layer, &l, &err) == Q4_OK, "levels of layer %d: %s", layer, err.message);
        const q4_tensor_info *t = &m->tensors[m->weight_tensor[layer]];
        long counts[7] = {0}, row_max[4] = {0}, sum = 0;
        const float *w = m->qweights + m->qweight_offset[layer];
        for (long i = 0; i < t->count; i++) counts[(int)lrintf(w[i] / m->quant_scale[layer]) + 3]++;
        for (int k = 0; k <= 6; k++) sum += l.counts[k];
        long cols = t->count / t->shape[0];
        for (int r = 0; r < t->shape[0]; r++) {
            int top = 0;
            for (long i = r * cols; i < (r + 1) * cols; i++) {
                int level = abs((int)lrintf(w[i] / m->quant_scale[layer]));
                if (level > top) top = level;
            }
            row_max[top]++;
        }
        CHECK(memcmp(l.row_max, row_max, sizeof row_max) == 0 && l.row_max[4] == 0,
              "layer %d (%s): rows by largest |level| counted %ld %ld %ld %ld, the session's %ld %ld %ld %ld", layer, l.name,
              l.row_max[0], l.row_max[1], l.row_max[2], l.row_max[3], row_max[0], row_max[1], row_max[2], row_max[3]);
        CHECK(l.bits == 3 && l.max_level == 3 && l.count == t->count && sum == t->count && l.scale == m->quant_scale[layer] &&
                  memcmp(l.counts, counts, sizeof counts) == 0 && !strcmp(l.name, t->name) &&
                  (long)l.rows * l.cols == t->count,
              "layer %d (%s): levels counted %ld %ld %ld %ld %ld %ld %ld, the session's %ld %ld %ld %ld %ld %ld %ld", layer,
              l.name, l.counts[0], l.counts[1], l.counts[2], l.counts[3], l.counts[4], l.counts[5], l.counts[6], counts[0],
              counts[1], counts[2], counts[3], counts[4], counts[5], counts[6]);
    }
    q4_layer_levels l;
    CHECK(q4_model_levels(model, Q4_NUM_QUANT_LAYERS, &l, &err) == Q4_ERR_ARGUMENT, "layer 8 accepted");
    q4_model_destroy(model);
    free(bytes);
    q4_session_destroy(s);
    q4_session *fp32 = session_with("weight_bits=32");
    CHECK(q4_session_export(fp32, &bytes, &size) == Q4_OK, "export FP32");
    model = q4_model_load(bytes, size, 1, 0, &err);
    CHECK(model && q4_model_levels(model, 0, &l, &err) == Q4_ERR_ARGUMENT && strstr(err.message, "FP32"),
          "an FP32 model's levels: %s", err.message);
    q4_model_destroy(model);
    free(bytes);
    q4_session_destroy(fp32);
}

/* one white image; count the exact zeros (only cutout writes 0.0: padding is black, -mean/std) */
static void test_augmentation(void) {
    static uint8_t white[Q4_IMAGE_BYTES], label[1];
    memset(white, 255, sizeof white);
    q4_dataset one = {1, 10, 1, {{1, white, label, NULL}}};
    static float x[3 * 1024];
    uint8_t out_label[1];
    int order[1] = {0};
    for (int size = 1; size <= 12; size += 11) {
        int clipped = 0;
        for (long position = 0; position < 50; position++) {
            q4_augmentation a = {1, 4, Q4_FLIP_RANDOM, size, 5};
            q4_make_batch(x, out_label, &one, order, 1, &a, 0, position);
            int zeros = 0, x0 = 99, x1 = -1, y0 = 99, y1 = -1;
            for (int p = 0; p < 1024; p++)
                if (x[p] == 0.0f) {
                    zeros++;
                    int px = p % 32, py = p / 32;
                    x0 = px < x0 ? px : x0, x1 = px > x1 ? px : x1, y0 = py < y0 ? py : y0, y1 = py > y1 ? py : y1;
                }
            CHECK(zeros > 0 && zeros <= size * size && zeros == (x1 - x0 + 1) * (y1 - y0 + 1),
                  "cutout %d at position %ld: %d zeros in a %dx%d box", size, position, zeros, x1 - x0 + 1, y1 - y0 + 1);
            CHECK(x[1024 + y0 * 32 + x0] == 0.0f && x[2048 + y1 * 32 + x1] == 0.0f, "cutout covers every channel");
            clipped += zeros < size * size;
        }
        if (size > 1) CHECK(clipped > 0 && clipped < 50, "cutout %d clipped at the edges in %d of 50", size, clipped);
    }

    /* flips: a left-right gradient image, no crop (all positions), its mirror tells the flip */
    static uint8_t ramp[Q4_IMAGE_BYTES];
    for (int p = 0; p < Q4_IMAGE_BYTES; p++) ramp[p] = (uint8_t)(8 * (p % 32));
    q4_dataset r = {1, 10, 1, {{1, ramp, label, NULL}}};
    int random_flips = 0;
    for (int image_trial = 0; image_trial < 40; image_trial++) {
        int last = -1;
        for (int epoch = 0; epoch < 4; epoch++) {
            q4_augmentation a = {1, 4, Q4_FLIP_ALTERNATE, 0, (uint64_t)image_trial};
            q4_make_batch(x, out_label, &r, order, 1, &a, epoch, 7);
            /* the middle row: increasing unless flipped (crop shifts keep the interior order) */
            int flipped = x[16 * 32 + 12] > x[16 * 32 + 20];
            if (last >= 0) CHECK(flipped != last, "alternate flips: seed %d epoch %d repeats the flip", image_trial, epoch);
            last = flipped;
            a.flip = Q4_FLIP_RANDOM;
            q4_make_batch(x, out_label, &r, order, 1, &a, epoch, 7);
            random_flips += x[16 * 32 + 12] > x[16 * 32 + 20];
        }
    }
    CHECK(random_flips > 50 && random_flips < 110, "random flips: %d of 160", random_flips);

    /* crops: the shift of a ramp's middle pixel stays within the padding, and reaches it */
    for (int pad = 0; pad <= 2; pad += 2) {
        int widest = 0;
        for (long position = 0; position < 200; position++) {
            q4_augmentation a = {1, pad, Q4_FLIP_RANDOM, 0, 9};
            q4_make_batch(x, out_label, &r, order, 1, &a, 0, position);
            /* the ramp is 8*column: the middle pixel tells the horizontal shift (either flip) */
            float plain_middle = (8.0f * 16 / 255.0f - q4_norm_mean[0]) / q4_norm_std[0];
            float step = 8.0f / 255.0f / q4_norm_std[0];
            int shift = (int)lrintf(fabsf(x[16 * 32 + 16] - plain_middle) / step);
            int shift_left = (int)lrintf(fabsf(x[16 * 32 + 15] - plain_middle) / step); /* flipped: column 15 */
            int seen = shift < shift_left ? shift : shift_left;
            if (seen > widest) widest = seen;
        }
        CHECK(widest == pad, "crops with padding %d shift up to %d pixels", pad, widest);
    }

    /* test-time views: a flip mirrors, a shift moves by one pixel with black coming in */
    static float plain[3 * 1024], view[3 * 1024];
    q4_make_view_batch(plain, out_label, &r, order, 1, 0, 0, 0);
    q4_make_view_batch(view, out_label, &r, order, 1, 0, 0, 1);
    CHECK(view[5 * 32 + 0] == plain[5 * 32 + 31] && view[5 * 32 + 31] == plain[5 * 32 + 0], "flip view");
    q4_make_view_batch(view, out_label, &r, order, 1, 1, 1, 0);
    float black = (0.0f / 255.0f - q4_norm_mean[0]) / q4_norm_std[0];
    CHECK(view[5 * 32 + 4] == plain[6 * 32 + 5] && view[31 * 32 + 3] == black && view[5 * 32 + 31] == black &&
              view[0] == plain[33],
          "shift view (1, 1)");
}

/* The fast recipe's schedule as a real session steps it (README: a linear warm-up over the
 * first 20% of the planned steps, then linear down to 0 at the end of the plan). With momentum,
 * decay and the tanh clip off, each step moves the weights by exactly -lr * gradient, so the
 * learning rate a step used is read off the weights: lr = -(dw . g) / (g . g). 150 images at
 * batch 32 are 5 steps an epoch; 2 planned epochs are 10 steps, round(0.2 * 10) = 2 of warm-up:
 * step t (0-based) uses 0.07 * (t + 1) / 2 while t < 2, then 0.07 * (10 - t) / 8; steps past the
 * plan use 0 and leave the weights as they are. */
static void test_fast_schedule(void) {
    q4_session *s = session_with("recipe=fast\nbatch_size=32\nepochs=2\nmomentum=0\nweight_decay=0\ntanh_bound=0");
    q4_vgg *m = &s->model;
    long p = m->param_count;
    float *before = malloc(p * 4);
    double worst = 0;
    for (int t = 0; t < 12; t++) {
        memcpy(before, m->params, p * 4);
        test_steps(s, 1);
        double expected = t < 2 ? 0.07 * (t + 1) / 2 : t < 10 ? 0.07 * (10 - t) / 8 : 0.0, dot = 0, gg = 0, moved = 0;
        for (long i = 0; i < p; i++) {
            double d = (double)m->params[i] - before[i];
            dot += d * m->grads[i], gg += (double)m->grads[i] * m->grads[i], moved += fabs(d);
        }
        double used = -dot / gg;
        if (expected > 0) worst = fmax(worst, fabs(used - expected) / expected);
        CHECK(expected > 0 ? fabs(used - expected) <= 1e-4 * expected : moved == 0,
              "fast recipe, step %d: learning rate %.7g used, the schedule says %.7g", t, used, expected);
    }
    /* measured: within 5.3e-8 of the schedule (float rounding of w - lr * g) */
    printf("fast recipe schedule in a session: 12 steps (10 planned) as planned, worst relative difference %.2g\n", worst);
    free(before);
    q4_session_destroy(s);
}

/* TTA is reported after the last planned epoch only, and equals an export's evaluation with it */
/* An exported model's evaluation in parts (the page's model check: progress, and a cancel between
 * parts) ends bit for bit where the whole one does: on the 150 training images (two batches of the
 * model's 128, the second ragged); parts of 1 image (a whole batch each) and of 129 (two); an
 * evaluation begun again discards the first; a step with none begun, or after the last, is refused.
 * Plain views: test-time views are averaged inside each batch, which parts do not split (and
 * under the sanitizers each view costs seconds here) */
static void test_evaluate_in_parts(void) {
    q4_session *s = session_with("");
    test_steps(s, 2);
    uint8_t *bytes;
    size_t size;
    CHECK(q4_session_export(s, &bytes, &size) == Q4_OK, "export");
    q4_error err = {0};
    q4_model *model = q4_model_load(bytes, size, 2, 0, &err);
    CHECK(model != NULL, "%s", err.message);
    if (!model) return;
    q4_evaluation whole, parts;
    CHECK(q4_model_evaluate(model, &train_set, Q4_TTA_NONE, &whole, &err) == Q4_OK, "%s", err.message);
    int confusion[100], evaluated = -1;
    memcpy(confusion, whole.confusion, sizeof confusion);
    CHECK(q4_model_evaluate_step(model, 1, &parts, &evaluated, &err) == Q4_ERR_STATE, "a step with no evaluation begun");
    for (int size_of_part = 1; size_of_part <= 129; size_of_part += 128) {
        CHECK(q4_model_evaluate_begin(model, &train_set, Q4_TTA_NONE, &parts, &err) == Q4_OK, "%s", err.message);
        if (size_of_part == 1) { /* begun again: the first part is discarded */
            CHECK(q4_model_evaluate_step(model, 1, &parts, &evaluated, &err) == Q4_OK && evaluated == 128, "first part: %d", evaluated);
            CHECK(q4_model_evaluate_begin(model, &train_set, Q4_TTA_NONE, &parts, &err) == Q4_OK, "%s", err.message);
        }
        int steps = 0;
        do {
            CHECK(q4_model_evaluate_step(model, size_of_part, &parts, &evaluated, &err) == Q4_OK, "%s", err.message);
            steps++;
        } while (evaluated < train_set.count && steps < 10);
        CHECK(steps == (size_of_part == 1 ? 2 : 1), "parts of %d: %d steps", size_of_part, steps);
        CHECK(parts.count == whole.count && parts.correct == whole.correct &&
                  memcmp(&parts.loss, &whole.loss, sizeof whole.loss) == 0 && parts.accuracy == whole.accuracy &&
                  memcmp(parts.class_total, whole.class_total, sizeof whole.class_total) == 0 &&
                  memcmp(parts.class_correct, whole.class_correct, sizeof whole.class_correct) == 0 &&
                  memcmp(parts.confusion, confusion, sizeof confusion) == 0,
              "parts of %d: %d correct, loss %.17g; whole: %d, %.17g", size_of_part, parts.correct, parts.loss,
              whole.correct, whole.loss);
        CHECK(q4_model_evaluate_step(model, 1, &parts, &evaluated, &err) == Q4_ERR_STATE, "a step after the last");
    }
    printf("evaluation in parts: %d of %d right, loss %.6f, as the whole evaluation, bit for bit\n", parts.correct,
           parts.count, parts.loss);
    q4_model_destroy(model);
    free(bytes);
    q4_session_destroy(s);
}

#define SESSION_VIEWS 4
static void test_tta(void) {
    /* 64 training images (2 steps an epoch) and the first 16 test images: 96 views answered one by one */
    q4_session *s = session_with("tta=flip-translate\nepochs=2\ntrain_limit=64\ntest_limit=16");
    const q4_dataset tests = q4_dataset_prefix(&test_set, 16);
    q4_progress p;
    q4_epoch_report report;
    do CHECK(q4_session_train(s, 100, &p) == Q4_OK, "train"); while (!p.epoch_done);
    CHECK(q4_session_end_epoch(s, &report) == Q4_OK, "end epoch 1");
    CHECK(report.tta_accuracy < 0, "TTA reported before the last epoch");
    do CHECK(q4_session_train(s, 100, &p) == Q4_OK, "train"); while (!p.epoch_done);
    CHECK(q4_session_end_epoch(s, &report) == Q4_OK, "end epoch 2");
    CHECK(report.tta_accuracy >= 0 && report.tta_accuracy <= 1, "TTA after the last epoch: %g", report.tta_accuracy);
    uint8_t *bytes;
    size_t size;
    CHECK(q4_session_export(s, &bytes, &size) == Q4_OK, "q4_session_export failed");
    q4_error err = {0};
    q4_model *model = q4_model_load(bytes, size, 2, 0, &err);
    q4_evaluation e;
    CHECK(model && q4_model_evaluate(model, &tests, Q4_TTA_FLIP_TRANSLATE, &e, &err) == Q4_OK, "%s", err.message);
    CHECK(e.accuracy == report.tta_accuracy, "TTA of the export %g, of the session %g", e.accuracy, report.tta_accuracy);
    /* The same evaluation rebuilt here without the engine's view code: each view made by this
     * test (a one-pixel shift of the window, black coming in, then the window mirrored), the
     * model's probabilities for it, and the views' logits averaged with the weights README gives
     * (plain and mirrored 1/4 each, the four shifted views 1/8). Averaging log-probabilities
     * averages the logits up to a constant per image, so the predictions and the loss of the
     * averaged logits follow exactly. Equal weights (1/6) give a different loss: printed, to
     * show the check sees the weights. */
    static const struct { int dx, dy, flip; double weight; } views[6] = {
        {0, 0, 0, 0.25}, {0, 0, 1, 0.25}, {-1, -1, 0, 0.125}, {-1, -1, 1, 0.125}, {1, 1, 0, 0.125}, {1, 1, 1, 0.125}};
    double loss = 0, loss_equal = 0;
    int correct = 0, differing = 0;
    for (int i = 0; i < tests.count; i++) {
        const uint8_t *image = q4_dataset_image(&tests, i);
        int label = q4_dataset_label(&tests, i);
        double mixed[Q4_MAX_CLASSES] = {0}, equal[Q4_MAX_CLASSES] = {0};
        for (int v = 0; v < 6; v++) {
            static uint8_t view[Q4_IMAGE_BYTES];
            for (int c = 0; c < 3; c++)
                for (int y = 0; y < 32; y++)
                    for (int x = 0; x < 32; x++) {
                        int sy = y + views[v].dy, sx = (views[v].flip ? 31 - x : x) + views[v].dx;
                        view[c * 1024 + y * 32 + x] =
                            sy < 0 || sy >= 32 || sx < 0 || sx >= 32 ? 0 : image[c * 1024 + sy * 32 + sx];
                    }
            double probabilities[Q4_MAX_CLASSES], from_session[Q4_MAX_CLASSES];
            CHECK(q4_model_classify(model, view, probabilities, &err) == Q4_OK, "%s", err.message);
            /* the session answers as its export does, bit for bit (the page's Try the model asks
             * either): checked on the first SESSION_VIEWS images' views (each answer takes a
             * whole forward pass of one image, twice as long from a session, which quantizes first) */
            if (i < SESSION_VIEWS) {
                CHECK(q4_session_classify(s, view, from_session) == Q4_OK, "classify");
                differing += memcmp(probabilities, from_session, 10 * sizeof(double)) != 0;
            }
            for (int k = 0; k < 10; k++) {
                mixed[k] += views[v].weight * log(probabilities[k]);
                equal[k] += log(probabilities[k]) / 6;
            }
        }
        double top = mixed[0], top_equal = equal[0];
        int guess = 0;
        for (int k = 1; k < 10; k++) {
            if (mixed[k] > top) top = mixed[k], guess = k;
            if (equal[k] > top_equal) top_equal = equal[k];
        }
        double sum = 0, sum_equal = 0;
        for (int k = 0; k < 10; k++) sum += exp(mixed[k] - top), sum_equal += exp(equal[k] - top_equal);
        loss += top + log(sum) - mixed[label];
        loss_equal += top_equal + log(sum_equal) - equal[label];
        correct += guess == label;
    }
    loss /= tests.count, loss_equal /= tests.count;
    printf("TTA rebuilt: loss %.6f (the engine %.6f, relative difference %.2g; with equal weights %.6f), %d of %d right "
           "(the engine %d)\n", loss, e.loss, fabs(loss - e.loss) / e.loss, loss_equal, correct, tests.count, e.correct);
    /* measured: the two losses agree to 6.7e-9 (a batch of 1 against a batch of 16: summation order only) */
    CHECK(fabs(loss - e.loss) <= 1e-5 * e.loss && correct == e.correct, "TTA rebuilt: loss %.7g, %d right; the engine %.7g, %d",
          loss, correct, e.loss, e.correct);
    CHECK(differing == 0, "the exported model's probabilities differ from the session's for %d of %d views", differing,
          6 * SESSION_VIEWS);
    CHECK(q4_session_end_epoch(s, &report) == Q4_ERR_STATE, "an epoch ended twice");
    q4_model_destroy(model);
    free(bytes);
    q4_session_destroy(s);
}

int main(void) {
    test_schedules();
    test_sgd(q4_kernels_reference());
    q4_kernels fast;
    q4_kernels_init(&fast, 0);
    test_sgd(&fast);
    make_data();
    test_clips_off();
    test_decay_groups();
    test_shift_lr();
    test_freeze_bn_scale();
    test_bn_recalibrate();
    test_micro_batch();
    test_data_parallel();
    test_moving_average();
    test_lookahead();
    test_levels();
    test_augmentation();
    test_tta();
    test_evaluate_in_parts();
    test_fast_schedule();
    return test_finish("test_training");
}
