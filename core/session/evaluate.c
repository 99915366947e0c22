/* evaluate.c - one pass of a model over a test set: accuracy, mean loss, per-class counts,
 * the confusion matrix and the first predictions, plainly or with test-time augmentation
 * (the logits of several views of each image averaged). Shared by training sessions and
 * exported models; the weights are used as they are (callers quantize first where needed). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../data/batch.h"
#include "../util/exactmath.h"
#include "session.h"

typedef struct view {
    int dx, dy, flip;
    float weight;
} view;

/* Plain; flips; flips and one-pixel shifts up-left and down-right (the plain pair weighs half,
 * as in airbench's test-time augmentation). The weights of each set sum to 1. */
static const view plain_views[] = {{0, 0, 0, 1.0f}};
static const view flip_views[] = {{0, 0, 0, 0.5f}, {0, 0, 1, 0.5f}};
static const view translate_views[] = {{0, 0, 0, 0.25f},   {0, 0, 1, 0.25f},   {-1, -1, 0, 0.125f},
                                       {-1, -1, 1, 0.125f}, {1, 1, 0, 0.125f}, {1, 1, 1, 0.125f}};

/* The logits of batch `first` (n images) of the test set, its views averaged, into *logits;
 * labels and the batch's predictions; returns its mean loss. */
static double evaluate_batch(q4_vgg *m, const q4_dataset *test, const view *views, int n_views, int first, int n,
                             uint8_t *labels, uint8_t *batch_predictions) {
    int classes = m->num_classes, order[1024];
    float *averaged = m->dlogits; /* no backward pass follows an evaluation */
    for (int i = 0; i < n; i++) order[i] = first + i;
    const float *logits = m->logits;
    if (n_views > 1) memset(averaged, 0, (size_t)classes * n * sizeof(float));
    for (int v = 0; v < n_views; v++) {
        q4_make_view_batch(m->input, labels, test, order, n, views[v].dx, views[v].dy, views[v].flip);
        q4_vgg_forward(m, n, 0, 0, 0);
        if (n_views > 1) {
            for (long k = 0; k < (long)classes * n; k++) averaged[k] += views[v].weight * m->logits[k];
            logits = averaged;
        }
    }
    return q4_softmax_cross_entropy(NULL, logits, labels, classes, n, 0, 0.0f, m->exact, NULL, batch_predictions);
}

/* adds a batch's results to the evaluation, in batch order */
static void count_batch(q4_evaluation *e, int *confusion, int classes, int first, int n, double loss, double *loss_sum,
                        const uint8_t *labels, const uint8_t *batch_predictions, uint8_t *predictions, int n_predictions) {
    *loss_sum += loss * n;
    for (int i = 0; i < n; i++) {
        e->class_total[labels[i]]++;
        if (batch_predictions[i] == labels[i]) {
            e->class_correct[labels[i]]++;
            e->correct++;
        }
        confusion[labels[i] * classes + batch_predictions[i]]++;
        if (predictions && first + i < n_predictions) predictions[first + i] = batch_predictions[i];
    }
}

static const view *views_of(int tta, int *n_views) {
    *n_views = tta == Q4_TTA_FLIP ? 2 : tta == Q4_TTA_FLIP_TRANSLATE ? 6 : 1;
    return tta == Q4_TTA_FLIP ? flip_views : tta == Q4_TTA_FLIP_TRANSLATE ? translate_views : plain_views;
}

static void evaluation_begin(q4_vgg *m, q4_evaluation *e, int *confusion) {
    int classes = m->num_classes;
    memset(e, 0, sizeof *e);
    memset(confusion, 0, (size_t)classes * classes * sizeof(int));
    e->num_classes = classes;
    e->confusion = confusion;
}

static void evaluation_end(const q4_dataset *test, q4_evaluation *e, double loss_sum) {
    e->count = test->count;
    e->accuracy = test->count ? (double)e->correct / test->count : 0.0;
    e->loss = test->count ? loss_sum / test->count : 0.0;
}

q4_status q4_evaluate_begin(q4_vgg *m, q4_evaluation_run *run, const q4_dataset *test, int tta, q4_evaluation *e,
                            int *confusion) {
    if (m->combiner && m->combiner->processes > 1) return Q4_ERR_STATE; /* one process only */
    memset(run, 0, sizeof *run);
    run->test = *test;
    run->tta = tta;
    run->batches = (test->count + m->batch_capacity - 1) / m->batch_capacity;
    evaluation_begin(m, e, confusion);
    if (run->batches == 0) evaluation_end(test, e, 0.0);
    return Q4_OK;
}

q4_status q4_evaluate_more(q4_vgg *m, q4_evaluation_run *run, int max_batches, q4_evaluation *e, int *confusion,
                           uint8_t *labels, uint8_t *batch_predictions, uint8_t *predictions, int n_predictions) {
    int n_views, batch = m->batch_capacity;
    const view *views = views_of(run->tta, &n_views);
    const q4_dataset *test = &run->test;
    for (; run->next < run->batches && max_batches > 0; run->next++, max_batches--) {
        int first = run->next * batch, n = test->count - first < batch ? test->count - first : batch;
        double loss = evaluate_batch(m, test, views, n_views, first, n, labels, batch_predictions);
        if (!isfinite(loss)) return Q4_ERR_NUMERIC;
        count_batch(e, confusion, m->num_classes, first, n, loss, &run->loss_sum, labels, batch_predictions, predictions,
                    n_predictions);
        run->evaluated = first + n;
        if (run->next + 1 == run->batches) evaluation_end(test, e, run->loss_sum);
    }
    return Q4_OK;
}

