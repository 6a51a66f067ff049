/* GET /webrtc/config: ICE servers for RTCPeerConnection. STUN URLs come from
 * configuration; TURN entries carry time-limited credentials (TURN REST form)
 * and are given only to an authenticated caller. */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "auth/turn.h"
#include "net/server.h"

/* Appends the comma-separated urls as a JSON array; returns it, or NULL if
 * the list is empty. */
static json_t *url_list(const char *csv) {
  json_t *a = json_array();
  const char *p = csv ? csv : "";
  while (*p) {
    while (*p == ',' || *p == ' ') p++;
    const char *e = p;
    while (*e && *e != ',') e++;
    const char *t = e;
    while (t > p && t[-1] == ' ') t--;
    if (t > p) json_array_append_new(a, json_stringn(p, (size_t)(t - p)));
    p = e;
  }
  if (json_array_size(a) == 0) {
    json_decref(a);
    return NULL;
  }
  return a;
}

json_t *api_ice_servers(struct server *s, const char *user_id) {
  const struct config *cfg = s->cfg;
  json_t *list = json_array();
  json_t *stun = url_list(cfg->stun_urls);
  if (stun) json_array_append_new(list, json_pack("{s:o}", "urls", stun));
  json_t *turn = url_list(cfg->turn_urls);
  if (turn && user_id && cfg->turn_secret && *cfg->turn_secret) {
    char username[TURN_USERNAME_MAX], cred[TURN_CREDENTIAL_MAX];
    int64_t expiry = (int64_t)(server_now_ms() / 1000) + cfg->turn_ttl;
    if (turn_credentials(cfg->turn_secret, user_id, expiry, username, sizeof(username), cred,
                         sizeof(cred)) == 0) {
      json_array_append_new(list, json_pack("{s:o,s:s,s:s,s:i}", "urls", turn, "username", username,
                                            "credential", cred, "ttl", cfg->turn_ttl));
      turn = NULL;
    }
  }
  json_decref(turn);
  return list;
}

void api_config_get(struct api_req *r) {
  json_t *servers = api_ice_servers(r->srv, r->authed ? r->claims.sub : NULL);
  /* ttl is the credentials' lifetime: 0 when none were issued (no TURN). */
  json_t *last = json_array_get(servers, json_array_size(servers) - 1);
  int issued = last && json_object_get(last, "credential");
  api_reply_json(r, 200, json_pack("{s:o,s:i}", "ice_servers", servers, "ttl",
                                   issued ? r->srv->cfg->turn_ttl : 0));
}
