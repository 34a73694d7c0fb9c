/* Reading plain YAML scalars as integers, numbers and booleans.
 *
 * YAML 1.2 core schema, strictly: integers are decimal ([-+]?[0-9]+),
 * numbers also take a fraction and exponent (1e-3, 0.5, .5); true/false in
 * three spellings. Quoted scalars are always strings, and YAML 1.1's
 * yes/no/on/off are not booleans. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "schema/internal.h"

bool spec_scalar_int(const ynode *n, int64_t *out)
{
    if (n->kind != YN_SCALAR || n->quoted)
        return false;
    const char *s = n->s;
    size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
    if (!s[i])
        return false;
    for (size_t j = i; s[j]; j++)
        if (!isdigit((unsigned char)s[j]))
            return false;
    errno = 0;
    long long v = strtoll(s, NULL, 10);
    if (errno == ERANGE)
        return false;
    *out = v;
    return true;
}

bool spec_scalar_float(const ynode *n, double *out)
{
    if (n->kind != YN_SCALAR || n->quoted)
        return false;
    const char *s = n->s;
    size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
    size_t digits = 0;
    while (isdigit((unsigned char)s[i])) {
        i++;
        digits++;
    }
    if (s[i] == '.') {
        i++;
        while (isdigit((unsigned char)s[i])) {
            i++;
            digits++;
        }
    }
    if (!digits)
        return false;
    if (s[i] == 'e' || s[i] == 'E') {
        i++;
        if (s[i] == '-' || s[i] == '+')
            i++;
        if (!isdigit((unsigned char)s[i]))
            return false;
        while (isdigit((unsigned char)s[i]))
            i++;
    }
    if (s[i])
        return false;
    errno = 0;
    double v = strtod(s, NULL);
    if (!isfinite(v))
        return false;
    *out = v;
    return true;
}

int spec_scalar_bool(const ynode *n)
{
    if (n->kind != YN_SCALAR || n->quoted)
        return -1;
    static const char *const t[] = {"true", "True", "TRUE"}, *const f[] = {"false", "False", "FALSE"};
    for (int i = 0; i < 3; i++) {
        if (!strcmp(n->s, t[i]))
            return 1;
        if (!strcmp(n->s, f[i]))
            return 0;
    }
    return -1;
}
