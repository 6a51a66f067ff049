/* Endpoints that read or change the store: chat history, and the admin
 * export and erasure of one user. Each hands the store a record and
 * answers from its completion: the request is held with http_stream_set
 * (a response written later, then http_request_done), so the loop never
 * waits for the database and pipelined requests behind this one wait for
 * the answer. */
#define LOG_MODULE "api"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "cluster/cluster.h"
#include "net/http.h"
#include "net/server.h"
#include "room/durable.h"
#include "room/hub.h"
#include "room/room.h"
#include "store/store.h"

#define HISTORY_LIMIT_DEFAULT 50
#define HISTORY_LIMIT_MAX 200

/* A request answered when the store completes. conn is NULL once the
 * connection went away (on_abort); whoever completes frees the wait. */
struct wait {
  struct conn *conn;
};

static void wait_abort(void *data) { ((struct wait *)data)->conn = NULL; }
/* Never called (the body is complete before the handler runs); being set
 * tells the HTTP layer a handler is still working, so the request is not
 * timed out while the database is slow or down. */
static void wait_working(void *data) { (void)data; }
static const struct http_stream wait_ops = {NULL, wait_working, wait_abort, NULL};

static void wait_begin(struct api_req *r, struct wait *w) {
  w->conn = r->conn;
  http_stream_set(r->conn, &wait_ops, w);
}

/* The connection to answer on, or NULL if it went away or is closing. */
static struct conn *wait_conn(struct wait *w) { return w->conn && !w->conn->closing ? w->conn : NULL; }

/* After the reply (if any): goes on with the next request; frees w. */
static void wait_end(struct wait *w) {
  if (w->conn) http_request_done(w->conn);
  free(w);
}

/* Answers the held request with rec's result. */
static void on_read_done(struct store_rec *rec, void *arg) {
  struct wait *w = arg;
  struct conn *c = wait_conn(w);
  if (c) {
    if (rec->status == STORE_OK && rec->result)
      http_reply(c, 200, "", "application/json", rec->result, strlen(rec->result));
    else
      http_reply_error(c, API_ERR_STORE_UNAVAILABLE, NULL, 0);
  }
  wait_end(w);
}

static void held_read(struct api_req *r, struct store_rec *rec) {
  struct wait *w = calloc(1, sizeof(*w));
  if (w == NULL) {
    store_rec_free(rec);
    api_reply_error(r, API_ERR_INTERNAL_ERROR, NULL);
    return;
  }
  rec->done = on_read_done;
  rec->arg = w;
  if (store_read(r->hub->store, rec) != 0) { /* rec is freed */
    free(w);
    api_reply_error(r, API_ERR_STORE_UNAVAILABLE, NULL);
    return;
  }
  wait_begin(r, w);
}

static int parse_cursor(struct api_req *r, const char *name, uint64_t *out) {
  char v[32];
  int n = api_query(r->query, name, v, sizeof(v));
  *out = 0;
  if (n < 0) return 0;
  if ((*out = store_message_seq(v)) == 0) {
    char detail[64];
    snprintf(detail, sizeof(detail), "%s must be a message_id such as m12", name);
    api_reply_error(r, API_ERR_BAD_REQUEST, detail);
    return -1;
  }
  return 0;
}

/* GET /webrtc/rooms/{room_id}/chat?limit=&before=&after=&q= */
void api_chat_history_get(struct api_req *r) {
  struct api_room ar;
  if (api_room_access(r, CMD_NONE, &ar) != 0) return;
  /* Members only: in the room now, or holding a token for this room
   * (which is how a closed room's members prove they were invited). */
  if (!r->claims.admin && ar.self == NULL && strcmp(r->claims.room, ar.id) != 0) {
    api_reply_error(r, API_ERR_FORBIDDEN, "chat history is for the room's members: use a token for this room");
    return;
  }
  struct store_rec *rec = store_rec_new(STORE_READ_CHAT, ar.id);
  if (rec == NULL) {
    api_reply_error(r, API_ERR_INTERNAL_ERROR, NULL);
    return;
  }
  char v[32];
  rec->query.limit = HISTORY_LIMIT_DEFAULT;
  if (api_query(r->query, "limit", v, sizeof(v)) >= 0) {
    char *end;
    long n = strtol(v, &end, 10);
    if (*end || end == v || n < 1 || n > HISTORY_LIMIT_MAX) {
      store_rec_free(rec);
      api_reply_error(r, API_ERR_BAD_REQUEST, "limit must be 1 to 200");
      return;
    }
    rec->query.limit = (int)n;
  }
  if (parse_cursor(r, "before", &rec->query.before) != 0 || parse_cursor(r, "after", &rec->query.after) != 0) {
    store_rec_free(rec);
    return;
  }
  int ql = api_query(r->query, "q", rec->query.q, sizeof(rec->query.q));
  if (ql == -1 && strstr(r->query, "q=")) {
    store_rec_free(rec);
    api_reply_error(r, API_ERR_BAD_REQUEST, "q is at most 255 bytes");
    return;
  }
  if (ql < 0) rec->query.q[0] = '\0';
  snprintf(rec->user_id, sizeof(rec->user_id), "%s", r->claims.sub);
  rec->value = r->claims.admin;
  held_read(r, rec);
}

