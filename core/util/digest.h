/* digest.h - SHA-256 (training-state fingerprints in run cards) and MD5 (the data files'
 * official checksums), streaming, no allocation. */
#ifndef Q4_DIGEST_H
#define Q4_DIGEST_H

#include <stddef.h>
#include <stdint.h>

typedef struct q4_sha256 {
    uint32_t h[8];
    uint64_t length;
    uint8_t block[64];
    size_t used;
} q4_sha256;

void q4_sha256_init(q4_sha256 *c);
void q4_sha256_update(q4_sha256 *c, const void *data, size_t size);
/* 32 bytes, and as 64 lowercase hex digits plus NUL when hex is not NULL */
void q4_sha256_final(q4_sha256 *c, uint8_t digest[32], char hex[65]);

typedef struct q4_md5 {
    uint32_t h[4];
    uint64_t length;
    uint8_t block[64];
    size_t used;
} q4_md5;

void q4_md5_init(q4_md5 *c);
void q4_md5_update(q4_md5 *c, const void *data, size_t size);
void q4_md5_final(q4_md5 *c, uint8_t digest[16], char hex[33]);

#endif
