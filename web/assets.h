/* The dashboard's static files, embedded at build time (web/embed.py writes
 * the table from web/static/). */
#ifndef WEB_ASSETS_H
#define WEB_ASSETS_H

#include <stddef.h>

typedef struct web_asset {
    const char *url;          /* "/static/app.js"; NULL ends the table */
    const char *content_type;
    const unsigned char *data; /* NUL-terminated (not counted in len) */
    size_t len;
} web_asset;

extern const web_asset web_assets[];

#endif
