/* The store: durable state behind one seam. Callers hand over domain
 * records (never SQL); a writer thread commits them in batches (group
 * commit) and completions run on the loop through a uv_async_t. Reads (chat
 * history, exports, lists) run on the libuv thread pool on a connection of
 * their own and complete on the loop. Two back ends implement struct
 * store_be_ops: SQLite (default, <data-dir>/huddle.db, WAL) and PostgreSQL
 * (--database-url postgres://...). See docs/internals/store.md. */
#ifndef HUDDLE_STORE_STORE_H
#define HUDDLE_STORE_STORE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "lib/ids.h"
#include "lib/map.h"

struct store;
struct store_rec;

/* Completion, on the loop thread. rec->status says how it went; the store
 * frees rec after the callback returns (take rec->result to keep it). */
typedef void (*store_done_cb)(struct store_rec *rec, void *arg);

enum store_kind {
  /* writes (the writer thread, in submission order) */
  STORE_ROOM_OPEN = 1,    /* room_id, ts */
  STORE_ROOM_CLOSE,       /* room_id, ts, value = peak participants, seq = last seq */
  STORE_PART_JOIN,        /* room_id, user_id, id = session id, name = role, ts */
  STORE_PART_LEAVE,       /* room_id, user_id, name = reason, ts, value = ms (its open session) */
  STORE_CHAT,             /* room_id, seq, id = message_id, user_id = from, target = to or "",
                             name = sender name, aux = reply_to or "", text, ts */
  STORE_CHAT_FORGET,      /* internal: room_id, seq of a chat that was refused, never delivered */
  STORE_EVENT,            /* room_id, ts, name = type, user_id, aux = event name, value, text = JSON data or NULL */
  STORE_MEDIA,            /* room_id, id, name = "recording"|"stream", user_id = started_by,
                             target = stopped_by, ts = started, value = stopped (0 running),
                             aux = format or stream name, text = redacted target or NULL */
  STORE_AUDIT,            /* room_id, ts, user_id = actor, name = action, target, text = JSON details or NULL */
  STORE_SETTINGS,         /* room_id, ts, text = settings JSON */
  STORE_ERASE_USER,       /* user_id, ts: chat text tombstoned, analytics anonymized */
  STORE_RETENTION,        /* ts = cut-off: chat and events older are deleted */
  STORE_POLICY,           /* room_id, ts, text = the room's policy JSON (roles, overrides, bans,
                             rejections, hand queue; "{}" forgets it) */
  STORE_FTS_SYNC,         /* internal: commits nothing; a search waits for it (store_read) */
  STORE__WRITES,
  /* reads (thread pool); rec->result receives JSON text */
  STORE_READ_CHAT,        /* room_id, user_id = viewer, value = admin, query */
  STORE_READ_EXPORT,      /* user_id */
  STORE_READ_EVENTS,      /* room_id, ts = since, value = limit */
  STORE_READ_AUDIT,       /* room_id, ts = since, value = limit */
  STORE_READ_MEDIA,       /* room_id, name = "recording"|"stream" */
  STORE_READ_SUMMARY,     /* room_id */
  STORE_READ_ROOM,        /* room_id: what restores the room (store_room_refresh) */
};

enum store_status {
  STORE_OK = 0,
  STORE_E_UNAVAILABLE = -1, /* database down, or the queue is full */
  STORE_E_FAILED = -2,      /* the database refused the record */
};

struct store_chat_query {
  int limit;                /* 1..200 */
  uint64_t before, after;   /* seq cursors, 0 = none */
  char q[256];              /* full-text words, "" = none */
};

struct store_rec {
  struct store_rec *next;   /* queue link: the store's while queued */
  enum store_kind kind;
  int status;               /* enum store_status, set before done runs */
  store_done_cb done;       /* NULL: nobody waits */
  void *arg;
  uint64_t ts, seq;
  int64_t value;
  char room_id[ID_MAX + 1];
  char user_id[ID_MAX + 1];
  char target[ID_MAX + 1];
  char id[ID_MAX + 1];
  char name[128];
  char aux[80];
  char *text;               /* owned (malloc) */
  char *result;             /* owned (malloc): a read's JSON answer */
  struct store_chat_query query;
  uv_work_t work;           /* reads */
  struct store *st;
};

/* What a room left in the store (loaded at start-up, kept current). */
struct store_room_meta {
  uint64_t last_seq;        /* highest chat seq stored for the room */
  char *settings;           /* owned JSON text or NULL */
  char *policy;             /* owned JSON text or NULL (room/durable_policy.c) */
  int opened_here;          /* the room was open in this process */
  unsigned pending;         /* settings and policy writes of this process not yet done */
  uint64_t gen;             /* settings and policy noted by this process (store_room_refresh) */
};

