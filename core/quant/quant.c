/* quant.c - the quantizer's scale, level and packing rules (quant.h). */
#include "quant.h"

#include <math.h>
#include <string.h>

float q4_quant_scale(float max_abs, int max_level) { return (max_abs + 1e-8f) / (float)max_level; }

int q4_quant_level(float quantized, float scale, int max_level) {
    int level = (int)lrintf(quantized / scale);
    return level < -max_level ? -max_level : (level > max_level ? max_level : level);
}

size_t q4_pack_levels_size(long count, int bits) { return ((size_t)count * (size_t)bits + 7) / 8; }

void q4_pack_levels(uint8_t *out, const float *quantized, long count, float scale, int bits) {
    int max_level = (1 << (bits - 1)) - 1;
    unsigned mask = (1u << bits) - 1;
    memset(out, 0, q4_pack_levels_size(count, bits));
    for (long i = 0; i < count; i++) {
        unsigned code = (unsigned)q4_quant_level(quantized[i], scale, max_level) & mask;
        size_t bit = (size_t)i * (size_t)bits;
        out[bit / 8] |= (uint8_t)(code << (bit % 8));
        if (bit % 8 + (size_t)bits > 8) out[bit / 8 + 1] |= (uint8_t)(code >> (8 - bit % 8));
    }
}

long q4_unpack_levels(float *quantized, const uint8_t *in, long count, float scale, int bits) {
    int max_level = (1 << (bits - 1)) - 1;
    unsigned mask = (1u << bits) - 1;
    for (long i = 0; i < count; i++) {
        size_t bit = (size_t)i * (size_t)bits;
        unsigned code = in[bit / 8] >> (bit % 8);
        if (bit % 8 + (size_t)bits > 8) code |= (unsigned)in[bit / 8 + 1] << (8 - bit % 8);
        code &= mask;
        int level = code > (unsigned)max_level ? (int)code - (int)(mask + 1) : (int)code; /* two's complement */
        if (level < -max_level) return i;
        quantized[i] = (float)level * scale;
    }
    return -1;
}
