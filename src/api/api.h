/* The REST adapter over the room domain: the route table (method, path
 * pattern, auth, handler), token extraction, the WebSocket upgrade's HTTP
 * half, and the one place REST error replies are written. Handlers parse a
 * request into the arguments of a room operation (room/op.h) and check its
 * command (room/command.h) exactly as the WebSocket adapter does. Owns
 * nothing beyond a request. */
#ifndef HUDDLE_API_API_H
#define HUDDLE_API_API_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/token.h"
#include "guard/errors.h"
#include "net/router.h"
#include "room/command.h"
#include "room/history.h"

struct conn;
struct server;

enum api_auth {
  API_AUTH_NONE,      /* no token looked at */
  API_AUTH_OPTIONAL,  /* a valid token adds to the answer; a bad one is refused */
  API_AUTH_REQUIRED,
};

struct api_req {
  struct conn *conn;                          /* borrowed */
  struct server *srv;                         /* borrowed */
  struct hub *hub;                            /* borrowed: the room domain (the handlers' data) */
  const char *path;                           /* borrowed, not NUL-terminated */
  size_t path_len;
  const char *query;                          /* borrowed, NUL-terminated, "" if none */
  struct router_param params[ROUTER_MAX_PARAMS];
  int nparams;
  int authed;                                 /* claims hold a verified token */
  struct token_claims claims;
  char detail[160];                           /* why a token or admission was refused, or "" */
};

typedef void (*api_handler)(struct api_req *r);

/* What takes over an accepted WebSocket upgrade (the signaling layer's
 * join; main.c registers it): the room, the verified claims, whether a
 * breakout grant admitted it, and the resume parameters. */
typedef void (*api_ws_join_cb)(struct conn *c, const char *room_id, const struct token_claims *claims,
                               int admitted, const char *resume_token, uint64_t last_seq);
void api_ws_join_register(api_ws_join_cb cb);

/* Handles the complete request on c: routes it, authenticates per route and
 * calls the handler, or answers 404/405/401. */
void api_dispatch(struct conn *c);
/* The net layer's head handler (conn_handlers.head): runs before a body is read. */
void api_http_head(struct conn *c);

/* Copies parameter name into out (NUL-terminated). Returns its length or -1
 * if missing or longer than out_len - 1. */
int api_param(const struct api_req *r, const char *name, char *out, size_t out_len);
/* Finds query parameter name; copies its percent-decoded value. Returns the
 * length, or -1 if absent or too long. */
int api_query(const char *query, const char *name, char *out, size_t out_len);

void api_reply_json(struct api_req *r, int status, json_t *body);
void api_reply_error(struct api_req *r, enum api_err e, const char *detail);

/* The caller's standing in a room, for room endpoints. */
struct api_room {
  char id[ID_MAX + 1];
  struct room *room;               /* the live room, or NULL */
  struct room_history *hist;       /* its history, or NULL if it never existed */
  uint32_t perms;                  /* the caller's effective PERM_* bits */
  enum room_role role;             /* the caller's live (or token) role */
  struct participant *self;        /* the caller in the live room, or NULL */
};

/* Resolves {room_id} for the caller: validates the id, applies the token's
 * room binding, and computes the caller's permissions (live ones when the
 * caller is in the room; an admin token holds all). Checks the permission
 * of command cmd (command_authorize, the check WebSocket messages pass too).
 * On refusal replies and returns -1. */
int api_room_access(struct api_req *r, enum command_id cmd, struct api_room *out);
/* The caller in ar as an actor. */
struct actor api_actor(const struct api_req *r, const struct api_room *ar);
/* Spends the rate class of cmd for the caller (after the request proved
 * well-formed); on refusal replies 429 and returns -1. */
int api_command_budget(struct api_req *r, enum command_id cmd, const struct api_room *ar);
/* The detail of a rate-limit refusal, in the form WebSocket errors use too:
 * "limit <class>: N per W ms" (the hub's rule for class rc). */
void api_rate_detail(const struct hub *h, enum rate_class rc, char *out, size_t out_len);
/* The detail of an admission refusal e for claims ("" when e has none):
 * the upgrade's HTTP refusal, validate and, with several instances, the
 * owner's refusal after the upgrade say the same. */
void api_admission_detail(const struct hub *h, enum api_err e, const struct token_claims *claims, char *out,
                          size_t out_len);
/* Replies 429 RATE_LIMIT_EXCEEDED for class rc with that detail and
 * retry_after_ms, and counts the error. */
void api_reply_rate_limited(struct api_req *r, enum rate_class rc, int64_t retry_after_ms);
/* Parses the request body as a JSON object ({} when empty). On refusal
 * replies and returns NULL. */
json_t *api_body_object(struct api_req *r);
/* Verifies the request's Bearer token into r->claims (for routes that take
 * other credentials too). Returns API_OK, or why not (r->detail says more). */
enum api_err api_authenticate(struct api_req *r);
/* Replies 403 FORBIDDEN unless the token is an admin token; returns 0 if admin. */
int api_require_admin(struct api_req *r);

/* The upgrade's admission for {room_id} without the handshake: shutdown,
 * grant or token, then hub_admission_check (spend: 1 spends room_create
 * as the upgrade does; 0: hub_admission_peek, which only looks). Sets *granted, *retry_after_ms and
 * r->detail. Returns API_OK when the upgrade would be admitted. */
