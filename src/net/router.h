/* Path patterns with parameters, e.g. "/webrtc/rooms/{room_id}/participants".
 * Pure functions: the route table itself lives in api/api.c. */
#ifndef HUDDLE_NET_ROUTER_H
#define HUDDLE_NET_ROUTER_H

#include <stddef.h>

#define ROUTER_MAX_PARAMS 4

struct router_param {
  const char *name; size_t name_len;   /* points into the pattern */
  const char *value; size_t value_len; /* points into the path */
};

/* Matches path (no query string) against pattern segment by segment; a
 * "{name}" segment matches one non-empty segment. Returns the number of
 * parameters (>= 0) on a match, -1 otherwise. */
int router_match(const char *pattern, const char *path, size_t path_len,
                 struct router_param *params, int max_params);

#endif
