/* optim.h - the paper's "quantization-aware AdamW" step and its learning-rate schedule:
 * global-norm gradient clipping, decoupled AdamW on every parameter, then 3*tanh(W/3)
 * soft clipping of every weight tensor. State (moments, step count) belongs to the caller. */
#ifndef Q4_OPTIM_H
#define Q4_OPTIM_H

#include "../model/vgg.h"

/* lr(e) = lr0 * (1 + cos(pi * e / t_max)) / 2: PyTorch's CosineAnnealingLR stepped per
 * epoch, continued past t_max as the paper's runs do. */
double q4_cosine_lr(double base_lr, int epoch, int t_max);

/* One optimizer step on model->params from model->grads (which are scaled in place by the
 * clipping). step is the 1-based AdamW step count. Refuses (Q4_ERR_NUMERIC, nothing
 * changed) when the gradient norm is not finite. grad_norm receives the norm before clipping. */
q4_status q4_optimizer_step(q4_vgg *model, float *moment1, float *moment2, long long step, double lr,
                            const q4_config *config, double *grad_norm);

#endif