static void audit_admin(struct api_req *r, const char *action, const char *user) {
  struct store_rec *a = store_rec_new(STORE_AUDIT, "");
  if (a == NULL) return;
  a->ts = server_now_ms();
  snprintf(a->user_id, sizeof(a->user_id), "%s", r->claims.sub);
  snprintf(a->name, sizeof(a->name), "%s", action);
  snprintf(a->target, sizeof(a->target), "%s", user);
  store_submit(r->hub->store, a, 0);
  log_info("admin_%s user=%s by=%s", action, user, r->claims.sub);
}

/* The user of an export or erase. The reserved ids are nobody's: no token
 * holds them (auth/token.c). "server" is every server message's sender;
 * "anonymous" is what erase leaves in erased users' places, so an export
 * would mix what is left of all of them, and an erase would clear every
 * audit entry that quotes the word. */
static int user_param(struct api_req *r, char *user, size_t len) {
  int n = api_param(r, "user_id", user, len);
  if (n < 0 || !id_valid(user, (size_t)n)) {
    api_reply_error(r, API_ERR_BAD_REQUEST, "user_id must be 1-64 of [A-Za-z0-9_.-]");
    return -1;
  }
  if (token_sub_reserved(user)) {
    api_reply_error(r, API_ERR_BAD_REQUEST, strcmp(user, "server") == 0
                                                ? "user_id \"server\" is reserved for the server's own messages"
                                                : "user_id \"anonymous\" is reserved: it stands for erased users");
    return -1;
  }
  return 0;
}

/* GET /webrtc/admin/users/{user_id}/export */
void api_user_export(struct api_req *r) {
  char user[ID_MAX + 1];
  if (api_require_admin(r) != 0 || user_param(r, user, sizeof(user)) != 0) return;
  struct store_rec *rec = store_rec_new(STORE_READ_EXPORT, NULL);
  if (rec == NULL) {
    api_reply_error(r, API_ERR_INTERNAL_ERROR, NULL);
    return;
  }
  snprintf(rec->user_id, sizeof(rec->user_id), "%s", user);
  audit_admin(r, "user_export", user);
  held_read(r, rec);
}

/* An erase being committed: the request, and the hub for what it clears. */
struct erase_wait {
  struct wait w;             /* first: wait_end frees the erase_wait */
  struct hub *hub;
};

static void on_erased(struct store_rec *rec, void *arg) {
  struct erase_wait *ew = arg;
  struct wait *w = &ew->w;
  /* Whatever the store answered, memory follows the erase through. */
  durable_user_erased(ew->hub, rec->user_id);
  cluster_user_erase(ew->hub->cluster, rec->user_id, 1);
  struct conn *c = wait_conn(w);
  if (c) {
    if (rec->status == STORE_OK) {
      http_reply_json(c, 200, json_pack("{s:s,s:b,s:s}", "user_id", rec->user_id, "erased", 1, "chat_text",
                                        "replaced by a tombstone"), "");
    } else {
      http_reply_error(c, API_ERR_STORE_UNAVAILABLE, NULL, 0);
    }
  }
  wait_end(w);
}

/* POST /webrtc/admin/users/{user_id}/erase */
void api_user_erase(struct api_req *r) {
  char user[ID_MAX + 1];
  if (api_require_admin(r) != 0 || user_param(r, user, sizeof(user)) != 0) return;
  struct store_rec *rec = store_rec_new(STORE_ERASE_USER, NULL);
  struct erase_wait *w = rec ? calloc(1, sizeof(*w)) : NULL;
  if (w == NULL) {
    store_rec_free(rec);
    api_reply_error(r, API_ERR_INTERNAL_ERROR, NULL);
    return;
  }
  snprintf(rec->user_id, sizeof(rec->user_id), "%s", user);
  rec->ts = server_now_ms();
  rec->done = on_erased;
  rec->arg = w;
  w->hub = r->hub;
  audit_admin(r, "user_erase", user);
  /* Memory first: the user's sessions close and rooms drop what they hold
   * about it; what that records (its leaves) is queued before the erase,
   * which then covers it in the store too. */
  durable_user_erase(r->hub, user);
  cluster_user_erase(r->hub->cluster, user, 0); /* the other instances' rooms */
  if (store_submit(r->hub->store, rec, 0) != 0) { /* rec is freed */
    free(w);
    durable_user_erased(r->hub, user);
    cluster_user_erase(r->hub->cluster, user, 1);
    api_reply_error(r, API_ERR_STORE_UNAVAILABLE, NULL);
    return;
  }
  wait_begin(r, &w->w);
}

