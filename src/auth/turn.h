/* TURN REST credentials, the form coturn's use-auth-secret accepts:
 * username "expiry:user_id", credential base64(HMAC-SHA1(secret, username)). */
#ifndef HUDDLE_AUTH_TURN_H
#define HUDDLE_AUTH_TURN_H

#include <stddef.h>
#include <jansson.h>
#include <stdint.h>

#define TURN_USERNAME_MAX 96
#define TURN_CREDENTIAL_MAX 32 /* base64 of 20 bytes is 28 characters */

/* Writes username and credential for user_id valid until expiry (Unix
 * seconds). Returns 0, or -1 if a buffer is too small or HMAC fails. */
int turn_credentials(const char *secret, const char *user_id, int64_t expiry,
                     char *username, size_t username_len,
                     char *credential, size_t credential_len);

struct config;

/* ICE servers as RTCIceServer objects (GET /webrtc/config, room-state): the
 * configured STUN URLs, and TURN with credentials valid from now_s only for
 * user_id (NULL: STUN only). Returns a new reference. */
json_t *turn_ice_servers(const struct config *cfg, const char *user_id, int64_t now_s);

#endif
