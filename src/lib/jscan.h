/* A validating one-pass JSON scanner for the relay path (offer, answer,
 * ice-candidate): it checks that the whole input is JSON that jansson, as
 * jsonx_parse calls it, would accept within the same depth and value
 * limits (strict grammar, valid UTF-8, escapes and surrogate pairs, no
 * \u0000, integers within int64, no real that overflows, no duplicate key
 * anywhere), and locates a few members as spans into the input without
 * building a tree or copying. It is not a parser for general use: callers
 * that need a tree use jsonx_parse. See docs/internals/jscan.md. */
#ifndef HUDDLE_LIB_JSCAN_H
#define HUDDLE_LIB_JSCAN_H

#include <stddef.h>
#include <stdint.h>

enum jscan_kind {
  JSCAN_ABSENT = 0,  /* the member is not there */
  JSCAN_NULL,
  JSCAN_FALSE,
  JSCAN_TRUE,
  JSCAN_INTEGER,
  JSCAN_REAL,
  JSCAN_STRING,
  JSCAN_ARRAY,
  JSCAN_OBJECT,
};

#define JSCAN_ESC 0x1        /* the string has escapes */
#define JSCAN_ESC_OTHER 0x2  /* ... and not only \n and \r (an SDP's usual CRLF) */

/* A located value: bytes of the input, never copied. */
struct jscan_value {
  const char *p;          /* strings: the bytes between the quotes; others: the value's text */
  size_t len;
  enum jscan_kind kind;
  int escaped;            /* strings: 0, or JSCAN_ESC when p holds backslash escapes (read it
                             with jscan_unescape), with JSCAN_ESC_OTHER when some escape is
                             neither \n nor \r */
  int64_t integer;        /* JSCAN_INTEGER: the value */
};

/* A member to locate: name is matched byte for byte against keys written
 * without escapes; out receives its value (JSCAN_ABSENT when absent). */
struct jscan_key {
  const char *name;
  struct jscan_value *out;
};

/* What to locate: members of the top-level object, and members of the
 * object that is the value of top[inner] (inner >= ntop: none). */
struct jscan_query {
  const struct jscan_key *top;
  size_t ntop;
  size_t inner;
  const struct jscan_key *sub;
  size_t nsub;
};

enum jscan_result {
  JSCAN_OK = 0,          /* valid within the limits: jsonx_parse accepts it */
  JSCAN_INVALID,         /* not JSON as jansson reads it (syntax, UTF-8, escape, NUL, number range) */
  JSCAN_TOO_DEEP,        /* arrays/objects nested deeper than max_depth */
  JSCAN_TOO_LARGE,       /* more than max_values values */
  JSCAN_DUPLICATE_KEY,   /* an object has a key twice */
  JSCAN_UNSURE,          /* a form the scanner does not decide (a key written with
                            escapes, very many keys open at once, a long real):
                            ask jsonx_parse */
};

/* Scans s[0..len). Returns JSCAN_OK and fills every query out (may be NULL:
 * validate only), or another result; on any result but JSCAN_OK the outs
 * are unspecified. Anything but JSCAN_OK and JSCAN_UNSURE means
 * jsonx_parse refuses the input too, though not necessarily with the
 * matching code (it checks depth before syntax): callers that must report
 * the refusal ask jsonx_parse for its words. */
enum jscan_result jscan_scan(const char *s, size_t len, int max_depth, size_t max_values,
                             const struct jscan_query *q);

/* Writes the value of string v (kind JSCAN_STRING, from jscan_scan) to out,
 * which must hold v->len bytes (never more is needed), and returns its
 * length. No NUL is added. */
size_t jscan_unescape(const struct jscan_value *v, char *out);

/* The first up to n bytes of string v's value, written to out; returns how
 * many (fewer than n only when the value is shorter). */
size_t jscan_prefix(const struct jscan_value *v, char *out, size_t n);

/* Length of string v's value (v->len when it has no escapes). */
size_t jscan_string_len(const struct jscan_value *v);

#endif
