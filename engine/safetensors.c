/* Safetensors writer (atomic file replace) and validating reader. */
#include "engine/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/error.h"
#include "engine/file.h"
#include "engine/fdio.h"
#include "engine/json_reader.h"

static const struct {
    const char *name;
    size_t size;
} dtypes[] = {
    [ENG_ST_BOOL] = {"BOOL", 1},       [ENG_ST_U8] = {"U8", 1},     [ENG_ST_I8] = {"I8", 1},
    [ENG_ST_F8_E4M3] = {"F8_E4M3", 1}, [ENG_ST_F8_E5M2] = {"F8_E5M2", 1},
    [ENG_ST_I16] = {"I16", 2},         [ENG_ST_U16] = {"U16", 2},   [ENG_ST_F16] = {"F16", 2},
    [ENG_ST_BF16] = {"BF16", 2},       [ENG_ST_I32] = {"I32", 4},   [ENG_ST_U32] = {"U32", 4},
    [ENG_ST_F32] = {"F32", 4},         [ENG_ST_I64] = {"I64", 8},   [ENG_ST_U64] = {"U64", 8},
    [ENG_ST_F64] = {"F64", 8},
};
_Static_assert(sizeof dtypes / sizeof dtypes[0] == ENG_ST_DTYPE__COUNT, "every dtype has a name and size");

const char *eng_st_dtype_name(eng_st_dtype dt)
{
    return (unsigned)dt < ENG_ST_DTYPE__COUNT ? dtypes[dt].name : "?";
}

size_t eng_st_dtype_size(eng_st_dtype dt) { return (unsigned)dt < ENG_ST_DTYPE__COUNT ? dtypes[dt].size : 0; }

int eng_st_dtype_parse(const char *name, eng_st_dtype *out)
{
    for (int i = 0; i < ENG_ST_DTYPE__COUNT; i++)
        if (strcmp(name, dtypes[i].name) == 0) {
            *out = (eng_st_dtype)i;
            return 0;
        }
    return ENG_EINVAL;
}

/* Element count and byte size of a shape; false on a negative dim or overflow. */
static bool shape_bytes(const int64_t *shape, int ndim, size_t elem, int64_t *numel, size_t *bytes)
{
    uint64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || __builtin_mul_overflow(n, (uint64_t)shape[i], &n))
            return false;
    }
    uint64_t b;
    if (n > (uint64_t)INT64_MAX || __builtin_mul_overflow(n, (uint64_t)elem, &b) || b > SIZE_MAX)
        return false;
    *numel = (int64_t)n;
    *bytes = (size_t)b;
    return true;
}

/* ================================ writer ================================ */

typedef struct st_entry {
    char *name;
    eng_st_dtype dtype;
    int ndim;
    int64_t shape[ENG_ST_MAX_DIMS];
    size_t nbytes;
    const void *data;
    void *owned; /* the copy made by eng_st_add */
} st_entry;

struct eng_st_writer {
    st_entry *t;
    size_t n, cap;
    char **mkey, **mval;
    size_t nm, mcap;
};

int eng_st_writer_new(eng_st_writer **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? 0 : eng_error(ENG_ENOMEM, "out of memory (safetensors writer)");
}

void eng_st_writer_free(eng_st_writer *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n; i++) {
        free(w->t[i].name);
        free(w->t[i].owned);
    }
    for (size_t i = 0; i < w->nm; i++) {
        free(w->mkey[i]);
        free(w->mval[i]);
    }
    free(w->t);
    free(w->mkey);
    free(w->mval);
    free(w);
}

