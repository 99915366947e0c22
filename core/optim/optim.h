/* optim.h - the optimizer step and the learning-rate schedules. The paper's "quantization-
 * aware AdamW": global-norm gradient clipping, decoupled AdamW on every parameter, then
 * 3*tanh(W/3) soft clipping of every weight tensor, with a per-epoch cosine schedule; and,
 * as settings beside it, SGD with (Nesterov) momentum, a per-step one-cycle schedule, and
 * clipping switched off. State (moments, step count) belongs to the caller. */
#ifndef Q4_OPTIM_H
#define Q4_OPTIM_H

#include "../model/vgg.h"

/* lr(e) = lr0 * (1 + cos(pi * e / t_max)) / 2: PyTorch's CosineAnnealingLR stepped per
 * epoch, continued past t_max as the paper's runs do. */
double q4_cosine_lr(double base_lr, int epoch, int t_max);

/* The learning rate of step `step_in_epoch` (0-based) of epoch `epoch` under the configured
 * schedule. onecycle over T = epochs * steps_per_epoch steps with W = round(warmup * T):
 * lr0 * (t + 1) / W for t < W, then lr0 * (T - t) / (T - W), never below 0. */
double q4_learning_rate(const q4_config *config, int epoch, int step_in_epoch, int steps_per_epoch);

/* One optimizer step on model->params from model->grads (which are scaled in place by the
 * clipping). step is the 1-based step count (AdamW's bias correction). moment1 is SGD's
 * momentum buffer; SGD leaves moment2 alone. Refuses (Q4_ERR_NUMERIC, nothing changed) when
 * the gradient norm is not finite. grad_norm receives the norm before clipping. */
q4_status q4_optimizer_step(q4_vgg *model, float *moment1, float *moment2, long long step, double lr,
                            const q4_config *config, double *grad_norm);

#endif
