/* The SQLite back end: one database file in WAL mode (synchronous=FULL, so
 * a committed batch survives a crash of the machine, not only of huddle),
 * schema by numbered forward-only migrations, statements prepared once per
 * connection. The writer and the readers each have their own connection. */
#define LOG_MODULE "store"
#include "log.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/map.h"
#include "store/store.h"
#include "store/store_schema.h"

/* Migration N takes a database from version N-1 to N. Never edit one that
 * has shipped: add the next. */
static const char *migrations[] = {
  /* 1: the room core's seam */
  "CREATE TABLE room_sessions ("
  "  id INTEGER PRIMARY KEY,"
  "  room_id TEXT NOT NULL,"
  "  started_at INTEGER NOT NULL,"
  "  ended_at INTEGER,"
  "  peak_participants INTEGER NOT NULL DEFAULT 0);"
  "CREATE INDEX room_sessions_room ON room_sessions(room_id, started_at);",
  /* 2: persistence (issue 10) */
  "ALTER TABLE room_sessions ADD COLUMN last_seq INTEGER NOT NULL DEFAULT 0;"
  "CREATE TABLE participant_sessions ("
  "  id INTEGER PRIMARY KEY, room_id TEXT NOT NULL, user_id TEXT NOT NULL,"
  "  session_id TEXT NOT NULL, role TEXT NOT NULL DEFAULT '', joined_at INTEGER NOT NULL,"
  "  left_at INTEGER, duration_ms INTEGER, end_reason TEXT);"
  "CREATE INDEX participant_sessions_room ON participant_sessions(room_id, joined_at);"
  "CREATE INDEX participant_sessions_user ON participant_sessions(user_id);"
  "CREATE INDEX participant_sessions_sid ON participant_sessions(session_id);"
  "CREATE TABLE chat_messages ("
  "  id INTEGER PRIMARY KEY, room_id TEXT NOT NULL, seq INTEGER NOT NULL,"
  "  message_id TEXT NOT NULL, from_user TEXT NOT NULL, sender_name TEXT NOT NULL DEFAULT '',"
  "  to_user TEXT, reply_to TEXT, text TEXT NOT NULL, ts INTEGER NOT NULL,"
  "  erased INTEGER NOT NULL DEFAULT 0, UNIQUE(room_id, seq));"
  "CREATE INDEX chat_messages_from ON chat_messages(from_user);"
  "CREATE INDEX chat_messages_to ON chat_messages(to_user);"
  "CREATE INDEX chat_messages_ts ON chat_messages(ts);"
  "CREATE VIRTUAL TABLE chat_fts USING fts5(text, content='chat_messages', content_rowid='id');"
  "CREATE TRIGGER chat_messages_ai AFTER INSERT ON chat_messages BEGIN"
  "  INSERT INTO chat_fts(rowid, text) VALUES (new.id, new.text); END;"
  "CREATE TRIGGER chat_messages_ad AFTER DELETE ON chat_messages BEGIN"
  "  INSERT INTO chat_fts(chat_fts, rowid, text) VALUES ('delete', old.id, old.text); END;"
  "CREATE TRIGGER chat_messages_au AFTER UPDATE OF text ON chat_messages BEGIN"
  "  INSERT INTO chat_fts(chat_fts, rowid, text) VALUES ('delete', old.id, old.text);"
  "  INSERT INTO chat_fts(rowid, text) VALUES (new.id, new.text); END;"
  "CREATE TABLE analytics_events ("
  "  id INTEGER PRIMARY KEY, room_id TEXT NOT NULL, ts INTEGER NOT NULL, type TEXT NOT NULL,"
  "  user_id TEXT NOT NULL DEFAULT '', name TEXT NOT NULL DEFAULT '',"
  "  value INTEGER NOT NULL DEFAULT 0, data TEXT);"
  "CREATE INDEX analytics_events_room ON analytics_events(room_id, ts);"
  "CREATE INDEX analytics_events_user ON analytics_events(user_id);"
  "CREATE INDEX analytics_events_ts ON analytics_events(ts);"
  "CREATE TABLE recordings ("
  "  id TEXT PRIMARY KEY, room_id TEXT NOT NULL, kind TEXT NOT NULL, started_by TEXT NOT NULL,"
  "  stopped_by TEXT NOT NULL DEFAULT '', started_at INTEGER NOT NULL,"
  "  stopped_at INTEGER NOT NULL DEFAULT 0, detail TEXT NOT NULL DEFAULT '', target_redacted TEXT);"
  "CREATE INDEX recordings_room ON recordings(room_id, kind, started_at);"
  "CREATE TABLE audit_log ("
  "  id INTEGER PRIMARY KEY, room_id TEXT NOT NULL, ts INTEGER NOT NULL, actor TEXT NOT NULL,"
  "  action TEXT NOT NULL, target TEXT NOT NULL DEFAULT '', details TEXT);"
  "CREATE INDEX audit_log_room ON audit_log(room_id, ts);"
  "CREATE TABLE room_settings ("
  "  room_id TEXT PRIMARY KEY, settings TEXT NOT NULL, updated_at INTEGER NOT NULL);",
  /* 3: what else a room needs to come back after a restart: in-room roles
   * and permission overrides per user, bans, rejections, the hand queue. */
  "CREATE TABLE room_policy ("
  "  room_id TEXT PRIMARY KEY, policy TEXT NOT NULL, updated_at INTEGER NOT NULL);",
  /* 4: the full-text row of a new chat message is inserted by its own
   * statement (Q_CHAT_FTS), not by a trigger. A trigger makes the insert a
   * statement transaction, and FTS5 writes its pending terms to disk as a new
   * segment at every statement savepoint: one segment (and its merges) per
   * message, 71% of the writer's instructions. As a plain statement inside
   * the batch's transaction, the terms are written once per commit. */
  "DROP TRIGGER chat_messages_ai;",
  /* 5: the writer's cost per chat message (docs/performance.md,
   * "Persistence", third pass).
   * - The full-text index lags the chat table: a batch's chat rows commit
   *   without their full-text rows, and the writer indexes the rows above
   *   chat_fts_state.indexed_upto together, in one statement, when enough
   *   have gathered or it is idle (FTS_DEFER_MAX, FTS_IDLE_MIN), before
   *   anything updates or deletes chat rows (the triggers' 'delete' needs
   *   the row indexed), before a search runs (STORE_FTS_SYNC) and at
   *   start-up. FTS5 writes a segment at every commit: at one or two
   *   messages a commit that was 70% of the writer's instructions.
   * - columnsize=0: no chat_fts_docsize row per message (it serves only
   *   bm25 ranking; history orders by seq).
   * - chat_messages_to is partial: room messages (to_user NULL, most of
   *   them) no longer touch it; export's to_user = ? still uses it. */
  "CREATE TABLE chat_fts_state (id INTEGER PRIMARY KEY CHECK (id = 1), indexed_upto INTEGER NOT NULL);"
  "DROP TABLE chat_fts;"
  "CREATE VIRTUAL TABLE chat_fts USING fts5(text, content='chat_messages', content_rowid='id', columnsize=0);"
  "INSERT INTO chat_fts(chat_fts) VALUES ('rebuild');"
  "INSERT INTO chat_fts_state(id, indexed_upto) VALUES (1, (SELECT coalesce(max(id), 0) FROM chat_messages));"
  "DROP INDEX chat_messages_to;"
  "CREATE INDEX chat_messages_to ON chat_messages(to_user) WHERE to_user IS NOT NULL;",
  /* 6: a chat message writes no analytics_events row; its event is read
   * from its chat row (ADR 0020, STORE_CHAT_EVENT_ROWS). Events carry the
   * room's seq for the order within a millisecond; the chat event rows a
   * stored chat message stands for are deleted (store_schema.h). */
  "ALTER TABLE analytics_events ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;" STORE_MIGRATION_6_ROWS,
  /* 7: no index on chat_messages(from_user); chat_senders finds a user's
   * chat for erase and export (ADR 0021, store_schema.h). */
  "CREATE TABLE chat_senders (user_id TEXT NOT NULL, room_id TEXT NOT NULL, last_ts INTEGER NOT NULL,"
  " PRIMARY KEY (user_id, room_id)) WITHOUT ROWID;" STORE_MIGRATION_7_ROWS,
  /* 8: the full-text index leaves this file for its own, kept by its own
   * thread (ADR 0022, "the search index" below): the writer's commits no
   * longer index chat. What changes an indexed row (erase, forget,
   * retention) is written to chat_index_log in the same transaction, for
   * the index to follow; store_meta.search_id names this database to it. */
  "DROP TRIGGER IF EXISTS chat_messages_ad;"
  "DROP TRIGGER IF EXISTS chat_messages_au;"
  "DROP TABLE IF EXISTS chat_fts;"
  "DROP TABLE IF EXISTS chat_fts_state;"
  "CREATE TABLE chat_index_log (seq INTEGER PRIMARY KEY AUTOINCREMENT, chat_id INTEGER, cutoff INTEGER);"
  "CREATE TABLE store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
  "INSERT INTO store_meta(key, value) VALUES ('search_id', lower(hex(randomblob(16))));",
};

