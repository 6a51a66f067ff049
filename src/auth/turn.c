/* TURN REST credentials (see turn.h): the time-limited username and HMAC
 * credential that coturn's use-auth-secret mode checks. This module only
 * computes them; choosing the expiry and serving them is api/ice.c's job. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth/turn.h"
#include "lib/b64.h"

int turn_credentials(const char *secret, const char *user_id, int64_t expiry,
                     char *username, size_t username_len,
                     char *credential, size_t credential_len) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  size_t secret_len;
  int n;

  if (username == NULL || username_len == 0 || credential == NULL || credential_len == 0)
    return -1;
  username[0] = '\0';
  credential[0] = '\0';
  if (secret == NULL || user_id == NULL) return -1;
  secret_len = strlen(secret);
  if (secret_len > INT32_MAX) return -1;

  n = snprintf(username, username_len, "%" PRId64 ":%s", expiry, user_id);
  if (n < 0 || (size_t)n >= username_len) goto fail;
  if (HMAC(EVP_sha1(), secret, (int)secret_len, (const unsigned char *)username,
           (size_t)n, mac, &mac_len) == NULL)
    goto fail;
  if (b64_encode(mac, mac_len, credential, credential_len) < 0) goto fail;
  return 0;

fail:
  username[0] = '\0';
  credential[0] = '\0';
  return -1;
}
