/* Room operations, shared by the WebSocket and REST adapters. Each takes the
 * hub, a room, an actor and already-parsed arguments; checks the rank rules;
 * changes the room; publishes what changed through the hub; and records the
 * audit log. None touches a socket. detail receives specifics on refusal. */
#ifndef HUDDLE_ROOM_OP_H
#define HUDDLE_ROOM_OP_H

#include <jansson.h>
#include <stddef.h>

#include "guard/errors.h"
#include "room/hub.h"

/* Who performs an operation: a member (WebSocket), or a REST caller
 * (possibly an admin service token, possibly not in the room). */
struct actor {
  const char *user_id;
  enum room_role role;
  uint32_t perms;
  int admin;
};

/* The actor for a member. */
struct actor op_actor_of(const struct participant *p);
/* 1 if a may act on target (a host, an admin, or a higher role). */
int op_outranks(const struct actor *a, const struct participant *target);

/* op_control.c: roles, permissions, settings, removal, enhanced info. */
enum api_err op_role_set(struct hub *h, struct room *r, const struct actor *a, const char *target,
                         const char *role, char *detail, size_t dl);
enum api_err op_perms_set(struct hub *h, struct room *r, const struct actor *a, const char *target,
                          json_t *perms, char *detail, size_t dl);
enum api_err op_settings_update(struct hub *h, struct room *r, const struct actor *a, json_t *patch,
                                char *detail, size_t dl);
enum api_err op_remove(struct hub *h, struct room *r, const struct actor *a, const char *target,
                       const char *reason, char *detail, size_t dl);
enum api_err op_info_update(struct hub *h, struct room *r, const struct actor *a, const char *target,
                            json_t *info, char *detail, size_t dl);
/* A member's public view with permissions, info and stats. New reference. */
json_t *op_participant_full_json(const struct participant *p);

/* op_media.c: mute, mute all, screen share. */
enum api_err op_media(struct hub *h, struct room *r, const struct actor *a, const char *target,
                      const char *kind, int enabled, char *detail, size_t dl);
enum api_err op_mute_all(struct hub *h, struct room *r, const struct actor *a, const char *kind,
                         char *detail, size_t dl);
enum api_err op_screen(struct hub *h, struct room *r, const struct actor *a, const char *target,
                       int start, char *detail, size_t dl);

/* op_hand.c: the hand-raise queue. */
enum api_err op_hand(struct hub *h, struct room *r, const struct actor *a, const char *target,
                     int raise, char *detail, size_t dl);
enum api_err op_hand_next(struct hub *h, struct room *r, const struct actor *a, json_t **out,
                          char *detail, size_t dl);

/* op_waiting.c: the waiting room. */
enum api_err op_waiting_admit(struct hub *h, struct room *r, const struct actor *a, const char *target,
                              char *detail, size_t dl);
enum api_err op_waiting_reject(struct hub *h, struct room *r, const struct actor *a, const char *target,
                               const char *reason, char *detail, size_t dl);
json_t *op_waiting_json(const struct room *r);

/* op_breakout.c: breakout rooms and the grants that move people. */
/* The breakout rooms body asks for (each spends room_create), as
 * op_breakout_create reads it: 0 when it names none. */
size_t op_breakout_units(const json_t *body);
enum api_err op_breakout_create(struct hub *h, struct room *r, const struct actor *a, json_t *body,
                                json_t **out, char *detail, size_t dl);
enum api_err op_breakout_assign(struct hub *h, struct room *r, const struct actor *a, const char *bid,
                                const char *target, char *detail, size_t dl);
enum api_err op_breakout_close(struct hub *h, struct room *r, const struct actor *a, const char *bid,
                               char *detail, size_t dl);
json_t *op_breakouts_json(struct hub *h, struct room *r);
/* A signed single-use grant for p to enter room_id (room/family.c). It
 * carries no role: the member's standing in the family (room/policy.c)
 * applies when it is used; origin is kept for callers and ignored. */
const char *op_grant_new(struct hub *h, const struct participant *p, const char *room_id, int origin);
/* Returns API_OK and fills claims if grant is valid for room_id. spend: use
 * it up (the upgrade); 0: a peek that leaves it usable (validate). */
enum api_err op_grant_check(struct hub *h, const char *grant, const char *room_id,
                            struct token_claims *claims, int spend);
void op_grants_prune(struct hub *h);
void op_grants_free(struct hub *h);

/* op_record.c: recording and live-stream control. `by` is the acting user;
 * on success *out receives the recording or stream (new reference). */
enum api_err op_recording_start(struct hub *h, struct room *r, const char *by, json_t **out);
enum api_err op_recording_stop(struct hub *h, struct room *r, const char *id, const char *by,
                               json_t **out);
enum api_err op_stream_start(struct hub *h, struct room *r, const char *by, json_t *body,
                             char *detail, size_t detail_len, json_t **out);
enum api_err op_stream_stop(struct hub *h, struct room *r, const char *id, const char *by,
                            json_t **out);
/* Stops whatever still records or streams in a closed room's history. */
void op_media_stop_all(struct hub *h, struct room_history *hist);

#endif
