/* Base64 encoding (see b64.h). */
#include <stdint.h>

#include <openssl/evp.h>

#include "lib/b64.h"

int b64_encode(const unsigned char *in, size_t len, char *out, size_t out_len) {
  size_t need = 4 * ((len + 2) / 3) + 1;
  if (out_len < need || len > (1u << 30)) return -1;
  return EVP_EncodeBlock((unsigned char *)out, in, (int)len);
}

static const char url_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int b64url_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

int b64url_encode(const unsigned char *in, size_t len, char *out, size_t out_len) {
  size_t o = 0;
  for (size_t i = 0; i < len; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16;
    if (i + 1 < len) v |= (uint32_t)in[i + 1] << 8;
    if (i + 2 < len) v |= in[i + 2];
    size_t k = len - i >= 3 ? 4 : len - i + 1;
    for (size_t j = 0; j < k; j++) {
      if (o + 1 >= out_len) return -1;
      out[o++] = url_alphabet[(v >> (18 - 6 * j)) & 63];
    }
  }
  if (o >= out_len) return -1;
  out[o] = '\0';
  return (int)o;
}

int b64url_decode(const char *in, size_t len, unsigned char *out, size_t out_len) {
  uint32_t acc = 0;
  int bits = 0;
  size_t n = 0;
  if (len % 4 == 1) return -1;
  for (size_t i = 0; i < len; i++) {
    int val = b64url_value(in[i]);
    if (val < 0) return -1;
    acc = (acc << 6) | (uint32_t)val;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      if (n >= out_len) return -1;
      out[n++] = (unsigned char)(acc >> bits);
      acc &= (1u << bits) - 1;
    }
  }
  return acc != 0 ? -1 : (int)n;
}
