/* Backend-independent helpers around the operation table. */
#include "engine/backend.h"

#include <stddef.h>

#include "engine/error.h"

void eng_backend_free(eng_backend *b)
{
    if (b && b->ops && b->ops->destroy)
        b->ops->destroy(b);
}

int eng_alloc_floats(eng_backend *b, int64_t n, float **out)
{
    if (!out)
        return eng_error(ENG_EINVAL, "eng_alloc_floats: out is NULL");
    *out = NULL;
    if (!b || !b->ops || !b->ops->alloc)
        return eng_error(ENG_EINVAL, "eng_alloc_floats: no backend");
    if (n < 0)
        return eng_error(ENG_EINVAL, "eng_alloc_floats: n = %lld is negative", (long long)n);
    if ((uint64_t)n > SIZE_MAX / sizeof(float))
        return eng_error(ENG_ENOMEM, "eng_alloc_floats: %lld floats do not fit in memory", (long long)n);
    void *p = NULL;
    int rc = b->ops->alloc(b, (size_t)n * sizeof(float), &p);
    if (rc < 0)
        return rc;
    *out = p;
    return 0;
}
