/* TURN REST credentials (see turn.h): the time-limited username and HMAC
 * credential that coturn's use-auth-secret mode checks, and the ICE-server
 * list (STUN URLs, TURN with credentials) that GET /webrtc/config and
 * room-state hand out. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth/turn.h"
#include "config.h"
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

/* Appends the comma-separated urls as a JSON array; returns it, or NULL if
 * the list is empty. */
static json_t *url_list(const char *csv) {
  json_t *a = json_array();
  const char *p = csv ? csv : "";
  while (*p) {
    while (*p == ',' || *p == ' ') p++;
    const char *e = p;
    while (*e && *e != ',') e++;
    const char *t = e;
    while (t > p && t[-1] == ' ') t--;
    if (t > p) json_array_append_new(a, json_stringn(p, (size_t)(t - p)));
    p = e;
  }
  if (json_array_size(a) == 0) {
    json_decref(a);
    return NULL;
  }
  return a;
}

json_t *turn_ice_servers(const struct config *cfg, const char *user_id, int64_t now_s) {
  json_t *list = json_array();
  json_t *stun = url_list(cfg->stun_urls);
  if (stun) json_array_append_new(list, json_pack("{s:o}", "urls", stun));
  json_t *turn = url_list(cfg->turn_urls);
  if (turn && user_id && cfg->turn_secret && *cfg->turn_secret) {
    char username[TURN_USERNAME_MAX], cred[TURN_CREDENTIAL_MAX];
    int64_t expiry = now_s + cfg->turn_ttl;
    if (turn_credentials(cfg->turn_secret, user_id, expiry, username, sizeof(username), cred,
                         sizeof(cred)) == 0) {
      json_array_append_new(list, json_pack("{s:o,s:s,s:s,s:i}", "urls", turn, "username", username,
                                            "credential", cred, "ttl", cfg->turn_ttl));
      turn = NULL;
    }
  }
  json_decref(turn);
  return list;
}