/* A back end: synchronous calls, run on the writer thread or the pool
 * (one connection each; a connection is used by one thread at a time). */
struct store_conn;
#define STORE_CONNECT_MIGRATE 1
#define STORE_CONNECT_SYNC_NORMAL 2
struct store_be_ops {
  const char *name;
  /* Connects (with STORE_CONNECT_MIGRATE, migrates; with
   * STORE_CONNECT_SYNC_NORMAL, commits do not wait for the disk); NULL with
   * err on failure. */
  struct store_conn *(*connect)(const char *where, int flags, char *err, size_t err_len);
  void (*disconnect)(struct store_conn *c);
  int (*begin)(struct store_conn *c);
  int (*commit)(struct store_conn *c);
  void (*rollback)(struct store_conn *c);
  /* Applies one write inside the open transaction; 0, or -1 if the
   * connection failed (the batch is retried), -2 if the record is bad. */
  int (*apply)(struct store_conn *c, struct store_rec *r);
  /* Runs a read; fills r->result; 0 or -1. */
  int (*read)(struct store_conn *c, struct store_rec *r);
  /* Calls fn for every room with stored chat, settings or policy (start-up). */
  int (*load_rooms)(struct store_conn *c, void (*fn)(void *arg, const char *room_id,
                    uint64_t last_seq, const char *settings, const char *policy), void *arg);
  int (*version)(struct store_conn *c);   /* schema version */
  int (*ping)(struct store_conn *c);      /* 1 if the connection answers */
  /* Optional (NULL: the writer calls begin, apply per record, commit).
   * Applies the whole batch (a list, in order) in one transaction, begin to
   * commit, as the back end likes best (PostgreSQL: pipelined, one round
   * trip). 0 (committed), -1 if the connection failed (nothing committed
   * that the writer knows of; the batch is retried), -2 with *bad set to
   * the first record the database refused (nothing committed; the writer
   * drops that one and retries the rest). Rolls back itself. */
  int (*apply_batch)(struct store_conn *c, struct store_rec *batch, struct store_rec **bad);
  /* Optional: a full-text index kept apart from the writer (SQLite: FTS5
   * in a file of its own, ADR 0022), on the store's indexer thread.
   * index_connect opens its connection for the database at where;
   * index_work brings it a step closer to what is committed, in a
   * transaction of its own: 1 when more is left, 0 when up to date, -1 on
   * failure. read on that connection catches the index up, then reads, in
   * one snapshot. Set, a search waits for a STORE_FTS_SYNC through the
   * writer (every chat record submitted before it is committed) and then
   * runs on the indexer; an erase completes once the index has followed it. */
  struct store_conn *(*index_connect)(const char *where, char *err, size_t err_len);
  int (*index_work)(struct store_conn *c);
  /* Optional: the writer has had nothing to do for a ping interval after
   * writing; gives back memory only a busy writer needs (SQLite: its page
   * cache). */
  void (*release)(struct store_conn *c);
  /* Optional: moves what the writer committed out of the log it appended
   * to, on its own connection and thread (store.c's checkpointer), so the
   * writer's commits never wait for it (SQLite: a PASSIVE checkpoint of
   * the WAL; the writer's connection checkpoints itself only past a large
   * backstop). 0 or -1. */
  int (*checkpoint)(struct store_conn *c);
};

extern const struct store_be_ops store_sqlite_ops;
extern const struct store_be_ops store_pg_ops;   /* NULL-ish stubs without libpq */
int store_pg_available(void);

enum store_state { STORE_STATE_OK, STORE_STATE_DOWN };

struct store_stats {
  uint64_t committed, batches, failed_batches, dropped, refused_chat, reads;
  uint64_t max_batch;
};

