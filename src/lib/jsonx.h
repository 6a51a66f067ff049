/* Strict JSON parsing for untrusted input: jansson with duplicate keys
 * rejected, plus our own limits on nesting depth and value count (jansson
 * alone allows depth 2048). */
#ifndef HUDDLE_LIB_JSONX_H
#define HUDDLE_LIB_JSONX_H

#include <jansson.h>
#include <stddef.h>

#include "guard/errors.h"

struct jsonx_limits {
  int max_depth;      /* arrays/objects nested deeper than this are refused */
  size_t max_values;  /* total values (every scalar, array and object) */
};

/* Parses s[0..len). Returns a new reference, or NULL with *err set to
 * API_ERR_INVALID_JSON, API_ERR_DUPLICATE_KEY, API_ERR_JSON_TOO_DEEP or
 * API_ERR_JSON_TOO_LARGE; detail (may be NULL) receives jansson's text with
 * line and column. */
json_t *jsonx_parse(const char *s, size_t len, const struct jsonx_limits *lim,
                    enum api_err *err, char *detail, size_t detail_len);

/* Finds the value of member key (spelled without escapes) of the top-level
 * object in s[0..len), which must be valid JSON (parse it first). Sets *off
 * and *vlen to the value's bytes and returns 0, or returns -1 if absent. */
int jsonx_member_span(const char *s, size_t len, const char *key, size_t *off, size_t *vlen);

/* Depth of the deepest array/object in s, counting only brackets outside
 * strings. Exposed for tests. */
int jsonx_depth(const char *s, size_t len);

#endif
