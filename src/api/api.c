/* REST route table and dispatch (see api.h). */
#define LOG_MODULE "api"
#include "log.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api.h"
#include "files/files.h"
#include "net/http.h"
#include "net/proxy.h"
#include "net/server.h"
#include "net/static.h"
#include "room/hub.h"
#include "room/op.h"
#include "room/policy.h"
#include "room/room.h"

struct route {
  int method;           /* enum http_method */
  const char *pattern;
  enum api_auth auth;
  int rated;            /* counts against api_call */
  api_handler handler;
};

#define RB "/webrtc/rooms/{room_id}"

/* One row per endpoint; the seed's numbering in comments. */
static const struct route routes[] = {
  {HTTP_GET, "/webrtc/ws/{room_id}", API_AUTH_NONE, 0, api_ws_connect},                   /* 1 */
  {HTTP_GET, "/webrtc/config", API_AUTH_OPTIONAL, 1, api_config_get},                     /* 2 */
  {HTTP_GET, RB "/participants", API_AUTH_REQUIRED, 1, api_participants_list},            /* 3 */
  {HTTP_GET, RB "/participants/enhanced", API_AUTH_REQUIRED, 1, api_participants_enhanced}, /* 4 */
  {HTTP_POST, RB "/participants/{user_id}/info", API_AUTH_REQUIRED, 1, api_participant_info_update}, /* 5 */
  {HTTP_POST, RB "/participants/{user_id}/remove", API_AUTH_REQUIRED, 1, api_participant_remove},
  {HTTP_POST, RB "/roles/{user_id}", API_AUTH_REQUIRED, 1, api_role_set},                 /* 6 */
  {HTTP_GET, RB "/roles/{user_id}", API_AUTH_REQUIRED, 1, api_role_get},                  /* 7 */
  {HTTP_POST, RB "/permissions/{user_id}", API_AUTH_REQUIRED, 1, api_permissions_set},    /* 8 */
  {HTTP_GET, RB "/permissions/{user_id}", API_AUTH_REQUIRED, 1, api_permissions_get},     /* 9 */
  {HTTP_GET, RB "/analytics", API_AUTH_REQUIRED, 1, api_analytics_get},                   /* 10 */
  {HTTP_GET, RB "/analytics/summary", API_AUTH_REQUIRED, 1, api_analytics_summary_get},   /* 11 */
  {HTTP_POST, RB "/recordings/start", API_AUTH_REQUIRED, 1, api_recordings_start},        /* 12 */
  {HTTP_POST, RB "/recordings/{recording_id}/stop", API_AUTH_REQUIRED, 1, api_recordings_stop}, /* 13 */
  {HTTP_GET, RB "/recordings", API_AUTH_REQUIRED, 1, api_recordings_list},                /* 14 */
  {HTTP_GET, RB "/settings", API_AUTH_REQUIRED, 1, api_settings_get},                     /* 15 */
  {HTTP_POST, RB "/settings", API_AUTH_REQUIRED, 1, api_settings_update},                 /* 16 */
  {HTTP_POST, RB "/hand-raise", API_AUTH_REQUIRED, 1, api_hand_raise},                    /* 17 */
  {HTTP_GET, RB "/hand-raise/queue", API_AUTH_REQUIRED, 1, api_hand_queue_get},           /* 18 */
  {HTTP_GET, RB "/waiting-room", API_AUTH_REQUIRED, 1, api_waiting_list},                 /* 19 */
  {HTTP_POST, RB "/waiting-room/{user_id}/admit", API_AUTH_REQUIRED, 1, api_waiting_admit}, /* 20 */
  {HTTP_POST, RB "/waiting-room/{user_id}/reject", API_AUTH_REQUIRED, 1, api_waiting_reject}, /* 21 */
  {HTTP_POST, RB "/breakout-rooms", API_AUTH_REQUIRED, 1, api_breakouts_create},          /* 22 */
  {HTTP_POST, RB "/breakout-rooms/{breakout_room_id}/assign/{user_id}", API_AUTH_REQUIRED, 1, api_breakouts_assign}, /* 23 */
  {HTTP_DELETE, RB "/breakout-rooms/{breakout_room_id}", API_AUTH_REQUIRED, 1, api_breakouts_close}, /* 24 */
  {HTTP_GET, RB "/audit", API_AUTH_REQUIRED, 1, api_audit_get},
  {HTTP_POST, RB "/live-streams/start", API_AUTH_REQUIRED, 1, api_live_streams_start},    /* 25 */
  {HTTP_POST, RB "/live-streams/{stream_id}/stop", API_AUTH_REQUIRED, 1, api_live_streams_stop}, /* 26 */
  {HTTP_GET, RB "/live-streams", API_AUTH_REQUIRED, 1, api_live_streams_list},            /* 27 */
  {HTTP_GET, "/webrtc/health", API_AUTH_NONE, 0, api_health_get},                         /* 28 */
  {HTTP_GET, "/webrtc/webrtc-metrics", API_AUTH_REQUIRED, 1, api_webrtc_metrics_get},     /* 29 */
  {HTTP_GET, "/webrtc/stats", API_AUTH_REQUIRED, 1, api_stats_get},                       /* 30 */
  {HTTP_GET, "/webrtc/rate-limits/{limit_type}/status", API_AUTH_REQUIRED, 0, api_rate_limit_status_get}, /* 31 */
  {HTTP_GET, "/metrics", API_AUTH_NONE, 1, api_metrics_prometheus_get},
  {HTTP_POST, "/webrtc/rooms", API_AUTH_REQUIRED, 1, api_rooms_create},
  {HTTP_GET, "/webrtc/rooms", API_AUTH_REQUIRED, 1, api_rooms_list},
  {HTTP_GET, RB, API_AUTH_REQUIRED, 1, api_rooms_get},
  {HTTP_DELETE, RB, API_AUTH_REQUIRED, 1, api_rooms_delete},
  {HTTP_GET, RB "/validate", API_AUTH_NONE, 1, api_rooms_validate},
  {HTTP_GET, "/webrtc/openapi.json", API_AUTH_NONE, 1, api_openapi_get},
  {HTTP_POST, "/webrtc/dev/token", API_AUTH_NONE, 1, api_dev_token_create},
  /* Shared files: tus 1.0 uploads and downloads (src/files/files.c). */
  {HTTP_OPTIONS, RB "/files/", API_AUTH_NONE, 0, files_api_options},
  {HTTP_OPTIONS, RB "/files", API_AUTH_NONE, 0, files_api_options},
  {HTTP_POST, RB "/files/", API_AUTH_REQUIRED, 1, files_api_create},
  {HTTP_POST, RB "/files", API_AUTH_REQUIRED, 1, files_api_create},
  {HTTP_HEAD, RB "/files/{file_id}", API_AUTH_REQUIRED, 0, files_api_head},
  {HTTP_PATCH, RB "/files/{file_id}", API_AUTH_REQUIRED, 0, files_api_patch},
  {HTTP_DELETE, RB "/files/{file_id}", API_AUTH_REQUIRED, 1, files_api_delete},
  {HTTP_GET, RB "/files/{file_id}", API_AUTH_REQUIRED, 1, files_api_download},
  /* Persistence: chat history and the admin export/erase (src/api/store_api.c). */
  {HTTP_GET, RB "/chat", API_AUTH_REQUIRED, 1, api_chat_history_get},
  {HTTP_GET, "/webrtc/admin/users/{user_id}/export", API_AUTH_REQUIRED, 1, api_user_export},
  {HTTP_POST, "/webrtc/admin/users/{user_id}/erase", API_AUTH_REQUIRED, 1, api_user_erase},
};

