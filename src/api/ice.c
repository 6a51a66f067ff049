/* GET /webrtc/config: ICE servers for RTCPeerConnection. STUN URLs come from
 * configuration; TURN entries carry time-limited credentials (TURN REST form)
 * and are given only to an authenticated caller. */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "auth/turn.h"
#include "net/server.h"

void api_config_get(struct api_req *r) {
  json_t *servers = turn_ice_servers(r->srv->cfg, r->authed ? r->claims.sub : NULL,
                                    (int64_t)(server_now_ms() / 1000));
  /* ttl is the credentials' lifetime: 0 when none were issued (no TURN). */
  json_t *last = json_array_get(servers, json_array_size(servers) - 1);
  int issued = last && json_object_get(last, "credential");
  api_reply_json(r, 200, json_pack("{s:o,s:i}", "ice_servers", servers, "ttl",
                                   issued ? r->srv->cfg->turn_ttl : 0));
}
