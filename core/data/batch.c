/* batch.c - shuffling, augmentation and normalization of one batch. Every random choice
 * is a counter draw keyed by (seed, epoch, position) or (seed, image), so a resumed run sees
 * exactly the batches it would have seen, whatever the thread count. */
#include "batch.h"

#include "../util/util.h"

const float q4_norm_mean[3] = {0.4914f, 0.4822f, 0.4465f};
const float q4_norm_std[3] = {0.2023f, 0.1994f, 0.2010f};

void q4_epoch_order(int *order, int count, uint64_t seed, int epoch) {
    for (int i = 0; i < count; i++) order[i] = i;
    for (int i = count - 1; i > 0; i--) {
        uint32_t j = q4_random_below(q4_random(seed, Q4_STREAM_SHUFFLE, (uint64_t)epoch, (uint64_t)i), (uint32_t)i + 1);
        int t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

/* (v / 255 - mean) / std in float, as PyTorch evaluates it, for v = 0..255 */
static void normalization_table(float table[3][256]) {
    for (int c = 0; c < 3; c++)
        for (int v = 0; v < 256; v++) table[c][v] = ((float)v / 255.0f - q4_norm_mean[c]) / q4_norm_std[c];
}

/* image i of the batch: the 32x32 window at (dx, dy) of the zero-padded image, mirrored if flip */
static void place_image(float *x, int n, int i, const uint8_t *img, int dx, int dy, int flip, float table[3][256]) {
    const long plane = 1024;
    for (int c = 0; c < 3; c++) {
        float *out = x + ((long)c * n + i) * plane;
        const uint8_t *src = img + c * plane;
        float zero = table[c][0];
        for (int y = 0; y < 32; y++) {
            int sy = y + dy;
            for (int xo = 0; xo < 32; xo++) {
                /* the flip mirrors the cropped window */
                int sx = (flip ? 31 - xo : xo) + dx;
                out[y * 32 + xo] = (sy < 0 || sy >= 32 || sx < 0 || sx >= 32) ? zero : table[c][src[sy * 32 + sx]];
            }
        }
    }
}

void q4_make_batch(float *x, uint8_t *labels, const q4_dataset *set, const int *order, int n, const q4_augmentation *a,
                   int epoch, long first_position) {
    float table[3][256];
    normalization_table(table);
    for (int i = 0; i < n; i++) {
        const uint8_t *img = q4_dataset_image(set, order[i]);
        labels[i] = (uint8_t)q4_dataset_label(set, order[i]);
        int dx = 0, dy = 0, flip = 0;
        uint64_t position = (uint64_t)(first_position + i);
        if (a->enabled) {
            uint64_t r = q4_random(a->seed, Q4_STREAM_AUGMENT, (uint64_t)epoch, position);
            /* offsets 0..2*pad into the image padded by pad, i.e. shifts -pad..pad */
            uint32_t choices = (uint32_t)(2 * a->pad + 1);
            dx = (int)q4_random_below(r, choices) - a->pad;
            dy = (int)q4_random_below(q4_mix64(r), choices) - a->pad;
            flip = (int)(q4_mix64(r ^ 0x5bd1e995u) >> 63);
            if (a->flip == Q4_FLIP_ALTERNATE) /* the image's own first flip, then alternating */
                flip = (int)(q4_random(a->seed, Q4_STREAM_FLIP, (uint64_t)order[i], 0) >> 63) ^ (epoch & 1);
        }
        place_image(x, n, i, img, dx, dy, flip, table);
        if (a->enabled && a->cutout > 0) {
            /* a square centred anywhere in the image (clipped at its edges) set to 0: the mean */
            uint64_t r = q4_random(a->seed, Q4_STREAM_CUTOUT, (uint64_t)epoch, position);
            int cx = (int)q4_random_below(r, 32), cy = (int)q4_random_below(q4_mix64(r), 32);
            int x0 = cx - a->cutout / 2, y0 = cy - a->cutout / 2;
            for (int c = 0; c < 3; c++) {
                float *out = x + ((long)c * n + i) * 1024;
                for (int y = y0 < 0 ? 0 : y0; y < y0 + a->cutout && y < 32; y++)
                    for (int xo = x0 < 0 ? 0 : x0; xo < x0 + a->cutout && xo < 32; xo++) out[y * 32 + xo] = 0.0f;
            }
        }
    }
}

void q4_make_view_batch(float *x, uint8_t *labels, const q4_dataset *set, const int *order, int n, int dx, int dy,
                        int flip) {
    float table[3][256];
    normalization_table(table);
    for (int i = 0; i < n; i++) {
        labels[i] = (uint8_t)q4_dataset_label(set, order[i]);
        place_image(x, n, i, q4_dataset_image(set, order[i]), dx, dy, flip, table);
    }
}
