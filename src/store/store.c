/* The store's queue, writer thread and completions (see store.h).
 *
 * The loop thread submits records; the writer thread takes everything
 * queued (up to batch_max), applies it in one transaction and commits: one
 * fsync for the whole batch (group commit). Finished records go to a done
 * list and a uv_async_t wakes the loop, which runs their callbacks.
 *
 * When the database fails, the batch is rolled back and kept at the head of
 * the queue, in order, and the writer reconnects with a growing pause. A
 * chat record somebody waits for (done != NULL: durable chat) is not kept:
 * it completes with STORE_E_UNAVAILABLE at once (its sender is told, nobody
 * received it) and is replaced by a STORE_CHAT_FORGET record, so that a
 * commit whose answer was lost cannot leave a message nobody received. */
#define LOG_MODULE "store"
#include "log.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "store/store.h"
#include "store/store_schema.h"

#define BATCH_MAX 1024
#define RETRY_MIN_MS 100
#define RETRY_MAX_MS 2000
#define IDLE_PING_S 2

uint64_t store_message_seq(const char *id) {
  if (id == NULL || id[0] != 'm' || id[1] < '1' || id[1] > '9' || strlen(id) > 21) return 0;
  char *end;
  unsigned long long v = strtoull(id + 1, &end, 10);
  return *end ? 0 : (uint64_t)v;
}

struct store_rec *store_rec_new(enum store_kind kind, const char *room_id) {
  struct store_rec *r = calloc(1, sizeof(*r));
  if (r == NULL) return NULL;
  r->kind = kind;
  if (room_id) {
    /* snprintf("%s") costs ~500 instructions; two records a chat message. */
    size_t len = strnlen(room_id, sizeof(r->room_id) - 1);
    memcpy(r->room_id, room_id, len);
  }
  return r;
}

void store_rec_free(struct store_rec *r) {
  if (r == NULL) return;
  free(r->text);
  free(r->result);
  free(r);
}

/* ---- the writer thread ---- */

/* The CLOCK_REALTIME time ms from now (pthread_cond_timedwait's clock). */
static void deadline_in(struct timespec *ts, int ms) {
  clock_gettime(CLOCK_REALTIME, ts);
  ts->tv_sec += ms / 1000;
  ts->tv_nsec += (long)(ms % 1000) * 1000000L;
  if (ts->tv_nsec >= 1000000000L) {
    ts->tv_sec++;
    ts->tv_nsec -= 1000000000L;
  }
}

static void sleep_ms(struct store *st, int ms) {
  struct timespec ts;
  deadline_in(&ts, ms);
  pthread_mutex_lock(&st->mu);
  if (!st->stopping) pthread_cond_timedwait(&st->cond, &st->mu, &ts);
  pthread_mutex_unlock(&st->mu);
}

/* Appends r to the list head..tail. */
static void rec_append(struct store_rec **head, struct store_rec **tail, struct store_rec *r) {
  r->next = NULL;
  if (*tail) (*tail)->next = r;
  else *head = r;
  *tail = r;
}

/* Appends a finished record to the done list (under mu). */
static void done_push(struct store *st, struct store_rec *r) { rec_append(&st->done_head, &st->done_tail, r); }

/* Puts the batch (a list) back at the head of the queue, in order. */
static void requeue(struct store *st, struct store_rec *batch) {
  struct store_rec *last = batch;
  if (last == NULL) return;
  while (last->next) last = last->next;
  pthread_mutex_lock(&st->mu);
  last->next = st->q_head;
  st->q_head = batch;
  if (st->q_tail == NULL) st->q_tail = last;
  pthread_mutex_unlock(&st->mu);
}

/* Applies batch in one transaction. Returns 0 (committed), -1 (connection
 * failed), or -2 with *bad set to a record the database refused. */
static int commit_batch(struct store *st, struct store_rec *batch, struct store_rec **bad) {
  const struct store_be_ops *o = st->ops;
  if (o->apply_batch) return o->apply_batch(st->wconn, batch, bad);
  if (o->begin(st->wconn) != 0) return -1;
  for (struct store_rec *r = batch; r; r = r->next) {
    int rc = o->apply(st->wconn, r);
    if (rc == -2) {
      *bad = r;
      o->rollback(st->wconn);
      return -2;
    }
    if (rc != 0) {
      o->rollback(st->wconn);
      return -1;
    }
  }
  if (o->commit(st->wconn) != 0) {
    o->rollback(st->wconn);
    return -1;
  }
  return 0;
}

static void set_error(struct store *st, const char *msg) {
  pthread_mutex_lock(&st->mu);
  snprintf(st->last_error, sizeof(st->last_error), "%s", msg);
  pthread_mutex_unlock(&st->mu);
}

#define CHECKPOINT_MS 1000       /* at most one checkpoint this often, after commits */

/* The checkpointer: after the writer committed, at most every
 * CHECKPOINT_MS, moves the committed log into the database file on its own
 * connection (ops->checkpoint), so that the writer's commits, and the chat
 * they hold back, never wait for that copy and its sync. */
