/* Signaling: the message table (one row per type: handler, required
 * permission, rate-limit class), dispatch, joining and leaving rooms, and
 * delivery from the bus to local connections. Only this module writes
 * WebSocket error replies. */
#ifndef HUDDLE_SIGNAL_SIGNAL_H
#define HUDDLE_SIGNAL_SIGNAL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/token.h"
#include "bus/bus.h"
#include "guard/errors.h"
#include "guard/ratelimit.h"
#include "net/server.h"
#include "signal/envelope.h"
#include "room/history.h"
#include "room/msgtype.h"

struct conn;
struct server;
struct room;
struct participant;

#define SIG_SERVER_ONLY 0x1   /* clients may not send it */
#define SIG_NEEDS_TO 0x2      /* directed: "to" is required */

struct sig_ctx {
  struct server *srv;
  struct conn *conn;
  struct participant *self;
  struct room *room;
  const struct envelope_in *in;
};

typedef enum api_err (*sig_handler)(struct sig_ctx *ctx, char *detail, size_t detail_len);

struct sig_type {
  const char *name;
  int id;                   /* enum msg_type: stable, never a table position */
  sig_handler handler;      /* NULL: known type this version does not handle yet */
  uint32_t perm;            /* PERM_* bits required, 0 for none */
  enum rate_class rate;
  unsigned flags;
};

/* Finds the table row for a type name, or NULL. */
const struct sig_type *signal_type_find(const char *name);
/* Number of rows and the i-th row, for documentation checks and tests. */
size_t signal_type_count(void);
const struct sig_type *signal_type_at(size_t i);

/* Refusals that must happen before the upgrade (room binding, capacity). */
/* *retry_after_ms (may be NULL) is set when the refusal is a rate limit. */
enum api_err signal_admission_check(struct server *s, const char *room_id,
                                    const struct token_claims *claims, int admitted,
                                    int64_t *retry_after_ms);
/* Joins the upgraded connection c to room_id: room-state to c, user-joined
 * to the others. A second connection of the same user replaces the first.
 * Users below moderator wait in the waiting room when it is on, unless
 * admitted is set (they come with a grant, from or to a breakout room). */
/* With resume_token (NULL: none), resumes the member's session: the room
 * log after last_seq (UINT64_MAX: not given), then room-state with
 * resumed true; a refused resume gets RESUME_* and joins afresh. */
void signal_join(struct conn *c, const char *room_id, const struct token_claims *claims, int admitted,
                 const char *resume_token, uint64_t last_seq);
/* The net layer's ws_end callback: a cut connection, a dead peer or a close
 * with 1001 puts the member away for the grace period; anything else is a
 * leave. */
void signal_on_end(struct conn *c, enum conn_end why, int code);
/* The net layer's tick: grace expiry, grant and room sweeps. data: the server. */
void signal_tick(void *data);
void signal_on_message(struct conn *c, const char *data, size_t len);
void signal_on_binary(struct conn *c);
/* Takes c's participant out of its room (user-left to the others, reason
 * "left" when NULL). Idempotent: only the first call has an effect. */
void signal_detach(struct conn *c, const char *reason);
/* The bus delivery callback: writes m's frame to local recipients. */
void signal_bus_deliver(void *arg, const struct bus_msg *m);
/* Frees every room (at shutdown). */
void signal_rooms_free(struct server *s);

/* What a handler sends to the room. */
struct sig_out {
  const char *type;
  const char *from;        /* a user id or "server" */
  const char *to;          /* NULL: the room */
  const char *except;      /* NULL, or a user left out of a broadcast */
  const char *also;        /* NULL, or an extra recipient of a directed message */
  uint32_t only_perm;      /* 0, or only members holding these PERM_* bits */
  json_t *payload;         /* borrowed */
  const char *ref;         /* NULL, or the sender's message id (echoes) */
  const char *raw_payload; /* NULL, or payload as JSON text, used instead of payload */
  size_t raw_len;
};

/* Publishes o to ctx->room through the bus; assigns seq and ts.
 * Returns 0 or -1. */
int signal_send(struct sig_ctx *ctx, const struct sig_out *o);
/* Shorthand for signal_send with from/to/except and payload only. */
int signal_publish(struct sig_ctx *ctx, const char *type, const char *from, const char *to,
                   const char *except, json_t *payload);