#define NMIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))

enum {
  Q_ROOM_OPEN, Q_ROOM_CLOSE, Q_PART_JOIN, Q_PART_LEAVE, Q_CHAT, Q_CHAT_FORGET, Q_EVENT, Q_MEDIA,
  Q_AUDIT, Q_SETTINGS, Q_POLICY, Q_ERASE_CHAT, Q_ERASE_EVENTS, Q_ERASE_SESSIONS, Q_RET_CHAT, Q_RET_EVENTS,
  Q_ERASE_POLICY_FIND, Q_ERASE_POLICY_SET, Q_ERASE_AUDIT, Q_ERASE_MEDIA,
  Q_RET_SETTINGS, Q_RET_POLICY, Q_BEGIN, Q_COMMIT, Q_CHAT_SENDER, Q_RET_SENDERS,
  Q_LOG_FORGET, Q_LOG_ERASE, Q_LOG_RETENTION,
  /* the search index's connection only */
  Q_IX_STATE, Q_IX_LOG, Q_IX_DEL_ID, Q_IX_DEL_TS, Q_IX_LOWER, Q_IX_END, Q_IX_ADD,
  Q_IX_ADD_FTS, Q_IX_MARK, Q_IX_PRUNE, Q__COUNT
};

/* The search index's key for the chat row at its mark (see "the search
 * index" below). */
#define INDEX_MARK_KEY(id) "(SELECT room_id || ' ' || seq FROM chat.chat_messages WHERE id = " id ")"

static const char *write_sql[Q__COUNT] = {
  [Q_ROOM_OPEN] = "INSERT INTO room_sessions(room_id, started_at) VALUES (?1, ?2)",
  [Q_ROOM_CLOSE] = "UPDATE room_sessions SET ended_at = ?2, peak_participants = ?3, last_seq = ?4"
                   " WHERE room_id = ?1 AND ended_at IS NULL",
  [Q_PART_JOIN] = "INSERT INTO participant_sessions(room_id, user_id, session_id, role, joined_at)"
                  " VALUES (?1, ?2, ?3, ?4, ?5)",
  [Q_PART_LEAVE] = "UPDATE participant_sessions SET left_at = ?3, duration_ms = ?4, end_reason = ?5"
                   " WHERE user_id = ?1 AND room_id = ?2 AND left_at IS NULL",
  [Q_CHAT] = "INSERT INTO chat_messages(room_id, seq, message_id, from_user, sender_name, to_user,"
             " reply_to, text, ts) VALUES (?1, ?2, ?3, ?4, ?5, NULLIF(?6, ''), NULLIF(?7, ''), ?8, ?9)"
             " ON CONFLICT(room_id, seq) DO NOTHING",
  [Q_CHAT_SENDER] = "INSERT INTO chat_senders(user_id, room_id, last_ts) VALUES (?1, ?2, ?3)"
                    " ON CONFLICT(user_id, room_id) DO UPDATE SET last_ts = max(last_ts, excluded.last_ts)",
  [Q_CHAT_FORGET] = "DELETE FROM chat_messages WHERE room_id = ?1 AND seq = ?2",
  [Q_EVENT] = "INSERT INTO analytics_events(room_id, ts, type, user_id, name, value, data, seq)"
              " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
  [Q_MEDIA] = "INSERT INTO recordings(id, room_id, kind, started_by, stopped_by, started_at, stopped_at,"
              " detail, target_redacted) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
              " ON CONFLICT(id) DO UPDATE SET stopped_by = excluded.stopped_by,"
              " stopped_at = excluded.stopped_at",
  [Q_AUDIT] = "INSERT INTO audit_log(room_id, ts, actor, action, target, details)"
              " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
  [Q_SETTINGS] = "INSERT INTO room_settings(room_id, settings, updated_at) VALUES (?1, ?2, ?3)"
                 " ON CONFLICT(room_id) DO UPDATE SET settings = excluded.settings,"
                 " updated_at = excluded.updated_at",
  [Q_POLICY] = "INSERT INTO room_policy(room_id, policy, updated_at) VALUES (?1, ?2, ?3)"
               " ON CONFLICT(room_id) DO UPDATE SET policy = excluded.policy,"
               " updated_at = excluded.updated_at",
  [Q_ERASE_CHAT] = "UPDATE chat_messages SET text = '" STORE_TOMBSTONE "', sender_name = '', erased = 1"
                   " WHERE " STORE_CHAT_OF_USER("?1"),
  [Q_ERASE_EVENTS] = "UPDATE analytics_events SET user_id = '" STORE_ANONYMOUS "', data = NULL"
                     " WHERE user_id = ?1",
  [Q_ERASE_SESSIONS] = "UPDATE participant_sessions SET user_id = '" STORE_ANONYMOUS "' WHERE user_id = ?1",
  [Q_RET_CHAT] = "DELETE FROM chat_messages WHERE ts < ?1",
  [Q_RET_EVENTS] = "DELETE FROM analytics_events WHERE ts < ?1",
  [Q_RET_SENDERS] = STORE_RET_SENDERS_SQL,
  [Q_ERASE_POLICY_FIND] = "SELECT room_id, policy FROM room_policy WHERE instr(policy, ?1) > 0",
  [Q_ERASE_POLICY_SET] = "UPDATE room_policy SET policy = ?2, updated_at = ?3 WHERE room_id = ?1",
  /* Every batch begins and commits: prepared once, as the rest, instead
   * of parsed again by sqlite3_exec at each commit. */
  [Q_BEGIN] = "BEGIN IMMEDIATE",
  [Q_COMMIT] = "COMMIT",
  /* What the search index must follow (schema 8): a chat row forgotten or
   * erased, or a retention cut-off, logged before the change. */
  [Q_LOG_FORGET] = "INSERT INTO chat_index_log(chat_id) SELECT id FROM chat_messages WHERE room_id = ?1 AND seq = ?2",
  [Q_LOG_ERASE] = "INSERT INTO chat_index_log(chat_id) SELECT id FROM chat_messages WHERE " STORE_CHAT_OF_USER("?1"),
  [Q_LOG_RETENTION] = "INSERT INTO chat_index_log(cutoff) VALUES (?1)",
  /* The search index (its own file, the chat database attached as chat;
   * see "the search index" below). */
  [Q_IX_STATE] = "SELECT indexed_upto, log_upto FROM index_state",
  [Q_IX_LOG] = "SELECT seq, chat_id, cutoff FROM chat.chat_index_log WHERE seq > ?1 ORDER BY seq",
  [Q_IX_DEL_ID] = "DELETE FROM docs WHERE id = ?1",
  [Q_IX_DEL_TS] = "DELETE FROM docs WHERE ts < ?1",
  [Q_IX_LOWER] = "SELECT coalesce(max(id), 0) FROM docs",
  [Q_IX_END] = "SELECT max(id), count(*) FROM (SELECT id FROM chat.chat_messages WHERE id > ?1 ORDER BY id LIMIT ?2)",
  [Q_IX_ADD] = "INSERT INTO docs(id, ts, text) SELECT id, ts, text FROM chat.chat_messages"
               " WHERE id > ?1 AND id <= ?2 AND erased = 0",
  [Q_IX_ADD_FTS] = "INSERT INTO chat_fts(rowid, text) SELECT id, text FROM docs WHERE id > ?1 AND id <= ?2",
  [Q_IX_MARK] = "UPDATE index_state SET indexed_upto = ?1, log_upto = ?2, mark_key = " INDEX_MARK_KEY("?1"),
  [Q_IX_PRUNE] = "DELETE FROM chat.chat_index_log WHERE seq <= ?1",
  /* Rooms' audit entries (room_id not empty) naming the user as actor or
   * target, or in their details (?2 is the quoted id): the server's own
   * entries (user_export, user_erase) stay, as the record of the erase. */
  [Q_ERASE_AUDIT] = "UPDATE audit_log SET"
                    " actor = CASE WHEN actor = ?1 THEN '" STORE_ANONYMOUS "' ELSE actor END,"
                    " target = CASE WHEN target = ?1 THEN '" STORE_ANONYMOUS "' ELSE target END,"
                    " details = CASE WHEN instr(coalesce(details, ''), ?2) > 0 THEN NULL ELSE details END"
                    " WHERE room_id <> '' AND (actor = ?1 OR target = ?1 OR instr(coalesce(details, ''), ?2) > 0)",
  /* Retention of what restores a room (settings, policy): a room whose
   * rows were last written before the cut-off (?1), with no session that
   * started or ended since and not live in this process (?2, a JSON array
   * of ids). A session left open by a crash is not a live room here: one
   * process writes a SQLite file. The ids gone come back (RETURNING). */
#define RET_ROOMS_GONE                                                                                    \
  "WITH gone AS (SELECT room_id FROM (SELECT room_id, updated_at AS t FROM room_settings"                \
  " UNION ALL SELECT room_id, updated_at FROM room_policy) GROUP BY room_id HAVING max(t) < ?1"          \
  " EXCEPT SELECT room_id FROM room_sessions WHERE coalesce(ended_at, started_at) >= ?1"                 \
  " EXCEPT SELECT value FROM json_each(?2)) "
  [Q_RET_SETTINGS] = RET_ROOMS_GONE "DELETE FROM room_settings WHERE room_id IN gone RETURNING room_id",
  [Q_RET_POLICY] = RET_ROOMS_GONE "DELETE FROM room_policy WHERE room_id IN gone RETURNING room_id",
  [Q_ERASE_MEDIA] = "UPDATE recordings SET"
                    " started_by = CASE WHEN started_by = ?1 THEN '" STORE_ANONYMOUS "' ELSE started_by END,"
                    " stopped_by = CASE WHEN stopped_by = ?1 THEN '" STORE_ANONYMOUS "' ELSE stopped_by END"
                    " WHERE started_by = ?1 OR stopped_by = ?1",
};

