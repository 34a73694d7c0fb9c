/* Dataset manifests: what a downloadable dataset is made of - its files,
 * where each can be downloaded (URLs tried in order), its SHA-256 and size,
 * how it is unpacked, the folder under the data root it ends in, and the
 * loader that reads that folder.
 *
 * The four standard datasets are built in (manifest_builtin.c); a lab's own
 * come from a YAML file in the same format (docs/data.md):
 *
 *   datasets:
 *     - name: cifar10
 *       loader: cifar10            # cifar10 | cifar100 | mnist | fashion_mnist
 * | npy | none dir: cifar-10-batches-bin  # the folder under the data root
 *       files:
 *         - name: cifar-10-binary.tar.gz
 *           urls: [https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz]
 *           sha256: c4a38c50...
 *           size: 170052171        # optional: progress and the free-space
 * check unpack: archive        # archive (tar, tar.gz, zip ... via libarchive)
 * | copy strip: 1               # leading folders dropped from the archive's
 * paths expect: [data_batch_1.bin, test_batch.bin]   # must exist once unpacked
 */
#ifndef DS_MANIFEST_H
#define DS_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

typedef enum ds_unpack { DS_UNPACK_COPY = 0, DS_UNPACK_ARCHIVE } ds_unpack;

typedef struct ds_file {
    char *name; /* the file's name, also in downloads/ and on a mirror */
    char **urls;
    int n_urls;
    char sha256[65];
    int64_t size; /* bytes; -1 when not given */
    ds_unpack unpack;
    int strip; /* archive: leading path components removed */
} ds_file;

typedef struct ds_entry {
    char *name;   /* what `epochd data fetch NAME` takes */
    char *loader; /* the spec's dataset that reads the folder, or "none" */
    char *dir;    /* folder under the data root */
    ds_file *files;
    int n_files;
    char **expect; /* relative paths that must exist after unpacking */
    int n_expect;
} ds_entry;

typedef struct ds_manifest {
    char *source; /* the file it came from, or "built-in" */
    ds_entry *entries;
    int n;
} ds_manifest;

/* The built-in manifest (cifar10, cifar100, mnist, fashion_mnist). */
int ds_manifest_builtin(ds_manifest **out);
/* Its YAML text, to print as a template for a manifest of one's own. */
const char *ds_manifest_builtin_text(void);
/* Loads a manifest file; errors are located: "FILE:LINE:COL:
 * datasets[0].files[1].sha256: expected ...". */
int ds_manifest_load(const char *path, ds_manifest **out);
/* The same from text (path names it in messages). */
int ds_manifest_parse(const char *path, const char *text, size_t len, ds_manifest **out);
void ds_manifest_free(ds_manifest *m);
/* The entry called name, or NULL (the message lists the names there are). */
const ds_entry *ds_manifest_find(const ds_manifest *m, const char *name);
/* The sum of the files' sizes, or -1 when one is unknown. */
int64_t ds_entry_size(const ds_entry *e);

#endif