/* Stable id (enum msg_type) of a type name, or -1. */
int signal_type_index(const char *name);
/* Sends an error to one connection (the one funnel for WebSocket errors). */
void signal_error(struct conn *c, enum api_err e, const char *ref, const char *detail,
                  int64_t retry_after_ms);
/* Returns the live room, or NULL. */
struct room *signal_room_find(struct server *s, const char *room_id);
/* Recording and live-stream control shared by REST and WebSocket
 * (sig_record.c). `by` is the acting user id. On success *out receives the
 * JSON describing the recording or stream (new reference). */
enum api_err signal_recording_start(struct server *s, struct room *r, const char *by, json_t **out);
enum api_err signal_recording_stop(struct server *s, struct room *r, const char *id, const char *by,
                                   json_t **out);
enum api_err signal_stream_start(struct server *s, struct room *r, const char *by, json_t *body,
                                 char *detail, size_t detail_len, json_t **out);
enum api_err signal_stream_stop(struct server *s, struct room *r, const char *id, const char *by,
                                json_t **out);
/* Stops whatever still records or streams in room_id's history (room closed). */
void signal_media_stop_all(struct server *s, struct room_history *h);

/* Who performs a room-control operation: a participant (WebSocket), or a
 * REST caller (possibly an admin service token, possibly not in the room). */
struct actor {
  const char *user_id;
  enum room_role role;
  uint32_t perms;
  int admin;
};

/* The actor for a participant. */
struct actor signal_actor_of(const struct participant *p);
/* 1 if a may act on target (a host, an admin, or a higher role). */
int signal_outranks(const struct actor *a, const struct participant *target);

/* Room-control operations shared by REST and WebSocket (sig_room.c,
 * sig_media.c, sig_hand.c, sig_waiting.c, sig_breakout.c). Each checks
 * permissions and rank, changes state, broadcasts, and records the audit
 * log. detail receives specifics on refusal. */
enum api_err op_role_set(struct server *s, struct room *r, const struct actor *a, const char *target,
                         const char *role, char *detail, size_t dl);
enum api_err op_perms_set(struct server *s, struct room *r, const struct actor *a, const char *target,
                          json_t *perms, char *detail, size_t dl);
enum api_err op_settings_update(struct server *s, struct room *r, const struct actor *a, json_t *patch,
                                char *detail, size_t dl);
enum api_err op_media(struct server *s, struct room *r, const struct actor *a, const char *target,
                      const char *kind, int enabled, char *detail, size_t dl);
enum api_err op_mute_all(struct server *s, struct room *r, const struct actor *a, const char *kind,
                         char *detail, size_t dl);
enum api_err op_screen(struct server *s, struct room *r, const struct actor *a, const char *target,
                       int start, char *detail, size_t dl);
enum api_err op_remove(struct server *s, struct room *r, const struct actor *a, const char *target,
                       const char *reason, char *detail, size_t dl);
enum api_err op_info_update(struct server *s, struct room *r, const struct actor *a, const char *target,
                            json_t *info, char *detail, size_t dl);
enum api_err op_hand(struct server *s, struct room *r, const struct actor *a, const char *target,
                     int raise, char *detail, size_t dl);
enum api_err op_hand_next(struct server *s, struct room *r, const struct actor *a, json_t **out,
                          char *detail, size_t dl);
enum api_err op_waiting_admit(struct server *s, struct room *r, const struct actor *a, const char *target,
                              char *detail, size_t dl);
enum api_err op_waiting_reject(struct server *s, struct room *r, const struct actor *a, const char *target,
                               const char *reason, char *detail, size_t dl);
enum api_err op_breakout_create(struct server *s, struct room *r, const struct actor *a, json_t *body,
                                json_t **out, char *detail, size_t dl);
enum api_err op_breakout_assign(struct server *s, struct room *r, const struct actor *a, const char *bid,
                                const char *target, char *detail, size_t dl);
enum api_err op_breakout_close(struct server *s, struct room *r, const struct actor *a, const char *bid,
                               char *detail, size_t dl);

/* JSON views for REST and room-state. */
json_t *signal_waiting_json(const struct room *r);
json_t *signal_breakouts_json(struct server *s, struct room *r);
json_t *signal_participant_full_json(const struct participant *p);

/* Grants: short-lived server-side credentials that let a participant move
 * between a main room and its breakout rooms without a new token. */
/* origin: use the role and overrides p joined with, not its current ones
 * (returning from a breakout room where its role may have changed). */
