/* A small strict JSON (RFC 8259) reader: a whole text into a read-only tree.
 *
 * The engine reads one kind of JSON, the safetensors header, and must not
 * depend on the service's JSON library; this reader is strict where a
 * lenient one would let a damaged file through: no comments, no trailing
 * commas, no leading zeros, no NaN/Infinity, no raw control characters in
 * strings, only valid UTF-8 (no overlong forms, no encoded surrogates), and
 * \uXXXX escapes must pair surrogates correctly. Escapes are decoded to
 * UTF-8. Depth and node count are bounded so that hostile input cannot
 * exhaust the stack or memory. Duplicate object keys are kept (in order);
 * callers that care check them. */
#ifndef ENG_JSON_READER_H
#define ENG_JSON_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum eng_json_type {
    ENG_JSON_NULL = 0,
    ENG_JSON_BOOL,
    ENG_JSON_NUMBER,
    ENG_JSON_STRING,
    ENG_JSON_ARRAY,
    ENG_JSON_OBJECT,
} eng_json_type;

typedef struct eng_json eng_json;
struct eng_json {
    eng_json_type type;
    bool boolean;       /* BOOL */
    bool is_int;        /* NUMBER: an integer literal (no fraction, no exponent) that fits int64 */
    int64_t integer;    /* NUMBER, when is_int */
    double number;      /* NUMBER: the value as a double (C locale) */
    const char *str;    /* STRING: decoded UTF-8, NUL-terminated; may hold NUL (\u0000): see len */
    size_t len;         /* STRING: bytes in str; ARRAY, OBJECT: number of children */
    const char *key;    /* members of an OBJECT: the decoded key (NUL-terminated) */
    size_t key_len;
    eng_json *child;    /* ARRAY, OBJECT: first child, in text order */
    eng_json *next;     /* next sibling */
    size_t offset;      /* byte offset of the value in the text (for messages) */
};

typedef struct eng_json_limits {
    int max_depth;      /* nesting of arrays/objects; <= 0: 64 */
    size_t max_nodes;   /* values in the tree; 0: no limit */
} eng_json_limits;

typedef struct eng_json_doc eng_json_doc;

/* Parses text[0, len) (need not be NUL-terminated). Leading and trailing
 * JSON whitespace is allowed, anything else after the value is an error.
 * On failure returns ENG_EFORMAT (ENG_ELIMIT for the limits, ENG_ENOMEM)
 * with eng_error() set to "byte N: reason". limits may be NULL. */
int eng_json_parse(const char *text, size_t len, const eng_json_limits *limits, eng_json_doc **out);
void eng_json_doc_free(eng_json_doc *doc);
const eng_json *eng_json_root(const eng_json_doc *doc);

/* The first member of an object with this key (exact bytes), or NULL. */
const eng_json *eng_json_member(const eng_json *obj, const char *key);

const char *eng_json_type_name(eng_json_type t);

/* True when s[0, n) is valid UTF-8 (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF). */
bool eng_json_utf8_valid(const char *s, size_t n);

#endif