static void *checkpointer_main(void *arg) {
  struct store *st = arg;
  struct store_conn *c = st->ckconn; /* made by store_open: its descriptors are there from the start */
  st->ckconn = NULL;
  pthread_mutex_lock(&st->mu);
  for (;;) {
    while (!st->stopping && st->stats.batches == st->ck_commits) pthread_cond_wait(&st->ck_cond, &st->mu);
    if (st->stopping) break;
    st->ck_commits = st->stats.batches;
    pthread_mutex_unlock(&st->mu);
    if (c == NULL) {
      char err[256];
      c = st->ops->connect(st->where, st->sync_flag, err, sizeof(err));
    }
    if (c && st->ops->checkpoint(c) != 0) {
      st->ops->disconnect(c); /* made again next time */
      c = NULL;
    }
    /* A pause before the next one (commits during it only wake it early
     * to wait again: the writer's cond is the writer's alone). */
    struct timespec until;
    deadline_in(&until, CHECKPOINT_MS);
    pthread_mutex_lock(&st->mu);
    while (!st->stopping && pthread_cond_timedwait(&st->ck_cond, &st->mu, &until) == 0) {
    }
  }
  pthread_mutex_unlock(&st->mu);
  if (c) st->ops->disconnect(c);
  return NULL;
}

/* ---- the indexer thread ---- */

#define INDEX_ROWS 256      /* the indexer runs once this many chat records were committed */
#define INDEX_DELAY_MS 200  /* or once the first of them has waited this long */
#define INDEX_RETRY_MS 10000 /* without a connection, tried again this often for the rows */

/* Appends a search or an erase to the indexer's jobs (under mu). */
static void ix_push(struct store *st, struct store_rec *r) { rec_append(&st->ix_head, &st->ix_tail, r); }

/* What health says of the search index: down with why, or up (NULL). */
static void ix_state(struct store *st, const char *error) {
  pthread_mutex_lock(&st->mu);
  st->ix_down = error != NULL;
  snprintf(st->ix_error, sizeof(st->ix_error), "%s", error ? error : "");
  pthread_mutex_unlock(&st->mu);
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The indexer (ops->index_connect): keeps the search index up to date on
 * its own connection and thread, so that the writer's commits never hold
 * indexing work (ADR 0022). Committed chat records are indexed together
 * once INDEX_ROWS wait or INDEX_DELAY_MS after the first, a step at a time
 * (jobs that arrive meanwhile go first). Jobs: a search (after its
 * STORE_FTS_SYNC), run once the index has caught up, in the same snapshot;
 * an erase, answered once a step of the index has applied it. It runs at a
 * lower priority than the loop and the writer: on a busy core its work
 * waits for theirs. */
static void *indexer_main(void *arg) {
  struct store *st = arg;
  struct store_conn *c = st->ixconn;
  st->ixconn = NULL;
  if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10) != 0)
    log_debug("store_indexer_nice err=\"%s\"", strerror(errno));
  uint64_t since = 0;    /* when rows started waiting */
  uint64_t retry_at = 0; /* no connection: when to try again for the rows */
  pthread_mutex_lock(&st->mu);
  for (;;) {
    while (!st->ix_stopping && st->ix_head == NULL && st->ix_rows < INDEX_ROWS) {
      if (st->ix_rows == 0) {
        since = 0;
        pthread_cond_wait(&st->ix_cond, &st->mu);
        continue;
      }
      if (since == 0) since = now_ms();
      uint64_t waited = now_ms() - since;
      if (waited >= INDEX_DELAY_MS) break;
      struct timespec until;
      deadline_in(&until, (int)(INDEX_DELAY_MS - waited));
      pthread_cond_timedwait(&st->ix_cond, &st->mu, &until);
    }
    if (st->ix_stopping && st->ix_head == NULL) break;
    struct store_rec *jobs = st->ix_head;
    st->ix_head = st->ix_tail = NULL;
    st->ix_rows = 0;
    since = 0;
    pthread_mutex_unlock(&st->mu);
    uint64_t now = now_ms();
    if (c == NULL && (jobs || now >= retry_at)) {
      /* Failing, tried again for each job, and for the rows at most every
       * INDEX_RETRY_MS (and logged as often). */
      char err[256];
      if (!(c = st->ops->index_connect(st->where, err, sizeof(err)))) {
        if (now >= retry_at) log_warn("store_index_down err=\"%s\"", err);
        retry_at = now + INDEX_RETRY_MS;
        ix_state(st, err);
      }
    }
    int rc = 0, erase = 0;
    for (struct store_rec *r = jobs; r; r = r->next) erase |= r->kind == STORE_ERASE_USER;
    if (c && erase) {
      /* A step applies every log entry committed before it began, the
       * erases' among them (they were committed before they came here). */
      rc = st->ops->index_work(c);
    } else if (c && jobs == NULL) {
      /* Step by step until caught up; a job, or the store stopping, first. */
      while ((rc = st->ops->index_work(c)) == 1) {
        pthread_mutex_lock(&st->mu);
        int stop = st->ix_head != NULL || st->ix_stopping;
        pthread_mutex_unlock(&st->mu);
        if (stop) break;
      }
    }
    if (erase && (c == NULL || rc < 0))
      log_warn("store_index_erase_pending reason=\"%s\"", c ? "the index failed" : "no index connection");
    for (struct store_rec *r = jobs; r; r = r->next) {
      if (r->kind != STORE_READ_CHAT) continue; /* an erase: committed, its status stays */
      int ok = c && (rc = st->ops->read(c, r)) == 0;
      r->status = ok ? STORE_OK : STORE_E_UNAVAILABLE;
    }
    if (c && rc < 0) {
      st->ops->disconnect(c); /* made again next time */
      c = NULL;
      ix_state(st, "the search index failed a step or a search (see the log)");
    } else if (c) {
      ix_state(st, NULL);
    }
    pthread_mutex_lock(&st->mu);
    for (struct store_rec *r = jobs, *next; r; r = next) {
      next = r->next;
      done_push(st, r);
    }
    if (jobs) uv_async_send(&st->async);
  }
  pthread_mutex_unlock(&st->mu);
  if (c) st->ops->disconnect(c);
  return NULL;
}

