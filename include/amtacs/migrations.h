/* migrations: the SQL of sql/, compiled into the library: the versioned
 * migrations (tables and data) and the function files (the current definition
 * of every function, view and trigger). docs/schema.md says how they combine. */
#ifndef AMTACS_MIGRATIONS_H
#define AMTACS_MIGRATIONS_H

#include <stddef.h>

struct amtacs_migration {
    int version;        /* the leading number of the file name, strictly increasing */
    const char *name;   /* file name, e.g. "0001_init.sql" */
    const char *sql;    /* the whole file, applied once, in the migration transaction */
};

struct amtacs_function_file {
    const char *name;   /* path under sql/, e.g. "functions/40_daemon.sql" */
    const char *sql;    /* the whole file: re-runnable (CREATE OR REPLACE, DROP ... IF EXISTS) */
};

/* Sorted by version (file names sort the same way). */
extern const struct amtacs_migration amtacs_migrations[];
extern const size_t amtacs_migrations_count;

/* Sorted by name: the order in which they are applied. */
extern const struct amtacs_function_file amtacs_function_files[];
extern const size_t amtacs_function_files_count;

#endif
