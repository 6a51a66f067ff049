/* The room domain's side of the store seam (durable.c): records from room
 * life, and the per-room gate that holds a room's messages behind a chat
 * message until the store has committed it. Called from the hub (hub.c:
 * publishing, room create/release, tick, free), from sig_chat.c (chat) and
 * from main.c (start-up). Includes the store, never net/signal/api. */
#ifndef HUDDLE_ROOM_DURABLE_H
#define HUDDLE_ROOM_DURABLE_H

#include <stddef.h>
#include <stdint.h>

#include "guard/errors.h"
#include "lib/outbuf.h"

struct hub;
struct room;
struct room_event;

/* Checks --chat-durability and registers the history sink (every event and
 * audit entry is stored). 0, or -1 with err. h->store must be open. */
int durable_init(struct hub *h, char *err, size_t err_len);
/* Frees the gates and unregisters the sink (shutdown, before the store closes). */
void durable_free(struct hub *h);
/* A room was created: continue its seq past what is stored, restore its
 * settings, record a room session. */
void durable_room_open(struct hub *h, struct room *r);
/* Before a room opens on this instance when several instances share the
 * database: what durable_room_open restores is read again from it (another
 * instance may have used the room since this one started), then cb(arg).
 * 0: cb will be called on the loop; 1: nothing to read, go on at once. */
int durable_room_refresh(struct hub *h, const char *room_id, void (*cb)(void *arg), void *arg);
/* A room closed: end its room session. */
void durable_room_close(struct hub *h, struct room *r);
/* Sends chat message e (seq is the seq it will get) through the store:
 * durable, it is published (and enters the room log) once committed;
 * relaxed, now; off, now and not stored. */
struct durable_chat_msg {   /* what the store keeps of a chat message; all borrowed */
  const char *message_id;
  const char *text;          /* sanitized, text_len bytes */
  size_t text_len;
  const char *sender_name;
  const char *reply_to;      /* NULL: none */
  uint64_t ts;               /* the message's time, also its analytics event's; 0: now */
};
enum api_err durable_chat(struct hub *h, struct room *r, const struct room_event *e, uint64_t seq,
                          const struct durable_chat_msg *m);
/* From hub_send: 1 if the frame (seq) was queued behind a chat not yet
 * stored (the gate holds its own ref; it enters the room log and the bus
 * when its turn comes), 0 to publish it now. */
int durable_hold(struct hub *h, struct room *r, uint64_t seq, int type, struct outbuf *frame, const char *to,
                 const char *except, const char *also, uint32_t only_perm);
/* POST /webrtc/admin/users/{user_id}/erase, before the store's erase is
 * submitted: closes the user's sessions in every live room (code 4007),
 * drops what rooms hold about it (waiting, hands, roles, overrides, bans,
 * rejections, breakout assignments), turns its chat in the room logs into
 * tombstones, drops other logged messages naming it, and anonymizes the
 * analytics and audit rings. What this records (its leaves) goes to the
 * store before the erase, so the erase covers it too. */
void durable_user_erase(struct hub *h, const char *user_id);
/* When the store's erase completed: the room logs once more, for messages
 * that were held behind a chat being stored when the erase began; only
 * entries with a seq the room had assigned by then (a user who came
 * straight back keeps what it said since, and its analytics events).
 * Without a matching durable_user_erase on this hub (another instance's
 * erase): every entry, and the analytics and audit rings again. */
void durable_user_erased(struct hub *h, const char *user_id);
/* What an erase of user_id makes of a logged frame: NULL and *drop 0 to
 * keep it, a new frame (the tombstone of the user's own chat), or *drop 1
 * when it names the user (a takeover's rebuild applies erases with it). */
struct outbuf *durable_erase_frame(const char *user_id, struct outbuf *frame, int *drop);
/* The seq of the last message r has published (entered its log): below
 * r->seq while messages wait behind a chat being stored. room-state and
 * other session messages carry it, so that the held messages a member
 * receives after them are numbered above what they said. */
uint64_t durable_published_seq(struct hub *h, const struct room *r);
/* From hub_tick: the retention job (--retention-days) once a second after
 * start, then hourly: deletes chat and analytics events older, and the
 * settings and policy of rooms that ended before the period (not of rooms
 * open here), which the room index forgets too; and audits it. */
void durable_tick(struct hub *h);

#endif