static void *writer_main(void *arg) {
  struct store *st = arg;
  int retry_ms = RETRY_MIN_MS;
  int wrote = 0;                   /* batches committed since the writer last released memory */
  for (;;) {
    pthread_mutex_lock(&st->mu);
    while (st->q_head == NULL && !st->stopping) {
      if (st->state == STORE_STATE_DOWN) break; /* probe below, even with nothing to write */
      struct timespec ts;
      clock_gettime(CLOCK_REALTIME, &ts);
      ts.tv_sec += IDLE_PING_S;
      if (pthread_cond_timedwait(&st->cond, &st->mu, &ts) == ETIMEDOUT && st->q_head == NULL &&
          !st->stopping) {
        /* Idle: make sure the database still answers, so health tells the
         * truth before the next write finds out. */
        pthread_mutex_unlock(&st->mu);
        int alive = st->wconn && st->ops->ping(st->wconn);
        if (alive && wrote) {
          /* Quiet since the last batch: give back what only a busy writer
           * needs, the back end's cache and, with it, the free memory of
           * every thread's malloc arena (docs/performance.md, memory per
           * idle connection). Once per quiet spell, not per ping. */
          uint64_t t0 = uv_hrtime();
          if (st->ops->release) st->ops->release(st->wconn);
          malloc_trim(0);
          log_debug("store_idle_release backend=%s us=%" PRIu64, st->ops->name, (uv_hrtime() - t0) / 1000);
          wrote = 0;
        }
        pthread_mutex_lock(&st->mu);
        if (!alive) {
          if (st->state == STORE_STATE_OK) log_warn("store_down backend=%s reason=ping", st->ops->name);
          st->state = STORE_STATE_DOWN;
          snprintf(st->last_error, sizeof(st->last_error), "the database stopped answering");
        }
      }
    }
    if (st->q_head == NULL && st->stopping) {
      pthread_mutex_unlock(&st->mu);
      break;
    }
    if (st->q_head == NULL) {
      /* Down and idle: reconnect now and then, so that health and durable
       * chat come back without waiting for a write. */
      pthread_mutex_unlock(&st->mu);
      char err[256];
      if (st->wconn == NULL) st->wconn = st->ops->connect(st->where, st->sync_flag, err, sizeof(err));
      if (st->wconn && st->ops->ping(st->wconn)) {
        pthread_mutex_lock(&st->mu);
        st->state = STORE_STATE_OK;
        st->last_error[0] = '\0';
        pthread_mutex_unlock(&st->mu);
        log_info("store_up backend=%s", st->ops->name);
        retry_ms = RETRY_MIN_MS;
      } else {
        if (st->wconn) {
          st->ops->disconnect(st->wconn);
          st->wconn = NULL;
        } else {
          set_error(st, err);
        }
        sleep_ms(st, retry_ms);
        retry_ms = retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : retry_ms * 2;
      }
      continue;
    }
    int stopping = st->stopping;
    /* Take up to batch_max records. */
    struct store_rec *batch = st->q_head, *last = batch;
    int n = 1;
    while (last->next && n < st->batch_max) {
      last = last->next;
      n++;
    }
    st->q_head = last->next;
    if (st->q_head == NULL) st->q_tail = NULL;
    last->next = NULL;
    pthread_mutex_unlock(&st->mu);

    if (st->wconn == NULL) {
      char err[256];
      st->wconn = st->ops->connect(st->where, st->sync_flag, err, sizeof(err));
      if (st->wconn == NULL) set_error(st, err);
    }
    int rc = -1;
    struct store_rec *bad = NULL;
    if (st->wconn) rc = commit_batch(st, batch, &bad);
    if (rc == -2) {
      /* The database refused one record: drop it (counted, logged) and
       * retry the rest at once. */
      struct store_rec **pp = &batch;
      while (*pp != bad) pp = &(*pp)->next;
      *pp = bad->next;
      log_warn("store_record_refused kind=%d room=%s", (int)bad->kind, bad->room_id);
      bad->status = STORE_E_FAILED;
      pthread_mutex_lock(&st->mu);
      st->q_len--;
      st->stats.dropped++;
      done_push(st, bad);
      pthread_mutex_unlock(&st->mu);
      uv_async_send(&st->async);
      requeue(st, batch);
      continue;
    }
    if (rc == 0) {
      pthread_mutex_lock(&st->mu);
      if (st->state != STORE_STATE_OK) log_info("store_up backend=%s", st->ops->name);
      st->state = STORE_STATE_OK;
      st->stats.committed += (uint64_t)n;
      st->stats.batches++;
      if (st->has_checkpointer) pthread_cond_signal(&st->ck_cond);
      if ((uint64_t)n > st->stats.max_batch) st->stats.max_batch = (uint64_t)n;
      st->q_len -= (size_t)n;
      uint64_t ix_was = st->ix_rows;
      int ix_job = 0;
      for (struct store_rec *r = batch, *next; r; r = next) {
        next = r->next;
        r->status = STORE_OK;
        if (st->has_indexer && (r->kind == STORE_CHAT || r->kind == STORE_CHAT_FORGET ||
                                r->kind == STORE_RETENTION || r->kind == STORE_ERASE_USER))
          st->ix_rows++;
        if (st->has_indexer && r->kind == STORE_ERASE_USER) {
          ix_push(st, r); /* answered once the search index forgot the text too */
          ix_job = 1;
        } else {
          done_push(st, r);
        }
      }
      /* The indexer is woken when rows start waiting (it times its delay
       * from then), when enough wait, or for a job: not at every commit. */
      if (ix_job || (ix_was == 0 && st->ix_rows > 0) || (ix_was < INDEX_ROWS && st->ix_rows >= INDEX_ROWS))
        pthread_cond_signal(&st->ix_cond);
      pthread_mutex_unlock(&st->mu);
      uv_async_send(&st->async);
      retry_ms = RETRY_MIN_MS;
      wrote = 1;
      continue;
    }
    /* The connection failed: fail waiting chat, keep the rest, reconnect. */
    if (st->wconn) {
      st->ops->disconnect(st->wconn);
      st->wconn = NULL;
    }
    pthread_mutex_lock(&st->mu);
    if (st->state == STORE_STATE_OK) log_warn("store_down backend=%s batch=%d", st->ops->name, n);
    st->state = STORE_STATE_DOWN;
    if (!st->last_error[0]) snprintf(st->last_error, sizeof(st->last_error), "a write failed");
    st->stats.failed_batches++;
    struct store_rec *keep = NULL, **kt = &keep;
    for (struct store_rec *r = batch, *next; r; r = next) {
      next = r->next;
      r->next = NULL;
      if ((r->kind == STORE_CHAT && r->done) || stopping) {
        struct store_rec *forget = stopping ? NULL : store_rec_new(STORE_CHAT_FORGET, r->room_id);
        if (forget) {
          forget->seq = r->seq;
          *kt = forget;
          kt = &forget->next;
        } else {
          st->q_len--;
        }
        if (stopping) st->stats.dropped++;
        r->status = STORE_E_UNAVAILABLE;
        done_push(st, r);
      } else {
        *kt = r;
        kt = &r->next;
      }
    }
    pthread_mutex_unlock(&st->mu);
    uv_async_send(&st->async);
    requeue(st, keep);
    if (stopping && keep == NULL) {
      /* Stopping with the database down: what is left is lost; say so. */
      pthread_mutex_lock(&st->mu);
      size_t left = 0;
      for (struct store_rec *r = st->q_head, *next; r; r = next) {
        next = r->next;
        r->status = STORE_E_UNAVAILABLE;
        done_push(st, r);
        left++;
      }
      st->q_head = st->q_tail = NULL;
      st->q_len = 0;
      st->stats.dropped += left;
      pthread_mutex_unlock(&st->mu);
      if (left) log_error("store_unwritten records=%zu reason=\"database down at shutdown\"", left);
      break;
    }
    sleep_ms(st, retry_ms);
    retry_ms = retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : retry_ms * 2;
  }
  return NULL;
}

