/* Safetensors files: writing (atomically) and reading with full validation.
 *
 * Format (https://github.com/huggingface/safetensors): an 8-byte little-endian
 * u64 N, N bytes of a UTF-8 JSON header
 *   {"__metadata__": {"key": "value", ...},
 *    "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...}
 * (padded with spaces), then the data section: raw little-endian tensor bytes,
 * row-major, offsets relative to the data section's start.
 *
 * Reading validates everything (the file is untrusted): header length sane
 * and within the file, strict UTF-8 JSON (engine/json_reader.h), a top-level
 * object, unique names, known dtypes, shapes of non-negative integers whose
 * element count times the dtype size equals end - begin, begin <= end, and
 * tensors that exactly tile the data section (no holes, no overlap, no
 * trailing bytes). Tensor entries may hold only dtype, shape and
 * data_offsets; __metadata__ must map strings to strings.
 *
 * Writing keeps insertion order: tensors are laid out in the data section,
 * and listed in the header, in the order they were added (so a checkpoint
 * lists parameters in forward order). A tensor's data is therefore aligned to
 * its element size only when the bytes before it are a multiple of that size;
 * this holds when all tensors share one element size (our checkpoints: F32).
 * The header is padded with spaces so the data section starts at a multiple
 * of 8 bytes, as the reference implementation does. */
#ifndef ENG_SAFETENSORS_H
#define ENG_SAFETENSORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum eng_st_dtype {
    ENG_ST_BOOL = 0,
    ENG_ST_U8,
    ENG_ST_I8,
    ENG_ST_F8_E4M3,
    ENG_ST_F8_E5M2,
    ENG_ST_I16,
    ENG_ST_U16,
    ENG_ST_F16,
    ENG_ST_BF16,
    ENG_ST_I32,
    ENG_ST_U32,
    ENG_ST_F32,
    ENG_ST_I64,
    ENG_ST_U64,
    ENG_ST_F64,
    ENG_ST_DTYPE__COUNT
} eng_st_dtype;

#define ENG_ST_MAX_DIMS 8
#define ENG_ST_MAX_HEADER 100000000u /* bytes of JSON header, as the reference reader */

/* "F32", "BF16", ... ; "?" when out of range. */
const char *eng_st_dtype_name(eng_st_dtype dt);
/* Bytes per element (BOOL: 1); 0 when out of range. */
size_t eng_st_dtype_size(eng_st_dtype dt);
/* The dtype named `name` (exact, upper case); ENG_EINVAL if unknown. */
int eng_st_dtype_parse(const char *name, eng_st_dtype *out);

/* ---- writing ---- */

typedef struct eng_st_writer eng_st_writer;

int eng_st_writer_new(eng_st_writer **out);
void eng_st_writer_free(eng_st_writer *w);

/* Adds a tensor of shape[0..ndim) (ndim 0..ENG_ST_MAX_DIMS, dims >= 0,
 * ndim 0 = a scalar of one element). The name must be non-empty valid UTF-8,
 * unique in the writer, and not "__metadata__". eng_st_add copies the data;
 * eng_st_add_ref only keeps the pointer, which must stay valid until the
 * writer is freed (use it for large parameter buffers). data may be NULL
 * only when the tensor has no elements. */
int eng_st_add(eng_st_writer *w, const char *name, eng_st_dtype dt, const int64_t *shape, int ndim,
               const void *data);
int eng_st_add_ref(eng_st_writer *w, const char *name, eng_st_dtype dt, const int64_t *shape, int ndim,
                   const void *data);

/* Adds "key": "value" to __metadata__ (both copied, valid UTF-8; keys unique). */
int eng_st_add_metadata(eng_st_writer *w, const char *key, const char *value);

/* Writes the file atomically: `path`.tmp is written and fsync'ed, renamed
 * over `path`, then the directory is fsync'ed. On failure `path` is
 * untouched and the temporary file removed. One writer per path at a time
 * (the temporary name is fixed). */
int eng_st_write_file(eng_st_writer *w, const char *path);

/* The whole file image in memory (malloc'ed; the caller frees it). */
int eng_st_serialize(eng_st_writer *w, uint8_t **buf, size_t *len);

/* ---- reading ---- */

typedef struct eng_st_file eng_st_file;

typedef struct eng_st_tensor {
    const char *name;       /* decoded UTF-8, NUL-terminated (names holding NUL are rejected) */
    eng_st_dtype dtype;
    int ndim;
    int64_t shape[ENG_ST_MAX_DIMS];
    int64_t numel;
    size_t offset;          /* begin, relative to the data section */
    size_t nbytes;          /* end - begin */
    const void *data;       /* in the loaded data section (see alignment above); NULL when nbytes is 0
                               or the file was opened header only */
} eng_st_tensor;

/* Reads and validates a whole file into memory. The data section starts
 * 64-byte aligned in memory. Messages start with the path. Only a regular
 * file is read (engine/file.h); eng_st_open_flags passes ENG_FILE_* flags
 * (ENG_FILE_RESOLVED for init_from, ENG_FILE_NOFOLLOW for checkpoints). */
int eng_st_open(const char *path, eng_st_file **out);
int eng_st_open_flags(const char *path, unsigned file_flags, eng_st_file **out);
/* The header alone, validated as a whole file is (the tensors must tile the
 * file's data section), without reading the data: tensors have data NULL.
 * What checking a file against a model needs (the validator's init_from). */
int eng_st_open_header(const char *path, unsigned file_flags, eng_st_file **out);
/* The same from a buffer (copied); messages start with "safetensors buffer". */
int eng_st_parse(const void *buf, size_t len, eng_st_file **out);
void eng_st_close(eng_st_file *f);

/* Tensors in data order (= insertion order for files we write). */
int64_t eng_st_count(const eng_st_file *f);
const eng_st_tensor *eng_st_at(const eng_st_file *f, int64_t i);
/* The tensor called `name`, or NULL. */
const eng_st_tensor *eng_st_find(const eng_st_file *f, const char *name);

/* __metadata__ entries in header order; eng_st_metadata gives NULL when absent. */
int64_t eng_st_metadata_count(const eng_st_file *f);
int eng_st_metadata_at(const eng_st_file *f, int64_t i, const char **key, const char **value);
const char *eng_st_metadata(const eng_st_file *f, const char *key);

/* Copies tensor `name` into dst as float32, checking that it exists, is F32
 * and has exactly shape[0..ndim); messages name the tensor and both shapes.
 * ENG_ENOENT when absent, ENG_EFORMAT on a dtype or shape mismatch. */
int eng_st_read_f32(const eng_st_file *f, const char *name, const int64_t *shape, int ndim, float *dst);

#endif
