/* Writing a tree back out: compact JSON of values, and the effective YAML of
 * a sweep combination (its stored text and the input of its identity). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "schema/alloc.h"
#include "schema/internal.h"
#include "schema/strbuf.h"


static void json_string(sbuf *b, const char *s)
{
    sbuf_puts(b, "\"");
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        char esc[8];
        if (ch == '"' || ch == '\\') {
            esc[0] = '\\';
            esc[1] = (char)ch;
            sbuf_put(b, esc, 2);
        } else if (ch < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", ch);
            sbuf_puts(b, esc);
        } else {
            sbuf_put(b, (const char *)&ch, 1);
        }
    }
    sbuf_puts(b, "\"");
}

/* The shortest %g form that reads back as the same double. */
static void json_double(sbuf *b, double v)
{
    char tmp[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    sbuf_puts(b, tmp);
}

static void json_node(sbuf *b, const ynode *n, bool bare)
{
    if (n->kind == YN_SCALAR) {
        int64_t i;
        double d;
        int t = spec_scalar_bool(n);
        if (bare)
            sbuf_puts(b, n->s);
        else if (yn_is_null(n))
            sbuf_puts(b, "null");
        else if (t >= 0)
            sbuf_puts(b, t ? "true" : "false");
        else if (spec_scalar_int(n, &i)) {
            char tmp[32];
            snprintf(tmp, sizeof tmp, "%" PRId64, i);
            sbuf_puts(b, tmp);
        } else if (spec_scalar_float(n, &d))
            json_double(b, d);
        else
            json_string(b, n->s);
        return;
    }
    bool map = n->kind == YN_MAP;
    sbuf_puts(b, map ? "{" : "[");
    for (int64_t i = 0; i < n->n; i++) {
        if (i)
            sbuf_puts(b, ",");
        if (map) {
            json_string(b, n->v[2 * i]->s);
            sbuf_puts(b, ":");
            json_node(b, n->v[2 * i + 1], bare);
        } else {
            json_node(b, n->v[i], bare);
        }
    }
    sbuf_puts(b, map ? "}" : "]");
}

char *spec_node_json(const ynode *n, bool bare_strings)
{
    sbuf b = {0};
    json_node(&b, n, bare_strings);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p ? b.p : spec_strdup("");
}

/* ---- YAML ---- */

static int write_handler(void *data, unsigned char *buffer, size_t size)
{
    sbuf *b = data;
    sbuf_put(b, (const char *)buffer, size);
    return !b->oom;
}

static bool all_scalars(const ynode *n)
{
    for (int64_t i = 0; i < n->n; i++)
        if (n->v[i]->kind != YN_SCALAR)
            return false;
    return true;
}

static bool emit_scalar(yaml_emitter_t *em, const ynode *n, bool is_key)
{
    yaml_event_t e;
    const char *s = n->s;
    yaml_scalar_style_t style = YAML_PLAIN_SCALAR_STYLE;
    if (!is_key && yn_is_null(n))
        s = "null"; /* one spelling, and never an empty scalar (which the emitter would quote) */
    else if (!is_key && n->quoted)
        style = YAML_DOUBLE_QUOTED_SCALAR_STYLE;
    return yaml_scalar_event_initialize(&e, NULL, NULL, (yaml_char_t *)s, (int)strlen(s), 1, 1, style) &&
           yaml_emitter_emit(em, &e);
}

static bool emit_node(yaml_emitter_t *em, const ynode *n)
{
    yaml_event_t e;
    if (n->kind == YN_SCALAR)
        return emit_scalar(em, n, false);
    if (n->kind == YN_SEQ) {
        /* lists of plain values on one line ([16, 16, p]), others one item a line */
        yaml_sequence_style_t st = all_scalars(n) ? YAML_FLOW_SEQUENCE_STYLE : YAML_BLOCK_SEQUENCE_STYLE;
        if (!yaml_sequence_start_event_initialize(&e, NULL, NULL, 1, st) || !yaml_emitter_emit(em, &e))
            return false;
        for (int64_t i = 0; i < n->n; i++)
            if (!emit_node(em, n->v[i]))
                return false;
        return yaml_sequence_end_event_initialize(&e) && yaml_emitter_emit(em, &e);
    }
    yaml_mapping_style_t st = n->n ? YAML_BLOCK_MAPPING_STYLE : YAML_FLOW_MAPPING_STYLE;
    if (!yaml_mapping_start_event_initialize(&e, NULL, NULL, 1, st) || !yaml_emitter_emit(em, &e))
        return false;
    for (int64_t i = 0; i < n->n; i++)
        if (!emit_scalar(em, n->v[2 * i], true) || !emit_node(em, n->v[2 * i + 1]))
            return false;
    return yaml_mapping_end_event_initialize(&e) && yaml_emitter_emit(em, &e);
}

char *spec_node_yaml(const ynode *root, size_t *len)
{
    yaml_emitter_t em;
    yaml_event_t e;
    sbuf b = {0};
    if (!yaml_emitter_initialize(&em))
        return NULL;
    yaml_emitter_set_output(&em, write_handler, &b);
    yaml_emitter_set_unicode(&em, 1);
    yaml_emitter_set_width(&em, -1); /* no line folding: the text depends only on the tree */
    yaml_emitter_set_indent(&em, 2);
    bool ok = yaml_stream_start_event_initialize(&e, YAML_UTF8_ENCODING) && yaml_emitter_emit(&em, &e) &&
              yaml_document_start_event_initialize(&e, NULL, NULL, NULL, 1) && yaml_emitter_emit(&em, &e) &&
              emit_node(&em, root) && yaml_document_end_event_initialize(&e, 1) && yaml_emitter_emit(&em, &e) &&
              yaml_stream_end_event_initialize(&e) && yaml_emitter_emit(&em, &e) && yaml_emitter_flush(&em);
    yaml_emitter_delete(&em);
    if (!ok || b.oom) {
        free(b.p);
        return NULL;
    }
    *len = b.n;
    return b.p;
}
