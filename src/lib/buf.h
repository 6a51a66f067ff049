/* A growable byte buffer (curl's dynbuf, smaller). Always NUL-terminated
 * past len so text can be handed to C string functions. */
#ifndef HUDDLE_LIB_BUF_H
#define HUDDLE_LIB_BUF_H

#include <stddef.h>

struct buf {
  char *data;   /* owned; NULL until the first append */
  size_t len;   /* bytes in use, excluding the trailing NUL */
  size_t cap;   /* bytes allocated */
};

/* Appends n bytes; returns 0, or -1 on allocation failure (buf unchanged). */
int buf_append(struct buf *b, const void *p, size_t n);
/* Makes room for n more bytes past len (and the NUL) without changing
 * the content; returns 0, or -1 on allocation failure (buf unchanged). */
int buf_reserve(struct buf *b, size_t n);
/* Removes the first n bytes (n <= len). */
void buf_consume(struct buf *b, size_t n);
void buf_reset(struct buf *b);
void buf_free(struct buf *b);

#endif
