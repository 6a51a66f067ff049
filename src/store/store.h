/* The store: durable state (room sessions now; chat, analytics and
 * recordings in later issues). A back end exports one const struct
 * store_ops; SQLite is the default. See docs/internals/store.md. */
#ifndef HUDDLE_STORE_STORE_H
#define HUDDLE_STORE_STORE_H

#include <stddef.h>

struct store;

struct store_ops {
  const char *name;
  int (*healthy)(struct store *st);
  void (*close)(struct store *st);
};

struct store {
  const struct store_ops *ops;
};

/* Opens the default store under data_dir. Returns 0, or -1 with err. */
int store_open(struct store **out, const char *data_dir, char *err, size_t err_len);
int store_healthy(struct store *st);
const char *store_backend(struct store *st);
void store_close(struct store *st);

int store_sqlite_open(struct store **out, const char *path, char *err, size_t err_len);

#endif
