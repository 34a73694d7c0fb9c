/* Per-sample tensor shapes (the batch dimension is kept apart). */
#ifndef ENG_SHAPE_H
#define ENG_SHAPE_H

#include <stdbool.h>
#include <stdint.h>

#define ENG_MAX_DIMS 4

/* Shape of one sample: (F), (S, C) or (C, H, W). Row-major, last index fastest. */
typedef struct eng_shape {
    int ndim;
    int64_t d[ENG_MAX_DIMS];
} eng_shape;

static inline eng_shape eng_shape1(int64_t a) { return (eng_shape){1, {a}}; }
static inline eng_shape eng_shape2(int64_t a, int64_t b) { return (eng_shape){2, {a, b}}; }
static inline eng_shape eng_shape3(int64_t a, int64_t b, int64_t c) { return (eng_shape){3, {a, b, c}}; }

/* The element count; ENG_SIZE_MAX (engine/checked.h) when it does not fit. */
int64_t eng_shape_numel(const eng_shape *s);
/* The product of d[from..to) (1 when empty), saturating likewise. */
int64_t eng_shape_prod(const eng_shape *s, int from, int to);
bool eng_shape_equal(const eng_shape *a, const eng_shape *b);
/* "[3, 32, 32]"; returns buf. */
char *eng_shape_str(const eng_shape *s, char *buf, int len);

#endif
