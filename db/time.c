/* Timestamps in the database: ISO-8601 UTC with milliseconds. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "db/internal.h"

int db_now(char out[DB_TIME_LEN])
{
    struct timespec ts;
    struct tm tm;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return db__error(DB_EIO, "clock_gettime: %s", strerror(errno));
    if (!gmtime_r(&ts.tv_sec, &tm))
        return db__error(DB_EINVAL, "gmtime_r: time out of range");
    /* Text sorts in time order, and SQLite's date functions read it. */
    int n = snprintf(out, DB_TIME_LEN, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (int)(ts.tv_nsec / 1000000));
    if (n != DB_TIME_LEN - 1)
        return db__error(DB_EINVAL, "timestamp does not fit the ISO-8601 format");
    return DB_OK;
}