/* The search index indexes at most this many chat rows a transaction
 * (index_work), so that a search or an erase waiting for it
 * waits for one step at most before its own. */
#define INDEX_STEP_ROWS 1024

struct store_conn {
  sqlite3 *db;
  sqlite3_stmt *q[Q__COUNT];
  /* The chat_senders pairs this connection wrote and when (store_sender_due):
   * forgotten at a rollback (the pairs of the transaction) and retention. */
  struct map senders;
  /* The search index's connection (index_connect): its file is main, the
   * chat database is attached as chat; reads catch the index up first. */
  int is_index;
};

static int begin(struct store_conn *c);
static int exec(struct store_conn *c, const char *sql);
static void rollback(struct store_conn *c);

static int version_of(sqlite3 *db) {
  sqlite3_stmt *q;
  int v = -1;
  if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &q, NULL) == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW)
    v = sqlite3_column_int(q, 0);
  sqlite3_finalize(q);
  return v;
}

static int migrate(sqlite3 *db, char *err, size_t err_len) {
  int version = version_of(db);
  if (version < 0) {
    snprintf(err, err_len, "cannot read the schema version: %s", sqlite3_errmsg(db));
    return -1;
  }
  if (version > NMIGRATIONS) {
    snprintf(err, err_len, "database schema version %d is newer than this huddle knows (%d)", version,
             NMIGRATIONS);
    return -1;
  }
  for (int v = version; v < NMIGRATIONS; v++) {
    char *msg = NULL, sql[64];
    snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v + 1);
    /* Each migration and its version bump commit together or not at all. */
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, &msg) != SQLITE_OK ||
        (version_of(db) == v && (sqlite3_exec(db, migrations[v], NULL, NULL, &msg) != SQLITE_OK ||
                                 sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)) ||
        sqlite3_exec(db, "COMMIT", NULL, NULL, &msg) != SQLITE_OK) {
      snprintf(err, err_len, "migration %d: %s", v + 1, msg ? msg : sqlite3_errmsg(db));
      sqlite3_free(msg);
      sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
      return -1;
    }
    log_info("migrated backend=sqlite version=%d", v + 1);
  }
  return 0;
}

static void disconnect(struct store_conn *c) {
  if (c == NULL) return;
  map_free(&c->senders);
  for (int i = 0; i < Q__COUNT; i++) sqlite3_finalize(c->q[i]);
  sqlite3_close(c->db);
  free(c);
}