/* ---- completions on the loop ---- */

static void run_done(struct store *st) {
  pthread_mutex_lock(&st->mu);
  struct store_rec *list = st->done_head;
  st->done_head = st->done_tail = NULL;
  pthread_mutex_unlock(&st->mu);
  for (struct store_rec *r = list, *next; r; r = next) {
    next = r->next;
    if (r->kind == STORE_SETTINGS || r->kind == STORE_POLICY) {
      struct store_room_meta *m = map_get(&st->rooms, r->room_id);
      if (m && m->pending) m->pending--;
    }
    if (r->kind == STORE_READ_CHAT) st->pending_reads--; /* a search the indexer ran */
    if (r->done) r->done(r, r->arg);
    store_rec_free(r);
  }
}

static void on_async(uv_async_t *a) { run_done(a->data); }

/* ---- submitting ---- */

static void meta_erase_user(const char *k, void *v, void *arg) {
  struct store_room_meta *m = v;
  char *text = m->policy ? store_policy_without_user(m->policy, arg) : NULL;
  if (text) {
    free(m->policy);
    m->policy = text;
  }
}

int store_submit(struct store *st, struct store_rec *r, int chat) {
  /* Erasing a user: the room index forgets it now, so that a room created
   * again before (or after) the write commits does not restore it. */
  if (r->kind == STORE_ERASE_USER) map_each(&st->rooms, meta_erase_user, r->user_id);
  pthread_mutex_lock(&st->mu);
  int refuse = st->stopping || (chat && st->q_len >= st->queue_max) ||
               (!chat && st->q_len >= st->queue_max * 4);
  if (refuse) {
    if (chat) st->stats.refused_chat++;
    else st->stats.dropped++;
    pthread_mutex_unlock(&st->mu);
    store_rec_free(r);
    return STORE_E_UNAVAILABLE;
  }
  r->next = NULL;
  r->st = st;
  if (r->kind == STORE_SETTINGS || r->kind == STORE_POLICY) {
    struct store_room_meta *m = map_get(&st->rooms, r->room_id); /* loop only: read here, under mu */
    if (m) m->pending++;
  }
  if (st->q_tail) st->q_tail->next = r;
  else st->q_head = r;
  st->q_tail = r;
  st->q_len++;
  pthread_cond_signal(&st->cond);
  pthread_mutex_unlock(&st->mu);
  return 0;
}

