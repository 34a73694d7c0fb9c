/* Saturating size arithmetic (see checked.h). */
#include "engine/checked.h"

int64_t eng_size_mul(int64_t a, int64_t b)
{
    int64_t r;
    if (a < 0 || b < 0 || a == ENG_SIZE_MAX || b == ENG_SIZE_MAX || __builtin_mul_overflow(a, b, &r))
        return ENG_SIZE_MAX;
    return r;
}

int64_t eng_size_add(int64_t a, int64_t b)
{
    int64_t r;
    if (a < 0 || b < 0 || a == ENG_SIZE_MAX || b == ENG_SIZE_MAX || __builtin_add_overflow(a, b, &r))
        return ENG_SIZE_MAX;
    return r;
}

int64_t eng_size_align64(int64_t n)
{
    int64_t r = eng_size_add(n, 63);
    return r == ENG_SIZE_MAX ? ENG_SIZE_MAX : r & ~(int64_t)63;
}

size_t eng_size_bytes(int64_t count, size_t elem)
{
    int64_t r = eng_size_mul(count, (int64_t)elem);
    return r == ENG_SIZE_MAX ? (size_t)ENG_SIZE_MAX : (size_t)r;
}