q4_status q4_evaluate_model(q4_vgg *m, const q4_dataset *test, int tta, q4_evaluation *e, int *confusion,
                            uint8_t *labels, uint8_t *batch_predictions, uint8_t *predictions, int n_predictions) {
    const q4_combiner *cb = m->combiner;
    if (!cb || cb->processes == 1) {
        q4_evaluation_run run;
        q4_status st = q4_evaluate_begin(m, &run, test, tta, e, confusion);
        return st ? st : q4_evaluate_more(m, &run, run.batches, e, confusion, labels, batch_predictions, predictions, n_predictions);
    }
    /* data-parallel: each process evaluates its run of batches; their rows (loss, predictions) gathered */
    int n_views, classes = m->num_classes, batch = m->batch_capacity;
    const view *views = views_of(tta, &n_views);
    evaluation_begin(m, e, confusion);
    double loss_sum = 0.0;
    int batches = (test->count + batch - 1) / batch;
    long row = 1 + batch;
    double *rows = malloc((size_t)batches * (size_t)row * sizeof(double));
    if (!rows) return Q4_ERR_NOMEM;
    int mine, held;
    q4_micro_share(batches, cb->processes, cb->rank, &mine, &held);
    for (int b = mine; b < mine + held; b++) {
        int first = b * batch, n = test->count - first < batch ? test->count - first : batch;
        double *r = rows + (long)b * row;
        r[0] = evaluate_batch(m, test, views, n_views, first, n, labels, batch_predictions);
        for (int i = 0; i < n; i++) r[1 + i] = batch_predictions[i];
    }
    cb->gather(cb->context, rows, row, batches);
    q4_status st = Q4_OK;
    for (int b = 0; b < batches && !st; b++) {
        int first = b * batch, n = test->count - first < batch ? test->count - first : batch;
        const double *r = rows + (long)b * row;
        if (!isfinite(r[0])) st = Q4_ERR_NUMERIC;
        for (int i = 0; i < n; i++) {
            labels[i] = (uint8_t)q4_dataset_label(test, first + i);
            batch_predictions[i] = (uint8_t)r[1 + i];
        }
        count_batch(e, confusion, classes, first, n, r[0], &loss_sum, labels, batch_predictions, predictions,
                    n_predictions);
    }
    free(rows);
    if (st) return st;
    evaluation_end(test, e, loss_sum);
    return Q4_OK;
}

q4_status q4_classify_image(q4_vgg *m, const uint8_t image[Q4_IMAGE_BYTES], double probabilities[Q4_MAX_CLASSES]) {
    uint8_t label = 0, label_out;
    q4_dataset one = {1, m->num_classes, 1, {{1, (uint8_t *)image, &label, NULL}}};
    int order = 0;
    q4_make_view_batch(m->input, &label_out, &one, &order, 1, 0, 0, 0);
    q4_vgg_forward(m, 1, 0, 0, 0);
    int k = m->num_classes;
    double best = m->logits[0], sum = 0.0;
    for (int c = 1; c < k; c++) best = m->logits[c] > best ? m->logits[c] : best;
    for (int c = 0; c < k; c++) {
        double d = (double)m->logits[c] - best;
        probabilities[c] = m->exact ? q4_exact_exp(d) : exp(d);
        sum += probabilities[c];
    }
    if (!(sum > 0) || !isfinite(sum)) return Q4_ERR_NUMERIC;
    for (int c = 0; c < k; c++) probabilities[c] /= sum;
    return Q4_OK;
}

q4_status q4_recalibrate_bn(q4_vgg *m, const q4_dataset *set, int batch) {
    if (batch < 2 || batch > m->batch_capacity || set->count < 1) return Q4_ERR_ARGUMENT;
    /* every process of a data-parallel run holds the same weights and reads the same images: each
     * computes the same statistics alone */
    int *order = malloc((size_t)batch * sizeof(int));
    uint8_t *labels = malloc((size_t)batch);
    if (!order || !labels) {
        free(order);
        free(labels);
        return Q4_ERR_NOMEM;
    }
    const q4_combiner *combiner = m->combiner;
    m->combiner = NULL;
    double momentum[Q4_NUM_BN];
    for (int b = 0; b < Q4_NUM_BN; b++) momentum[b] = m->bn[b].momentum;
    for (int first = 0, k = 0; first < set->count; first += batch, k++) {
        int n = set->count - first < batch ? set->count - first : batch;
        if (n < 2) break; /* one image has no variance to give */
        for (int i = 0; i < n; i++) order[i] = first + i;
        for (int b = 0; b < Q4_NUM_BN; b++) m->bn[b].momentum = 1.0 / (double)(k + 1); /* the plain average */
        q4_make_view_batch(m->input, labels, set, order, n, 0, 0, 0);
        q4_vgg_forward(m, n, 1, 0, 0);
    }
    for (int b = 0; b < Q4_NUM_BN; b++) m->bn[b].momentum = momentum[b];
    m->combiner = combiner;
    free(order);
    free(labels);
    for (int b = 0; b < Q4_NUM_BN; b++)
        for (int c = 0; c < m->bn[b].channels; c++)
            if (!isfinite(m->bn[b].running_mean[c]) || !isfinite(m->bn[b].running_var[c])) return Q4_ERR_NUMERIC;
    return Q4_OK;
}
