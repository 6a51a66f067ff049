/* The shared store suite: the same cases against SQLite (always) and
 * PostgreSQL (when HUDDLE_TEST_PG_URL names a database this suite may
 * empty; scripts/with-postgres.sh starts a throwaway cluster for it).
 * Real databases, the real writer thread and loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <sqlite3.h>
#ifdef HUDDLE_HAVE_LIBPQ
#include <libpq-fe.h>
#endif

#include "store/store.h"
#include "store/store_schema.h"

struct fixture {
  uv_loop_t loop;
  struct store *st;
  char dir[256];
  const char *url;          /* NULL: SQLite in dir */
  int done;                 /* completions seen */
  int last_status;
  char *last_result;
  int status_of[32];        /* on_tracked: status by the record's seq (its tag) */
  int order[32], norder;    /* on_tracked: seqs in completion order */
};

static const char *pg_url(void) {
  const char *u = getenv("HUDDLE_TEST_PG_URL");
  return u && *u ? u : NULL;
}

#ifdef HUDDLE_HAVE_LIBPQ
static void pg_exec(const char *url, const char *sql) {
  PGconn *c = PQconnectdb(url);
  assert_int_equal(PQstatus(c), CONNECTION_OK);
  PGresult *r = PQexec(c, sql);
  PQclear(r);
  PQfinish(c);
}
#endif

/* Leaves the database empty: a fresh directory, or a dropped schema. */
static void wipe(struct fixture *f) {
  if (f->url) {
#ifdef HUDDLE_HAVE_LIBPQ
    pg_exec(f->url, "SET client_min_messages = warning; DROP SCHEMA public CASCADE; CREATE SCHEMA public;");
#endif
  } else {
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s/huddle.db*", f->dir);
    assert_int_equal(system(cmd), 0);
  }
}

static int open_store(struct fixture *f, char *err, size_t err_len) {
  return store_open(&f->st, &f->loop, f->dir, f->url, 100, 0, err, err_len);
}

static void close_store(struct fixture *f) {
  store_stop(f->st);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  store_close(f->st);
  f->st = NULL;
}

