/*  ar_sqlite: what every SQLite store of ours does the same way: WAL on open, and the
    migrations of schemas/migrations applied once each (schemas/migrations/README.md).
*/
#ifndef AR_SQLITE_H
#define AR_SQLITE_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>

//  One migration as cmake/embed.cmake embeds it: the global version, the file's name, its SQL.
typedef struct {
    int version;
    const char *name;
    const char *sql;
} ar_migration_t;

//  Open (creating) the database at path the way every store does: extended result codes, a
//  busy timeout of busy_ms, WAL (see ar_sqlite_wal), synchronous=NORMAL (a commit survives a
//  crash of the process; only a power loss can take the last few), then the migrations. *db is
//  set whenever SQLite gave a handle, even on failure, so the caller's destroy closes it.
//  Returns 0 or -1 with a reason in error.
int ar_sqlite_open (sqlite3 **db, const char *path, int busy_ms, const ar_migration_t *migrations,
                    size_t count, char *error, size_t error_size);

//  Switch db to WAL. Several replicas opening a fresh database at once can be told "locked"
//  at once, without the busy handler ever waiting, so this retries for up to wait_ms. Returns
//  0 or -1 (error gets SQLite's message).
int ar_sqlite_wal (sqlite3 *db, int wait_ms, char *error, size_t error_size);

//  Apply each migration whose version schema_migrations lacks, each in its own BEGIN
//  IMMEDIATE transaction so two replicas starting together cannot both apply one. Returns 0,
//  or -1 with the failing migration's name and SQLite's message in error.
int ar_sqlite_migrate (sqlite3 *db, const ar_migration_t *migrations, size_t count, char *error,
                       size_t error_size);

//  For self-tests: 0 when every embedded migration equals dir/<name>.sql byte for byte (a file
//  that is absent counts as equal: the source tree may be gone where a binary runs), else -1.
int ar_sqlite_migrations_match (const ar_migration_t *migrations, size_t count, const char *dir);

void ar_sqlite_test (bool verbose);

#endif