static void configure_once(void) {
  /* Each connection is used by one thread at a time: no per-call mutexes,
   * and no global malloc statistics (a lock per allocation). Only takes
   * effect before SQLite's first use in the process. */
  sqlite3_config(SQLITE_CONFIG_MULTITHREAD);
  sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

static struct store_conn *connect_db(const char *path, int flags, char *err, size_t err_len) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, configure_once);
  struct stat sb;
  if (stat(path, &sb) == 0 && sb.st_size == 0) {
    /* Something truncated it: never start over silently. */
    snprintf(err, err_len, "sqlite %s: the file is empty (corrupt?); move it away to start a new database",
             path);
    return NULL;
  }
  struct store_conn *c = calloc(1, sizeof(*c));
  if (c == NULL) return snprintf(err, err_len, "out of memory"), NULL;
  if (sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                      NULL) != SQLITE_OK) {
    snprintf(err, err_len, "sqlite %s: %s", path, c->db ? sqlite3_errmsg(c->db) : "cannot open");
    goto fail;
  }
  sqlite3_busy_timeout(c->db, 5000);
  sqlite3_stmt *jm = NULL;
  /* Reading the journal mode reads the header: a file that is not a
   * database fails here, before anything is written. */
  /* synchronous=NORMAL in WAL mode: a commit is in the WAL file (the OS's
   * page cache) at once and on the disk at the next checkpoint. */
  /* cache_size=-2048 (2 MiB a connection, SQLite's default is about the
   * same): writes append at the right edge of each b-tree, so a bigger cache
   * only keeps pages written once and never read again; at 16 MiB it held
   * 340 bytes per idle member at 19,900 members (one analytics row a join),
   * without a measurable gain in store_bench (docs/performance.md). */
  /* wal_autocheckpoint=100000: checkpoints are the checkpointer thread's
   * (store.c); SQLite's default (1,000 pages) made the committing writer
   * copy and sync the WAL into the file every few hundred commits, the
   * durable chat's p99 (docs/performance.md, "Persistence", fifth pass).
   * This is the backstop, should the checkpointer fall behind. The WAL
   * starts over only after a checkpoint that found nothing appended while
   * it copied, which under steady chat is a matter of luck, so the WAL
   * outgrows a second's frames: at 10,000 pages (1.5 s of durable chat at
   * 2,000 msg/s) and at 40,000 (3 s at 4,000) the backstop fired, a
   * checkpoint and its syncs inside a commit each time; 100,000 pages
   * (at most 400 MiB of WAL on disk) halved p99 at both rates (sixth
   * pass). A journal_size_limit to give the space back made the file
   * grow again after each restart, worse (p99.9 41-47 ms). */
  const char *tune = flags & STORE_CONNECT_SYNC_NORMAL
                         ? "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-2048;"
                           " PRAGMA wal_autocheckpoint=100000;"
                         : "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA cache_size=-2048;"
                           " PRAGMA wal_autocheckpoint=100000;";
  if (sqlite3_exec(c->db, tune, NULL, NULL, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(c->db, "SELECT count(*) FROM sqlite_master", -1, &jm, NULL) != SQLITE_OK ||
      sqlite3_step(jm) != SQLITE_ROW) {
    snprintf(err, err_len, "sqlite %s: %s (is it a huddle database?)", path, sqlite3_errmsg(c->db));
    sqlite3_finalize(jm);
    goto fail;
  }
  sqlite3_finalize(jm);
  if (flags & STORE_CONNECT_MIGRATE) {
    if (migrate(c->db, err, err_len) != 0) goto fail;
    /* A quick structural check at start-up: a damaged file stops the
     * server with a clear message instead of failing writes later. */
    sqlite3_stmt *qc = NULL;
    if (sqlite3_prepare_v2(c->db, "PRAGMA quick_check(1)", -1, &qc, NULL) != SQLITE_OK ||
        sqlite3_step(qc) != SQLITE_ROW || strcmp((const char *)sqlite3_column_text(qc, 0), "ok") != 0) {
      snprintf(err, err_len, "sqlite %s: integrity check failed: %s", path,
               qc && sqlite3_column_text(qc, 0) ? (const char *)sqlite3_column_text(qc, 0) : sqlite3_errmsg(c->db));
      sqlite3_finalize(qc);
      goto fail;
    }
    sqlite3_finalize(qc);
  } else if (version_of(c->db) != NMIGRATIONS) {
    snprintf(err, err_len, "sqlite %s: schema version %d, expected %d", path, version_of(c->db), NMIGRATIONS);
    goto fail;
  }
  return c;
fail:
  disconnect(c);
  return NULL;
}

static int exec(struct store_conn *c, const char *sql) {
  int rc = sqlite3_exec(c->db, sql, NULL, NULL, NULL);
  if (rc != SQLITE_OK) log_warn("sqlite_failed sql=\"%s\" err=\"%s\"", sql, sqlite3_errmsg(c->db));
  return rc == SQLITE_OK ? 0 : -1;
}

static sqlite3_stmt *stmt(struct store_conn *c, int i);
static int run(struct store_conn *c, sqlite3_stmt *q);

/* BEGIN IMMEDIATE or COMMIT, prepared. 0 or -1. */
static int control(struct store_conn *c, int i) {
  sqlite3_stmt *q = stmt(c, i);
  return q && run(c, q) == 0 ? 0 : -1;
}

static int begin(struct store_conn *c) { return control(c, Q_BEGIN); }
static int commit(struct store_conn *c) { return control(c, Q_COMMIT); }
static void rollback(struct store_conn *c) {
  if (!sqlite3_get_autocommit(c->db)) sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
  map_free(&c->senders); /* and the pairs it wrote */
}

static sqlite3_stmt *stmt(struct store_conn *c, int i) {
  if (c->q[i] == NULL && sqlite3_prepare_v3(c->db, write_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &c->q[i], NULL) != SQLITE_OK) {
    log_error("sqlite_prepare err=\"%s\"", sqlite3_errmsg(c->db));
    return NULL;
  }
  sqlite3_reset(c->q[i]);
  sqlite3_clear_bindings(c->q[i]);
  return c->q[i];
}

#define T(q, i, s) sqlite3_bind_text(q, i, s, -1, SQLITE_STATIC)
#define N(q, i, v) sqlite3_bind_int64(q, i, (sqlite3_int64)(v))

static int run(struct store_conn *c, sqlite3_stmt *q) {
  int rc = sqlite3_step(q);
  sqlite3_reset(q);
  if (rc == SQLITE_DONE || rc == SQLITE_ROW) return 0;
  log_warn("sqlite_step err=\"%s\"", sqlite3_errmsg(c->db));
  /* Constraint and type errors are the record's fault; the rest (I/O,
   * full disk, busy) the database's: retry those. */
  int primary = rc & 0xff;
  return primary == SQLITE_CONSTRAINT || primary == SQLITE_MISMATCH || primary == SQLITE_TOOBIG ? -2 : -1;
}

static const char *col(sqlite3_stmt *q, int i);

/* The chat row just inserted has its (user, room) pair in chat_senders,
 * with a last_ts recent enough (store_sender_due). 0, -1 or -2 as run(). */
static int note_sender(struct store_conn *c, const struct store_rec *r) {
  if (!store_sender_due(&c->senders, r->room_id, r->user_id, r->ts)) return 0;
  sqlite3_stmt *q = stmt(c, Q_CHAT_SENDER);
  if (q == NULL) return -1;
  T(q, 1, r->user_id); T(q, 2, r->room_id); N(q, 3, r->ts);
  return run(c, q);
}

/* Takes the user out of every stored room policy snapshot (the rows are
 * read first, then rewritten: no update while the select runs). */
static int erase_policy(struct store_conn *c, struct store_rec *r) {
  char needle[ID_MAX + 4];
  store_policy_needle(r->user_id, needle, sizeof(needle));
  sqlite3_stmt *q = stmt(c, Q_ERASE_POLICY_FIND);
  if (q == NULL) return -1;
  T(q, 1, needle);
  json_t *rows = json_array();
  int rc;
  while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
    char *text = store_policy_without_user(col(q, 1), r->user_id);
    if (text) json_array_append_new(rows, json_pack("{s:s,s:s}", "room_id", col(q, 0), "policy", text));
    free(text);
  }
  sqlite3_reset(q);
  if (rc != SQLITE_DONE) {
    log_warn("sqlite_step err=\"%s\"", sqlite3_errmsg(c->db));
    json_decref(rows);
    return -1;
  }
  size_t i;
  json_t *row;
  rc = 0;
  json_array_foreach(rows, i, row) {
    if (!(q = stmt(c, Q_ERASE_POLICY_SET))) {
      rc = -1;
      break;
    }
    T(q, 1, json_string_value(json_object_get(row, "room_id")));
    T(q, 2, json_string_value(json_object_get(row, "policy")));
    N(q, 3, r->ts);
    if ((rc = run(c, q)) != 0) break;
  }
  json_decref(rows);
  return rc;
}

/* Retention of the rows that restore rooms ended before the cut-off:
 * deletes them and leaves the room ids in r->result (a JSON array), for
 * the room index on the loop. */
