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
#include "signal/envelope.h"

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
enum api_err signal_admission_check(struct server *s, const char *room_id,
                                    const struct token_claims *claims);
/* Joins the upgraded connection c to room_id: room-state to c, user-joined
 * to the others. A second connection of the same user replaces the first. */
void signal_join(struct conn *c, const char *room_id, const struct token_claims *claims);
void signal_on_message(struct conn *c, const char *data, size_t len);
void signal_on_binary(struct conn *c);
/* Takes c's participant out of its room (user-left to the others, reason
 * "left" when NULL). Idempotent: only the first call has an effect. */
void signal_detach(struct conn *c, const char *reason);
/* The bus delivery callback: writes m's frame to local recipients. */
void signal_bus_deliver(void *arg, const struct bus_msg *m);
/* Frees every room (at shutdown). */
void signal_rooms_free(struct server *s);

/* For handlers: sends type with payload (borrowed) from self to one user
 * (to) or to the room except `except`; assigns seq and ts. Returns 0 or -1. */
int signal_publish(struct sig_ctx *ctx, const char *type, const char *from, const char *to,
                   const char *except, json_t *payload);

/* Handlers (sig_rtc.c). */
enum api_err sig_offer(struct sig_ctx *ctx, char *detail, size_t detail_len);
enum api_err sig_answer(struct sig_ctx *ctx, char *detail, size_t detail_len);
enum api_err sig_ice_candidate(struct sig_ctx *ctx, char *detail, size_t detail_len);

#endif
