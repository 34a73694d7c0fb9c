/* Error codes of the libraries as exit statuses: the one place where the
 * command line's contract (sysexits) is decided. */
#include "cli/commands.h"

#include "db/db.h"
#include "service/error.h"

int cli_exit_status(int code)
{
    switch (code) {
    case SVC_OK: return EX_OK;
    case SVC_EUSAGE: return EX_USAGE;
    case SVC_EINVAL: return EX_DATAERR;
    case SVC_ENOENT: return EX_NOINPUT;
    case SVC_EIO:
    case SVC_EDB: return EX_IOERR;
    case SVC_ELOCKED: return EX_TEMPFAIL;
    case SVC_EINTR: return EX_INTERRUPTED;
    default: return EX_SOFTWARE; /* SVC_ENOMEM, SVC_EPROTO, SVC_EINTERNAL */
    }
}

int cli_exit_status_db(int db_code)
{
    return cli_exit_status(svc_from_db(db_code));
}
