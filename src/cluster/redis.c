/* The two Redis connections and the commands sent on them: the command
 * connection (pipelined, in call order; commands that carry messages are
 * held while Redis is away and sent in order when it is back), the reader
 * (cluster/reader.c), connecting with backoff, AUTH/SELECT and the shared
 * grant key, the URL. Also the helpers that read replies and stream
 * entries, and XADD to another instance's inbox. */
#define LOG_MODULE "cluster"
#include "log.h"

#include <hiredis/adapters/libuv.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/grant.h"
#include "cluster/cluster_int.h"

static void pending_push(struct cluster *cl, int argc, const char **argv, const size_t *lens) {
  if (cl->npending >= PENDING_MAX) {
    log_warn("redis_queue_full dropped=1");
    return;
  }
  struct pending *p = calloc(1, sizeof(*p));
  if (p == NULL) return;
  p->argc = argc;
  p->argv = calloc((size_t)argc, sizeof(char *));
  p->lens = calloc((size_t)argc, sizeof(size_t));
  if (p->argv == NULL || p->lens == NULL) goto fail;
  for (int i = 0; i < argc; i++) {
    size_t n = lens ? lens[i] : strlen(argv[i]);
    if ((p->argv[i] = malloc(n + 1)) == NULL) goto fail;
    memcpy(p->argv[i], argv[i], n);
    p->argv[i][n] = '\0';
    p->lens[i] = n;
  }
  if (cl->pend_tail) cl->pend_tail->next = p;
  else cl->pend_head = p;
  cl->pend_tail = p;
  cl->npending++;
  if (cl->npending > cl->st.queued_max) cl->st.queued_max = cl->npending;
  return;
fail:
  if (p->argv)
    for (int i = 0; i < argc; i++) free(p->argv[i]);
  free(p->argv);
  free(p->lens);
  free(p);
}

static void pending_free(struct pending *p) {
  for (int i = 0; i < p->argc; i++) free(p->argv[i]);
  free(p->argv);
  free(p->lens);
  free(p);
}

/* Sends a command on the command connection. With hold, a command that
 * cannot be sent now is kept (in order) until Redis is back; otherwise fn
 * runs at once with a NULL reply. */
void redis_cmd(struct cluster *cl, redisCallbackFn *fn, void *priv, int hold, int argc, const char **argv,
               const size_t *lens) {
  if (cl->cmd_up && cl->pend_head == NULL &&
      redisAsyncCommandArgv(cl->cmd, fn, priv, argc, argv, lens) == REDIS_OK)
    return;
  if (hold) {
    pending_push(cl, argc, argv, lens);
    return;
  }
  if (fn) fn(NULL, NULL, priv);
}

static void pending_flush(struct cluster *cl) {
  while (cl->cmd_up && cl->pend_head) {
    struct pending *p = cl->pend_head;
    if (redisAsyncCommandArgv(cl->cmd, NULL, NULL, p->argc, (const char **)p->argv, p->lens) != REDIS_OK) break;
    cl->pend_head = p->next;
    if (cl->pend_head == NULL) cl->pend_tail = NULL;
    cl->npending--;
    pending_free(p);
  }
}

const redisReply *reply_at(const redisReply *r, size_t i) {
  return r && r->type == REDIS_REPLY_ARRAY && i < r->elements ? r->element[i] : NULL;
}

int reply_str(const redisReply *r, char *out, size_t n) {
  if (r == NULL || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS)) {
    if (n) out[0] = '\0';
    return -1;
  }
  snprintf(out, n, "%.*s", (int)r->len, r->str);
  return 0;
}

/* Value of field name in a stream entry's field list, or NULL. */
const redisReply *reply_field(const redisReply *fields, const char *name) {
  if (fields == NULL || fields->type != REDIS_REPLY_ARRAY) return NULL;
  for (size_t i = 0; i + 1 < fields->elements; i += 2) {
    const redisReply *k = fields->element[i];
    if (k->type == REDIS_REPLY_STRING && strlen(name) == k->len && memcmp(k->str, name, k->len) == 0)
      return fields->element[i + 1];
  }
  return NULL;
}

