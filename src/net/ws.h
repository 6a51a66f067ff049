/* WebSocket connections: the upgrade handshake, our own RFC 6455 frame
 * parser (docs/adr/0004) with receive limits (message size, fragments per
 * message), keepalive pings, dead-peer detection and the close handshake.
 * Outgoing data frames are framed once by the caller (outbuf) and shared. */
#ifndef HUDDLE_NET_WS_H
#define HUDDLE_NET_WS_H

#include <stddef.h>

#include "guard/errors.h"
#include "lib/outbuf.h"

struct conn;

/* Checks the upgrade request headers of c. Returns API_OK,
 * API_ERR_UPGRADE_REQUIRED (not a WebSocket request) or API_ERR_BAD_REQUEST. */
enum api_err ws_handshake_check(struct conn *c);
/* Answers 101 and turns c into a WebSocket. Returns 0, or -1 (c is closed). */
int ws_accept(struct conn *c);

void ws_on_data(struct conn *c, char *data, size_t len);
/* The peer went away without a close frame. */
void ws_on_eof(struct conn *c);
/* Queues a data frame built by the caller. Consumes the caller's ref. */
void ws_send(struct conn *c, struct outbuf *frame);
/* Starts the close handshake with code and reason; the connection ends when
 * the peer answers or after a short wait. */
void ws_close(struct conn *c, int code, const char *reason);
void ws_free(struct conn *c);

/* Sec-WebSocket-Accept for key: base64(SHA-1(key + GUID)). out >= 29 bytes. */
void ws_accept_key(const char *key, size_t key_len, char *out);

#endif
