/* Closest-word suggestions for unknown keys and values (internal). */
#ifndef SPEC_SUGGEST_H
#define SPEC_SUGGEST_H

int spec_edit_distance(const char *a, const char *b);
/* The candidate closest to word if it is plausibly a typo of it, else NULL. */
const char *spec_suggest(const char *word, const char *const *cands, int n);

#endif
