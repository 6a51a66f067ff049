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
};

/* Called on the loop thread for every message to deliver locally. */
typedef void (*bus_deliver_cb)(void *arg, const struct bus_msg *m);

struct bus;

struct bus_ops {
  const char *name;
  /* Delivers m to its recipients, here and on other instances. Returns 0 or
   * a negative code; on error nothing was delivered. */
  int (*publish)(struct bus *b, const struct bus_msg *m);
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