/* ---- REST lists of rooms no longer in memory (closed and evicted, or
 * from before a restart): the same answers, from the store ---- */

struct fallback {
  struct wait w;             /* first: wait_end frees the fallback */
  enum api_store_view view;
  uint64_t since;
  size_t limit;
  char room_id[ID_MAX + 1];
};

static void copy_if(json_t *dst, const char *to, json_t *src, const char *from, int skip_empty) {
  json_t *v = json_object_get(src, from);
  if (v == NULL || json_is_null(v)) return;
  if (skip_empty && ((json_is_string(v) && json_string_length(v) == 0) ||
                     (json_is_integer(v) && json_integer_value(v) == 0)))
    return;
  json_object_set(dst, to, v);
}

static json_t *media_json(json_t *row, int recording) {
  json_int_t started = json_integer_value(json_object_get(row, "started_at"));
  json_int_t stopped = json_integer_value(json_object_get(row, "stopped_at"));
  /* Still running in the store: the process that ran it is gone. */
  json_t *o = json_pack("{s:O,s:s,s:O,s:I,s:I}", recording ? "recording_id" : "stream_id",
                        json_object_get(row, "id"), "state", stopped ? "stopped" : "interrupted",
                        "started_by", json_object_get(row, "started_by"), "started_at", started,
                        "duration_ms", stopped ? stopped - started : (json_int_t)0);
  if (recording) copy_if(o, "format", row, "detail", 0);
  else {
    copy_if(o, "name", row, "detail", 0);
    copy_if(o, "target", row, "target_redacted", 0);
  }
  if (stopped) {
    json_object_set_new(o, "stopped_at", json_integer(stopped));
    copy_if(o, "stopped_by", row, "stopped_by", 0);
  }
  return o;
}

static json_t *build_view(struct fallback *fb, json_t *res) {
  json_t *items = json_object_get(res, "items");
  size_t n = json_array_size(items);
  json_t *out = NULL, *list = json_array();
  switch (fb->view) {
  case API_STORE_EVENTS:
  case API_STORE_AUDIT: {
    int audit = fb->view == API_STORE_AUDIT;
    size_t first = n > fb->limit ? n - fb->limit : 0;
    for (size_t i = first; i < n; i++) {
      json_t *row = json_array_get(items, i), *o = json_object();
      copy_if(o, "ts", row, "ts", 0);
      copy_if(o, audit ? "action" : "type", row, audit ? "action" : "type", 0);
      copy_if(o, audit ? "actor" : "user_id", row, audit ? "actor" : "user_id", 1);
      copy_if(o, audit ? "target" : "name", row, audit ? "target" : "name", 1);
      if (!audit) copy_if(o, "value", row, "value", 1);
      copy_if(o, audit ? "details" : "data", row, audit ? "details" : "data", 0);
      json_array_append_new(list, o);
    }
    out = json_pack("{s:s,s:o,s:I}", "room_id", fb->room_id, audit ? "entries" : "events", list,
                    audit ? "total" : "total_events", (json_int_t)n);
    break;
  }
  case API_STORE_RECORDINGS:
  case API_STORE_STREAMS: {
    int rec = fb->view == API_STORE_RECORDINGS;
    for (size_t i = 0; i < n; i++) {
      json_t *row = json_array_get(items, i);
      const char *kind = json_string_value(json_object_get(row, "kind"));
      if (kind && strcmp(kind, rec ? "recording" : "stream") == 0) json_array_append_new(list, media_json(row, rec));
    }
    out = rec ? json_pack("{s:s,s:o,s:n}", "room_id", fb->room_id, "recordings", list, "active")
              : json_pack("{s:s,s:o,s:i}", "room_id", fb->room_id, "live_streams", list, "active", 0);
    break;
  }
  case API_STORE_SUMMARY: {
    json_decref(list);
    json_t *s = json_array_get(json_object_get(res, "summary"), 0);
    json_int_t sessions = json_integer_value(json_object_get(s, "total_sessions"));
    json_int_t ms = json_integer_value(json_object_get(s, "session_ms"));
    json_t *quality = json_pack("{s:i,s:i,s:i}", "good", 0, "fair", 0, "poor", 0);
    json_t *qrows = json_object_get(res, "quality");
    for (size_t i = 0; i < json_array_size(qrows); i++) {
      json_t *q = json_array_get(qrows, i);
      const char *name = json_string_value(json_object_get(q, "name"));
      if (name && json_object_get(quality, name)) json_object_set(quality, name, json_object_get(q, "n"));
    }
    json_int_t chat = json_integer_value(json_object_get(s, "chat_messages"));
    out = json_pack("{s:s,s:b,s:I,s:i,s:I,s:I,s:f,s:I,s:I,s:{s:I},s:o,s:I,s:I,s:I}", "room_id", fb->room_id,
                    "live", 0, "created_at", json_integer_value(json_object_get(s, "created_at")),
                    "current_participants", 0, "peak_participants",
                    json_integer_value(json_object_get(s, "peak_participants")), "total_sessions", sessions,
                    "participant_minutes", (double)ms / 60000.0, "average_session_ms",
                    sessions ? ms / sessions : 0, "messages_total", chat, "messages_by_type",
                    "chat-message", chat, "quality_distribution", quality, "custom_events",
                    json_integer_value(json_object_get(s, "custom_events")), "recordings",
                    json_integer_value(json_object_get(s, "recordings")), "live_streams",
                    json_integer_value(json_object_get(s, "live_streams")));
    if (out) copy_if(out, "closed_at", s, "closed_at", 1);
    if (out) json_object_set_new(out, "from_store", json_true());
    break;
  }
  }
  return out;
}