static void read_work(uv_work_t *w) {
  struct store_rec *r = w->data;
  struct store *st = r->st;
  pthread_mutex_lock(&st->rmu);
  if (st->rconn == NULL) {
    char err[256];
    st->rconn = st->ops->connect(st->where, 0, err, sizeof(err));
  }
  int rc = st->rconn ? st->ops->read(st->rconn, r) : -1;
  if (rc != 0 && st->rconn && !st->ops->ping(st->rconn)) {
    st->ops->disconnect(st->rconn); /* reconnect next time */
    st->rconn = NULL;
  }
  pthread_mutex_unlock(&st->rmu);
  r->status = rc == 0 ? STORE_OK : STORE_E_UNAVAILABLE;
}

static void queue_read(struct store *st, struct store_rec *r);

/* The search index follows what is committed (store_be_ops.index_work):
 * a search waits for a STORE_FTS_SYNC that went through the writer after
 * every chat record submitted before it, then runs on the indexer. */
static void on_fts_synced(struct store_rec *sync, void *arg) {
  struct store_rec *r = arg;
  struct store *st = r->st;
  (void)sync; /* failed: the search runs on what is committed */
  if (!st->has_indexer || st->closing) {
    queue_read(st, r); /* closing: answered unavailable */
    return;
  }
  pthread_mutex_lock(&st->mu);
  ix_push(st, r);
  pthread_cond_signal(&st->ix_cond);
  pthread_mutex_unlock(&st->mu);
}

static void read_after(uv_work_t *w, int status) {
  struct store_rec *r = w->data;
  struct store *st = r->st;
  st->pending_reads--;
  if (status != 0) r->status = STORE_E_UNAVAILABLE;
  if (r->done) r->done(r, r->arg);
  store_rec_free(r);
}

static void queue_read(struct store *st, struct store_rec *r) {
  if (st->closing || uv_queue_work(st->loop, &r->work, read_work, read_after) != 0) {
    st->pending_reads--;
    r->status = STORE_E_UNAVAILABLE;
    if (r->done) r->done(r, r->arg);
    store_rec_free(r);
  }
}

int store_read(struct store *st, struct store_rec *r) {
  r->st = st;
  r->work.data = r;
  if (st->closing) {
    store_rec_free(r);
    return -1;
  }
  if (st->ops->index_connect && r->kind == STORE_READ_CHAT && r->query.q[0]) {
    struct store_rec *sync = store_rec_new(STORE_FTS_SYNC, r->room_id);
    if (sync) {
      sync->done = on_fts_synced;
      sync->arg = r;
      if (store_submit(st, sync, 0) == 0) {
        st->pending_reads++;
        pthread_mutex_lock(&st->mu);
        st->stats.reads++;
        pthread_mutex_unlock(&st->mu);
        return 0;
      }
    }
  }
  if (uv_queue_work(st->loop, &r->work, read_work, read_after) != 0) {
    store_rec_free(r);
    return -1;
  }
  st->pending_reads++;
  pthread_mutex_lock(&st->mu);
  st->stats.reads++;
  pthread_mutex_unlock(&st->mu);
  return 0;
}

/* ---- the room index ---- */

static struct store_room_meta *meta_get(struct store *st, const char *room_id) {
  struct store_room_meta *m = map_get(&st->rooms, room_id);
  if (m) return m;
  m = calloc(1, sizeof(*m));
  if (m == NULL) return NULL;
  if (map_put(&st->rooms, room_id, m) != 0) {
    free(m);
    return NULL;
  }
  return m;
}

const struct store_room_meta *store_room_meta(struct store *st, const char *room_id) {
  return st ? map_get(&st->rooms, room_id) : NULL;
}

void store_room_seq_note(struct store *st, const char *room_id, uint64_t seq) {
  struct store_room_meta *m = meta_get(st, room_id);
  if (m && seq > m->last_seq) m->last_seq = seq;
}

void store_room_settings_note(struct store *st, const char *room_id, const char *settings) {
  struct store_room_meta *m = meta_get(st, room_id);
  if (m == NULL) return;
  free(m->settings);
  m->settings = settings ? strdup(settings) : NULL;
  m->gen++;
}

void store_room_policy_note(struct store *st, const char *room_id, const char *policy) {
  struct store_room_meta *m = meta_get(st, room_id);
  if (m == NULL) return;
  free(m->policy);
  m->policy = policy ? strdup(policy) : NULL;
  m->gen++;
}

struct refresh {
  void (*cb)(void *arg);
  void *arg;
  uint64_t gen;             /* the room's gen when the read was asked */
  int keep;                 /* this process had settings or policy writes in flight then */
};

/* Replaces *field with the row's text column (NULL when SQL NULL). */
static void meta_take(char **field, json_t *v) {
  const char *t = json_string_value(v);
  free(*field);
  *field = t ? strdup(t) : NULL;
}

static void on_room_read(struct store_rec *r, void *arg) {
  struct refresh *f = arg;
  struct store *st = r->st;
  json_t *j = r->status == STORE_OK && r->result ? json_loads(r->result, 0, NULL) : NULL;
  json_t *row = json_array_get(json_object_get(j, "items"), 0);
  struct store_room_meta *m = json_is_object(row) ? meta_get(st, r->room_id) : NULL;
  if (m) {
    json_int_t a = json_integer_value(json_object_get(row, "chat_seq"));
    json_int_t b = json_integer_value(json_object_get(row, "session_seq"));
    store_room_seq_note(st, r->room_id, (uint64_t)(a > b ? a : b));
    /* What the database holds is newer than what this process noted,
     * unless this process wrote since it asked, or had writes in flight. */
    if (!f->keep && m->gen == f->gen) {
      meta_take(&m->settings, json_object_get(row, "settings"));
      meta_take(&m->policy, json_object_get(row, "policy"));
    }
  }
  json_decref(j);
  f->cb(f->arg);
  free(f);
}

