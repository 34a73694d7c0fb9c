/* Strict JSON reader (RFC 8259): recursive descent into an arena-allocated tree. */
#include "engine/json_reader.h"

#include <locale.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"

/* All nodes and strings of a document live in a few large blocks, freed at once. */
typedef struct arena_block {
    struct arena_block *next;
    size_t used, cap;
    alignas(max_align_t) unsigned char data[];
} arena_block;

struct eng_json_doc {
    arena_block *blocks;
    eng_json *root;
};

typedef struct parser {
    const unsigned char *s;
    size_t len, pos;
    int depth, max_depth;
    size_t nodes, max_nodes;
    eng_json_doc *doc;
    locale_t c_locale; /* created on the first non-integer number */
} parser;

#define ARENA_BLOCK (64 * 1024)

static void *arena_alloc(eng_json_doc *doc, size_t bytes)
{
    bytes = (bytes + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1);
    arena_block *b = doc->blocks;
    if (!b || b->cap - b->used < bytes) {
        size_t cap = bytes > ARENA_BLOCK ? bytes : ARENA_BLOCK;
        b = malloc(sizeof *b + cap);
        if (!b)
            return NULL;
        b->cap = cap;
        b->used = 0;
        b->next = doc->blocks;
        doc->blocks = b;
    }
    void *p = b->data + b->used;
    b->used += bytes;
    return p;
}

static int fail_at(size_t at, const char *what) { return eng_error(ENG_EFORMAT, "byte %zu: %s", at, what); }

static void skip_ws(parser *p)
{
    while (p->pos < p->len) {
        unsigned char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        p->pos++;
    }
}

static int new_node(parser *p, eng_json_type t, eng_json **out)
{
    if (p->max_nodes && p->nodes >= p->max_nodes)
        return eng_error(ENG_ELIMIT, "byte %zu: more than %zu JSON values", p->pos, p->max_nodes);
    eng_json *n = arena_alloc(p->doc, sizeof *n);
    if (!n)
        return eng_error(ENG_ENOMEM, "out of memory reading JSON");
    memset(n, 0, sizeof *n);
    n->type = t;
    n->offset = p->pos;
    p->nodes++;
    *out = n;
    return 0;
}

/* Length of the valid UTF-8 sequence at s[0..avail), or 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t avail)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0; /* no overlong forms */
        else if (c == 0xED)
            hi = 0x9F; /* no UTF-16 surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F; /* <= U+10FFFF */
    } else
        return 0;
    if (avail < n)
        return 0;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return n;
}

static int hex4(const unsigned char *s, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = s[i], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return -1;
        v = v * 16 + d;
    }
    *out = v;
    return 0;
}

