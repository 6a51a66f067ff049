/* The PostgreSQL back end (libpq): the same records and reads as SQLite,
 * schema version in huddle_schema, migrations under an advisory lock (two
 * instances starting together migrate once), full-text search with a
 * tsvector column and a GIN index. Statements are prepared once per
 * connection; the writer sends a whole batch in pipeline mode (one round
 * trip, apply_batch below). Built only when libpq is found
 * (HUDDLE_HAVE_LIBPQ). */
#define LOG_MODULE "store"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "store/store_schema.h"

#ifndef HUDDLE_HAVE_LIBPQ

int store_pg_available(void) { return 0; }
static struct store_conn *connect_none(const char *w, int m, char *err, size_t el) {
  snprintf(err, el, "no PostgreSQL support in this build");
  return NULL;
}
const struct store_be_ops store_pg_ops = {"postgresql", connect_none, NULL, NULL, NULL, NULL, NULL,
                                          NULL, NULL, NULL, NULL, NULL, NULL, NULL};
int store_pg_create_at_version(const char *url, int v, char *err, size_t err_len) {
  snprintf(err, err_len, "no PostgreSQL support in this build");
  return -1;
}

#else

#include <inttypes.h>
#include <jansson.h>
#include <libpq-fe.h>

int store_pg_available(void) { return 1; }

static const char *migrations[] = {
  /* 1 */
  "CREATE TABLE room_sessions ("
  "  id BIGSERIAL PRIMARY KEY, room_id TEXT NOT NULL, started_at BIGINT NOT NULL,"
  "  ended_at BIGINT, peak_participants INTEGER NOT NULL DEFAULT 0);"
  "CREATE INDEX room_sessions_room ON room_sessions(room_id, started_at);",
  /* 2 */
  "ALTER TABLE room_sessions ADD COLUMN last_seq BIGINT NOT NULL DEFAULT 0;"
  "CREATE TABLE participant_sessions ("
  "  id BIGSERIAL PRIMARY KEY, room_id TEXT NOT NULL, user_id TEXT NOT NULL,"
  "  session_id TEXT NOT NULL, role TEXT NOT NULL DEFAULT '', joined_at BIGINT NOT NULL,"
  "  left_at BIGINT, duration_ms BIGINT, end_reason TEXT);"
  "CREATE INDEX participant_sessions_room ON participant_sessions(room_id, joined_at);"
  "CREATE INDEX participant_sessions_user ON participant_sessions(user_id);"
  "CREATE INDEX participant_sessions_sid ON participant_sessions(session_id);"
  "CREATE TABLE chat_messages ("
  "  id BIGSERIAL PRIMARY KEY, room_id TEXT NOT NULL, seq BIGINT NOT NULL,"
  "  message_id TEXT NOT NULL, from_user TEXT NOT NULL, sender_name TEXT NOT NULL DEFAULT '',"
  "  to_user TEXT, reply_to TEXT, text TEXT NOT NULL, ts BIGINT NOT NULL,"
  "  erased INTEGER NOT NULL DEFAULT 0,"
  "  tsv tsvector GENERATED ALWAYS AS (to_tsvector('simple', text)) STORED,"
  "  UNIQUE(room_id, seq));"
  "CREATE INDEX chat_messages_from ON chat_messages(from_user);"
  "CREATE INDEX chat_messages_to ON chat_messages(to_user);"
  "CREATE INDEX chat_messages_ts ON chat_messages(ts);"
  "CREATE INDEX chat_messages_tsv ON chat_messages USING GIN(tsv);"
  "CREATE TABLE analytics_events ("
  "  id BIGSERIAL PRIMARY KEY, room_id TEXT NOT NULL, ts BIGINT NOT NULL, type TEXT NOT NULL,"
  "  user_id TEXT NOT NULL DEFAULT '', name TEXT NOT NULL DEFAULT '',"
  "  value BIGINT NOT NULL DEFAULT 0, data TEXT);"
  "CREATE INDEX analytics_events_room ON analytics_events(room_id, ts);"
  "CREATE INDEX analytics_events_user ON analytics_events(user_id);"
  "CREATE INDEX analytics_events_ts ON analytics_events(ts);"
  "CREATE TABLE recordings ("
  "  id TEXT PRIMARY KEY, room_id TEXT NOT NULL, kind TEXT NOT NULL, started_by TEXT NOT NULL,"
  "  stopped_by TEXT NOT NULL DEFAULT '', started_at BIGINT NOT NULL,"
  "  stopped_at BIGINT NOT NULL DEFAULT 0, detail TEXT NOT NULL DEFAULT '', target_redacted TEXT);"
  "CREATE INDEX recordings_room ON recordings(room_id, kind, started_at);"
  "CREATE TABLE audit_log ("
  "  id BIGSERIAL PRIMARY KEY, room_id TEXT NOT NULL, ts BIGINT NOT NULL, actor TEXT NOT NULL,"
  "  action TEXT NOT NULL, target TEXT NOT NULL DEFAULT '', details TEXT);"
  "CREATE INDEX audit_log_room ON audit_log(room_id, ts);"
  "CREATE TABLE room_settings ("
  "  room_id TEXT PRIMARY KEY, settings TEXT NOT NULL, updated_at BIGINT NOT NULL);",
  /* 3: what else a room needs to come back after a restart: in-room roles
   * and permission overrides per user, bans, rejections, the hand queue. */
  "CREATE TABLE room_policy ("
  "  room_id TEXT PRIMARY KEY, policy TEXT NOT NULL, updated_at BIGINT NOT NULL);",
  /* 4: SQLite's full-text insert left its trigger (store_sqlite.c); the
   * schema here is unchanged (the tsvector is a generated column). Both back
   * ends share one version number. */
  "SELECT 1",
  /* 5: chat_messages_to is partial: room messages (to_user NULL, most of
   * them) no longer touch it; export's to_user = $1 still uses it. (SQLite's
   * full-text index lags its chat rows from this version; the GIN index
   * here is PostgreSQL's own, updated with the row.) */
  "DROP INDEX chat_messages_to;"
  "CREATE INDEX chat_messages_to ON chat_messages(to_user) WHERE to_user IS NOT NULL;",
  /* 6: a chat message writes no analytics_events row; its event is read
   * from its chat row (ADR 0020, STORE_CHAT_EVENT_ROWS). Events carry the
   * room's seq for the order within a millisecond; the chat event rows a
   * stored chat message stands for are deleted (store_schema.h). */
  "ALTER TABLE analytics_events ADD COLUMN seq BIGINT NOT NULL DEFAULT 0;" STORE_MIGRATION_6_ROWS,
  /* 7: no index on chat_messages(from_user); chat_senders finds a user's
   * chat for erase and export (ADR 0021, store_schema.h). */
  "CREATE TABLE chat_senders (user_id TEXT NOT NULL, room_id TEXT NOT NULL, last_ts BIGINT NOT NULL,"
  " PRIMARY KEY (user_id, room_id));" STORE_MIGRATION_7_ROWS,
  /* 8: SQLite's full-text index moved to a file of its own (ADR 0022);
   * nothing here (the tsvector and its GIN index follow the row), but both
   * back ends share one version number. */
  "SELECT 1",
};

