/* Base64 (RFC 4648): padded over OpenSSL's EVP_EncodeBlock, and the
 * unpadded, strict base64url that JWTs and breakout grants use. */
#ifndef HUDDLE_LIB_B64_H
#define HUDDLE_LIB_B64_H

#include <stddef.h>

/* Encodes in[0..len) into out with a NUL. Returns the encoded length, or -1
 * if out_len is smaller than 4*ceil(len/3)+1. */
int b64_encode(const unsigned char *in, size_t len, char *out, size_t out_len);

/* The 6-bit value of a base64url character, or -1. */
int b64url_value(char c);
/* Encodes in[0..len) as unpadded base64url into out with a NUL. Returns the
 * encoded length, or -1 if out is too small. */
int b64url_encode(const unsigned char *in, size_t len, char *out, size_t out_len);
/* Decodes unpadded base64url in[0..len) into out. Strict: no padding, no
 * other alphabet, no non-zero trailing bits, so each byte string has exactly
 * one encoding. Returns the decoded length, or -1 on bad input or when out
 * (at least len / 4 * 3 + 2 bytes suffice) is too small. */
int b64url_decode(const char *in, size_t len, unsigned char *out, size_t out_len);

#endif
