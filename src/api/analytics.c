/* Endpoints 10-11: a room's analytics events and their summary, computed
 * from the room's history (which outlives the room). Hosts, moderators and
 * admin tokens may read them. */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "room/msgtype.h"
#include "net/server.h"
#include "room/room.h"

const char *sig_quality_name(int b);

static int access_analytics(struct api_req *r, struct api_room *ar) {
  if (api_room_access(r, CMD_MODERATE, ar) != 0) return -1;
  if (ar->hist == NULL) {
    /* Not in memory (evicted, or from before a restart): ask the store. */
    if (r->hub->store) return 1;
    api_reply_error(r, API_ERR_ROOM_NOT_FOUND, NULL);
    return -1;
  }
  return 0;
}

/* GET /webrtc/rooms/{room_id}/analytics?since=<unix ms>&limit=<1..1000> */
void api_analytics_get(struct api_req *r) {
  struct api_room ar;
  int where = access_analytics(r, &ar);
  if (where < 0) return;
  char v[32];
  uint64_t since = 0;
  size_t limit = 100;
  if (api_query(r->query, "since", v, sizeof(v)) > 0) {
    char *end;
    since = strtoull(v, &end, 10);
    if (*end) { api_reply_error(r, API_ERR_BAD_REQUEST, "since must be Unix milliseconds"); return; }
  }
  if (api_query(r->query, "limit", v, sizeof(v)) > 0) {
    char *end;
    long n = strtol(v, &end, 10);
    if (*end || n < 1 || n > HISTORY_EVENTS)
      { api_reply_error(r, API_ERR_BAD_REQUEST, "limit must be 1 to 1000"); return; }
    limit = (size_t)n;
  }
  if (where == 1) {
    api_store_room_view(r, ar.id, API_STORE_EVENTS, since, limit);
    return;
  }
  api_reply_json(r, 200, json_pack("{s:s,s:o,s:I}", "room_id", ar.id, "events",
                                   history_ring_json(&ar.hist->events, since, limit, 0), "total_events",
                                   (json_int_t)ar.hist->events.total));
}

/* GET /webrtc/rooms/{room_id}/analytics/summary */
void api_analytics_summary_get(struct api_req *r) {
  struct api_room ar;
  int where = access_analytics(r, &ar);
  if (where < 0) return;
  if (where == 1) {
    api_store_room_view(r, ar.id, API_STORE_SUMMARY, 0, 0);
    return;
  }
  struct room_history *h = ar.hist, totals;
  char sess[16]; /* admins see every session of the room id added up, unless they pick one */
  if (r->claims.admin && api_query(r->query, "session", sess, sizeof(sess)) <= 0) {
    history_totals(h, &totals);
    h = &totals;
  }
  uint64_t now = server_now_ms(), open_ms = 0, current = 0;
  if (ar.room) {
    for (struct participant *p = ar.room->head; p; p = p->next)
      open_ms += now > p->joined_ms ? now - p->joined_ms : 0;
    current = ar.room->count;
  }
  uint64_t total_ms = h->closed_session_ms + open_ms;
  json_t *by_type = json_object();
  uint64_t messages = 0;
  for (int i = 0; i < MSG__COUNT; i++) {
    uint64_t n = history_messages(h, i);
    if (n == 0) continue;
    json_object_set_new(by_type, msg_type_name(i), json_integer((json_int_t)n));
    messages += n;
  }
  json_t *quality = json_object();
  for (int b = 0; b < QUALITY__COUNT; b++)
    json_object_set_new(quality, sig_quality_name(b), json_integer((json_int_t)h->quality[b]));
  json_t *o = json_pack(
      "{s:s,s:b,s:I,s:I,s:I,s:I,s:f,s:I,s:I,s:o,s:o,s:I,s:I,s:I}", "room_id", ar.id, "live",
      ar.room != NULL, "created_at", (json_int_t)h->created_ms, "current_participants",
      (json_int_t)current, "peak_participants", (json_int_t)h->peak, "total_sessions",
      (json_int_t)h->sessions, "participant_minutes", (double)total_ms / 60000.0,
      "average_session_ms", (json_int_t)(h->sessions ? total_ms / h->sessions : 0),
      "messages_total", (json_int_t)messages, "messages_by_type", by_type,
      "quality_distribution", quality, "custom_events", (json_int_t)h->custom_events,
      "recordings", (json_int_t)h->nrecordings, "live_streams", (json_int_t)h->nstreams);
  if (o && h->closed_ms) json_object_set_new(o, "closed_at", json_integer((json_int_t)h->closed_ms));
  if (h == &totals) free(totals.messages_by_type);
  api_reply_json(r, 200, o);
}
