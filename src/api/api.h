/* REST dispatch: the route table (method, path pattern, auth, handler),
 * token extraction, and the one place REST error replies are written. */
#ifndef HUDDLE_API_API_H
#define HUDDLE_API_API_H

#include <jansson.h>
#include <stddef.h>

#include "auth/token.h"
#include "guard/errors.h"
#include "net/router.h"

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
  const char *path;                           /* borrowed, not NUL-terminated */
  size_t path_len;
  const char *query;                          /* borrowed, NUL-terminated, "" if none */
  struct router_param params[ROUTER_MAX_PARAMS];
  int nparams;
  int authed;                                 /* claims hold a verified token */
  struct token_claims claims;
};

typedef void (*api_handler)(struct api_req *r);

/* Handles the complete request on c: routes it, authenticates per route and
 * calls the handler, or answers 404/405/401. */
void api_dispatch(struct conn *c);

/* Copies parameter name into out (NUL-terminated). Returns its length or -1
 * if missing or longer than out_len - 1. */
int api_param(const struct api_req *r, const char *name, char *out, size_t out_len);
/* Finds query parameter name; copies its percent-decoded value. Returns the
 * length, or -1 if absent or too long. */
int api_query(const char *query, const char *name, char *out, size_t out_len);

void api_reply_json(struct api_req *r, int status, json_t *body);
void api_reply_error(struct api_req *r, enum api_err e, const char *detail);

/* Handlers, named for their endpoints. */
void api_ws_connect(struct api_req *r);    /* WS  /webrtc/ws/{room_id} */
void api_config_get(struct api_req *r);    /* GET /webrtc/config */
void api_health_get(struct api_req *r);    /* GET /webrtc/health */

/* ICE servers as RTCIceServer objects; TURN credentials only for user_id
 * (NULL: STUN only). Returns a new reference. */
json_t *api_ice_servers(struct server *s, const char *user_id);

#endif
