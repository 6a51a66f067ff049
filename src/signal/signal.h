/* Signaling: the WebSocket adapter over the room domain. The message table
 * (one row per type: stable id, handler, command, flags), dispatch, a
 * connection's session in a room (join, resume, replacement, the grace
 * period), and delivery of the bus's messages to local connections. Only
 * this module writes WebSocket error replies. */
#ifndef HUDDLE_SIGNAL_SIGNAL_H
#define HUDDLE_SIGNAL_SIGNAL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/token.h"
#include "bus/bus.h"
#include "guard/errors.h"
#include "lib/envelope.h"
#include "net/server.h"
#include "room/command.h"
#include "room/hub.h"
#include "room/msgtype.h"

#define SIG_SERVER_ONLY 0x1   /* clients may not send it */
#define SIG_NEEDS_TO 0x2      /* directed: "to" is required */
#define SIG_SPANS 0x4         /* decoded without a tree (envelope_decode_spans): the
                                 handler reads in->member, never in->payload */

/* The payload members a SIG_SPANS handler reads: indexes into in->member. */
enum sig_member {
  SIG_M_SDP, SIG_M_TYPE, SIG_M_CANDIDATE, SIG_M_SDP_MID, SIG_M_SDP_MLINE_INDEX, /* offer, answer, ice-candidate */
  SIG_M_TEXT, SIG_M_REPLY_TO,                                                 /* chat-message */
  SIG_M__COUNT
};

struct sig_ctx {
  struct hub *hub;
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
  enum command_id cmd;      /* permission and rate class, shared with REST */
  unsigned flags;
};

/* The hub a connection's server serves (main.c registers it as the
 * handlers' data). */
static inline struct hub *signal_hub(const struct conn *c) { return c->srv->handlers.data; }

/* Finds the table row for a type name, or NULL. */
const struct sig_type *signal_type_find(const char *name);
/* Number of rows and the i-th row, for documentation checks and tests. */
size_t signal_type_count(void);
const struct sig_type *signal_type_at(size_t i);
/* Stable id (enum msg_type) of a type name, or -1. */
int signal_type_index(const char *name);

/* Registers the session callbacks on h (main.c). */
void signal_sessions_register(struct hub *h);
/* Joins the upgraded connection c to room_id. A member already in the room
 * keeps its seat (one connection per user and room: the newest wins).
 * Users below moderator wait in the waiting room when it is on, unless
 * admitted (a grant). With resume_token (NULL: none), resumes the member's
 * session: the room log after last_seq (UINT64_MAX: not given), then
 * room-state with resumed true; a refused resume gets RESUME_* and joins
 * afresh. */
void signal_join(struct conn *c, const char *room_id, const struct token_claims *claims, int admitted,
                 const char *resume_token, uint64_t last_seq);
/* The net layer's callbacks (main.c wires them). */
void signal_on_message(struct conn *c, const char *data, size_t len);
void signal_on_binary(struct conn *c);
/* A cut connection, a dead peer or a close with 1001 puts the member away
 * for the grace period; anything else is a leave. */
void signal_on_end(struct conn *c, enum conn_end why, int code);
/* The bus delivery callback: writes m's frame to local recipients. arg: the hub. */
void signal_bus_deliver(void *arg, const struct bus_msg *m);
/* Sends an error to one connection (the one funnel for WebSocket errors). */
void signal_error(struct conn *c, enum api_err e, const char *ref, const char *detail,
                  int64_t retry_after_ms);

/* Handlers: sig_rtc.c, sig_chat.c, sig_file.c, sig_record.c, sig_stats.c, sig_e2ee.c,
 * sig_room.c, sig_media.c, sig_hand.c, sig_waiting.c, sig_breakout.c. */
enum api_err sig_chat_message(struct sig_ctx *ctx, char *detail, size_t detail_len);
enum api_err sig_reaction(struct sig_ctx *ctx, char *detail, size_t detail_len);
/* Writes a chat-message event's payload into out (reset first) as JSON
 * text, byte for byte what json_pack("{s:s,s:s%,s:s,s:b}", "message_id",
 * "text", "sender_name", "private"), then "reply_to" when not NULL, give
 * through json_dumpb(JSON_COMPACT | JSON_PRESERVE_ORDER); test_jwrite
 * compares the two. 0, or -1 on allocation failure. */
int sig_chat_payload(struct buf *out, const char *id, const char *text, size_t text_len, const char *name,
                     int private, const char *reply);
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

/* sig_rtc_extra.c: relays a null candidate as end-of-candidates ({"candidate": ""}),
 * and tells the offerer when its peer's answer was refused. */
enum api_err sig_rtc_end_of_candidates(struct sig_ctx *ctx);
void sig_rtc_answer_refused(struct sig_ctx *ctx, enum api_err why, const char *detail);

enum api_err sig_offer(struct sig_ctx *ctx, char *detail, size_t detail_len);
enum api_err sig_answer(struct sig_ctx *ctx, char *detail, size_t detail_len);
enum api_err sig_ice_candidate(struct sig_ctx *ctx, char *detail, size_t detail_len);

#endif