#define NMIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))

enum {
  Q_ROOM_OPEN, Q_ROOM_CLOSE, Q_PART_JOIN, Q_PART_LEAVE, Q_CHAT, Q_CHAT_FORGET, Q_EVENT, Q_MEDIA,
  Q_AUDIT, Q_SETTINGS, Q_POLICY, Q_ERASE_CHAT, Q_ERASE_EVENTS, Q_ERASE_SESSIONS, Q_RET_CHAT, Q_RET_EVENTS,
  Q_ERASE_POLICY_FIND, Q_ERASE_POLICY_SET, Q_ERASE_AUDIT, Q_ERASE_MEDIA, Q_RET_SETTINGS, Q_RET_POLICY,
  Q_RET_SENDERS, Q_CHAT_SENDER, Q__COUNT
};

static const struct { const char *sql; int nparams; } write_sql[Q__COUNT] = {
  [Q_ROOM_OPEN] = {"INSERT INTO room_sessions(room_id, started_at) VALUES ($1, $2)", 2},
  [Q_ROOM_CLOSE] = {"UPDATE room_sessions SET ended_at = $2, peak_participants = $3, last_seq = $4"
                    " WHERE room_id = $1 AND ended_at IS NULL", 4},
  [Q_PART_JOIN] = {"INSERT INTO participant_sessions(room_id, user_id, session_id, role, joined_at)"
                   " VALUES ($1, $2, $3, $4, $5)", 5},
  [Q_PART_LEAVE] = {"UPDATE participant_sessions SET left_at = $3, duration_ms = $4, end_reason = $5"
                    " WHERE user_id = $1 AND room_id = $2 AND left_at IS NULL", 5},
  /* The row and its chat_senders pair (schema 7), one statement, one
   * round trip in the pipeline: Q_CHAT when the writer wrote the pair
   * recently (it is there: inserted only should something have removed
   * it), Q_CHAT_SENDER when the pair is due (store_sender_due): its
   * last_ts moves up. */
#define PG_CHAT_ROW                                                                                       \
  "WITH m AS (INSERT INTO chat_messages(room_id, seq, message_id, from_user, sender_name, to_user,"        \
  " reply_to, text, ts) VALUES ($1, $2, $3, $4, $5, NULLIF($6, ''), NULLIF($7, ''), $8, $9)"               \
  " ON CONFLICT (room_id, seq) DO NOTHING RETURNING from_user, room_id, ts)"                               \
  " INSERT INTO chat_senders(user_id, room_id, last_ts) SELECT from_user, room_id, ts FROM m"
  [Q_CHAT] = {PG_CHAT_ROW " ON CONFLICT DO NOTHING", 9},
  [Q_CHAT_SENDER] = {PG_CHAT_ROW " ON CONFLICT (user_id, room_id) DO UPDATE"
                     " SET last_ts = GREATEST(chat_senders.last_ts, excluded.last_ts)", 9},
  [Q_CHAT_FORGET] = {"DELETE FROM chat_messages WHERE room_id = $1 AND seq = $2", 2},
  [Q_EVENT] = {"INSERT INTO analytics_events(room_id, ts, type, user_id, name, value, data, seq)"
               " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)", 8},
  [Q_MEDIA] = {"INSERT INTO recordings(id, room_id, kind, started_by, stopped_by, started_at, stopped_at,"
               " detail, target_redacted) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
               " ON CONFLICT (id) DO UPDATE SET stopped_by = excluded.stopped_by,"
               " stopped_at = excluded.stopped_at", 9},
  [Q_AUDIT] = {"INSERT INTO audit_log(room_id, ts, actor, action, target, details)"
               " VALUES ($1, $2, $3, $4, $5, $6)", 6},
  [Q_SETTINGS] = {"INSERT INTO room_settings(room_id, settings, updated_at) VALUES ($1, $2, $3)"
                  " ON CONFLICT (room_id) DO UPDATE SET settings = excluded.settings,"
                  " updated_at = excluded.updated_at", 3},
  [Q_POLICY] = {"INSERT INTO room_policy(room_id, policy, updated_at) VALUES ($1, $2, $3)"
                " ON CONFLICT (room_id) DO UPDATE SET policy = excluded.policy,"
                " updated_at = excluded.updated_at", 3},
  [Q_ERASE_CHAT] = {"UPDATE chat_messages SET text = '" STORE_TOMBSTONE "', sender_name = '', erased = 1"
                    " WHERE " STORE_CHAT_OF_USER("$1"), 1},
  [Q_ERASE_EVENTS] = {"UPDATE analytics_events SET user_id = '" STORE_ANONYMOUS "', data = NULL"
                      " WHERE user_id = $1", 1},
  [Q_ERASE_SESSIONS] = {"UPDATE participant_sessions SET user_id = '" STORE_ANONYMOUS "' WHERE user_id = $1", 1},
  [Q_RET_CHAT] = {"DELETE FROM chat_messages WHERE ts < $1", 1},
  [Q_RET_EVENTS] = {"DELETE FROM analytics_events WHERE ts < $1", 1},
  [Q_RET_SENDERS] = {STORE_RET_SENDERS_SQL, 1},
  [Q_ERASE_POLICY_FIND] = {"SELECT room_id, policy FROM room_policy WHERE strpos(policy, $1) > 0"
                           " FOR UPDATE", 1},
  [Q_ERASE_POLICY_SET] = {"UPDATE room_policy SET policy = $2, updated_at = $3 WHERE room_id = $1", 3},
  /* As in store_sqlite.c: rooms' audit entries naming the user ($2 is the
   * quoted id), and recordings and streams started or stopped by it. */
  [Q_ERASE_AUDIT] = {"UPDATE audit_log SET"
                     " actor = CASE WHEN actor = $1 THEN '" STORE_ANONYMOUS "' ELSE actor END,"
                     " target = CASE WHEN target = $1 THEN '" STORE_ANONYMOUS "' ELSE target END,"
                     " details = CASE WHEN strpos(coalesce(details, ''), $2) > 0 THEN NULL ELSE details END"
                     " WHERE room_id <> '' AND (actor = $1 OR target = $1 OR strpos(coalesce(details, ''), $2) > 0)",
                     2},
  /* Retention of what restores a room, as in store_sqlite.c, except that a
   * session still open counts as a live room: several instances may share
   * the database, and one of them may hold the room. */
#define RET_ROOMS_GONE                                                                                    \
  "WITH gone AS (SELECT room_id FROM (SELECT room_id, updated_at AS t FROM room_settings"                \
  " UNION ALL SELECT room_id, updated_at FROM room_policy) x GROUP BY room_id HAVING max(t) < $1"        \
  " EXCEPT SELECT room_id FROM room_sessions WHERE coalesce(ended_at, started_at) >= $1"                 \
  " OR ended_at IS NULL EXCEPT SELECT json_array_elements_text($2::json)) "
  [Q_RET_SETTINGS] = {RET_ROOMS_GONE "DELETE FROM room_settings WHERE room_id IN (SELECT room_id FROM gone)"
                      " RETURNING room_id", 2},
  [Q_RET_POLICY] = {RET_ROOMS_GONE "DELETE FROM room_policy WHERE room_id IN (SELECT room_id FROM gone)"
                    " RETURNING room_id", 2},
  [Q_ERASE_MEDIA] = {"UPDATE recordings SET"
                     " started_by = CASE WHEN started_by = $1 THEN '" STORE_ANONYMOUS "' ELSE started_by END,"
                     " stopped_by = CASE WHEN stopped_by = $1 THEN '" STORE_ANONYMOUS "' ELSE stopped_by END"
                     " WHERE started_by = $1 OR stopped_by = $1", 1},
};

