/* The room policy's side of the store seam (durable_policy.c): what a room
 * needs to come back after a restart besides its settings. A room's
 * snapshot (in-room roles and permission overrides per user with their
 * first admitted standing, rejections, bans, the hand queue) is written as
 * one JSON text per room (STORE_POLICY) through the writer thread whenever
 * it changes, and read back from the store's room index when the room is
 * re-created. Called from durable.c (history sink, room open) and
 * op_hand.c (a hand raised or lowered by its owner is not audited). */
#ifndef HUDDLE_ROOM_DURABLE_POLICY_H
#define HUDDLE_ROOM_DURABLE_POLICY_H

#include <stdint.h>

struct hub;
struct room;

/* Writes r's snapshot if it differs from what the index holds. */
void durable_policy_save(struct hub *h, struct room *r);
/* r was deleted (DELETE /webrtc/rooms/{id}): forgets its policy, in memory
 * (bans, roles, hands) and in the store, like its settings. */
void durable_policy_forget(struct hub *h, struct room *r, uint64_t ts);
/* r was created: restores the stored snapshot, if any. Hands come back
 * as their owners' (away): shown again when each owner rejoins in time. */
void durable_policy_restore(struct hub *h, struct room *r);

/* 1 if the snapshot stored for room_id, a room not open now, bans user:
 * the ban comes back when the room opens, and must already hold for the
 * join that would open it. */
int durable_policy_banned(struct hub *h, const char *room_id, const char *user);
/* The same for a role or permission change the stored snapshot holds for
 * c's user: overlaid on c (the join that opens the room is admitted as
 * what the room made the user, as every later join is). */
struct token_claims;
void durable_policy_overlay(struct hub *h, const char *room_id, struct token_claims *c);

#endif
