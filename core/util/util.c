/* util.c - error filling, CRC-32, aligned allocation and normal draws shared by the
 * engine. Must stay free of I/O and global mutable state (the browser build shares it). */
#include "util.h"

#include "exactmath.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *q4_status_name(q4_status status) {
    switch (status) {
    case Q4_OK: return "ok";
    case Q4_ERR_ARGUMENT: return "invalid argument";
    case Q4_ERR_NOMEM: return "out of memory";
    case Q4_ERR_IO: return "input/output error";
    case Q4_ERR_FORMAT: return "bad format";
    case Q4_ERR_CHECKSUM: return "checksum mismatch";
    case Q4_ERR_VERSION: return "unsupported version";
    case Q4_ERR_NUMERIC: return "non-finite number";
    case Q4_ERR_STATE: return "invalid state";
    case Q4_ERR_MISMATCH: return "mismatch";
    }
    return "unknown status";
}

q4_status q4_fail(q4_error *err, q4_status status, const char *format, ...) {
    if (err) {
        va_list args;
        va_start(args, format);
        vsnprintf(err->message, sizeof err->message, format, args);
        va_end(args);
        err->status = status;
    }
    return status;
}

void q4_error_clear(q4_error *err) {
    if (err) {
        err->status = Q4_OK;
        err->message[0] = 0;
    }
}

static uint32_t crc_table[256];
static pthread_once_t crc_table_once = PTHREAD_ONCE_INIT;

static void crc_table_build(void) {
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
        crc_table[n] = c;
    }
}

uint32_t q4_crc32(uint32_t crc, const void *data, size_t size) {
    pthread_once(&crc_table_once, crc_table_build);
    const uint8_t *p = data;
    crc = ~crc;
    for (size_t i = 0; i < size; i++) crc = crc_table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

void *q4_alloc_aligned(size_t size) {
    if (size == 0) size = 64;
    size = (size + 63) & ~(size_t)63;
    return aligned_alloc(64, size);
}

void q4_free_aligned(void *pointer) { free(pointer); }

void q4_random_normal_pair(uint64_t seed, uint64_t stream, uint64_t a, uint64_t pair, int exact, double out[2]) {
    const double two_pi = 6.283185307179586476925286766559;
    double u1 = q4_random_unit(q4_random(seed, stream, a, 2 * pair));
    double u2 = q4_random_unit(q4_random(seed, stream, a, 2 * pair + 1));
    double r = sqrt(-2.0 * (exact ? q4_exact_log(1.0 - u1) : log(1.0 - u1)));
    out[0] = r * (exact ? q4_exact_cos(two_pi * u2) : cos(two_pi * u2));
    out[1] = r * (exact ? q4_exact_sin(two_pi * u2) : sin(two_pi * u2));
}

double q4_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

void q4_floats_to_le(const float *x, long long n, void (*sink)(void *context, const uint8_t *bytes, size_t size),
                     void *context) {
    uint8_t buffer[16384];
    for (long long i = 0; i < n;) {
        size_t k = 0;
        for (; k < sizeof buffer / 4 && i < n; k++, i++) {
            uint32_t u;
            memcpy(&u, &x[i], 4);
            q4_put_u32(buffer + 4 * k, u);
        }
        sink(context, buffer, 4 * k);
    }
}