int reply_field_str(const redisReply *fields, const char *name, char *out, size_t n) {
  return reply_str(reply_field(fields, name), out, n);
}

long long reply_field_int(const redisReply *fields, const char *name) {
  char b[32];
  if (reply_field_str(fields, name, b, sizeof(b)) != 0) return 0;
  return strtoll(b, NULL, 10);
}

/* XADD to another instance's inbox (held while Redis is away; then fn is
 * not called: priv must not need freeing). */
void inbox_send_cb(struct cluster *cl, const char *inst, redisCallbackFn *fn, void *priv, int nf,
                          const char **fv, const size_t *fl) {
  char key[KEY_MAX];
  key_of(key, "inbox", inst);
  const char *argv[32];
  size_t lens[32];
  int n = 0;
  argv[n] = "XADD", lens[n++] = 4;
  argv[n] = key, lens[n++] = strlen(key);
  argv[n] = "MAXLEN", lens[n++] = 6;
  argv[n] = "~", lens[n++] = 1;
  char mx[16];
  snprintf(mx, sizeof(mx), "%d", INBOX_MAX);
  argv[n] = mx, lens[n++] = strlen(mx);
  argv[n] = "*", lens[n++] = 1;
  for (int i = 0; i < nf && n < 32; i++) {
    argv[n] = fv[i];
    lens[n++] = fl ? fl[i] : strlen(fv[i]);
  }
  redis_cmd(cl, fn, priv, 1, n, argv, lens);
}

void inbox_send(struct cluster *cl, const char *inst, int nf, const char **fv, const size_t *fl) {
  inbox_send_cb(cl, inst, NULL, NULL, nf, fv, fl);
}

static void on_up(struct cluster *cl) {
  if (!cl->cmd_up || !cl->rd_up) return;
  cl->up_since = now_ms(cl);
  cl->backoff_ms = BACKOFF_MIN_MS;
  log_info("redis_up host=%s port=%d instance=%s", cl->url.host, cl->url.port, cl->inst);
  /* Owners claim their rooms again first (a restarted Redis has no leases),
   * then what was held while Redis was away goes out, in order. */
  struct ptrvec rooms;
  memset(&rooms, 0, sizeof(rooms));
  map_each(&cl->rooms, ptrvec_push, &rooms); /* all of them: a claim's answer may change cl->rooms */
  if (rooms.missed) log_warn("reclaim_short rooms=%zu missed=%zu reason=\"out of memory\"", rooms.n, rooms.missed);
  struct pending *held = cl->pend_head, *held_tail = cl->pend_tail;
  cl->pend_head = cl->pend_tail = NULL; /* the claims go out before what was held */
  for (size_t i = 0; i < rooms.n; i++) {
    struct croom *cr = rooms.v[i];
    if (!cr->owned) continue;
    cr->acquiring = 0;
    croom_resolve(cl, cr);
    cr->dirty = 1;
  }
  ptrvec_free(&rooms);
  if (cl->pend_head == NULL) cl->pend_head = held, cl->pend_tail = held_tail;
  else if (held) held_tail->next = cl->pend_head, cl->pend_head = held; /* cannot happen: Redis is up */
  pending_flush(cl);
  if (!cl->bcast_pos[0] && !cl->bcast_asked) {
    const char *argv[] = {"XREVRANGE", BCAST_KEY, "+", "-", "COUNT", "1"};
    cl->bcast_asked = 1;
    redis_cmd(cl, bcast_end_cb, NULL, 0, 6, argv, NULL);
  }
  reader_issue(cl);
}

static void retry_cb(uv_timer_t *t) {
  struct cluster *cl = t->data;
  if (cl->cmd == NULL) redis_connect(cl, 0);
  if (cl->rd == NULL) redis_connect(cl, 1);
}

static void schedule_retry(struct cluster *cl) {
  if (cl->stopping || uv_is_active((uv_handle_t *)&cl->retry)) return;
  uv_timer_start(&cl->retry, retry_cb, (uint64_t)cl->backoff_ms, 0);
  cl->backoff_ms = backoff_next(cl->backoff_ms);
}

