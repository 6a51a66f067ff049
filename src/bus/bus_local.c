/* The in-process bus: one instance, publish is a direct delivery. */
#include <stdlib.h>

#include "bus/bus.h"

static int local_publish(struct bus *b, const struct bus_msg *m, bus_publish_cb cb, void *arg) {
  b->deliver(b->arg, m);
  if (cb) cb(arg, 0);
  return 0;
}

static int local_replay(struct bus *b, const char *room_id, uint64_t after_seq, bus_deliver_cb deliver,
                        void *arg) {
  return BUS_E_NOTSUP;
}

static int local_healthy(struct bus *b) { return 1; }

static void local_close(struct bus *b) { free(b); }

static const struct bus_ops bus_local_ops = {"local", local_publish, local_replay, local_healthy, local_close};

int bus_local_new(struct bus **out, bus_deliver_cb deliver, void *arg) {
  struct bus *b = calloc(1, sizeof(*b));
  if (b == NULL) return -1;
  b->ops = &bus_local_ops;
  b->deliver = deliver;
  b->arg = arg;
  *out = b;
  return 0;
}