const char *signal_grant_new(struct server *s, const struct participant *p, const char *room_id, int origin);
/* Returns API_OK and fills claims if grant is valid for room_id. */
enum api_err signal_grant_check(struct server *s, const char *grant, const char *room_id,
                                struct token_claims *claims);
void signal_grants_prune(struct server *s);
void signal_grants_free(struct server *s);

/* Internal to the signal module: join an admitted connection (sig_waiting.c). */
void signal_join_admitted(struct conn *c, struct room *r, const struct token_claims *claims);
/* Closes every participant's connection with code, telling nobody (the
 * room is going away), then releases r if nothing else keeps it. */
void signal_room_evict(struct server *s, struct room *r, int code, const char *reason);
/* Releases rooms whose lingering has ended (run from a timer). */
void signal_rooms_sweep(struct server *s);
/* Destroys r if nothing keeps it alive. */
void signal_room_release(struct server *s, struct room *r);
/* Creates a room (with its history); NULL on failure. */
struct room *signal_room_create(struct server *s, const char *room_id, uint64_t now);

/* Handlers: sig_rtc.c, sig_chat.c, sig_file.c, sig_record.c, sig_stats.c, sig_e2ee.c. */
enum api_err sig_chat_message(struct sig_ctx *ctx, char *detail, size_t detail_len);
enum api_err sig_reaction(struct sig_ctx *ctx, char *detail, size_t detail_len);
enum api_err sig_file_share_offer(struct sig_ctx *ctx, char *detail, size_t detail_len);
enum api_err sig_file_share_accept(struct sig_ctx *ctx, char *detail, size_t detail_len);
enum api_err sig_file_share_reject(struct sig_ctx *ctx, char *detail, size_t detail_len);
enum api_err sig_file_share_progress(struct sig_ctx *ctx, char *detail, size_t detail_len);
enum api_err sig_file_share_complete(struct sig_ctx *ctx, char *detail, size_t detail_len);
enum api_err sig_recording_control(struct sig_ctx *ctx, char *detail, size_t detail_len);
enum api_err sig_live_stream_start(struct sig_ctx *ctx, char *detail, size_t detail_len);
enum api_err sig_live_stream_stop(struct sig_ctx *ctx, char *detail, size_t detail_len);
enum api_err sig_network_stats(struct sig_ctx *ctx, char *detail, size_t detail_len);
enum api_err sig_quality_update(struct sig_ctx *ctx, char *detail, size_t detail_len);
enum api_err sig_analytics_event(struct sig_ctx *ctx, char *detail, size_t detail_len);
enum api_err sig_virtual_background_update(struct sig_ctx *ctx, char *detail, size_t detail_len);
enum api_err sig_e2ee_key_exchange(struct sig_ctx *ctx, char *detail, size_t detail_len);
enum api_err sig_e2ee_ratchet_update(struct sig_ctx *ctx, char *detail, size_t detail_len);
enum api_err sig_role_updated(struct sig_ctx *ctx, char *detail, size_t detail_len);
enum api_err sig_permission_updated(struct sig_ctx *ctx, char *detail, size_t detail_len);
enum api_err sig_room_settings_update(struct sig_ctx *ctx, char *detail, size_t detail_len);
enum api_err sig_participant_update(struct sig_ctx *ctx, char *detail, size_t detail_len);
enum api_err sig_media_control(struct sig_ctx *ctx, char *detail, size_t detail_len);
enum api_err sig_screen_share_control(struct sig_ctx *ctx, char *detail, size_t detail_len);
enum api_err sig_hand_raise(struct sig_ctx *ctx, char *detail, size_t detail_len);
enum api_err sig_waiting_room_admit(struct sig_ctx *ctx, char *detail, size_t detail_len);
enum api_err sig_waiting_room_reject(struct sig_ctx *ctx, char *detail, size_t detail_len);
enum api_err sig_breakout_room_create(struct sig_ctx *ctx, char *detail, size_t detail_len);
enum api_err sig_breakout_room_assign(struct sig_ctx *ctx, char *detail, size_t detail_len);
enum api_err sig_breakout_room_close(struct sig_ctx *ctx, char *detail, size_t detail_len);

enum api_err sig_offer(struct sig_ctx *ctx, char *detail, size_t detail_len);
enum api_err sig_answer(struct sig_ctx *ctx, char *detail, size_t detail_len);
enum api_err sig_ice_candidate(struct sig_ctx *ctx, char *detail, size_t detail_len);

#endif