int store_room_refresh(struct store *st, const char *room_id, void (*cb)(void *arg), void *arg) {
  if (st == NULL || st->ops != &store_pg_ops || st->closing) return 1;
  struct store_rec *r = store_rec_new(STORE_READ_ROOM, room_id);
  struct refresh *f = r ? calloc(1, sizeof(*f)) : NULL;
  if (f == NULL) {
    store_rec_free(r);
    return 1;
  }
  struct store_room_meta *m = map_get(&st->rooms, room_id);
  f->cb = cb;
  f->arg = arg;
  f->gen = m ? m->gen : 0;
  f->keep = m && m->pending;
  r->done = on_room_read;
  r->arg = f;
  if (store_read(st, r) != 0) {
    free(f);
    return 1;
  }
  return 0;
}

void store_room_opened_note(struct store *st, const char *room_id) {
  struct store_room_meta *m = meta_get(st, room_id);
  if (m) m->opened_here = 1;
}

static void on_loaded_room(void *arg, const char *room_id, uint64_t last_seq, const char *settings,
                           const char *policy) {
  struct store *st = arg;
  store_room_seq_note(st, room_id, last_seq);
  if (settings) store_room_settings_note(st, room_id, settings);
  if (policy) store_room_policy_note(st, room_id, policy);
}

static void meta_free(const char *k, void *v, void *arg) {
  struct store_room_meta *m = v;
  free(m->settings);
  free(m->policy);
  free(m);
}

/* ---- open, health, close ---- */

static int is_pg_url(const char *url) {
  return url && (strncmp(url, "postgres://", 11) == 0 || strncmp(url, "postgresql://", 13) == 0);
}

int store_open(struct store **out, uv_loop_t *loop, const char *data_dir, const char *url,
               size_t queue_max, int sync_normal, char *err, size_t err_len) {
  struct store *st = calloc(1, sizeof(*st));
  if (st == NULL) return snprintf(err, err_len, "out of memory"), -1;
  if (url && *url) {
    if (!is_pg_url(url)) {
      snprintf(err, err_len, "--database-url: expected postgres://... or postgresql://... (or empty for SQLite)");
      free(st);
      return -1;
    }
    if (!store_pg_available()) {
      snprintf(err, err_len, "--database-url: this build has no PostgreSQL support (libpq)");
      free(st);
      return -1;
    }
    st->ops = &store_pg_ops;
    snprintf(st->where, sizeof(st->where), "%s", url);
  } else {
    st->ops = &store_sqlite_ops;
    snprintf(st->where, sizeof(st->where), "%s/huddle.db", data_dir);
  }
  st->loop = loop;
  st->sync_flag = sync_normal ? STORE_CONNECT_SYNC_NORMAL : 0;
  st->queue_max = queue_max ? queue_max : 10000;
  st->batch_max = BATCH_MAX;
  /* Start-up is the one time the loop may wait: migrate and load the room
   * index synchronously, so a broken database stops the server here. */
  st->wconn = st->ops->connect(st->where, STORE_CONNECT_MIGRATE | st->sync_flag, err, err_len);
  if (st->wconn == NULL) {
    free(st);
    return -1;
  }
  if (st->ops->load_rooms(st->wconn, on_loaded_room, st) != 0) {
    snprintf(err, err_len, "%s: cannot read the room index", st->ops->name);
    st->ops->disconnect(st->wconn);
    map_each(&st->rooms, meta_free, NULL);
    map_free(&st->rooms);
    free(st);
    return -1;
  }
  pthread_mutex_init(&st->mu, NULL);
  pthread_mutex_init(&st->rmu, NULL);
  pthread_cond_init(&st->cond, NULL);
  pthread_cond_init(&st->ck_cond, NULL);
  pthread_cond_init(&st->ix_cond, NULL);
  uv_async_init(loop, &st->async, on_async);
  st->async.data = st;
  if (st->ops->index_connect) {
    /* Before the writer, which reads has_indexer. Its descriptors are
     * there from the start; failing, the thread tries again at its first
     * job. */
    char ixerr[256];
    if (!(st->ixconn = st->ops->index_connect(st->where, ixerr, sizeof(ixerr)))) {
      log_warn("store_index_down err=\"%s\"", ixerr);
      st->ix_down = 1;
      snprintf(st->ix_error, sizeof(st->ix_error), "%s", ixerr);
    }
    st->has_indexer = pthread_create(&st->indexer, NULL, indexer_main, st) == 0;
    if (!st->has_indexer && st->ixconn) {
      st->ops->disconnect(st->ixconn);
      st->ixconn = NULL;
    }
  }
  if (pthread_create(&st->writer, NULL, writer_main, st) != 0) {
    snprintf(err, err_len, "cannot start the store writer thread");
    st->ops->disconnect(st->wconn);
    return -1; /* the process exits; st is not freed (its handle is the loop's) */
  }
  if (st->ops->checkpoint) {
    char ckerr[256];
    st->ckconn = st->ops->connect(st->where, st->sync_flag, ckerr, sizeof(ckerr));
    st->has_checkpointer = pthread_create(&st->checkpointer, NULL, checkpointer_main, st) == 0;
    if (!st->has_checkpointer && st->ckconn) {
      st->ops->disconnect(st->ckconn);
      st->ckconn = NULL;
    }
  }
  log_info("store_open backend=%s version=%d rooms=%zu", st->ops->name, st->ops->version(st->wconn),
           st->rooms.count);
  *out = st;
  return 0;
}

