/* WebSocket connections: the upgrade handshake, our own RFC 6455 frame
 * parser (docs/adr/0004) with receive limits (message size, fragments per
 * message), keepalive pings, dead-peer detection and the close handshake.
 * Outgoing data frames are framed once by the caller (outbuf) and shared. */
#ifndef HUDDLE_NET_WS_H
#define HUDDLE_NET_WS_H

#include <stddef.h>
#include <stdint.h>

#include "guard/errors.h"
#include "lib/outbuf.h"

struct conn;
struct buf;

/* NOTE: one per WebSocket, so its size is part of an idle client's cost:
 * ordered by size without padding, the frame counters are 32-bit (a frame
 * that passes frame_begin is at most max-ws-message, 16 MiB, bytes), and the
 * buffer of a message spanning reads exists only while one does: 96 -> 64
 * bytes (docs/performance.md, memory per idle connection). It lives inside
 * struct conn (conn->ws_state), not in an allocation of its own: one malloc
 * header and its rounding less per connection. */
struct ws {
  uint64_t last_seen_ms;        /* loop time of the last byte received */
  struct buf *msg;              /* owned: a message spanning reads or frames, else NULL */
  uint8_t *ctrl;                /* owned: a control frame's payload while it arrives, else NULL */
  uint32_t remaining;           /* payload bytes of the current frame still to come */
  uint32_t offset;              /* payload bytes of the current frame seen (mask index) */
  unsigned frames;              /* data frames in the message being received */
  uint8_t hdr[14];              /* a frame header split across reads */
  uint8_t hdr_len;
  uint8_t in_frame;             /* a header was read; payload pending */
  uint8_t opcode, fin;          /* of the current frame */
  uint8_t msg_opcode;           /* OP_TEXT/OP_BINARY of the message being assembled, 0 if none */
  uint8_t mask[4];
  uint8_t ctrl_len;
  uint8_t close_started;        /* we sent a close frame */
  uint8_t close_received;       /* the peer sent one */
  uint8_t failed;               /* protocol error: input is dropped from now on */
};

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
