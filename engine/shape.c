/* Shape helpers. */
#include "engine/shape.h"

#include <stdio.h>

#include "engine/checked.h"

int64_t eng_shape_prod(const eng_shape *s, int from, int to)
{
    int64_t n = 1;
    for (int i = from < 0 ? 0 : from; i < to && i < s->ndim; i++)
        n = eng_size_mul(n, s->d[i]);
    return n;
}

int64_t eng_shape_numel(const eng_shape *s) { return eng_shape_prod(s, 0, s->ndim); }

bool eng_shape_equal(const eng_shape *a, const eng_shape *b)
{
    if (a->ndim != b->ndim)
        return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->d[i] != b->d[i])
            return false;
    return true;
}

char *eng_shape_str(const eng_shape *s, char *buf, int len)
{
    int off = snprintf(buf, (size_t)len, "[");
    for (int i = 0; i < s->ndim && off < len; i++)
        off += snprintf(buf + off, (size_t)(len - off), i ? ", %lld" : "%lld", (long long)s->d[i]);
    if (off < len)
        snprintf(buf + off, (size_t)(len - off), "]");
    return buf;
}