struct store_conn {
  PGconn *pg;
  int prepared;
  /* The writer's pipeline: the record each statement sent since the last
   * sync belongs to, in order (NULL for BEGIN and COMMIT). */
  struct store_rec **sent;
  size_t nsent, cap;
  /* The chat_senders pairs this connection wrote and when (store_sender_due):
   * forgotten at a rollback (the pairs of the transaction) and retention. */
  struct map senders;
};

/* Runs sql (no parameters); 0 if it succeeded. */
static int exec(struct store_conn *c, const char *sql) {
  PGresult *res = PQexec(c->pg, sql);
  ExecStatusType s = PQresultStatus(res);
  int ok = s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
  if (!ok) log_warn("pg_failed err=\"%s\"", PQerrorMessage(c->pg));
  PQclear(res);
  return ok ? 0 : -1;
}

static int version_of(struct store_conn *c) {
  PGresult *res = PQexec(c->pg, "SELECT version FROM huddle_schema");
  int v = -1;
  if (PQresultStatus(res) == PGRES_TUPLES_OK) v = PQntuples(res) ? atoi(PQgetvalue(res, 0, 0)) : 0;
  PQclear(res);
  return v;
}

static int migrate(struct store_conn *c, char *err, size_t err_len) {
  /* The version table itself, and a lock so two instances starting at
   * once do not both run a migration. */
  if (exec(c, "BEGIN") || exec(c, "SELECT pg_advisory_xact_lock(7240010)") ||
      exec(c, "CREATE TABLE IF NOT EXISTS huddle_schema (version INTEGER NOT NULL)") ||
      exec(c, "INSERT INTO huddle_schema SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM huddle_schema)") ||
      exec(c, "COMMIT")) {
    snprintf(err, err_len, "postgresql: cannot create huddle_schema: %s", PQerrorMessage(c->pg));
    exec(c, "ROLLBACK");
    return -1;
  }
  for (;;) {
    if (exec(c, "BEGIN") || exec(c, "SELECT pg_advisory_xact_lock(7240010)")) {
      snprintf(err, err_len, "postgresql: %s", PQerrorMessage(c->pg));
      return -1;
    }
    int v = version_of(c);
    if (v < 0 || v > NMIGRATIONS) {
      if (v > NMIGRATIONS)
        snprintf(err, err_len, "database schema version %d is newer than this huddle knows (%d)", v, NMIGRATIONS);
      else
        snprintf(err, err_len, "postgresql: cannot read the schema version: %s", PQerrorMessage(c->pg));
      exec(c, "ROLLBACK");
      return -1;
    }
    if (v == NMIGRATIONS) {
      exec(c, "COMMIT");
      return 0;
    }
    char bump[64];
    snprintf(bump, sizeof(bump), "UPDATE huddle_schema SET version = %d", v + 1);
    if (exec(c, migrations[v]) || exec(c, bump) || exec(c, "COMMIT")) {
      snprintf(err, err_len, "migration %d: %s", v + 1, PQerrorMessage(c->pg));
      exec(c, "ROLLBACK");
      return -1;
    }
    log_info("migrated backend=postgresql version=%d", v + 1);
  }
}

