/* Strict JSON parsing (see jsonx.h). */
#include <stdio.h>

#include "lib/jsonx.h"

int jsonx_depth(const char *s, size_t len) {
  int depth = 0, max = 0, in_str = 0;
  for (size_t i = 0; i < len; i++) {
    char c = s[i];
    if (in_str) {
      if (c == '\\') i++;
      else if (c == '"') in_str = 0;
    } else if (c == '"') {
      in_str = 1;
    } else if (c == '{' || c == '[') {
      if (++depth > max) max = depth;
    } else if (c == '}' || c == ']') {
      depth--;
    }
  }
  return max;
}

static size_t count_values(json_t *j, size_t limit) {
  size_t n = 1;
  if (json_is_object(j)) {
    const char *k;
    json_t *v;
    json_object_foreach(j, k, v) {
      n += count_values(v, limit);
      if (n > limit) return n;
    }
  } else if (json_is_array(j)) {
    size_t i;
    json_t *v;
    json_array_foreach(j, i, v) {
      n += count_values(v, limit);
      if (n > limit) return n;
    }
  }
  return n;
}

json_t *jsonx_parse(const char *s, size_t len, const struct jsonx_limits *lim,
                    enum api_err *err, char *detail, size_t detail_len) {
  if (detail && detail_len) detail[0] = '\0';
  if (jsonx_depth(s, len) > lim->max_depth) {
    *err = API_ERR_JSON_TOO_DEEP;
    if (detail) snprintf(detail, detail_len, "nesting deeper than %d", lim->max_depth);
    return NULL;
  }
  json_error_t je;
  json_t *j = json_loadb(s, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
  if (j == NULL) {
    *err = json_error_code(&je) == json_error_duplicate_key ? API_ERR_DUPLICATE_KEY
                                                            : API_ERR_INVALID_JSON;
    if (detail) snprintf(detail, detail_len, "%s at line %d column %d", je.text, je.line, je.column);
    return NULL;
  }
  if (count_values(j, lim->max_values) > lim->max_values) {
    json_decref(j);
    *err = API_ERR_JSON_TOO_LARGE;
    if (detail) snprintf(detail, detail_len, "more than %zu values", lim->max_values);
    return NULL;
  }
  *err = API_OK;
  return j;
}
