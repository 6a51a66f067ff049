/* Endpoints 29-31 and GET /metrics: real counters from the server (see
 * struct server_stats, struct hub_stats), as JSON and in the Prometheus text format. Metrics
 * and stats need an admin token; the rate-limit status is the caller's own. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <sys/resource.h>
#include <unistd.h>

#include "api/api.h"
#include "cluster/cluster.h"
#include "room/msgtype.h"
#include "lib/buf.h"
#include "net/http.h"
#include "net/server.h"
#include "room/hub.h"
#include "room/room.h"

struct totals { uint64_t participants; };

static void count_room(const char *k, void *v, void *arg) {
  ((struct totals *)arg)->participants += ((struct room *)v)->count;
}

static uint64_t participants(struct hub *h) {
  struct totals t = {0};
  map_each(&h->rooms, count_room, &t);
  return t.participants;
}

static uint64_t rss_bytes(void) {
  long pages = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f) {
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    fclose(f);
  }
  return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

static json_t *by_type(const uint64_t *counts) {
  json_t *o = json_object();
  for (int i = 0; i < MSG__COUNT; i++)
    if (counts[i]) json_object_set_new(o, msg_type_name(i), json_integer((json_int_t)counts[i]));
  return o;
}

static uint64_t sum(const uint64_t *a, size_t n) {
  uint64_t t = 0;
  for (size_t i = 0; i < n; i++) t += a[i];
  return t;
}

/* GET /webrtc/webrtc-metrics */
void api_webrtc_metrics_get(struct api_req *r) {
  if (api_require_admin(r) != 0) return;
  struct server *s = r->srv;
  struct server_stats *st = &s->stats;
  struct hub *h = r->hub;
  struct hub_stats *hs = &h->stats;
  json_t *errors = json_object(), *hits = json_object(), *http = json_object();
  for (int e = 1; e < API_ERR__COUNT; e++)
    if (hs->errors_by_code[e]) json_object_set_new(errors, api_err_code((enum api_err)e), json_integer((json_int_t)hs->errors_by_code[e]));
  for (int c = 0; c < RATE__COUNT; c++)
    json_object_set_new(hits, ratelimit_class_name((enum rate_class)c), json_integer((json_int_t)hs->ratelimit_hits[c]));
  for (int k = 1; k < 6; k++) {
    char key[4] = {(char)('0' + k), 'x', 'x', 0};
    json_object_set_new(http, key, json_integer((json_int_t)st->http_by_status[k]));
  }
  api_reply_json(r, 200, json_pack(
      "{s:I,s:{s:I,s:I,s:I},s:I,s:I,s:{s:I,s:I,s:o,s:o},s:o,s:o,s:{s:I,s:I},s:f,s:I,s:{s:I,s:o}}",
      "uptime_s", (json_int_t)((server_now_ms() - s->started_ms) / 1000),
      "connections", "current", (json_int_t)s->nconns, "total", (json_int_t)st->connections_total,
      "websocket_total", (json_int_t)st->ws_total,
      "rooms", (json_int_t)h->rooms.count, "participants", (json_int_t)participants(h),
      "messages", "in_total", (json_int_t)sum(hs->in_by_type, HUB_STATS_TYPES), "out_total",
      (json_int_t)sum(hs->out_by_type, HUB_STATS_TYPES), "in_by_type", by_type(hs->in_by_type),
      "out_by_type", by_type(hs->out_by_type),
      "errors_by_code", errors, "rate_limit_hits", hits,
      "bytes", "in", (json_int_t)st->bytes_in, "out", (json_int_t)st->bytes_out,
      "event_loop_lag_ms", s->lag_ms, "slow_consumers_dropped", (json_int_t)st->slow_consumers_dropped,
      "http_requests", "total", (json_int_t)st->http_requests, "by_status", http));
}

static void room_row(const char *k, void *v, void *arg) {
  struct room *rm = v;
  json_t *o = json_pack("{s:s,s:I,s:I,s:I,s:I,s:b,s:I}", "room_id", rm->id, "participants",
                        (json_int_t)rm->count, "peak_participants", (json_int_t)rm->peak,
                        "created_at", (json_int_t)rm->created_ms, "seq", (json_int_t)rm->seq,
                        "recording", rm->hist && history_recording_active(rm->hist) != NULL,
                        "live_streams", (json_int_t)(rm->hist ? history_streams_active(rm->hist) : 0));
  json_array_append_new(arg, o);
}

