/* Properties every spec load must have, shared by the spec and the sweep
 * fuzz targets (fuzz_spec.c, fuzz_sweep.c). */
#ifndef FUZZ_SPEC_PROPS_H
#define FUZZ_SPEC_PROPS_H

#include <stddef.h>
#include <stdint.h>

#include "schema/spec.h"

#define FUZZ_FILE_NAME "/fuzz/f.yaml"

/* The options both targets load with: no file-system dependence, small limits. */
void fuzz_spec_options(spec_options *o);

/* Loads data[0, size) as FUZZ_FILE_NAME and checks the result's properties
 * (abort() on a failed one); returns the file for more checks, or NULL when
 * memory ran out. The caller frees it. */
spec_file *fuzz_spec_check(const uint8_t *data, size_t size, const spec_options *o);

#endif