#define NROUTES (sizeof(routes) / sizeof(routes[0]))

size_t api_route_count(void) { return NROUTES; }

int api_route_at(size_t i, const char **method, const char **pattern, int *auth) {
  if (i >= NROUTES) return -1;
  *method = http_method_str((enum http_method)routes[i].method);
  *pattern = routes[i].pattern;
  *auth = (int)routes[i].auth;
  return 0;
}

/* Handlers called with the head, before the body: they stream it. */
static int at_head(api_handler h) { return h == files_api_patch; }

int api_param(const struct api_req *r, const char *name, char *out, size_t out_len) {
  size_t nl = strlen(name);
  for (int i = 0; i < r->nparams; i++) {
    const struct router_param *p = &r->params[i];
    if (p->name_len == nl && memcmp(p->name, name, nl) == 0) {
      if (p->value_len + 1 > out_len) return -1;
      memcpy(out, p->value, p->value_len);
      out[p->value_len] = '\0';
      return (int)p->value_len;
    }
  }
  return -1;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int api_query(const char *query, const char *name, char *out, size_t out_len) {
  size_t nl = strlen(name);
  const char *p = query;
  while (p && *p) {
    const char *amp = strchr(p, '&');
    const char *end = amp ? amp : p + strlen(p);
    if ((size_t)(end - p) > nl && strncmp(p, name, nl) == 0 && p[nl] == '=') {
      size_t o = 0;
      for (const char *s = p + nl + 1; s < end; s++) {
        char ch = *s;
        if (ch == '%' && s + 2 < end && hexval(s[1]) >= 0 && hexval(s[2]) >= 0) {
          ch = (char)(hexval(s[1]) * 16 + hexval(s[2]));
          s += 2;
        } else if (ch == '+') {
          ch = ' ';
        }
        if (o + 1 >= out_len) return -1;
        out[o++] = ch;
      }
      out[o] = '\0';
      return (int)o;
    }
    p = amp ? amp + 1 : NULL;
  }
  return -1;
}

void api_reply_json(struct api_req *r, int status, json_t *body) {
  http_reply_json(r->conn, status, body, "");
}

void api_reply_error(struct api_req *r, enum api_err e, const char *detail) {
  log_debug("api_error path=%.*s code=%s", (int)r->path_len, r->path, api_err_code(e));
  if ((int)e > 0 && e < API_ERR__COUNT) r->hub->stats.errors_by_code[e]++;
  http_reply_error(r->conn, e, detail, 0);
}

int api_require_admin(struct api_req *r) {
  if (r->authed && r->claims.admin) return 0;
  api_reply_error(r, API_ERR_FORBIDDEN, "an admin token is needed");
  return -1;
}

int api_room_access(struct api_req *r, enum command_id cmd, struct api_room *out) {
  memset(out, 0, sizeof(*out));
  int n = api_param(r, "room_id", out->id, sizeof(out->id));
  if (n < 0 || !id_valid(out->id, (size_t)n)) {
    api_reply_error(r, API_ERR_INVALID_ROOM_ID, NULL);
    return -1;
  }
  if (!r->claims.admin && r->claims.room[0] && strcmp(r->claims.room, out->id) != 0) {
    api_reply_error(r, API_ERR_TOKEN_ROOM_MISMATCH, NULL);
    return -1;
  }
  out->room = hub_room_find(r->hub, out->id);
  out->hist = history_find(&r->hub->history, out->id);
  char sess[16]; /* earlier sessions of a reused room id: admins only */
  if (r->claims.admin && out->hist && api_query(r->query, "session", sess, sizeof(sess)) > 0 &&
      (out->hist = history_session(out->hist, (unsigned)strtoul(sess, NULL, 10))) == NULL) {
    api_reply_error(r, API_ERR_ROOM_NOT_FOUND, "no such session of this room");
    return -1;
  }
  if (out->room && !r->claims.admin && map_get(&out->room->banned, r->claims.sub)) {
    /* Removed from the room: its token no longer speaks for it there. */
    api_reply_error(r, API_ERR_USER_BANNED, NULL);
    return -1;
  }
  struct participant *p = out->room ? room_participant_find(out->room, r->claims.sub) : NULL;
  policy_apply(r->hub, out->id, &r->claims); /* changes made in the room outrank the token */
  out->self = p;
  out->role = p ? p->role : r->claims.admin ? ROOM_ROLE_HOST : r->claims.role;
  if (r->claims.admin) out->perms = ~0u;
  else if (p) out->perms = p->perms;
  else out->perms = (perm_role_defaults(r->claims.role) & ~r->claims.perms_set) |
                    (r->claims.perms_val & r->claims.perms_set);
  struct actor a = api_actor(r, out);
  enum api_err e = command_authorize(r->hub, cmd, &a, COMMAND_PERM, NULL, NULL);
  if (e != API_OK) {
    api_reply_error(r, e, NULL);
    return -1;
  }
  const char *why; /* waiting, turned away, or banned from the family: nothing of the room */
  enum api_err pe = policy_rest_gate(r->hub, out->room, &r->claims, p != NULL, &why);
  if (pe != API_OK) {
    api_reply_error(r, pe, why);
    return -1;
  }
  return 0;
}

struct actor api_actor(const struct api_req *r, const struct api_room *ar) {
  struct actor a = {r->claims.sub, ar->role, ar->perms, r->claims.admin};
  return a;
}

int api_command_budget(struct api_req *r, enum command_id cmd, const struct api_room *ar) {
  struct actor a = api_actor(r, ar);
  int64_t retry = 0;
  int rc = 0;
  if (command_authorize(r->hub, cmd, &a, COMMAND_RATE, &retry, &rc) == API_OK) return 0;
  char detail[120];
  api_rate_detail(r->hub, (enum rate_class)rc, detail, sizeof(detail));
  http_reply_error(r->conn, API_ERR_RATE_LIMIT_EXCEEDED, detail, retry);
  return -1;
}

void api_rate_detail(const struct hub *h, enum rate_class rc, char *out, size_t out_len) {
  snprintf(out, out_len, "limit %s: %u per %llu ms", ratelimit_class_name(rc), h->rl.rules[rc].limit,
           (unsigned long long)h->rl.rules[rc].window_ms);
}

void api_reply_rate_limited(struct api_req *r, enum rate_class rc, int64_t retry_after_ms) {
  char detail[120];
  api_rate_detail(r->hub, rc, detail, sizeof(detail));
  r->hub->stats.errors_by_code[API_ERR_RATE_LIMIT_EXCEEDED]++;
  http_reply_error(r->conn, API_ERR_RATE_LIMIT_EXCEEDED, detail, retry_after_ms);
}


json_t *api_body_object(struct api_req *r) {
  const struct buf *body = &r->conn->req->body;
  if (body->len == 0) return json_object();
  const struct buf *ct = &r->conn->req->hdr[HDR_CONTENT_TYPE];
  if (ct->len < 16 || strncasecmp(ct->data, "application/json", 16) != 0) {
    api_reply_error(r, API_ERR_UNSUPPORTED_MEDIA_TYPE, NULL);
    return NULL;
  }
  enum api_err e;
  char detail[200];
  json_t *j = jsonx_parse(body->data, body->len, &r->srv->json_limits, &e, detail, sizeof(detail));
  if (j == NULL) {
    api_reply_error(r, e, detail);
    return NULL;
  }
  if (!json_is_object(j)) {
    json_decref(j);
    api_reply_error(r, API_ERR_INVALID_MESSAGE, "the body must be a JSON object");
    return NULL;
  }
  return j;
}

/* Finds the token: "Authorization: Bearer" first, then (WebSocket only) the
 * "token" query parameter. Returns API_OK with r->claims filled, or why not. */
static enum api_err authenticate(struct api_req *r, int allow_query) {
  struct conn *c = r->conn;
  char tok[8192];
  const struct buf *auth = &c->req->hdr[HDR_AUTHORIZATION];
  const char *jwt = NULL;
  if (auth->len) {
    if (auth->len < 8 || strncasecmp(auth->data, "Bearer ", 7) != 0) return API_ERR_INVALID_TOKEN;
    jwt = auth->data + 7;
    while (*jwt == ' ') jwt++;
  } else if (allow_query && api_query(r->query, "token", tok, sizeof(tok)) > 0) {
    jwt = tok;
  } else if (allow_query && api_query(r->query, "token", tok, sizeof(tok)) == -1 &&
             strstr(r->query, "token=")) {
    return API_ERR_INVALID_TOKEN; /* present but too long */
  }
  if (jwt == NULL) return API_ERR_UNAUTHORIZED;
  const char *why = NULL;
  enum api_err e = token_verify_why(&r->srv->tokens, jwt, (int64_t)(server_now_ms() / 1000), &r->claims, &why);
  if (e == API_OK) r->authed = 1;
  else if (why) snprintf(r->detail, sizeof(r->detail), "%s", why);
  return e;
}

enum api_err api_authenticate(struct api_req *r) {
  enum api_err e = authenticate(r, 0);
  return e;
}

/* Sets up r for connection c's request head and finds its route (a HEAD
 * request matches a GET route when head_as_get). NULL: no route or no path. */
static const struct route *head_route(struct conn *c, struct api_req *r, int head_as_get) {
  memset(r, 0, sizeof(*r));
  r->conn = c;
  r->srv = c->srv;
  r->hub = c->srv->handlers.data;
  r->query = "";
  struct http_parser_url u;
  http_parser_url_init(&u);
  const char *url = c->req->url.data ? c->req->url.data : "";
  if (http_parser_parse_url(url, c->req->url.len, 0, &u) != 0 || !(u.field_set & (1 << UF_PATH))) return NULL;
  r->path = url + u.field_data[UF_PATH].off;
  r->path_len = u.field_data[UF_PATH].len;
  int method = (int)c->req->parser.method;
  for (size_t i = 0; i < NROUTES; i++) {
    struct router_param params[ROUTER_MAX_PARAMS];
    if ((method == routes[i].method || (head_as_get && method == HTTP_HEAD && routes[i].method == HTTP_GET)) &&
        router_match(routes[i].pattern, r->path, r->path_len, params, ROUTER_MAX_PARAMS) >= 0)
      return &routes[i];
  }
  return NULL;
}

int api_call_key(struct conn *c, char *key, size_t n) {
  struct api_req r;
  const struct route *hit = head_route(c, &r, 1);
  if (hit == NULL || !hit->rated) return -1;
  if (hit->auth != API_AUTH_NONE) authenticate(&r, 0);
  snprintf(key, n, "%s%s", r.authed ? "" : "ip:", r.authed ? r.claims.sub : c->ip);
  return 0;
}

int api_request_subject(struct conn *c, char *sub, size_t n) {
  struct api_req r;
  const struct route *hit = head_route(c, &r, 1);
  if (hit == NULL || hit->auth == API_AUTH_NONE || authenticate(&r, 0) != API_OK) return -1;
  snprintf(sub, n, "%s", r.claims.sub);
  return 0;
}

int api_request_charge(struct conn *c, char *sub, size_t n, enum rate_class *rc, unsigned *units) {
  struct api_req r;
  const struct route *hit = head_route(c, &r, 0);
  if (hit == NULL) return 0;
  api_handler h = hit->handler;
  *units = 1;
  if (h == api_rooms_create || h == api_breakouts_create || h == api_rooms_validate) *rc = RATE_ROOM_CREATE;
  else if (h == api_settings_update || h == api_role_set || h == api_permissions_set) *rc = RATE_SETTINGS_UPDATE;
  else if (h == api_hand_raise) *rc = RATE_HAND_RAISE;
  else if (h == files_api_create) *rc = RATE_FILE_SHARE;
  else return 0;
  if (r.hub->rl.rules[*rc].limit == 0 || r.hub->rl.rules[*rc].window_ms == 0) return 0;
  char query[8192 + 64] = "";
  const char *url = c->req->url.data ? c->req->url.data : "";
  const char *q = memchr(url, '?', c->req->url.len);
  if (q) snprintf(query, sizeof(query), "%.*s", (int)(c->req->url.len - (size_t)(q + 1 - url)), q + 1);
  r.query = query;
  if (h == api_rooms_validate) {
    char grant[GRANT_MAX + 1];
    if (api_query(r.query, "grant", grant, sizeof(grant)) > 0) return 0; /* a move spends no room_create */
    *units = 0;
  } else if (h == api_breakouts_create) {
    json_t *body = c->req->body.len ? json_loadb(c->req->body.data, c->req->body.len, 0, NULL) : NULL;
    size_t k = op_breakout_units(body);
    json_decref(body);
    if (k == 0) return 0;
    *units = (unsigned)(k < ROOM_MAX_BREAKOUTS ? k : ROOM_MAX_BREAKOUTS);
  }
  if (authenticate(&r, h == api_rooms_validate) != API_OK) return 0;
  snprintf(sub, n, "%s", r.claims.sub);
  return 1;
}

void api_dispatch(struct conn *c) {
  if (proxy_resolve(c) != 0) return; /* behind a trusted proxy: its client's address */
  struct api_req r;
  memset(&r, 0, sizeof(r));
  r.conn = c;
  r.srv = c->srv;
  r.hub = c->srv->handlers.data;
  struct http_parser_url u;
  http_parser_url_init(&u);
  const char *url = c->req->url.data ? c->req->url.data : "";
  if (http_parser_parse_url(url, c->req->url.len, 0, &u) != 0 || !(u.field_set & (1 << UF_PATH))) {
    http_reply_error(c, API_ERR_BAD_REQUEST, "request target", 0);
    return;
  }
  r.path = url + u.field_data[UF_PATH].off;
  r.path_len = u.field_data[UF_PATH].len;
  char query[8192 + 64] = "";
  if (u.field_set & (1 << UF_QUERY)) {
    size_t ql = u.field_data[UF_QUERY].len;
    if (ql >= sizeof(query)) ql = sizeof(query) - 1;
    memcpy(query, url + u.field_data[UF_QUERY].off, ql);
    query[ql] = '\0';
  }
  r.query = query;

  const struct route *hit = NULL;
  char allow[128] = "";
  for (size_t i = 0; i < NROUTES; i++) {
    struct router_param params[ROUTER_MAX_PARAMS];
    int n = router_match(routes[i].pattern, r.path, r.path_len, params, ROUTER_MAX_PARAMS);
    if (n < 0) continue;
    int method = (int)c->req->parser.method;
    if (method == routes[i].method || (method == HTTP_HEAD && routes[i].method == HTTP_GET)) {
      hit = &routes[i];
      memcpy(r.params, params, sizeof(params));
      r.nparams = n;
      break;
    }
    size_t al = strlen(allow);
    snprintf(allow + al, sizeof(allow) - al, "%s%s", al ? ", " : "",
             http_method_str((enum http_method)routes[i].method));
  }
  /* The log names the path only: a query string may carry a token. */
  log_debug("request method=%s path=%.*s", http_method_str(c->req->parser.method), (int)r.path_len, r.path);
  if (hit == NULL) {
    if (!allow[0] && static_serve(c, r.path, r.path_len)) return; /* web app and SDK */
    if (allow[0]) http_reply_error(c, API_ERR_METHOD_NOT_ALLOWED, allow, 0);
    else http_reply_error(c, API_ERR_NOT_FOUND, NULL, 0);
    return;
  }
  enum api_err auth_err = API_OK;
  if (hit->auth != API_AUTH_NONE) {
    auth_err = authenticate(&r, 0);
    if (auth_err == API_ERR_UNAUTHORIZED && hit->auth == API_AUTH_OPTIONAL) auth_err = API_OK;
  }
  if (hit->rated) {
    /* api_call: per user with a token, per address without one. */
    char key[ID_MAX + 64];
    snprintf(key, sizeof(key), "%s%s", r.authed ? "" : "ip:", r.authed ? r.claims.sub : c->ip);
    struct ratelimit_result rr;
    hub_rate_check(r.hub, key, RATE_API_CALL, &rr);
    if (!rr.allowed) {
      r.hub->stats.ratelimit_hits[RATE_API_CALL]++;
      r.hub->stats.errors_by_code[API_ERR_RATE_LIMIT_EXCEEDED]++;
      char detail[120];
      api_rate_detail(r.hub, RATE_API_CALL, detail, sizeof(detail));
      http_reply_error(c, API_ERR_RATE_LIMIT_EXCEEDED, detail, (int64_t)rr.retry_after_ms);
      return;
    }
  }
  /* Refused tokens count against the caller's address first (above). */
  if (auth_err != API_OK) {
    api_reply_error(&r, auth_err, r.detail[0] ? r.detail : NULL);
    return;
  }
  hit->handler(&r);
}

/* The head of a request with a body, before any body byte is read: a route
 * that streams its body is dispatched now; a token that would be refused is
 * refused now (the connection closes, the body is never read); any other
 * body is buffered up to the JSON cap. */
void api_http_head(struct conn *c) {
  const struct config *cfg = c->srv->cfg;
  size_t cap = (size_t)cfg->max_json_body_bytes;
  if (cap > (size_t)cfg->max_body_bytes) cap = (size_t)cfg->max_body_bytes;
  c->req->body_cap = cap;
  struct api_req r;
  const struct route *hit = head_route(c, &r, 0);
  if (hit == NULL) return;
  if (at_head(hit->handler)) {
    api_dispatch(c);
    return;
  }
  if (hit->auth == API_AUTH_NONE) return;
  enum api_err e = authenticate(&r, 0);
  if (e != API_OK && !(e == API_ERR_UNAUTHORIZED && hit->auth == API_AUTH_OPTIONAL))
    api_dispatch(c); /* the same refusal (and rate accounting) as after a body */
}

/* ---- WS /webrtc/ws/{room_id} ---- */

#include "cluster/cluster.h"
#include "net/ws.h"

static api_ws_join_cb ws_join; /* main.c: the signaling layer's join */

void api_ws_join_register(api_ws_join_cb cb) { ws_join = cb; }

/* The resume parameters of an upgrade (resume_token, last_seq). */
static int ws_resume_params(struct api_req *r, char *rt, size_t rt_len, uint64_t *last_seq) {
  char ls[24];
  int has_rt = api_query(r->query, "resume_token", rt, rt_len) > 0;
  *last_seq = UINT64_MAX;
  if (api_query(r->query, "last_seq", ls, sizeof(ls)) > 0 && ls[0] >= '0' && ls[0] <= '9') {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(ls, &end, 10);
    if (errno == 0 && *end == '\0' && v < UINT64_MAX) *last_seq = v;
  }
  return has_rt;
}

static enum api_err ws_authenticate(struct api_req *r, const char *room_id, int spend, int *granted);
static enum api_err ws_admit(struct api_req *r, const char *room_id, int spend, int granted,
                             int64_t *retry_after_ms);
static void ws_policy(struct api_req *r, const char *room_id, int granted);

static int cluster_ws_open_req(struct api_req *r, const char *room_id, int granted) {
  char rt[80];
  uint64_t last_seq;
  char grant[GRANT_MAX + 1] = "";
  int has_rt = ws_resume_params(r, rt, sizeof(rt), &last_seq);
  if (granted && api_query(r->query, "grant", grant, sizeof(grant)) <= 0) grant[0] = '\0';
  return cluster_ws_open(r->hub, r->conn, room_id, &r->claims, granted, has_rt ? rt : NULL, last_seq, grant);
}

void api_ws_connect(struct api_req *r) {
  struct conn *c = r->conn;
  char room_id[ID_MAX + 2];
  enum api_err e = ws_handshake_check(c);
  if (e != API_OK) {
    if (e == API_ERR_UPGRADE_REQUIRED) {
      c->req->complete = 1;
      http_reply_error(c, e, NULL, 0);
    } else {
      api_reply_error(r, e, "invalid WebSocket handshake");
    }
    return;
  }
  int n = api_param(r, "room_id", room_id, sizeof(room_id));
  if (n < 0 || !id_valid(room_id, (size_t)n)) { api_reply_error(r, API_ERR_INVALID_ROOM_ID, NULL); return; }
  int granted = 0;
  int64_t retry = 0;
  e = ws_authenticate(r, room_id, 1, &granted);
  /* Several instances: the room's owner admits (src/cluster). */
  if (e == API_OK && r->hub->cluster && cluster_ws_open_req(r, room_id, granted)) return;
  if (e == API_OK) ws_policy(r, room_id, granted);
  if (e == API_OK) e = ws_admit(r, room_id, 1, granted, &retry);
  if (e != API_OK) {
    log_info("ws_refused room=%s ip=%s user=%s code=%s", room_id, c->ip, r->claims.sub, api_err_code(e));
    r->hub->stats.errors_by_code[e]++;
    http_reply_error(c, e, r->detail[0] ? r->detail : NULL, retry);
    return;
  }
  /* Resume: the member's resume_token and the last seq it processed. */
  char rt[80], ls[24];
  int has_rt = api_query(r->query, "resume_token", rt, sizeof(rt)) > 0;
  uint64_t last_seq = UINT64_MAX;
  if (api_query(r->query, "last_seq", ls, sizeof(ls)) > 0 && ls[0] >= '0' && ls[0] <= '9') {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(ls, &end, 10);
    if (errno == 0 && *end == '\0' && v < UINT64_MAX) last_seq = v;
  }
  if (ws_accept(c) != 0) return;
  ws_join(c, room_id, &r->claims, granted, has_rt ? rt : NULL, last_seq);
}

/* The first half of admission: a token or a grant (set r->claims); a grant is
 * spent only with spend (the upgrade), validate peeks. */
static enum api_err ws_authenticate(struct api_req *r, const char *room_id, int spend, int *granted) {
  *granted = 0;
  r->detail[0] = '\0';
  if (r->srv->shutting_down) return API_ERR_SHUTTING_DOWN;
  /* A grant (a move into or out of a breakout room) stands in for a token. */
  char grant[GRANT_MAX + 1];
  enum api_err e;
  *granted = api_query(r->query, "grant", grant, sizeof(grant)) > 0;
  if (*granted) {
    /* validate only peeks; several instances: the owner checks the family */
    e = spend && r->hub->cluster ? cluster_grant_precheck(r->hub, grant, room_id, &r->claims)
                                 : op_grant_check(r->hub, grant, room_id, &r->claims, spend);
    if (e == API_OK) r->authed = 1;
  } else {
    e = authenticate(r, 1);
  }
  return e;
}

/* Changes made in the room outrank the token (a grant's claims have them
 * already). Applied where the room is: here on a single instance or on the
 * room's owner; an upgrade sent on to another instance carries the token's
 * claims and the owner applies them (cluster/owner.c owner_join). */
static void ws_policy(struct api_req *r, const char *room_id, int granted) {
  if (!granted) policy_apply(r->hub, room_id, &r->claims);
}

/* The second half: the room's capacity, lock, bans and limits. */
static enum api_err ws_admit(struct api_req *r, const char *room_id, int spend, int granted,
                             int64_t *retry_after_ms) {
  enum api_err e;
  *retry_after_ms = 0;
  e = spend ? hub_admission_check(r->hub, room_id, &r->claims, granted, retry_after_ms)
            : hub_admission_peek(r->hub, room_id, &r->claims, granted, retry_after_ms);
  if (e == API_ERR_TOKEN_ROOM_MISMATCH || e == API_ERR_RATE_LIMIT_EXCEEDED)
    api_admission_detail(r->hub, e, &r->claims, r->detail, sizeof(r->detail));
  return e;
}

void api_admission_detail(const struct hub *h, enum api_err e, const struct token_claims *claims, char *out,
                          size_t out_len) {
  out[0] = '\0';
  if (e == API_ERR_TOKEN_ROOM_MISMATCH)
    snprintf(out, out_len, "room binding: the token is for room '%s'", claims->room);
  else if (e == API_ERR_RATE_LIMIT_EXCEEDED)
    api_rate_detail(h, RATE_ROOM_CREATE, out, out_len);
}

enum api_err api_ws_admission(struct api_req *r, const char *room_id, int spend, int *granted,
                              int64_t *retry_after_ms) {
  *retry_after_ms = 0;
  enum api_err e = ws_authenticate(r, room_id, spend, granted);
  if (e != API_OK) return e;
  ws_policy(r, room_id, *granted);
  return ws_admit(r, room_id, spend, *granted, retry_after_ms);
}
