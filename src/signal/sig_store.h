/* The signaling layer's side of the store seam (sig_store.c): records from
 * room life, and the gate that holds a room's messages behind a chat
 * message until the store has committed it. Hooks, called from signal.c
 * and sig_chat.c; issue 9 moves them with the room operations. */
#ifndef HUDDLE_SIGNAL_SIG_STORE_H
#define HUDDLE_SIGNAL_SIG_STORE_H

#include <stdint.h>
#include <uv.h>

#include "bus/bus.h"
#include "guard/errors.h"

struct server;
struct room;
struct sig_ctx;
struct sig_out;

/* Registers the history sink (every event and audit entry is stored). */
void sig_store_init(struct server *s);
/* Frees the gates (shutdown). */
void sig_store_free(struct server *s);
/* A room was created: continue its seq past what is stored, restore its
 * settings, record a room session. */
void sig_store_room_open(struct server *s, struct room *r);
/* A room closed: end its room session. */
void sig_store_room_close(struct server *s, struct room *r);
/* Sends chat message o (seq is the seq it will get) through the store:
 * durable, it is published once committed; relaxed, now. */
enum api_err sig_store_chat(struct sig_ctx *ctx, const struct sig_out *o, uint64_t seq);
/* From signal_send: 1 if m was queued behind a chat not yet stored (then
 * the gate holds its own ref on the frame), 0 to publish it now. */
int sig_store_hold(struct server *s, const struct bus_msg *m);

/* The retention job (a timer callback; data is the server): deletes chat
 * and analytics events older than --retention-days, and audits it. */
void sig_store_retention_run(uv_timer_t *t);

#endif
