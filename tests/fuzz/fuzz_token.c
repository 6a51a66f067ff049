/* libFuzzer target: token parsing. Arbitrary text goes to the JWT verifier
 * (auth/token.c) and the breakout-grant verifier (auth/grant.c); a verified
 * grant must re-verify to the same claims, and a grant minted from fields
 * taken from the input must verify. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/grant.h"
#include "auth/token.h"
#include "log.h"

/* Quiet: the server logs refusals at info. */
__attribute__((constructor)) static void quiet(void) { log_threshold = LOG_ERROR; }

static const unsigned char SECRET[] = "fuzz-secret-fuzz-secret-fuzz-secret!";
static const unsigned char KEY[GRANT_KEY_LEN] = "0123456789abcdef0123456789abcde";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static struct token_verifier v;
  static int init;
  if (!init) {
    char err[128];
    if (token_verifier_init(&v, "HS256", SECRET, sizeof(SECRET) - 1, err, sizeof(err)) != 0) abort();
    init = 1;
  }
  char *s = malloc(size + 1);
  memcpy(s, data, size);
  s[size] = '\0';
  struct token_claims c;
  if (token_verify(&v, s, 1700000000, &c) == API_OK) {
    if (!id_valid(c.sub, strlen(c.sub))) abort();
  }
  struct grant_claims g;
  if (grant_verify(KEY, s, size, 1, &g) == API_OK) {
    struct grant_claims g2;
    if (grant_verify(KEY, s, size, 1, &g2) != API_OK || memcmp(&g, &g2, sizeof(g)) != 0) abort();
  }
  /* Mint from input fields: whatever mints must verify to the same fields. */
  struct grant_claims m;
  memset(&m, 0, sizeof(m));
  size_t k = size < 4 * ID_MAX ? size / 4 : ID_MAX;
  memcpy(m.room, s, k);
  memcpy(m.parent, s + k, k);
  memcpy(m.breakout, s + 2 * k, k);
  memcpy(m.user, s + 3 * k, k);
  m.exp = 2;
  char out[GRANT_MAX + 1];
  int n = grant_mint(KEY, &m, out, sizeof(out));
  if (n > 0) {
    struct grant_claims back;
    if (grant_verify(KEY, out, (size_t)n, 1, &back) != API_OK || strcmp(back.room, m.room) != 0 ||
        strcmp(back.user, m.user) != 0 || strcmp(back.jti, m.jti) != 0)
      abort();
  }
  free(s);
  return 0;
}
