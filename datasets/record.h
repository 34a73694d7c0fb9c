/* The fetch record: a small text file, DIR/.epochd-fetched, written into a
 * dataset's folder before it is put in place. It says what was downloaded
 * (names, sizes, SHA-256 sums, URLs, when) and every file unpacked from it
 * with its size and SHA-256, so `epochd data list` can tell a complete,
 * verified folder from a damaged one without the network.
 *
 *   epochd-fetched 1
 *   dataset\tcifar10
 *   manifest\tbuilt-in
 *   fetched\t2024-05-01T12:00:00Z
 *   download\tcifar-10-binary.tar.gz\t170052171\tc4a38c50...\thttps://...
 *   file\tdata_batch_1.bin\t30730000\t<sha256>
 */
#ifndef DS_RECORD_H
#define DS_RECORD_H

#include <stdint.h>

#define DS_RECORD_NAME ".epochd-fetched"

typedef struct ds_record_item {
    char *name; /* download: the file name; file: the path under the folder */
    int64_t size;
    char sha256[65];
    char *url; /* downloads only */
} ds_record_item;

typedef struct ds_record {
    char *dataset, *manifest;
    char fetched[32];
    ds_record_item *downloads, *files;
    int n_downloads, n_files;
} ds_record;

/* Reads DIR/.epochd-fetched: DS_ENOENT when there is none, DS_EFORMAT when
 * unreadable. */
int ds_record_read(const char *dir, ds_record **out);
/* Writes (and syncs) DIR/.epochd-fetched; the files are hashed from DIR as
 * they are (listing every regular file below DIR). `progress` gets bytes
 * hashed so far; nonzero cancels. */
int ds_record_write(const char *dir, const ds_record *r, int (*progress)(void *ctx, int64_t done), void *ctx);
void ds_record_free(ds_record *r);

#endif
