/* GET /webrtc/health: each component's status and an overall status.
 * 200 while the server can take new work (ok or degraded), 503 otherwise. */
#include "api/api.h"
#include "bus/bus.h"
#include "files/files.h"
#include "cluster/cluster.h"
#include "net/server.h"
#include "room/hub.h"
#include "store/store.h"

void api_health_get(struct api_req *r) {
  struct server *s = r->srv;
  struct hub *h = r->hub;
  int lag_ok = s->lag_ms <= s->cfg->max_lag_ms;
  /* A store that is down degrades the server (rooms keep working; writes
   * wait in a bounded backlog) rather than making it unavailable. */
  int store_ok = h->store != NULL;
  int store_up = store_healthy(h->store);
  int bus_ok = h->bus && h->bus->ops->healthy(h->bus);
  const char *overall = "ok";
  int status = 200;
  if (s->shutting_down || !store_ok || !bus_ok) {
    overall = s->shutting_down ? "shutting_down" : "unavailable";
    status = 503;
  } else if (!lag_ok || !store_up || (h->cluster && !cluster_redis_up(h->cluster))) {
    overall = "degraded";
  }
  json_t *comp = json_pack(
      "{s:{s:s,s:f,s:i},s:o,s:{s:s,s:s}}",
      "event_loop", "status", lag_ok ? "ok" : "degraded", "lag_ms", s->lag_ms, "max_lag_ms",
      s->cfg->max_lag_ms,
      "store", (json_t *)store_health_json(h->store),
      "bus", "status", bus_ok ? "ok" : "unavailable", "backend", h->bus ? h->bus->ops->name : "none");
  if (comp) json_object_set_new(comp, "file_scan", files_health_json(h->files));
  if (h->cluster) {
    json_t *b = json_object_get(comp, "bus");
    if (!cluster_redis_up(h->cluster)) json_object_set_new(b, "status", json_string("degraded"));
    json_object_set_new(comp, "cluster", cluster_health_json(h->cluster));
  }
  api_reply_json(r, status,
                 json_pack("{s:s,s:s,s:I,s:o,s:I,s:I}", "status", overall, "version", HUDDLE_VERSION,
                           "uptime_s", (json_int_t)((server_now_ms() - s->started_ms) / 1000),
                           "components", comp, "connections", (json_int_t)s->nconns, "rooms",
                           (json_int_t)h->rooms.count));
}
