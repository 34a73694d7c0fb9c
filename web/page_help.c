/* The commands page: the CLI commands the run pages point to (the
 * dashboard itself changes nothing). Its text is web/static/help.html. */
#include <string.h>

#include "web/assets.h"
#include "web/internal.h"

int web_page_help(web_request *rq)
{
    web_page_begin(rq, "Commands", WEB_NAV_HELP);
    for (const web_asset *a = web_assets; a->url; a++)
        if (!strcmp(a->url, "/static/help.html"))
            fwrite(a->data, 1, a->len, rq->out);
    web_page_end(rq);
    return 0;
}
