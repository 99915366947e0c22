/* tar.h - a streaming reader of ustar/GNU tar archives over a q4_source: walks the member
 * headers (checksums verified), and reads one member's bytes at a time. Regular files only
 * are reported; GNU long names are honoured, pax headers skipped. */
#ifndef Q4_TAR_H
#define Q4_TAR_H

#include "../include/q4.h"

typedef struct q4_tar {
    q4_source *in;
    const char *name;
    long long offset;      /* bytes consumed from in */
    long long entry_left;  /* bytes of the current member not yet read */
    long long entry_pad;   /* padding after it, to the 512-byte boundary */
    int entries;
    int inside_gzip; /* only for error messages */
} q4_tar;

typedef struct q4_tar_entry {
    char path[512];
    long long size;
} q4_tar_entry;

void q4_tar_open(q4_tar *tar, q4_source *in, int inside_gzip);
/* Next regular file: 1 found, 0 at the end of the archive, -1 on error (err filled). */
int q4_tar_next(q4_tar *tar, q4_tar_entry *entry, q4_error *err);
/* Reads from the current member: count, 0 at its end, -1 on error. */
long long q4_tar_read(void *tar, uint8_t *buffer, size_t size, q4_error *err);

#endif