/* GET /webrtc/stats */
void api_stats_get(struct api_req *r) {
  if (api_require_admin(r) != 0) return;
  struct server *s = r->srv;
  const struct config *cfg = s->cfg;
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  json_t *rooms = json_array();
  map_each(&r->hub->rooms, room_row, rooms);
  json_t *limits = json_object();
  for (int c = 0; c < RATE__COUNT; c++)
    json_object_set_new(limits, ratelimit_class_name((enum rate_class)c),
                        json_pack("{s:I,s:I}", "limit", (json_int_t)r->hub->rl.rules[c].limit, "window_ms",
                                  (json_int_t)r->hub->rl.rules[c].window_ms));
  api_reply_json(r, 200, json_pack(
      "{s:{s:s,s:I,s:i,s:I,s:f,s:f,s:f},s:o,s:I,s:{s:i,s:i,s:i,s:i,s:i},s:o}",
      "server", "version", HUDDLE_VERSION, "uptime_s", (json_int_t)((server_now_ms() - s->started_ms) / 1000),
      "pid", (int)getpid(), "rss_bytes", (json_int_t)rss_bytes(),
      "cpu_user_s", (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6,
      "cpu_system_s", (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6,
      "event_loop_lag_ms", s->lag_ms,
      "rooms", rooms, "rooms_in_history", (json_int_t)r->hub->history.rooms.count,
      "limits", "max_room_participants", cfg->max_room_participants, "max_connections",
      cfg->max_connections, "max_ws_message", cfg->max_ws_message, "max_send_queue",
      cfg->max_send_queue, "chat_max_chars", cfg->chat_max_chars,
      "rate_limits", limits));
}

/* GET /webrtc/rate-limits/{limit_type}/status: the caller's own budget. */
void api_rate_limit_status_get(struct api_req *r) {
  char name[40];
  enum rate_class c;
  if (api_param(r, "limit_type", name, sizeof(name)) < 0 || ratelimit_class_parse(name, &c) != 0) {
    api_reply_error(r, API_ERR_UNKNOWN_LIMIT_TYPE, NULL);
    return;
  }
  struct ratelimit_result rr;
  hub_rate_peek(r->hub, r->claims.sub, c, &rr);
  api_reply_json(r, 200, json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:I}", "limit_type", name, "user_id",
                                   r->claims.sub, "limit", (json_int_t)rr.limit, "window_ms",
                                   (json_int_t)r->hub->rl.rules[c].window_ms, "remaining",
                                   (json_int_t)rr.remaining, "reset_ms", (json_int_t)rr.reset_ms,
                                   "reset_at", (json_int_t)(server_now_ms() + rr.reset_ms)));
}