static void disconnect(struct store_conn *c) {
  if (c == NULL) return;
  PQfinish(c->pg);
  free(c->sent);
  map_free(&c->senders);
  free(c);
}

static struct store_conn *connect_db(const char *url, int flags, char *err, size_t err_len) {
  struct store_conn *c = calloc(1, sizeof(*c));
  if (c == NULL) return snprintf(err, err_len, "out of memory"), NULL;
  /* A database that does not answer must not hold the writer for long. */
  const char *keys[] = {"dbname", "connect_timeout", NULL};
  const char *vals[] = {url, "5", NULL};
  c->pg = PQconnectdbParams(keys, vals, 1);
  if (PQstatus(c->pg) != CONNECTION_OK) {
    /* The message names host and port, never the password. */
    char msg[200];
    snprintf(msg, sizeof(msg), "%s", PQerrorMessage(c->pg));
    msg[strcspn(msg, "\n")] = '\0';
    snprintf(err, err_len, "postgresql: %s", msg);
    disconnect(c);
    return NULL;
  }
  exec(c, "SET client_min_messages = warning");
  /* The session's commits return before the WAL is flushed (the server
   * flushes it within wal_writer_delay, 3x at most). */
  if ((flags & STORE_CONNECT_SYNC_NORMAL) && exec(c, "SET synchronous_commit = off") != 0) {
    snprintf(err, err_len, "postgresql: cannot set synchronous_commit");
    disconnect(c);
    return NULL;
  }
  if (flags & STORE_CONNECT_MIGRATE) {
    if (migrate(c, err, err_len) != 0) {
      disconnect(c);
      return NULL;
    }
  } else if (version_of(c) != NMIGRATIONS) {
    snprintf(err, err_len, "postgresql: schema version %d, expected %d", version_of(c), NMIGRATIONS);
    disconnect(c);
    return NULL;
  }
  return c;
}

static int prepare_all(struct store_conn *c) {
  if (c->prepared) return 0;
  for (int i = 0; i < Q__COUNT; i++) {
    char name[16];
    snprintf(name, sizeof(name), "w%d", i);
    PGresult *res = PQprepare(c->pg, name, write_sql[i].sql, write_sql[i].nparams, NULL);
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    if (!ok) {
      log_warn("pg_prepare err=\"%s\"", PQerrorMessage(c->pg));
      return -1;
    }
  }
  c->prepared = 1;
  return 0;
}

static int begin(struct store_conn *c) { return prepare_all(c) || exec(c, "BEGIN") ? -1 : 0; }
static int commit(struct store_conn *c) { return exec(c, "COMMIT"); }
static void rollback(struct store_conn *c) {
  if (PQstatus(c->pg) == CONNECTION_OK && PQtransactionStatus(c->pg) != PQTRANS_IDLE) exec(c, "ROLLBACK");
  map_free(&c->senders); /* and the pairs it wrote */
}

/* A failed statement's result: -2 if it is the record's fault (class 22,
 * data, and 23, integrity, on a connection that still works), else -1. */
static int refusal(struct store_conn *c, const PGresult *res) {
  const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
  const char *msg = PQresultErrorMessage(res);
  log_warn("pg_failed state=%s err=\"%.*s\"", state ? state : "-", (int)strcspn(msg, "\n"), msg);
  return PQstatus(c->pg) == CONNECTION_OK && state && (strncmp(state, "22", 2) == 0 || strncmp(state, "23", 2) == 0)
             ? -2 : -1;
}

/* Runs prepared statement i with n text parameters (NULL = SQL NULL). */
static int run(struct store_conn *c, int i, int n, const char *const *v) {
  char name[16];
  snprintf(name, sizeof(name), "w%d", i);
  PGresult *res = PQexecPrepared(c->pg, name, n, v, NULL, NULL, 0);
  int rc = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : refusal(c, res);
  PQclear(res);
  return rc;
}

/* Takes the user out of every stored room policy snapshot. */
static int erase_policy(struct store_conn *c, struct store_rec *r, const char *ts) {
  char needle[ID_MAX + 4], name[16];
  store_policy_needle(r->user_id, needle, sizeof(needle));
  snprintf(name, sizeof(name), "w%d", Q_ERASE_POLICY_FIND);
  const char *v[] = {needle};
  PGresult *res = PQexecPrepared(c->pg, name, 1, v, NULL, NULL, 0);
  if (PQresultStatus(res) != PGRES_TUPLES_OK) {
    log_warn("pg_failed err=\"%s\"", PQerrorMessage(c->pg));
    PQclear(res);
    return -1;
  }
  int rc = 0;
  for (int i = 0; i < PQntuples(res) && rc == 0; i++) {
    char *text = store_policy_without_user(PQgetvalue(res, i, 1), r->user_id);
    if (text == NULL) continue;
    const char *u[] = {PQgetvalue(res, i, 0), text, ts};
    rc = run(c, Q_ERASE_POLICY_SET, 3, u);
    free(text);
  }
  PQclear(res);
  return rc;
}