static int add_tensor(eng_st_writer *w, const char *name, eng_st_dtype dt, const int64_t *shape, int ndim,
                      const void *data, bool copy)
{
    if (!w || !name)
        return eng_error(ENG_EINVAL, "safetensors: NULL writer or name");
    size_t name_len = strlen(name);
    if (name_len == 0 || !eng_json_utf8_valid(name, name_len))
        return eng_error(ENG_EINVAL, "safetensors: tensor name must be non-empty valid UTF-8");
    if (strcmp(name, "__metadata__") == 0)
        return eng_error(ENG_EINVAL, "safetensors: '__metadata__' is reserved and cannot name a tensor");
    if ((unsigned)dt >= ENG_ST_DTYPE__COUNT)
        return eng_error(ENG_EINVAL, "safetensors: tensor '%.200s': unknown dtype %d", name, (int)dt);
    if (ndim < 0 || ndim > ENG_ST_MAX_DIMS || (ndim > 0 && !shape))
        return eng_error(ENG_EINVAL, "safetensors: tensor '%.200s': %d dimensions (0..%d supported)", name, ndim,
                         ENG_ST_MAX_DIMS);
    int64_t numel;
    size_t nbytes;
    if (!shape_bytes(shape, ndim, dtypes[dt].size, &numel, &nbytes))
        return eng_error(ENG_EINVAL, "safetensors: tensor '%.200s': negative dimension or size overflow", name);
    if (nbytes > 0 && !data)
        return eng_error(ENG_EINVAL, "safetensors: tensor '%.200s': NULL data", name);
    for (size_t i = 0; i < w->n; i++)
        if (strcmp(w->t[i].name, name) == 0)
            return eng_error(ENG_EINVAL, "safetensors: tensor '%.200s' added twice", name);
    if (w->n == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 16;
        st_entry *t = realloc(w->t, cap * sizeof *t);
        if (!t)
            return eng_error(ENG_ENOMEM, "out of memory (safetensors writer)");
        w->t = t;
        w->cap = cap;
    }
    st_entry e = {.dtype = dt, .ndim = ndim, .nbytes = nbytes, .data = data};
    for (int i = 0; i < ndim; i++)
        e.shape[i] = shape[i];
    e.name = strdup(name);
    if (!e.name)
        return eng_error(ENG_ENOMEM, "out of memory (safetensors writer)");
    if (copy && nbytes > 0) {
        e.owned = malloc(nbytes);
        if (!e.owned) {
            free(e.name);
            return eng_error(ENG_ENOMEM, "out of memory copying tensor '%.200s' (%zu bytes)", name, nbytes);
        }
        memcpy(e.owned, data, nbytes);
        e.data = e.owned;
    }
    w->t[w->n++] = e;
    return 0;
}

int eng_st_add(eng_st_writer *w, const char *name, eng_st_dtype dt, const int64_t *shape, int ndim,
               const void *data)
{
    return add_tensor(w, name, dt, shape, ndim, data, true);
}

int eng_st_add_ref(eng_st_writer *w, const char *name, eng_st_dtype dt, const int64_t *shape, int ndim,
                   const void *data)
{
    return add_tensor(w, name, dt, shape, ndim, data, false);
}

int eng_st_add_metadata(eng_st_writer *w, const char *key, const char *value)
{
    if (!w || !key || !value)
        return eng_error(ENG_EINVAL, "safetensors: NULL writer, metadata key or value");
    if (!eng_json_utf8_valid(key, strlen(key)) || !eng_json_utf8_valid(value, strlen(value)))
        return eng_error(ENG_EINVAL, "safetensors: metadata '%.200s' is not valid UTF-8", key);
    for (size_t i = 0; i < w->nm; i++)
        if (strcmp(w->mkey[i], key) == 0)
            return eng_error(ENG_EINVAL, "safetensors: metadata key '%.200s' added twice", key);
    if (w->nm == w->mcap) {
        size_t cap = w->mcap ? 2 * w->mcap : 8;
        char **k = realloc(w->mkey, cap * sizeof *k);
        if (!k)
            return eng_error(ENG_ENOMEM, "out of memory (safetensors writer)");
        w->mkey = k;
        char **v = realloc(w->mval, cap * sizeof *v);
        if (!v)
            return eng_error(ENG_ENOMEM, "out of memory (safetensors writer)");
        w->mval = v;
        w->mcap = cap;
    }
    char *k = strdup(key), *v = strdup(value);
    if (!k || !v) {
        free(k);
        free(v);
        return eng_error(ENG_ENOMEM, "out of memory (safetensors writer)");
    }
    w->mkey[w->nm] = k;
    w->mval[w->nm] = v;
    w->nm++;
    return 0;
}

/* A growing byte string for the header. */
typedef struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->cap - b->len < n + 1) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len < n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_fmt_u64(sbuf *b, uint64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)v);
    sb_put(b, tmp, (size_t)n);
}

/* A JSON string literal: quotes, backslashes and control characters escaped;
 * other UTF-8 passes through. */
static void sb_json_string(sbuf *b, const char *s)
{
    sb_put(b, "\"", 1);
    for (const unsigned char *u = (const unsigned char *)s; *u; u++) {
        char esc[8];
        switch (*u) {
        case '"': sb_put(b, "\\\"", 2); break;
        case '\\': sb_put(b, "\\\\", 2); break;
        case '\b': sb_put(b, "\\b", 2); break;
        case '\f': sb_put(b, "\\f", 2); break;
        case '\n': sb_put(b, "\\n", 2); break;
        case '\r': sb_put(b, "\\r", 2); break;
        case '\t': sb_put(b, "\\t", 2); break;
        default:
            if (*u < 0x20) {
                snprintf(esc, sizeof esc, "\\u%04x", *u);
                sb_put(b, esc, 6);
            } else
                sb_put(b, (const char *)u, 1);
        }
    }
    sb_put(b, "\"", 1);
}

