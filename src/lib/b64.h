/* Base64 (RFC 4648, padded) over OpenSSL's EVP_EncodeBlock. */
#ifndef HUDDLE_LIB_B64_H
#define HUDDLE_LIB_B64_H

#include <stddef.h>

/* Encodes in[0..len) into out with a NUL. Returns the encoded length, or -1
 * if out_len is smaller than 4*ceil(len/3)+1. */
int b64_encode(const unsigned char *in, size_t len, char *out, size_t out_len);

#endif
