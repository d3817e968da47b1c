/* migrations: the versioned SQL files of sql/, compiled into the library. */
#ifndef AMTACS_MIGRATIONS_H
#define AMTACS_MIGRATIONS_H

#include <stddef.h>

struct amtacs_migration {
    int version;        /* the leading number of the file name, strictly increasing */
    const char *name;   /* file name, e.g. "0001_init.sql" */
    const char *sql;    /* the whole file, applied in one transaction */
};

/* Sorted by version (file names sort the same way). */
extern const struct amtacs_migration amtacs_migrations[];
extern const size_t amtacs_migrations_count;

#endif
