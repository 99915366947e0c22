/* batch.h - from uint8 images to a normalized float batch: the epoch's shuffle, the
 * training augmentation (zero-pad 4, random 32x32 crop, horizontal flip, optional cutout),
 * fixed views for test-time augmentation, and the per-channel normalization, written
 * channel-major [3][n][32][32] for the model. */
#ifndef Q4_BATCH_H
#define Q4_BATCH_H

#include <stdint.h>

#include "../include/q4.h"

extern const float q4_norm_mean[3]; /* 0.4914, 0.4822, 0.4465 */
extern const float q4_norm_std[3];  /* 0.2023, 0.1994, 0.2010 */

/* order[i] = image index at position i of epoch `epoch` (Fisher-Yates on counter draws) */
void q4_epoch_order(int *order, int count, uint64_t seed, int epoch);

/* How training images are augmented; every draw is keyed by (seed, epoch, position in the
 * epoch) or, for alternating flips, by (seed, image). */
typedef struct q4_augmentation {
    int enabled;     /* 0: images as they are */
    int pad;         /* crops: shifts of -pad..pad in each direction (the paper's 4) */
    int flip;        /* Q4_FLIP_RANDOM or Q4_FLIP_ALTERNATE */
    int cutout;      /* side of the square set to 0 after normalization (the mean); 0: none */
    uint64_t seed;
} q4_augmentation;

/* Builds n training images order[0..n) of set into x ([3][n][32][32]) and labels: random crop
 * (zero padding), flip, cutout as `a` says, for positions first_position.. of epoch `epoch`. */
void q4_make_batch(float *x, uint8_t *labels, const q4_dataset *set, const int *order, int n, const q4_augmentation *a,
                   int epoch, long first_position);

/* The same images, each shifted by (dx, dy) (zero padding) and flipped if flip: one view of
 * test-time augmentation (0, 0, 0 is the plain image). */
void q4_make_view_batch(float *x, uint8_t *labels, const q4_dataset *set, const int *order, int n, int dx, int dy,
                        int flip);

#endif
