/* Refcounted send buffers and server-side WebSocket framing (see outbuf.h). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/outbuf.h"

struct outbuf *outbuf_new(size_t cap) {
  if (cap > SIZE_MAX - sizeof(struct outbuf)) return NULL;
  struct outbuf *b = malloc(sizeof(*b) + cap);
  if (b == NULL) return NULL;
  b->refs = 1;
  b->len = 0;
  b->cap = cap;
  return b;
}

void outbuf_unref(struct outbuf *b) {
  if (b && --b->refs == 0) free(b);
}

size_t outbuf_ws_header_len(size_t len) {
  return len < 126 ? 2 : len <= 0xffff ? 4 : 10;
}

void outbuf_ws_header(unsigned char *p, int opcode, size_t len) {
  p[0] = (unsigned char)(0x80 | (opcode & 0x0f));
  if (len < 126) {
    p[1] = (unsigned char)len;
  } else if (len <= 0xffff) {
    p[1] = 126;
    p[2] = (unsigned char)(len >> 8);
    p[3] = (unsigned char)len;
  } else {
    p[1] = 127;
    for (int i = 0; i < 8; i++) p[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
  }
}

struct outbuf *outbuf_ws_frame(int opcode, const void *payload, size_t len) {
  size_t h = outbuf_ws_header_len(len);
  if (len > SIZE_MAX - h) return NULL;
  struct outbuf *b = outbuf_new(h + len);
  if (b == NULL) return NULL;
  outbuf_ws_header(b->data, opcode, len);
  if (len) memcpy(b->data + h, payload, len);
  b->len = h + len;
  return b;
}
