/* inflate.c - gzip/DEFLATE decoding from RFC 1951 and RFC 1952, pull-based: each read
 * decodes just enough to fill the caller's buffer. Huffman codes of up to 10 bits are
 * decoded by table, longer ones canonically bit by bit. Nothing here trusts the input:
 * every length, distance and code is checked and reported with the source's name. */
#include "inflate.h"

#include <string.h>

#include "../util/util.h"

enum { ST_MEMBER_HEADER, ST_BLOCK_HEADER, ST_STORED, ST_HUFFMAN, ST_TRAILER, ST_DONE, ST_FAILED };

static const uint16_t length_base[29] = {3,  4,  5,  6,  7,  8,  9,  10, 11,  13,  15,  17,  19,  23, 27,
                                         31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
static const uint8_t length_extra[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                         2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
static const uint16_t distance_base[30] = {1,    2,    3,    4,    5,    7,     9,     13,    17,  25,
                                           33,   49,   65,   97,   129,  193,   257,   385,   513, 769,
                                           1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
static const uint8_t distance_extra[30] = {0, 0, 0, 0, 1, 1, 2, 2,  3,  3,  4,  4,  5,  5,  6,
                                           6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};

static q4_status corrupt(q4_gzip *gz, q4_error *err, const char *what) {
    gz->state = ST_FAILED;
    return q4_fail(err, Q4_ERR_FORMAT, "%s: corrupt gzip data (%s) near compressed byte %lld", gz->name, what,
                   gz->in_consumed);
}

static q4_status truncated(q4_gzip *gz, q4_error *err) {
    gz->state = ST_FAILED;
    return q4_fail(err, Q4_ERR_FORMAT, "%s: truncated: the gzip stream ends after %lld bytes, inside compressed data",
                   gz->name, gz->in_consumed);
}

/* next input byte (bypassing the bit buffer); -1 at end, -2 on a read error */
static int next_byte(q4_gzip *gz, q4_error *err) {
    if (gz->in_pos == gz->in_len) {
        if (gz->in_eof) return -1;
        long long got = gz->in->read(gz->in->context, gz->in_buffer, sizeof gz->in_buffer, err);
        if (got < 0) {
            gz->state = ST_FAILED;
            return -2;
        }
        gz->in_pos = 0;
        gz->in_len = (size_t)got;
        if (got == 0) {
            gz->in_eof = 1;
            return -1;
        }
    }
    gz->in_consumed++;
    return gz->in_buffer[gz->in_pos++];
}

/* Tops the bit buffer up to at least `want` bits if the input allows; returns -2 on a read error. */
static int fill_bits(q4_gzip *gz, int want, q4_error *err) {
    while (gz->bit_count < want) {
        int b = next_byte(gz, err);
        if (b == -2) return -2;
        if (b < 0) return 0;
        gz->bits |= (uint64_t)b << gz->bit_count;
        gz->bit_count += 8;
    }
    return 0;
}

/* n <= 16 bits, LSB first; returns -1 (error filled) when the input ends */
static long get_bits(q4_gzip *gz, int n, q4_error *err) {
    if (n == 0) return 0;
    if (fill_bits(gz, n, err) < 0) return -1;
    if (gz->bit_count < n) {
        truncated(gz, err);
        return -1;
    }
    long v = (long)(gz->bits & ((1u << n) - 1));
    gz->bits >>= n;
    gz->bit_count -= n;
    return v;
}

/* byte-aligned read: first the whole bytes left in the bit buffer, then the input */
static int aligned_byte(q4_gzip *gz, q4_error *err) {
    if (gz->bit_count >= 8) {
        int b = (int)(gz->bits & 0xff);
        gz->bits >>= 8;
        gz->bit_count -= 8;
        return b;
    }
    return next_byte(gz, err);
}

static void align_to_byte(q4_gzip *gz) {
    int drop = gz->bit_count % 8;
    gz->bits >>= drop;
    gz->bit_count -= drop;
}

/* Builds a canonical Huffman decoder from code lengths. Returns -1 if over-subscribed. */
static int build_huffman(q4_huffman *h, const uint8_t *lengths, int n) {
    uint16_t offsets[16];
    memset(h->count, 0, sizeof h->count);
    for (int s = 0; s < n; s++) h->count[lengths[s]]++;
    h->count[0] = 0;
    int left = 1;
    for (int len = 1; len <= 15; len++) {
        left <<= 1;
        left -= h->count[len];
        if (left < 0) return -1;
    }
    offsets[1] = 0;
    for (int len = 1; len < 15; len++) offsets[len + 1] = (uint16_t)(offsets[len] + h->count[len]);
    for (int s = 0; s < n; s++)
        if (lengths[s]) h->symbol[offsets[lengths[s]]++] = (uint16_t)s;
    memset(h->fast, 0, sizeof h->fast);
    unsigned code = 0, index = 0;
    for (int len = 1; len <= 15; len++) {
        for (int i = 0; i < h->count[len]; i++, code++, index++) {
            if (len > 10) continue;
            unsigned reversed = 0;
            for (int b = 0; b < len; b++) reversed |= ((code >> b) & 1u) << (len - 1 - b);
            for (unsigned k = reversed; k < 1024; k += 1u << len) h->fast[k] = (uint16_t)(h->symbol[index] << 4 | len);
        }
        code <<= 1;
    }
    return 0;
}

/* one symbol; -1 on error (filled) */
static int decode_symbol(q4_gzip *gz, const q4_huffman *h, q4_error *err) {
    if (fill_bits(gz, 15, err) < 0) return -1;
    if (gz->bit_count == 0) {
        truncated(gz, err);
        return -1;
    }
    uint16_t entry = h->fast[gz->bits & 1023];
    if (entry) {
        int len = entry & 15;
        if (len > gz->bit_count) {
            truncated(gz, err);
            return -1;
        }
        gz->bits >>= len;
        gz->bit_count -= len;
        return entry >> 4;
    }
    int code = 0, first = 0, index = 0;
    for (int len = 1; len <= 15; len++) {
        if (len > gz->bit_count) {
            truncated(gz, err);
            return -1;
        }
        code |= (int)((gz->bits >> (len - 1)) & 1);
        int count = h->count[len];
        if (code - count < first) {
            gz->bits >>= len;
            gz->bit_count -= len;
            return h->symbol[index + (code - first)];
        }
        index += count;
        first += count;
        first <<= 1;
        code <<= 1;
    }
    corrupt(gz, err, "invalid Huffman code");
    return -1;
}

/* a gzip header's end before its last field, or the read error that stopped it */
static q4_status header_cut(q4_gzip *gz, int byte, q4_error *err) {
    gz->state = ST_FAILED;
    if (byte == -2) return err ? err->status : Q4_ERR_IO;
    return q4_fail(err, Q4_ERR_FORMAT, "%s: truncated inside the gzip header (after %lld bytes)", gz->name,
                   gz->in_consumed);
}

static q4_status read_member_header(q4_gzip *gz, q4_error *err) {
    int b[10];
    for (int i = 0; i < 10; i++) {
        b[i] = aligned_byte(gz, err);
        if (b[i] == -2) return err ? err->status : Q4_ERR_IO;
        if (b[i] < 0) {
            gz->state = ST_FAILED;
            if (gz->members == 0 && i == 0)
                return q4_fail(err, Q4_ERR_FORMAT, "%s: is empty, not a gzip file", gz->name);
            return q4_fail(err, Q4_ERR_FORMAT, "%s: truncated inside the gzip header", gz->name);
        }
    }
    if (b[0] != 0x1f || b[1] != 0x8b) {
        gz->state = ST_FAILED;
        return q4_fail(err, Q4_ERR_FORMAT, "%s: not a gzip file (it does not start with the gzip magic bytes 1f 8b)",
                       gz->name);
    }
    if (b[2] != 8) return corrupt(gz, err, "compression method is not deflate");
    int flags = b[3];
    if (flags & 0xe0) return corrupt(gz, err, "reserved header flags set");
    if (flags & 4) { /* FEXTRA */
        int lo = aligned_byte(gz, err);
        if (lo < 0) return header_cut(gz, lo, err);
        int hi = aligned_byte(gz, err);
        if (hi < 0) return header_cut(gz, hi, err);
        for (int n = lo | hi << 8; n > 0; n--) {
            int c = aligned_byte(gz, err);
            if (c < 0) return header_cut(gz, c, err);
        }
    }
    for (int field = 8; field <= 16; field <<= 1) { /* FNAME, FCOMMENT: zero-terminated */
        if (!(flags & field)) continue;
        int c;
        do {
            c = aligned_byte(gz, err);
            if (c < 0) return header_cut(gz, c, err);
        } while (c != 0);
    }
    if (flags & 2) /* FHCRC */
        for (int i = 0; i < 2; i++) {
            int c = aligned_byte(gz, err);
            if (c < 0) return header_cut(gz, c, err);
        }
    gz->state = ST_BLOCK_HEADER;
    gz->final_block = 0;
    gz->crc = 0;
    gz->member_size = 0;
    gz->members++;
    return Q4_OK;
}

static q4_status read_dynamic_tables(q4_gzip *gz, q4_error *err) {
    static const uint8_t order[19] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15};
    long hlit = get_bits(gz, 5, err), hdist = get_bits(gz, 5, err), hclen = get_bits(gz, 4, err);
    if (hlit < 0 || hdist < 0 || hclen < 0) return Q4_ERR_FORMAT;
    hlit += 257;
    hdist += 1;
    hclen += 4;
    if (hlit > 286 || hdist > 30) return corrupt(gz, err, "too many length or distance codes");
    uint8_t lengths[320];
    memset(lengths, 0, sizeof lengths);
    for (int i = 0; i < hclen; i++) {
        long v = get_bits(gz, 3, err);
        if (v < 0) return Q4_ERR_FORMAT;
        lengths[order[i]] = (uint8_t)v;
    }
    q4_huffman *lencode = &gz->distance; /* borrowed while reading the code lengths */
    if (build_huffman(lencode, lengths, 19) < 0) return corrupt(gz, err, "over-subscribed code-length code");
    int index = 0, total = (int)(hlit + hdist);
    memset(lengths, 0, sizeof lengths);
    while (index < total) {
        int symbol = decode_symbol(gz, lencode, err);
        if (symbol < 0) return Q4_ERR_FORMAT;
        if (symbol < 16) {
            lengths[index++] = (uint8_t)symbol;
            continue;
        }
        int value = 0;
        long repeat;
        if (symbol == 16) {
            if (index == 0) return corrupt(gz, err, "repeat with no previous length");
            value = lengths[index - 1];
            repeat = get_bits(gz, 2, err);
            repeat = repeat < 0 ? -1 : 3 + repeat;
        } else if (symbol == 17) {
            repeat = get_bits(gz, 3, err);
            repeat = repeat < 0 ? -1 : 3 + repeat;
        } else {
            repeat = get_bits(gz, 7, err);
            repeat = repeat < 0 ? -1 : 11 + repeat;
        }
        if (repeat < 0) return Q4_ERR_FORMAT;
        if (index + repeat > total) return corrupt(gz, err, "code lengths overflow");
        while (repeat--) lengths[index++] = (uint8_t)value;
    }
    if (lengths[256] == 0) return corrupt(gz, err, "no end-of-block code");
    if (build_huffman(&gz->literal, lengths, (int)hlit) < 0) return corrupt(gz, err, "over-subscribed literal code");
    if (build_huffman(&gz->distance, lengths + hlit, (int)hdist) < 0)
        return corrupt(gz, err, "over-subscribed distance code");
    return Q4_OK;
}

static void fixed_tables(q4_gzip *gz) {
    uint8_t lengths[288];
    for (int s = 0; s < 288; s++) lengths[s] = s < 144 ? 8 : s < 256 ? 9 : s < 280 ? 7 : 8;
    build_huffman(&gz->literal, lengths, 288);
    for (int s = 0; s < 30; s++) lengths[s] = 5;
    build_huffman(&gz->distance, lengths, 30);
}

static q4_status read_block_header(q4_gzip *gz, q4_error *err) {
    long header = get_bits(gz, 3, err);
    if (header < 0) return Q4_ERR_FORMAT;
    gz->final_block = (int)(header & 1);
    int type = (int)(header >> 1);
    if (type == 0) {
        align_to_byte(gz);
        int b[4];
        for (int i = 0; i < 4; i++) {
            b[i] = aligned_byte(gz, err);
            if (b[i] == -2) return Q4_ERR_IO;
            if (b[i] < 0) return truncated(gz, err);
        }
        unsigned len = (unsigned)(b[0] | b[1] << 8), nlen = (unsigned)(b[2] | b[3] << 8);
        if (len != (~nlen & 0xffff)) return corrupt(gz, err, "stored block length check failed");
        gz->stored_left = len;
        gz->state = ST_STORED;
    } else if (type == 1) {
        fixed_tables(gz);
        gz->state = ST_HUFFMAN;
    } else if (type == 2) {
        q4_status st = read_dynamic_tables(gz, err);
        if (st) {
            gz->state = ST_FAILED;
            return st;
        }
        gz->state = ST_HUFFMAN;
    } else {
        return corrupt(gz, err, "invalid block type 3");
    }
    return Q4_OK;
}

static q4_status read_trailer(q4_gzip *gz, q4_error *err) {
    align_to_byte(gz);
    uint8_t t[8];
    for (int i = 0; i < 8; i++) {
        int b = aligned_byte(gz, err);
        if (b == -2) return Q4_ERR_IO;
        if (b < 0) return truncated(gz, err);
        t[i] = (uint8_t)b;
    }
    if (q4_get_u32(t) != gz->crc) {
        gz->state = ST_FAILED;
        return q4_fail(err, Q4_ERR_CHECKSUM, "%s: CRC-32 mismatch: the decompressed data is corrupt", gz->name);
    }
    if (q4_get_u32(t + 4) != gz->member_size) {
        gz->state = ST_FAILED;
        return q4_fail(err, Q4_ERR_FORMAT, "%s: length mismatch in the gzip trailer", gz->name);
    }
    /* another member follows, or the end (zero padding tolerated) */
    for (;;) {
        int b = aligned_byte(gz, err);
        if (b == -2) return Q4_ERR_IO;
        if (b < 0) {
            gz->state = ST_DONE;
            return Q4_OK;
        }
        if (b == 0) continue;
        if (b == 0x1f) {
            /* put it back: the header reader starts from the bit buffer */
            gz->bits = (uint64_t)b | gz->bits << 8;
            gz->bit_count += 8;
            return read_member_header(gz, err);
        }
        gz->state = ST_FAILED;
        return q4_fail(err, Q4_ERR_FORMAT, "%s: unexpected data after the end of the gzip stream", gz->name);
    }
}

q4_status q4_gzip_open(q4_gzip *gz, q4_source *in, q4_error *err) {
    memset(gz, 0, sizeof *gz);
    gz->in = in;
    gz->name = in->name ? in->name : "(gzip input)";
    return read_member_header(gz, err);
}

long long q4_gzip_read(void *context, uint8_t *out, size_t size, q4_error *err) {
    q4_gzip *gz = context;
    size_t produced = 0, chunk_start = 0;
    while (produced < size) {
        if (gz->state == ST_FAILED) {
            if (err && err->status == Q4_OK) q4_fail(err, Q4_ERR_FORMAT, "%s: read after an earlier error", gz->name);
            return -1;
        }
        if (gz->state == ST_DONE) break;
        if (gz->copy_length > 0) {
            while (gz->copy_length > 0 && produced < size) {
                uint8_t v = gz->window[(gz->window_pos - (uint32_t)gz->copy_distance) & 32767u];
                gz->window[gz->window_pos++ & 32767u] = v;
                out[produced++] = v;
                gz->copy_length--;
            }
            continue;
        }
        if (gz->state == ST_STORED) {
            while (gz->stored_left > 0 && produced < size) {
                int b = aligned_byte(gz, err);
                if (b == -2) return -1;
                if (b < 0) {
                    truncated(gz, err);
                    return -1;
                }
                gz->window[gz->window_pos++ & 32767u] = (uint8_t)b;
                out[produced++] = (uint8_t)b;
                gz->stored_left--;
            }
            if (gz->stored_left == 0) gz->state = gz->final_block ? ST_TRAILER : ST_BLOCK_HEADER;
            continue;
        }
        if (gz->state == ST_HUFFMAN) {
            int symbol = decode_symbol(gz, &gz->literal, err);
            if (symbol < 0) return -1;
            if (symbol < 256) {
                gz->window[gz->window_pos++ & 32767u] = (uint8_t)symbol;
                out[produced++] = (uint8_t)symbol;
            } else if (symbol == 256) {
                gz->state = gz->final_block ? ST_TRAILER : ST_BLOCK_HEADER;
            } else {
                symbol -= 257;
                if (symbol >= 29) {
                    corrupt(gz, err, "invalid length symbol");
                    return -1;
                }
                long extra = get_bits(gz, length_extra[symbol], err);
                if (extra < 0) return -1;
                int length = length_base[symbol] + (int)extra;
                int dsym = decode_symbol(gz, &gz->distance, err);
                if (dsym < 0) return -1;
                if (dsym >= 30) {
                    corrupt(gz, err, "invalid distance symbol");
                    return -1;
                }
                extra = get_bits(gz, distance_extra[dsym], err);
                if (extra < 0) return -1;
                int distance = distance_base[dsym] + (int)extra;
                uint32_t history = gz->member_size + (uint32_t)(produced - chunk_start);
                if ((uint32_t)distance > history && history < 32768u) {
                    corrupt(gz, err, "distance reaches before the start of the data");
                    return -1;
                }
                gz->copy_length = length;
                gz->copy_distance = distance;
            }
            continue;
        }
        if (gz->state == ST_BLOCK_HEADER) {
            if (read_block_header(gz, err)) return -1;
            continue;
        }
        if (gz->state == ST_TRAILER) {
            gz->crc = q4_crc32(gz->crc, out + chunk_start, produced - chunk_start);
            gz->member_size += (uint32_t)(produced - chunk_start);
            chunk_start = produced;
            if (read_trailer(gz, err)) return -1;
            continue;
        }
        if (gz->state == ST_MEMBER_HEADER) {
            if (read_member_header(gz, err)) return -1;
            continue;
        }
    }
    gz->crc = q4_crc32(gz->crc, out + chunk_start, produced - chunk_start);
    gz->member_size += (uint32_t)(produced - chunk_start);
    gz->total_out += (long long)produced;
    return (long long)produced;
}

int q4_gzip_failed(const q4_gzip *gz) { return gz->state == ST_FAILED; }

q4_source q4_gzip_source(q4_gzip *gz) {
    q4_source s = {q4_gzip_read, gz, gz->name, -1};
    return s;
}
