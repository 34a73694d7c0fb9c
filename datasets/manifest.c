/* Manifest files: libyaml's document tree into ds_manifest, with the first
 * problem located as FILE:LINE:COL: key.path: message (manifest.h). */
#include "datasets/manifest.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "datasets/error.h"
#include "datasets/sha256.h"

#define MAX_MANIFEST_BYTES (1 << 20)

typedef struct mctx {
    const char *path;
    yaml_document_t *doc;
} mctx;

static int at(const mctx *c, const yaml_node_t *n, const char *key, const char *fmt, const char *found)
{
    return ds_error(DS_EINVAL, "%s:%zu:%zu: %s: %s%s%s", c->path, n->start_mark.line + 1, n->start_mark.column + 1, key,
                    fmt, found ? ", found " : "", found ? found : "");
}

static const char *scalar(const yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static const yaml_node_t *map_get(const mctx *c, const yaml_node_t *map, const char *key)
{
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        const char *k = scalar(yaml_document_get_node(c->doc, p->key));
        if (k && !strcmp(k, key))
            return yaml_document_get_node(c->doc, p->value);
    }
    return NULL;
}

/* Every key of map is one of known[]. */
static int known_keys(const mctx *c, const yaml_node_t *map, const char *path, const char *const *known, int n)
{
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        const yaml_node_t *kn = yaml_document_get_node(c->doc, p->key);
        const char *k = scalar(kn);
        bool ok = false;
        for (int i = 0; k && i < n; i++)
            ok |= !strcmp(k, known[i]);
        if (!ok) {
            char where[256];
            snprintf(where, sizeof where, "%.120s%s%.120s", path, path[0] ? "." : "", k ? k : "?");
            return at(c, kn, where, "unknown key", NULL);
        }
    }
    return 0;
}

static int need_map(const mctx *c, const yaml_node_t *n, const char *path)
{
    return n->type == YAML_MAPPING_NODE ? 0 : at(c, n, path, "expected a map", NULL);
}

static int get_string(const mctx *c, const yaml_node_t *map, const char *path, const char *key, bool required,
                      char **out)
{
    char where[256];
    snprintf(where, sizeof where, "%.150s.%s", path, key);
    const yaml_node_t *n = map_get(c, map, key);
    if (!n)
        return required ? at(c, map, where, "missing required key", NULL) : 0;
    const char *s = scalar(n);
    if (!s || !s[0])
        return at(c, n, where, "expected a non-empty string", NULL);
    if (!(*out = strdup(s)))
        return ds_error(DS_ENOMEM, "out of memory");
    return 0;
}

static int get_int(const mctx *c, const yaml_node_t *map, const char *path, const char *key, int64_t lo, int64_t *out)
{
    char where[256];
    snprintf(where, sizeof where, "%.150s.%s", path, key);
    const yaml_node_t *n = map_get(c, map, key);
    if (!n)
        return 0;
    const char *s = scalar(n);
    char *end = NULL;
    errno = 0;
    long long v = s ? strtoll(s, &end, 10) : 0;
    if (!s || !*s || *end || errno || v < lo)
        return at(c, n, where, lo ? "expected a positive integer" : "expected an integer >= 0", s);
    *out = v;
    return 0;
}