enum api_err api_ws_admission(struct api_req *r, const char *room_id, int spend, int *granted,
                              int64_t *retry_after_ms);

/* Handlers, named for their endpoints. */
void api_ws_connect(struct api_req *r);              /* 1  WS  /webrtc/ws/{room_id} */
void api_config_get(struct api_req *r);              /* 2  GET /webrtc/config */
void api_analytics_get(struct api_req *r);           /* 10 */
void api_analytics_summary_get(struct api_req *r);   /* 11 */
void api_recordings_start(struct api_req *r);        /* 12 */
void api_recordings_stop(struct api_req *r);         /* 13 */
void api_recordings_list(struct api_req *r);         /* 14 */
void api_live_streams_start(struct api_req *r);      /* 25 */
void api_live_streams_stop(struct api_req *r);       /* 26 */
void api_live_streams_list(struct api_req *r);       /* 27 */
void api_health_get(struct api_req *r);              /* 28 */
void api_webrtc_metrics_get(struct api_req *r);      /* 29 */
void api_stats_get(struct api_req *r);               /* 30 */
void api_rate_limit_status_get(struct api_req *r);   /* 31 */
void api_metrics_prometheus_get(struct api_req *r);  /* GET /metrics */
void api_participants_list(struct api_req *r);       /* 3 */
void api_participants_enhanced(struct api_req *r);   /* 4 */
void api_participant_info_update(struct api_req *r); /* 5 */
void api_role_set(struct api_req *r);                /* 6 */
void api_role_get(struct api_req *r);                /* 7 */
void api_permissions_set(struct api_req *r);         /* 8 */
void api_permissions_get(struct api_req *r);         /* 9 */
void api_settings_get(struct api_req *r);            /* 15 */
void api_settings_update(struct api_req *r);         /* 16 */
void api_hand_raise(struct api_req *r);              /* 17 */
void api_hand_queue_get(struct api_req *r);          /* 18 */
void api_waiting_list(struct api_req *r);            /* 19 */
void api_waiting_admit(struct api_req *r);           /* 20 */
void api_waiting_reject(struct api_req *r);          /* 21 */
void api_breakouts_create(struct api_req *r);        /* 22 */
void api_breakouts_assign(struct api_req *r);        /* 23 */
void api_breakouts_close(struct api_req *r);         /* 24 */
void api_participant_remove(struct api_req *r);      /* POST .../participants/{user_id}/remove */
void api_audit_get(struct api_req *r);               /* GET .../audit */
void api_rooms_create(struct api_req *r);            /* POST /webrtc/rooms (rooms.c) */
void api_rooms_list(struct api_req *r);              /* GET /webrtc/rooms */
/* The api_call key of the request on c as api_dispatch would count it (the
 * token's subject, or "ip:" and the address without a valid token), without
 * answering it: 0, or -1 when its route does not count (several instances
 * count api_call in Redis before dispatching). */
int api_call_key(struct conn *c, char *key, size_t n);
/* The subject of the valid bearer token of the request on c, when its route
 * needs one: 0, or -1 (no such route, or no valid token: api_dispatch
 * answers the error). Several instances read a caller's shared budget in
 * Redis before answering its rate-limit status. */
int api_request_subject(struct conn *c, char *sub, size_t n);
/* What the request on c will spend of the per-user limits once its handler
 * has checked the caller's permission (the handlers' own checks: room
 * creation, settings, role and permission changes, hand raises, breakout
 * rooms, file shares), or read (validate peeks room_create): the class, the
 * units (0: a peek) and the token's subject. Returns 1, or 0 for nothing
 * (no such route, unlimited, no valid token). Several instances count it
 * in the shared limiter before the handler runs. */
int api_request_charge(struct conn *c, char *sub, size_t n, enum rate_class *rc, unsigned *units);
/* The operator's view of a live room (rooms.c; the cluster publishes it). New reference. */
json_t *api_room_view(const struct room *r, uint64_t now);
void api_rooms_get(struct api_req *r);               /* GET /webrtc/rooms/{room_id} */
void api_rooms_delete(struct api_req *r);            /* DELETE /webrtc/rooms/{room_id} */
void api_rooms_validate(struct api_req *r);          /* GET /webrtc/rooms/{room_id}/validate */
void api_openapi_get(struct api_req *r);             /* GET /webrtc/openapi.json (openapi.c) */
/* Route table introspection, for the OpenAPI document and its test. */
size_t api_route_count(void);
/* The i-th route's method name and path pattern; -1 past the end. */
int api_route_at(size_t i, const char **method, const char **pattern, int *auth);
void api_dev_token_create(struct api_req *r);        /* POST /webrtc/dev/token (--dev-tokens) */
void api_chat_history_get(struct api_req *r);        /* GET .../chat (store_api.c) */
void api_user_export(struct api_req *r);             /* GET /webrtc/admin/users/{user_id}/export */
void api_user_erase(struct api_req *r);              /* POST /webrtc/admin/users/{user_id}/erase */

/* Answers a room list or summary from the store (store_api.c), in the
 * same shape as the in-memory answer, for rooms from before a restart (a
 * room evicted from memory in this process stays forgotten: 404). */
enum api_store_view { API_STORE_EVENTS, API_STORE_AUDIT, API_STORE_RECORDINGS, API_STORE_STREAMS,
                      API_STORE_SUMMARY };
void api_store_room_view(struct api_req *r, const char *room_id, enum api_store_view view,
                         uint64_t since, size_t limit);

#endif
