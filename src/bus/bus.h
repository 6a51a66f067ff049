/* The message bus: how a room message reaches every connection of the room,
 * on this instance or (later) on others through Redis. A back end exports
 * one const struct bus_ops. See docs/internals/bus.md. */
#ifndef HUDDLE_BUS_BUS_H
#define HUDDLE_BUS_BUS_H

#include "lib/outbuf.h"

struct bus_msg {
  const char *room_id;     /* borrowed */
  const char *to;          /* borrowed; NULL: every member */
  const char *except;      /* borrowed; NULL: nobody excluded */
  const char *also;        /* borrowed; NULL, or one more recipient (a sender's own copy) */
  uint32_t only_perm;      /* 0, or deliver only to members holding these PERM_* bits */
  int type;                /* stable message type id (room/msgtype.h), for metrics */
  struct outbuf *frame;    /* borrowed: publish takes its own refs */
  uint64_t seq;            /* the room's seq of this message (the owner assigned it) */
};

#define BUS_E_GAP (-2)     /* replay: the log no longer holds every message asked for */
#define BUS_E_NOTSUP (-3)  /* replay: this back end keeps no log (the owner's is in-process) */

/* Called on the loop thread for every message to deliver locally. */
typedef void (*bus_deliver_cb)(void *arg, const struct bus_msg *m);
/* Completion of an asynchronous publish: status 0 or a negative code. */
typedef void (*bus_publish_cb)(void *arg, int status);

struct bus;

struct bus_ops {
  const char *name;
  /* Delivers m to its recipients, here and on other instances. A back end
   * may complete later (Redis): cb, when not NULL, runs once on the loop
   * thread with the outcome. Returns 0, or a negative code: then nothing was
   * delivered and cb is never called. */
  int (*publish)(struct bus *b, const struct bus_msg *m, bus_publish_cb cb, void *arg);
  /* Calls deliver for each message of room_id with seq > after_seq that the
   * back end's log holds, in seq order. Returns 0, BUS_E_GAP when the log no
   * longer reaches back to after_seq + 1, or BUS_E_NOTSUP (the local bus:
   * the owner's room log, room/roomlog.h, is the log). */
  int (*replay)(struct bus *b, const char *room_id, uint64_t after_seq, bus_deliver_cb deliver, void *arg);
  int (*healthy)(struct bus *b);
  void (*close)(struct bus *b);
};

struct bus {
  const struct bus_ops *ops;
  bus_deliver_cb deliver;
  void *arg;
};

/* The in-process bus: publish delivers synchronously. */
int bus_local_new(struct bus **out, bus_deliver_cb deliver, void *arg);

#endif