static int setup_common(void **state, const char *url) {
  struct fixture *f = calloc(1, sizeof(*f));
  uv_loop_init(&f->loop);
  snprintf(f->dir, sizeof(f->dir), "/tmp/huddle-store-test-XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  f->url = url;
  wipe(f);
  char err[512] = "";
  if (open_store(f, err, sizeof(err)) != 0) fail_msg("store_open: %s", err);
  *state = f;
  return 0;
}

static int setup_sqlite(void **state) { return setup_common(state, NULL); }
static int setup_pg(void **state) { return setup_common(state, pg_url()); }

static int teardown(void **state) {
  struct fixture *f = *state;
  if (f->st) close_store(f);
  uv_loop_close(&f->loop);
  char cmd[300];
  snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
  if (system(cmd) != 0) return -1;
  free(f->last_result);
  free(f);
  return 0;
}

static void on_done(struct store_rec *r, void *arg) {
  struct fixture *f = arg;
  f->done++;
  f->last_status = r->status;
  free(f->last_result);
  f->last_result = r->result;
  r->result = NULL;
}

static void wait_done(struct fixture *f, int n) {
  while (f->done < n) uv_run(&f->loop, UV_RUN_ONCE);
}

/* Completion for records tagged by seq (1..31), for the batch tests. */
static void on_tracked(struct store_rec *r, void *arg) {
  struct fixture *f = arg;
  f->done++;
  assert_true(r->seq > 0 && r->seq < 32);
  f->status_of[r->seq] = r->status;
  if (f->norder < 32) f->order[f->norder++] = (int)r->seq;
}

static void chat(struct fixture *f, const char *room, uint64_t seq, const char *from, const char *to,
                 const char *text) {
  struct store_rec *r = store_rec_new(STORE_CHAT, room);
  r->seq = seq;
  r->ts = 1000 + seq;
  snprintf(r->id, sizeof(r->id), "m%llu", (unsigned long long)seq);
  snprintf(r->user_id, sizeof(r->user_id), "%s", from);
  snprintf(r->target, sizeof(r->target), "%s", to ? to : "");
  snprintf(r->name, sizeof(r->name), "%s name", from);
  r->text = strdup(text);
  r->done = on_done;
  r->arg = f;
  assert_int_equal(store_submit(f->st, r, 1), 0);
}

/* Runs a chat read and returns the parsed answer (caller decrefs). */
static json_t *history(struct fixture *f, const char *room, const char *viewer, int admin, int limit,
                       uint64_t before, uint64_t after, const char *q) {
  struct store_rec *r = store_rec_new(STORE_READ_CHAT, room);
  snprintf(r->user_id, sizeof(r->user_id), "%s", viewer);
  r->value = admin;
  r->query.limit = limit;
  r->query.before = before;
  r->query.after = after;
  snprintf(r->query.q, sizeof(r->query.q), "%s", q ? q : "");
  r->done = on_done;
  r->arg = f;
  int want = f->done + 1;
  assert_int_equal(store_read(f->st, r), 0);
  wait_done(f, want);
  assert_int_equal(f->last_status, STORE_OK);
  json_t *j = json_loads(f->last_result, 0, NULL);
  assert_non_null(j);
  return j;
}

static const char *msg_text(json_t *h, size_t i) {
  return json_string_value(json_object_get(json_array_get(json_object_get(h, "messages"), i), "text"));
}

static size_t nmsgs(json_t *h) { return json_array_size(json_object_get(h, "messages")); }

static int has_more(json_t *h) { return json_is_true(json_object_get(h, "has_more")); }

/* ---- cases ---- */

static void test_chat_roundtrip_and_pages(void **state) {
  struct fixture *f = *state;
  char text[32];
  for (int i = 1; i <= 25; i++) {
    snprintf(text, sizeof(text), "hello number %d", i);
    chat(f, "r1", (uint64_t)i, "alice", NULL, text);
  }
  wait_done(f, 25);
  assert_int_equal(f->last_status, STORE_OK);
  json_t *h = history(f, "r1", "bob", 0, 10, 0, 0, NULL);
  assert_int_equal(nmsgs(h), 10);
  assert_string_equal(msg_text(h, 0), "hello number 16"); /* the newest 10, oldest first */
  assert_string_equal(msg_text(h, 9), "hello number 25");
  assert_true(has_more(h));
  json_decref(h);
  h = history(f, "r1", "bob", 0, 10, 16, 0, NULL);  /* before m16 */
  assert_int_equal(nmsgs(h), 10);
  assert_string_equal(msg_text(h, 0), "hello number 6");
  assert_string_equal(msg_text(h, 9), "hello number 15");
  assert_true(has_more(h));
  json_decref(h);
  h = history(f, "r1", "bob", 0, 10, 6, 0, NULL);
  assert_int_equal(nmsgs(h), 5);
  assert_false(has_more(h));
  json_decref(h);
  h = history(f, "r1", "bob", 0, 10, 0, 20, NULL);  /* after m20 */
  assert_int_equal(nmsgs(h), 5);
  assert_string_equal(msg_text(h, 0), "hello number 21");
  assert_false(has_more(h));
  json_t *m = json_array_get(json_object_get(h, "messages"), 0);
  assert_string_equal(json_string_value(json_object_get(m, "message_id")), "m21");
  assert_int_equal(json_integer_value(json_object_get(m, "seq")), 21);
  assert_string_equal(json_string_value(json_object_get(m, "from")), "alice");
  assert_int_equal(json_integer_value(json_object_get(m, "ts")), 1021);
  json_decref(h);
  h = history(f, "other", "bob", 0, 10, 0, 0, NULL);
  assert_int_equal(nmsgs(h), 0);
  json_decref(h);
}

static void test_private_and_search(void **state) {
  struct fixture *f = *state;
  chat(f, "r2", 1, "alice", NULL, "the quarterly budget is ready");
  chat(f, "r2", 2, "alice", "bob", "secret budget numbers for bob");
  chat(f, "r2", 3, "carol", NULL, "lunch at noon?");
  chat(f, "r2", 4, "bob", "alice", "thanks alice");
  wait_done(f, 4);
  json_t *h = history(f, "r2", "carol", 0, 50, 0, 0, NULL);
  assert_int_equal(nmsgs(h), 2); /* carol sees only the public ones */
  json_decref(h);
  h = history(f, "r2", "bob", 0, 50, 0, 0, NULL);
  assert_int_equal(nmsgs(h), 4);
  json_t *m = json_array_get(json_object_get(h, "messages"), 1);
  assert_string_equal(json_string_value(json_object_get(m, "to")), "bob");
  json_decref(h);
  h = history(f, "r2", "admin-svc", 1, 50, 0, 0, NULL);
  assert_int_equal(nmsgs(h), 4);
  json_decref(h);
  h = history(f, "r2", "carol", 0, 50, 0, 0, "budget");
  assert_int_equal(nmsgs(h), 1);
  assert_string_equal(msg_text(h, 0), "the quarterly budget is ready");
  json_decref(h);
  h = history(f, "r2", "bob", 0, 50, 0, 0, "budget numbers");
  assert_int_equal(nmsgs(h), 1);
  json_decref(h);
  h = history(f, "r2", "bob", 0, 50, 0, 0, "\"); DROP TABLE chat_messages; --");
  assert_int_equal(nmsgs(h), 0);
  json_decref(h);
  /* Words asked for, none in the query: nothing matches, not everything. */
  h = history(f, "r2", "admin-svc", 1, 50, 0, 0, "!!! ?");
  assert_int_equal(nmsgs(h), 0);
  json_decref(h);
}

/* A record written twice (a replay after a writer retry) is stored and
 * indexed once: the full-text row follows the chat row, not the attempt. */
static void test_replay_indexed_once(void **state) {
  struct fixture *f = *state;
  chat(f, "r7", 1, "alice", NULL, "zebra crossing at noon");
  chat(f, "r7", 1, "alice", NULL, "zebra crossing at noon");
  chat(f, "r7", 2, "bob", NULL, "another zebra");
  wait_done(f, 3);
  assert_int_equal(f->last_status, STORE_OK);
  json_t *h = history(f, "r7", "carol", 0, 50, 0, 0, "zebra");
  assert_int_equal(nmsgs(h), 2);
  json_decref(h);
  h = history(f, "r7", "carol", 0, 50, 0, 0, "crossing");
  assert_int_equal(nmsgs(h), 1);
  json_decref(h);
  if (f->url == NULL) { /* SQLite: the full-text index itself holds one row each */
    char path[400];
    snprintf(path, sizeof(path), "%s/huddle.db-search", f->dir);
    sqlite3 *db;
    sqlite3_stmt *q;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM chat_fts WHERE chat_fts MATCH 'zebra'", -1, &q, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(q, 0), 2);
    sqlite3_finalize(q);
    /* and it matches its rows, row for row */
    assert_int_equal(sqlite3_exec(db, "INSERT INTO chat_fts(chat_fts, rank) VALUES ('integrity-check', 1)",
                                  NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
  }
}

static void submit(struct fixture *f, struct store_rec *r) {
  r->done = on_done;
  r->arg = f;
  assert_int_equal(store_submit(f->st, r, 0), 0);
}

static void submit_read(struct fixture *f, struct store_rec *r) {
  r->done = on_done;
  r->arg = f;
  int want = f->done + 1;
  assert_int_equal(store_read(f->st, r), 0);
  wait_done(f, want);
  assert_int_equal(f->last_status, STORE_OK);
}

static void test_erase_export_retention(void **state) {
  struct fixture *f = *state;
  chat(f, "r3", 1, "dave", NULL, "dave says hi");
  chat(f, "r3", 2, "erin", NULL, "erin says hi");
  struct store_rec *e = store_rec_new(STORE_EVENT, "r3");
  e->ts = 5;
  snprintf(e->name, sizeof(e->name), "join");
  snprintf(e->user_id, sizeof(e->user_id), "dave");
  e->text = strdup("{\"k\":1}");
  submit(f, e);
  wait_done(f, 3);
  struct store_rec *x = store_rec_new(STORE_READ_EXPORT, NULL);
  snprintf(x->user_id, sizeof(x->user_id), "dave");
  x->done = on_done;
  x->arg = f;
  assert_int_equal(store_read(f->st, x), 0);
  wait_done(f, 4);
  json_t *j = json_loads(f->last_result, 0, NULL);
  assert_int_equal(json_array_size(json_object_get(j, "chat_messages")), 1);
  /* The join and, since schema 6, the chat's event, read from its chat row
   * (before, the loop wrote that row itself; this test writes no events). */
  assert_int_equal(json_array_size(json_object_get(j, "analytics_events")), 2);
  json_decref(j);
  struct store_rec *er = store_rec_new(STORE_ERASE_USER, NULL);
  snprintf(er->user_id, sizeof(er->user_id), "dave");
  submit(f, er);
  wait_done(f, 5);
  json_t *h = history(f, "r3", "x", 0, 50, 0, 0, NULL);
  assert_string_equal(msg_text(h, 0), STORE_TOMBSTONE);
  assert_string_equal(msg_text(h, 1), "erin says hi");
  json_decref(h);
  h = history(f, "r3", "x", 0, 50, 0, 0, "dave");
  assert_int_equal(nmsgs(h), 0); /* the erased text is gone from the index too */
  json_decref(h);
  x = store_rec_new(STORE_READ_EXPORT, NULL);
  snprintf(x->user_id, sizeof(x->user_id), "dave");
  x->done = on_done;
  x->arg = f;
  assert_int_equal(store_read(f->st, x), 0);
  wait_done(f, 8);
  j = json_loads(f->last_result, 0, NULL);
  assert_int_equal(json_array_size(json_object_get(j, "analytics_events")), 0); /* anonymized */
  json_decref(j);
  struct store_rec *ret = store_rec_new(STORE_RETENTION, NULL);
  ret->ts = 1002; /* deletes m1 (ts 1001), keeps m2 (ts 1002) */
  submit(f, ret);
  wait_done(f, 9);
  h = history(f, "r3", "x", 0, 50, 0, 0, NULL);
  assert_int_equal(nmsgs(h), 1);
  assert_string_equal(msg_text(h, 0), "erin says hi");
  json_decref(h);
}

/* ---- analytics: a chat's event is its chat row (schema 6, ADR 0020) ---- */

static void event_rec(struct fixture *f, const char *room, uint64_t ts, uint64_t seq, const char *type,
                      const char *user, const char *name, const char *data) {
  struct store_rec *r = store_rec_new(STORE_EVENT, room);
  r->ts = ts;
  r->seq = seq;
  snprintf(r->name, sizeof(r->name), "%s", type);
  snprintf(r->user_id, sizeof(r->user_id), "%s", user);
  snprintf(r->aux, sizeof(r->aux), "%s", name ? name : "");
  r->text = data ? strdup(data) : NULL;
  submit(f, r);
}

/* A read's answer, parsed (caller decrefs). */
static json_t *read_store(struct fixture *f, enum store_kind kind, const char *room, const char *user) {
  struct store_rec *r = store_rec_new(kind, room);
  if (user) snprintf(r->user_id, sizeof(r->user_id), "%s", user);
  submit_read(f, r);
  json_t *j = json_loads(f->last_result, 0, NULL);
  assert_non_null(j);
  return j;
}

/* "type:user_id:name@ts" per event, joined with spaces. */
static void events_line(json_t *items, char *out, size_t out_len) {
  size_t i, n = 0;
  json_t *e;
  out[0] = '\0';
  json_array_foreach(items, i, e) {
    const char *user = json_string_value(json_object_get(e, "user_id"));
    n += (size_t)snprintf(out + n, out_len - n, "%s%s:%s:%s@%lld", i ? " " : "",
                          json_string_value(json_object_get(e, "type")), user ? user : "-",
                          json_string_value(json_object_get(e, "name")),
                          (long long)json_integer_value(json_object_get(e, "ts")));
    assert_true(n < out_len);
  }
}

static void room_events_are(struct fixture *f, const char *room, const char *want) {
  json_t *j = read_store(f, STORE_READ_EVENTS, room, NULL);
  char line[1024];
  events_line(json_object_get(j, "items"), line, sizeof(line));
  assert_string_equal(line, want);
  json_decref(j);
}

static void export_events_are(struct fixture *f, const char *user, const char *want) {
  json_t *j = read_store(f, STORE_READ_EXPORT, NULL, user);
  char line[1024];
  events_line(json_object_get(j, "analytics_events"), line, sizeof(line));
  assert_string_equal(line, want);
  json_decref(j);
}

static json_int_t summary_int(struct fixture *f, const char *room, const char *key) {
  json_t *j = read_store(f, STORE_READ_SUMMARY, room, NULL);
  json_int_t v = json_integer_value(json_object_get(json_array_get(json_object_get(j, "summary"), 0), key));
  json_decref(j);
  return v;
}

/* A fresh database: chat writes no event row, and its event comes back from
 * the chat row, once, in the room's list and in its sender's export, in
 * its place among the others within one millisecond (by seq); erase makes
 * it anonymous and takes it out of the export; retention deletes it. */
static void test_chat_analytics_from_chat_rows(void **state) {
  struct fixture *f = *state;
  struct store_rec *o = store_rec_new(STORE_ROOM_OPEN, "ra");
  o->ts = 900;
  submit(f, o);
  event_rec(f, "ra", 1000, 0, "join", "alice", NULL, NULL);
  event_rec(f, "ra", 1002, 1, "quality", "alice", "good", NULL); /* before m2, in its millisecond */
  chat(f, "ra", 2, "alice", NULL, "hello");                          /* ts 1002 */
  event_rec(f, "ra", 1002, 2, "custom", "bob", "after", "{\"k\":1}"); /* after m2, same millisecond */
  chat(f, "ra", 3, "bob", "alice", "psst");                          /* ts 1003 */
  event_rec(f, "ra", 1003, 3, "leave", "bob", "left", NULL);
  wait_done(f, 7);
  assert_int_equal(f->last_status, STORE_OK);
  const char *all = "join:alice:@1000 quality:alice:good@1002 chat:alice:room@1002 custom:bob:after@1002"
                    " chat:bob:private@1003 leave:bob:left@1003";
  room_events_are(f, "ra", all);
  assert_int_equal(summary_int(f, "ra", "chat_messages"), 2);
  assert_int_equal(summary_int(f, "ra", "custom_events"), 1);
  /* No analytics row was written for either chat. */
  json_t *j = read_store(f, STORE_READ_EVENTS, "ra", NULL);
  assert_int_equal(json_array_size(json_object_get(j, "items")), 6);
  json_decref(j);
  export_events_are(f, "alice", "join:-:@1000 quality:-:good@1002 chat:-:room@1002");
  export_events_are(f, "bob", "custom:-:after@1002 chat:-:private@1003 leave:-:left@1003");
  /* Erase: alice's chat event is anonymous, as her other events. */
  struct store_rec *er = store_rec_new(STORE_ERASE_USER, NULL);
  snprintf(er->user_id, sizeof(er->user_id), "alice");
  submit(f, er);
  wait_done(f, f->done + 1);
  room_events_are(f, "ra", "join:anonymous:@1000 quality:anonymous:good@1002 chat:anonymous:room@1002"
                           " custom:bob:after@1002 chat:bob:private@1003 leave:bob:left@1003");
  export_events_are(f, "alice", "");
  /* She comes back and chats: that one is hers again. */
  chat(f, "ra", 4, "alice", NULL, "back");
  wait_done(f, f->done + 1);
  export_events_are(f, "alice", "chat:-:room@1004");
  /* Retention: older than 1003 goes, chat events with their rows. */
  struct store_rec *ret = store_rec_new(STORE_RETENTION, NULL);
  ret->ts = 1003;
  submit(f, ret);
  wait_done(f, f->done + 1);
  room_events_are(f, "ra", "chat:bob:private@1003 leave:bob:left@1003 chat:alice:room@1004");
  export_events_are(f, "bob", "chat:-:private@1003 leave:-:left@1003");
}

static void exec_sql(struct fixture *f, const char *sql) {
  if (f->url) {
#ifdef HUDDLE_HAVE_LIBPQ
    pg_exec(f->url, sql);
#endif
  } else {
    char path[400];
    snprintf(path, sizeof(path), "%s/huddle.db", f->dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) fail_msg("sql: %s", msg);
    sqlite3_close(db);
  }
}

/* A version 5 database, as version 5's writer left it: every chat message
 * with its event row (one ms after the chat's ts for one of them, an erased
 * sender's anonymized), and a chat event with no chat row (chat not stored).
 * Migrated, each chat is counted once and the order within a millisecond
 * stays, for the list and the export; new chat writes no row. */
/* For a migration test: the store closed, its database wiped and made
 * again at version v (0: no database at all). */
static void recreate_at_version(struct fixture *f, int v) {
  close_store(f);
  wipe(f);
  if (v == 0) return;
  char err[256] = "", path[400];
  snprintf(path, sizeof(path), "%s/huddle.db", f->dir);
  int rc = f->url ? store_pg_create_at_version(f->url, v, err, sizeof(err))
                  : store_sqlite_create_at_version(path, v, err, sizeof(err));
  if (rc != 0) fail_msg("create at version %d: %s", v, err);
}

static void test_chat_analytics_migrated_from_v5(void **state) {
  struct fixture *f = *state;
  recreate_at_version(f, 5);
  char err[256] = "";
  /* In insertion (recording) order. */
  exec_sql(f, "INSERT INTO room_sessions(room_id, started_at) VALUES ('rv5', 900);"
              "INSERT INTO chat_messages(room_id, seq, message_id, from_user, sender_name, to_user, text, ts, erased)"
              " VALUES ('rv5', 1, 'm1', 'alice', 'A', NULL, 'one', 1001, 0),"
              " ('rv5', 2, 'm2', 'bob', 'B', 'alice', 'two', 1002, 0),"
              " ('rv5', 3, 'm3', 'carl', '', NULL, '" STORE_TOMBSTONE "', 1003, 1),"
              " ('rv5', 5, 'm5', 'alice', 'A', NULL, 'five', 1005, 0);"
              "INSERT INTO analytics_events(room_id, ts, type, user_id, name, value, data) VALUES"
              " ('rv5', 1000, 'join', 'alice', '', 0, NULL),"
              " ('rv5', 1001, 'custom', 'alice', 'before', 0, '{\"k\":1}'),"
              " ('rv5', 1001, 'chat', 'alice', 'room', 0, NULL),"
              " ('rv5', 1001, 'custom', 'bob', 'after', 0, NULL),"
              " ('rv5', 1003, 'chat', 'bob', 'private', 0, NULL),"   /* m2's, a ms late */
              " ('rv5', 1003, 'chat', 'anonymous', 'room', 0, NULL),"
              " ('rv5', 1004, 'chat', 'dan', 'room', 0, NULL),"      /* not stored (durability off) */
              " ('rv5', 1005, 'quality', 'bob', 'fair', 0, NULL),"
              " ('rv5', 1005, 'chat', 'alice', 'room', 0, NULL),"
              " ('rv5', 1005, 'custom', 'alice', 'last', 0, NULL);");
  if (open_store(f, err, sizeof(err)) != 0) fail_msg("migrate from 5: %s", err);
  const char *all = "join:alice:@1000 custom:alice:before@1001 chat:alice:room@1001 custom:bob:after@1001"
                    " chat:bob:private@1002 chat:anonymous:room@1003 chat:dan:room@1004"
                    " quality:bob:fair@1005 chat:alice:room@1005 custom:alice:last@1005";
  room_events_are(f, "rv5", all);
  assert_int_equal(summary_int(f, "rv5", "chat_messages"), 4);
  assert_int_equal(summary_int(f, "rv5", "custom_events"), 3);
  export_events_are(f, "alice", "join:-:@1000 custom:-:before@1001 chat:-:room@1001 chat:-:room@1005"
                                " custom:-:last@1005");
  export_events_are(f, "bob", "custom:-:after@1001 chat:-:private@1002 quality:-:fair@1005");
  export_events_are(f, "dan", "chat:-:room@1004");
  /* New chat and events after the migration keep their places too. */
  event_rec(f, "rv5", 1006, 5, "custom", "bob", "new", NULL);
  chat(f, "rv5", 6, "bob", NULL, "six"); /* ts 1006 */
  wait_done(f, f->done + 2);
  assert_int_equal(f->last_status, STORE_OK);
  export_events_are(f, "bob", "custom:-:after@1001 chat:-:private@1002 quality:-:fair@1005 custom:-:new@1006"
                              " chat:-:room@1006");
}

/* ---- a user's chat through chat_senders (schema 7, ADR 0021) ---- */

static size_t export_chat_count(struct fixture *f, const char *user) {
  json_t *j = read_store(f, STORE_READ_EXPORT, NULL, user);
  size_t n = json_array_size(json_object_get(j, "chat_messages"));
  json_decref(j);
  return n;
}

static void erase(struct fixture *f, const char *user) {
  struct store_rec *er = store_rec_new(STORE_ERASE_USER, NULL);
  snprintf(er->user_id, sizeof(er->user_id), "%s", user);
  int want = f->done + 1;
  submit(f, er);
  wait_done(f, want);
}

/* The texts of a room's history, oldest first, joined with "|". */
static void texts_are(struct fixture *f, const char *room, const char *want) {
  json_t *h = history(f, room, "x", 1, 50, 0, 0, NULL);
  char line[512] = "";
  size_t n = 0;
  for (size_t i = 0; i < nmsgs(h); i++)
    n += (size_t)snprintf(line + n, sizeof(line) - n, "%s%s", i ? "|" : "", msg_text(h, i));
  json_decref(h);
  assert_string_equal(line, want);
}

/* A version 6 database's chat rows: migrated, each sender's chat in every
 * room is found for export and erase without an index on from_user (the
 * migration dropped it: creating it again succeeds). Chat after the
 * migration, in a room the sender had not used, is found too. */
static void test_chat_senders_migrated_from_v6(void **state) {
  struct fixture *f = *state;
  recreate_at_version(f, 6);
  char err[256] = "";
  exec_sql(f, "INSERT INTO chat_messages(room_id, seq, message_id, from_user, sender_name, to_user, text, ts, erased)"
              " VALUES ('s1', 1, 'm1', 'alice', 'A', NULL, 'alice in s1', 1001, 0),"
              " ('s2', 1, 'm2', 'bob', 'B', NULL, 'bob in s2', 1002, 0),"
              " ('s2', 2, 'm3', 'alice', 'A', NULL, 'alice in s2', 1003, 0),"
              " ('s2', 3, 'm4', 'bob', 'B', 'alice', 'bob to alice', 1004, 0);");
  if (open_store(f, err, sizeof(err)) != 0) fail_msg("migrate from 6: %s", err);
  exec_sql(f, "CREATE INDEX chat_messages_from ON chat_messages(from_user); DROP INDEX chat_messages_from;");
  assert_int_equal(export_chat_count(f, "alice"), 3); /* two of hers, one to her */
  assert_int_equal(export_chat_count(f, "bob"), 2);
  chat(f, "s3", 1, "alice", NULL, "alice in s3");
  wait_done(f, f->done + 1);
  assert_int_equal(export_chat_count(f, "alice"), 4);
  export_events_are(f, "alice", "chat:-:room@1001 chat:-:room@1001 chat:-:room@1003");
  erase(f, "alice");
  texts_are(f, "s1", STORE_TOMBSTONE);
  texts_are(f, "s2", "bob in s2|" STORE_TOMBSTONE "|bob to alice");
  texts_are(f, "s3", STORE_TOMBSTONE);
}

static void test_every_record_kind(void **state) {
  struct fixture *f = *state;
  static const enum store_kind kinds[] = {STORE_ROOM_OPEN, STORE_PART_JOIN, STORE_AUDIT, STORE_MEDIA,
                                          STORE_MEDIA, STORE_SETTINGS, STORE_PART_LEAVE, STORE_ROOM_CLOSE};
  for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
    struct store_rec *r = store_rec_new(kinds[i], "r4");
    r->ts = 100 + i;
    snprintf(r->user_id, sizeof(r->user_id), "alice");
    snprintf(r->id, sizeof(r->id), "rec1");
    snprintf(r->name, sizeof(r->name), kinds[i] == STORE_MEDIA ? "recording" : "host");
    if (kinds[i] == STORE_SETTINGS) r->text = strdup("{\"locked\":true}");
    if (kinds[i] == STORE_MEDIA && i == 4) r->value = 200; /* stopped */
    r->seq = 42;
    submit(f, r);
  }
  wait_done(f, 8);
  assert_int_equal(f->last_status, STORE_OK);
  struct store_rec *m = store_rec_new(STORE_READ_MEDIA, "r4");
  m->done = on_done;
  m->arg = f;
  assert_int_equal(store_read(f->st, m), 0);
  wait_done(f, 9);
  json_t *j = json_loads(f->last_result, 0, NULL);
  json_t *items = json_object_get(j, "items");
  assert_int_equal(json_array_size(items), 1);
  assert_int_equal(json_integer_value(json_object_get(json_array_get(items, 0), "stopped_at")), 200);
  json_decref(j);
  /* Reopening loads the room index: seq and settings survive. */
  close_store(f);
  char err[256];
  assert_int_equal(open_store(f, err, sizeof(err)), 0);
  const struct store_room_meta *meta = store_room_meta(f->st, "r4");
  assert_non_null(meta);
  assert_int_equal(meta->last_seq, 42);
  assert_string_equal(meta->settings, "{\"locked\":true}");
}

static void test_reopen_is_idempotent(void **state) {
  struct fixture *f = *state;
  chat(f, "r5", 7, "alice", NULL, "kept");
  wait_done(f, 1);
  for (int i = 0; i < 2; i++) {
    close_store(f);
    char err[256];
    assert_int_equal(open_store(f, err, sizeof(err)), 0);
  }
  assert_int_equal(store_room_meta(f->st, "r5")->last_seq, 7);
  json_t *h = history(f, "r5", "x", 0, 50, 0, 0, NULL);
  assert_int_equal(nmsgs(h), 1);
  json_decref(h);
}

/* From every earlier version: a database left at version v migrates to
 * the current one and works. */
static void test_migrations_from_every_version(void **state) {
  struct fixture *f = *state;
  for (int v = 0; v < STORE_SCHEMA_VERSION; v++) {
    recreate_at_version(f, v);
    char err[256] = "";
    if (open_store(f, err, sizeof(err)) != 0) fail_msg("migrate from %d: %s", v, err);
    chat(f, "r6", 1, "alice", NULL, "after migration");
    wait_done(f, f->done + 1);
    assert_int_equal(f->last_status, STORE_OK);
    json_t *h = history(f, "r6", "x", 0, 50, 0, 0, "migration");
    assert_int_equal(nmsgs(h), 1);
    json_decref(h);
  }
}

static void test_group_commit_and_bound(void **state) {
  struct fixture *f = *state;
  /* Queue bound is 100 in this fixture: submit far more chat than that at
   * once; the excess is refused, never silently lost. */
  int accepted = 0, refused = 0;
  for (int i = 1; i <= 1000; i++) {
    struct store_rec *r = store_rec_new(STORE_CHAT, "r7");
    r->seq = (uint64_t)i;
    snprintf(r->id, sizeof(r->id), "m%d", i);
    snprintf(r->user_id, sizeof(r->user_id), "alice");
    r->text = strdup("x");
    r->done = on_done;
    r->arg = f;
    if (store_submit(f->st, r, 1) == 0) accepted++;
    else refused++;
  }
  assert_true(refused > 0);
  wait_done(f, accepted);
  json_t *h = history(f, "r7", "x", 1, 200, 0, 0, NULL);
  int stored = (int)nmsgs(h);
  json_decref(h);
  assert_int_equal(stored, accepted > 200 ? 200 : accepted);
  assert_true(f->st->stats.max_batch >= 1);
}

static void policy_rec(struct fixture *f, const char *room, uint64_t ts, const char *text) {
  struct store_rec *r = store_rec_new(STORE_POLICY, room);
  r->ts = ts;
  r->text = strdup(text);
  submit(f, r);
}

/* What a room needs to come back after a restart besides its settings (in-
 * room roles and overrides, bans, rejections, the hand queue): one policy
 * text per room, the last one written wins, loaded into the room index at
 * start-up, also for a room that never chatted; "{}" forgets it. */
static void test_room_policy_survives_reopen(void **state) {
  struct fixture *f = *state;
  const char *first = "{\"banned\":{\"carol\":true}}";
  const char *last = "{\"banned\":{\"carol\":true},\"hands\":[{\"name\":\"Bob\",\"raised_at\":5,"
                     "\"user_id\":\"bob\"}],\"users\":{\"dave\":{\"admitted\":true,\"base_role\":"
                     "\"moderator\",\"base_set\":0,\"base_val\":0,\"name\":\"Dave\",\"role\":\"viewer\"}}}";
  policy_rec(f, "rp1", 10, first);
  policy_rec(f, "rp1", 11, last);
  policy_rec(f, "rp2", 12, "{\"banned\":{\"eve\":true}}");
  struct store_rec *s = store_rec_new(STORE_SETTINGS, "rp2");
  s->ts = 13;
  s->text = strdup("{\"locked\":true}");
  submit(f, s);
  policy_rec(f, "rp2", 14, "{}"); /* the room was deleted */
  wait_done(f, 5);
  assert_int_equal(f->last_status, STORE_OK);
  close_store(f);
  char err[256];
  assert_int_equal(open_store(f, err, sizeof(err)), 0);
  const struct store_room_meta *m = store_room_meta(f->st, "rp1");
  assert_non_null(m);
  assert_non_null(m->policy);
  assert_string_equal(m->policy, last);
  assert_null(m->settings);
  m = store_room_meta(f->st, "rp2");
  assert_non_null(m);
  assert_string_equal(m->policy, "{}");
  assert_string_equal(m->settings, "{\"locked\":true}");
  assert_null(store_room_meta(f->st, "rp3"));
}

/* Several instances sharing one database: a second store (another
 * instance) loaded its room index before the first wrote; store_room_refresh
 * reads the room again (seq only rises; settings and policy replaced,
 * unless the second store has its own writes for the room in flight).
 * With SQLite there is nothing to read (the file is one process's). */
static int refreshed;
static void on_refreshed(void *arg) { refreshed++; (void)arg; }

static void test_room_refresh_from_shared_database(void **state) {
  struct fixture *f = *state;
  if (f->url == NULL) {
    assert_int_equal(store_room_refresh(f->st, "rr", on_refreshed, NULL), 1);
    return;
  }
  struct store *g = NULL; /* another instance: its own loop */
  uv_loop_t gl;
  uv_loop_init(&gl);
  char err[256];
  assert_int_equal(store_open(&g, &gl, f->dir, f->url, 100, 0, err, sizeof(err)), 0);
  assert_null(store_room_meta(g, "rr"));
  chat(f, "rr", 7, "alice", NULL, "hi");
  policy_rec(f, "rr", 10, "{\"banned\":{\"bob\":true}}");
  struct store_rec *s = store_rec_new(STORE_SETTINGS, "rr");
  s->ts = 11;
  s->text = strdup("{\"locked\":true}");
  submit(f, s);
  wait_done(f, 3);
  assert_int_equal(f->last_status, STORE_OK);
  refreshed = 0;
  assert_int_equal(store_room_refresh(g, "rr", on_refreshed, NULL), 0);
  while (refreshed == 0) uv_run(&gl, UV_RUN_ONCE);
  const struct store_room_meta *m = store_room_meta(g, "rr");
  assert_non_null(m);
  assert_int_equal(m->last_seq, 7);
  assert_string_equal(m->policy, "{\"banned\":{\"bob\":true}}");
  assert_string_equal(m->settings, "{\"locked\":true}");
  /* The second store's own policy write, in flight when it asks: kept. */
  store_room_policy_note(g, "rr", "{}");
  struct store_rec *p = store_rec_new(STORE_POLICY, "rr");
  p->ts = 12;
  p->text = strdup("{}");
  assert_int_equal(store_submit(g, p, 0), 0);
  assert_int_equal(store_room_refresh(g, "rr", on_refreshed, NULL), 0);
  while (refreshed == 1) uv_run(&gl, UV_RUN_ONCE);
  assert_string_equal(store_room_meta(g, "rr")->policy, "{}");
  /* A room nobody stored: known, empty. */
  assert_int_equal(store_room_refresh(g, "none", on_refreshed, NULL), 0);
  while (refreshed == 2) uv_run(&gl, UV_RUN_ONCE);
  m = store_room_meta(g, "none");
  assert_true(m == NULL || (m->last_seq == 0 && m->policy == NULL && m->settings == NULL));
  store_stop(g);
  uv_run(&gl, UV_RUN_DEFAULT);
  store_close(g);
  uv_loop_close(&gl);
}

/* Export and erase cover the room policy snapshots: export lists, per room
 * that names the user, its role entry, ban, rejection and hand; erase takes
 * the user out of every snapshot (valid JSON, empty sections dropped), in
 * the room index at once and in the database, so a reopen does not bring
 * it back. A display name equal to the id, or a longer id, is not the user. */
static void test_room_policy_export_erase(void **state) {
  struct fixture *f = *state;
  const char *rp1 = "{\"banned\":{\"carol\":true,\"dave\":true},\"hands\":[{\"name\":\"Bob\",\"raised_at\":5,"
                    "\"user_id\":\"bob\"},{\"name\":\"Dave\",\"raised_at\":6,\"user_id\":\"dave\"}],"
                    "\"rejected\":{\"dave\":true},\"users\":{\"dave\":{\"admitted\":true,\"base_role\":"
                    "\"participant\",\"base_set\":0,\"base_val\":0,\"name\":\"Dave\",\"role\":\"viewer\"},"
                    "\"erin\":{\"admitted\":true,\"base_role\":\"participant\",\"base_set\":0,\"base_val\":0,"
                    "\"name\":\"Erin\",\"role\":\"moderator\"}}}";
  const char *rp1_after = "{\"banned\":{\"carol\":true},\"hands\":[{\"name\":\"Bob\",\"raised_at\":5,"
                          "\"user_id\":\"bob\"}],\"users\":{\"erin\":{\"admitted\":true,\"base_role\":"
                          "\"participant\",\"base_set\":0,\"base_val\":0,\"name\":\"Erin\",\"role\":\"moderator\"}}}";
  const char *rp2 = "{\"banned\":{\"dave\":true}}";
  const char *rp3 = "{\"banned\":{\"davey\":true},\"users\":{\"erin\":{\"admitted\":true,\"base_role\":"
                    "\"participant\",\"base_set\":0,\"base_val\":0,\"name\":\"dave\",\"role\":\"viewer\"}}}";
  policy_rec(f, "rp1", 10, rp1);
  policy_rec(f, "rp2", 11, rp2);
  policy_rec(f, "rp3", 12, rp3);
  store_room_policy_note(f->st, "rp1", rp1);
  store_room_policy_note(f->st, "rp2", rp2);
  store_room_policy_note(f->st, "rp3", rp3);
  wait_done(f, 3);
  assert_int_equal(f->last_status, STORE_OK);

  struct store_rec *x = store_rec_new(STORE_READ_EXPORT, NULL);
  snprintf(x->user_id, sizeof(x->user_id), "dave");
  submit_read(f, x);
  json_t *j = json_loads(f->last_result, 0, NULL);
  json_t *pol = json_object_get(j, "room_policy");
  assert_int_equal(json_array_size(pol), 2); /* rp1 and rp2; rp3 only has a name "dave" and "davey" */
  json_t *p1 = json_array_get(pol, 0), *p2 = json_array_get(pol, 1);
  assert_string_equal(json_string_value(json_object_get(p1, "room_id")), "rp1");
  assert_string_equal(json_string_value(json_object_get(json_object_get(p1, "user"), "role")), "viewer");
  assert_string_equal(json_string_value(json_object_get(json_object_get(p1, "user"), "name")), "Dave");
  assert_true(json_is_true(json_object_get(p1, "banned")));
  assert_true(json_is_true(json_object_get(p1, "rejected")));
  assert_int_equal(json_integer_value(json_object_get(json_object_get(p1, "hand"), "raised_at")), 6);
  assert_null(json_object_get(json_object_get(p1, "user"), "erin"));
  assert_string_equal(json_string_value(json_object_get(p2, "room_id")), "rp2");
  assert_true(json_is_true(json_object_get(p2, "banned")));
  assert_null(json_object_get(p2, "user"));
  assert_null(json_object_get(p2, "hand"));
  json_decref(j);

  struct store_rec *er = store_rec_new(STORE_ERASE_USER, NULL);
  snprintf(er->user_id, sizeof(er->user_id), "dave");
  er->ts = 20;
  int want = f->done + 1;
  submit(f, er);
  /* The room index forgets the user at once (a room re-created now restores from it). */
  assert_string_equal(store_room_meta(f->st, "rp1")->policy, rp1_after);
  assert_string_equal(store_room_meta(f->st, "rp2")->policy, "{}");
  assert_string_equal(store_room_meta(f->st, "rp3")->policy, rp3);
  wait_done(f, want);
  assert_int_equal(f->last_status, STORE_OK);

  x = store_rec_new(STORE_READ_EXPORT, NULL);
  snprintf(x->user_id, sizeof(x->user_id), "dave");
  submit_read(f, x);
  j = json_loads(f->last_result, 0, NULL);
  assert_int_equal(json_array_size(json_object_get(j, "room_policy")), 0);
  json_decref(j);
  x = store_rec_new(STORE_READ_EXPORT, NULL);
  snprintf(x->user_id, sizeof(x->user_id), "erin"); /* others keep theirs */
  submit_read(f, x);
  j = json_loads(f->last_result, 0, NULL);
  assert_int_equal(json_array_size(json_object_get(j, "room_policy")), 2);
  json_decref(j);

  close_store(f);
  char err[256];
  assert_int_equal(open_store(f, err, sizeof(err)), 0);
  assert_string_equal(store_room_meta(f->st, "rp1")->policy, rp1_after);
  assert_string_equal(store_room_meta(f->st, "rp2")->policy, "{}");
  assert_string_equal(store_room_meta(f->st, "rp3")->policy, rp3);
  json_t *check = json_loads(store_room_meta(f->st, "rp1")->policy, 0, NULL);
  assert_true(json_is_object(check)); /* valid JSON */
  json_decref(check);
}

/* Version 3 (room_policy) from a version 2 database that already holds a
 * room's settings and chat: both stay, the policy table works, and opening
 * again migrates nothing (idempotent). */
static void test_policy_migration_from_v2(void **state) {
  struct fixture *f = *state;
  recreate_at_version(f, 2);
  char err[256] = "", path[400];
  snprintf(path, sizeof(path), "%s/huddle.db", f->dir);
  /* Data written at version 2, by the SQL of version 2. */
  const char *v2 = "INSERT INTO room_settings(room_id, settings, updated_at) VALUES ('rv', '{\"locked\":true}', 1);"
                   "INSERT INTO room_sessions(room_id, started_at, last_seq) VALUES ('rv', 1, 9);";
  if (f->url) {
#ifdef HUDDLE_HAVE_LIBPQ
    pg_exec(f->url, v2);
#endif
  } else {
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, v2, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
  }
  if (open_store(f, err, sizeof(err)) != 0) fail_msg("migrate from 2: %s", err);
  /* A connection that does not migrate accepts only the current version. */
  struct store_conn *c = f->st->ops->connect(f->st->where, 0, err, sizeof(err));
  if (c == NULL) fail_msg("not at version %d: %s", STORE_SCHEMA_VERSION, err);
  f->st->ops->disconnect(c);
  const struct store_room_meta *m = store_room_meta(f->st, "rv");
  assert_non_null(m);
  assert_int_equal(m->last_seq, 9);
  assert_string_equal(m->settings, "{\"locked\":true}");
  assert_null(m->policy);
  policy_rec(f, "rv", 2, "{\"banned\":{\"mallory\":true}}");
  wait_done(f, 1);
  assert_int_equal(f->last_status, STORE_OK);
  for (int i = 0; i < 2; i++) {
    close_store(f);
    if (open_store(f, err, sizeof(err)) != 0) fail_msg("reopen: %s", err);
  }
  m = store_room_meta(f->st, "rv");
  assert_string_equal(m->policy, "{\"banned\":{\"mallory\":true}}");
  assert_string_equal(m->settings, "{\"locked\":true}");
}

/* ---- batches: a refused record, a read inside the batch, a lost connection ---- */

/* Makes the database refuse a chat whose text is "poison" (PostgreSQL: a
 * CHECK constraint, SQLSTATE 23514; SQLite: a trigger that aborts, a
 * constraint error): a record the database itself refuses, in both. */
static void add_poison_rule(struct fixture *f) {
  if (f->url) {
#ifdef HUDDLE_HAVE_LIBPQ
    pg_exec(f->url, "ALTER TABLE chat_messages ADD CONSTRAINT poison CHECK (text <> 'poison')");
#endif
  } else {
    char path[400];
    snprintf(path, sizeof(path), "%s/huddle.db", f->dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "CREATE TRIGGER poison BEFORE INSERT ON chat_messages"
                                      " WHEN NEW.text = 'poison' BEGIN SELECT RAISE(ABORT, 'poison'); END",
                                  NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
  }
}

/* Another connection that holds the tables the writer needs, so that what
 * is submitted meanwhile queues up and goes out as one batch. */
struct hold {
  sqlite3 *db;
#ifdef HUDDLE_HAVE_LIBPQ
  PGconn *pg;
#endif
};

static void hold_writes(struct fixture *f, struct hold *h) {
  memset(h, 0, sizeof(*h));
  if (f->url) {
#ifdef HUDDLE_HAVE_LIBPQ
    h->pg = PQconnectdb(f->url);
    assert_int_equal(PQstatus(h->pg), CONNECTION_OK);
    PGresult *r = PQexec(h->pg, "BEGIN; LOCK TABLE chat_messages, room_policy, analytics_events"
                                " IN EXCLUSIVE MODE");
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
#endif
  } else {
    char path[400];
    snprintf(path, sizeof(path), "%s/huddle.db", f->dir);
    assert_int_equal(sqlite3_open(path, &h->db), SQLITE_OK);
    /* The writer's BEGIN IMMEDIATE waits for it (busy timeout 5 s). */
    assert_int_equal(sqlite3_exec(h->db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
  }
}

static void release_writes(struct hold *h) {
  if (h->db) {
    assert_int_equal(sqlite3_exec(h->db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(h->db);
  }
#ifdef HUDDLE_HAVE_LIBPQ
  if (h->pg) {
    PQclear(PQexec(h->pg, "COMMIT"));
    PQfinish(h->pg);
  }
#endif
}

/* Waits until the writer has taken everything queued (it is then busy
 * with that batch, held by the other connection). */
static void wait_taken(struct fixture *f) {
  for (;;) {
    pthread_mutex_lock(&f->st->mu);
    int empty = f->st->q_head == NULL;
    pthread_mutex_unlock(&f->st->mu);
    if (empty) return;
    usleep(1000);
  }
}

static void tracked_chat(struct fixture *f, uint64_t seq, const char *from, const char *text) {
  struct store_rec *r = store_rec_new(STORE_CHAT, "rb");
  r->seq = seq;
  r->ts = 1000 + seq;
  snprintf(r->id, sizeof(r->id), "m%llu", (unsigned long long)seq);
  snprintf(r->user_id, sizeof(r->user_id), "%s", from);
  r->text = strdup(text);
  r->done = on_tracked;
  r->arg = f;
  assert_int_equal(store_submit(f->st, r, 1), 0);
}

/* Submits a non-chat record tagged with seq (the kinds used here store no seq). */
static void tracked(struct fixture *f, struct store_rec *r, uint64_t seq) {
  r->seq = seq;
  r->done = on_tracked;
  r->arg = f;
  assert_int_equal(store_submit(f->st, r, 0), 0);
}

/* The seqs of room rb's stored chat, in order, as "1,2,4". */
static void stored_seqs(struct fixture *f, char *out, size_t len) {
  json_t *h = history(f, "rb", "x", 1, 50, 0, 0, NULL);
  size_t o = 0;
  out[0] = '\0';
  for (size_t i = 0; i < nmsgs(h); i++) {
    json_t *m = json_array_get(json_object_get(h, "messages"), i);
    o += (size_t)snprintf(out + o, len - o, "%s%lld", i ? "," : "",
                          (long long)json_integer_value(json_object_get(m, "seq")));
  }
  json_decref(h);
}

static uint64_t stat_of(struct fixture *f, const uint64_t *field) {
  pthread_mutex_lock(&f->st->mu);
  uint64_t v = *field;
  pthread_mutex_unlock(&f->st->mu);
  return v;
}

/* A record the database refuses in the middle of a batch fails alone
 * (STORE_E_FAILED); every other record of the batch commits, in order. */
static void test_refused_record_mid_batch(void **state) {
  struct fixture *f = *state;
  add_poison_rule(f);
  struct hold h;
  hold_writes(f, &h);
  tracked_chat(f, 1, "alice", "one");
  wait_taken(f); /* the writer is held with record 1: 2..10 queue up */
  char text[16];
  for (uint64_t s = 2; s <= 10; s++) {
    snprintf(text, sizeof(text), "msg %llu", (unsigned long long)s);
    tracked_chat(f, s, "alice", s == 5 ? "poison" : text);
  }
  release_writes(&h);
  wait_done(f, 10);
  for (int s = 1; s <= 10; s++) assert_int_equal(f->status_of[s], s == 5 ? STORE_E_FAILED : STORE_OK);
  char seqs[128];
  stored_seqs(f, seqs, sizeof(seqs));
  assert_string_equal(seqs, "1,2,3,4,6,7,8,9,10");
  /* 2..10 went out as one batch: the other eight committed together. */
  assert_true(stat_of(f, &f->st->stats.max_batch) >= 8);
  assert_int_equal(stat_of(f, &f->st->stats.dropped), 1);
  json_t *hh = history(f, "rb", "x", 1, 50, 0, 0, NULL);
  assert_string_equal(msg_text(hh, 3), "msg 4");
  assert_string_equal(msg_text(hh, 4), "msg 6");
  json_decref(hh);
}

/* Refused records first, in the middle and last in one batch: each fails
 * alone, the rest commits. In PostgreSQL, text that is not UTF-8 is
 * refused as well (SQLSTATE 22021, a data error). */
static void test_refused_records_at_the_edges(void **state) {
  struct fixture *f = *state;
  add_poison_rule(f);
  struct hold h;
  hold_writes(f, &h);
  tracked_chat(f, 1, "alice", "one");
  wait_taken(f);
  tracked_chat(f, 2, "alice", "poison"); /* first of the batch */
  tracked_chat(f, 3, "alice", "three");
  tracked_chat(f, 4, "alice", "poison");
  tracked_chat(f, 5, "alice", f->url ? "bad \xc3\x28 utf-8" : "five");
  tracked_chat(f, 6, "alice", "six");
  tracked_chat(f, 7, "alice", "poison"); /* last */
  release_writes(&h);
  wait_done(f, 7);
  assert_int_equal(f->status_of[1], STORE_OK);
  assert_int_equal(f->status_of[2], STORE_E_FAILED);
  assert_int_equal(f->status_of[3], STORE_OK);
  assert_int_equal(f->status_of[4], STORE_E_FAILED);
  assert_int_equal(f->status_of[5], f->url ? STORE_E_FAILED : STORE_OK);
  assert_int_equal(f->status_of[6], STORE_OK);
  assert_int_equal(f->status_of[7], STORE_E_FAILED);
  char seqs[128];
  stored_seqs(f, seqs, sizeof(seqs));
  assert_string_equal(seqs, f->url ? "1,3,6" : "1,3,5,6");
  /* The refused ones completed in batch order, before the rest. */
  assert_int_equal(f->order[1], 2);
  assert_int_equal(f->order[2], 4);
}

static void audit_rec(struct fixture *f, const char *room, const char *actor, const char *action,
                      const char *target, const char *details) {
  struct store_rec *a = store_rec_new(STORE_AUDIT, room);
  a->ts = 50;
  snprintf(a->user_id, sizeof(a->user_id), "%s", actor);
  snprintf(a->name, sizeof(a->name), "%s", action);
  snprintf(a->target, sizeof(a->target), "%s", target);
  a->text = details ? strdup(details) : NULL;
  submit(f, a);
}

/* Erase also takes the user out of the rooms' audit entries (actor or
 * target "anonymous"; details naming it dropped) and out of recordings and
 * streams it started or stopped; the server's own entries about it
 * (user_export, user_erase: room_id "") stay, the record of the erase. */
static void test_erase_audit_and_media(void **state) {
  struct fixture *f = *state;
  audit_rec(f, "r9", "erin", "mute", "dave", "{\"kind\":\"audio\"}");
  audit_rec(f, "r9", "dave", "role_set", "erin", NULL);
  audit_rec(f, "r9", "erin", "breakout_create", "", "{\"assigned\":[\"dave\",\"erin\"]}");
  audit_rec(f, "r9", "erin", "mute", "davey", "{\"kind\":\"video\"}");
  audit_rec(f, "", "ops", "user_erase", "dave", NULL);
  struct store_rec *m = store_rec_new(STORE_MEDIA, "r9");
  snprintf(m->id, sizeof(m->id), "rec1");
  snprintf(m->name, sizeof(m->name), "recording");
  snprintf(m->user_id, sizeof(m->user_id), "dave");
  snprintf(m->target, sizeof(m->target), "erin");
  snprintf(m->aux, sizeof(m->aux), "webm");
  m->ts = 60;
  m->value = 70;
  submit(f, m);
  struct store_rec *er = store_rec_new(STORE_ERASE_USER, NULL);
  snprintf(er->user_id, sizeof(er->user_id), "dave");
  submit(f, er);
  wait_done(f, 7);
  assert_int_equal(f->last_status, STORE_OK);

  struct store_rec *x = store_rec_new(STORE_READ_AUDIT, "r9");
  x->value = 100;
  submit_read(f, x);
  json_t *j = json_loads(f->last_result, 0, NULL);
  assert_null(strstr(f->last_result, "\"dave\""));
  json_t *items = json_object_get(j, "items");
  assert_int_equal(json_array_size(items), 4);
  assert_string_equal(json_string_value(json_object_get(json_array_get(items, 0), "target")), "anonymous");
  assert_string_equal(json_string_value(json_object_get(json_array_get(items, 1), "actor")), "anonymous");
  assert_true(json_is_null(json_object_get(json_array_get(items, 2), "details")) ||
              json_object_get(json_array_get(items, 2), "details") == NULL);
  assert_string_equal(json_string_value(json_object_get(json_array_get(items, 3), "target")), "davey");
  json_decref(j);

  x = store_rec_new(STORE_READ_MEDIA, "r9");
  submit_read(f, x);
  assert_null(strstr(f->last_result, "\"dave\""));
  assert_non_null(strstr(f->last_result, "\"anonymous\""));

  x = store_rec_new(STORE_READ_EXPORT, NULL);
  snprintf(x->user_id, sizeof(x->user_id), "dave");
  submit_read(f, x);
  j = json_loads(f->last_result, 0, NULL);
  json_t *audit = json_object_get(j, "audit");
  assert_int_equal(json_array_size(audit), 1);
  assert_string_equal(json_string_value(json_object_get(json_array_get(audit, 0), "action")), "user_erase");
  json_decref(j);
}

static void room_session(struct fixture *f, const char *room, uint64_t opened, uint64_t closed) {
  struct store_rec *o = store_rec_new(STORE_ROOM_OPEN, room);
  o->ts = opened;
  submit(f, o);
  if (closed == 0) return;
  struct store_rec *c = store_rec_new(STORE_ROOM_CLOSE, room);
  c->ts = closed;
  submit(f, c);
}

static void settings_rec(struct fixture *f, const char *room, uint64_t ts) {
  struct store_rec *r = store_rec_new(STORE_SETTINGS, room);
  r->ts = ts;
  r->text = strdup("{\"locked\":true}");
  submit(f, r);
}

/* Retention also deletes what restores a room (settings, policy) once the
 * room ended before the cut-off: not for a room with a session since, nor
 * one whose rows were written since, nor one live in this process (the
 * record's list); a session a crash left open counts as live with
 * PostgreSQL (another instance may hold the room), not with SQLite. The
 * ids gone come back in the result; a reopen does not restore them. */
static void test_retention_retires_rooms(void **state) {
  struct fixture *f = *state;
  room_session(f, "old", 100, 200);
  settings_rec(f, "old", 150);
  policy_rec(f, "old", 150, "{\"banned\":{\"dave\":true}}");
  room_session(f, "recent", 100, 5000);
  settings_rec(f, "recent", 150);
  policy_rec(f, "fresh", 2000, "{\"banned\":{\"dave\":true}}");
  settings_rec(f, "fresh", 150);
  room_session(f, "crashed", 100, 0);
  settings_rec(f, "crashed", 150);
  room_session(f, "live", 100, 200);
  policy_rec(f, "live", 150, "{\"banned\":{\"dave\":true}}");
  wait_done(f, 14);
  struct store_rec *ret = store_rec_new(STORE_RETENTION, NULL);
  ret->ts = 1000;
  ret->text = strdup("[\"live\"]");
  submit(f, ret);
  wait_done(f, 15);
  assert_int_equal(f->last_status, STORE_OK);
  json_t *gone = json_loads(f->last_result, 0, NULL);
  assert_non_null(gone);
  int old = 0, crashed = 0;
  size_t i;
  json_t *v;
  json_array_foreach(gone, i, v) {
    const char *id = json_string_value(v);
    if (strcmp(id, "old") == 0) old++;
    else if (strcmp(id, "crashed") == 0) crashed++;
    else fail_msg("retired %s", id);
  }
  json_decref(gone);
  assert_int_equal(old, 2); /* its settings and its policy */
  assert_int_equal(crashed, f->url ? 0 : 1);
  close_store(f);
  char err[256];
  assert_int_equal(open_store(f, err, sizeof(err)), 0);
  const struct store_room_meta *m = store_room_meta(f->st, "old");
  assert_true(m == NULL || (m->settings == NULL && m->policy == NULL));
  assert_non_null(store_room_meta(f->st, "recent")->settings);
  assert_non_null(store_room_meta(f->st, "fresh")->settings); /* its policy is recent: the room is */
  assert_non_null(store_room_meta(f->st, "fresh")->policy);
  assert_non_null(store_room_meta(f->st, "live")->policy);
  m = store_room_meta(f->st, "crashed");
  if (f->url) assert_non_null(m->settings);
  else assert_true(m == NULL || m->settings == NULL);
}

/* An erase (it reads inside the transaction) in the middle of a batch:
 * what comes before it is erased, what comes after is not; a record
 * refused after it rolls the erase back with the batch, and the retry
 * erases once more, with the same result. */
static void test_erase_inside_a_batch(void **state) {
  struct fixture *f = *state;
  add_poison_rule(f);
  struct store_rec *p = store_rec_new(STORE_POLICY, "rb");
  p->text = strdup("{\"banned\":{\"dave\":true,\"erin\":true}}");
  p->ts = 1;
  tracked(f, p, 1);
  wait_done(f, 1);
  struct hold h;
  hold_writes(f, &h);
  tracked_chat(f, 2, "dave", "dave before");
  wait_taken(f);
  tracked_chat(f, 3, "dave", "dave before too");
  struct store_rec *e = store_rec_new(STORE_ERASE_USER, NULL);
  snprintf(e->user_id, sizeof(e->user_id), "dave");
  e->ts = 2;
  tracked(f, e, 4);
  tracked_chat(f, 5, "dave", "dave after");
  tracked_chat(f, 6, "erin", "poison");
  tracked_chat(f, 7, "erin", "erin after");
  release_writes(&h);
  wait_done(f, 7);
  for (int s = 1; s <= 7; s++) assert_int_equal(f->status_of[s], s == 6 ? STORE_E_FAILED : STORE_OK);
  json_t *hh = history(f, "rb", "x", 1, 50, 0, 0, NULL);
  assert_int_equal(nmsgs(hh), 4);
  assert_string_equal(msg_text(hh, 0), STORE_TOMBSTONE);
  assert_string_equal(msg_text(hh, 1), STORE_TOMBSTONE);
  assert_string_equal(msg_text(hh, 2), "dave after");
  assert_string_equal(msg_text(hh, 3), "erin after");
  json_decref(hh);
  close_store(f);
  char err[256];
  assert_int_equal(open_store(f, err, sizeof(err)), 0);
  assert_string_equal(store_room_meta(f->st, "rb")->policy, "{\"banned\":{\"erin\":true}}");
}

/* The SQLite writer remembers the pairs it wrote (store_sqlite.c). A batch
 * that rolls back (a refused record in it) takes its pairs with it, and
 * retention deletes the pairs of rooms left without chat: each time the
 * next message writes its pair again, so erase still finds it. */
static void test_chat_senders_after_rollback_and_retention(void **state) {
  struct fixture *f = *state;
  add_poison_rule(f);
  struct hold h;
  hold_writes(f, &h);
  tracked_chat(f, 1, "alice", "one");
  wait_taken(f);
  tracked_chat(f, 2, "zed", "zed first"); /* zed's pair, written in the batch that rolls back */
  tracked_chat(f, 3, "alice", "poison");
  tracked_chat(f, 4, "zed", "zed second");
  release_writes(&h);
  wait_done(f, 4);
  assert_int_equal(f->status_of[3], STORE_E_FAILED);
  erase(f, "zed");
  texts_are(f, "rb", "one|" STORE_TOMBSTONE "|" STORE_TOMBSTONE);
  /* Retention empties room rc (and its pair goes); yan's next message
   * there is found by erase. */
  chat(f, "rc", 1, "yan", NULL, "old"); /* ts 1001 */
  wait_done(f, f->done + 1);
  struct store_rec *ret = store_rec_new(STORE_RETENTION, NULL);
  ret->ts = 1002;
  int want = f->done + 1;
  submit(f, ret);
  wait_done(f, want);
  texts_are(f, "rc", "");
  chat(f, "rc", 5, "yan", NULL, "new"); /* ts 1005 */
  wait_done(f, f->done + 1);
  erase(f, "yan");
  texts_are(f, "rc", STORE_TOMBSTONE);
}

#ifdef HUDDLE_HAVE_LIBPQ
/* Waits until a connection other than the holder's (and than one already
 * terminated) waits on a lock: the writer, held mid-pipeline. Its pid. */
static int writer_waiting(struct fixture *f, PGconn *holder, int gone) {
  char sql[200];
  snprintf(sql, sizeof(sql), "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
           " AND pid <> %d AND pid <> %d", PQbackendPID(holder), gone);
  for (int i = 0; i < 10000; i++) {
    PGconn *c = PQconnectdb(f->url);
    PGresult *r = PQexec(c, sql);
    int pid = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 ? atoi(PQgetvalue(r, 0, 0)) : 0;
    PQclear(r);
    PQfinish(c);
    if (pid) return pid;
    usleep(2000);
  }
  fail_msg("the writer never waited on the lock");
  return 0;
}

static void terminate(struct fixture *f, int pid) {
  char sql[80];
  snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%d)", pid);
  pg_exec(f->url, sql);
}

/* Another connection's uncommitted policy row for room: the writer's
 * policy write for that room waits for it (a row lock: the writer's
 * statements still prepare and the records before it still run). */
static PGconn *hold_row(struct fixture *f, const char *room) {
  PGconn *c = PQconnectdb(f->url);
  assert_int_equal(PQstatus(c), CONNECTION_OK);
  char sql[200];
  snprintf(sql, sizeof(sql), "BEGIN; INSERT INTO room_policy(room_id, policy, updated_at)"
           " VALUES ('%s', '{}', 0)", room);
  PGresult *r = PQexec(c, sql);
  assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
  PQclear(r);
  return c;
}

static void release_row(PGconn *c) {
  PQclear(PQexec(c, "COMMIT"));
  PQfinish(c);
}

static struct store_rec *policy_for(const char *room, const char *text) {
  struct store_rec *p = store_rec_new(STORE_POLICY, room);
  p->text = strdup(text);
  p->ts = 5;
  return p;
}

/* PostgreSQL: the writer's connection dies while a pipelined batch waits
 * for its answers, after some of its records ran. Nothing of it is lost
 * but the durable chat, which fails (its sender is told) and is never
 * stored; the rest is kept, retried on a new connection and committed
 * once. */
static void test_pg_connection_lost_mid_batch(void **state) {
  struct fixture *f = *state;
  PGconn *a = hold_row(f, "ra"), *b = hold_row(f, "rb");
  tracked(f, policy_for("ra", "{\"banned\":{\"eve\":true}}"), 1);
  wait_taken(f); /* the writer waits on a: 2..5 queue up as one batch */
  tracked_chat(f, 2, "alice", "lost one");
  struct store_rec *e = store_rec_new(STORE_EVENT, "rb");
  snprintf(e->name, sizeof(e->name), "custom");
  e->ts = 1;
  tracked(f, e, 3);
  tracked(f, policy_for("rb", "{\"banned\":{\"mallory\":true}}"), 4); /* waits on b */
  tracked_chat(f, 5, "alice", "lost two");
  release_row(a);
  wait_done(f, 1);
  assert_int_equal(f->status_of[1], STORE_OK);
  /* The batch 2..5 waits at 4 with 2 and 3 done: its connection dies. */
  terminate(f, writer_waiting(f, b, 0));
  wait_done(f, 3); /* the two chat records, at once */
  assert_int_equal(f->status_of[2], STORE_E_UNAVAILABLE);
  assert_int_equal(f->status_of[5], STORE_E_UNAVAILABLE);
  assert_int_equal(stat_of(f, &f->st->stats.failed_batches), 1);
  release_row(b);
  wait_done(f, 5);
  assert_int_equal(f->status_of[3], STORE_OK);
  assert_int_equal(f->status_of[4], STORE_OK);
  assert_int_equal(store_state(f->st), STORE_STATE_OK);
  char seqs[128];
  stored_seqs(f, seqs, sizeof(seqs));
  assert_string_equal(seqs, "");
  PGconn *c = PQconnectdb(f->url);
  PGresult *r = PQexec(c, "SELECT (SELECT count(*) FROM analytics_events WHERE room_id = 'rb'),"
                          " (SELECT policy FROM room_policy WHERE room_id = 'rb')");
  assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
  assert_string_equal(PQgetvalue(r, 0, 0), "1"); /* committed once */
  assert_string_equal(PQgetvalue(r, 0, 1), "{\"banned\":{\"mallory\":true}}");
  PQclear(r);
  PQfinish(c);
}
#endif

/* ---- SQLite only: a damaged file is an error, never a fresh database ---- */

/* ---- SQLite: the search index in a file of its own (schema 8, ADR 0022) ---- */

static sqlite3 *db_open(struct fixture *f) {
  char path[400];
  snprintf(path, sizeof(path), "%s/huddle.db", f->dir);
  sqlite3 *db;
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  return db;
}

static long long db_int(sqlite3 *db, const char *sql) {
  sqlite3_stmt *q;
  if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK) fail_msg("%s: %s", sql, sqlite3_errmsg(db));
  assert_int_equal(sqlite3_step(q), SQLITE_ROW);
  long long v = sqlite3_column_int64(q, 0);
  sqlite3_finalize(q);
  return v;
}

/* The search index (ADR 0022): its own file, the chat database attached. */
static sqlite3 *ix_open(struct fixture *f) {
  char path[400], chat_path[400];
  snprintf(path, sizeof(path), "%s/huddle.db-search", f->dir);
  snprintf(chat_path, sizeof(chat_path), "%s/huddle.db", f->dir);
  sqlite3 *db;
  assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
  char sql[512];
  snprintf(sql, sizeof(sql), "ATTACH DATABASE '%s' AS chat", chat_path);
  assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
  return db;
}

/* Chat rows above index_state.indexed_upto are not in the index yet. */
static long long fts_lag(struct fixture *f) {
  sqlite3 *db = ix_open(f);
  long long n = db_int(db, "SELECT count(*) FROM chat.chat_messages WHERE id > (SELECT indexed_upto FROM index_state)");
  sqlite3_close(db);
  return n;
}

/* The index holds exactly the chat table's rows that are not erased, with
 * their text, and FTS5 agrees with its rows (with nothing left to apply:
 * after a search or an erase). */
static void fts_intact(struct fixture *f) {
  sqlite3 *db = ix_open(f);
  int rc = sqlite3_exec(db, "INSERT INTO chat_fts(chat_fts, rank) VALUES ('integrity-check', 1)", NULL, NULL, NULL);
  if (rc != SQLITE_OK) fail_msg("integrity-check: %s", sqlite3_errmsg(db));
  assert_int_equal(db_int(db, "SELECT count(*) FROM chat.chat_messages c WHERE c.erased = 0 AND NOT EXISTS"
                              " (SELECT 1 FROM docs d WHERE d.id = c.id AND d.text = c.text AND d.ts = c.ts)"), 0);
  assert_int_equal(db_int(db, "SELECT count(*) FROM docs d WHERE NOT EXISTS (SELECT 1 FROM chat.chat_messages c"
                              " WHERE c.id = d.id AND c.text = d.text AND c.erased = 0)"), 0);
  sqlite3_close(db);
}

/* Chat commits hold no index work: the chat database has no full-text
 * table, and the indexer catches up by itself, without a search. */
static void test_sqlite_index_apart(void **state) {
  struct fixture *f = *state;
  chat(f, "ri", 1, "alice", NULL, "first okapi");
  chat(f, "ri", 2, "bob", NULL, "second okapi");
  wait_done(f, 2);
  sqlite3 *db = db_open(f);
  assert_int_equal(db_int(db, "SELECT count(*) FROM sqlite_master WHERE name LIKE 'chat_fts%'"), 0);
  sqlite3_close(db);
  for (int i = 0; i < 500 && fts_lag(f) > 0; i++) usleep(10000); /* INDEX_DELAY_MS, then a step */
  assert_int_equal(fts_lag(f), 0);
  fts_intact(f);
}

/* A search sees every row committed before it (it catches the index up
 * first); the last rows deleted and their ids used again, the new rows
 * are indexed; an erase and a forget of rows not indexed yet leave the
 * index exact; an erase answers once the index no longer holds the text. */
static void test_sqlite_fts_lag(void **state) {
  struct fixture *f = *state;
  chat(f, "rl", 1, "alice", NULL, "first okapi");
  chat(f, "rl", 2, "bob", NULL, "second okapi");
  chat(f, "rl", 3, "carol", NULL, "third okapi");
  wait_done(f, 3);
  json_t *h = history(f, "rl", "x", 0, 50, 0, 0, "okapi");
  assert_int_equal(nmsgs(h), 3);
  json_decref(h);
  assert_int_equal(fts_lag(f), 0);
  fts_intact(f);
  /* The last row goes (a chat refused after all): its id comes again. */
  struct store_rec *fg = store_rec_new(STORE_CHAT_FORGET, "rl");
  fg->seq = 3;
  submit(f, fg);
  chat(f, "rl", 4, "dave", NULL, "fourth narwhal");
  wait_done(f, 6);
  h = history(f, "rl", "x", 0, 50, 0, 0, "narwhal");
  assert_int_equal(nmsgs(h), 1);
  json_decref(h);
  h = history(f, "rl", "x", 0, 50, 0, 0, "okapi");
  assert_int_equal(nmsgs(h), 2);
  json_decref(h);
  fts_intact(f);
  /* Rows perhaps not indexed yet, then erased and forgotten. */
  chat(f, "rl", 5, "erin", NULL, "erin's quokka");
  chat(f, "rl", 6, "frank", NULL, "frank's quokka");
  wait_done(f, 10);
  struct store_rec *er = store_rec_new(STORE_ERASE_USER, NULL);
  snprintf(er->user_id, sizeof(er->user_id), "erin");
  submit(f, er);
  wait_done(f, 11);
  assert_int_equal(f->last_status, STORE_OK);
  fts_intact(f); /* answered: the index has no erin's text any more */
  sqlite3 *db = ix_open(f);
  assert_int_equal(db_int(db, "SELECT count(*) FROM docs WHERE text LIKE '%erin''s%'"), 0);
  assert_int_equal(db_int(db, "SELECT count(*) FROM chat_fts WHERE chat_fts MATCH 'erin'"), 0);
  sqlite3_close(db);
  fg = store_rec_new(STORE_CHAT_FORGET, "rl");
  fg->seq = 6;
  submit(f, fg);
  wait_done(f, 12);
  assert_int_equal(f->last_status, STORE_OK);
  h = history(f, "rl", "x", 0, 50, 0, 0, "quokka");
  assert_int_equal(nmsgs(h), 0); /* erin's is a tombstone, frank's is gone */
  json_decref(h);
  fts_intact(f);
  /* The log entries applied are pruned from the chat database. */
  db = db_open(f);
  assert_int_equal(db_int(db, "SELECT count(*) FROM chat_index_log"), 0);
  sqlite3_close(db);
}

/* Retention deletes the same rows from the index; when it deleted every
 * row, the ids start again at 1 and the new rows are indexed as new. */
static void test_sqlite_index_retention_and_reused_ids(void **state) {
  struct fixture *f = *state;
  chat(f, "rr", 1, "alice", NULL, "old heron");
  chat(f, "rr", 2, "bob", NULL, "old egret");
  wait_done(f, 2);
  json_t *h = history(f, "rr", "x", 0, 50, 0, 0, "old");
  assert_int_equal(nmsgs(h), 2);
  json_decref(h);
  struct store_rec *ret = store_rec_new(STORE_RETENTION, NULL);
  ret->ts = 5000; /* after both (ts 1001, 1002) */
  submit(f, ret);
  wait_done(f, f->done + 1);
  assert_int_equal(f->last_status, STORE_OK);
  chat(f, "rr", 3, "carol", NULL, "new heron");
  wait_done(f, f->done + 1);
  sqlite3 *db = db_open(f);
  assert_int_equal(db_int(db, "SELECT min(id) FROM chat_messages"), 1); /* an id the index had */
  sqlite3_close(db);
  h = history(f, "rr", "x", 0, 50, 0, 0, "heron");
  assert_int_equal(nmsgs(h), 1);
  assert_string_equal(msg_text(h, 0), "new heron");
  json_decref(h);
  h = history(f, "rr", "x", 0, 50, 0, 0, "egret");
  assert_int_equal(nmsgs(h), 0);
  json_decref(h);
  fts_intact(f);
}

/* The index file is derived: missing, not a database, or another chat
 * database's, it is built again (and a search finds everything); a copy of
 * the chat database older than the index (it logged less than the index
 * read: a restored backup) gets a new index too. */
static void test_sqlite_index_rebuilt_when_stale(void **state) {
  struct fixture *f = *state;
  chat(f, "rx", 1, "alice", NULL, "the ibis flies");
  chat(f, "rx", 2, "bob", NULL, "the ibis lands");
  wait_done(f, 2);
  close_store(f);
  char path[400], err[256] = "";
  snprintf(path, sizeof(path), "%s/huddle.db-search", f->dir);
  /* not a database */
  FILE *fp = fopen(path, "wb");
  assert_non_null(fp);
  for (int i = 0; i < 64; i++) fputs("this is not an index at all ", fp);
  fclose(fp);
  assert_int_equal(open_store(f, err, sizeof(err)), 0);
  json_t *h = history(f, "rx", "x", 0, 50, 0, 0, "ibis");
  assert_int_equal(nmsgs(h), 2);
  json_decref(h);
  fts_intact(f);
  close_store(f);
  /* missing */
  unlink(path);
  assert_int_equal(open_store(f, err, sizeof(err)), 0);
  h = history(f, "rx", "x", 0, 50, 0, 0, "ibis");
  assert_int_equal(nmsgs(h), 2);
  json_decref(h);
  close_store(f);
  /* another chat database's */
  sqlite3 *db = db_open(f);
  assert_int_equal(sqlite3_exec(db, "UPDATE store_meta SET value = 'another' WHERE key = 'search_id'", NULL, NULL,
                                NULL), SQLITE_OK);
  sqlite3_close(db);
  db = ix_open(f);
  assert_int_equal(sqlite3_exec(db, "DELETE FROM docs", NULL, NULL, NULL), SQLITE_OK); /* what it held was not this */
  sqlite3_close(db);
  assert_int_equal(open_store(f, err, sizeof(err)), 0);
  h = history(f, "rx", "x", 0, 50, 0, 0, "ibis");
  assert_int_equal(nmsgs(h), 2);
  json_decref(h);
  fts_intact(f);
  close_store(f);
  /* a copy from before an erase, the index from after it */
  char chat_path[400], copy[420], cmd[1024];
  snprintf(chat_path, sizeof(chat_path), "%s/huddle.db", f->dir);
  snprintf(copy, sizeof(copy), "%s.copy", chat_path);
  snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", chat_path, copy);
  assert_int_equal(system(cmd), 0);
  assert_int_equal(open_store(f, err, sizeof(err)), 0);
  struct store_rec *er = store_rec_new(STORE_ERASE_USER, NULL);
  snprintf(er->user_id, sizeof(er->user_id), "bob");
  submit(f, er);
  wait_done(f, f->done + 1);
  h = history(f, "rx", "x", 0, 50, 0, 0, "ibis");
  assert_int_equal(nmsgs(h), 1);
  json_decref(h);
  close_store(f);
  snprintf(cmd, sizeof(cmd), "mv '%s' '%s'", copy, chat_path);
  assert_int_equal(system(cmd), 0);
  assert_int_equal(open_store(f, err, sizeof(err)), 0);
  h = history(f, "rx", "x", 0, 50, 0, 0, "ibis");
  assert_int_equal(nmsgs(h), 2); /* bob's message is back, and found */
  json_decref(h);
  fts_intact(f);
}

/* Version 8 from a version 7 database holding chat: the full-text table
 * leaves the chat database, the new index finds the old rows. */
static void test_sqlite_fts_migration_from_v7(void **state) {
  struct fixture *f = *state;
  close_store(f);
  wipe(f);
  char err[256] = "", path[400];
  snprintf(path, sizeof(path), "%s/huddle.db", f->dir);
  if (store_sqlite_create_at_version(path, 7, err, sizeof(err)) != 0) fail_msg("create at version 7: %s", err);
  sqlite3 *db = db_open(f);
  assert_int_equal(sqlite3_exec(db, "INSERT INTO chat_messages(room_id, seq, message_id, from_user, to_user, text, ts)"
                                    " VALUES ('rm', 1, 'm1', 'alice', NULL, 'old pangolin', 1001),"
                                    " ('rm', 2, 'm2', 'alice', 'bob', 'private pangolin', 1002);"
                                    "INSERT INTO chat_fts(rowid, text) SELECT id, text FROM chat_messages;"
                                    "UPDATE chat_fts_state SET indexed_upto = 2;",
                                    NULL, NULL, NULL),
                   SQLITE_OK);
  sqlite3_close(db);
  if (open_store(f, err, sizeof(err)) != 0) fail_msg("migrate from 7: %s", err);
  db = db_open(f);
  assert_int_equal(db_int(db, "SELECT count(*) FROM sqlite_master WHERE name LIKE 'chat_fts%'"), 0);
  assert_int_equal(db_int(db, "SELECT count(*) FROM sqlite_master WHERE type = 'trigger'"), 0);
  sqlite3_close(db);
  json_t *h = history(f, "rm", "bob", 0, 50, 0, 0, "pangolin");
  assert_int_equal(nmsgs(h), 2);
  json_decref(h);
  chat(f, "rm", 3, "carol", NULL, "new pangolin");
  wait_done(f, f->done + 1);
  h = history(f, "rm", "carol", 0, 50, 0, 0, "pangolin");
  assert_int_equal(nmsgs(h), 2); /* the old public one and the new one */
  json_decref(h);
  fts_intact(f);
}

static void test_sqlite_corrupt_file_refused(void **state) {
  struct fixture *f = *state;
  chat(f, "r8", 1, "alice", NULL, "precious");
  wait_done(f, 1);
  close_store(f);
  char path[400], err[512] = "";
  snprintf(path, sizeof(path), "%s/huddle.db", f->dir);
  /* Overwrite the header. */
  FILE *fp = fopen(path, "r+b");
  assert_non_null(fp);
  fwrite("this is not a database file at all!!", 1, 36, fp);
  fclose(fp);
  assert_int_not_equal(open_store(f, err, sizeof(err)), 0);
  assert_non_null(strstr(err, "huddle.db"));
  struct stat sb;
  assert_int_equal(stat(path, &sb), 0);
  assert_true(sb.st_size > 36); /* left as it was */
  /* An empty file, too. */
  fp = fopen(path, "w");
  fclose(fp);
  assert_int_not_equal(open_store(f, err, sizeof(err)), 0);
  assert_non_null(strstr(err, "empty"));
  /* A newer schema than this build knows. */
  unlink(path);
  sqlite3 *db;
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(db);
  assert_int_not_equal(open_store(f, err, sizeof(err)), 0);
  assert_non_null(strstr(err, "newer"));
}

/* ---- hostile review of schema 7 (chat_senders, ADR 0021) ---- */

/* A database written at every version that has chat_messages (2..6) with
 * chat in it: after the migration each sender's chat, in every room and
 * private, is found by export and by erase through chat_senders. */
static void test_chat_senders_migrated_from_every_version_with_chat(void **state) {
  struct fixture *f = *state;
  for (int v = 2; v <= 6; v++) { /* from 7 on, a writer writes the pairs with the rows */
    recreate_at_version(f, v);
    char err[256] = "";
    exec_sql(f, "INSERT INTO chat_messages(room_id, seq, message_id, from_user, sender_name, to_user, text, ts, erased)"
                " VALUES ('va', 1, 'm1', 'alice', 'A', NULL, 'alice in va', 1001, 0),"
                " ('vb', 1, 'm2', 'alice', 'A', 'bob', 'alice to bob', 1002, 0),"
                " ('vb', 2, 'm3', 'bob', 'B', NULL, 'bob in vb', 1003, 0),"
                " ('vc', 1, 'm4', 'carol', 'C', NULL, 'carol in vc', 1004, 0);");
    if (open_store(f, err, sizeof(err)) != 0) fail_msg("migrate from %d: %s", v, err);
    assert_int_equal(export_chat_count(f, "alice"), 2);
    assert_int_equal(export_chat_count(f, "bob"), 2); /* his own, and alice's to him */
    assert_int_equal(export_chat_count(f, "carol"), 1);
    erase(f, "alice");
    texts_are(f, "va", STORE_TOMBSTONE);
    texts_are(f, "vb", STORE_TOMBSTONE "|bob in vb");
    texts_are(f, "vc", "carol in vc");
  }
}

/* The statements that find one user's chat (erase, the export's chat list
 * and chat events, copied from store_sqlite.c / store_pg.c) reach
 * chat_messages through an index, never by reading the whole table (what
 * dropping chat_messages_from could have caused). SQLite: EXPLAIN QUERY
 * PLAN names no "SCAN chat_messages". PostgreSQL: with sequential scans
 * disabled the plan holds no "Seq Scan on chat_messages" (there is an
 * index path). Rows from several rooms and senders are in the tables. */
static void test_chat_of_user_reads_through_indexes(void **state) {
  struct fixture *f = *state;
  char text[32];
  for (int i = 1; i <= 40; i++) {
    char room[8], user[8];
    snprintf(room, sizeof(room), "p%d", i % 8);
    snprintf(user, sizeof(user), "u%d", i % 5);
    snprintf(text, sizeof(text), "m %d", i);
    chat(f, room, (uint64_t)i, user, i % 7 == 0 ? "u1" : NULL, text);
  }
  wait_done(f, 40);
#define ERASE_SQL(p) "UPDATE chat_messages SET text = '" STORE_TOMBSTONE "', sender_name = '', erased = 1" \
                     " WHERE " STORE_CHAT_OF_USER(p)
#define EXPORT_SQL(p) "SELECT room_id, seq, message_id, from_user, to_user, reply_to, text, ts, erased" \
                      " FROM chat_messages WHERE " STORE_CHAT_OF_USER(p) " UNION"                    \
                      " SELECT room_id, seq, message_id, from_user, to_user, reply_to, text, ts, erased" \
                      " FROM chat_messages WHERE to_user = " p " ORDER BY ts, seq"
  if (f->url) {
#ifdef HUDDLE_HAVE_LIBPQ
    static const char *const sqls[] = {ERASE_SQL("$1"), EXPORT_SQL("$1"), STORE_EXPORT_EVENTS_SQL};
    PGconn *c = PQconnectdb(f->url);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PQclear(PQexec(c, "ANALYZE; SET enable_seqscan = off"));
    for (size_t i = 0; i < sizeof(sqls) / sizeof(sqls[0]); i++) {
      char name[8];
      snprintf(name, sizeof(name), "q%zu", i);
      PGresult *r = PQprepare(c, name, sqls[i], 1, NULL);
      if (PQresultStatus(r) != PGRES_COMMAND_OK) fail_msg("prepare %s: %s", sqls[i], PQerrorMessage(c));
      PQclear(r);
      char sql[64];
      snprintf(sql, sizeof(sql), "EXPLAIN EXECUTE %s('u1')", name);
      r = PQexec(c, sql);
      assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
      for (int k = 0; k < PQntuples(r); k++)
        if (strstr(PQgetvalue(r, k, 0), "Seq Scan on chat_messages"))
          fail_msg("a full scan of chat_messages in %s: %s", sqls[i], PQgetvalue(r, k, 0));
      PQclear(r);
    }
    PQfinish(c);
#endif
  } else {
    static const char *const sqls[] = {ERASE_SQL("?1"), EXPORT_SQL("?1"), STORE_EXPORT_EVENTS_SQL};
    sqlite3 *db = db_open(f);
    for (size_t i = 0; i < sizeof(sqls) / sizeof(sqls[0]); i++) {
      char sql[2048];
      snprintf(sql, sizeof(sql), "EXPLAIN QUERY PLAN %s", sqls[i]);
      sqlite3_stmt *q;
      if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK) fail_msg("%s: %s", sql, sqlite3_errmsg(db));
      while (sqlite3_step(q) == SQLITE_ROW) {
        const char *d = (const char *)sqlite3_column_text(q, 3);
        if (d && strncmp(d, "SCAN chat_messages", 18) == 0) fail_msg("a full scan of chat_messages in %s: %s", sqls[i], d);
      }
      sqlite3_finalize(q);
    }
    sqlite3_close(db);
  }
#undef ERASE_SQL
#undef EXPORT_SQL
}

#ifdef HUDDLE_HAVE_LIBPQ
/* PostgreSQL, several instances on one database (ADR 0006; every instance
 * runs its own retention sweep, room/durable.c). Instance B's writer
 * inserts alice's new message in room rb, whose (alice, rb) pair exists;
 * before B commits, instance A's sweep deletes rb's old chat and then the
 * pairs it finds due. The review found the pair deleted (the sweep then
 * took every pair of a room it saw without chat, and B's row was not
 * committed): alice's new message stored but never found by export or
 * erase. Now a pair goes only when its last_ts is STORE_SENDER_REFRESH_MS
 * before the cut-off, and a writer that skips a pair (Q_CHAT) wrote it
 * within that time; one that finds it due updates it (Q_CHAT_SENDER),
 * and the sweep's delete waits for that row and sees it moved. Both runs:
 * new_ts within the refresh period of the pair (B skips it), and long
 * after with the cut-off making the old pair due (B updates it while A
 * deletes). A second store on the same database plays instance A (its
 * real retention record, retire_rooms in store_pg.c), while B's batch is
 * held mid-pipeline by a row lock (as in test_pg_connection_lost_mid_batch). */
static int g_swept; /* the other instance's retention: its status, -1 until done */
static void on_swept(struct store_rec *r, void *arg) {
  (void)arg;
  g_swept = r->status;
}

static void pg_retention_race(struct fixture *f, uint64_t new_ts, uint64_t cut) {
  chat(f, "rb", 1, "alice", NULL, "old"); /* ts 1001: writes the pair (alice, rb) */
  wait_done(f, 1);
  PGconn *a = hold_row(f, "ra"), *b = hold_row(f, "rp");
  tracked(f, policy_for("ra", "{}"), 2);
  wait_taken(f); /* the writer waits on a: 3 and 4 queue up as one batch */
  struct store_rec *r = store_rec_new(STORE_CHAT, "rb");
  r->seq = 3;
  r->ts = new_ts;
  snprintf(r->id, sizeof(r->id), "m3");
  snprintf(r->user_id, sizeof(r->user_id), "alice");
  r->text = strdup("new");
  tracked(f, r, 3);
  tracked(f, policy_for("rp", "{}"), 4); /* waits on b */
  release_row(a);
  wait_done(f, 2);
  writer_waiting(f, b, 0); /* 3 ran, uncommitted; the batch waits at 4 */
  /* Instance A: a second store on the same database (its own loop and
   * writer) runs its retention sweep, cut at 1002. A sweep that waits for
   * B's transaction (a fix may make it) is fine: after 2 s b is released,
   * B commits, and A's sweep is waited for again. */
  struct store *g = NULL;
  uv_loop_t gl;
  uv_loop_init(&gl);
  char err[256];
  assert_int_equal(store_open(&g, &gl, f->dir, f->url, 100, 0, err, sizeof(err)), 0);
  struct store_rec *ret = store_rec_new(STORE_RETENTION, NULL);
  ret->ts = cut;
  g_swept = -1;
  ret->done = on_swept;
  assert_int_equal(store_submit(g, ret, 0), 0);
  for (int i = 0; i < 2000 && g_swept < 0; i++) {
    uv_run(&gl, UV_RUN_NOWAIT);
    if (g_swept < 0) usleep(1000);
  }
  release_row(b);
  wait_done(f, 4);
  while (g_swept < 0) uv_run(&gl, UV_RUN_ONCE);
  int swept = g_swept;
  store_stop(g);
  uv_run(&gl, UV_RUN_DEFAULT);
  store_close(g);
  uv_loop_close(&gl);
  assert_int_equal(swept, STORE_OK);
  assert_int_equal(f->status_of[3], STORE_OK);
  assert_int_equal(f->status_of[4], STORE_OK);
  texts_are(f, "rb", "new"); /* stored */
  assert_int_equal(export_chat_count(f, "alice"), 1);
  erase(f, "alice");
  texts_are(f, "rb", STORE_TOMBSTONE);
}

static void test_pg_retention_elsewhere_keeps_a_new_messages_pair(void **state) {
  pg_retention_race(*state, 1003, 1002);
}

static void test_pg_retention_elsewhere_keeps_a_due_pair_being_updated(void **state) {
  const uint64_t cut = 1001 + STORE_SENDER_REFRESH_MS + 1; /* the old pair is due */
  pg_retention_race(*state, cut + 5, cut);
}
#endif

/* The number a one-value query answers (SQLite or PostgreSQL). */
static long long count_sql(struct fixture *f, const char *sql) {
  long long n = -1;
  if (f->url) {
#ifdef HUDDLE_HAVE_LIBPQ
    PGconn *c = PQconnectdb(f->url);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) fail_msg("%s: %s", sql, PQerrorMessage(c));
    n = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    PQfinish(c);
#endif
  } else {
    sqlite3 *db = db_open(f);
    n = db_int(db, sql);
    sqlite3_close(db);
  }
  return n;
}

/* An erased user's id does not outlive its chat in chat_senders. Erase
 * keeps the pairs (ADR 0021: the tombstones keep from_user, so they are
 * still found). Retention then deletes dora's tombstoned message while
 * bob's newer one keeps room re alive; once no chat row, session
 * (anonymized), event (anonymized) or audit entry names dora, neither may
 * the pair, in a table neither the export nor erase shows (the review
 * found it kept while anyone chatted in the room). A pair goes with the
 * messages it can stand for: last_ts at least STORE_SENDER_REFRESH_MS
 * before the cut-off; bob's stays. */
static void chat_at(struct fixture *f, const char *room, uint64_t seq, const char *from, uint64_t ts,
                    const char *text) {
  struct store_rec *r = store_rec_new(STORE_CHAT, room);
  r->seq = seq;
  r->ts = ts;
  snprintf(r->id, sizeof(r->id), "m%llu", (unsigned long long)seq);
  snprintf(r->user_id, sizeof(r->user_id), "%s", from);
  r->text = strdup(text);
  r->done = on_done;
  r->arg = f;
  assert_int_equal(store_submit(f->st, r, 1), 0);
}

static void test_erased_user_not_kept_in_chat_senders_after_retention(void **state) {
  struct fixture *f = *state;
  const uint64_t cut = 1001 + STORE_SENDER_REFRESH_MS;
  chat_at(f, "re", 1, "dora", 1001, "dora words");
  chat_at(f, "re", 5, "bob", cut, "bob later");
  wait_done(f, 2);
  erase(f, "dora");
  texts_are(f, "re", STORE_TOMBSTONE "|bob later");
  struct store_rec *ret = store_rec_new(STORE_RETENTION, NULL);
  ret->ts = cut;
  int want = f->done + 1;
  submit(f, ret);
  wait_done(f, want);
  texts_are(f, "re", "bob later");
  assert_int_equal(count_sql(f, "SELECT count(*) FROM chat_messages WHERE from_user = 'dora'"), 0);
  assert_int_equal(count_sql(f, "SELECT count(*) FROM participant_sessions WHERE user_id = 'dora'"), 0);
  assert_int_equal(count_sql(f, "SELECT count(*) FROM chat_senders WHERE user_id = 'dora'"), 0);
  assert_int_equal(count_sql(f, "SELECT count(*) FROM chat_senders WHERE user_id = 'bob'"), 1);
  assert_int_equal(export_chat_count(f, "bob"), 1);
}

#ifdef HUDDLE_HAVE_LIBPQ
/* PostgreSQL: the writer's connection dies mid-pipeline after a relaxed
 * chat (no completion: kept and retried, as --chat-durability relaxed
 * submits it) ran as kim's first message in room rk. The aborted
 * transaction takes the row and its pair; the retry on a new connection
 * writes both again (one statement), so export and erase find it. */
static void test_pg_relaxed_first_message_retried_after_connection_lost(void **state) {
  struct fixture *f = *state;
  PGconn *a = hold_row(f, "ra"), *b = hold_row(f, "rp");
  tracked(f, policy_for("ra", "{}"), 1);
  wait_taken(f);
  struct store_rec *r = store_rec_new(STORE_CHAT, "rk");
  r->seq = 2;
  r->ts = 1002;
  snprintf(r->id, sizeof(r->id), "m2");
  snprintf(r->user_id, sizeof(r->user_id), "kim");
  r->text = strdup("kept");
  assert_int_equal(store_submit(f->st, r, 1), 0); /* relaxed: no completion */
  tracked(f, policy_for("rp", "{}"), 4); /* waits on b */
  release_row(a);
  wait_done(f, 1);
  terminate(f, writer_waiting(f, b, 0)); /* the chat ran, uncommitted */
  int gone = 0;
  for (int i = 0; i < 5000 && !gone; i++) {
    gone = stat_of(f, &f->st->stats.failed_batches) >= 1;
    if (!gone) usleep(1000);
  }
  assert_true(gone);
  release_row(b);
  wait_done(f, 2);
  assert_int_equal(f->status_of[4], STORE_OK);
  texts_are(f, "rk", "kept");
  assert_int_equal(export_chat_count(f, "kim"), 1);
  assert_int_equal(count_sql(f, "SELECT count(*) FROM chat_senders WHERE user_id = 'kim' AND room_id = 'rk'"), 1);
  erase(f, "kim");
  texts_are(f, "rk", STORE_TOMBSTONE);
}
#endif

/* ---- hostile review: the search index's file restored from a backup ---- */

/* Runs a shell command in the fixture's directory. */
static void in_dir(struct fixture *f, const char *cmd) {
  char line[2048];
  snprintf(line, sizeof(line), "cd '%s' && %s", f->dir, cmd);
  assert_int_equal(system(line), 0);
}

/* Copies (save=1) or puts back (save=0) every file of the search index. */
static void index_files(struct fixture *f, int save) {
  in_dir(f, save ? "rm -rf ixbak && mkdir ixbak && cp huddle.db-search* ixbak/"
                 : "rm -f huddle.db-search* && cp ixbak/* .");
}

/* Copies (save=1) or puts back (save=0) the chat database's files only. */
static void chat_files(struct fixture *f, int save) {
  in_dir(f, save ? "rm -rf dbbak && mkdir dbbak && for x in huddle.db huddle.db-wal huddle.db-shm;"
                   " do if [ -e $x ]; then cp $x dbbak/; fi; done"
                 : "rm -f huddle.db huddle.db-wal huddle.db-shm && cp dbbak/* .");
}

/* Every message of a search holds the word (a search never answers with a
 * row that was matched by text it no longer has). */
static void all_hold(json_t *h, const char *word) {
  for (size_t i = 0; i < nmsgs(h); i++)
    if (strstr(msg_text(h, i), word) == NULL) fail_msg("search for %s answered \"%s\"", word, msg_text(h, i));
}

/* An operator restores the index file from a backup taken before an erase
 * (the chat database is the live one): the erased text must not be
 * searchable again, not even as a tombstone matched by its old words. */
static void test_hostile_index_copy_from_before_erase(void **state) {
  struct fixture *f = *state;
  chat(f, "hr", 1, "erin", NULL, "erin zebracode one");
  chat(f, "hr", 2, "bob", NULL, "bob zebracode two");
  wait_done(f, 2);
  json_t *h = history(f, "hr", "x", 1, 50, 0, 0, "zebracode");
  assert_int_equal(nmsgs(h), 2);
  json_decref(h);
  close_store(f);
  index_files(f, 1);
  char err[256] = "";
  assert_int_equal(open_store(f, err, sizeof(err)), 0);
  erase(f, "erin");
  assert_int_equal(f->last_status, STORE_OK);
  h = history(f, "hr", "x", 1, 50, 0, 0, "zebracode");
  assert_int_equal(nmsgs(h), 1);
  json_decref(h);
  close_store(f);
  index_files(f, 0);
  assert_int_equal(open_store(f, err, sizeof(err)), 0);
  h = history(f, "hr", "x", 1, 50, 0, 0, "erin");
  all_hold(h, "erin");
  assert_int_equal(nmsgs(h), 0);
  json_decref(h);
  h = history(f, "hr", "x", 1, 50, 0, 0, "zebracode");
  all_hold(h, "zebracode");
  assert_int_equal(nmsgs(h), 1);
  assert_string_equal(msg_text(h, 0), "bob zebracode two");
  json_decref(h);
}

/* The index file restored from before a retention sweep that deleted every
 * row, the ids used again since: a search answers the rows that hold the
 * words, and finds the new ones. */
static void test_hostile_index_copy_from_before_retention(void **state) {
  struct fixture *f = *state;
  chat(f, "hq", 1, "alice", NULL, "old heron");
  chat(f, "hq", 2, "bob", NULL, "old egret");
  wait_done(f, 2);
  json_t *h = history(f, "hq", "x", 1, 50, 0, 0, "old");
  assert_int_equal(nmsgs(h), 2);
  json_decref(h);
  close_store(f);
  index_files(f, 1);
  char err[256] = "";
  assert_int_equal(open_store(f, err, sizeof(err)), 0);
  struct store_rec *ret = store_rec_new(STORE_RETENTION, NULL);
  ret->ts = 5000;
  submit(f, ret);
  wait_done(f, f->done + 1);
  assert_int_equal(f->last_status, STORE_OK);
  chat(f, "hq", 3, "carol", NULL, "new ibis");
  chat(f, "hq", 4, "dan", NULL, "new crane");
  wait_done(f, f->done + 2);
  h = history(f, "hq", "x", 1, 50, 0, 0, "ibis");
  assert_int_equal(nmsgs(h), 1);
  json_decref(h);
  close_store(f);
  index_files(f, 0);
  assert_int_equal(open_store(f, err, sizeof(err)), 0);
  h = history(f, "hq", "x", 1, 50, 0, 0, "heron");
  all_hold(h, "heron");
  assert_int_equal(nmsgs(h), 0);
  json_decref(h);
  h = history(f, "hq", "x", 1, 50, 0, 0, "ibis");
  all_hold(h, "ibis");
  assert_int_equal(nmsgs(h), 1);
  json_decref(h);
}

/* The chat database restored from a backup with no erase, forget or
 * retention since (its log is where the index's is), the index file the
 * newer one: the ids of the rows the backup lacks are used again by new
 * chat; a search answers exactly the rows that hold the words. */
static void test_hostile_chat_restored_no_log_since(void **state) {
  struct fixture *f = *state;
  chat(f, "hb", 1, "alice", NULL, "alpha one");
  chat(f, "hb", 2, "alice", NULL, "alpha two");
  wait_done(f, 2);
  close_store(f);
  chat_files(f, 1);
  char err[256] = "";
  assert_int_equal(open_store(f, err, sizeof(err)), 0);
  chat(f, "hb", 3, "bob", NULL, "bravo secret three");
  wait_done(f, f->done + 1);
  json_t *h = history(f, "hb", "x", 1, 50, 0, 0, "bravo");
  assert_int_equal(nmsgs(h), 1);
  json_decref(h);
  close_store(f);
  chat_files(f, 0);
  assert_int_equal(open_store(f, err, sizeof(err)), 0);
  chat(f, "hb", 3, "carol", NULL, "charlie three");
  wait_done(f, f->done + 1);
  h = history(f, "hb", "x", 1, 50, 0, 0, "bravo");
  all_hold(h, "bravo");
  assert_int_equal(nmsgs(h), 0);
  json_decref(h);
  h = history(f, "hb", "x", 1, 50, 0, 0, "charlie");
  all_hold(h, "charlie");
  assert_int_equal(nmsgs(h), 1);
  json_decref(h);
}

/* A chat database put back that lacks the index's last row and has a log
 * entry the index has still to apply (a forget of another row): the row at
 * the mark is checked all the same, and a new row taking its id is found
 * by its own words, the old row by none. */
static void test_sqlite_chat_restored_with_pending_entry(void **state) {
  struct fixture *f = *state;
  chat(f, "hp", 1, "alice", NULL, "delta one");
  chat(f, "hp", 2, "alice", NULL, "delta two");
  chat(f, "hp", 3, "bob", NULL, "echo secret three");
  wait_done(f, 3);
  json_t *h = history(f, "hp", "x", 1, 50, 0, 0, "echo");
  assert_int_equal(nmsgs(h), 1);
  json_decref(h);
  close_store(f);
  /* The copy put back: row 3 never was, and row 1 was forgotten since (its
   * log entry not applied by this index). */
  sqlite3 *db = db_open(f);
  assert_int_equal(sqlite3_exec(db, "DELETE FROM chat_messages WHERE id IN (1, 3);"
                                    "INSERT INTO chat_index_log(chat_id) VALUES (1);", NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(db);
  char err[256] = "";
  assert_int_equal(open_store(f, err, sizeof(err)), 0);
  chat(f, "hp", 3, "carol", NULL, "foxtrot three");
  wait_done(f, f->done + 1);
  h = history(f, "hp", "x", 1, 50, 0, 0, "echo");
  all_hold(h, "echo");
  assert_int_equal(nmsgs(h), 0);
  json_decref(h);
  h = history(f, "hp", "x", 1, 50, 0, 0, "foxtrot");
  assert_int_equal(nmsgs(h), 1);
  json_decref(h);
  fts_intact(f);
}

/* The last row forgotten (a refused chat), its id used again by the next
 * chat: searches are exact, before and after a restart. */
static void test_hostile_forget_last_then_reuse(void **state) {
  struct fixture *f = *state;
  chat(f, "hf", 1, "alice", NULL, "kiwi one");
  chat(f, "hf", 2, "alice", NULL, "kiwi two");
  chat(f, "hf", 3, "alice", NULL, "kiwi secret three");
  wait_done(f, 3);
  json_t *h = history(f, "hf", "x", 1, 50, 0, 0, "kiwi");
  assert_int_equal(nmsgs(h), 3);
  json_decref(h);
  struct store_rec *fg = store_rec_new(STORE_CHAT_FORGET, "hf");
  fg->seq = 3;
  submit(f, fg);
  wait_done(f, f->done + 1);
  chat(f, "hf", 4, "bob", NULL, "moa four");
  wait_done(f, f->done + 1);
  for (int round = 0; round < 2; round++) {
    h = history(f, "hf", "x", 1, 50, 0, 0, "kiwi");
    all_hold(h, "kiwi");
    assert_int_equal(nmsgs(h), 2);
    json_decref(h);
    h = history(f, "hf", "x", 1, 50, 0, 0, "secret");
    assert_int_equal(nmsgs(h), 0);
    json_decref(h);
    h = history(f, "hf", "x", 1, 50, 0, 0, "moa");
    assert_int_equal(nmsgs(h), 1);
    json_decref(h);
    fts_intact(f);
    close_store(f);
    char err[256] = "";
    assert_int_equal(open_store(f, err, sizeof(err)), 0);
  }
}

/* A version 7 database with chat (an erased row among it): migrated, a
 * search finds the old rows (private only for its parties) and never the
 * erased row by any word. */
static void test_hostile_migration_from_v7_erased(void **state) {
  struct fixture *f = *state;
  recreate_at_version(f, 7);
  exec_sql(f, "INSERT INTO chat_messages(room_id, seq, message_id, from_user, sender_name, to_user, text, ts, erased)"
              " VALUES ('hm', 1, 'm1', 'alice', 'A', NULL, 'old tapir', 1001, 0),"
              " ('hm', 2, 'm2', 'alice', 'A', 'bob', 'private tapir', 1002, 0),"
              " ('hm', 3, 'm3', 'erin', '', NULL, '" STORE_TOMBSTONE "', 1003, 1);"
              "INSERT INTO chat_fts(rowid, text) SELECT id, text FROM chat_messages;"
              "UPDATE chat_fts_state SET indexed_upto = 3;");
  char err[256] = "";
  if (open_store(f, err, sizeof(err)) != 0) fail_msg("migrate from 7: %s", err);
  json_t *h = history(f, "hm", "carol", 0, 50, 0, 0, "tapir");
  assert_int_equal(nmsgs(h), 1);
  json_decref(h);
  h = history(f, "hm", "bob", 0, 50, 0, 0, "tapir");
  assert_int_equal(nmsgs(h), 2);
  json_decref(h);
  h = history(f, "hm", "x", 1, 50, 0, 0, "removed");
  assert_int_equal(nmsgs(h), 0);
  json_decref(h);
  fts_intact(f);
}

int main(void) {
  const struct CMUnitTest sqlite_tests[] = {
    cmocka_unit_test_setup_teardown(test_chat_roundtrip_and_pages, setup_sqlite, teardown),
    cmocka_unit_test_setup_teardown(test_private_and_search, setup_sqlite, teardown),
    cmocka_unit_test_setup_teardown(test_erase_export_retention, setup_sqlite, teardown),
    cmocka_unit_test_setup_teardown(test_chat_analytics_from_chat_rows, setup_sqlite, teardown),
    cmocka_unit_test_setup_teardown(test_chat_analytics_migrated_from_v5, setup_sqlite, teardown),
    cmocka_unit_test_setup_teardown(test_every_record_kind, setup_sqlite, teardown),
    cmocka_unit_test_setup_teardown(test_chat_senders_migrated_from_v6, setup_sqlite, teardown),
    cmocka_unit_test_setup_teardown(test_chat_senders_after_rollback_and_retention, setup_sqlite, teardown),
    cmocka_unit_test_setup_teardown(test_reopen_is_idempotent, setup_sqlite, teardown),
    cmocka_unit_test_setup_teardown(test_migrations_from_every_version, setup_sqlite, teardown),
    cmocka_unit_test_setup_teardown(test_replay_indexed_once, setup_sqlite, teardown),
    cmocka_unit_test_setup_teardown(test_group_commit_and_bound, setup_sqlite, teardown),
    cmocka_unit_test_setup_teardown(test_room_policy_survives_reopen, setup_sqlite, teardown),
    cmocka_unit_test_setup_teardown(test_room_refresh_from_shared_database, setup_sqlite, teardown),
    cmocka_unit_test_setup_teardown(test_policy_migration_from_v2, setup_sqlite, teardown),
    cmocka_unit_test_setup_teardown(test_room_policy_export_erase, setup_sqlite, teardown),
    cmocka_unit_test_setup_teardown(test_refused_record_mid_batch, setup_sqlite, teardown),
    cmocka_unit_test_setup_teardown(test_refused_records_at_the_edges, setup_sqlite, teardown),
    cmocka_unit_test_setup_teardown(test_erase_inside_a_batch, setup_sqlite, teardown),
    cmocka_unit_test_setup_teardown(test_erase_audit_and_media, setup_sqlite, teardown),
    cmocka_unit_test_setup_teardown(test_retention_retires_rooms, setup_sqlite, teardown),
    cmocka_unit_test_setup_teardown(test_sqlite_corrupt_file_refused, setup_sqlite, teardown),
    cmocka_unit_test_setup_teardown(test_sqlite_fts_lag, setup_sqlite, teardown),
    cmocka_unit_test_setup_teardown(test_sqlite_index_apart, setup_sqlite, teardown),
    cmocka_unit_test_setup_teardown(test_sqlite_index_retention_and_reused_ids, setup_sqlite, teardown),
    cmocka_unit_test_setup_teardown(test_sqlite_index_rebuilt_when_stale, setup_sqlite, teardown),
    cmocka_unit_test_setup_teardown(test_sqlite_fts_migration_from_v7, setup_sqlite, teardown),
    cmocka_unit_test_setup_teardown(test_hostile_index_copy_from_before_erase, setup_sqlite, teardown),
    cmocka_unit_test_setup_teardown(test_hostile_index_copy_from_before_retention, setup_sqlite, teardown),
    cmocka_unit_test_setup_teardown(test_hostile_chat_restored_no_log_since, setup_sqlite, teardown),
    cmocka_unit_test_setup_teardown(test_sqlite_chat_restored_with_pending_entry, setup_sqlite, teardown),
    cmocka_unit_test_setup_teardown(test_hostile_forget_last_then_reuse, setup_sqlite, teardown),
    cmocka_unit_test_setup_teardown(test_hostile_migration_from_v7_erased, setup_sqlite, teardown),
    cmocka_unit_test_setup_teardown(test_chat_senders_migrated_from_every_version_with_chat, setup_sqlite, teardown),
    cmocka_unit_test_setup_teardown(test_chat_of_user_reads_through_indexes, setup_sqlite, teardown),
    cmocka_unit_test_setup_teardown(test_erased_user_not_kept_in_chat_senders_after_retention, setup_sqlite,
                                    teardown),
  };
  int failed = cmocka_run_group_tests_name("store/sqlite", sqlite_tests, NULL, NULL);
  if (pg_url()) {
    const struct CMUnitTest pg_tests[] = {
      cmocka_unit_test_setup_teardown(test_chat_roundtrip_and_pages, setup_pg, teardown),
      cmocka_unit_test_setup_teardown(test_private_and_search, setup_pg, teardown),
      cmocka_unit_test_setup_teardown(test_erase_export_retention, setup_pg, teardown),
      cmocka_unit_test_setup_teardown(test_chat_analytics_from_chat_rows, setup_pg, teardown),
      cmocka_unit_test_setup_teardown(test_chat_analytics_migrated_from_v5, setup_pg, teardown),
      cmocka_unit_test_setup_teardown(test_every_record_kind, setup_pg, teardown),
      cmocka_unit_test_setup_teardown(test_chat_senders_migrated_from_v6, setup_pg, teardown),
      cmocka_unit_test_setup_teardown(test_chat_senders_after_rollback_and_retention, setup_pg, teardown),
      cmocka_unit_test_setup_teardown(test_reopen_is_idempotent, setup_pg, teardown),
      cmocka_unit_test_setup_teardown(test_migrations_from_every_version, setup_pg, teardown),
      cmocka_unit_test_setup_teardown(test_replay_indexed_once, setup_pg, teardown),
      cmocka_unit_test_setup_teardown(test_group_commit_and_bound, setup_pg, teardown),
      cmocka_unit_test_setup_teardown(test_room_policy_survives_reopen, setup_pg, teardown),
      cmocka_unit_test_setup_teardown(test_room_refresh_from_shared_database, setup_pg, teardown),
      cmocka_unit_test_setup_teardown(test_policy_migration_from_v2, setup_pg, teardown),
      cmocka_unit_test_setup_teardown(test_room_policy_export_erase, setup_pg, teardown),
      cmocka_unit_test_setup_teardown(test_refused_record_mid_batch, setup_pg, teardown),
      cmocka_unit_test_setup_teardown(test_refused_records_at_the_edges, setup_pg, teardown),
      cmocka_unit_test_setup_teardown(test_erase_inside_a_batch, setup_pg, teardown),
      cmocka_unit_test_setup_teardown(test_erase_audit_and_media, setup_pg, teardown),
      cmocka_unit_test_setup_teardown(test_retention_retires_rooms, setup_pg, teardown),
#ifdef HUDDLE_HAVE_LIBPQ
      cmocka_unit_test_setup_teardown(test_pg_connection_lost_mid_batch, setup_pg, teardown),
      cmocka_unit_test_setup_teardown(test_chat_senders_migrated_from_every_version_with_chat, setup_pg, teardown),
      cmocka_unit_test_setup_teardown(test_chat_of_user_reads_through_indexes, setup_pg, teardown),
      cmocka_unit_test_setup_teardown(test_pg_retention_elsewhere_keeps_a_new_messages_pair, setup_pg, teardown),
      cmocka_unit_test_setup_teardown(test_pg_retention_elsewhere_keeps_a_due_pair_being_updated, setup_pg,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_erased_user_not_kept_in_chat_senders_after_retention, setup_pg,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_pg_relaxed_first_message_retried_after_connection_lost, setup_pg, teardown),
#endif
    };
    failed += cmocka_run_group_tests_name("store/postgresql", pg_tests, NULL, NULL);
  } else {
    printf("store/postgresql: skipped (HUDDLE_TEST_PG_URL unset; scripts/with-postgres.sh sets it)\n");
  }
  return failed ? 1 : 0;
}