static int retire_rooms(struct store_conn *c, struct store_rec *r) {
  json_t *gone = json_array();
  static const int steps[] = {Q_RET_SETTINGS, Q_RET_POLICY};
  int rc = 0;
  for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]) && rc == 0; i++) {
    sqlite3_stmt *q = stmt(c, steps[i]);
    if (q == NULL) {
      rc = -1;
      break;
    }
    N(q, 1, r->ts);
    T(q, 2, r->text ? r->text : "[]");
    int s;
    while ((s = sqlite3_step(q)) == SQLITE_ROW) json_array_append_new(gone, json_string(col(q, 0)));
    sqlite3_reset(q);
    if (s != SQLITE_DONE) {
      log_warn("sqlite_step err=\"%s\"", sqlite3_errmsg(c->db));
      rc = -1;
    }
  }
  free(r->result);
  r->result = rc == 0 ? json_dumps(gone, JSON_COMPACT) : NULL;
  json_decref(gone);
  return rc;
}

static int apply(struct store_conn *c, struct store_rec *r) {
  sqlite3_stmt *q;
  switch (r->kind) {
  case STORE_ROOM_OPEN:
    if (!(q = stmt(c, Q_ROOM_OPEN))) return -1;
    T(q, 1, r->room_id); N(q, 2, r->ts);
    return run(c, q);
  case STORE_ROOM_CLOSE:
    if (!(q = stmt(c, Q_ROOM_CLOSE))) return -1;
    T(q, 1, r->room_id); N(q, 2, r->ts); N(q, 3, r->value); N(q, 4, r->seq);
    return run(c, q);
  case STORE_PART_JOIN:
    if (!(q = stmt(c, Q_PART_JOIN))) return -1;
    T(q, 1, r->room_id); T(q, 2, r->user_id); T(q, 3, r->id); T(q, 4, r->name); N(q, 5, r->ts);
    return run(c, q);
  case STORE_PART_LEAVE:
    if (!(q = stmt(c, Q_PART_LEAVE))) return -1;
    T(q, 1, r->user_id); T(q, 2, r->room_id); N(q, 3, r->ts); N(q, 4, r->value); T(q, 5, r->name);
    return run(c, q);
  case STORE_CHAT: {
    if (!(q = stmt(c, Q_CHAT))) return -1;
    T(q, 1, r->room_id); N(q, 2, r->seq); T(q, 3, r->id); T(q, 4, r->user_id); T(q, 5, r->name);
    T(q, 6, r->target); T(q, 7, r->aux); T(q, 8, r->text ? r->text : ""); N(q, 9, r->ts);
    int rc = run(c, q);
    if (rc != 0 || sqlite3_changes(c->db) == 0) return rc; /* a replay of a stored seq: nothing new */
    return note_sender(c, r);
  }
  case STORE_FTS_SYNC:
    return 0; /* its commit is the point: the search index follows what is committed */
  case STORE_CHAT_FORGET: {
    static const int steps[] = {Q_LOG_FORGET, Q_CHAT_FORGET};
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
      if (!(q = stmt(c, steps[i]))) return -1;
      T(q, 1, r->room_id); N(q, 2, r->seq);
      int rc = run(c, q);
      if (rc) return rc;
    }
    return 0;
  }
  case STORE_EVENT:
    if (!(q = stmt(c, Q_EVENT))) return -1;
    T(q, 1, r->room_id); N(q, 2, r->ts); T(q, 3, r->name); T(q, 4, r->user_id); T(q, 5, r->aux);
    N(q, 6, r->value);
    if (r->text) T(q, 7, r->text);
    N(q, 8, r->seq);
    return run(c, q);
  case STORE_MEDIA:
    if (!(q = stmt(c, Q_MEDIA))) return -1;
    T(q, 1, r->id); T(q, 2, r->room_id); T(q, 3, r->name); T(q, 4, r->user_id); T(q, 5, r->target);
    N(q, 6, r->ts); N(q, 7, r->value); T(q, 8, r->aux);
    if (r->text) T(q, 9, r->text);
    return run(c, q);
  case STORE_AUDIT:
    if (!(q = stmt(c, Q_AUDIT))) return -1;
    T(q, 1, r->room_id); N(q, 2, r->ts); T(q, 3, r->user_id); T(q, 4, r->name); T(q, 5, r->target);
    if (r->text) T(q, 6, r->text);
    return run(c, q);
  case STORE_SETTINGS:
    if (!(q = stmt(c, Q_SETTINGS))) return -1;
    T(q, 1, r->room_id); T(q, 2, r->text ? r->text : "{}"); N(q, 3, r->ts);
    return run(c, q);
  case STORE_POLICY:
    if (!(q = stmt(c, Q_POLICY))) return -1;
    T(q, 1, r->room_id); T(q, 2, r->text ? r->text : "{}"); N(q, 3, r->ts);
    return run(c, q);
  case STORE_ERASE_USER: {
    static const int steps[] = {Q_LOG_ERASE,    Q_ERASE_CHAT,  Q_ERASE_EVENTS,
                                Q_ERASE_SESSIONS, Q_ERASE_AUDIT, Q_ERASE_MEDIA};
    char needle[ID_MAX + 4];
    store_policy_needle(r->user_id, needle, sizeof(needle));
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
      if (!(q = stmt(c, steps[i]))) return -1;
      T(q, 1, r->user_id);
      if (steps[i] == Q_ERASE_AUDIT) T(q, 2, needle);
      int rc = run(c, q);
      if (rc) return rc;
    }
    return erase_policy(c, r);
  }
  case STORE_RETENTION: {
    static const int steps[] = {Q_LOG_RETENTION, Q_RET_CHAT, Q_RET_EVENTS, Q_RET_SENDERS};
    map_free(&c->senders); /* the pairs it deletes are written again by their next message */
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
      if (!(q = stmt(c, steps[i]))) return -1;
      N(q, 1, r->ts);
      int rc = run(c, q);
      if (rc) return rc;
    }
    return retire_rooms(c, r);
  }
  default:
    return -2;
  }
}

/* ---- reads ---- */

static const char *col(sqlite3_stmt *q, int i) {
  const unsigned char *t = sqlite3_column_text(q, i);
  return t ? (const char *)t : "";
}

static int read_chat(struct store_conn *c, struct store_rec *r) {
  const struct store_chat_query *cq = &r->query;
  char words[600] = "";
  int fts = cq->q[0] != '\0';
  if (fts && store_fts_words(cq->q, words, sizeof(words)) != 0) {
    /* Words asked for, none in it ("!!!"): nothing matches (as in
     * PostgreSQL, whose empty tsquery matches no row), not every row. */
    r->result = strdup("{\"messages\":[],\"has_more\":false}");
    return r->result ? 0 : -1;
  }
  int newest_first = cq->after == 0 || cq->before != 0;
  char sql[1024];
  snprintf(sql, sizeof(sql),
           "SELECT seq, message_id, from_user, sender_name, to_user, reply_to, text, ts, erased"
           " FROM chat_messages WHERE room_id = ?1"
           " AND (?2 OR to_user IS NULL OR from_user = ?3 OR to_user = ?3)"
           " AND (?4 = 0 OR seq < ?4) AND (?5 = 0 OR seq > ?5)%s"
           " ORDER BY seq %s LIMIT ?7",
           fts ? " AND id IN (SELECT rowid FROM chat_fts WHERE chat_fts MATCH ?6)" : "",
           newest_first ? "DESC" : "ASC");
  sqlite3_stmt *q;
  if (sqlite3_prepare_v2(c->db, sql, -1, &q, NULL) != SQLITE_OK) return -1;
  T(q, 1, r->room_id); N(q, 2, r->value ? 1 : 0); T(q, 3, r->user_id); N(q, 4, cq->before);
  N(q, 5, cq->after);
  if (fts) T(q, 6, words);
  N(q, 7, cq->limit + 1);
  json_t *msgs = json_array();
  int n = 0, rc;
  while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
    if (n++ == cq->limit) break;
    json_t *m = store_chat_json((unsigned long long)sqlite3_column_int64(q, 0), col(q, 1), col(q, 2),
                                col(q, 3), col(q, 4), col(q, 5), col(q, 6),
                                (unsigned long long)sqlite3_column_int64(q, 7), sqlite3_column_int(q, 8));
    if (newest_first) json_array_insert_new(msgs, 0, m);
    else json_array_append_new(msgs, m);
  }
  int ok = rc == SQLITE_ROW || rc == SQLITE_DONE;
  sqlite3_finalize(q);
  if (!ok) {
    json_decref(msgs);
    return -1;
  }
  json_t *out = json_pack("{s:o,s:b}", "messages", msgs, "has_more", n > cq->limit);
  r->result = out ? json_dumps(out, JSON_COMPACT) : NULL;
  json_decref(out);
  return r->result ? 0 : -1;
}