/* A write record as prepared statements: at most two, each with its text
 * parameters (NULL = SQL NULL), pointing into r and into num. */
struct pg_stmt {
  int q, n;
  const char *v[9];
};

#define STMT(out, i, qq, ...)                                        \
  do {                                                               \
    const char *v_[] = {__VA_ARGS__};                                \
    (out)[i].q = (qq);                                               \
    (out)[i].n = (int)(sizeof(v_) / sizeof(v_[0]));                  \
    memcpy((out)[i].v, v_, sizeof(v_));                              \
  } while (0)

/* Fills out with the statements r needs, in order; returns how many, 0 for
 * a kind this back end does not know (the record is bad). STORE_ERASE_USER
 * and STORE_RETENTION need a read as well (erase_policy, retire_rooms) and
 * are not described here (needs_read). */
static int rec_stmts(struct store_conn *c, const struct store_rec *r, char num[3][24], struct pg_stmt out[2]) {
  char *ts = num[0], *seq = num[1], *val = num[2];
  snprintf(ts, 24, "%" PRIu64, r->ts);
  snprintf(seq, 24, "%" PRIu64, r->seq);
  snprintf(val, 24, "%" PRId64, r->value);
  switch (r->kind) {
  case STORE_ROOM_OPEN: STMT(out, 0, Q_ROOM_OPEN, r->room_id, ts); return 1;
  case STORE_ROOM_CLOSE: STMT(out, 0, Q_ROOM_CLOSE, r->room_id, ts, val, seq); return 1;
  case STORE_PART_JOIN: STMT(out, 0, Q_PART_JOIN, r->room_id, r->user_id, r->id, r->name, ts); return 1;
  case STORE_PART_LEAVE: STMT(out, 0, Q_PART_LEAVE, r->user_id, r->room_id, ts, val, r->name); return 1;
  case STORE_CHAT:
    STMT(out, 0, store_sender_due(&c->senders, r->room_id, r->user_id, r->ts) ? Q_CHAT_SENDER : Q_CHAT,
         r->room_id, seq, r->id, r->user_id, r->name, r->target, r->aux, r->text ? r->text : "", ts);
    return 1;
  case STORE_CHAT_FORGET: STMT(out, 0, Q_CHAT_FORGET, r->room_id, seq); return 1;
  case STORE_EVENT: STMT(out, 0, Q_EVENT, r->room_id, ts, r->name, r->user_id, r->aux, val, r->text, seq); return 1;
  case STORE_MEDIA: /* value is stopped_at */
    STMT(out, 0, Q_MEDIA, r->id, r->room_id, r->name, r->user_id, r->target, ts, val, r->aux, r->text);
    return 1;
  case STORE_AUDIT: STMT(out, 0, Q_AUDIT, r->room_id, ts, r->user_id, r->name, r->target, r->text); return 1;
  case STORE_SETTINGS: STMT(out, 0, Q_SETTINGS, r->room_id, r->text ? r->text : "{}", ts); return 1;
  case STORE_POLICY: STMT(out, 0, Q_POLICY, r->room_id, r->text ? r->text : "{}", ts); return 1;
  default: /* STORE_RETENTION and STORE_ERASE_USER read as well: apply() */
    return 0;
  }
}

/* Records whose statements read inside the transaction: applied one by one
 * (apply), never pipelined. */
static int needs_read(const struct store_rec *r) {
  return r->kind == STORE_ERASE_USER || r->kind == STORE_RETENTION;
}

/* Retention: chat and events before the cut-off, then the rows that
 * restore rooms ended before it; the room ids gone go to r->result. */
static int retire_rooms(struct store_conn *c, struct store_rec *r) {
  char ts[24];
  snprintf(ts, sizeof(ts), "%" PRIu64, r->ts);
  const char *v[] = {ts, r->text ? r->text : "[]"};
  int rc = run(c, Q_RET_CHAT, 1, v);
  if (rc == 0) rc = run(c, Q_RET_EVENTS, 1, v);
  if (rc == 0) rc = run(c, Q_RET_SENDERS, 1, v);
  map_free(&c->senders); /* the pairs it deletes are written again by their next message */
  json_t *gone = json_array();
  static const int steps[] = {Q_RET_SETTINGS, Q_RET_POLICY};
  for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]) && rc == 0; i++) {
    char name[16];
    snprintf(name, sizeof(name), "w%d", steps[i]);
    PGresult *res = PQexecPrepared(c->pg, name, 2, v, NULL, NULL, 0);
    if (PQresultStatus(res) == PGRES_TUPLES_OK) {
      for (int k = 0; k < PQntuples(res); k++) json_array_append_new(gone, json_string(PQgetvalue(res, k, 0)));
    } else {
      rc = refusal(c, res);
    }
    PQclear(res);
  }
  free(r->result);
  r->result = rc == 0 ? json_dumps(gone, JSON_COMPACT) : NULL;
  json_decref(gone);
  return rc;
}

