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

/* a JSON string, quoted and escaped as q4_json_text reads it back: \" \\ \n \t \r, and the
 * other control characters as \u00XX */
static void append_string(q4_json *j, const char *s) {
    append(j, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char short_escape = *p == '"' || *p == '\\' ? (char)*p : *p == '\n' ? 'n' : *p == '\t' ? 't' : *p == '\r' ? 'r' : 0;
        if (short_escape) {
            char escaped[2] = {'\\', short_escape};
            append(j, escaped, 2);
        } else if (*p < 0x20) {
            appendf(j, "\\u%04x", *p);
        } else {
            append(j, (const char *)p, 1);
        }
    }
    append(j, "\"", 1);
}

static void begin_item(q4_json *j, const char *key) {
    if (j->depth > 0) {
        if (j->has_items[j->depth - 1]) append(j, ",", 1);
        j->has_items[j->depth - 1] = 1;
    }
    if (key) { /* keys are escaped like values: a card's keys include the data's file names */
        append_string(j, key);
        append(j, ":", 1);
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
    append_string(j, value);
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

/* ------------------------------------------------------------ reading */

static int skip_space(const char *t, int i, int n) {
    while (i < n && (t[i] == ' ' || t[i] == '\n' || t[i] == '\r' || t[i] == '\t')) i++;
    return i;
}

/* parses one value at text[*at]; appends its tokens; returns its index or -1 */
static int parse_value(const char *t, int n, int *at, q4_json_token *tokens, int max, int *count, int depth) {
    int i = skip_space(t, *at, n);
    if (i >= n || *count >= max || depth > 64) return -1;
    int self = (*count)++;
    q4_json_token *tok = &tokens[self];
    tok->size = 0;
    if (t[i] == '{' || t[i] == '[') {
        char close = t[i] == '{' ? '}' : ']';
        tok->type = t[i] == '{' ? Q4_JSON_OBJECT : Q4_JSON_ARRAY;
        tok->start = i;
        i = skip_space(t, i + 1, n);
        if (i < n && t[i] == close) {
            i++;
        } else {
            for (;;) {
                if (tok->type == Q4_JSON_OBJECT) {
                    *at = i;
                    int key = parse_value(t, n, at, tokens, max, count, depth + 1);
                    if (key < 0 || tokens[key].type != Q4_JSON_STRING) return -1;
                    i = skip_space(t, *at, n);
                    if (i >= n || t[i] != ':') return -1;
                    i++;
                }
                *at = i;
                if (parse_value(t, n, at, tokens, max, count, depth + 1) < 0) return -1;
                tok = &tokens[self];
                tok->size++;
                i = skip_space(t, *at, n);
                if (i < n && t[i] == ',') {
                    i++;
                    continue;
                }
                if (i < n && t[i] == close) {
                    i++;
                    break;
                }
                return -1;
            }
        }
        tok->end = i;
    } else if (t[i] == '"') {
        tok->type = Q4_JSON_STRING;
        tok->start = ++i;
        while (i < n && t[i] != '"') {
            if ((unsigned char)t[i] < 0x20) return -1;
            if (t[i] == '\\') i++;
            i++;
        }
        if (i >= n) return -1;
        tok->end = i++;
    } else {
        tok->type = Q4_JSON_PRIMITIVE;
        tok->start = i;
        while (i < n && (t[i] == '-' || t[i] == '+' || t[i] == '.' || (t[i] >= '0' && t[i] <= '9') ||
                         (t[i] >= 'a' && t[i] <= 'z') || (t[i] >= 'A' && t[i] <= 'Z')))
            i++;
        if (i == tok->start) return -1;
        tok->end = i;
    }
    tokens[self].next = *count;
    *at = i;
    return self;
}

int q4_json_parse(const char *text, int length, q4_json_token *tokens, int max) {
    int at = 0, count = 0;
    if (parse_value(text, length, &at, tokens, max, &count, 0) != 0) return -1;
    if (skip_space(text, at, length) != length) return -1;
    return count;
}

int q4_json_repeated_key(const char *text, const q4_json_token *tokens, int object) {
    if (object < 0 || tokens[object].type != Q4_JSON_OBJECT) return -1;
    for (int i = object + 1, k = 0; k < tokens[object].size; k++, i = tokens[i + 1].next) {
        char key[128], earlier[128];
        if (q4_json_text(text, &tokens[i], key, sizeof key)) return i;
        for (int e = object + 1, m = 0; m < k; m++, e = tokens[e + 1].next)
            if (!q4_json_text(text, &tokens[e], earlier, sizeof earlier) && strcmp(key, earlier) == 0) return i;
    }
    return -1;
}

int q4_json_find(const char *text, const q4_json_token *tokens, int object, const char *key) {
    if (object < 0 || tokens[object].type != Q4_JSON_OBJECT) return -1;
    size_t n = strlen(key);
    for (int i = object + 1, k = 0; k < tokens[object].size; k++) {
        const q4_json_token *name = &tokens[i];
        int value = i + 1;
        if ((size_t)(name->end - name->start) == n && memcmp(text + name->start, key, n) == 0) return value;
        i = tokens[value].next;
    }
    return -1;
}

int q4_json_element(const q4_json_token *tokens, int array, int index) {
    if (array < 0 || tokens[array].type != Q4_JSON_ARRAY || index < 0 || index >= tokens[array].size) return -1;
    int i = array + 1;
    for (int k = 0; k < index; k++) i = tokens[i].next;
    return i;
}

int q4_json_text(const char *text, const q4_json_token *token, char *out, size_t size) {
    size_t o = 0;
    for (int i = token->start; i < token->end; i++) {
        char c = text[i];
        if (c == '\\' && token->type == Q4_JSON_STRING) {
            char e = text[++i];
            c = e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : (e == '"' || e == '\\' || e == '/') ? e : 0;
            if (e == 'u' && i + 4 < token->end) { /* \u00XX: an ASCII character (what the writer makes) */
                unsigned v = 0;
                for (int k = 1; k <= 4; k++) {
                    char h = text[i + k];
                    int d = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
                    v = d < 0 ? 0x10000 : v * 16 + (unsigned)d;
                }
                if (v >= 1 && v < 0x80) c = (char)v, i += 4;
            }
            if (!c) return -1;
        }
        if (o + 1 >= size) return -1;
        out[o++] = c;
    }
    out[o] = 0;
    return 0;
}
