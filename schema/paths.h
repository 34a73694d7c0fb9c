/* File-system paths of a spec: resolving relative paths, data-root checks,
 * the default name of a spec file (also used by the service). */
#ifndef SPEC_PATHS_H
#define SPEC_PATHS_H

#include <stdbool.h>
#include <stddef.h>

/* Debian's dataset packages (dataset-mnist, dataset-fashion-mnist). */
#define SPEC_MNIST_ROOT "/usr/share/datasets/mnist"
#define SPEC_FASHION_MNIST_ROOT "/usr/share/datasets/fashion-mnist"

/* An absolute path for p: as is when absolute, else dir/p, where a relative
 * or empty dir is taken from the working directory. 0, or -1 if it does not fit. */
int spec_resolve_path(const char *dir, const char *p, char *out, size_t len);

/* The directory part of a file path ("" for a bare name); malloc'd, NULL on OOM. */
char *spec_dirname(const char *path);
/* The file name without directory and .yaml/.yml; malloc'd, NULL on OOM. */
char *spec_stem(const char *path);

/* The path with every symbolic link resolved (realpath), or, when it does
 * not exist, the resolved longest existing prefix with the rest appended
 * after removing "." and ".." lexically. 0, or -1 if it does not fit. */
int spec_canonical_path(const char *path, char *out, size_t len);

/* Whether path lies under one of roots, after resolving symlinks (or, for a
 * path that does not exist yet, after removing "." and ".." lexically). */
bool spec_under_roots(const char *path, const char *const *roots, int nroots);

#endif