/* Runs sql with ?1 bound to a text and ?2 to a number, and appends one
 * object per row (column names as keys) to arr. */
static int rows_json(struct store_conn *c, const char *sql, const char *a1, int64_t a2, json_t *arr) {
  sqlite3_stmt *q;
  if (sqlite3_prepare_v2(c->db, sql, -1, &q, NULL) != SQLITE_OK) {
    log_warn("sqlite_prepare err=\"%s\"", sqlite3_errmsg(c->db));
    return -1;
  }
  T(q, 1, a1);
  if (sqlite3_bind_parameter_count(q) >= 2) N(q, 2, a2);
  int rc;
  while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
    json_t *o = json_object();
    for (int i = 0; i < sqlite3_column_count(q); i++) {
      const char *name = sqlite3_column_name(q, i);
      switch (sqlite3_column_type(q, i)) {
      case SQLITE_INTEGER: json_object_set_new(o, name, json_integer(sqlite3_column_int64(q, i))); break;
      case SQLITE_NULL: json_object_set_new(o, name, json_null()); break;
      default: {
        const char *t = col(q, i);
        /* Columns holding JSON come back as JSON. */
        json_t *j = (strcmp(name, "data") == 0 || strcmp(name, "details") == 0) ? json_loads(t, 0, NULL) : NULL;
        json_object_set_new(o, name, j ? j : json_string(t));
      }
      }
    }
    json_array_append_new(arr, o);
  }
  sqlite3_finalize(q);
  return rc == SQLITE_DONE ? 0 : -1;
}

static int read_rows(struct store_conn *c, struct store_rec *r) {
  json_t *out = json_object(), *a = json_array();
  int rc = -1;
  json_object_set_new(out, "items", a);
  switch (r->kind) {
  case STORE_READ_EVENTS:
    rc = rows_json(c, STORE_EVENTS_SQL, r->room_id, (int64_t)r->ts, a);
    break;
  case STORE_READ_AUDIT:
    rc = rows_json(c, "SELECT * FROM (SELECT id, ts, actor, action, target, details FROM audit_log"
                      " WHERE room_id = ?1 AND ts >= ?2 ORDER BY id DESC LIMIT 1000) ORDER BY id",
                   r->room_id, (int64_t)r->ts, a);
    break;
  case STORE_READ_MEDIA:
    rc = rows_json(c, "SELECT id, kind, started_by, stopped_by, started_at, stopped_at, detail,"
                      " target_redacted FROM recordings WHERE room_id = ?1 ORDER BY started_at",
                   r->room_id, 0, a);
    break;
  case STORE_READ_EXPORT: {
    json_t *chat = json_array(), *sessions = json_array(), *events = json_array(), *audit = json_array();
    rc = rows_json(c, STORE_EXPORT_CHAT_SQL, r->user_id, 0, chat);
    if (rc == 0)
      rc = rows_json(c, "SELECT room_id, session_id, role, joined_at, left_at, duration_ms, end_reason"
                        " FROM participant_sessions WHERE user_id = ?1 ORDER BY joined_at",
                     r->user_id, 0, sessions);
    if (rc == 0)
      rc = rows_json(c, STORE_EXPORT_EVENTS_SQL, r->user_id, 0, events);
    if (rc == 0)
      rc = rows_json(c, "SELECT room_id, ts, actor, action, target, details FROM audit_log"
                        " WHERE actor = ?1 OR target = ?1 ORDER BY ts, id", r->user_id, 0, audit);
    json_t *policy = json_array();
    if (rc == 0) {
      char needle[ID_MAX + 4];
      store_policy_needle(r->user_id, needle, sizeof(needle));
      rc = rows_json(c, "SELECT room_id, policy FROM room_policy WHERE instr(policy, ?1) > 0"
                        " ORDER BY room_id", needle, 0, policy);
    }
    store_export_fill(out, r->user_id, chat, sessions, events, audit, policy);
    break;
  }
  case STORE_READ_ROOM:
    rc = rows_json(c, STORE_ROOM_SQL, r->room_id, 0, a);
    break;
  case STORE_READ_SUMMARY: {
    json_t *sum = json_array(), *q = json_array();
    rc = rows_json(c, STORE_SUMMARY_SQL, r->room_id, 0, sum);
    if (rc == 0) rc = rows_json(c, STORE_QUALITY_SQL, r->room_id, 0, q);
    json_object_set_new(out, "summary", sum);
    json_object_set_new(out, "quality", q);
    break;
  }
  default:
    break;
  }
  if (rc == 0 && (r->kind == STORE_READ_EVENTS || r->kind == STORE_READ_AUDIT || r->kind == STORE_READ_MEDIA)) {
    /* Whether the store knows the room at all (404 otherwise). */
    json_t *k = json_array();
    rc = rows_json(c, "SELECT count(*) AS known FROM room_sessions WHERE room_id = $1", r->room_id, 0, k);
    json_object_set(out, "known", json_object_get(json_array_get(k, 0), "known"));
    json_decref(k);
  }
  if (rc == 0) r->result = json_dumps(out, JSON_COMPACT);
  json_decref(out);
  return rc == 0 && r->result ? 0 : -1;
}

static int index_catch_up(struct store_conn *c, sqlite3_int64 *pruned);
static void index_prune(struct store_conn *c, sqlite3_int64 upto);

static int read_one(struct store_conn *c, struct store_rec *r) {
  /* A read sees one snapshot; on the search index's connection, the index
   * first catches up with it, in the same transaction (a search sees every
   * row committed before it, and no erased row by its old text). */
  if (exec(c, "BEGIN") != 0) return -1;
  sqlite3_int64 pruned = 0;
  if (c->is_index && index_catch_up(c, &pruned) != 0) {
    rollback(c);
    return -1;
  }
  int rc = r->kind == STORE_READ_CHAT ? read_chat(c, r) : read_rows(c, r);
  if (exec(c, "COMMIT") != 0) {
    rollback(c);
    return -1;
  }
  index_prune(c, pruned);
  return rc;
}

/* ---- the search index (ADR 0022) ----
 *
 * FTS5 in a file of its own, <database>-search, kept by the store's
 * indexer thread on its own connection, so that indexing never holds the
 * chat database's write lock: the writer commits chat rows only, and
 * durable chat does not wait behind the index's segments and merges
 * (docs/performance.md, "Persistence", seventh pass). The chat database is
 * attached to that connection as chat.
 *
 * docs holds each indexed row's id, ts and text (FTS5's external content:
 * the index forgets a row by its old text, which the chat table may no
 * longer have). The file is derived data: one that is not a database, of
 * another version, or of another chat database (store_meta.search_id; or
 * one that read more of chat_index_log than the chat database ever wrote,
 * an older copy of it) is deleted and built again from the chat table.
 *
 * index_state follows the chat database:
 * - indexed_upto: every chat row at or below it that is not erased is in
 *   docs, and docs has nothing above it. Rows above are added in steps.
 * - log_upto: the chat_index_log entries applied. An erased or forgotten
 *   row's id is deleted from docs and, when it is at or below indexed_upto
 *   and a row not erased holds it now (the ids of deleted last rows come
 *   again), added back; a retention cut-off deletes from docs the rows it
 *   deleted from the chat table (docs keeps their ts). After entries,
 *   indexed_upto comes down to the last id in docs: ids freed at the top
 *   and used again are added as new rows.
 * A step reads the chat database in one snapshot and commits docs and
 * index_state together; the entries it applied are pruned after. Nothing
 * here runs on the writer's connection. */

