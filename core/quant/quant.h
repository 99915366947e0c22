/* quant.h - the quantizer's rules outside the kernels, each written once: the per-tensor
 * scale, the level a quantized weight stands for, and the packing of levels into bytes for
 * exported models. The kernels' `quantize` applies the same rule to whole tensors. */
#ifndef Q4_QUANT_H
#define Q4_QUANT_H

#include <stddef.h>
#include <stdint.h>

/* s = (max|W| + 1e-8) / max_level, in float as PyTorch computes it (PAPER.md) */
float q4_quant_scale(float max_abs, int max_level);

/* The integer level of a quantized weight q = level * scale, clamped to +-max_level. */
int q4_quant_level(float quantized, float scale, int max_level);

/* Levels as `bits`-bit two's complement numbers (2..8 bits), packed into a little-endian bit
 * stream: level i occupies bits [i * bits, (i + 1) * bits); the last byte is padded with zeros.
 * At 4 bits: two per byte, low nibble first. bytes: (count * bits + 7) / 8. */
size_t q4_pack_levels_size(long count, int bits);
void q4_pack_levels(uint8_t *out, const float *quantized, long count, float scale, int bits);
/* The reverse into quantized weights; returns the index of the first level outside
 * +-(2^(bits-1) - 1) (a file the quantizer cannot have written), or -1. */
long q4_unpack_levels(float *quantized, const uint8_t *in, long count, float scale, int bits);

#endif
