/* json.h - a small JSON writer into a caller's buffer, for the run logs, reports and the
 * browser bridge. Like snprintf it counts the full length even when the buffer is too small
 * (size 0 measures), so callers can allocate and write again. Commas are placed for the
 * caller; keys are plain identifiers (no escaping), string values are escaped. */
#ifndef Q4_JSON_H
#define Q4_JSON_H

#include <stddef.h>
#include <stdint.h>

#define Q4_JSON_MAX_DEPTH 16

typedef struct q4_json {
    char *out;
    size_t size, length; /* capacity, and the length written or that would have been */
    int depth;
    unsigned char has_items[Q4_JSON_MAX_DEPTH];
    char closer[Q4_JSON_MAX_DEPTH]; /* '}' or ']' for each open level */
} q4_json;

void q4_json_init(q4_json *j, char *out, size_t size);
/* key is NULL inside arrays and at the top. bracket is '{' or '['. */
void q4_json_open(q4_json *j, const char *key, char bracket);
void q4_json_close(q4_json *j);
void q4_json_int(q4_json *j, const char *key, long long value);
void q4_json_u64_string(q4_json *j, const char *key, uint64_t value);
/* the shortest text that reads back as the same double; NaN and infinities as null */
void q4_json_number(q4_json *j, const char *key, double value);
void q4_json_string(q4_json *j, const char *key, const char *value);
/* text that is already JSON */
void q4_json_raw(q4_json *j, const char *key, const char *json);
void q4_json_ints(q4_json *j, const char *key, const int *values, int count);
/* ends the text (NUL) and returns its length */
size_t q4_json_finish(q4_json *j);

/* The shortest "%.Ng" text (N = 1..17) that strtod reads back as value. Returns the length. */
int q4_format_double(char *out, size_t size, double value);

#endif