static size_t put_utf8(unsigned char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* A string at p->pos (on the opening quote): decoded into the arena. */
static int parse_string(parser *p, const char **out, size_t *out_len)
{
    size_t start = ++p->pos;
    /* First pass: find the closing quote; the decoded text is never longer. */
    size_t end = start;
    for (;;) {
        if (end >= p->len)
            return fail_at(start - 1, "unterminated string");
        unsigned char c = p->s[end];
        if (c == '"')
            break;
        end += (c == '\\' && end + 1 < p->len) ? 2 : 1;
    }
    unsigned char *o = arena_alloc(p->doc, end - start + 1);
    if (!o)
        return eng_error(ENG_ENOMEM, "out of memory reading JSON");
    size_t n = 0, i = start;
    while (i < end) {
        unsigned char c = p->s[i];
        if (c < 0x20)
            return fail_at(i, "control character in string (must be escaped)");
        if (c != '\\') {
            size_t k = utf8_seq(p->s + i, end - i);
            if (!k)
                return fail_at(i, "invalid UTF-8 in string");
            memcpy(o + n, p->s + i, k);
            n += k;
            i += k;
            continue;
        }
        unsigned char e = p->s[i + 1];
        i += 2;
        switch (e) {
        case '"': o[n++] = '"'; break;
        case '\\': o[n++] = '\\'; break;
        case '/': o[n++] = '/'; break;
        case 'b': o[n++] = '\b'; break;
        case 'f': o[n++] = '\f'; break;
        case 'n': o[n++] = '\n'; break;
        case 'r': o[n++] = '\r'; break;
        case 't': o[n++] = '\t'; break;
        case 'u': {
            unsigned cp;
            if (end - i < 4 || hex4(p->s + i, &cp))
                return fail_at(i - 2, "bad \\u escape (expected 4 hex digits)");
            i += 4;
            if (cp >= 0xDC00 && cp <= 0xDFFF)
                return fail_at(i - 6, "unpaired low surrogate in \\u escape");
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                unsigned lo;
                if (end - i < 6 || p->s[i] != '\\' || p->s[i + 1] != 'u' || hex4(p->s + i + 2, &lo) ||
                    lo < 0xDC00 || lo > 0xDFFF)
                    return fail_at(i - 6, "high surrogate in \\u escape not followed by a low surrogate");
                i += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            n += put_utf8(o + n, cp);
            break;
        }
        default:
            return fail_at(i - 2, "invalid escape in string");
        }
    }
    o[n] = '\0';
    p->pos = end + 1;
    *out = (const char *)o;
    *out_len = n;
    return 0;
}

static int parse_number(parser *p, eng_json *node)
{
    size_t start = p->pos, i = p->pos;
    bool neg = false, integral = true;
    if (i < p->len && p->s[i] == '-') {
        neg = true;
        i++;
    }
    if (i >= p->len || p->s[i] < '0' || p->s[i] > '9')
        return fail_at(start, "invalid number");
    if (p->s[i] == '0') {
        i++;
        if (i < p->len && p->s[i] >= '0' && p->s[i] <= '9')
            return fail_at(start, "leading zero in number");
    } else
        while (i < p->len && p->s[i] >= '0' && p->s[i] <= '9')
            i++;
    size_t int_end = i;
    if (i < p->len && p->s[i] == '.') {
        integral = false;
        i++;
        if (i >= p->len || p->s[i] < '0' || p->s[i] > '9')
            return fail_at(i, "expected a digit after the decimal point");
        while (i < p->len && p->s[i] >= '0' && p->s[i] <= '9')
            i++;
    }
    if (i < p->len && (p->s[i] == 'e' || p->s[i] == 'E')) {
        integral = false;
        i++;
        if (i < p->len && (p->s[i] == '+' || p->s[i] == '-'))
            i++;
        if (i >= p->len || p->s[i] < '0' || p->s[i] > '9')
            return fail_at(i, "expected a digit in the exponent");
        while (i < p->len && p->s[i] >= '0' && p->s[i] <= '9')
            i++;
    }
    p->pos = i;
    if (integral) {
        /* Accumulate negatively so that INT64_MIN fits. */
        int64_t v = 0;
        bool fits = true;
        for (size_t k = start + (neg ? 1 : 0); k < int_end; k++) {
            int d = p->s[k] - '0';
            if (v < (INT64_MIN + d) / 10) {
                fits = false;
                break;
            }
            v = v * 10 - d;
        }
        if (fits && !neg && v == INT64_MIN)
            fits = false;
        if (fits) {
            node->is_int = true;
            node->integer = neg ? v : -v;
            node->number = (double)node->integer;
            return 0;
        }
    }
    /* strtod_l in the C locale: the service may set another locale. */
    if (!p->c_locale) {
        p->c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
        if (!p->c_locale)
            return eng_error(ENG_ENOMEM, "cannot create the C locale");
    }
    char small[64];
    size_t n = i - start;
    char *buf = n < sizeof small ? small : malloc(n + 1);
    if (!buf)
        return eng_error(ENG_ENOMEM, "out of memory reading JSON");
    memcpy(buf, p->s + start, n);
    buf[n] = '\0';
    node->number = strtod_l(buf, NULL, p->c_locale);
    if (buf != small)
        free(buf);
    return 0;
}

static int parse_value(parser *p, eng_json **out);

static int parse_literal(parser *p, const char *word, eng_json_type t, bool b, eng_json **out)
{
    size_t n = strlen(word);
    if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0)
        return fail_at(p->pos, "invalid literal (expected a value)");
    int rc = new_node(p, t, out);
    if (rc)
        return rc;
    (*out)->boolean = b;
    p->pos += n;
    return 0;
}

