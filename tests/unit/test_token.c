/* Unit tests for auth/token.c. Most tokens are built by hand here (base64url
 * of exact header and payload bytes, signed with OpenSSL's HMAC) so each test
 * controls what libjwt and token_verify see. RSA fixtures live in tests/data:
 * set HUDDLE_TEST_DATA to that directory when running from elsewhere. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth/token.h"

#define NOW 1700000000LL
#define FAR 4102444800LL /* 2100-01-01 */
#define SECRET "0123456789abcdef0123456789abcdef-test-secret"
#define HS256_HEADER "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"
#define HS512_HEADER "{\"alg\":\"HS512\",\"typ\":\"JWT\"}"
#define MINIMAL_PAYLOAD "{\"sub\":\"alice\",\"exp\":4102444800}"

static struct token_verifier hs256; /* HS256 with SECRET, for the whole group */

/* ---- Helpers ---- */

static const char *data_dir(void) {
  const char *d = getenv("HUDDLE_TEST_DATA");
  if (d != NULL && d[0] != '\0') return d;
#ifdef HUDDLE_TEST_DATA_DIR
  return HUDDLE_TEST_DATA_DIR;
#else
  return "../tests/data";
#endif
}

static void *xmalloc(size_t n) {
  void *p = malloc(n);
  if (p == NULL) abort();
  return p;
}

/* Reads tests/data/<name> into a malloc'd, NUL-terminated buffer. */
static unsigned char *read_data(const char *name, size_t *len) {
  char path[1024];
  unsigned char *buf;
  FILE *f;
  long size;

  snprintf(path, sizeof(path), "%s/%s", data_dir(), name);
  f = fopen(path, "rb");
  if (f == NULL) fail_msg("cannot open %s (set HUDDLE_TEST_DATA)", path);
  assert_int_equal(fseek(f, 0, SEEK_END), 0);
  size = ftell(f);
  assert_true(size > 0);
  rewind(f);
  buf = xmalloc((size_t)size + 1);
  assert_int_equal(fread(buf, 1, (size_t)size, f), (size_t)size);
  fclose(f);
  buf[size] = '\0';
  *len = (size_t)size;
  return buf;
}

/* Unpadded base64url of in[0..len), malloc'd. */
static char *b64url(const void *in, size_t len) {
  char *out = xmalloc(4 * ((len + 2) / 3) + 1);
  size_t j = 0;
  int n;

  n = EVP_EncodeBlock((unsigned char *)out, in, (int)len);
  for (int i = 0; i < n && out[i] != '='; i++)
    out[j++] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
  out[j] = '\0';
  return out;
}

/* Builds "b64url(header).b64url(payload).b64url(HMAC-md(key, first two))",
 * malloc'd; md NULL leaves the signature empty. */
static char *make_token(const EVP_MD *md, const void *key, size_t key_len,
                        const char *header, const char *payload) {
  char *h = b64url(header, strlen(header)), *p = b64url(payload, strlen(payload));
  size_t signing_len = strlen(h) + 1 + strlen(p);
  size_t cap = signing_len + 2 + 4 * EVP_MAX_MD_SIZE / 3 + 4;
  char *tok = xmalloc(cap);

  snprintf(tok, cap, "%s.%s.", h, p);
  if (md != NULL) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    char *s;
    assert_non_null(HMAC(md, key, (int)key_len, (const unsigned char *)tok, signing_len,
                         mac, &mac_len));
    s = b64url(mac, mac_len);
    strcat(tok, s);
    free(s);
  }
  free(h);
  free(p);
  return tok;
}

/* Signs payload as HS256 with SECRET and verifies it with the group verifier. */
static enum api_err verify_hs256(const char *payload, struct token_claims *out) {
  char *tok = make_token(EVP_sha256(), SECRET, strlen(SECRET), HS256_HEADER, payload);
  enum api_err e = token_verify(&hs256, tok, NOW, out);
  free(tok);
  return e;
}