static void line(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void line(struct buf *b, const char *fmt, ...) {
  char tmp[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
  va_end(ap);
  if (n > 0) buf_append(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* 1 if the request carries "Authorization: Bearer <--metrics-token>",
 * compared in constant time. */
static int metrics_token_ok(struct api_req *r) {
  const char *want = r->srv->cfg->metrics_token;
  const struct buf *auth = &r->conn->req->hdr[HDR_AUTHORIZATION];
  if (want == NULL || auth->len < 8 || strncasecmp(auth->data, "Bearer ", 7) != 0) return 0;
  const char *got = auth->data + 7;
  size_t gl = auth->len - 7, wl = strlen(want);
  if (gl != wl) return 0;
  return CRYPTO_memcmp(got, want, wl) == 0;
}

/* A metric's HELP and TYPE lines. */
static void head(struct buf *b, const char *name, const char *type, const char *help) {
  line(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* GET /metrics: the same counters for Prometheus. An admin JWT, or the
 * static --metrics-token (which does not expire, for scrapers). */
void api_metrics_prometheus_get(struct api_req *r) {
  if (!metrics_token_ok(r)) {
    enum api_err e = api_authenticate(r);
    if (e != API_OK) {
      api_reply_error(r, e, r->detail[0] ? r->detail : NULL);
      return;
    }
    if (api_require_admin(r) != 0) return;
  }
  struct server *s = r->srv;
  struct server_stats *st = &s->stats;
  struct hub *h = r->hub;
  struct hub_stats *hs = &h->stats;
  struct buf b = {0};
  head(&b, "huddle_uptime_seconds", "gauge", "Seconds since the server started.");
  line(&b, "huddle_uptime_seconds %llu\n", (unsigned long long)((server_now_ms() - s->started_ms) / 1000));
  head(&b, "huddle_connections", "gauge", "Open TCP connections (HTTP and WebSocket).");
  line(&b, "huddle_connections %zu\n", s->nconns);
  head(&b, "huddle_connections_total", "counter", "TCP connections accepted since start.");
  line(&b, "huddle_connections_total %llu\n", (unsigned long long)st->connections_total);
  head(&b, "huddle_websockets_total", "counter", "WebSocket upgrades accepted since start.");
  line(&b, "huddle_websockets_total %llu\n", (unsigned long long)st->ws_total);
  head(&b, "huddle_rooms", "gauge", "Open rooms.");
  line(&b, "huddle_rooms %zu\n", h->rooms.count);
  head(&b, "huddle_participants", "gauge", "Participants in all rooms.");
  line(&b, "huddle_participants %llu\n", (unsigned long long)participants(h));
  head(&b, "huddle_messages_in_total", "counter", "Client messages received, by type.");
  for (int i = 0; i < MSG__COUNT; i++)
    if (hs->in_by_type[i]) line(&b, "huddle_messages_in_total{type=\"%s\"} %llu\n", msg_type_name(i), (unsigned long long)hs->in_by_type[i]);
  head(&b, "huddle_messages_out_total", "counter", "Messages delivered to clients, by type.");
  for (int i = 0; i < MSG__COUNT; i++)
    if (hs->out_by_type[i]) line(&b, "huddle_messages_out_total{type=\"%s\"} %llu\n", msg_type_name(i), (unsigned long long)hs->out_by_type[i]);
  head(&b, "huddle_errors_total", "counter", "Error replies, by code.");
  for (int e = 1; e < API_ERR__COUNT; e++)
    if (hs->errors_by_code[e]) line(&b, "huddle_errors_total{code=\"%s\"} %llu\n", api_err_code((enum api_err)e), (unsigned long long)hs->errors_by_code[e]);
  head(&b, "huddle_rate_limit_hits_total", "counter", "Requests and messages refused by a rate limit, by limit.");
  for (int c = 0; c < RATE__COUNT; c++)
    line(&b, "huddle_rate_limit_hits_total{limit_type=\"%s\"} %llu\n", ratelimit_class_name((enum rate_class)c), (unsigned long long)hs->ratelimit_hits[c]);
  head(&b, "huddle_bytes_in_total", "counter", "Bytes read from clients.");
  line(&b, "huddle_bytes_in_total %llu\n", (unsigned long long)st->bytes_in);
  head(&b, "huddle_bytes_out_total", "counter", "Bytes written to clients.");
  line(&b, "huddle_bytes_out_total %llu\n", (unsigned long long)st->bytes_out);
  head(&b, "huddle_slow_consumers_dropped_total", "counter", "Clients disconnected because their send queue was full.");
  line(&b, "huddle_slow_consumers_dropped_total %llu\n", (unsigned long long)st->slow_consumers_dropped);
  head(&b, "huddle_http_responses_total", "counter", "HTTP responses, by status class.");
  for (int k = 1; k < 6; k++) line(&b, "huddle_http_responses_total{class=\"%dxx\"} %llu\n", k, (unsigned long long)st->http_by_status[k]);
  head(&b, "huddle_read_to_flush_seconds", "histogram",
       "Per loop turn that read client data and wrote: from its first read to the end of its writes (the longest a message read in it waited inside huddle).");
  static const uint64_t bounds[] = SERVER_TURN_BOUNDS_US;
  uint64_t cum = 0;
  for (size_t i = 0; i < SERVER_TURN_BUCKETS - 1; i++) {
    cum += st->turn_buckets[i];
    line(&b, "huddle_read_to_flush_seconds_bucket{le=\"%g\"} %llu\n", (double)bounds[i] / 1e6, (unsigned long long)cum);
  }
  line(&b, "huddle_read_to_flush_seconds_bucket{le=\"+Inf\"} %llu\n", (unsigned long long)st->turn_count);
  line(&b, "huddle_read_to_flush_seconds_sum %.6f\n", (double)st->turn_sum_ns / 1e9);
  line(&b, "huddle_read_to_flush_seconds_count %llu\n", (unsigned long long)st->turn_count);
  head(&b, "huddle_event_loop_lag_seconds", "gauge", "Last measured event-loop lag.");
  line(&b, "huddle_event_loop_lag_seconds %.4f\n", s->lag_ms / 1000.0);
  if (h->cluster) cluster_metrics(h->cluster, &b);
  http_reply(r->conn, 200, "", "text/plain; version=0.0.4; charset=utf-8", b.data ? b.data : "", b.len);
  buf_free(&b);
}
