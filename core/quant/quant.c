/* quant.c - the quantizer's scale, level and packing rules (quant.h). */
#include "quant.h"

#include <math.h>

float q4_quant_scale(float max_abs, int max_level) { return (max_abs + 1e-8f) / (float)max_level; }

int q4_quant_level(float quantized, float scale, int max_level) {
    int level = (int)lrintf(quantized / scale);
    return level < -max_level ? -max_level : (level > max_level ? max_level : level);
}

size_t q4_pack_levels_size(long count) { return (size_t)(count + 1) / 2; }

void q4_pack_levels(uint8_t *out, const float *quantized, long count, float scale, int max_level) {
    for (long i = 0; i < count; i += 2) {
        int lo = q4_quant_level(quantized[i], scale, max_level);
        int hi = i + 1 < count ? q4_quant_level(quantized[i + 1], scale, max_level) : 0;
        *out++ = (uint8_t)((lo & 15) | (hi & 15) << 4);
    }
}

static int nibble_level(int v) { return v >= 8 ? v - 16 : v; }

long q4_unpack_levels(float *quantized, const uint8_t *in, long count, float scale, int max_level) {
    for (long i = 0; i < count; i += 2, in++) {
        int lo = nibble_level(*in & 15), hi = nibble_level(*in >> 4);
        if (lo < -max_level || lo > max_level) return i;
        if (i + 1 < count && (hi < -max_level || hi > max_level)) return i + 1;
        quantized[i] = (float)lo * scale;
        if (i + 1 < count) quantized[i + 1] = (float)hi * scale;
    }
    return -1;
}
