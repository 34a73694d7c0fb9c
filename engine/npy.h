/* NumPy's array files, read from memory: the .npy format (a magic string,
 * a Python-literal header, the raw data) and .npz archives (zip files of
 * .npy members, stored or deflated, as np.savez and np.savez_compressed
 * write them).
 * https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
 *
 * Only what datasets need: simple little-endian (or byte) dtypes, C order,
 * up to ENG_NPY_MAX_DIMS dimensions. Messages name the file (and member). */
#ifndef ENG_NPY_H
#define ENG_NPY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ENG_NPY_MAX_DIMS 8

typedef struct eng_npy_array {
    char descr[16]; /* as written: "|u1", "<f4", "<i8" */
    char kind;      /* 'u' unsigned, 'i' signed, 'f' float, 'b' bool */
    int itemsize;   /* bytes per element */
    int ndim;
    int64_t shape[ENG_NPY_MAX_DIMS];
    int64_t count;             /* elements: the product of shape */
    const unsigned char *data; /* count * itemsize bytes, inside the parsed buffer */
} eng_npy_array;

/* Parses one .npy image of len bytes at buf. `name` names it in messages.
 * ENG_EFORMAT for anything that is not a C-ordered array of a simple
 * little-endian dtype whose data fits in the buffer (a big-endian,
 * Fortran-ordered, structured or object array says so). With header_only
 * the data's length is not checked (buf may hold just the file's start). */
int eng_npy_parse(const void *buf, size_t len, const char *name, bool header_only, eng_npy_array *out);

/* A member of an .npz (zip) archive held in memory: `data` points into the
 * archive for a stored member, or into `owned` (malloc'd, the caller frees
 * it) for a deflated one, which is inflated and its CRC-32 checked. */
typedef struct eng_npz_member {
    const unsigned char *data;
    size_t len;
    unsigned char *owned;
} eng_npz_member;

/* Finds `member` ("x.npy") in the archive: its first `want` bytes (0: all
 * of it, CRC-checked). ENG_ENOENT when it is not there (the message lists
 * what is), ENG_EFORMAT for a damaged or unsupported zip (encrypted, a
 * compression other than stored or deflate). */
int eng_npz_find(const void *zip, size_t len, const char *name, const char *member, size_t want, eng_npz_member *out);

#endif