static void assert_invalid_payload(const char *payload) {
  struct token_claims c;
  assert_int_equal(verify_hs256(payload, &c), API_ERR_INVALID_TOKEN);
}

static int group_setup(void **state) {
  (void)state;
  return token_verifier_init(&hs256, "HS256", (const unsigned char *)SECRET,
                             strlen(SECRET), NULL, 0);
}

static int group_teardown(void **state) {
  (void)state;
  token_verifier_close(&hs256);
  return 0;
}

/* ---- Accepting ---- */

static void verify_accepts_valid_token_with_all_claims(void **state) {
  struct token_claims c;
  (void)state;
  assert_int_equal(verify_hs256(
      "{\"sub\":\"alice_01\",\"name\":\"Alice \xc3\x85ngstr\xc3\xb6m\","
      "\"room\":\"standup.daily\",\"role\":\"moderator\","
      "\"perms\":{\"can_record\":true,\"can_chat\":false},\"admin\":true,"
      "\"exp\":4102444800,\"nbf\":1690000000,\"iat\":1690000001,"
      "\"aud\":\"huddle\",\"iss\":\"app\",\"jti\":[1,2]}", &c), API_OK);
  assert_string_equal(c.sub, "alice_01");
  assert_string_equal(c.name, "Alice \xc3\x85ngstr\xc3\xb6m");
  assert_string_equal(c.room, "standup.daily");
  assert_int_equal(c.role, ROOM_ROLE_MODERATOR);
  assert_int_equal(c.perms_set, PERM_RECORD | PERM_CHAT);
  assert_int_equal(c.perms_val, PERM_RECORD);
  assert_int_equal(c.admin, 1);
  assert_int_equal(c.exp, FAR);
  assert_int_equal(c.nbf, 1690000000);
  assert_int_equal(c.iat, 1690000001);
}

static void verify_defaults_absent_optional_claims(void **state) {
  struct token_claims c;
  (void)state;
  assert_int_equal(verify_hs256(MINIMAL_PAYLOAD, &c), API_OK);
  assert_string_equal(c.sub, "alice");
  assert_string_equal(c.name, "");
  assert_string_equal(c.room, "");
  assert_int_equal(c.role, ROOM_ROLE_PARTICIPANT);
  assert_int_equal(c.perms_set, 0);
  assert_int_equal(c.perms_val, 0);
  assert_int_equal(c.admin, 0);
  assert_int_equal(c.nbf, 0);
  assert_int_equal(c.iat, 0);
}

static void verify_accepts_rs256_token_signed_with_private_key(void **state) {
  struct token_verifier rs;
  struct token_claims c;
  size_t pub_len, priv_len;
  unsigned char *pub = read_data("rsa_public.pem", &pub_len);
  unsigned char *priv = read_data("rsa_private.pem", &priv_len);
  jwt_t *jwt = NULL;
  char *tok;
  (void)state;

  assert_int_equal(jwt_new(&jwt), 0);
  assert_int_equal(jwt_add_grant(jwt, "sub", "rsa-user"), 0);
  assert_int_equal(jwt_add_grant(jwt, "role", "host"), 0);
  assert_int_equal(jwt_add_grant_int(jwt, "exp", (long)FAR), 0);
  assert_int_equal(jwt_set_alg(jwt, JWT_ALG_RS256, priv, (int)priv_len), 0);
  tok = jwt_encode_str(jwt);
  assert_non_null(tok);
  jwt_free(jwt);

  assert_int_equal(token_verifier_init(&rs, "RS256", pub, pub_len, NULL, 0), 0);
  assert_int_equal(token_verify(&rs, tok, NOW, &c), API_OK);
  assert_string_equal(c.sub, "rsa-user");
  assert_int_equal(c.role, ROOM_ROLE_HOST);
  assert_int_equal(c.exp, FAR);

  token_verifier_close(&rs);
  free(tok);
  free(pub);
  free(priv);
}

