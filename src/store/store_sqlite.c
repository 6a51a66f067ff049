/* The SQLite store: one database file in WAL mode, schema by numbered
 * migrations. This issue keeps the seam: open, migrate, health. */
#define LOG_MODULE "store"
#include "log.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>

#include "store/store.h"

struct store_sqlite {
  struct store base;  /* first */
  sqlite3 *db;        /* owned */
};

static const char *migrations[] = {
  /* 1 */
  "CREATE TABLE room_sessions ("
  "  id INTEGER PRIMARY KEY,"
  "  room_id TEXT NOT NULL,"
  "  started_at INTEGER NOT NULL,"
  "  ended_at INTEGER,"
  "  peak_participants INTEGER NOT NULL DEFAULT 0);"
  "CREATE INDEX room_sessions_room ON room_sessions(room_id, started_at);",
};

static int healthy(struct store *st) {
  struct store_sqlite *s = (struct store_sqlite *)st;
  sqlite3_stmt *q;
  if (sqlite3_prepare_v2(s->db, "SELECT 1", -1, &q, NULL) != SQLITE_OK) return 0;
  int ok = sqlite3_step(q) == SQLITE_ROW;
  sqlite3_finalize(q);
  return ok;
}

static void sqlite_close(struct store *st) {
  struct store_sqlite *s = (struct store_sqlite *)st;
  sqlite3_close(s->db);
  free(s);
}

static const struct store_ops store_sqlite_ops = {"sqlite", healthy, sqlite_close};

static int migrate(sqlite3 *db, char *err, size_t err_len) {
  sqlite3_stmt *q;
  int version = 0;
  if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &q, NULL) == SQLITE_OK &&
      sqlite3_step(q) == SQLITE_ROW)
    version = sqlite3_column_int(q, 0);
  sqlite3_finalize(q);
  int n = (int)(sizeof(migrations) / sizeof(migrations[0]));
  for (int v = version; v < n; v++) {
    char *msg = NULL, sql[64];
    snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v + 1);
    /* Each migration and its version bump commit together or not at all. */
    if (sqlite3_exec(db, "BEGIN", NULL, NULL, &msg) != SQLITE_OK ||
        sqlite3_exec(db, migrations[v], NULL, NULL, &msg) != SQLITE_OK ||
        sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK ||
        sqlite3_exec(db, "COMMIT", NULL, NULL, &msg) != SQLITE_OK) {
      snprintf(err, err_len, "migration %d: %s", v + 1, msg ? msg : "failed");
      sqlite3_free(msg);
      sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
      return -1;
    }
    log_info("migrated version=%d", v + 1);
  }
  return 0;
}

int store_sqlite_open(struct store **out, const char *path, char *err, size_t err_len) {
  struct store_sqlite *s = calloc(1, sizeof(*s));
  if (s == NULL) return -1;
  s->base.ops = &store_sqlite_ops;
  if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
    snprintf(err, err_len, "sqlite %s: %s", path, s->db ? sqlite3_errmsg(s->db) : "cannot open");
    goto fail;
  }
  sqlite3_busy_timeout(s->db, 2000);
  if (sqlite3_exec(s->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", NULL, NULL, NULL) != SQLITE_OK) {
    snprintf(err, err_len, "sqlite %s: %s", path, sqlite3_errmsg(s->db));
    goto fail;
  }
  if (migrate(s->db, err, err_len) != 0) goto fail;
  *out = &s->base;
  return 0;
fail:
  sqlite3_close(s->db);
  free(s);
  return -1;
}