int store_state(struct store *st) {
  if (st == NULL) return STORE_STATE_DOWN;
  pthread_mutex_lock(&st->mu);
  int s = st->state;
  pthread_mutex_unlock(&st->mu);
  return s;
}

size_t store_backlog(struct store *st) {
  pthread_mutex_lock(&st->mu);
  size_t n = st->q_len;
  pthread_mutex_unlock(&st->mu);
  return n;
}

int store_healthy(struct store *st) { return st && store_state(st) == STORE_STATE_OK; }

const char *store_backend(struct store *st) { return st ? st->ops->name : "none"; }

void *store_health_json(struct store *st) {
  if (st == NULL) return json_pack("{s:s,s:s}", "status", "unavailable", "backend", "none");
  pthread_mutex_lock(&st->mu);
  int down = st->state != STORE_STATE_OK;
  json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I}", "status", down ? "degraded" : "ok",
                        "backend", st->ops->name, "state", down ? "down" : "up",
                        "sync", st->sync_flag ? "normal" : "full",
                        "backlog", (json_int_t)st->q_len, "backlog_max", (json_int_t)st->queue_max,
                        "committed", (json_int_t)st->stats.committed,
                        "batches", (json_int_t)st->stats.batches,
                        "refused_chat", (json_int_t)st->stats.refused_chat,
                        "dropped", (json_int_t)st->stats.dropped);
  if (j && down && st->last_error[0]) json_object_set_new(j, "error", json_string(st->last_error));
  if (j && st->has_indexer) {
    /* The search index (SQLite, ADR 0022): searches answer 503 while it
     * is down; chat and everything else go on. */
    json_object_set_new(j, "search_index", json_string(st->ix_down ? "down" : "up"));
    if (st->ix_down) json_object_set_new(j, "search_index_error", json_string(st->ix_error));
  }
  pthread_mutex_unlock(&st->mu);
  return j;
}

void store_loop_unref(struct store *st) {
  if (st) uv_unref((uv_handle_t *)&st->async);
}

/* Stops the writer (it commits what is queued first), closes the async
 * handle and runs the last completions. Idempotent. */
/* Tells the writer to commit what is queued and end, waits for it, and runs
 * the completions it left. */
static void writer_stop(struct store *st) {
  st->closing = 1;
  pthread_mutex_lock(&st->mu);
  st->stopping = 1;
  pthread_cond_signal(&st->cond);
  pthread_cond_signal(&st->ck_cond);
  pthread_mutex_unlock(&st->mu);
  pthread_join(st->writer, NULL);
  if (st->has_checkpointer) pthread_join(st->checkpointer, NULL);
  st->has_checkpointer = 0;
  if (st->has_indexer) {
    /* After the writer: the erases it committed last are the indexer's. */
    pthread_mutex_lock(&st->mu);
    st->ix_stopping = 1;
    pthread_cond_signal(&st->ix_cond);
    pthread_mutex_unlock(&st->mu);
    pthread_join(st->indexer, NULL);
    st->has_indexer = 0;
  }
  run_done(st);
}

void store_stop(struct store *st) {
  if (st == NULL || st->closing) return;
  writer_stop(st);
  uv_close((uv_handle_t *)&st->async, NULL);
}

void store_close(struct store *st) {
  if (st == NULL) return;
  /* Not stopped through the loop: stop the thread; the handle is the
   * loop's to close (it is closed in store_stop). */
  if (st->closing == 0) writer_stop(st);
  if (st->wconn) st->ops->disconnect(st->wconn);
  if (st->rconn) st->ops->disconnect(st->rconn);
  for (struct store_rec *r = st->q_head, *next; r; r = next) {
    next = r->next;
    store_rec_free(r);
  }
  map_each(&st->rooms, meta_free, NULL);
  map_free(&st->rooms);
  pthread_mutex_destroy(&st->mu);
  pthread_mutex_destroy(&st->rmu);
  pthread_cond_destroy(&st->cond);
  pthread_cond_destroy(&st->ck_cond);
  pthread_cond_destroy(&st->ix_cond);
  free(st);
}

/* ---- helpers for the back ends (store_schema.h) ---- */

#include "store/store_schema.h"

json_t *store_chat_json(unsigned long long seq, const char *message_id, const char *from,
                        const char *sender_name, const char *to, const char *reply_to,
                        const char *text, unsigned long long ts, int erased) {
  json_t *m = json_pack("{s:s,s:s,s:s,s:s,s:I,s:I,s:b}", "message_id", message_id, "from", from,
                        "sender_name", sender_name ? sender_name : "", "text", text,
                        "ts", (json_int_t)ts, "seq", (json_int_t)seq,
                        "private", to != NULL && *to != '\0');
  if (m == NULL) return NULL;
  if (to && *to) json_object_set_new(m, "to", json_string(to));
  if (reply_to && *reply_to) json_object_set_new(m, "reply_to", json_string(reply_to));
  if (erased) json_object_set_new(m, "erased", json_true());
  return m;
}

/* The pairs a writer remembers: past this many it forgets them all (and
 * writes each again with its next message); about 2 MiB at most. */
#define SENDERS_KNOWN_MAX 16384

