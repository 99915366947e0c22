/* util.h - small shared helpers of the engine: error filling, CRC-32, the counter-based
 * random numbers and aligned allocation. No I/O and no global state here. */
#ifndef Q4_UTIL_H
#define Q4_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "../include/q4.h"

#if defined(__GNUC__)
#define Q4_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define Q4_PRINTF(f, a)
#endif

/* Fills *err (if not NULL) with status and a formatted message; returns status. */
q4_status q4_fail(q4_error *err, q4_status status, const char *format, ...) Q4_PRINTF(3, 4);
void q4_error_clear(q4_error *err);

/* CRC-32 (IEEE 802.3, as gzip): start with crc = 0. */
uint32_t q4_crc32(uint32_t crc, const void *data, size_t size);

/* Whether a checkpoint's or model's stored CRC-32 matches. Fuzzing builds (-DQ4_FUZZING)
 * accept any, so that mutated inputs reach the checks behind it; nothing else differs. */
static inline int q4_checksum_matches(uint32_t computed, uint32_t stored) {
#ifdef Q4_FUZZING
    (void)computed, (void)stored;
    return 1;
#else
    return computed == stored;
#endif
}

/* 64-byte aligned allocation (NULL on failure, never aborts); free with q4_free_aligned. */
void *q4_alloc_aligned(size_t size);
void q4_free_aligned(void *pointer);

/* ---- Random numbers: counter based, so any draw depends only on (seed, stream, a, b)
 * and never on the order of calls or the thread that makes it. */
enum {
    Q4_STREAM_INIT = 1,     /* a = parameter tensor index, b = element index */
    Q4_STREAM_SHUFFLE = 2,  /* a = epoch, b = draw index */
    Q4_STREAM_AUGMENT = 3,  /* a = epoch, b = position in the epoch */
    Q4_STREAM_DROPOUT = 4,  /* a = global step, b = element index */
    Q4_STREAM_FLIP = 5,     /* a = image index (alternating flips), b = 0 */
    Q4_STREAM_CUTOUT = 6    /* a = epoch, b = position in the epoch */
};

static inline uint64_t q4_mix64(uint64_t z) {
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline uint64_t q4_random(uint64_t seed, uint64_t stream, uint64_t a, uint64_t b) {
    return q4_mix64(q4_mix64(q4_mix64(seed ^ (stream << 56)) ^ a) ^ b);
}

/* Uniform in [0, 1) with 53 random bits. */
static inline double q4_random_unit(uint64_t bits) { return (double)(bits >> 11) * 0x1.0p-53; }

/* Uniform integer in [0, n) without modulo bias worth speaking of (n < 2^32). */
static inline uint32_t q4_random_below(uint64_t bits, uint32_t n) {
    return (uint32_t)(((bits >> 32) * (uint64_t)n) >> 32);
}

/* Two independent standard normal draws (Box-Muller) for elements 2*pair and 2*pair+1;
 * exact: through exactmath.h's log, sin and cos (the same bits in every build). */
void q4_random_normal_pair(uint64_t seed, uint64_t stream, uint64_t a, uint64_t pair, int exact, double out[2]);

/* Hands n floats to sink as little-endian bytes, in pieces (checkpoints, state hashes). */
void q4_floats_to_le(const float *x, long long n, void (*sink)(void *context, const uint8_t *bytes, size_t size),
                     void *context);

/* Little-endian byte I/O for the file formats. */
static inline void q4_put_u32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}
static inline uint32_t q4_get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline void q4_put_u64(uint8_t *p, uint64_t v) {
    q4_put_u32(p, (uint32_t)v); q4_put_u32(p + 4, (uint32_t)(v >> 32));
}
static inline uint64_t q4_get_u64(const uint8_t *p) {
    return (uint64_t)q4_get_u32(p) | (uint64_t)q4_get_u32(p + 4) << 32;
}

#endif
