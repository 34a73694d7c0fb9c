/* Which CPU this is, as /proc/cpuinfo names it: the first processor's
 * model name, family and model. `epochd devices` shows the name; the kernel
 * file's machine signature needs all three, because the name alone can be
 * the same for two generations (a virtual machine's "AMD EPYC" is). */
#include <stdio.h>
#include <string.h>

#include "engine/cpu/cpu_internal.h"

void cpu_ident_read(cpu_ident *out)
{
    snprintf(out->name, sizeof out->name, "unknown");
    snprintf(out->family, sizeof out->family, "?");
    snprintf(out->model, sizeof out->model, "?");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[512];
    /* the first processor's block: up to its blank line */
    while (fgets(line, sizeof line, f) && line[0] != '\n') {
        char *v = strchr(line, ':');
        if (!v)
            continue;
        char *k_end = v;
        while (k_end > line && (k_end[-1] == ' ' || k_end[-1] == '\t'))
            k_end--;
        *k_end = '\0';
        for (v++; *v == ' ' || *v == '\t'; v++)
            ;
        v[strcspn(v, "\n")] = '\0';
        if (!strcmp(line, "model name"))
            snprintf(out->name, sizeof out->name, "%s", v);
        else if (!strcmp(line, "cpu family"))
            snprintf(out->family, sizeof out->family, "%s", v);
        else if (!strcmp(line, "model"))
            snprintf(out->model, sizeof out->model, "%s", v);
    }
    fclose(f);
}