/* A list of non-empty strings (a single string counts as a list of one). */
static int get_strings(const mctx *c, const yaml_node_t *map, const char *path, const char *key, bool required,
                       char ***out, int *n_out)
{
    char where[256];
    snprintf(where, sizeof where, "%.150s.%s", path, key);
    const yaml_node_t *n = map_get(c, map, key);
    if (!n)
        return required ? at(c, map, where, "missing required key", NULL) : 0;
    const yaml_node_t *one[1] = {n};
    int count;
    if (n->type == YAML_SCALAR_NODE)
        count = 1;
    else if (n->type == YAML_SEQUENCE_NODE)
        count = (int)(n->data.sequence.items.top - n->data.sequence.items.start);
    else
        return at(c, n, where, "expected a list of strings", NULL);
    if (count == 0 && required)
        return at(c, n, where, "expected at least one entry", NULL);
    char **v = calloc((size_t)count + 1, sizeof *v);
    if (!v)
        return ds_error(DS_ENOMEM, "out of memory");
    *out = v;
    *n_out = 0;
    for (int i = 0; i < count; i++) {
        const yaml_node_t *it =
            n->type == YAML_SCALAR_NODE ? one[0] : yaml_document_get_node(c->doc, n->data.sequence.items.start[i]);
        const char *s = scalar(it);
        if (!s || !s[0])
            return at(c, it, where, "expected a non-empty string", NULL);
        if (!(v[i] = strdup(s)))
            return ds_error(DS_ENOMEM, "out of memory");
        (*n_out)++;
    }
    return 0;
}