/* One record, synchronously, inside the open transaction. */
static int apply(struct store_conn *c, struct store_rec *r) {
  if (r->kind == STORE_RETENTION) return retire_rooms(c, r);
  if (r->kind == STORE_ERASE_USER) {
    char ts[24];
    snprintf(ts, sizeof(ts), "%" PRIu64, r->ts);
    const char *v[] = {r->user_id};
    char needle[ID_MAX + 4];
    store_policy_needle(r->user_id, needle, sizeof(needle));
    const char *va[] = {r->user_id, needle};
    int rc = run(c, Q_ERASE_CHAT, 1, v);
    if (rc == 0) rc = run(c, Q_ERASE_EVENTS, 1, v);
    if (rc == 0) rc = run(c, Q_ERASE_SESSIONS, 1, v);
    if (rc == 0) rc = run(c, Q_ERASE_AUDIT, 2, va);
    if (rc == 0) rc = run(c, Q_ERASE_MEDIA, 1, v);
    if (rc == 0) rc = erase_policy(c, r, ts);
    return rc;
  }
  char num[3][24];
  struct pg_stmt q[2];
  int n = rec_stmts(c, r, num, q);
  if (n == 0) return -2;
  int rc = 0;
  for (int i = 0; i < n && rc == 0; i++) rc = run(c, q[i].q, q[i].n, q[i].v);
  return rc;
}

/* ---- the writer's batch, pipelined ----
 *
 * One round trip for a whole batch: BEGIN, every record's statements and
 * COMMIT go out back to back (libpq pipeline mode), then one sync, then
 * the answers are read in order. The first statement the server refuses
 * aborts the rest of the pipeline (COMMIT included: nothing is committed)
 * and names its record. A record that needs a read inside the transaction
 * (STORE_ERASE_USER) ends the pipeline there: what was sent is synced and
 * checked, the record runs synchronously, and a new pipeline carries on in
 * the same transaction (so does STORE_RETENTION: its deletes return ids). libpq in blocking mode reads while it waits to
 * write, so a long pipeline cannot deadlock on full socket buffers. */

/* Queues one statement on the pipeline for record r (NULL: BEGIN/COMMIT). */
static int pipe_send(struct store_conn *c, struct store_rec *r, const struct pg_stmt *q, const char *sql) {
  if (c->nsent == c->cap) {
    size_t cap = c->cap ? c->cap * 2 : 256;
    struct store_rec **sent = realloc(c->sent, cap * sizeof(*sent));
    if (sent == NULL) return -1;
    c->sent = sent;
    c->cap = cap;
  }
  int ok;
  if (q) {
    char name[16];
    snprintf(name, sizeof(name), "w%d", q->q);
    ok = PQsendQueryPrepared(c->pg, name, q->n, q->v, NULL, NULL, 0);
  } else {
    ok = PQsendQueryParams(c->pg, sql, 0, NULL, NULL, NULL, NULL, 0);
  }
  if (!ok) {
    log_warn("pg_failed err=\"%s\"", PQerrorMessage(c->pg));
    return -1;
  }
  c->sent[c->nsent++] = r;
  return 0;
}

/* Syncs the pipeline and reads every answer to what was sent, in order:
 * 0, -1 (the connection failed or answered out of step), or -2 with *bad
 * set to the record of the first statement the server refused. */
static int pipe_collect(struct store_conn *c, struct store_rec **bad) {
  size_t n = c->nsent;
  c->nsent = 0;
  if (!PQpipelineSync(c->pg)) {
    log_warn("pg_failed err=\"%s\"", PQerrorMessage(c->pg));
    return -1;
  }
  int rc = 0;
  for (size_t i = 0; i < n; i++) {
    PGresult *res = PQgetResult(c->pg);
    if (res == NULL) return -1; /* the connection is gone */
    ExecStatusType s = PQresultStatus(res);
    if (rc == 0 && s == PGRES_FATAL_ERROR) {
      /* The first error; everything after it comes back PIPELINE_ABORTED. */
      rc = refusal(c, res);
      if (rc == -2 && c->sent[i] == NULL) rc = -1; /* BEGIN or COMMIT: nobody's fault */
      if (rc == -2) *bad = c->sent[i];
    } else if (rc == 0 && s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
      log_warn("pg_failed status=%s", PQresStatus(s));
      rc = -1;
    }
    PQclear(res);
    /* Each statement's answers end with a NULL. */
    if ((res = PQgetResult(c->pg)) != NULL) {
      PQclear(res);
      return -1;
    }
    if (PQstatus(c->pg) != CONNECTION_OK) return -1;
  }
  PGresult *res = PQgetResult(c->pg);
  int synced = res && PQresultStatus(res) == PGRES_PIPELINE_SYNC;
  PQclear(res);
  return synced ? rc : -1;
}

static int apply_batch(struct store_conn *c, struct store_rec *batch, struct store_rec **bad) {
  if (prepare_all(c) != 0) return -1;
  if (!PQenterPipelineMode(c->pg)) {
    log_warn("pg_failed err=\"%s\"", PQerrorMessage(c->pg));
    return -1;
  }
  c->nsent = 0;
  int rc = pipe_send(c, NULL, NULL, "BEGIN");
  struct store_rec *r = batch;
  while (rc == 0) {
    /* Queue records up to the end of the batch or one that needs a read. */
    struct store_rec *unknown = NULL;
    for (; r && !needs_read(r) && rc == 0; r = r->next) {
      char num[3][24];
      struct pg_stmt q[2];
      int n = rec_stmts(c, r, num, q);
      if (n == 0) {
        unknown = r;
        break;
      }
      for (int i = 0; i < n && rc == 0; i++) rc = pipe_send(c, r, &q[i], NULL);
    }
    if (rc == 0 && r == NULL) rc = pipe_send(c, NULL, NULL, "COMMIT");
    if (rc != 0) break;
    rc = pipe_collect(c, bad);
    if (rc == 0 && unknown) { /* everything before it went in */
      *bad = unknown;
      rc = -2;
    }
    if (rc != 0 || r == NULL) break;
    /* r reads inside the transaction: run it on its own, then pipeline on. */
    if (!PQexitPipelineMode(c->pg)) {
      rc = -1;
      break;
    }
    rc = apply(c, r);
    if (rc == -2) *bad = r;
    if (rc == 0 && !PQenterPipelineMode(c->pg)) rc = -1;
    r = r->next;
  }
  if (PQpipelineStatus(c->pg) != PQ_PIPELINE_OFF && !PQexitPipelineMode(c->pg)) {
    /* Answers left unread: the connection is out of step; start afresh. */
    log_warn("pg_failed err=\"%s\"", PQerrorMessage(c->pg));
    if (rc == -2) rc = -1;
    if (rc == 0) { /* committed; the next statement gets a fresh connection */
      PQreset(c->pg);
      c->prepared = 0;
    }
  }
  if (rc != 0) rollback(c);
  return rc;
}

