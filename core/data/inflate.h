/* inflate.h - a pull-based gzip (RFC 1952) / DEFLATE (RFC 1951) decoder of our own:
 * the core links libc, libm and pthreads only, and Emscripten's zlib port would need a
 * download at build time. It reads compressed bytes from a q4_source on demand and is
 * itself a q4_source of decompressed bytes, so a 160 MB tarball is never held in memory.
 * Every member's CRC-32 and length are checked; corrupt input is an error, never a crash. */
#ifndef Q4_INFLATE_H
#define Q4_INFLATE_H

#include <stdint.h>

#include "../include/q4.h"

typedef struct q4_huffman {
    uint16_t fast[1024];   /* 10-bit lookup: symbol << 4 | length, 0 = longer code */
    uint16_t count[16];    /* codes per length */
    uint16_t symbol[320];  /* symbols in canonical order */
} q4_huffman;

typedef struct q4_gzip {
    q4_source *in;
    const char *name;
    /* input */
    uint8_t in_buffer[65536];
    size_t in_pos, in_len;
    int in_eof;
    long long in_consumed;
    uint64_t bits;
    int bit_count;
    /* output history */
    uint8_t window[32768];
    uint32_t window_pos;
    /* decoder state */
    int state;           /* see inflate.c */
    int final_block;
    uint32_t stored_left;
    int copy_length, copy_distance;
    q4_huffman literal, distance;
    uint32_t crc;
    uint32_t member_size;
    long long total_out;
    int members;
} q4_gzip;

/* Starts decoding; checks the first member's header (errors name `in->name`). */
q4_status q4_gzip_open(q4_gzip *gz, q4_source *in, q4_error *err);
/* Reads up to size decompressed bytes: returns the count (0 at the end), -1 on error. */
long long q4_gzip_read(void *gz, uint8_t *buffer, size_t size, q4_error *err);
/* 1 once decoding has failed (later reads fail too). */
int q4_gzip_failed(const q4_gzip *gz);
/* A q4_source reading gz's output. */
q4_source q4_gzip_source(q4_gzip *gz);

#endif