/* The 8-byte length plus the padded header; *data_len gets the data section's size. */
static int build_header(const eng_st_writer *w, sbuf *b, uint64_t *data_len)
{
    sb_put(b, "\0\0\0\0\0\0\0\0", 8);
    sb_put(b, "{", 1);
    bool first = true;
    if (w->nm) {
        sb_str(b, "\"__metadata__\":{");
        for (size_t i = 0; i < w->nm; i++) {
            if (i)
                sb_put(b, ",", 1);
            sb_json_string(b, w->mkey[i]);
            sb_put(b, ":", 1);
            sb_json_string(b, w->mval[i]);
        }
        sb_put(b, "}", 1);
        first = false;
    }
    uint64_t off = 0;
    for (size_t i = 0; i < w->n; i++) {
        const st_entry *e = &w->t[i];
        if (!first)
            sb_put(b, ",", 1);
        first = false;
        sb_json_string(b, e->name);
        sb_str(b, ":{\"dtype\":\"");
        sb_str(b, dtypes[e->dtype].name);
        sb_str(b, "\",\"shape\":[");
        for (int d = 0; d < e->ndim; d++) {
            if (d)
                sb_put(b, ",", 1);
            sb_fmt_u64(b, (uint64_t)e->shape[d]);
        }
        sb_str(b, "],\"data_offsets\":[");
        sb_fmt_u64(b, off);
        sb_put(b, ",", 1);
        if (__builtin_add_overflow(off, (uint64_t)e->nbytes, &off))
            return eng_error(ENG_ELIMIT, "safetensors: total data size overflows");
        sb_fmt_u64(b, off);
        sb_str(b, "]}");
    }
    sb_put(b, "}", 1);
    while (!b->oom && b->len % 8 != 0)
        sb_put(b, " ", 1);
    if (b->oom)
        return eng_error(ENG_ENOMEM, "out of memory building the safetensors header");
    uint64_t n = b->len - 8;
    if (n > ENG_ST_MAX_HEADER)
        return eng_error(ENG_ELIMIT, "safetensors: header of %llu bytes exceeds %u", (unsigned long long)n,
                         ENG_ST_MAX_HEADER);
    for (int i = 0; i < 8; i++)
        b->p[i] = (char)(n >> (8 * i));
    *data_len = off;
    return 0;
}

int eng_st_serialize(eng_st_writer *w, uint8_t **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    sbuf h = {0};
    uint64_t data_len;
    int rc = build_header(w, &h, &data_len);
    if (rc) {
        free(h.p);
        return rc;
    }
    if (data_len > SIZE_MAX - h.len) {
        free(h.p);
        return eng_error(ENG_ELIMIT, "safetensors: file too large for memory");
    }
    uint8_t *out = malloc(h.len + data_len);
    if (!out) {
        free(h.p);
        return eng_error(ENG_ENOMEM, "out of memory serialising safetensors (%llu bytes)",
                         (unsigned long long)(h.len + data_len));
    }
    memcpy(out, h.p, h.len);
    size_t off = h.len;
    for (size_t i = 0; i < w->n; i++) {
        if (w->t[i].nbytes)
            memcpy(out + off, w->t[i].data, w->t[i].nbytes);
        off += w->t[i].nbytes;
    }
    *buf = out;
    *len = off;
    free(h.p);
    return 0;
}

static int fsync_dir_of(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return eng_error(ENG_ENOMEM, "out of memory");
    const char *dir = dirname(copy);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        int rc = eng_error(ENG_EIO, "%s: cannot open directory to sync it: %s", dir, strerror(errno));
        free(copy);
        return rc;
    }
    int rc = 0;
    if (fsync(fd) != 0 && errno != EINVAL) /* some file systems cannot sync directories */
        rc = eng_error(ENG_EIO, "%s: fsync of the directory failed: %s", dir, strerror(errno));
    close(fd);
    free(copy);
    return rc;
}

