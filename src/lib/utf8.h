/* UTF-8 validation (RFC 3629: no overlong forms, no surrogates, nothing past
 * U+10FFFF), shared by the WebSocket reader and the JSON scanner. Runs of
 * ASCII are skipped many bytes at a time (SSE2 on x86_64, 8-byte words
 * elsewhere); only the non-ASCII sequences are decoded. */
#ifndef HUDDLE_LIB_UTF8_H
#define HUDDLE_LIB_UTF8_H

#include <stddef.h>

/* Returns 1 if s[0..n) is valid UTF-8, else 0. */
int utf8_valid(const void *s, size_t n);

/* Length (2 to 4) of the valid multi-byte sequence starting at s, with n
 * bytes available, or 0 if s[0] does not start one that is whole and valid.
 * s[0] must be >= 0x80. */
size_t utf8_seq(const unsigned char *s, size_t n);

#endif