static void verify_accepts_token_of_8kib_but_not_more(void **state) {
  /* The pad claim is ignored; only the token's length matters. */
  char payload[7000], *tok;
  struct token_claims c;
  size_t len;
  (void)state;

  /* 6000 payload bytes encode to 8000 characters; with the header and the
   * signature the token is just under 8 KiB. */
  snprintf(payload, sizeof(payload), "{\"sub\":\"alice\",\"exp\":4102444800,\"pad\":\"%0*d\"}",
           6000 - 42, 0);
  tok = make_token(EVP_sha256(), SECRET, strlen(SECRET), HS256_HEADER, payload);
  len = strlen(tok);
  assert_true(len > 8000 && len <= 8192);
  assert_int_equal(token_verify(&hs256, tok, NOW, &c), API_OK);
  free(tok);

  snprintf(payload, sizeof(payload), "{\"sub\":\"alice\",\"exp\":4102444800,\"pad\":\"%0*d\"}",
           6200 - 42, 0);
  tok = make_token(EVP_sha256(), SECRET, strlen(SECRET), HS256_HEADER, payload);
  assert_true(strlen(tok) > 8192);
  assert_int_equal(token_verify(&hs256, tok, NOW, &c), API_ERR_INVALID_TOKEN);
  free(tok);
}

/* ---- Time ---- */

static void verify_rejects_expired_token_and_zeroes_out(void **state) {
  struct token_claims c;
  (void)state;
  memset(&c, 0xAA, sizeof(c));
  /* exp == now is already expired. */
  assert_int_equal(verify_hs256("{\"sub\":\"alice\",\"exp\":1700000000}", &c),
                   API_ERR_TOKEN_EXPIRED);
  assert_string_equal(c.sub, "");
  assert_int_equal(c.exp, 0);
  assert_int_equal(verify_hs256("{\"sub\":\"alice\",\"exp\":1}", &c), API_ERR_TOKEN_EXPIRED);
}

static void verify_rejects_token_before_nbf(void **state) {
  struct token_claims c;
  (void)state;
  assert_int_equal(verify_hs256("{\"sub\":\"alice\",\"exp\":4102444800,\"nbf\":1700000001}", &c),
                   API_ERR_TOKEN_NOT_YET_VALID);
  assert_int_equal(verify_hs256("{\"sub\":\"alice\",\"exp\":4102444800,\"nbf\":1700000000}", &c),
                   API_OK);
}

/* ---- Signature and algorithm ---- */

static void verify_rejects_token_signed_with_other_secret(void **state) {
  const char *other = "another-secret-that-is-32-bytes-long!!";
  char *tok = make_token(EVP_sha256(), other, strlen(other), HS256_HEADER, MINIMAL_PAYLOAD);
  struct token_claims c;
  (void)state;
  assert_int_equal(token_verify(&hs256, tok, NOW, &c), API_ERR_INVALID_TOKEN);
  free(tok);
}

static void verify_rejects_alg_none(void **state) {
  const char *none = "{\"alg\":\"none\",\"typ\":\"JWT\"}";
  char *unsigned_tok = make_token(NULL, NULL, 0, none, MINIMAL_PAYLOAD);
  char *signed_tok = make_token(EVP_sha256(), SECRET, strlen(SECRET), none, MINIMAL_PAYLOAD);
  struct token_claims c;
  (void)state;
  assert_int_equal(token_verify(&hs256, unsigned_tok, NOW, &c), API_ERR_INVALID_TOKEN);
  assert_int_equal(token_verify(&hs256, signed_tok, NOW, &c), API_ERR_INVALID_TOKEN);
  free(unsigned_tok);
  free(signed_tok);
}

