/* Refcounted send buffers: serialize once, frame once, share by refcount.
 *
 *   outbuf_new() -> refs=1 (caller) --ws_send(c, outbuf_ref(b))--> refs=2
 *   the write completes -> unref; the caller drops its own -> refs=0 -> free
 *
 * Refs are plain integers: only the loop thread touches them (design.md). */
#ifndef HUDDLE_LIB_OUTBUF_H
#define HUDDLE_LIB_OUTBUF_H

#include <stddef.h>
#include <stdint.h>

struct outbuf {
  uint32_t refs;          /* loop thread only: not atomic */
  size_t len;             /* bytes of data in use */
  size_t cap;             /* bytes allocated for data */
  unsigned char data[];   /* one complete WebSocket frame or HTTP response */
};

/* Returns a buffer with room for cap bytes, len 0 and refs 1, or NULL. */
struct outbuf *outbuf_new(size_t cap);
static inline struct outbuf *outbuf_ref(struct outbuf *b) {
  b->refs++;
  return b;
}
/* Drops one ref; frees at zero. NULL is ignored. */
void outbuf_unref(struct outbuf *b);

/* Builds a single unmasked server frame (FIN set) of opcode around payload.
 * Returns a new buffer (refs 1) or NULL. */
struct outbuf *outbuf_ws_frame(int opcode, const void *payload, size_t len);
/* Bytes of the frame header for a payload of len bytes (2, 4 or 10). */
size_t outbuf_ws_header_len(size_t len);
/* Writes the header for payload len at p (which has outbuf_ws_header_len). */
void outbuf_ws_header(unsigned char *p, int opcode, size_t len);

#endif