/* ---- reads ---- */

static int read_chat(struct store_conn *c, struct store_rec *r) {
  const struct store_chat_query *cq = &r->query;
  int fts = cq->q[0] != '\0';
  int newest_first = cq->after == 0 || cq->before != 0;
  char sql[1024];
  snprintf(sql, sizeof(sql),
           "SELECT seq, message_id, from_user, sender_name, to_user, reply_to, text, ts, erased"
           " FROM chat_messages WHERE room_id = $1"
           " AND ($2::int = 1 OR to_user IS NULL OR from_user = $3 OR to_user = $3)"
           " AND ($4::bigint = 0 OR seq < $4::bigint) AND ($5::bigint = 0 OR seq > $5::bigint)"
           " AND ($6::text = '' OR tsv @@ plainto_tsquery('simple', $6::text))"
           " ORDER BY seq %s LIMIT $7",
           newest_first ? "DESC" : "ASC");
  char admin[4], before[24], after[24], limit[16];
  snprintf(admin, sizeof(admin), "%d", r->value ? 1 : 0);
  snprintf(before, sizeof(before), "%" PRIu64, cq->before);
  snprintf(after, sizeof(after), "%" PRIu64, cq->after);
  snprintf(limit, sizeof(limit), "%d", cq->limit + 1);
  const char *v[] = {r->room_id, admin, r->user_id, before, after, fts ? cq->q : "", limit};
  PGresult *res = PQexecParams(c->pg, sql, 7, NULL, v, NULL, NULL, 0);
  if (PQresultStatus(res) != PGRES_TUPLES_OK) {
    log_warn("pg_read err=\"%s\"", PQerrorMessage(c->pg));
    PQclear(res);
    return -1;
  }
  json_t *msgs = json_array();
  int n = PQntuples(res);
  for (int i = 0; i < n && i < cq->limit; i++) {
    json_t *m = store_chat_json(strtoull(PQgetvalue(res, i, 0), NULL, 10), PQgetvalue(res, i, 1),
                                PQgetvalue(res, i, 2), PQgetvalue(res, i, 3), PQgetvalue(res, i, 4),
                                PQgetvalue(res, i, 5), PQgetvalue(res, i, 6),
                                strtoull(PQgetvalue(res, i, 7), NULL, 10), atoi(PQgetvalue(res, i, 8)));
    if (newest_first) json_array_insert_new(msgs, 0, m);
    else json_array_append_new(msgs, m);
  }
  PQclear(res);
  json_t *out = json_pack("{s:o,s:b}", "messages", msgs, "has_more", n > cq->limit);
  r->result = out ? json_dumps(out, JSON_COMPACT) : NULL;
  json_decref(out);
  return r->result ? 0 : -1;
}

/* int8/int4 columns come back as numbers, data/details as JSON. */
static int rows_json(struct store_conn *c, const char *sql, const char *a1, const char *a2, json_t *arr) {
  const char *v[] = {a1, a2};
  PGresult *res = PQexecParams(c->pg, sql, a2 ? 2 : 1, NULL, v, NULL, NULL, 0);
  if (PQresultStatus(res) != PGRES_TUPLES_OK) {
    log_warn("pg_read err=\"%s\"", PQerrorMessage(c->pg));
    PQclear(res);
    return -1;
  }
  for (int i = 0; i < PQntuples(res); i++) {
    json_t *o = json_object();
    for (int k = 0; k < PQnfields(res); k++) {
      const char *name = PQfname(res, k);
      Oid t = PQftype(res, k);
      if (PQgetisnull(res, i, k)) {
        json_object_set_new(o, name, json_null());
      } else if (t == 20 || t == 23 || t == 21) {
        json_object_set_new(o, name, json_integer(strtoll(PQgetvalue(res, i, k), NULL, 10)));
      } else {
        const char *s = PQgetvalue(res, i, k);
        json_t *j = (strcmp(name, "data") == 0 || strcmp(name, "details") == 0) ? json_loads(s, 0, NULL) : NULL;
        json_object_set_new(o, name, j ? j : json_string(s));
      }
    }
    json_array_append_new(arr, o);
  }
  PQclear(res);
  return 0;
}