struct store {
  const struct store_be_ops *ops;
  char where[4096];                 /* path or URL (the URL is never logged) */
  int sync_flag;                    /* 0 or STORE_CONNECT_SYNC_NORMAL (--store-sync) */
  uv_loop_t *loop;
  uv_async_t async;                 /* completions to the loop */
  pthread_t writer;
  pthread_t checkpointer;           /* when ops->checkpoint: moves the WAL into the file */
  int has_checkpointer;
  struct store_conn *ckconn;        /* the checkpointer's connection until its thread takes it */
  pthread_cond_t ck_cond;           /* under mu: the writer committed, or stopping */
  uint64_t ck_commits;              /* under mu: batches committed when the last checkpoint began */
  pthread_t indexer;                /* when ops->index_connect: keeps the search index */
  int has_indexer;
  struct store_conn *ixconn;        /* the indexer's connection until its thread takes it */
  pthread_cond_t ix_cond;           /* under mu: rows to index, a job, or stopping */
  uint64_t ix_rows;                 /* under mu: chat records committed since the indexer last looked */
  struct store_rec *ix_head, *ix_tail; /* under mu: searches and erases waiting for the index */
  int ix_stopping;                  /* under mu: the writer has ended; finish the jobs and end */
  int ix_down;                      /* under mu: the indexer has no working connection (health) */
  char ix_error[256];               /* under mu: why */
  pthread_mutex_t mu;
  pthread_cond_t cond;
  struct store_rec *q_head, *q_tail; /* submitted, not yet taken by the writer */
  size_t q_len;                     /* queued + in the writer's hands */
  struct store_rec *done_head, *done_tail; /* completed, for the loop */
  int stopping;
  int state;                        /* enum store_state, written by the writer */
  char last_error[256];
  size_t queue_max;                 /* chat refused beyond this backlog */
  int batch_max;
  struct store_conn *wconn;         /* writer's connection (writer thread only) */
  struct store_conn *rconn;         /* readers' connection, under rmu */
  pthread_mutex_t rmu;
  struct store_stats stats;         /* under mu */
  struct map rooms;                 /* room id -> struct store_room_meta * (loop only) */
  int pending_reads;
  int closing;
};

/* Opens the store: PostgreSQL when url starts with postgres:// or
 * postgresql://, else SQLite at <data_dir>/huddle.db. Migrates, loads the
 * room index, starts the writer. sync_normal: the writer's commits do not
 * wait for the disk (--store-sync normal). Returns 0, or -1 with err (a
 * corrupt or unreadable database is an error, never replaced by a fresh one). */
int store_open(struct store **out, uv_loop_t *loop, const char *data_dir, const char *url,
               size_t queue_max, int sync_normal, char *err, size_t err_len);
/* Lets the loop end while the store has nothing in flight for it (a
 * server's loop ends when its own handles close); then call store_stop and
 * run the loop once more to close the store's handle. */
void store_loop_unref(struct store *st);
/* On the loop, at shutdown: stops the writer after it has committed what
 * was queued, runs the last completions and closes the async handle. */
void store_stop(struct store *st);
/* Frees everything (after the loop has stopped). */
void store_close(struct store *st);
int store_healthy(struct store *st);          /* 1 unless the store is down */
const char *store_backend(struct store *st);
/* "ok" or "down", the backlog and counters. New reference (json_t *). */
void *store_health_json(struct store *st);
int store_state(struct store *st);            /* enum store_state */
size_t store_backlog(struct store *st);

/* A new record of kind for room_id (may be NULL); NULL on allocation failure. */
struct store_rec *store_rec_new(enum store_kind kind, const char *room_id);
void store_rec_free(struct store_rec *r);

/* Hands r to the writer (the store owns it from now on). With chat set the
 * record is refused (done runs with STORE_E_UNAVAILABLE, on the loop, later)
 * when the backlog is at queue_max; other records are dropped (counted)
 * only beyond four times that. Returns 0, or STORE_E_UNAVAILABLE when
 * refused right away (then r is freed and done is not called). */
int store_submit(struct store *st, struct store_rec *r, int chat);
/* Runs the read r on the thread pool; done runs on the loop. 0 or -1 (r freed). */
int store_read(struct store *st, struct store_rec *r);

/* The room index: highest stored chat seq, saved settings and policy. */
const struct store_room_meta *store_room_meta(struct store *st, const char *room_id);
void store_room_seq_note(struct store *st, const char *room_id, uint64_t seq);
void store_room_settings_note(struct store *st, const char *room_id, const char *settings);
void store_room_policy_note(struct store *st, const char *room_id, const char *policy);
void store_room_opened_note(struct store *st, const char *room_id);
/* With a database several instances share (PostgreSQL, --redis-url), the
 * index loaded at start-up is stale for rooms another instance used since:
 * reads what restores room_id (its last seq, settings and policy) into the
 * index, then calls cb(arg) on the loop, also when the read fails (the
 * index stays as it was). The seq only rises; settings and policy written
 * by this process and not yet committed are kept. Returns 0 when cb will
 * be called, 1 when there is nothing to read (SQLite: the file is this
 * process's own) or it cannot be read: go on at once. */
int store_room_refresh(struct store *st, const char *room_id, void (*cb)(void *arg), void *arg);

/* Helpers the back ends share (store.c). */
/* Parses a message id "m<seq>"; 0 if malformed. */
uint64_t store_message_seq(const char *id);

/* For tests: create a database at an older schema version v. */
int store_sqlite_create_at_version(const char *path, int v, char *err, size_t err_len);
int store_pg_create_at_version(const char *url, int v, char *err, size_t err_len);

#endif
