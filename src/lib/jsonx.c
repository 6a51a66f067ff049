/* Strict JSON parsing (see jsonx.h). */
#include <stdio.h>
#include <string.h>

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

/* Index just past the JSON value starting at i (valid JSON assumed). */
static size_t value_end(const char *s, size_t len, size_t i) {
  int depth = 0;
  for (; i < len; i++) {
    char c = s[i];
    if (c == '"') {
      for (i++; i < len && s[i] != '"'; i++)
        if (s[i] == '\\') i++;
      if (depth == 0) return i + 1;
    } else if (c == '{' || c == '[') {
      depth++;
    } else if (c == '}' || c == ']') {
      if (--depth == 0) return i + 1;
      if (depth < 0) return i; /* a scalar ended by its container */
    } else if (depth == 0 && (c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r')) {
      return i;
    }
  }
  return i;
}

static size_t skip_ws(const char *s, size_t len, size_t i) {
  while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) i++;
  return i;
}

int jsonx_member_span(const char *s, size_t len, const char *key, size_t *off, size_t *vlen) {
  size_t klen = strlen(key), i = skip_ws(s, len, 0);
  if (i >= len || s[i] != '{') return -1;
  i++;
  for (;;) {
    i = skip_ws(s, len, i);
    if (i >= len || s[i] != '"') return -1;
    size_t ks = i + 1, ke = value_end(s, len, i) - 1; /* the key's text */
    i = skip_ws(s, len, ke + 1);
    if (i >= len || s[i] != ':') return -1;
    i = skip_ws(s, len, i + 1);
    size_t ve = value_end(s, len, i);
    if (ke - ks == klen && memcmp(s + ks, key, klen) == 0) {
      *off = i;
      *vlen = ve - i;
      return 0;
    }
    i = skip_ws(s, len, ve);
    if (i >= len || s[i] != ',') return -1;
    i++;
  }
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

/* Our own words for a jansson parse error: its texts name library internals
 * ("... without JSON_ALLOW_NUL") and quote input back. */
static const char *parse_error_words(enum json_error_code code) {
  switch (code) {
  case json_error_duplicate_key: return "duplicate key in an object";
  case json_error_null_character:
  case json_error_null_byte_in_key: return "\\u0000 (NUL) is not allowed in strings or keys";
  case json_error_invalid_utf8: return "invalid UTF-8";
  case json_error_premature_end_of_input: return "unexpected end of input";
  case json_error_end_of_input_expected: return "extra data after the JSON value";
  case json_error_numeric_overflow: return "number out of range";
  case json_error_stack_overflow: return "nesting too deep";
  default: return "invalid JSON syntax";
  }
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
    if (detail) snprintf(detail, detail_len, "%s at line %d column %d", parse_error_words(json_error_code(&je)),
                         je.line, je.column);
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
