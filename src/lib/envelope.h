/* The WebSocket envelope (protocol.md): decoding what clients send and
 * encoding what the server sends, framed once into a shareable outbuf. */
#ifndef HUDDLE_LIB_ENVELOPE_H
#define HUDDLE_LIB_ENVELOPE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "guard/errors.h"
#include "lib/ids.h"
#include "lib/jscan.h"
#include "lib/jsonx.h"
#include "lib/outbuf.h"

#define ENVELOPE_ID_MAX 64    /* bytes of a client correlation id */
#define ENVELOPE_TYPE_MAX 32
#define ENVELOPE_MEMBERS_MAX 8 /* payload members envelope_decode_spans locates */

struct envelope_in {
  json_t *root;           /* owned: the parsed message; NULL when decoded without a tree */
  const char *type;       /* borrowed from root, or type_buf */
  const char *id;         /* borrowed; NULL when absent */
  const char *to;         /* borrowed; NULL when absent; valid per id_valid() */
  json_t *payload;        /* borrowed; an object, {} when absent; NULL when decoded without a tree */
  const char *raw_payload;  /* borrowed from the input: the payload's bytes as sent, or NULL */
  size_t raw_payload_len;
  /* envelope_decode_spans only: the payload members asked for, in the
   * order asked (JSCAN_ABSENT when absent), whichever way the message was
   * decoded. Strings point into the input (maybe escaped) or into root. */
  struct jscan_value member[ENVELOPE_MEMBERS_MAX];
  char type_buf[ENVELOPE_TYPE_MAX + 1];  /* type, id and to when decoded without a tree */
  char id_buf[ENVELOPE_ID_MAX + 1];
  char to_buf[ID_MAX + 1];
};

/* Which messages envelope_decode_spans decodes without a tree. */
struct envelope_spans {
  int (*type_ok)(const char *type);  /* 1: this type's handler reads only spans */
  const char *const *members;        /* payload members to locate (at most ENVELOPE_MEMBERS_MAX) */
  size_t nmembers;
};

/* Parses and checks one client message. On API_OK the caller owns
 * out->root and frees it with envelope_in_free(). On error *ref_out, when
 * not NULL, receives the message's "id" if one could be read (copied into
 * ref_buf), so the error can still name the message. */
enum api_err envelope_decode(const char *data, size_t len, const struct jsonx_limits *lim,
                             struct envelope_in *out, char *detail, size_t detail_len,
                             char *ref_buf, size_t ref_len);
void envelope_in_free(struct envelope_in *in);

/* Like envelope_decode, for the relay path: a message that the validating
 * scanner (lib/jscan.h) accepts, whose type sp->type_ok accepts, with a
 * non-empty object payload and an envelope that passes every check, is
 * decoded without a jansson tree (out->root and out->payload NULL; type,
 * id and to copied into out's buffers; out->raw_payload the payload's
 * bytes). Anything else goes through envelope_decode, so that refusals
 * carry the same code, detail and ref; then, for a type sp->type_ok
 * accepts, out->member is filled from the tree. */
enum api_err envelope_decode_spans(const char *data, size_t len, const struct jsonx_limits *lim,
                                   const struct envelope_spans *sp, struct envelope_in *out, char *detail,
                                   size_t detail_len, char *ref_buf, size_t ref_len);

/* Serializes a server message and frames it as one WebSocket text frame.
 * payload is borrowed; to and ref may be NULL. Returns a new outbuf (refs 1)
 * or NULL on allocation failure. */
struct outbuf *envelope_encode(const char *type, const char *room, const char *from,
                               const char *to, uint64_t seq, uint64_t ts, json_t *payload,
                               const char *ref);

/* Like envelope_encode, with the payload given as JSON text (relayed as
 * the client sent it, without parsing and serializing it again). */
struct outbuf *envelope_encode_raw(const char *type, const char *room, const char *from,
                                   const char *to, uint64_t seq, uint64_t ts, const char *payload,
                                   size_t payload_len, const char *ref);

#endif
