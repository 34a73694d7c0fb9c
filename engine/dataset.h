/* Datasets: loading the standard files into memory as uint8, and the
 * per-epoch batch order and augmentation draws.  (Helper C extends this.) */
#ifndef ENG_DATASET_H
#define ENG_DATASET_H

#include <stddef.h>

#include "engine/desc.h"

/* Checks that the dataset's files exist under d->root and are readable
 * (headers only; nothing is loaded). 0 if so; otherwise a negative code and
 * a message naming the missing or unreadable file in msg. Synthetic: 0. */
int eng_dataset_probe(const eng_data_desc *d, char *msg, size_t msg_len);

#endif