/* A relative path that stays below its folder: no "/" at the start, no "..". */
static bool safe_relative(const char *p)
{
    if (!p[0] || p[0] == '/')
        return false;
    for (const char *s = p; *s;) {
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if ((n == 2 && !strncmp(s, "..", 2)) || (n == 1 && s[0] == '.') || n == 0)
            return false;
        s += n + (e ? 1 : 0);
    }
    return true;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

static int parse_file(const mctx *c, const yaml_node_t *n, const char *path, ds_file *f)
{
    static const char *const keys[] = {"name", "urls", "sha256", "size", "unpack", "strip"};
    int rc;
    f->size = -1;
    if ((rc = need_map(c, n, path)) || (rc = known_keys(c, n, path, keys, 6)) ||
        (rc = get_string(c, n, path, "name", true, &f->name)) ||
        (rc = get_strings(c, n, path, "urls", true, &f->urls, &f->n_urls)))
        return rc;
    char where[256];
    if (strchr(f->name, '/') || !safe_relative(f->name)) {
        snprintf(where, sizeof where, "%.150s.name", path);
        return at(c, map_get(c, n, "name"), where, "expected a plain file name (no folders)", f->name);
    }
    for (int i = 0; i < f->n_urls; i++)
        if (strncmp(f->urls[i], "http://", 7) && strncmp(f->urls[i], "https://", 8) &&
            strncmp(f->urls[i], "file://", 7)) {
            snprintf(where, sizeof where, "%.150s.urls[%d]", path, i);
            return at(c, map_get(c, n, "urls"), where, "expected an http://, https:// or file:// URL", f->urls[i]);
        }
    char *sha = NULL;
    if ((rc = get_string(c, n, path, "sha256", true, &sha)))
        return rc;
    bool ok = ds_sha256_valid(sha);
    if (ok)
        for (int i = 0; i < 64; i++)
            f->sha256[i] = (char)tolower((unsigned char)sha[i]);
    if (!ok) {
        snprintf(where, sizeof where, "%.150s.sha256", path);
        rc = at(c, map_get(c, n, "sha256"), where, "expected 64 hexadecimal digits", sha);
    }
    free(sha);
    if (rc || (rc = get_int(c, n, path, "size", 0, &f->size)))
        return rc;
    int64_t strip = 0;
    if ((rc = get_int(c, n, path, "strip", 0, &strip)))
        return rc;
    f->strip = (int)(strip > 64 ? 64 : strip);
    const yaml_node_t *u = map_get(c, n, "unpack");
    const char *us = scalar(u);
    if (!u) {
        static const char *const archives[] = {".tar.gz", ".tgz", ".tar", ".zip", ".tar.bz2", ".tar.xz"};
        f->unpack = DS_UNPACK_COPY;
        for (int i = 0; i < 6; i++)
            if (ends_with(f->name, archives[i]))
                f->unpack = DS_UNPACK_ARCHIVE;
    } else if (us && !strcmp(us, "archive")) {
        f->unpack = DS_UNPACK_ARCHIVE;
    } else if (us && !strcmp(us, "copy")) {
        f->unpack = DS_UNPACK_COPY;
    } else {
        snprintf(where, sizeof where, "%.150s.unpack", path);
        return at(c, u, where, "expected archive or copy", us);
    }
    return 0;
}

static int parse_entry(const mctx *c, const yaml_node_t *n, const char *path, ds_entry *e)
{
    static const char *const keys[] = {"name", "loader", "dir", "files", "expect"};
    static const char *const loaders[] = {"cifar10", "cifar100", "mnist", "fashion_mnist", "npy", "none"};
    int rc;
    if ((rc = need_map(c, n, path)) || (rc = known_keys(c, n, path, keys, 5)) ||
        (rc = get_string(c, n, path, "name", true, &e->name)) ||
        (rc = get_string(c, n, path, "loader", false, &e->loader)) ||
        (rc = get_string(c, n, path, "dir", true, &e->dir)) ||
        (rc = get_strings(c, n, path, "expect", false, &e->expect, &e->n_expect)))
        return rc;
    char where[256];
    for (const char *p = e->name; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("_-.", *p)) {
            snprintf(where, sizeof where, "%.150s.name", path);
            return at(c, map_get(c, n, "name"), where, "expected letters, digits, '_', '-' or '.'", e->name);
        }
    if (!e->loader && !(e->loader = strdup("none")))
        return ds_error(DS_ENOMEM, "out of memory");
    bool ok = false;
    for (int i = 0; i < 6; i++)
        ok |= !strcmp(e->loader, loaders[i]);
    if (!ok) {
        snprintf(where, sizeof where, "%.150s.loader", path);
        return at(c, map_get(c, n, "loader"), where, "expected cifar10, cifar100, mnist, fashion_mnist, npy or none",
                  e->loader);
    }
    if (!safe_relative(e->dir)) {
        snprintf(where, sizeof where, "%.150s.dir", path);
        return at(c, map_get(c, n, "dir"), where, "expected a relative folder without '..'", e->dir);
    }
    for (int i = 0; i < e->n_expect; i++)
        if (!safe_relative(e->expect[i])) {
            snprintf(where, sizeof where, "%.150s.expect[%d]", path, i);
            return at(c, map_get(c, n, "expect"), where, "expected a relative path without '..'", e->expect[i]);
        }
    const yaml_node_t *fl = map_get(c, n, "files");
    snprintf(where, sizeof where, "%.150s.files", path);
    if (!fl)
        return at(c, n, where, "missing required key", NULL);
    if (fl->type != YAML_SEQUENCE_NODE || fl->data.sequence.items.top == fl->data.sequence.items.start)
        return at(c, fl, where, "expected a non-empty list of files", NULL);
    int count = (int)(fl->data.sequence.items.top - fl->data.sequence.items.start);
    if (!(e->files = calloc((size_t)count, sizeof *e->files)))
        return ds_error(DS_ENOMEM, "out of memory");
    for (int i = 0; i < count; i++) {
        char fp[256];
        snprintf(fp, sizeof fp, "%.150s.files[%d]", path, i);
        e->n_files = i + 1;
        if ((rc = parse_file(c, yaml_document_get_node(c->doc, fl->data.sequence.items.start[i]), fp, &e->files[i])))
            return rc;
        for (int j = 0; j < i; j++)
            if (!strcmp(e->files[j].name, e->files[i].name))
                return at(c, yaml_document_get_node(c->doc, fl->data.sequence.items.start[i]), fp,
                          "a second file of the same name", e->files[i].name);
    }
    return 0;
}

int ds_manifest_parse(const char *path, const char *text, size_t len, ds_manifest **out)
{
    *out = NULL;
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser))
        return ds_error(DS_ENOMEM, "out of memory");
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        int rc = ds_error(DS_EINVAL, "%s:%zu:%zu: not valid YAML: %s", path, parser.problem_mark.line + 1,
                          parser.problem_mark.column + 1, parser.problem ? parser.problem : "?");
        yaml_parser_delete(&parser);
        return rc;
    }
    yaml_parser_delete(&parser);
    mctx c = {path, &doc};
    ds_manifest *m = calloc(1, sizeof *m);
    int rc = 0;
    if (!m || !(m->source = strdup(path))) {
        rc = ds_error(DS_ENOMEM, "out of memory");
        goto done;
    }
    const yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root) {
        rc = ds_error(DS_EINVAL, "%s: empty manifest (expected datasets: [...])", path);
        goto done;
    }
    static const char *const top[] = {"datasets"};
    if ((rc = need_map(&c, root, "manifest")) || (rc = known_keys(&c, root, "", top, 1)))
        goto done;
    const yaml_node_t *list = map_get(&c, root, "datasets");
    if (!list || list->type != YAML_SEQUENCE_NODE) {
        rc = at(&c, list ? list : root, "datasets", "expected a list of datasets", NULL);
        goto done;
    }
    int count = (int)(list->data.sequence.items.top - list->data.sequence.items.start);
    if (count && !(m->entries = calloc((size_t)count, sizeof *m->entries))) {
        rc = ds_error(DS_ENOMEM, "out of memory");
        goto done;
    }
    for (int i = 0; i < count; i++) {
        char p[64];
        snprintf(p, sizeof p, "datasets[%d]", i);
        const yaml_node_t *en = yaml_document_get_node(&doc, list->data.sequence.items.start[i]);
        m->n = i + 1;
        if ((rc = parse_entry(&c, en, p, &m->entries[i])))
            goto done;
        for (int j = 0; j < i; j++)
            if (!strcmp(m->entries[j].name, m->entries[i].name)) {
                rc = at(&c, en, p, "a second dataset of the same name", m->entries[i].name);
                goto done;
            }
    }
