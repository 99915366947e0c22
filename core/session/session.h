/* session.h - the training session's private state, shared by session.c (the step loop and
 * the end of an epoch), evaluate.c (test-set passes), checkpoint.c (save/load), report.c
 * (JSON) and export.c (4-bit model files). */
#ifndef Q4_SESSION_INTERNAL_H
#define Q4_SESSION_INTERNAL_H

#include "../include/q4.h"
#include "../model/vgg.h"

struct q4_session {
    q4_config config;
    q4_vgg model;
    float *moments;        /* AdamW first and second moments: 2 x param_count, one allocation */
    q4_dataset train, test; /* borrowed views */
    uint64_t fingerprint;  /* of the training and test data, checked on resume */
    int *order;            /* the current epoch's order of training images */
    int order_epoch;       /* epoch `order` was drawn for, -1 if none */
    uint8_t *labels;       /* batch labels */
    uint8_t *predictions;  /* batch predictions */
    float *running_backup; /* BN running statistics before the step (restored on NaN); also
                              the live ones while the moving average stands in for them */
    int *confusion;        /* num_classes^2: the plain evaluation */
    int *tta_confusion;    /* num_classes^2: the evaluation with test-time augmentation */
    float *ema;            /* config.ema > 0: the moving average of params, running means and
                              variances (param_count + 2 x bn_total floats); config.lookahead > 0:
                              lookahead's slow copy of them, the same floats; else NULL */
    int averaged_in;       /* the moving average stands in the model: its parameters are the
                              first floats of ema, the live ones wait in live_params */
    float *live_params;

    /* position */
    int epoch;             /* epoch in progress */
    int step_in_epoch;     /* steps done in it */
    long long global_step; /* steps done in all; also AdamW's step count */
    int steps_per_epoch;
    /* this epoch so far */
    double epoch_loss_sum;
    long long epoch_correct, epoch_seen;
    float last_loss;
    double last_learning_rate;
    double epoch_seconds;   /* in training steps of this epoch, since the session was created or loaded */
    long long epoch_timed_images; /* images those steps trained */
    /* the last finished epoch, until q4_session_end_epoch reports it */
    q4_progress finished;
    int epoch_waiting;
    double best_accuracy;
    int best_epoch;        /* 1-based, 0 = none */
    double elapsed_seconds; /* training and evaluation since the session was created or loaded */

    long long profiled_steps, profiled_images; /* since the last profile reset */
    char error[512];
};

/* fingerprint of the datasets: counts, labels and a sample of pixels */
uint64_t q4_data_fingerprint(const q4_dataset *train, const q4_dataset *test);
/* steps in one epoch of count images: a final batch of a single image is skipped
 * (BatchNorm needs two values per channel, as PyTorch requires) */
int q4_steps_per_epoch(int count, int batch);
q4_status q4_session_fail(q4_session *s, q4_status status, const char *format, ...);

/* One pass over a test set with the model's current (quantized) weights, in batches of the
 * model's capacity, with test-time augmentation `tta` (Q4_TTA_*); confusion has classes^2
 * ints, labels and batch_predictions one batch. */
q4_status q4_evaluate_model(q4_vgg *model, const q4_dataset *test, int tta, q4_evaluation *evaluation, int *confusion,
                            uint8_t *labels, uint8_t *batch_predictions, uint8_t *predictions, int n_predictions);
/* The same pass in parts (one process only: Q4_ERR_STATE with a combiner of several): begin, then
 * q4_evaluate_more up to max_batches batches at a time, with the same evaluation and confusion each
 * time, until run->next == run->batches; then they hold exactly what q4_evaluate_model gives (its
 * batches, summed in its order). run->evaluated: the test images done so far. */
typedef struct q4_evaluation_run {
    q4_dataset test; /* a copy: the images it points to must stay */
    int tta, batches, next, evaluated;
    double loss_sum;
} q4_evaluation_run;
q4_status q4_evaluate_begin(q4_vgg *model, q4_evaluation_run *run, const q4_dataset *test, int tta,
                            q4_evaluation *evaluation, int *confusion);
q4_status q4_evaluate_more(q4_vgg *model, q4_evaluation_run *run, int max_batches, q4_evaluation *evaluation,
                           int *confusion, uint8_t *labels, uint8_t *batch_predictions, uint8_t *predictions,
                           int n_predictions);
/* The class probabilities (softmax of the logits) for one image, with the model's weights as
 * they are (callers quantize first where needed); Q4_ERR_NUMERIC when the outputs are not finite. */
/* BatchNorm recalibration: every BatchNorm's running mean and (unbiased) variance replaced by the
 * plain average of its batch statistics over `set`, in order, in batches of `batch` (2 to the
 * model's capacity; a last batch of one image left out), plain images (no augmentation), the
 * weights as they are: what PyTorch's torch.optim.swa_utils.update_bn does for averaged weights.
 * The weights, the BatchNorm scales and shifts and the momentum are left as they were. */
q4_status q4_recalibrate_bn(q4_vgg *model, const q4_dataset *set, int batch);
q4_status q4_classify_image(q4_vgg *model, const uint8_t image[Q4_IMAGE_BYTES], double probabilities[Q4_MAX_CLASSES]);

/* Whether the settings keep a second copy of the weights and BN statistics (ema or lookahead). */
int q4_config_keeps_copy(const q4_config *c);
/* Floats of the moving average or of lookahead's slow copy (weights, then BN means and
 * variances), 0 when both are off. */
long long q4_session_ema_floats(const q4_session *s);
/* Puts the moving average in place of the live weights and BN statistics (evaluation,
 * statistics and export use it), and back. Nothing happens when it is off. */
void q4_session_use_average(q4_session *s);
void q4_session_use_live(q4_session *s);

#endif
