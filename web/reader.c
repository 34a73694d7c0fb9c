/* One read-only database connection per server thread, opened on the
 * thread's first request and closed when the thread ends: no connection is
 * shared between threads, none can write, and the service's own
 * connection is never touched. */
#include <stdlib.h>

#include "service/error.h"
#include "web/internal.h"

static void close_reader(void *d) { db_close(d); }

int web_reader_init(web_server *w)
{
    if (pthread_key_create(&w->reader_key, close_reader) != 0)
        return svc_error(SVC_ENOMEM, "cannot create a thread key");
    w->reader_key_made = true;
    return 0;
}

void web_reader_done(web_server *w)
{
    if (!w->reader_key_made)
        return;
    /* the server threads have ended (and closed theirs); this one may hold one */
    db_close(pthread_getspecific(w->reader_key));
    pthread_setspecific(w->reader_key, NULL);
    pthread_key_delete(w->reader_key);
    w->reader_key_made = false;
}

int web_reader(web_server *w, db **out)
{
    db *d = pthread_getspecific(w->reader_key);
    if (d) {
        *out = d;
        return 0;
    }
    *out = NULL;
    int rc = db_open(w->db_path, DB_OPEN_READONLY, &d);
    if (rc < 0)
        return svc_error(svc_from_db(rc), "cannot read the database %s: %s", w->db_path, db_last_error());
    /* a reader in WAL mode never waits for the writer; only a checkpoint
     * that truncates the log can briefly hold it up */
    db_set_busy_timeout(d, 1000);
    if (pthread_setspecific(w->reader_key, d) != 0) {
        db_close(d);
        return svc_error(SVC_ENOMEM, "cannot keep the database connection");
    }
    *out = d;
    return 0;
}