static const char index_schema[] =
  "CREATE TABLE docs (id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, text TEXT NOT NULL);"
  "CREATE INDEX docs_ts ON docs(ts);"
  "CREATE VIRTUAL TABLE chat_fts USING fts5(text, content='docs', content_rowid='id', columnsize=0);"
  "CREATE TRIGGER docs_ad AFTER DELETE ON docs BEGIN"
  "  INSERT INTO chat_fts(chat_fts, rowid, text) VALUES ('delete', old.id, old.text); END;"
  "CREATE TABLE index_state (id INTEGER PRIMARY KEY CHECK (id = 1), search_id TEXT NOT NULL,"
  "  indexed_upto INTEGER NOT NULL, log_upto INTEGER NOT NULL, mark_key TEXT);"
  "INSERT INTO index_state(id, search_id, indexed_upto, log_upto) VALUES (1,"
  "  (SELECT value FROM chat.store_meta WHERE key = 'search_id'), 0,"
  "  coalesce((SELECT seq FROM chat.sqlite_sequence WHERE name = 'chat_index_log'), 0));"
  "PRAGMA user_version = 1;";

/* 1 when the file is this chat database's index, as it left it: its
 * search_id; the log entries it has not applied all there (none beyond
 * what the chat database ever logged, none pruned: an older copy of either
 * file fails one of these); and the row at its mark the one it marked
 * (mark_key: room and seq; a chat database put back from before that row,
 * or where another row took its id, fails), unless an entry it has still
 * to apply may have deleted that row (a forget of it, or a retention). */
#define INDEX_LOG_LAST "coalesce((SELECT seq FROM chat.sqlite_sequence WHERE name = 'chat_index_log'), 0)"
#define INDEX_MATCHES                                                                                     \
  "SELECT s.search_id = (SELECT value FROM chat.store_meta WHERE key = 'search_id')"                      \
  " AND s.log_upto <= " INDEX_LOG_LAST                                                                    \
  " AND (SELECT count(*) FROM chat.chat_index_log WHERE seq > s.log_upto) = " INDEX_LOG_LAST " - s.log_upto" \
  " AND (s.indexed_upto = 0 OR " INDEX_MARK_KEY("s.indexed_upto") " IS s.mark_key"                     \
  "      OR EXISTS (SELECT 1 FROM chat.chat_index_log WHERE seq > s.log_upto"                             \
  "                 AND (chat_id = s.indexed_upto OR cutoff IS NOT NULL)))"                               \
  " FROM index_state s"

/* Opens (and creates) the index at path with the chat database attached.
 * NULL with err on failure; *stale set when the file is to be built again
 * rather than the failure reported (not a database, another version,
 * another chat database). */
static struct store_conn *index_open(const char *path, const char *chat_path, int *stale, char *err,
                                     size_t err_len) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, configure_once);
  *stale = 0;
  struct store_conn *c = calloc(1, sizeof(*c));
  if (c == NULL) return snprintf(err, err_len, "out of memory"), NULL;
  c->is_index = 1;
  const char *why = NULL;
  sqlite3_stmt *q = NULL;
  if (sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) !=
      SQLITE_OK)
    goto fail;
  sqlite3_busy_timeout(c->db, 5000);
  /* NORMAL: the index can always be built again; a sync is the disk's time. */
  if (sqlite3_exec(c->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-2048;",
                   NULL, NULL, NULL) != SQLITE_OK) {
    int e = sqlite3_errcode(c->db);
    *stale = e == SQLITE_NOTADB || e == SQLITE_CORRUPT;
    goto fail;
  }
  if (sqlite3_prepare_v2(c->db, "ATTACH DATABASE ?1 AS chat", -1, &q, NULL) != SQLITE_OK) goto fail;
  T(q, 1, chat_path);
  int rc = sqlite3_step(q);
  sqlite3_finalize(q);
  q = NULL;
  if (rc != SQLITE_DONE) goto fail;
  int v = version_of(c->db);
  if (v < 0) goto fail; /* could not read it (descriptors, I/O): not a reason to delete it */
  if (v == 0) {
    if (sqlite3_exec(c->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) goto fail;
    if (sqlite3_exec(c->db, index_schema, NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
      rollback(c);
      goto fail;
    }
  } else if (v != 1) {
    *stale = 1;
    why = "not a huddle search index of this version";
    goto fail;
  }
  if (sqlite3_prepare_v2(c->db, INDEX_MATCHES, -1, &q, NULL) != SQLITE_OK) {
    *stale = sqlite3_errcode(c->db) == SQLITE_ERROR; /* no such table or column: not ours */
    goto fail;
  }
  rc = sqlite3_step(q);
  if (rc != SQLITE_ROW) {
    *stale = rc == SQLITE_DONE; /* no state row */
    goto fail;
  }
  if (sqlite3_column_int(q, 0) != 1) {
    *stale = 1;
    why = "made for another copy of the chat database";
    goto fail;
  }
  sqlite3_finalize(q);
  return c;
fail:
  snprintf(err, err_len, "search index %s: %s", path, why ? why : c->db ? sqlite3_errmsg(c->db) : "cannot open");
  sqlite3_finalize(q);
  disconnect(c);
  return NULL;
}

static void index_unlink(const char *path) {
  static const char *suffix[] = {"", "-wal", "-shm"};
  for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
    char p[4200];
    snprintf(p, sizeof(p), "%s%s", path, suffix[i]);
    if (unlink(p) != 0 && errno != ENOENT) log_warn("search_index_unlink path=%s err=\"%s\"", p, strerror(errno));
  }
}

/* The search index's connection for the chat database at where
 * (store_be_ops.index_connect): a stale file is built again. */
static struct store_conn *index_connect(const char *where, char *err, size_t err_len) {
  char path[4200];
  snprintf(path, sizeof(path), "%s-search", where);
  int stale;
  struct store_conn *c = index_open(path, where, &stale, err, err_len);
  if (c || !stale) return c;
  log_warn("search_index_rebuild reason=\"%s\"", err);
  index_unlink(path);
  return index_open(path, where, &stale, err, err_len);
}

static sqlite3_int64 one_int(struct store_conn *c, sqlite3_stmt *q, int *ok) {
  int rc = sqlite3_step(q);
  sqlite3_int64 v = rc == SQLITE_ROW ? sqlite3_column_int64(q, 0) : 0;
  *ok = rc == SQLITE_ROW;
  sqlite3_reset(q);
  if (!*ok) log_warn("sqlite_step err=\"%s\"", sqlite3_errmsg(c->db));
  return v;
}

/* Inside the open transaction: the chat rows with ids in (after, upto]
 * that are not erased go into docs and the index. 0 or -1. */
static int index_add(struct store_conn *c, sqlite3_int64 after, sqlite3_int64 upto) {
  static const int steps[] = {Q_IX_ADD, Q_IX_ADD_FTS};
  for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
    sqlite3_stmt *q = stmt(c, steps[i]);
    if (q == NULL) return -1;
    N(q, 1, after); N(q, 2, upto);
    if (run(c, q) != 0) return -1;
  }
  return 0;
}

/* Inside the open transaction: applies the log entries, then adds up to
 * INDEX_STEP_ROWS new rows. *more: rows are left; *applied: the last entry
 * applied (0: none). 0 or -1. */