done:
    yaml_document_delete(&doc);
    if (rc) {
        ds_manifest_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

int ds_manifest_load(const char *path, ds_manifest **out)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return ds_error(errno == ENOENT ? DS_ENOENT : DS_EIO, "%s: %s", path, strerror(errno));
    char *buf = malloc(MAX_MANIFEST_BYTES + 1);
    if (!buf) {
        fclose(f);
        return ds_error(DS_ENOMEM, "out of memory");
    }
    size_t n = fread(buf, 1, MAX_MANIFEST_BYTES + 1, f);
    int err = ferror(f);
    fclose(f);
    int rc;
    if (err)
        rc = ds_error(DS_EIO, "%s: cannot read", path);
    else if (n > MAX_MANIFEST_BYTES)
        rc = ds_error(DS_EINVAL, "%s: larger than %d bytes", path, MAX_MANIFEST_BYTES);
    else
        rc = ds_manifest_parse(path, buf, n, out);
    free(buf);
    return rc;
}

static void free_strings(char **v, int n)
{
    for (int i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

void ds_manifest_free(ds_manifest *m)
{
    if (!m)
        return;
    for (int i = 0; i < m->n; i++) {
        ds_entry *e = &m->entries[i];
        for (int j = 0; j < e->n_files; j++) {
            free(e->files[j].name);
            free_strings(e->files[j].urls, e->files[j].n_urls);
        }
        free(e->files);
        free_strings(e->expect, e->n_expect);
        free(e->name);
        free(e->loader);
        free(e->dir);
    }
    free(m->entries);
    free(m->source);
    free(m);
}

const ds_entry *ds_manifest_find(const ds_manifest *m, const char *name)
{
    char names[512] = "";
    for (int i = 0; i < m->n; i++) {
        if (!strcmp(m->entries[i].name, name))
            return &m->entries[i];
        size_t u = strlen(names);
        snprintf(names + u, sizeof names - u, "%s%s", u ? ", " : "", m->entries[i].name);
    }
    ds_error(DS_EINVAL, "no dataset '%s' in %s (it has: %s)", name, m->source, m->n ? names : "none");
    return NULL;
}

int64_t ds_entry_size(const ds_entry *e)
{
    int64_t sum = 0;
    for (int i = 0; i < e->n_files; i++) {
        if (e->files[i].size < 0)
            return -1;
        sum += e->files[i].size;
    }
    return sum;
}