static void verify_rejects_hs256_token_keyed_with_rsa_public_key(void **state) {
  struct token_verifier rs, hs_pem;
  struct token_claims c;
  size_t pub_len;
  unsigned char *pub = read_data("rsa_public.pem", &pub_len);
  char *tok = make_token(EVP_sha256(), pub, pub_len, HS256_HEADER, MINIMAL_PAYLOAD);
  (void)state;

  /* Control: the forged token is well formed, so an HS256 verifier keyed
   * with the PEM bytes accepts it. */
  assert_int_equal(token_verifier_init(&hs_pem, "HS256", pub, pub_len, NULL, 0), 0);
  assert_int_equal(token_verify(&hs_pem, tok, NOW, &c), API_OK);

  assert_int_equal(token_verifier_init(&rs, "RS256", pub, pub_len, NULL, 0), 0);
  assert_int_equal(token_verify(&rs, tok, NOW, &c), API_ERR_INVALID_TOKEN);

  token_verifier_close(&rs);
  token_verifier_close(&hs_pem);
  free(tok);
  free(pub);
}

static void verify_rejects_hs512_token_when_hs256_configured(void **state) {
  struct token_verifier hs512;
  struct token_claims c;
  char *tok = make_token(EVP_sha512(), SECRET, strlen(SECRET), HS512_HEADER, MINIMAL_PAYLOAD);
  (void)state;

  assert_int_equal(token_verifier_init(&hs512, "HS512", (const unsigned char *)SECRET,
                                       strlen(SECRET), NULL, 0), 0);
  assert_int_equal(token_verify(&hs512, tok, NOW, &c), API_OK); /* control */
  assert_int_equal(token_verify(&hs256, tok, NOW, &c), API_ERR_INVALID_TOKEN);
  token_verifier_close(&hs512);
  free(tok);
}

static void verify_rejects_duplicate_alg_in_header(void **state) {
  /* libjwt would take the last "alg". */
  char *tok = make_token(EVP_sha512(), SECRET, strlen(SECRET),
                         "{\"alg\":\"HS256\",\"alg\":\"HS512\"}", MINIMAL_PAYLOAD);
  struct token_claims c;
  (void)state;
  assert_int_equal(token_verify(&hs256, tok, NOW, &c), API_ERR_INVALID_TOKEN);
  free(tok);
}

static void verify_rejects_rs256_token_with_swapped_payload(void **state) {
  struct token_verifier rs;
  struct token_claims c;
  size_t pub_len, priv_len;
  unsigned char *pub = read_data("rsa_public.pem", &pub_len);
  unsigned char *priv = read_data("rsa_private.pem", &priv_len);
  const char *evil = "{\"sub\":\"mallory\",\"exp\":4102444800,\"admin\":true}";
  char *evil_b64 = b64url(evil, strlen(evil));
  char forged[4096], *tok, *dot1, *dot2;
  jwt_t *jwt = NULL;
  (void)state;

  assert_int_equal(jwt_new(&jwt), 0);
  assert_int_equal(jwt_add_grant(jwt, "sub", "alice"), 0);
  assert_int_equal(jwt_add_grant_int(jwt, "exp", (long)FAR), 0);
  assert_int_equal(jwt_set_alg(jwt, JWT_ALG_RS256, priv, (int)priv_len), 0);
  tok = jwt_encode_str(jwt);
  assert_non_null(tok);
  jwt_free(jwt);
  dot1 = strchr(tok, '.');
  dot2 = strchr(dot1 + 1, '.');
  snprintf(forged, sizeof(forged), "%.*s.%s%s", (int)(dot1 - tok), tok, evil_b64, dot2);

  assert_int_equal(token_verifier_init(&rs, "RS256", pub, pub_len, NULL, 0), 0);
  assert_int_equal(token_verify(&rs, tok, NOW, &c), API_OK); /* control */
  assert_int_equal(token_verify(&rs, forged, NOW, &c), API_ERR_INVALID_TOKEN);
  token_verifier_close(&rs);
  free(evil_b64);
  free(tok);
  free(pub);
  free(priv);
}

