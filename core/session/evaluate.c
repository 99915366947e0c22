/* evaluate.c - one pass of a model over a test set: accuracy, mean loss, per-class counts,
 * the confusion matrix and the first predictions. Shared by training sessions and exported
 * models; the weights are used as they are (callers quantize first where needed). */
#include <math.h>
#include <string.h>

#include "../data/batch.h"
#include "session.h"

q4_status q4_evaluate_model(q4_vgg *m, const q4_dataset *test, q4_evaluation *e, int *confusion, uint8_t *labels,
                            uint8_t *batch_predictions, uint8_t *predictions, int n_predictions) {
    int classes = m->num_classes, batch = m->batch_capacity;
    memset(e, 0, sizeof *e);
    memset(confusion, 0, (size_t)classes * classes * sizeof(int));
    e->num_classes = classes;
    e->confusion = confusion;
    int order[1024];
    double loss_sum = 0.0;
    for (int first = 0; first < test->count; first += batch) {
        int n = test->count - first < batch ? test->count - first : batch;
        for (int i = 0; i < n; i++) order[i] = first + i;
        q4_make_batch(m->input, labels, test, order, n, 0, 0, 0, 0);
        q4_vgg_forward(m, n, 0, 0, 0);
        int correct = 0;
        double loss = q4_vgg_loss(m, n, labels, &correct, batch_predictions);
        if (!isfinite(loss)) return Q4_ERR_NUMERIC;
        loss_sum += loss * n;
        e->correct += correct;
        for (int i = 0; i < n; i++) {
            e->class_total[labels[i]]++;
            if (batch_predictions[i] == labels[i]) e->class_correct[labels[i]]++;
            confusion[labels[i] * classes + batch_predictions[i]]++;
            if (predictions && first + i < n_predictions) predictions[first + i] = batch_predictions[i];
        }
    }
    e->count = test->count;
    e->accuracy = test->count ? (double)e->correct / test->count : 0.0;
    e->loss = test->count ? loss_sum / test->count : 0.0;
    return Q4_OK;
}
