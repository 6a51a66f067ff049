/* Several instances through Redis (issue "Horizontal scaling", ADR 0006).
 * Each room has one owner instance holding a lease in Redis; the owner runs
 * the room exactly as a single instance does and appends every room-log
 * entry (and every frame for a session connected elsewhere) to the room's
 * Redis Stream. Other instances forward their clients' messages, ends and
 * REST calls to the owner's inbox stream and write the stream's frames to
 * their own sockets. Without --redis-url none of this exists (hub->cluster
 * is NULL) and nothing here runs. All Redis calls are asynchronous (hiredis
 * with its libuv adapter). */
#ifndef HUDDLE_CLUSTER_CLUSTER_H
#define HUDDLE_CLUSTER_CLUSTER_H

#include <jansson.h>
#include <stdint.h>

#include "auth/token.h"
#include "bus/bus.h"
#include "net/server.h"
#include "room/hub.h"

struct cluster;

struct cluster_stats {
  uint64_t forwarded_out;     /* client messages and REST calls sent to another instance's owner */
  uint64_t forwarded_in;      /* received from other instances, run here as owner */
  uint64_t stream_entries_out;/* entries appended to room streams */
  uint64_t stream_entries_in; /* entries read from room streams (rooms owned elsewhere) */
  uint64_t fenced;            /* appends refused: this instance no longer held the lease */
  uint64_t takeovers;         /* rooms this instance took over from a dead owner */
  uint64_t opens_moved;       /* joins sent again: the instance named as owner had given the room up */
  uint64_t msgs_recovered;    /* client messages taken back from a dead owner's inbox and sent to the new one */
  uint64_t forwards_retried;  /* REST calls taken back from a dead owner and sent again (GET/HEAD, or never read) */
  uint64_t forwards_unanswered; /* REST calls answered 503 here: owner gone after reading it, or no answer in time */
  uint64_t files_forwarded;   /* files requests sent to their room's owner over HTTP */
  uint64_t files_forward_failed; /* ... answered 503 (nothing sent yet) or cut (mid-answer) here */
  uint64_t reconnects;        /* Redis connections re-established */
  uint64_t queued_max;        /* most commands held while Redis was away */
  double stream_lag_ms;       /* last: owner's append to this instance's delivery */
  double stream_lag_max_ms;
};

/* Parses url (redis://[[user]:password@]host[:port][/db]), connects, and
 * makes h a cluster member: h->cluster and h->bus are set. Returns 0, or -1
 * with err. */
int cluster_start(struct hub *h, struct server *srv, const char *url, char *err, size_t err_len);
/* Stops timers and closes the Redis connections (at shutdown). */
void cluster_stop(struct cluster *cl);

/* The net layer's callbacks in cluster mode (main.c wires them instead of
 * api_dispatch / signal_on_message / signal_on_end). */
void cluster_on_request(struct conn *c);
/* The head hook (conn_handlers.head): a files request for a room owned
 * elsewhere is forwarded with its body; anything else goes to api_http_head. */
void cluster_on_head(struct conn *c);
void cluster_on_text(struct conn *c, const char *data, size_t len);
void cluster_on_binary(struct conn *c);
void cluster_on_end(struct conn *c, enum conn_end why, int code);

/* The WebSocket upgrade (api_ws_connect): returns 0 when the room is owned
 * here (the caller goes on as a single instance), 1 when the cluster took
 * the connection (it accepted the upgrade; the join completes later).
 * grant: the upgrade's breakout grant or "" (with one, the cluster always
 * takes the connection: the grant is spent in Redis, the owner checks it). */
int cluster_ws_open(struct hub *h, struct conn *c, const char *room_id, const struct token_claims *claims,
                    int admitted, const char *resume_token, uint64_t last_seq, const char *grant);
/* The upgrade's check of a breakout grant on the instance it reached:
 * signature, expiry and room only (the family lives on its owner, which
 * checks the rest in cluster_ws_open's join). Fills claims->sub and room.
 * With public-key tokens the grant key is a random one the instances share
 * through Redis (read before the command connection counts as up); without
 * it yet (Redis never reached) it is op_grant_check, spending on this
 * instance. */
enum api_err cluster_grant_precheck(struct hub *h, const char *grant, const char *room_id,
                                    struct token_claims *claims);

/* POST /webrtc/rooms: 1 while the call being answered names a room live on
 * another instance (ROOM_ALREADY_EXISTS). */
int cluster_room_taken(const struct cluster *cl, const char *room_id);
/* GET /webrtc/rooms: appends to rooms (a JSON array) the views of rooms owned
 * by other instances, as their owners last wrote them (at most 0.5 s old). */
void cluster_rooms_list(const struct cluster *cl, json_t *rooms);

/* POST /webrtc/admin/users/{id}/erase answered here: every other instance
 * applies the erase to the rooms it owns (committed 0, with the memory part
 * here), then drops what its room logs held (committed 1, when the store
 * finished). Through Redis; NULL cl: nothing. */
void cluster_user_erase(struct cluster *cl, const char *user_id, int committed);

/* For health and metrics. */
const char *cluster_instance_id(const struct cluster *cl);
int cluster_redis_up(const struct cluster *cl);
size_t cluster_owned_rooms(const struct cluster *cl);
const struct cluster_stats *cluster_stats_get(const struct cluster *cl);
/* Appends the cluster's Prometheus lines to b (struct buf *). */
struct buf;
void cluster_metrics(const struct cluster *cl, struct buf *b);
/* {"instance_id", "redis", "owned_rooms": [...], "forwarded_out", ...}. New reference. */
json_t *cluster_health_json(const struct cluster *cl);

#endif
