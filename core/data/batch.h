/* batch.h - from uint8 images to a normalized float batch: the epoch's shuffle, the
 * training augmentation (zero-pad 4, random 32x32 crop, horizontal flip) and the
 * per-channel normalization, written channel-major [3][n][32][32] for the model. */
#ifndef Q4_BATCH_H
#define Q4_BATCH_H

#include <stdint.h>

#include "../include/q4.h"

extern const float q4_norm_mean[3]; /* 0.4914, 0.4822, 0.4465 */
extern const float q4_norm_std[3];  /* 0.2023, 0.1994, 0.2010 */

/* order[i] = image index at position i of epoch `epoch` (Fisher-Yates on counter draws) */
void q4_epoch_order(int *order, int count, uint64_t seed, int epoch);

/* Builds n images order[0..n) of set into x ([3][n][32][32]) and labels. augment: crop and
 * flip drawn from (seed, epoch, first_position + i). */
void q4_make_batch(float *x, uint8_t *labels, const q4_dataset *set, const int *order, int n, int augment,
                   uint64_t seed, int epoch, long first_position);

#endif
