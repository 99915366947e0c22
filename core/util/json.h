/* json.h - a small JSON writer into a caller's buffer, for the run logs, reports and the
 * browser bridge. Like snprintf it counts the full length even when the buffer is too small
 * (size 0 measures), so callers can allocate and write again. Commas are placed for the
 * caller; keys and string values are escaped alike. */
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

/* ---- reading: a tokenizer in the way of jsmn. Tokens index into the text; nothing is
 * copied or allocated. Strict enough for our own files, and safe on hostile ones. */
typedef enum { Q4_JSON_OBJECT, Q4_JSON_ARRAY, Q4_JSON_STRING, Q4_JSON_PRIMITIVE } q4_json_type;

typedef struct q4_json_token {
    q4_json_type type;
    int start, end; /* text[start, end): strings without their quotes */
    int size;       /* objects: keys; arrays: elements */
    int next;       /* index of the token after this one and everything inside it */
} q4_json_token;

/* Splits text into at most max tokens; returns the count, or -1 when the text is not JSON or
 * has more tokens than max. */
int q4_json_parse(const char *text, int length, q4_json_token *tokens, int max);
/* In object token `object`: the value token of `key`, or -1. */
int q4_json_find(const char *text, const q4_json_token *tokens, int object, const char *key);
/* In object token `object`: the first key (its token index) that repeats an earlier key of the
 * same object, compared unescaped, or -1 when every key is distinct. Keys longer than 127
 * bytes count as repeats (nothing we read has them). Quadratic: for objects of a few keys. */
int q4_json_repeated_key(const char *text, const q4_json_token *tokens, int object);
/* The i-th element of an array token, or -1. */
int q4_json_element(const q4_json_token *tokens, int array, int i);
/* A string or primitive token's text, unescaped (\" \\ \/ \n \t \r and \u00XX for ASCII; others
 * refused), into out;
 * returns 0, or -1 when it does not fit or holds an escape we do not read. */
int q4_json_text(const char *text, const q4_json_token *token, char *out, size_t size);

#endif
