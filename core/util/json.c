/* json.c - the JSON writer of json.h. No allocation: it writes into the caller's buffer and
 * keeps counting past its end. */
#include "json.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void append(q4_json *j, const char *text, size_t n) {
    if (j->length < j->size) {
        size_t room = j->size - 1 - j->length;
        memcpy(j->out + j->length, text, n < room ? n : room);
    }
    j->length += n;
}

static void appendf(q4_json *j, const char *format, ...) {
    char buffer[64];
    va_list args;
    va_start(args, format);
    int n = vsnprintf(buffer, sizeof buffer, format, args);
    va_end(args);
    if (n > 0) append(j, buffer, (size_t)n < sizeof buffer ? (size_t)n : sizeof buffer - 1);
}

void q4_json_init(q4_json *j, char *out, size_t size) {
    memset(j, 0, sizeof *j);
    j->out = out;
    j->size = size;
    if (out && size) out[0] = 0;
}

static void begin_item(q4_json *j, const char *key) {
    if (j->depth > 0) {
        if (j->has_items[j->depth - 1]) append(j, ",", 1);
        j->has_items[j->depth - 1] = 1;
    }
    if (key) {
        append(j, "\"", 1);
        append(j, key, strlen(key));
        append(j, "\":", 2);
    }
}

void q4_json_open(q4_json *j, const char *key, char bracket) {
    begin_item(j, key);
    append(j, &bracket, 1);
    if (j->depth < Q4_JSON_MAX_DEPTH) {
        j->has_items[j->depth] = 0;
        j->closer[j->depth] = bracket == '[' ? ']' : '}';
    }
    j->depth++;
}

void q4_json_close(q4_json *j) {
    j->depth--;
    append(j, j->depth < Q4_JSON_MAX_DEPTH ? &j->closer[j->depth] : "}", 1);
}

void q4_json_int(q4_json *j, const char *key, long long value) {
    begin_item(j, key);
    appendf(j, "%lld", value);
}

void q4_json_u64_string(q4_json *j, const char *key, uint64_t value) {
    begin_item(j, key);
    appendf(j, "\"%llu\"", (unsigned long long)value);
}

int q4_format_double(char *out, size_t size, double value) {
    int n = 0;
    for (int digits = 1; digits <= 17; digits++) {
        n = snprintf(out, size, "%.*g", digits, value);
        if (strtod(out, NULL) == value) break;
    }
    return n;
}

void q4_json_number(q4_json *j, const char *key, double value) {
    begin_item(j, key);
    if (!isfinite(value)) {
        append(j, "null", 4);
        return;
    }
    char buffer[40];
    int n = q4_format_double(buffer, sizeof buffer, value);
    append(j, buffer, (size_t)n);
}

void q4_json_string(q4_json *j, const char *key, const char *value) {
    begin_item(j, key);
    append(j, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        if (*p == '"' || *p == '\\') {
            char escaped[2] = {'\\', (char)*p};
            append(j, escaped, 2);
        } else if (*p < 0x20) {
            appendf(j, "\\u%04x", *p);
        } else {
            append(j, (const char *)p, 1);
        }
    }
    append(j, "\"", 1);
}

void q4_json_raw(q4_json *j, const char *key, const char *json) {
    begin_item(j, key);
    append(j, json, strlen(json));
}

void q4_json_ints(q4_json *j, const char *key, const int *values, int count) {
    q4_json_open(j, key, '[');
    for (int i = 0; i < count; i++) q4_json_int(j, NULL, values[i]);
    q4_json_close(j);
}

size_t q4_json_finish(q4_json *j) {
    if (j->out && j->size) j->out[j->length < j->size ? j->length : j->size - 1] = 0;
    return j->length;
}
