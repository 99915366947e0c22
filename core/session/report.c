/* report.c - what a session tells its front ends, as JSON: the progress after a step, the
 * report at the end of an epoch (the run-log line of the CLI and the page's epoch message are
 * the same text), the profile and what a checkpoint holds. Each figure is named here once;
 * front ends read them by name. */
#include <string.h>

#include "../util/json.h"
#include "session.h"

static void progress_fields(q4_json *j, const q4_progress *p) {
    q4_json_int(j, "epoch", p->epoch);
    q4_json_int(j, "step_in_epoch", p->step_in_epoch);
    q4_json_int(j, "steps_per_epoch", p->steps_per_epoch);
    q4_json_int(j, "global_step", p->global_step);
    q4_json_int(j, "epoch_done", p->epoch_done);
    q4_json_number(j, "last_loss", p->last_loss);
    q4_json_number(j, "epoch_loss", p->epoch_loss);
    q4_json_number(j, "epoch_accuracy", p->epoch_accuracy);
    q4_json_number(j, "learning_rate", p->learning_rate);
    q4_json_int(j, "images_seen", p->images_seen);
    q4_json_number(j, "epoch_seconds", p->epoch_seconds);
    q4_json_number(j, "images_per_second", p->images_per_second);
    q4_json_number(j, "best_accuracy", p->best_accuracy);
    q4_json_int(j, "best_epoch", p->best_epoch);
}

size_t q4_progress_json(const q4_progress *p, char *out, size_t size) {
    q4_json j;
    q4_json_init(&j, out, size);
    q4_json_open(&j, NULL, '{');
    progress_fields(&j, p);
    q4_json_close(&j);
    return q4_json_finish(&j);
}

static void profile_fields(q4_json *j, const q4_profile *p) {
    q4_json_int(j, "steps", p->steps);
    q4_json_int(j, "images", p->images);
    q4_json_number(j, "flops_per_image", p->flops_per_image_total);
    q4_json_number(j, "forward_flops_per_image", p->forward_flops_per_image);
    q4_json_open(j, "phases", '[');
    for (int i = 0; i < p->phases; i++) {
        q4_json_open(j, NULL, '{');
        q4_json_string(j, "name", p->names[i]);
        q4_json_number(j, "seconds", p->seconds[i]);
        q4_json_number(j, "flops_per_image", p->flops_per_image[i]);
        q4_json_close(j);
    }
    q4_json_close(j);
}

size_t q4_profile_json(const q4_profile *p, char *out, size_t size) {
    q4_json j;
    q4_json_init(&j, out, size);
    q4_json_open(&j, NULL, '{');
    profile_fields(&j, p);
    q4_json_close(&j);
    return q4_json_finish(&j);
}

size_t q4_epoch_report_json(const q4_epoch_report *r, int detail, char *out, size_t size) {
    const q4_evaluation *e = &r->test;
    q4_json j;
    q4_json_init(&j, out, size);
    q4_json_open(&j, NULL, '{');
    q4_json_int(&j, "epoch", r->epoch);
    q4_json_int(&j, "epochs", r->epochs);
    q4_json_int(&j, "step", r->global_step);
    q4_json_number(&j, "loss", r->train_loss);
    q4_json_number(&j, "train_accuracy", r->train_accuracy);
    q4_json_number(&j, "test_accuracy", e->accuracy);
    q4_json_number(&j, "test_loss", e->loss);
    if (r->tta_accuracy >= 0) q4_json_number(&j, "tta_accuracy", r->tta_accuracy);
    else q4_json_raw(&j, "tta_accuracy", "null");
    q4_json_int(&j, "test_count", e->count);
    q4_json_int(&j, "test_correct", e->correct);
    q4_json_number(&j, "best_accuracy", r->best_accuracy);
    q4_json_int(&j, "best_epoch", r->best_epoch);
    q4_json_number(&j, "learning_rate", r->learning_rate);
    q4_json_int(&j, "levels_min", r->levels_min);
    q4_json_int(&j, "levels_max", r->levels_max);
    q4_json_number(&j, "levels_mean", r->levels_mean);
    int levels[Q4_NUM_QUANT_LAYERS];
    for (int i = 0; i < Q4_NUM_QUANT_LAYERS; i++) levels[i] = r->layers[i].unique_levels;
    q4_json_ints(&j, "levels", levels, Q4_NUM_QUANT_LAYERS);
    q4_json_number(&j, "images_per_second", r->images_per_second);
    q4_json_number(&j, "train_seconds", r->train_seconds);
    q4_json_number(&j, "eval_seconds", r->eval_seconds);
    q4_json_number(&j, "elapsed_seconds", r->elapsed_seconds);
    q4_json_ints(&j, "class_total", e->class_total, e->num_classes);
    q4_json_ints(&j, "class_correct", e->class_correct, e->num_classes);
    q4_json_open(&j, "layers", '[');
    for (int i = 0; i < Q4_NUM_QUANT_LAYERS; i++) {
        const q4_layer_stats *l = &r->layers[i];
        q4_json_open(&j, NULL, '{');
        q4_json_string(&j, "name", l->name);
        q4_json_int(&j, "rows", l->rows);
        q4_json_int(&j, "cols", l->cols);
        q4_json_number(&j, "scale", l->scale);
        q4_json_int(&j, "levels", l->levels);
        q4_json_int(&j, "unique_levels", l->unique_levels);
        q4_json_ints(&j, "histogram", l->histogram, l->levels);
        q4_json_close(&j);
    }
    q4_json_close(&j);
    if (detail) {
        q4_json_ints(&j, "confusion", e->confusion, e->num_classes * e->num_classes);
        int predictions[Q4_REPORT_PREDICTIONS];
        for (int i = 0; i < r->n_predictions; i++) predictions[i] = r->predictions[i];
        q4_json_ints(&j, "predictions", predictions, r->n_predictions);
        q4_json_open(&j, "profile", '{');
        profile_fields(&j, &r->profile);
        q4_json_close(&j);
    }
    q4_json_close(&j);
    return q4_json_finish(&j);
}

size_t q4_checkpoint_info_json(const q4_checkpoint_info *info, char *out, size_t size) {
    char config[8192];
    q4_config_json(&info->config, config, sizeof config);
    q4_json j;
    q4_json_init(&j, out, size);
    q4_json_open(&j, NULL, '{');
    q4_json_int(&j, "version", info->version);
    q4_json_raw(&j, "config", config);
    q4_json_int(&j, "train_count", info->train_count);
    q4_json_int(&j, "test_count", info->test_count);
    q4_json_int(&j, "epoch", info->epoch);
    q4_json_int(&j, "step_in_epoch", info->step_in_epoch);
    q4_json_int(&j, "global_step", info->global_step);
    q4_json_number(&j, "best_accuracy", info->best_accuracy);
    q4_json_int(&j, "best_epoch", info->best_epoch);
    q4_json_close(&j);
    return q4_json_finish(&j);
}