static void verify_rejects_malformed_shapes(void **state) {
  char *good = make_token(EVP_sha256(), SECRET, strlen(SECRET), HS256_HEADER, MINIMAL_PAYLOAD);
  char buf[1024];
  struct token_claims c;
  (void)state;

  assert_int_equal(token_verify(&hs256, good, NOW, &c), API_OK); /* control */
  assert_int_equal(token_verify(&hs256, NULL, NOW, &c), API_ERR_INVALID_TOKEN);
  assert_int_equal(token_verify(&hs256, "", NOW, &c), API_ERR_INVALID_TOKEN);
  assert_int_equal(token_verify(&hs256, "abc", NOW, &c), API_ERR_INVALID_TOKEN);
  assert_int_equal(token_verify(&hs256, "a.b", NOW, &c), API_ERR_INVALID_TOKEN);
  snprintf(buf, sizeof(buf), "%s.", good); /* three dots */
  assert_int_equal(token_verify(&hs256, buf, NOW, &c), API_ERR_INVALID_TOKEN);
  snprintf(buf, sizeof(buf), "%s=", good); /* padding */
  assert_int_equal(token_verify(&hs256, buf, NOW, &c), API_ERR_INVALID_TOKEN);
  snprintf(buf, sizeof(buf), " %s", good); /* whitespace */
  assert_int_equal(token_verify(&hs256, buf, NOW, &c), API_ERR_INVALID_TOKEN);
  free(good);
}

/* ---- Payload shape ---- */

static void verify_rejects_json_array_payload(void **state) {
  (void)state;
  assert_invalid_payload("[{\"sub\":\"alice\",\"exp\":4102444800}]");
}

static void verify_rejects_duplicate_claim(void **state) {
  (void)state;
  assert_invalid_payload("{\"sub\":\"alice\",\"sub\":\"bob\",\"exp\":4102444800}");
}

/* ---- sub ---- */

static void verify_rejects_missing_sub(void **state) {
  (void)state;
  assert_invalid_payload("{\"exp\":4102444800}");
}

static void verify_rejects_sub_not_string(void **state) {
  (void)state;
  assert_invalid_payload("{\"sub\":42,\"exp\":4102444800}");
}

static void verify_rejects_sub_with_invalid_characters(void **state) {
  (void)state;
  assert_invalid_payload("{\"sub\":\"alice smith\",\"exp\":4102444800}");
  assert_invalid_payload("{\"sub\":\"alice/../bob\",\"exp\":4102444800}");
  assert_invalid_payload("{\"sub\":\"\",\"exp\":4102444800}");
}

static void verify_rejects_reserved_sub_server(void **state) {
  (void)state;
  assert_invalid_payload("{\"sub\":\"server\",\"exp\":4102444800}");
  assert_invalid_payload("{\"sub\":\"anonymous\",\"exp\":4102444800}"); /* what erase leaves */
  assert_int_equal(token_sub_reserved("anonymous"), 1);
  assert_int_equal(token_sub_reserved("anonymous2"), 0);
}

/* ---- exp, nbf ---- */

static void verify_rejects_missing_exp(void **state) {
  (void)state;
  assert_invalid_payload("{\"sub\":\"alice\"}");
}

static void verify_rejects_exp_as_string(void **state) {
  (void)state;
  assert_invalid_payload("{\"sub\":\"alice\",\"exp\":\"4102444800\"}");
}

static void verify_rejects_exp_as_real(void **state) {
  (void)state;
  assert_invalid_payload("{\"sub\":\"alice\",\"exp\":4102444800.5}");
}

static void verify_rejects_exp_as_bool(void **state) {
  (void)state;
  assert_invalid_payload("{\"sub\":\"alice\",\"exp\":true}");
}

static void verify_rejects_nbf_as_string(void **state) {
  (void)state;
  assert_invalid_payload("{\"sub\":\"alice\",\"exp\":4102444800,\"nbf\":\"0\"}");
}

/* ---- Other claims ---- */