static int parse_container(parser *p, bool object, eng_json **out)
{
    eng_json *node;
    int rc = new_node(p, object ? ENG_JSON_OBJECT : ENG_JSON_ARRAY, &node);
    if (rc)
        return rc;
    if (++p->depth > p->max_depth)
        return eng_error(ENG_ELIMIT, "byte %zu: nesting deeper than %d", p->pos, p->max_depth);
    p->pos++; /* '[' or '{' */
    eng_json **tail = &node->child;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == (object ? '}' : ']')) {
        p->pos++;
        p->depth--;
        *out = node;
        return 0;
    }
    for (;;) {
        const char *key = NULL;
        size_t key_len = 0;
        skip_ws(p);
        if (object) {
            if (p->pos >= p->len || p->s[p->pos] != '"')
                return fail_at(p->pos, "expected a string key in object");
            if ((rc = parse_string(p, &key, &key_len)))
                return rc;
            skip_ws(p);
            if (p->pos >= p->len || p->s[p->pos] != ':')
                return fail_at(p->pos, "expected ':' after object key");
            p->pos++;
            skip_ws(p);
        }
        eng_json *child;
        if ((rc = parse_value(p, &child)))
            return rc;
        child->key = key;
        child->key_len = key_len;
        *tail = child;
        tail = &child->next;
        node->len++;
        skip_ws(p);
        if (p->pos >= p->len)
            return fail_at(p->pos, object ? "unterminated object" : "unterminated array");
        unsigned char c = p->s[p->pos++];
        if (c == ',')
            continue;
        if (c == (object ? '}' : ']'))
            break;
        return fail_at(p->pos - 1, object ? "expected ',' or '}' in object" : "expected ',' or ']' in array");
    }
    p->depth--;
    *out = node;
    return 0;
}

static int parse_value(parser *p, eng_json **out)
{
    if (p->pos >= p->len)
        return fail_at(p->pos, "unexpected end of text (expected a value)");
    unsigned char c = p->s[p->pos];
    int rc;
    switch (c) {
    case '{': return parse_container(p, true, out);
    case '[': return parse_container(p, false, out);
    case '"':
        if ((rc = new_node(p, ENG_JSON_STRING, out)))
            return rc;
        return parse_string(p, &(*out)->str, &(*out)->len);
    case 't': return parse_literal(p, "true", ENG_JSON_BOOL, true, out);
    case 'f': return parse_literal(p, "false", ENG_JSON_BOOL, false, out);
    case 'n': return parse_literal(p, "null", ENG_JSON_NULL, false, out);
    default:
        if (c == '-' || (c >= '0' && c <= '9')) {
            if ((rc = new_node(p, ENG_JSON_NUMBER, out)))
                return rc;
            return parse_number(p, *out);
        }
        return fail_at(p->pos, "unexpected character (expected a value)");
    }
}

int eng_json_parse(const char *text, size_t len, const eng_json_limits *limits, eng_json_doc **out)
{
    *out = NULL;
    eng_json_doc *doc = calloc(1, sizeof *doc);
    if (!doc)
        return eng_error(ENG_ENOMEM, "out of memory reading JSON");
    parser p = {
        .s = (const unsigned char *)text,
        .len = len,
        .max_depth = limits && limits->max_depth > 0 ? limits->max_depth : 64,
        .max_nodes = limits ? limits->max_nodes : 0,
        .doc = doc,
    };
    skip_ws(&p);
    int rc = parse_value(&p, &doc->root);
    if (!rc) {
        skip_ws(&p);
        if (p.pos != p.len)
            rc = fail_at(p.pos, "unexpected text after the JSON value");
    }
    if (p.c_locale)
        freelocale(p.c_locale);
    if (rc) {
        eng_json_doc_free(doc);
        return rc;
    }
    *out = doc;
    return 0;
}

void eng_json_doc_free(eng_json_doc *doc)
{
    if (!doc)
        return;
    for (arena_block *b = doc->blocks, *next; b; b = next) {
        next = b->next;
        free(b);
    }
    free(doc);
}

const eng_json *eng_json_root(const eng_json_doc *doc) { return doc->root; }

const eng_json *eng_json_member(const eng_json *obj, const char *key)
{
    if (!obj || obj->type != ENG_JSON_OBJECT)
        return NULL;
    size_t n = strlen(key);
    for (const eng_json *c = obj->child; c; c = c->next)
        if (c->key_len == n && memcmp(c->key, key, n) == 0)
            return c;
    return NULL;
}

bool eng_json_utf8_valid(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_seq(u + i, n - i);
        if (!k)
            return false;
        i += k;
    }
    return true;
}

const char *eng_json_type_name(eng_json_type t)
{
    static const char *const names[] = {
        [ENG_JSON_NULL] = "null",     [ENG_JSON_BOOL] = "boolean", [ENG_JSON_NUMBER] = "number",
        [ENG_JSON_STRING] = "string", [ENG_JSON_ARRAY] = "array",  [ENG_JSON_OBJECT] = "object",
    };
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "?";
}