static void auth_cb(redisAsyncContext *ac, void *reply, void *priv) {
  redisReply *r = reply;
  if (r && r->type == REDIS_REPLY_ERROR) log_error("redis_setup_failed step=%s reason=\"%s\"", (const char *)priv, r->str);
}

/* The PING after AUTH and SELECT: the connection is usable only now (a
 * wrong password fails the PING with NOAUTH: dropped and retried). */
static void ready_cb(redisAsyncContext *ac, void *reply, void *priv) {
  struct cluster *cl = the_cluster;
  redisReply *r = reply;
  if (cl == NULL || ac == NULL || r == NULL) return;
  int reader = ac == cl->rd;
  if (r->type == REDIS_REPLY_ERROR) {
    log_error("redis_not_ready reader=%d reason=\"%s\"", reader, r->str);
    redisAsyncDisconnect(ac);
    return;
  }
  if (reader) cl->rd_up = 1;
  else cl->cmd_up = 1, cl->hb_unanswered = 0;
  cl->st.reconnects++;
  on_up(cl);
  if (!reader && cl->cmd_up) heartbeat_send(cl); /* at once: other instances look up our address in it */
}

static void on_connect(const redisAsyncContext *ac, int status) {
  struct cluster *cl = ac->data;
  int reader = ac == cl->rd;
  if (status != REDIS_OK) {
    log_warn("redis_connect_failed reader=%d reason=\"%s\"", reader, ac->errstr);
    if (reader) cl->rd = NULL;
    else cl->cmd = NULL;
    schedule_retry(cl);
    return;
  }
  (void)reader; /* up once ready_cb has its PONG */
}

static void on_disconnect(const redisAsyncContext *ac, int status) {
  struct cluster *cl = ac->data;
  int reader = ac == cl->rd;
  if (reader) cl->rd = NULL, cl->rd_up = 0, cl->reading = 0;
  else cl->cmd = NULL, cl->cmd_up = 0;
  if (cl->stopping) return;
  log_warn("redis_down reader=%d reason=\"%s\"", reader, ac->errstr);
  schedule_retry(cl);
}

/* The shared grant key as Redis holds it: from now on grants are minted
 * and checked with it on every instance. */
static void grantkey_cb(redisAsyncContext *ac, void *reply, void *priv) {
  (void)ac, (void)priv;
  struct cluster *cl = the_cluster;
  redisReply *r = reply;
  unsigned char k[GRANT_KEY_LEN];
  if (cl == NULL || r == NULL || r->type != REDIS_REPLY_STRING || r->len != 2 * GRANT_KEY_LEN) return;
  for (size_t i = 0; i < GRANT_KEY_LEN; i++) {
    unsigned v;
    if (sscanf(r->str + 2 * i, "%2x", &v) != 1) return;
    k[i] = (unsigned char)v;
  }
  if (!cl->grant_loaded || memcmp(k, cl->h->grant_key, GRANT_KEY_LEN) != 0)
    log_info("grant_key_shared instance=%s", cl->inst);
  memcpy(cl->h->grant_key, k, GRANT_KEY_LEN);
  cl->h->grant_key_ready = 1;
  cl->grant_loaded = 1;
}

/* Public-key tokens: the first instance to reach Redis stores a random
 * grant key (SET NX); every instance reads the one stored. After a Redis
 * restart that lost it, the first to come back stores the key all of them
 * had again. Sent before the PING, so the key is known when the command
 * connection counts as up. */
static void grantkey_load(struct cluster *cl, redisAsyncContext *ac) {
  unsigned char k[GRANT_KEY_LEN];
  char hex[2 * GRANT_KEY_LEN + 1], key[KEY_MAX];
  if (cl->grant_loaded) memcpy(k, cl->h->grant_key, GRANT_KEY_LEN);
  else if (RAND_bytes(k, GRANT_KEY_LEN) != 1) return;
  for (size_t i = 0; i < GRANT_KEY_LEN; i++) snprintf(hex + 2 * i, 3, "%02x", k[i]);
  OPENSSL_cleanse(k, sizeof(k));
  key_of(key, "grantkey", "shared");
  redisAsyncCommand(ac, auth_cb, "grantkey", "SET %s %s NX", key, hex);
  redisAsyncCommand(ac, grantkey_cb, NULL, "GET %s", key);
  OPENSSL_cleanse(hex, sizeof(hex));
}

