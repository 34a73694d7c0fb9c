/* Saturating size arithmetic: the one way the engine (and the spec
 * validator) forms products and sums of dimensions, counts and bytes.
 *
 * A spec can describe a model whose sizes do not fit in 64 bits (a reshape
 * to [34724, 27905, 49477, 384773] is 2^64 + 4 values). Plain arithmetic
 * wraps (or is undefined for signed integers) and a wrapped size passes
 * every check; these functions saturate instead: a result that does not fit,
 * or any operand that is negative or already ENG_SIZE_MAX, gives
 * ENG_SIZE_MAX, which is larger than every limit, so the parameter and
 * memory limits refuse it with a located message.
 *
 * Every size formed while a model is built or planned (shapes, parameter
 * counts, FLOPs, saved tensors, workspaces, activation memory) goes through
 * them. The per-step arithmetic of forward and backward does not need to:
 * eng_model_bind refuses a model whose planned memory saturates, and each
 * per-step product is bounded by the size of a planned buffer. */
#ifndef ENG_CHECKED_H
#define ENG_CHECKED_H

#include <stddef.h>
#include <stdint.h>

/* A size too large to count: the saturated result. */
#define ENG_SIZE_MAX INT64_MAX

/* a * b and a + b for sizes (>= 0), saturating at ENG_SIZE_MAX. */
int64_t eng_size_mul(int64_t a, int64_t b);
int64_t eng_size_add(int64_t a, int64_t b);
/* n rounded up to a multiple of 64 (byte sizes of planned buffers). */
int64_t eng_size_align64(int64_t n);
/* count elements of elem bytes as a byte count (saturating), for the
 * allocator; a saturated count stays ENG_SIZE_MAX, which no allocation
 * satisfies. */
size_t eng_size_bytes(int64_t count, size_t elem);

#endif
