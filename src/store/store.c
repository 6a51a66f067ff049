/* Store selection and the calls every back end shares (see store.h). */
#include <stdio.h>

#include "store/store.h"

int store_open(struct store **out, const char *data_dir, char *err, size_t err_len) {
  char path[4096];
  snprintf(path, sizeof(path), "%s/huddle.db", data_dir);
  return store_sqlite_open(out, path, err, err_len);
}

int store_healthy(struct store *st) { return st && st->ops->healthy(st); }

const char *store_backend(struct store *st) { return st ? st->ops->name : "none"; }

void store_close(struct store *st) {
  if (st) st->ops->close(st);
}
