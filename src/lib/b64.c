/* Base64 encoding (see b64.h). */
#include <openssl/evp.h>

#include "lib/b64.h"

int b64_encode(const unsigned char *in, size_t len, char *out, size_t out_len) {
  size_t need = 4 * ((len + 2) / 3) + 1;
  if (out_len < need || len > (1u << 30)) return -1;
  return EVP_EncodeBlock((unsigned char *)out, in, (int)len);
}
