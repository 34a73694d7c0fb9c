/* A strict byte stream over a dataset file that is plain or gzip-compressed
 * (the IDX files come either way; engine-internal).
 *
 * gzip is recognised by its magic bytes, whatever the file is called.
 * Unlike zlib's gzread, which ignores whatever follows the last gzip member,
 * nothing may follow it but another complete member (what `cat a.gz b.gz`
 * and `gzip -c a b` write): trailing garbage, a truncated member or a bad
 * CRC or length is a format error. The input comes from a file descriptor
 * or from memory (the fuzz target), read in blocks. */
#ifndef ENG_ZSTREAM_H
#define ENG_ZSTREAM_H

#include <stdbool.h>
#include <stddef.h>

typedef struct eng_zstream eng_zstream;

/* Takes fd (closed by eng_zstream_close, also on failure); label names the
 * file in messages. 0, ENG_ENOMEM or ENG_EIO. */
int eng_zstream_open_fd(int fd, const char *label, eng_zstream **out);
/* Reads buf[0, len), which must outlive the stream. */
int eng_zstream_open_mem(const void *buf, size_t len, const char *label, eng_zstream **out);
void eng_zstream_close(eng_zstream *z); /* NULL is a no-op */

/* Whether the file is gzip-compressed (else its bytes are the content). */
bool eng_zstream_compressed(const eng_zstream *z);

/* Reads exactly n bytes of content. ENG_EFORMAT when the content ends
 * first ("truncated: the file ends inside the <what>") or the compressed
 * data is damaged, ENG_EIO when reading fails. */
int eng_zstream_read(eng_zstream *z, void *buf, size_t n, const char *what);

/* The content and the file end here: 0, or ENG_EFORMAT naming what follows
 * ("unexpected data after the last of the items", "unexpected data after
 * the gzip stream"); `items` is put in the first message. */
int eng_zstream_expect_end(eng_zstream *z, const char *items);

#endif