int eng_st_write_file(eng_st_writer *w, const char *path)
{
    if (!w || !path)
        return eng_error(ENG_EINVAL, "safetensors: NULL writer or path");
    sbuf h = {0};
    uint64_t data_len;
    int rc = build_header(w, &h, &data_len);
    if (rc) {
        free(h.p);
        return rc;
    }
    size_t tlen = strlen(path) + 5;
    char *tmp = malloc(tlen);
    if (!tmp) {
        free(h.p);
        return eng_error(ENG_ENOMEM, "out of memory");
    }
    snprintf(tmp, tlen, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = eng_error(ENG_EIO, "%s: cannot create: %s", tmp, strerror(errno));
        goto out;
    }
    if (eng_write_full(fd, h.p, h.len) != 0) {
        rc = eng_error(ENG_EIO, "%s: write failed: %s", tmp, strerror(errno));
        goto fail_fd;
    }
    for (size_t i = 0; i < w->n; i++)
        if (w->t[i].nbytes && eng_write_full(fd, w->t[i].data, w->t[i].nbytes) != 0) {
            rc = eng_error(ENG_EIO, "%s: write failed: %s", tmp, strerror(errno));
            goto fail_fd;
        }
    if (fsync(fd) != 0) {
        rc = eng_error(ENG_EIO, "%s: fsync failed: %s", tmp, strerror(errno));
        goto fail_fd;
    }
    if (close(fd) != 0) {
        fd = -1;
        rc = eng_error(ENG_EIO, "%s: close failed: %s", tmp, strerror(errno));
        goto fail_tmp;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        rc = eng_error(ENG_EIO, "%s: cannot rename to %s: %s", tmp, path, strerror(errno));
        goto fail_tmp;
    }
    rc = fsync_dir_of(path);
    goto out;
fail_fd:
    close(fd);
fail_tmp:
    unlink(tmp);
out:
    free(tmp);
    free(h.p);
    return rc;
}

/* ================================ reader ================================ */

struct eng_st_file {
    unsigned char *storage;      /* the file image (header and data) */
    const unsigned char *data;   /* the data section inside storage, 64-byte aligned */
    size_t data_len;
    eng_json_doc *doc;           /* owns the decoded names and metadata strings */
    eng_st_tensor *t;            /* in data order */
    int64_t n;
    int64_t *by_name;            /* indexes into t, sorted by name */
    const char **mkey, **mval;
    int64_t nm;
};

void eng_st_close(eng_st_file *f)
{
    if (!f)
        return;
    free(f->storage);
    eng_json_doc_free(f->doc);
    free(f->t);
    free(f->by_name);
    free(f->mkey);
    free(f->mval);
    free(f);
}

static uint64_t le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static int cmp_name(const void *a, const void *b, void *ctx)
{
    const eng_st_tensor *t = ctx;
    return strcmp(t[*(const int64_t *)a].name, t[*(const int64_t *)b].name);
}

static int cmp_key(const void *a, const void *b, void *ctx)
{
    const char *const *k = ctx;
    return strcmp(k[*(const int64_t *)a], k[*(const int64_t *)b]);
}

/* Data order: by (begin, end); zero-byte tensors sharing an offset keep header order. */
typedef struct order_key {
    size_t begin, end;
    int64_t pos; /* index in header order */
} order_key;