void redis_connect(struct cluster *cl, int reader) {
  redisAsyncContext *ac = redisAsyncConnect(cl->url.host, cl->url.port);
  if (ac == NULL || ac->err) {
    if (ac) redisAsyncFree(ac);
    schedule_retry(cl);
    return;
  }
  ac->data = cl;
  if (redisLibuvAttach(ac, cl->loop) != REDIS_OK) {
    redisAsyncFree(ac);
    schedule_retry(cl);
    return;
  }
  redisAsyncSetConnectCallback(ac, on_connect);
  redisAsyncSetDisconnectCallback(ac, on_disconnect);
  if (cl->url.pass[0]) {
    if (cl->url.user[0]) redisAsyncCommand(ac, auth_cb, "auth", "AUTH %s %s", cl->url.user, cl->url.pass);
    else redisAsyncCommand(ac, auth_cb, "auth", "AUTH %s", cl->url.pass);
  }
  if (cl->url.db) redisAsyncCommand(ac, auth_cb, "select", "SELECT %d", cl->url.db);
  if (!reader && cl->grant_shared) grantkey_load(cl, ac);
  redisAsyncCommand(ac, ready_cb, NULL, "PING");
  if (reader) cl->rd = ac, cl->rd_started = now_ms(cl);
  else cl->cmd = ac, cl->cmd_started = now_ms(cl);
}

/* hiredis 0.14's libuv adapter ignores a poll error, so a refused connect
 * never calls back: an attempt not up within a second is dropped and
 * retried. */
void redis_hb_cb(redisAsyncContext *ac, void *reply, void *priv) {
  (void)priv;
  struct cluster *cl = the_cluster;
  if (cl && ac && reply && ac == cl->cmd) cl->hb_unanswered = 0;
}

void redis_watchdog(struct cluster *cl) {
  uint64_t now = now_ms(cl);
  if (cl->cmd && !cl->cmd_up && now - cl->cmd_started > 1000) {
    redisAsyncContext *ac = cl->cmd;
    cl->cmd = NULL;
    redisAsyncFree(ac);
    schedule_retry(cl);
  }
  /* The same adapter misses a reset of the command connection (a write
   * after Redis closed it: the poll error stops the handle unseen), and
   * then every command on it waits for ever (a REST call's api_call count
   * until the header timeout): a heartbeat unanswered for 5 s means the
   * connection is gone. Its callbacks get NULL (Redis away). */
  if (cl->cmd && cl->cmd_up && cl->hb_unanswered && now - cl->hb_unanswered > 5000) {
    log_warn("redis_cmd_stuck ms=%llu", (unsigned long long)(now - cl->hb_unanswered));
    redisAsyncContext *ac = cl->cmd;
    cl->cmd_up = 0; /* nothing more is sent on it meanwhile (redis_cmd holds or answers NULL) */
    cl->hb_unanswered = 0;
    redisAsyncFree(ac); /* calls on_disconnect, which schedules the retry */
    if (cl->cmd == ac) cl->cmd = NULL, schedule_retry(cl);
    return;
  }
  /* The same adapter misses a reset of the reader's idle socket: an XREAD
   * (BLOCK 2000) without an answer for 5 s means the connection is gone. */
  if (cl->rd && cl->rd_up && cl->reading && now - cl->read_issued > 5000) {
    log_warn("redis_reader_stuck ms=%llu", (unsigned long long)(now - cl->read_issued));
    redisAsyncContext *ac = cl->rd;
    redisAsyncFree(ac); /* calls on_disconnect, which schedules the retry */
    if (cl->rd == ac) cl->rd = NULL, cl->rd_up = 0, cl->reading = 0, schedule_retry(cl);
    return;
  }
  if (cl->rd && !cl->rd_up && now - cl->rd_started > 1000) {
    redisAsyncContext *ac = cl->rd;
    cl->rd = NULL;
    redisAsyncFree(ac);
    schedule_retry(cl);
  }
}