static int view_empty(struct fallback *fb, json_t *res) {
  if (fb->view == API_STORE_SUMMARY) {
    json_t *s = json_array_get(json_object_get(res, "summary"), 0);
    return json_integer_value(json_object_get(s, "known")) == 0;
  }
  return json_integer_value(json_object_get(res, "known")) == 0;
}

static void on_fallback_done(struct store_rec *rec, void *arg) {
  struct fallback *fb = arg;
  struct conn *c = wait_conn(&fb->w);
  if (c) {
    json_t *res = rec->status == STORE_OK && rec->result ? json_loads(rec->result, 0, NULL) : NULL;
    if (res == NULL) http_reply_error(c, API_ERR_STORE_UNAVAILABLE, NULL, 0);
    else if (view_empty(fb, res)) http_reply_error(c, API_ERR_ROOM_NOT_FOUND, NULL, 0);
    else http_reply_json(c, 200, build_view(fb, res), "");
    json_decref(res);
  }
  wait_end(&fb->w);
}

void api_store_room_view(struct api_req *r, const char *room_id, enum api_store_view view, uint64_t since,
                         size_t limit) {
  static const enum store_kind kinds[] = {
    [API_STORE_EVENTS] = STORE_READ_EVENTS, [API_STORE_AUDIT] = STORE_READ_AUDIT,
    [API_STORE_RECORDINGS] = STORE_READ_MEDIA, [API_STORE_STREAMS] = STORE_READ_MEDIA,
    [API_STORE_SUMMARY] = STORE_READ_SUMMARY,
  };
  /* A room open in this process whose history was evicted stays forgotten
   * (--history-rooms, as before persistence); rooms from before a restart
   * come from the store. */
  const struct store_room_meta *meta = store_room_meta(r->hub->store, room_id);
  if (meta && meta->opened_here) {
    api_reply_error(r, API_ERR_ROOM_NOT_FOUND, NULL);
    return;
  }
  struct fallback *fb = calloc(1, sizeof(*fb));
  struct store_rec *rec = fb ? store_rec_new(kinds[view], room_id) : NULL;
  if (rec == NULL) {
    free(fb);
    api_reply_error(r, API_ERR_INTERNAL_ERROR, NULL);
    return;
  }
  fb->view = view;
  fb->since = since;
  fb->limit = limit ? limit : 100;
  snprintf(fb->room_id, sizeof(fb->room_id), "%s", room_id);
  rec->ts = since;
  rec->done = on_fallback_done;
  rec->arg = fb;
  if (store_read(r->hub->store, rec) != 0) { /* rec is freed */
    free(fb);
    api_reply_error(r, API_ERR_STORE_UNAVAILABLE, NULL);
    return;
  }
  wait_begin(r, &fb->w);
}
