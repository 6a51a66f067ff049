/* POST /webrtc/dev/token: development tokens for the web app's join screen.
 * Only with --dev-tokens (scripts/run.sh turns it on; it listens on loopback);
 * otherwise the endpoint does not exist (404). Anyone who can reach it can
 * mint a token for any user and role: never enable it on a reachable server. */
#define LOG_MODULE "api"
#include "log.h"

#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "net/server.h"

#define DEV_TOKEN_TTL_S (12 * 3600)

/* Copies an optional string member into out; returns 0 (absent: ""), or -1
 * when it is not a string or too long. */
static int member(json_t *body, const char *key, char *out, size_t out_len) {
  json_t *v = json_object_get(body, key);
  out[0] = '\0';
  if (v == NULL || json_is_null(v)) return 0;
  if (!json_is_string(v) || json_string_length(v) + 1 > out_len) return -1;
  memcpy(out, json_string_value(v), json_string_length(v) + 1);
  return 0;
}

static int name_ok(const char *s) {
  for (const unsigned char *p = (const unsigned char *)s; *p; p++)
    if (*p < 0x20 || *p == 0x7f) return 0;
  return 1;
}

void api_dev_token_create(struct api_req *r) {
  if (!r->srv->cfg->dev_tokens) {
    api_reply_error(r, API_ERR_NOT_FOUND, NULL);
    return;
  }
  if (strcmp(r->srv->cfg->jwt_alg, "HS256") != 0 || r->srv->jwt_secret == NULL) {
    api_reply_error(r, API_ERR_NOT_IMPLEMENTED, "development tokens need --jwt-alg HS256");
    return;
  }
  json_t *body = api_body_object(r);
  if (body == NULL) return;
  struct token_claims tc;
  memset(&tc, 0, sizeof(tc));
  char role[32];
  tc.role = ROOM_ROLE_PARTICIPANT;
  enum api_err e = API_OK;
  const char *detail = NULL;
  if (member(body, "room", tc.room, sizeof(tc.room)) != 0 || !id_valid(tc.room, strlen(tc.room))) {
    e = API_ERR_INVALID_ROOM_ID;
  } else if (member(body, "user", tc.sub, sizeof(tc.sub)) != 0 || !id_valid(tc.sub, strlen(tc.sub)) ||
             token_sub_reserved(tc.sub)) {
    e = API_ERR_INVALID_USER_ID;
  } else if (member(body, "name", tc.name, sizeof(tc.name)) != 0 || !name_ok(tc.name)) {
    e = API_ERR_INVALID_MESSAGE;
    detail = "name: a string of at most 128 bytes without control characters";
  } else if (member(body, "role", role, sizeof(role)) != 0 ||
             (role[0] && perm_role_parse(role, &tc.role) != 0)) {
    e = API_ERR_INVALID_ROLE;
  }
  json_decref(body);
  if (e != API_OK) {
    api_reply_error(r, e, detail);
    return;
  }
  tc.iat = (int64_t)(server_now_ms() / 1000);
  tc.exp = tc.iat + DEV_TOKEN_TTL_S;
  char *jwt = token_mint(r->srv->jwt_secret, r->srv->jwt_secret_len, &tc);
  if (jwt == NULL) {
    api_reply_error(r, API_ERR_INTERNAL_ERROR, NULL);
    return;
  }
  log_info("dev_token room=%s user=%s role=%s ip=%s", tc.room, tc.sub, perm_role_name(tc.role),
           r->conn->ip);
  api_reply_json(r, 200, json_pack("{s:s,s:s,s:s,s:s,s:I}", "token", jwt, "room", tc.room, "user",
                                   tc.sub, "role", perm_role_name(tc.role), "expires_at",
                                   (json_int_t)tc.exp));
  free(jwt);
}
