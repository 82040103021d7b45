/*  ar_sqlite: WAL and migrations, one implementation for every store. */
#include "ar_sqlite.h"
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int s_fail (sqlite3 *db, const char *what, char *error, size_t error_size)
{
    if (error && error_size)
        snprintf (error, error_size, "%s: %s (%d)", what, sqlite3_errmsg (db),
                  sqlite3_extended_errcode (db));
    return -1;
}

int ar_sqlite_wal (sqlite3 *db, int wait_ms, char *error, size_t error_size)
{
    int rc = SQLITE_BUSY;
    for (int waited = 0; waited <= wait_ms; waited += 10) {
        rc = sqlite3_exec (db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
        if ((rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED)
            break;
        usleep (10 * 1000);
    }
    return rc == SQLITE_OK ? 0 : s_fail (db, "journal_mode", error, error_size);
}

static int64_t s_wall_ms (void)
{
    struct timespec now;
    clock_gettime (CLOCK_REALTIME, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static int s_migrate_one (sqlite3 *db, const ar_migration_t *migration, char *error,
                          size_t error_size)
{
    if (sqlite3_exec (db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return s_fail (db, "migrate", error, error_size);
    sqlite3_stmt *stmt = NULL;
    bool applied = false;
    int rc = sqlite3_prepare_v2 (db, "SELECT 1 FROM schema_migrations WHERE version = ?", -1, &stmt,
                                 NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int (stmt, 1, migration->version);
        rc = sqlite3_step (stmt);
        applied = rc == SQLITE_ROW;
        rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
    }
    sqlite3_finalize (stmt);
    stmt = NULL;
    if (rc == SQLITE_OK && !applied)
        rc = sqlite3_exec (db, migration->sql, NULL, NULL, NULL);
    if (rc == SQLITE_OK && !applied) {
        rc = sqlite3_prepare_v2 (db,
                                 "INSERT INTO schema_migrations (version, name, applied_ms)"
                                 " VALUES (?, ?, ?)",
                                 -1, &stmt, NULL);
        if (rc == SQLITE_OK) {
            sqlite3_bind_int (stmt, 1, migration->version);
            sqlite3_bind_text (stmt, 2, migration->name, -1, SQLITE_STATIC);
            sqlite3_bind_int64 (stmt, 3, s_wall_ms ());
            rc = sqlite3_step (stmt) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
        }
        sqlite3_finalize (stmt);
    }
    if (rc == SQLITE_OK && sqlite3_exec (db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK)
        return 0;
    s_fail (db, migration->name, error, error_size);
    sqlite3_exec (db, "ROLLBACK", NULL, NULL, NULL);
    return -1;
}

int ar_sqlite_migrate (sqlite3 *db, const ar_migration_t *migrations, size_t count, char *error,
                       size_t error_size)
{
    //  The one table every runner agrees on (schemas/migrations/README.md).
    if (sqlite3_exec (
            db,
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_ms BIGINT NOT NULL)",
            NULL, NULL, NULL) != SQLITE_OK)
        return s_fail (db, "schema_migrations", error, error_size);
    for (size_t i = 0; i < count; i++)
        if (s_migrate_one (db, &migrations[i], error, error_size))
            return -1;
    return 0;
}

int ar_sqlite_migrations_match (const ar_migration_t *migrations, size_t count, const char *dir)
{
    for (size_t i = 0; i < count; i++) {
        char path[4096];
        snprintf (path, sizeof path, "%s/%s.sql", dir, migrations[i].name);
        FILE *file = fopen (path, "rb");
        if (!file)
            continue;
        size_t want = strlen (migrations[i].sql);
        char *text = malloc (want + 2);
        size_t got = text ? fread (text, 1, want + 1, file) : 0;
        fclose (file);
        bool same = text && got == want && memcmp (text, migrations[i].sql, want) == 0;
        free (text);
        if (!same)
            return -1;
    }
    return 0;
}

int ar_sqlite_open (sqlite3 **db, const char *path, int busy_ms, const ar_migration_t *migrations,
                    size_t count, char *error, size_t error_size)
{
    *db = NULL;
    int rc = sqlite3_open_v2 (
        path, db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        if (error && error_size)
            snprintf (error, error_size, "open: %s (%d)",
                      *db ? sqlite3_errmsg (*db) : sqlite3_errstr (rc), rc);
        return -1;
    }
    sqlite3_extended_result_codes (*db, 1);
    sqlite3_busy_timeout (*db, busy_ms);
    if (ar_sqlite_wal (*db, busy_ms, error, error_size))
        return -1;
    if (sqlite3_exec (*db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL) != SQLITE_OK)
        return s_fail (*db, "synchronous", error, error_size);
    return ar_sqlite_migrate (*db, migrations, count, error, error_size);
}

static int s_count (sqlite3 *db, const char *sql)
{
    sqlite3_stmt *stmt = NULL;
    int n = -1;
    if (sqlite3_prepare_v2 (db, sql, -1, &stmt, NULL) == SQLITE_OK &&
        sqlite3_step (stmt) == SQLITE_ROW)
        n = sqlite3_column_int (stmt, 0);
    sqlite3_finalize (stmt);
    return n;
}

void ar_sqlite_test (bool verbose)
{
    (void)verbose;
    char dir[] = "/tmp/ar_sqlite_testXXXXXX";
    assert (mkdtemp (dir));
    char path[128];
    snprintf (path, sizeof path, "%s/test.db", dir);
    sqlite3 *db = NULL, *other = NULL;
    char error[256] = "";
    assert (ar_sqlite_open (&db, path, 1000, NULL, 0, error, sizeof error) == 0);
    assert (sqlite3_open (path, &other) == SQLITE_OK);
    assert (ar_sqlite_wal (other, 1000, error, sizeof error) == 0);
    assert (s_count (db, "SELECT count(*) FROM pragma_journal_mode WHERE journal_mode = 'wal'") ==
            1);

    //  Applied once each, whichever handle runs them and however often.
    const ar_migration_t first[] = {{1, "0001_a", "CREATE TABLE a (x INTEGER)"}};
    const ar_migration_t both[] = {{1, "0001_a", "CREATE TABLE a (x INTEGER)"},
                                   {2, "0002_b", "CREATE TABLE b (y INTEGER)"}};
    assert (ar_sqlite_migrate (db, first, 1, error, sizeof error) == 0);
    assert (ar_sqlite_migrate (other, both, 2, error, sizeof error) == 0);
    assert (ar_sqlite_migrate (db, both, 2, error, sizeof error) == 0);
    assert (s_count (db, "SELECT count(*) FROM schema_migrations") == 2);
    assert (s_count (db, "SELECT count(*) FROM sqlite_master WHERE name IN ('a','b')") == 2);

    //  A failing migration is rolled back whole and named in the error.
    const ar_migration_t bad[] = {{3, "0003_bad", "CREATE TABLE c (z INTEGER); NOT SQL"}};
    assert (ar_sqlite_migrate (db, bad, 1, error, sizeof error) == -1);
    assert (strstr (error, "0003_bad"));
    assert (s_count (db, "SELECT count(*) FROM sqlite_master WHERE name = 'c'") == 0);
    assert (s_count (db, "SELECT count(*) FROM schema_migrations") == 2);

    //  The file check sees a difference, and accepts an equal or absent file.
    char sql_path[160];
    snprintf (sql_path, sizeof sql_path, "%s/0001_a.sql", dir);
    FILE *sql_file = fopen (sql_path, "w");
    fputs ("CREATE TABLE a (x INTEGER)", sql_file);
    fclose (sql_file);
    assert (ar_sqlite_migrations_match (both, 2, dir) == 0); // 0002_b.sql absent
    const ar_migration_t changed[] = {{1, "0001_a", "CREATE TABLE a (y INTEGER)"}};
    assert (ar_sqlite_migrations_match (changed, 1, dir) == -1);
    const ar_migration_t longer[] = {{1, "0001_a", "CREATE TABLE a (x INTEGER);"}};
    assert (ar_sqlite_migrations_match (longer, 1, dir) == -1);
    unlink (sql_path);

    //  A path that cannot be opened is refused with a reason, and still hands back a handle
    //  (or none) the caller can close.
    sqlite3 *unopened = NULL;
    assert (ar_sqlite_open (&unopened, "/nonexistent-dir/x/y.db", 100, NULL, 0, error,
                            sizeof error) == -1);
    assert (strncmp (error, "open: ", 6) == 0);
    sqlite3_close (unopened);

    sqlite3_close (other);
    sqlite3_close (db);
    char file[160];
    const char *suffixes[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf (file, sizeof file, "%s%s", path, suffixes[i]);
        unlink (file);
    }
    rmdir (dir);
}
