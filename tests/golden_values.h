/* golden_values.h - the integer hash and value formulas that scripts/make_golden.py uses to
 * build weights, BN state, inputs, labels and dropout masks, reproduced bit for bit, so the
 * golden fixture needs to hold only PyTorch's outputs. */
#ifndef Q4_GOLDEN_VALUES_H
#define Q4_GOLDEN_VALUES_H

#include <math.h>
#include <stdint.h>

static inline uint32_t golden_hash(uint32_t stream, uint32_t index) {
    uint32_t h = index * 2654435761u + stream * 97531u + 12345u;
    h ^= h >> 15;
    h *= 2246822519u;
    h ^= h >> 13;
    h *= 3266489917u;
    h ^= h >> 16;
    return h;
}

/* uniform with unit variance, in double */
static inline double golden_unit(uint32_t stream, uint32_t index) {
    return ((double)(golden_hash(stream, index) >> 8) / 16777216.0 - 0.5) * (2.0 * sqrt(3.0));
}

#endif
