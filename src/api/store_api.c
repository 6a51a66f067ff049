/* Endpoints that read or change the store: chat history, and the admin
 * export and erasure of one user. Each hands the store a record and
 * answers from its completion (http_defer): the loop never waits for the
 * database, and pipelined requests behind this one wait for the answer. */
#define LOG_MODULE "api"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "net/http.h"
#include "net/server.h"
#include "room/room.h"
#include "store/store.h"

#define HISTORY_LIMIT_DEFAULT 50
#define HISTORY_LIMIT_MAX 200

/* Answers the deferred request on rec's connection with rec's result. */
static void on_read_done(struct store_rec *rec, void *arg) {
  struct conn *c = arg;
  if (!c->closing) {
    if (rec->status == STORE_OK && rec->result)
      http_reply(c, 200, "", "application/json", rec->result, strlen(rec->result));
    else
      http_reply_error(c, API_ERR_STORE_UNAVAILABLE, NULL, 0);
  }
  http_defer_end(c);
}

static void defer_read(struct api_req *r, struct store_rec *rec) {
  rec->done = on_read_done;
  rec->arg = r->conn;
  http_defer(r->conn);
  if (store_read(r->srv->store, rec) != 0) {
    http_reply_error(r->conn, API_ERR_STORE_UNAVAILABLE, NULL, 0);
    http_defer_end(r->conn);
  }
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
  if (api_room_access(r, 0, &ar) != 0) return;
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
  defer_read(r, rec);
}

static void audit_admin(struct api_req *r, const char *action, const char *user) {
  struct store_rec *a = store_rec_new(STORE_AUDIT, "");
  if (a == NULL) return;
  a->ts = server_now_ms();
  snprintf(a->user_id, sizeof(a->user_id), "%s", r->claims.sub);
  snprintf(a->name, sizeof(a->name), "%s", action);
  snprintf(a->target, sizeof(a->target), "%s", user);
  store_submit(r->srv->store, a, 0);
  log_info("admin_%s user=%s by=%s", action, user, r->claims.sub);
}

static int user_param(struct api_req *r, char *user, size_t len) {
  int n = api_param(r, "user_id", user, len);
  if (n < 0 || !id_valid(user, (size_t)n)) {
    api_reply_error(r, API_ERR_BAD_REQUEST, "user_id must be 1-64 of [A-Za-z0-9_.-]");
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
  defer_read(r, rec);
}

static void on_erased(struct store_rec *rec, void *arg) {
  struct conn *c = arg;
  if (!c->closing) {
    if (rec->status == STORE_OK) {
      http_reply_json(c, 200, json_pack("{s:s,s:b,s:s}", "user_id", rec->user_id, "erased", 1, "chat_text",
                                        "replaced by a tombstone"), "");
    } else {
      http_reply_error(c, API_ERR_STORE_UNAVAILABLE, NULL, 0);
    }
  }
  http_defer_end(c);
}

/* POST /webrtc/admin/users/{user_id}/erase */
void api_user_erase(struct api_req *r) {
  char user[ID_MAX + 1];
  if (api_require_admin(r) != 0 || user_param(r, user, sizeof(user)) != 0) return;
  struct store_rec *rec = store_rec_new(STORE_ERASE_USER, NULL);
  if (rec == NULL) {
    api_reply_error(r, API_ERR_INTERNAL_ERROR, NULL);
    return;
  }
  snprintf(rec->user_id, sizeof(rec->user_id), "%s", user);
  rec->ts = server_now_ms();
  rec->done = on_erased;
  rec->arg = r->conn;
  audit_admin(r, "user_erase", user);
  http_defer(r->conn);
  if (store_submit(r->srv->store, rec, 0) != 0) {
    http_reply_error(r->conn, API_ERR_STORE_UNAVAILABLE, NULL, 0);
    http_defer_end(r->conn);
  }
}
