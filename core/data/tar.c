/* tar.c - streaming tar reading: 512-byte headers with octal (or base-256) sizes and
 * checksums; member data is read through q4_tar_read so shards go straight to memory. */
#include "tar.h"

#include <stdio.h>
#include <string.h>

#include "../util/util.h"

/* reads exactly size bytes; 0 ok, 1 clean end before any byte, -1 error/truncation */
static int read_exact(q4_tar *tar, uint8_t *buffer, size_t size, q4_error *err) {
    size_t got = 0;
    while (got < size) {
        long long n = tar->in->read(tar->in->context, buffer + got, size - got, err);
        if (n < 0) return -1;
        if (n == 0) {
            if (got == 0) return 1;
            if (tar->entries == 0 && tar->offset == (long long)got) /* not even one header: not an archive cut short */
                q4_fail(err, Q4_ERR_FORMAT, "%s: is neither a gzip file nor a tar archive (%s%lld bytes, less than one "
                        "512-byte tar header)", tar->name, tar->inside_gzip ? "it decompresses to " : "", tar->offset);
            else
                q4_fail(err, Q4_ERR_FORMAT, "%s: truncated tar archive (it ends inside a %zu-byte block at offset %lld)",
                        tar->name, size, tar->offset);
            return -1;
        }
        got += (size_t)n;
        tar->offset += n;
    }
    return 0;
}

static int skip(q4_tar *tar, long long count, q4_error *err) {
    uint8_t buffer[4096];
    while (count > 0) {
        size_t want = count < (long long)sizeof buffer ? (size_t)count : sizeof buffer;
        int r = read_exact(tar, buffer, want, err);
        if (r > 0) {
            q4_fail(err, Q4_ERR_FORMAT, "%s: truncated tar archive (a member's data is cut short at offset %lld)",
                    tar->name, tar->offset);
            return -1;
        }
        if (r < 0) return -1;
        count -= (long long)want;
    }
    return 0;
}

/* numeric header field: octal text, or GNU base-256 when the top bit is set */
static long long parse_number(const uint8_t *field, int size) {
    if (field[0] & 0x80) {
        long long v = field[0] & 0x3f;
        for (int i = 1; i < size; i++) {
            if (v > (1LL << 54)) return -1;
            v = v << 8 | field[i];
        }
        return v;
    }
    long long v = 0;
    int i = 0;
    while (i < size && field[i] == ' ') i++;
    int digits = 0;
    for (; i < size && field[i] >= '0' && field[i] <= '7'; i++, digits++) {
        if (v > (1LL << 54)) return -1;
        v = v * 8 + (field[i] - '0');
    }
    if (digits == 0) return -1;
    for (; i < size; i++)
        if (field[i] != ' ' && field[i] != 0) return -1;
    return v;
}

void q4_tar_open(q4_tar *tar, q4_source *in, int inside_gzip) {
    memset(tar, 0, sizeof *tar);
    tar->inside_gzip = inside_gzip;
    tar->in = in;
    tar->name = in->name ? in->name : "(tar input)";
}

int q4_tar_next(q4_tar *tar, q4_tar_entry *entry, q4_error *err) {
    char long_name[512];
    long_name[0] = 0;
    for (;;) {
        if (skip(tar, tar->entry_left + tar->entry_pad, err) < 0) return -1;
        tar->entry_left = tar->entry_pad = 0;
        uint8_t h[512];
        long long header_at = tar->offset;
        int r = read_exact(tar, h, 512, err);
        if (r < 0) return -1;
        if (r > 0) {
            if (tar->entries == 0) {
                q4_fail(err, Q4_ERR_FORMAT, "%s: is empty: no tar archive inside", tar->name);
                return -1;
            }
            return 0; /* end without the two zero blocks: tolerated */
        }
        int all_zero = 1;
        for (int i = 0; i < 512; i++)
            if (h[i]) {
                all_zero = 0;
                break;
            }
        if (all_zero) {
            if (tar->entries == 0) {
                q4_fail(err, Q4_ERR_FORMAT, "%s: holds an empty tar archive", tar->name);
                return -1;
            }
            return 0;
        }
        long long stored = parse_number(h + 148, 8);
        long long sum = 0;
        for (int i = 0; i < 512; i++) sum += (i >= 148 && i < 156) ? ' ' : h[i];
        if (stored < 0 || stored != sum) {
            if (tar->entries == 0 && tar->inside_gzip)
                q4_fail(err, Q4_ERR_FORMAT, "%s: the decompressed data is not a tar archive (no valid tar header)",
                        tar->name);
            else if (tar->entries == 0)
                q4_fail(err, Q4_ERR_FORMAT, "%s: is neither a gzip file nor a tar archive", tar->name);
            else
                q4_fail(err, Q4_ERR_FORMAT, "%s: corrupt tar archive (bad header checksum at offset %lld)", tar->name,
                        header_at);
            return -1;
        }
        tar->entries++;
        long long size = parse_number(h + 124, 12);
        if (size < 0) {
            q4_fail(err, Q4_ERR_FORMAT, "%s: corrupt tar archive (bad size field at offset %lld)", tar->name, header_at);
            return -1;
        }
        tar->entry_left = size;
        tar->entry_pad = (512 - size % 512) % 512;
        char type = (char)h[156];
        if (type == 'L') { /* GNU long name: the data is the next member's path */
            size_t want = size < (long long)sizeof long_name - 1 ? (size_t)size : sizeof long_name - 1;
            if (read_exact(tar, (uint8_t *)long_name, want, err) != 0) {
                if (err && err->status == Q4_OK)
                    q4_fail(err, Q4_ERR_FORMAT, "%s: truncated tar archive (inside a long name)", tar->name);
                return -1;
            }
            long_name[want] = 0;
            tar->entry_left -= (long long)want;
            continue;
        }
        if (type != '0' && type != 0 && type != '7') { /* directories, links, pax headers... */
            long_name[0] = 0;
            continue;
        }
        if (long_name[0]) {
            snprintf(entry->path, sizeof entry->path, "%s", long_name);
        } else {
            char name[101], prefix[156];
            memcpy(name, h, 100);
            name[100] = 0;
            memcpy(prefix, h + 345, 155);
            prefix[155] = 0;
            /* POSIX ustar ("ustar\0") has a path prefix there; old GNU tar ("ustar  \0") keeps
             * access and change times in those bytes */
            if (memcmp(h + 257, "ustar\0", 6) == 0 && prefix[0])
                snprintf(entry->path, sizeof entry->path, "%s/%s", prefix, name);
            else
                snprintf(entry->path, sizeof entry->path, "%s", name);
        }
        entry->size = size;
        return 1;
    }
}

long long q4_tar_read(void *context, uint8_t *buffer, size_t size, q4_error *err) {
    q4_tar *tar = context;
    if (tar->entry_left <= 0) return 0;
    if ((long long)size > tar->entry_left) size = (size_t)tar->entry_left;
    long long n = tar->in->read(tar->in->context, buffer, size, err);
    if (n < 0) return -1;
    if (n == 0) {
        q4_fail(err, Q4_ERR_FORMAT, "%s: truncated tar archive (a member's data is cut short at offset %lld)",
                tar->name, tar->offset);
        return -1;
    }
    tar->offset += n;
    tar->entry_left -= n;
    return n;
}