int store_sender_due(struct map *known, const char *room_id, const char *user_id, uint64_t ts) {
  char key[2 * ID_MAX + 3];
  snprintf(key, sizeof(key), "%s\x1f%s", room_id, user_id);
  /* The value is the second the pair was last written, plus one (never
   * NULL): a second is fine grain for an hour. */
  uintptr_t s = (uintptr_t)map_get(known, key);
  uint64_t now_s = ts / 1000 + 1;
  if (s != 0 && now_s < (uint64_t)s + STORE_SENDER_REFRESH_MS / 1000) return 0;
  if (known->count >= SENDERS_KNOWN_MAX) map_free(known);
  map_put(known, key, (void *)(uintptr_t)now_s); /* a failed put: the pair is written again next time */
  return 1;
}

int store_fts_words(const char *q, char *out, size_t out_len) {
  size_t o = 0;
  int words = 0;
  const unsigned char *p = (const unsigned char *)q;
  while (*p) {
    /* A word: letters, digits and any non-ASCII byte (UTF-8 text). */
    while (*p && !(*p >= 0x80 || (*p >= '0' && *p <= '9') || ((*p | 0x20) >= 'a' && (*p | 0x20) <= 'z')))
      p++;
    if (!*p) break;
    if (o + 4 >= out_len) return -1;
    if (words) out[o++] = ' ';
    out[o++] = '"';
    while (*p && (*p >= 0x80 || (*p >= '0' && *p <= '9') || ((*p | 0x20) >= 'a' && (*p | 0x20) <= 'z'))) {
      if (o + 3 >= out_len) return -1;
      out[o++] = (char)*p++;
    }
    out[o++] = '"';
    words++;
  }
  out[o] = '\0';
  return words ? 0 : -1;
}

/* ---- room policy snapshots and one user (export and erase) ---- */

void store_policy_needle(const char *user_id, char *out, size_t out_len) {
  snprintf(out, out_len, "\"%s\"", user_id);
}

/* The index in the snapshot's hand queue of user_id's hand, or -1. */
static int policy_hand(json_t *hands, const char *user_id) {
  size_t i;
  json_t *v;
  json_array_foreach(hands, i, v) {
    const char *u = json_string_value(json_object_get(v, "user_id"));
    if (u && strcmp(u, user_id) == 0) return (int)i;
  }
  return -1;
}

json_t *store_policy_user_part(const char *room_id, const char *policy, const char *user_id) {
  json_t *j = policy ? json_loads(policy, 0, NULL) : NULL;
  if (!json_is_object(j)) {
    json_decref(j);
    return NULL;
  }
  json_t *part = json_pack("{s:s}", "room_id", room_id);
  int found = 0;
  json_t *u = json_object_get(json_object_get(j, "users"), user_id);
  if (u && part) {
    json_object_set(part, "user", u);
    found = 1;
  }
  static const char *const flags[] = {"rejected", "banned"};
  for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]) && part; i++) {
    if (json_object_get(json_object_get(j, flags[i]), user_id)) {
      json_object_set_new(part, flags[i], json_true());
      found = 1;
    }
  }
  json_t *hands = json_object_get(j, "hands");
  int h = json_is_array(hands) ? policy_hand(hands, user_id) : -1;
  if (h >= 0 && part) {
    json_t *v = json_array_get(hands, (size_t)h);
    json_t *hand = json_object();
    if (json_object_get(v, "name")) json_object_set(hand, "name", json_object_get(v, "name"));
    if (json_object_get(v, "raised_at")) json_object_set(hand, "raised_at", json_object_get(v, "raised_at"));
    json_object_set_new(part, "hand", hand);
    found = 1;
  }
  json_decref(j);
  if (!found) {
    json_decref(part);
    return NULL;
  }
  return part;
}

char *store_policy_without_user(const char *policy, const char *user_id) {
  json_t *j = policy ? json_loads(policy, 0, NULL) : NULL;
  if (!json_is_object(j)) {
    json_decref(j);
    return NULL;
  }
  int changed = 0;
  /* Empty sections are left out, as durable_policy writes them. */
  static const char *const maps[] = {"users", "rejected", "banned"};
  for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
    json_t *m = json_object_get(j, maps[i]);
    if (json_is_object(m) && json_object_del(m, user_id) == 0) {
      changed = 1;
      if (json_object_size(m) == 0) json_object_del(j, maps[i]);
    }
  }
  json_t *hands = json_object_get(j, "hands");
  if (json_is_array(hands)) {
    int h;
    while ((h = policy_hand(hands, user_id)) >= 0) {
      json_array_remove(hands, (size_t)h);
      changed = 1;
    }
    if (json_array_size(hands) == 0) json_object_del(j, "hands");
  }
  char *text = changed ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
  json_decref(j);
  return text;
}

void store_export_fill(json_t *out, const char *user_id, json_t *chat, json_t *sessions, json_t *events,
                       json_t *audit, json_t *policy_rows) {
  json_object_set_new(out, "user_id", json_string(user_id));
  json_object_set_new(out, "chat_messages", chat);
  json_object_set_new(out, "participant_sessions", sessions);
  json_object_set_new(out, "analytics_events", events);
  json_object_set_new(out, "audit", audit);
  json_object_set_new(out, "room_policy", store_policy_export(policy_rows, user_id));
  json_object_del(out, "items");
}

json_t *store_policy_export(json_t *rows, const char *user_id) {
  json_t *out = json_array();
  size_t i;
  json_t *row;
  json_array_foreach(rows, i, row) {
    json_t *part = store_policy_user_part(json_string_value(json_object_get(row, "room_id")),
                                          json_string_value(json_object_get(row, "policy")), user_id);
    if (part) json_array_append_new(out, part);
  }
  json_decref(rows);
  return out;
}