static int read_rows(struct store_conn *c, struct store_rec *r) {
  json_t *out = json_object(), *a = json_array();
  char since[24];
  snprintf(since, sizeof(since), "%" PRIu64, r->ts);
  int rc = -1;
  json_object_set_new(out, "items", a);
  switch (r->kind) {
  case STORE_READ_EVENTS:
    rc = rows_json(c, STORE_EVENTS_SQL, r->room_id, since, a);
    break;
  case STORE_READ_AUDIT:
    rc = rows_json(c, "SELECT * FROM (SELECT id, ts, actor, action, target, details FROM audit_log"
                      " WHERE room_id = $1 AND ts >= $2::bigint ORDER BY id DESC LIMIT 1000) e ORDER BY id",
                   r->room_id, since, a);
    break;
  case STORE_READ_MEDIA:
    rc = rows_json(c, "SELECT id, kind, started_by, stopped_by, started_at, stopped_at, detail,"
                      " target_redacted FROM recordings WHERE room_id = $1 ORDER BY started_at",
                   r->room_id, NULL, a);
    break;
  case STORE_READ_EXPORT: {
    json_t *chat = json_array(), *sessions = json_array(), *events = json_array(), *audit = json_array();
    rc = rows_json(c, STORE_EXPORT_CHAT_SQL, r->user_id, NULL, chat);
    if (rc == 0)
      rc = rows_json(c, "SELECT room_id, session_id, role, joined_at, left_at, duration_ms, end_reason"
                        " FROM participant_sessions WHERE user_id = $1 ORDER BY joined_at",
                     r->user_id, NULL, sessions);
    if (rc == 0)
      rc = rows_json(c, STORE_EXPORT_EVENTS_SQL, r->user_id, NULL, events);
    if (rc == 0)
      rc = rows_json(c, "SELECT room_id, ts, actor, action, target, details FROM audit_log"
                        " WHERE actor = $1 OR target = $1 ORDER BY ts, id", r->user_id, NULL, audit);
    json_t *policy = json_array();
    if (rc == 0) {
      char needle[ID_MAX + 4];
      store_policy_needle(r->user_id, needle, sizeof(needle));
      rc = rows_json(c, "SELECT room_id, policy FROM room_policy WHERE strpos(policy, $1) > 0"
                        " ORDER BY room_id", needle, NULL, policy);
    }
    store_export_fill(out, r->user_id, chat, sessions, events, audit, policy);
    break;
  }
  case STORE_READ_ROOM:
    rc = rows_json(c, STORE_ROOM_SQL, r->room_id, NULL, a);
    break;
  case STORE_READ_SUMMARY: {
    json_t *sum = json_array(), *q = json_array();
    rc = rows_json(c, STORE_SUMMARY_SQL, r->room_id, NULL, sum);
    if (rc == 0) rc = rows_json(c, STORE_QUALITY_SQL, r->room_id, NULL, q);
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
    rc = rows_json(c, "SELECT count(*) AS known FROM room_sessions WHERE room_id = $1", r->room_id, NULL, k);
    json_object_set(out, "known", json_object_get(json_array_get(k, 0), "known"));
    json_decref(k);
  }
  if (rc == 0) r->result = json_dumps(out, JSON_COMPACT);
  json_decref(out);
  return rc == 0 && r->result ? 0 : -1;
}

static int read_one(struct store_conn *c, struct store_rec *r) {
  if (exec(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") != 0) return -1;
  int rc = r->kind == STORE_READ_CHAT ? read_chat(c, r) : read_rows(c, r);
  exec(c, "COMMIT");
  return rc;
}

static int load_rooms(struct store_conn *c, void (*fn)(void *, const char *, uint64_t, const char *, const char *),
                      void *arg) {
  PGresult *res = PQexec(c->pg,
      "SELECT room_id, max(seq), max(settings), max(policy) FROM ("
      " SELECT room_id, max(seq) AS seq, NULL::text AS settings, NULL::text AS policy"
      " FROM chat_messages GROUP BY room_id"
      " UNION ALL SELECT room_id, max(last_seq), NULL, NULL FROM room_sessions GROUP BY room_id"
      " UNION ALL SELECT room_id, 0, settings, NULL FROM room_settings"
      " UNION ALL SELECT room_id, 0, NULL, policy FROM room_policy) u GROUP BY room_id");
  if (PQresultStatus(res) != PGRES_TUPLES_OK) {
    PQclear(res);
    return -1;
  }
  for (int i = 0; i < PQntuples(res); i++)
    fn(arg, PQgetvalue(res, i, 0), strtoull(PQgetvalue(res, i, 1), NULL, 10),
       PQgetisnull(res, i, 2) ? NULL : PQgetvalue(res, i, 2),
       PQgetisnull(res, i, 3) ? NULL : PQgetvalue(res, i, 3));
  PQclear(res);
  return 0;
}

static int version(struct store_conn *c) { return version_of(c); }

static int ping(struct store_conn *c) { return PQstatus(c->pg) == CONNECTION_OK && version_of(c) >= 0; }

const struct store_be_ops store_pg_ops = {
  "postgresql", connect_db, disconnect, begin, commit, rollback, apply, read_one, load_rooms, version, ping,
  apply_batch,
  NULL, NULL, /* index: none apart (the tsvector and its GIN index follow the row) */
  NULL, /* release: the cache is the server's */
  NULL, /* checkpoint: the server's own */
};

/* For tests: a database at an older version. */
int store_pg_create_at_version(const char *url, int v, char *err, size_t err_len) {
  struct store_conn c = {.pg = PQconnectdb(url)};
  int rc = PQstatus(c.pg) == CONNECTION_OK ? 0 : -1;
  if (rc == 0)
    rc = exec(&c, "CREATE TABLE huddle_schema (version INTEGER NOT NULL)") ||
         exec(&c, "INSERT INTO huddle_schema VALUES (0)");
  for (int i = 0; i < v && rc == 0; i++) {
    char bump[64];
    snprintf(bump, sizeof(bump), "UPDATE huddle_schema SET version = %d", i + 1);
    rc = exec(&c, migrations[i]) || exec(&c, bump);
  }
  if (rc) snprintf(err, err_len, "%s", PQerrorMessage(c.pg));
  PQfinish(c.pg);
  return rc ? -1 : 0;
}

#endif
