/* "Did you mean ...?": the closest known word by edit distance. */
#include "schema/suggest.h"

#include <string.h>

/* Optimal string alignment distance (Levenshtein plus adjacent swaps),
 * capped: words longer than 63 characters are never close to a key. */
int spec_edit_distance(const char *a, const char *b)
{
    size_t n = strlen(a), m = strlen(b);
    if (n > 63 || m > 63)
        return 1000;
    int d[64][64];
    for (size_t i = 0; i <= n; i++)
        d[i][0] = (int)i;
    for (size_t j = 0; j <= m; j++)
        d[0][j] = (int)j;
    for (size_t i = 1; i <= n; i++) {
        for (size_t j = 1; j <= m; j++) {
            int cost = a[i - 1] != b[j - 1];
            int v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v)
                v = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < v)
                v = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    }
    return d[n][m];
}

const char *spec_suggest(const char *word, const char *const *cands, int n)
{
    const char *best = NULL;
    int best_d = 1000;
    size_t len = strlen(word);
    for (int i = 0; i < n; i++) {
        if (!cands[i])
            continue;
        int d = spec_edit_distance(word, cands[i]);
        if (d < best_d) {
            best_d = d;
            best = cands[i];
        }
    }
    /* close enough to be a typo: one edit for words of up to four letters, else two, or a
     * third of the word for long ones ("cifar" -> "cifar10") */
    int limit = len <= 4 ? 1 : (int)(len / 3) > 2 ? (int)(len / 3) : 2;
    if (limit > 3)
        limit = 3;
    return best && best_d <= limit ? best : NULL;
}