static int index_step(struct store_conn *c, int *more, sqlite3_int64 *applied) {
  sqlite3_stmt *q = stmt(c, Q_IX_STATE);
  if (q == NULL || sqlite3_step(q) != SQLITE_ROW) {
    if (q) sqlite3_reset(q);
    return -1;
  }
  sqlite3_int64 upto = sqlite3_column_int64(q, 0), log_upto = sqlite3_column_int64(q, 1);
  sqlite3_reset(q);
  *more = 0;
  *applied = 0;
  sqlite3_stmt *lq = stmt(c, Q_IX_LOG);
  if (lq == NULL) return -1;
  N(lq, 1, log_upto);
  int rc, failed = 0;
  while (!failed && (rc = sqlite3_step(lq)) == SQLITE_ROW) {
    log_upto = *applied = sqlite3_column_int64(lq, 0);
    if (sqlite3_column_type(lq, 2) != SQLITE_NULL) {
      failed = !(q = stmt(c, Q_IX_DEL_TS)) || (N(q, 1, sqlite3_column_int64(lq, 2)), run(c, q) != 0);
      continue;
    }
    sqlite3_int64 id = sqlite3_column_int64(lq, 1);
    failed = !(q = stmt(c, Q_IX_DEL_ID)) || (N(q, 1, id), run(c, q) != 0);
    /* Added back as it is now (above the mark: added as a new row later). */
    if (!failed && id <= upto) failed = index_add(c, id - 1, id) != 0;
  }
  sqlite3_reset(lq);
  if (failed || (rc != SQLITE_ROW && rc != SQLITE_DONE)) return -1;
  int ok = 1;
  if (*applied) {
    sqlite3_int64 last = (q = stmt(c, Q_IX_LOWER)) ? one_int(c, q, &ok) : (ok = 0);
    if (!ok) return -1;
    if (last < upto) upto = last;
  }
  if (!(q = stmt(c, Q_IX_END))) return -1;
  N(q, 1, upto); N(q, 2, INDEX_STEP_ROWS);
  int step = sqlite3_step(q);
  sqlite3_int64 end = step == SQLITE_ROW ? sqlite3_column_int64(q, 0) : 0;
  int rows = step == SQLITE_ROW ? sqlite3_column_int(q, 1) : 0;
  sqlite3_reset(q);
  if (step != SQLITE_ROW) return -1;
  if (rows > 0) {
    if (index_add(c, upto, end) != 0) return -1;
    upto = end;
    *more = rows == INDEX_STEP_ROWS;
  }
  if (!(q = stmt(c, Q_IX_MARK))) return -1;
  N(q, 1, upto); N(q, 2, log_upto);
  return run(c, q) == 0 ? 0 : -1;
}

/* Inside the open transaction: every step until nothing is left.
 * *applied: the last log entry applied. 0 or -1. */
static int index_catch_up(struct store_conn *c, sqlite3_int64 *applied) {
  int more = 1;
  while (more) {
    sqlite3_int64 a;
    if (index_step(c, &more, &a) != 0) return -1;
    if (a) *applied = a;
  }
  return 0;
}

/* After a commit that applied log entries up to upto: once that commit
 * is on the disk (a checkpoint of the index's WAL syncs it: with
 * synchronous=NORMAL a commit alone is not), they are deleted from the
 * chat database, in a short write of its own. Pruned before, a power loss
 * could keep the prune and lose the commit: an erased row's old text back
 * in the index with nothing left to say so. Not pruned (the checkpoint or
 * the write failed), they stay until a later prune; a step never reads
 * them again (log_upto). */
static void index_prune(struct store_conn *c, sqlite3_int64 upto) {
  sqlite3_stmt *q;
  if (upto == 0) return;
  int rc = sqlite3_wal_checkpoint_v2(c->db, "main", SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
  if (rc != SQLITE_OK) {
    log_warn("search_index_checkpoint err=\"%s\"", sqlite3_errmsg(c->db));
    return;
  }
  if (!(q = stmt(c, Q_IX_PRUNE))) return;
  N(q, 1, upto);
  run(c, q);
}

/* One step in a transaction of its own (store_be_ops.index_work): 1 when
 * more rows wait, 0 when the index has caught up, -1 on failure. */
static int index_work(struct store_conn *c) {
  int more;
  sqlite3_int64 applied;
  /* BEGIN, not BEGIN IMMEDIATE: that would take the attached chat
   * database's write lock too, the writer's. */
  if (exec(c, "BEGIN") != 0) return -1;
  if (index_step(c, &more, &applied) != 0 || exec(c, "COMMIT") != 0) {
    rollback(c);
    return -1;
  }
  index_prune(c, applied);
  return more;
}

static int load_rooms(struct store_conn *c, void (*fn)(void *, const char *, uint64_t, const char *, const char *),
                      void *arg) {
  sqlite3_stmt *q;
  const char *sql =
      "SELECT room_id, max(seq), max(settings), max(policy) FROM ("
      " SELECT room_id, max(seq) AS seq, NULL AS settings, NULL AS policy FROM chat_messages GROUP BY room_id"
      " UNION ALL SELECT room_id, max(last_seq), NULL, NULL FROM room_sessions GROUP BY room_id"
      " UNION ALL SELECT room_id, 0, settings, NULL FROM room_settings"
      " UNION ALL SELECT room_id, 0, NULL, policy FROM room_policy) GROUP BY room_id";
  if (sqlite3_prepare_v2(c->db, sql, -1, &q, NULL) != SQLITE_OK) return -1;
  int rc;
  while ((rc = sqlite3_step(q)) == SQLITE_ROW)
    fn(arg, col(q, 0), (uint64_t)sqlite3_column_int64(q, 1),
       sqlite3_column_type(q, 2) == SQLITE_NULL ? NULL : col(q, 2),
       sqlite3_column_type(q, 3) == SQLITE_NULL ? NULL : col(q, 3));
  sqlite3_finalize(q);
  return rc == SQLITE_DONE ? 0 : -1;
}

static int version(struct store_conn *c) { return version_of(c->db); }

static int ping(struct store_conn *c) { return version_of(c->db) >= 0; }

/* Idle: the page cache held what the last batches wrote (up to cache_size),
 * which a quiet server does not need; the next write reads back the few
 * pages it touches (from the OS's cache). */
static void release_cache(struct store_conn *c) { sqlite3_db_release_memory(c->db); }

/* On the checkpointer's own connection: what the writer's commits appended
 * to the WAL is copied into the database file (and the file synced), while
 * the writer goes on appending. PASSIVE: never waits for the writer or a
 * reader; what it could not copy is copied next time. */
static int checkpoint(struct store_conn *c) {
  int rc = sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
  return rc == SQLITE_OK || rc == SQLITE_BUSY ? 0 : -1;
}

const struct store_be_ops store_sqlite_ops = {
  "sqlite", connect_db, disconnect, begin, commit, rollback, apply, read_one, load_rooms, version, ping,
  NULL, /* apply_batch: statements are calls into the library, no round trips to save */
  index_connect, /* the search index, in its own file (ADR 0022) */
  index_work,
  release_cache,
  checkpoint,
};

/* For tests: a database at an older version (0 = empty file left alone). */
int store_sqlite_create_at_version(const char *path, int v, char *err, size_t err_len) {
  sqlite3 *db;
  if (sqlite3_open(path, &db) != SQLITE_OK) return snprintf(err, err_len, "open"), -1;
  int rc = 0;
  for (int i = 0; i < v && rc == 0; i++) {
    char sql[64];
    snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", i + 1);
    if (sqlite3_exec(db, migrations[i], NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK) {
      snprintf(err, err_len, "%s", sqlite3_errmsg(db));
      rc = -1;
    }
  }
  sqlite3_close(db);
  return rc;
}