static void verify_rejects_unknown_role(void **state) {
  (void)state;
  assert_invalid_payload("{\"sub\":\"alice\",\"exp\":4102444800,\"role\":\"owner\"}");
  assert_invalid_payload("{\"sub\":\"alice\",\"exp\":4102444800,\"role\":3}");
}

static void verify_rejects_unknown_permission(void **state) {
  (void)state;
  assert_invalid_payload(
      "{\"sub\":\"alice\",\"exp\":4102444800,\"perms\":{\"can_fly\":true}}");
}

static void verify_rejects_non_bool_permission(void **state) {
  (void)state;
  assert_invalid_payload(
      "{\"sub\":\"alice\",\"exp\":4102444800,\"perms\":{\"can_chat\":1}}");
  assert_invalid_payload("{\"sub\":\"alice\",\"exp\":4102444800,\"perms\":[\"can_chat\"]}");
}

static void verify_rejects_name_with_control_character(void **state) {
  (void)state;
  assert_invalid_payload("{\"sub\":\"alice\",\"exp\":4102444800,\"name\":\"Al\\nice\"}");
  assert_invalid_payload("{\"sub\":\"alice\",\"exp\":4102444800,\"name\":\"Al\\u007fice\"}");
}

static void verify_rejects_name_over_128_bytes(void **state) {
  char payload[512];
  struct token_claims c;
  (void)state;
  snprintf(payload, sizeof(payload), "{\"sub\":\"alice\",\"exp\":4102444800,\"name\":\"%0*d\"}",
           TOKEN_NAME_MAX, 0);
  assert_int_equal(verify_hs256(payload, &c), API_OK); /* control: 128 bytes */
  snprintf(payload, sizeof(payload), "{\"sub\":\"alice\",\"exp\":4102444800,\"name\":\"%0*d\"}",
           TOKEN_NAME_MAX + 1, 0);
  assert_invalid_payload(payload);
}

static void verify_rejects_admin_not_bool(void **state) {
  (void)state;
  assert_invalid_payload("{\"sub\":\"alice\",\"exp\":4102444800,\"admin\":\"true\"}");
  assert_invalid_payload("{\"sub\":\"alice\",\"exp\":4102444800,\"admin\":1}");
}

static void verify_rejects_invalid_room(void **state) {
  (void)state;
  assert_invalid_payload("{\"sub\":\"alice\",\"exp\":4102444800,\"room\":\"room one\"}");
  assert_invalid_payload("{\"sub\":\"alice\",\"exp\":4102444800,\"room\":7}");
}

/* ---- Mint ---- */

static void mint_then_verify_preserves_every_field(void **state) {
  struct token_claims in, out;
  char *tok;
  (void)state;

  memset(&in, 0, sizeof(in));
  strcpy(in.sub, "carol-9");
  strcpy(in.name, "Carol \xe2\x9c\x93 \"the host\"");
  strcpy(in.room, "Room_42");
  in.role = ROOM_ROLE_HOST;
  in.perms_set = PERM_RECORD | PERM_STREAM | PERM_CHAT;
  in.perms_val = PERM_RECORD | PERM_STREAM;
  in.admin = 1;
  in.exp = FAR;
  in.nbf = NOW - 10;
  in.iat = NOW - 20;
  tok = token_mint((const unsigned char *)SECRET, strlen(SECRET), &in);
  assert_non_null(tok);

  assert_int_equal(token_verify(&hs256, tok, NOW, &out), API_OK);
  assert_string_equal(out.sub, in.sub);
  assert_string_equal(out.name, in.name);
  assert_string_equal(out.room, in.room);
  assert_int_equal(out.role, in.role);
  assert_int_equal(out.perms_set, in.perms_set);
  assert_int_equal(out.perms_val, in.perms_val);
  assert_int_equal(out.admin, in.admin);
  assert_int_equal(out.exp, in.exp);
  assert_int_equal(out.nbf, in.nbf);
  assert_int_equal(out.iat, in.iat);
  free(tok);
}