static int cmp_order(const void *a, const void *b)
{
    const order_key *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

static int non_negative_int(const eng_json *v, uint64_t *out)
{
    if (!v || v->type != ENG_JSON_NUMBER || !v->is_int || v->integer < 0)
        return -1;
    *out = (uint64_t)v->integer;
    return 0;
}

/* One "name": {"dtype", "shape", "data_offsets"} entry. */
static int parse_entry(const char *label, const eng_json *m, size_t data_len, eng_st_tensor *t, size_t *end)
{
    const char *name = m->key;
    if (m->type != ENG_JSON_OBJECT)
        return eng_error(ENG_EFORMAT, "%s: tensor '%.200s': expected an object, found %s", label, name,
                         eng_json_type_name(m->type));
    const eng_json *dtype = NULL, *shape = NULL, *offs = NULL;
    for (const eng_json *c = m->child; c; c = c->next) {
        const eng_json **slot = NULL;
        if (strcmp(c->key, "dtype") == 0 && c->key_len == 5)
            slot = &dtype;
        else if (strcmp(c->key, "shape") == 0 && c->key_len == 5)
            slot = &shape;
        else if (strcmp(c->key, "data_offsets") == 0 && c->key_len == 12)
            slot = &offs;
        else
            return eng_error(ENG_EFORMAT, "%s: tensor '%.200s': unknown field '%.100s'", label, name, c->key);
        if (*slot)
            return eng_error(ENG_EFORMAT, "%s: tensor '%.200s': duplicate field '%s'", label, name, c->key);
        *slot = c;
    }
    if (!dtype || !shape || !offs)
        return eng_error(ENG_EFORMAT, "%s: tensor '%.200s': missing '%s'", label, name,
                         !dtype ? "dtype" : !shape ? "shape" : "data_offsets");
    if (dtype->type != ENG_JSON_STRING || eng_st_dtype_parse(dtype->str, &t->dtype) != 0 ||
        strlen(dtype->str) != dtype->len)
        return eng_error(ENG_EFORMAT, "%s: tensor '%.200s': unknown dtype%s%.40s%s", label, name,
                         dtype->type == ENG_JSON_STRING ? " '" : " (not a string)",
                         dtype->type == ENG_JSON_STRING ? dtype->str : "",
                         dtype->type == ENG_JSON_STRING ? "'" : "");
    if (shape->type != ENG_JSON_ARRAY)
        return eng_error(ENG_EFORMAT, "%s: tensor '%.200s': shape must be an array of integers", label, name);
    if (shape->len > ENG_ST_MAX_DIMS)
        return eng_error(ENG_EFORMAT, "%s: tensor '%.200s': %zu dimensions (at most %d supported)", label, name,
                         shape->len, ENG_ST_MAX_DIMS);
    t->ndim = 0;
    for (const eng_json *d = shape->child; d; d = d->next) {
        uint64_t v;
        if (non_negative_int(d, &v) != 0)
            return eng_error(ENG_EFORMAT, "%s: tensor '%.200s': shape entries must be non-negative integers",
                             label, name);
        t->shape[t->ndim++] = (int64_t)v;
    }
    if (offs->type != ENG_JSON_ARRAY || offs->len != 2)
        return eng_error(ENG_EFORMAT, "%s: tensor '%.200s': data_offsets must be [begin, end]", label, name);
    uint64_t begin, stop;
    if (non_negative_int(offs->child, &begin) != 0 || non_negative_int(offs->child->next, &stop) != 0)
        return eng_error(ENG_EFORMAT, "%s: tensor '%.200s': data_offsets must be non-negative integers", label,
                         name);
    if (begin > stop)
        return eng_error(ENG_EFORMAT, "%s: tensor '%.200s': data_offsets [%llu, %llu]: begin after end", label,
                         name, (unsigned long long)begin, (unsigned long long)stop);
    if (stop > data_len)
        return eng_error(ENG_EFORMAT,
                         "%s: tensor '%.200s': data_offsets [%llu, %llu] beyond the data section (%zu bytes)",
                         label, name, (unsigned long long)begin, (unsigned long long)stop, data_len);
    if (!shape_bytes(t->shape, t->ndim, dtypes[t->dtype].size, &t->numel, &t->nbytes))
        return eng_error(ENG_EFORMAT, "%s: tensor '%.200s': shape's byte size overflows", label, name);
    if (t->nbytes != stop - begin)
        return eng_error(ENG_EFORMAT,
                         "%s: tensor '%.200s': %s shape needs %zu bytes but data_offsets [%llu, %llu] hold %llu",
                         label, name, dtypes[t->dtype].name, t->nbytes, (unsigned long long)begin,
                         (unsigned long long)stop, (unsigned long long)(stop - begin));
    t->name = name;
    t->offset = (size_t)begin;
    *end = (size_t)stop;
    return 0;
}

static int parse_metadata(const char *label, const eng_json *m, eng_st_file *f)
{
    if (m->type != ENG_JSON_OBJECT)
        return eng_error(ENG_EFORMAT, "%s: __metadata__ must be an object of strings, found %s", label,
                         eng_json_type_name(m->type));
    f->mkey = malloc((m->len ? m->len : 1) * sizeof *f->mkey);
    f->mval = malloc((m->len ? m->len : 1) * sizeof *f->mval);
    if (!f->mkey || !f->mval)
        return eng_error(ENG_ENOMEM, "out of memory reading safetensors metadata");
    for (const eng_json *c = m->child; c; c = c->next) {
        if (c->type != ENG_JSON_STRING)
            return eng_error(ENG_EFORMAT, "%s: __metadata__ '%.200s': value must be a string, found %s", label,
                             c->key, eng_json_type_name(c->type));
        if (strlen(c->key) != c->key_len || strlen(c->str) != c->len)
            return eng_error(ENG_EFORMAT, "%s: __metadata__ '%.200s': NUL character in key or value", label,
                             c->key);
        f->mkey[f->nm] = c->key;
        f->mval[f->nm] = c->str;
        f->nm++;
    }
    /* Keys unique: sort an index (a hostile header may hold millions). */
    int64_t *idx = malloc((f->nm ? (size_t)f->nm : 1) * sizeof *idx);
    if (!idx)
        return eng_error(ENG_ENOMEM, "out of memory reading safetensors metadata");
    for (int64_t i = 0; i < f->nm; i++)
        idx[i] = i;
    qsort_r(idx, (size_t)f->nm, sizeof *idx, cmp_key, f->mkey);
    for (int64_t i = 1; i < f->nm; i++)
        if (strcmp(f->mkey[idx[i]], f->mkey[idx[i - 1]]) == 0) {
            int rc = eng_error(ENG_EFORMAT, "%s: __metadata__: duplicate key '%.200s'", label, f->mkey[idx[i]]);
            free(idx);
            return rc;
        }
    free(idx);
    return 0;
}

/* The frame: an 8-byte little-endian header length, then a JSON object of
 * that many bytes, then the data section. Sets *hlen. */
static int check_frame(const char *label, const unsigned char *file, size_t len, uint64_t *hlen)
{
    if (len < 8)
        return eng_error(ENG_EFORMAT, "%s: %zu bytes, too short for a safetensors file (8-byte header length)",
                         label, len);
    *hlen = le64(file);
    if (*hlen < 2 || *hlen > ENG_ST_MAX_HEADER)
        return eng_error(ENG_EFORMAT, "%s: header length %llu outside 2..%u bytes", label,
                         (unsigned long long)*hlen, ENG_ST_MAX_HEADER);
    if (*hlen > len - 8)
        return eng_error(ENG_EFORMAT, "%s: header length %llu exceeds the file (%zu bytes)", label,
                         (unsigned long long)*hlen, len);
    if (file[8] != '{')
        return eng_error(ENG_EFORMAT, "%s: header does not start with '{'", label);
    return 0;
}

/* Parses the header (hlen bytes) into f's tensors in header order, each
 * tensor's byte range into order (room for every member), the metadata
 * into f->mkey/mval. */
static int parse_header(const char *label, const char *header, uint64_t hlen, eng_st_file *f, order_key **order)
{
    /* Header limits: safetensors headers nest three deep; a tensor entry
     * costs at least ~40 bytes of text, so nodes <= bytes / 4 is generous. */
    eng_json_limits lim = {.max_depth = 4, .max_nodes = (size_t)hlen / 4 + 16};
    int rc = eng_json_parse(header, (size_t)hlen, &lim, &f->doc);
    if (rc) {
        char why[512];
        snprintf(why, sizeof why, "%s", eng_last_error());
        return eng_error(rc, "%s: header is not valid JSON: %s", label, why);
    }
    const eng_json *root = eng_json_root(f->doc);
    if (root->type != ENG_JSON_OBJECT)
        return eng_error(ENG_EFORMAT, "%s: header must be a JSON object", label);
    f->t = malloc((root->len ? root->len : 1) * sizeof *f->t);
    *order = malloc((root->len ? root->len : 1) * sizeof **order);
    if (!f->t || !*order)
        return eng_error(ENG_ENOMEM, "out of memory reading safetensors header");
    bool have_meta = false;
    for (const eng_json *m = root->child; m; m = m->next) {
        if (strlen(m->key) != m->key_len)
            return eng_error(ENG_EFORMAT, "%s: a tensor name holds a NUL character", label);
        if (strcmp(m->key, "__metadata__") == 0) {
            if (have_meta)
                return eng_error(ENG_EFORMAT, "%s: duplicate __metadata__", label);
            have_meta = true;
            if ((rc = parse_metadata(label, m, f)))
                return rc;
            continue;
        }
        eng_st_tensor *t = &f->t[f->n];
        memset(t, 0, sizeof *t);
        size_t end = 0;
        if ((rc = parse_entry(label, m, f->data_len, t, &end)))
            return rc;
        (*order)[f->n] = (order_key){t->offset, end, f->n};
        f->n++;
    }
    return 0;
}

/* Sorts f->by_name over f->t. */
static void index_names(eng_st_file *f)
{
    for (int64_t i = 0; i < f->n; i++)
        f->by_name[i] = i;
    qsort_r(f->by_name, (size_t)f->n, sizeof *f->by_name, cmp_name, f->t);
}

/* Tensor names are unique; builds the name index. */
static int check_names(const char *label, eng_st_file *f)
{
    f->by_name = malloc((f->n ? (size_t)f->n : 1) * sizeof *f->by_name);
    if (!f->by_name)
        return eng_error(ENG_ENOMEM, "out of memory reading safetensors header");
    index_names(f);
    for (int64_t i = 1; i < f->n; i++)
        if (strcmp(f->t[f->by_name[i]].name, f->t[f->by_name[i - 1]].name) == 0)
            return eng_error(ENG_EFORMAT, "%s: duplicate tensor name '%.200s'", label, f->t[f->by_name[i]].name);
    return 0;
}

/* The tensors must tile the data section exactly; sorts order into data order. */
static int check_tiling(const char *label, const eng_st_file *f, order_key *order)
{
    qsort(order, (size_t)f->n, sizeof *order, cmp_order);
    size_t at = 0;
    for (int64_t i = 0; i < f->n; i++) {
        const eng_st_tensor *t = &f->t[order[i].pos];
        if (order[i].begin != at)
            return eng_error(ENG_EFORMAT, "%s: tensor '%.200s' starts at data offset %zu, expected %zu (%s)", label,
                             t->name, order[i].begin, at, order[i].begin > at ? "a hole" : "an overlap");
        at = order[i].end;
    }
    if (at != f->data_len)
        return eng_error(ENG_EFORMAT, "%s: the tensors cover %zu bytes but the data section holds %zu", label, at,
                         f->data_len);
    return 0;
}

/* Reorders f->t into data order (order, sorted), points each tensor at its
 * bytes (none when only the header was read) and rebuilds the name index. */
static int into_data_order(eng_st_file *f, const order_key *order)
{
    eng_st_tensor *sorted = malloc((f->n ? (size_t)f->n : 1) * sizeof *sorted);
    if (!sorted)
        return eng_error(ENG_ENOMEM, "out of memory reading safetensors header");
    for (int64_t i = 0; i < f->n; i++) {
        sorted[i] = f->t[order[i].pos];
        sorted[i].data = sorted[i].nbytes && f->data ? f->data + sorted[i].offset : NULL;
    }
    free(f->t);
    f->t = sorted;
    index_names(f);
    return 0;
}

/* Validates the file image file[0, len) held in `storage` (taken over).
 * header_only: file holds only the first 8 + header-length bytes of a file
 * of len bytes (when the length is sane); tensors get no data. */
static int st_load(const char *label, unsigned char *storage, const unsigned char *file, size_t len,
                   bool header_only, eng_st_file **out)
{
    *out = NULL;
    eng_st_file *f = calloc(1, sizeof *f);
    if (!f) {
        free(storage);
        return eng_error(ENG_ENOMEM, "out of memory reading safetensors");
    }
    f->storage = storage;
    order_key *order = NULL;
    uint64_t hlen = 0;
    int rc = check_frame(label, file, len, &hlen);
    if (!rc) {
        f->data = header_only ? NULL : file + 8 + hlen;
        f->data_len = len - 8 - (size_t)hlen;
        rc = parse_header(label, (const char *)file + 8, hlen, f, &order);
    }
    if (!rc)
        rc = check_names(label, f);
    if (!rc)
        rc = check_tiling(label, f, order);
    if (!rc)
        rc = into_data_order(f, order);
    free(order);
    if (rc) {
        eng_st_close(f);
        return rc;
    }
    *out = f;
    return 0;
}

/* Room for a file image of `len` bytes whose data section (after the
 * header of hlen bytes) lands on a 64-byte boundary. */
static unsigned char *alloc_image(size_t len, uint64_t hlen, unsigned char **file)
{
    if (len > SIZE_MAX - 64)
        return NULL;
    unsigned char *storage = malloc(len + 64);
    if (!storage)
        return NULL;
    uintptr_t data = (uintptr_t)storage + 8 + (uintptr_t)(hlen <= len ? hlen : 0);
    size_t shift = (64 - data % 64) % 64;
    *file = storage + shift;
    return storage;
}

int eng_st_parse(const void *buf, size_t len, eng_st_file **out)
{
    *out = NULL;
    uint64_t hlen = len >= 8 ? le64(buf) : 0;
    unsigned char *file;
    unsigned char *storage = alloc_image(len, hlen, &file);
    if (!storage)
        return eng_error(ENG_ENOMEM, "safetensors buffer: out of memory (%zu bytes)", len);
    if (len)
        memcpy(file, buf, len);
    return st_load("safetensors buffer", storage, file, len, false, out);
}

static int st_open(const char *path, unsigned file_flags, bool header_only, eng_st_file **out)
{
    *out = NULL;
    int fd;
    struct stat st;
    int rc = eng_file_open(path, file_flags, &fd, &st); /* a FIFO or a device is refused, never read */
    if (rc)
        return rc;
    if ((uint64_t)st.st_size > SIZE_MAX - 64) {
        close(fd);
        return eng_error(ENG_ELIMIT, "%s: file too large", path);
    }
    size_t len = (size_t)st.st_size;
    if (len < 8) {
        close(fd);
        return eng_error(ENG_EFORMAT, "%s: %zu bytes, too short for a safetensors file (8-byte header length)",
                         path, len);
    }
    unsigned char head[8];
    if (eng_read_full(fd, head, 8) != 0) {
        rc = eng_error(ENG_EIO, "%s: read failed: %s", path, errno ? strerror(errno) : "file shrank");
        close(fd);
        return rc;
    }
    uint64_t hlen = le64(head);
    /* header only: what st_load reads when the length is sane, else nothing more */
    size_t want = !header_only ? len : hlen <= ENG_ST_MAX_HEADER && hlen <= len - 8 ? 8 + (size_t)hlen : 8;
    unsigned char *file;
    unsigned char *storage = alloc_image(want, hlen, &file);
    if (!storage) {
        close(fd);
        return eng_error(ENG_ENOMEM, "%s: out of memory (%zu bytes)", path, want);
    }
    memcpy(file, head, 8);
    if (want > 8 && eng_read_full(fd, file + 8, want - 8) != 0) {
        rc = eng_error(ENG_EIO, "%s: read failed: %s", path, errno ? strerror(errno) : "file shrank");
        close(fd);
        free(storage);
        return rc;
    }
    /* A file that grew while we read it is not the file we validated. */
    char extra;
    ssize_t more = header_only ? 0 : read(fd, &extra, 1);
    close(fd);
    if (more != 0) {
        free(storage);
        return eng_error(ENG_EIO, "%s: file changed while reading", path);
    }
    return st_load(path, storage, file, len, header_only, out);
}

int eng_st_open(const char *path, eng_st_file **out) { return st_open(path, 0, false, out); }

int eng_st_open_flags(const char *path, unsigned file_flags, eng_st_file **out)
{
    return st_open(path, file_flags, false, out);
}

int eng_st_open_header(const char *path, unsigned file_flags, eng_st_file **out)
{
    return st_open(path, file_flags, true, out);
}

int64_t eng_st_count(const eng_st_file *f) { return f->n; }

const eng_st_tensor *eng_st_at(const eng_st_file *f, int64_t i)
{
    return i >= 0 && i < f->n ? &f->t[i] : NULL;
}

const eng_st_tensor *eng_st_find(const eng_st_file *f, const char *name)
{
    int64_t lo = 0, hi = f->n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int c = strcmp(f->t[f->by_name[mid]].name, name);
        if (c == 0)
            return &f->t[f->by_name[mid]];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

int64_t eng_st_metadata_count(const eng_st_file *f) { return f->nm; }

int eng_st_metadata_at(const eng_st_file *f, int64_t i, const char **key, const char **value)
{
    if (i < 0 || i >= f->nm)
        return eng_error(ENG_EINVAL, "safetensors: metadata index %lld out of range", (long long)i);
    *key = f->mkey[i];
    *value = f->mval[i];
    return 0;
}

const char *eng_st_metadata(const eng_st_file *f, const char *key)
{
    for (int64_t i = 0; i < f->nm; i++)
        if (strcmp(f->mkey[i], key) == 0)
            return f->mval[i];
    return NULL;
}

static void shape_str(const int64_t *shape, int ndim, char *buf, size_t len)
{
    size_t off = (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < ndim && off < len; i++)
        off += (size_t)snprintf(buf + off, len - off, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (off < len)
        snprintf(buf + off, len - off, "]");
}

int eng_st_read_f32(const eng_st_file *f, const char *name, const int64_t *shape, int ndim, float *dst)
{
    const eng_st_tensor *t = eng_st_find(f, name);
    if (!t)
        return eng_error(ENG_ENOENT, "tensor '%.200s' not in the file", name);
    if (t->dtype != ENG_ST_F32)
        return eng_error(ENG_EFORMAT, "tensor '%.200s': dtype %s in the file, F32 expected", name,
                         dtypes[t->dtype].name);
    bool same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++)
        same = t->shape[i] == shape[i];
    if (!same) {
        char a[160], b[160];
        shape_str(t->shape, t->ndim, a, sizeof a);
        shape_str(shape, ndim > ENG_ST_MAX_DIMS ? ENG_ST_MAX_DIMS : ndim, b, sizeof b);
        return eng_error(ENG_EFORMAT, "tensor '%.200s': shape %s in the file, %s expected", name, a, b);
    }
    if (t->nbytes)
        memcpy(dst, t->data, t->nbytes);
    return 0;
}
