/* Where the database lives when no --db is given. */
#include <stdlib.h>

#include "db/db.h"

/* One place for the default so that every command agrees on it. */
const char *db_default_path(void)
{
    const char *env = getenv("EPOCHD_DB");
    return env && *env ? env : "var/epochd.db";
}