static void mint_then_verify_keeps_defaults(void **state) {
  struct token_claims in, out;
  char *tok;
  (void)state;

  memset(&in, 0, sizeof(in));
  strcpy(in.sub, "dave");
  in.role = ROOM_ROLE_VIEWER;
  in.exp = FAR;
  tok = token_mint((const unsigned char *)SECRET, strlen(SECRET), &in);
  assert_non_null(tok);
  assert_int_equal(token_verify(&hs256, tok, NOW, &out), API_OK);
  assert_string_equal(out.name, "");
  assert_string_equal(out.room, "");
  assert_int_equal(out.role, ROOM_ROLE_VIEWER);
  assert_int_equal(out.perms_set, 0);
  assert_int_equal(out.admin, 0);
  assert_int_equal(out.nbf, 0);
  assert_true(out.iat > NOW); /* iat 0 means "now" */
  free(tok);
}

static void mint_refuses_claims_verify_would_reject(void **state) {
  struct token_claims in;
  (void)state;

  memset(&in, 0, sizeof(in));
  strcpy(in.sub, "eve");
  in.exp = FAR;
  assert_null(token_mint((const unsigned char *)"short", 5, &in));
  strcpy(in.sub, "server");
  assert_null(token_mint((const unsigned char *)SECRET, strlen(SECRET), &in));
  strcpy(in.sub, "eve");
  strcpy(in.name, "tab\there");
  assert_null(token_mint((const unsigned char *)SECRET, strlen(SECRET), &in));
  in.name[0] = '\0';
  in.exp = 0;
  assert_null(token_mint((const unsigned char *)SECRET, strlen(SECRET), &in));
}

/* ---- Verifier set-up ---- */

static void verifier_init_rejects_alg_none(void **state) {
  struct token_verifier v;
  char err[128] = "";
  (void)state;
  assert_int_equal(token_verifier_init(&v, "none", (const unsigned char *)SECRET,
                                       strlen(SECRET), err, sizeof(err)), -1);
  assert_true(err[0] != '\0');
  assert_null(v.key);
}

static void verifier_init_rejects_unknown_alg(void **state) {
  struct token_verifier v;
  char err[128] = "";
  (void)state;
  assert_int_equal(token_verifier_init(&v, "HS257", (const unsigned char *)SECRET,
                                       strlen(SECRET), err, sizeof(err)), -1);
  assert_true(err[0] != '\0');
  assert_int_equal(token_verifier_init(&v, "hs256", (const unsigned char *)SECRET,
                                       strlen(SECRET), NULL, 0), -1);
  assert_int_equal(token_verifier_init(&v, "PS256", (const unsigned char *)SECRET,
                                       strlen(SECRET), NULL, 0), -1);
}

static void verifier_init_rejects_short_hmac_key(void **state) {
  struct token_verifier v;
  char err[128] = "";
  (void)state;
  assert_int_equal(token_verifier_init(&v, "HS256", (const unsigned char *)SECRET, 31,
                                       err, sizeof(err)), -1);
  assert_true(err[0] != '\0');
  assert_int_equal(token_verifier_init(&v, "HS256", (const unsigned char *)SECRET, 32,
                                       NULL, 0), 0);
  token_verifier_close(&v);
}

static void verifier_init_rejects_non_pem_key_for_rs256(void **state) {
  struct token_verifier v;
  size_t priv_len;
  unsigned char *priv = read_data("rsa_private.pem", &priv_len);
  (void)state;
  assert_int_equal(token_verifier_init(&v, "RS256", (const unsigned char *)SECRET,
                                       strlen(SECRET), NULL, 0), -1);
  /* A private key cannot verify: libjwt reads a public key. */
  assert_int_equal(token_verifier_init(&v, "RS256", priv, priv_len, NULL, 0), -1);
  free(priv);
}

static void verifier_init_rejects_rsa_key_for_es256(void **state) {
  struct token_verifier v;
  size_t pub_len;
  unsigned char *pub = read_data("rsa_public.pem", &pub_len);
  (void)state;
  assert_int_equal(token_verifier_init(&v, "ES256", pub, pub_len, NULL, 0), -1);
  free(pub);
}

static void verifier_close_is_idempotent_and_disables_verify(void **state) {
  struct token_verifier v;
  struct token_claims c;
  char *tok = make_token(EVP_sha256(), SECRET, strlen(SECRET), HS256_HEADER, MINIMAL_PAYLOAD);
  (void)state;

  memset(&v, 0, sizeof(v));
  token_verifier_close(&v);
  assert_int_equal(token_verifier_init(&v, "HS256", (const unsigned char *)SECRET,
                                       strlen(SECRET), NULL, 0), 0);
  token_verifier_close(&v);
  token_verifier_close(&v);
  assert_int_not_equal(token_verify(&v, tok, NOW, &c), API_OK);
  free(tok);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(verify_accepts_valid_token_with_all_claims),
    cmocka_unit_test(verify_defaults_absent_optional_claims),
    cmocka_unit_test(verify_accepts_rs256_token_signed_with_private_key),
    cmocka_unit_test(verify_accepts_token_of_8kib_but_not_more),
    cmocka_unit_test(verify_rejects_expired_token_and_zeroes_out),
    cmocka_unit_test(verify_rejects_token_before_nbf),
    cmocka_unit_test(verify_rejects_token_signed_with_other_secret),
    cmocka_unit_test(verify_rejects_alg_none),
    cmocka_unit_test(verify_rejects_hs256_token_keyed_with_rsa_public_key),
    cmocka_unit_test(verify_rejects_hs512_token_when_hs256_configured),
    cmocka_unit_test(verify_rejects_duplicate_alg_in_header),
    cmocka_unit_test(verify_rejects_rs256_token_with_swapped_payload),
    cmocka_unit_test(verify_rejects_malformed_shapes),
    cmocka_unit_test(verify_rejects_json_array_payload),
    cmocka_unit_test(verify_rejects_duplicate_claim),
    cmocka_unit_test(verify_rejects_missing_sub),
    cmocka_unit_test(verify_rejects_sub_not_string),
    cmocka_unit_test(verify_rejects_sub_with_invalid_characters),
    cmocka_unit_test(verify_rejects_reserved_sub_server),
    cmocka_unit_test(verify_rejects_missing_exp),
    cmocka_unit_test(verify_rejects_exp_as_string),
    cmocka_unit_test(verify_rejects_exp_as_real),
    cmocka_unit_test(verify_rejects_exp_as_bool),
    cmocka_unit_test(verify_rejects_nbf_as_string),
    cmocka_unit_test(verify_rejects_unknown_role),
    cmocka_unit_test(verify_rejects_unknown_permission),
    cmocka_unit_test(verify_rejects_non_bool_permission),
    cmocka_unit_test(verify_rejects_name_with_control_character),
    cmocka_unit_test(verify_rejects_name_over_128_bytes),
    cmocka_unit_test(verify_rejects_admin_not_bool),
    cmocka_unit_test(verify_rejects_invalid_room),
    cmocka_unit_test(mint_then_verify_preserves_every_field),
    cmocka_unit_test(mint_then_verify_keeps_defaults),
    cmocka_unit_test(mint_refuses_claims_verify_would_reject),
    cmocka_unit_test(verifier_init_rejects_alg_none),
    cmocka_unit_test(verifier_init_rejects_unknown_alg),
    cmocka_unit_test(verifier_init_rejects_short_hmac_key),
    cmocka_unit_test(verifier_init_rejects_non_pem_key_for_rs256),
    cmocka_unit_test(verifier_init_rejects_rsa_key_for_es256),
    cmocka_unit_test(verifier_close_is_idempotent_and_disables_verify),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
