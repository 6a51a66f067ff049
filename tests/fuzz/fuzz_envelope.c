/* libFuzzer target: envelope decode and the raw-payload splice
 * (signal/envelope.c). Differential: when the decoder hands back the
 * payload's raw bytes, those bytes must parse to the same JSON the
 * validator saw, and the relayed frame built from them must parse to an
 * envelope whose payload is that same JSON. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/envelope.h"
#include "log.h"

/* Quiet: the server logs refusals at info. */
__attribute__((constructor)) static void quiet(void) { log_threshold = LOG_ERROR; }

static size_t ws_header(const unsigned char *f, size_t len) {
  if (len < 2) abort();
  size_t l = f[1] & 0x7f;
  return l == 126 ? 4 : l == 127 ? 10 : 2;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct jsonx_limits lim = {16, 4096};
  struct envelope_in in;
  char detail[256], ref[ENVELOPE_ID_MAX + 1];
  if (envelope_decode((const char *)data, size, &lim, &in, detail, sizeof(detail), ref, sizeof(ref)) != API_OK)
    return 0;
  if (in.raw_payload) {
    if (in.raw_payload < (const char *)data || in.raw_payload + in.raw_payload_len > (const char *)data + size) abort();
    json_error_t jerr;
    json_t *again = json_loadb(in.raw_payload, in.raw_payload_len, JSON_DECODE_ANY, &jerr);
    if (again == NULL || !json_equal(again, in.payload)) {
      fprintf(stderr, "raw payload bytes differ from the validated payload\n");
      abort();
    }
    json_decref(again);
    struct outbuf *b = envelope_encode_raw(in.type, "room", "alice", in.to, 7, 1, in.raw_payload,
                                           in.raw_payload_len, in.id);
    if (b == NULL) abort();
    size_t h = ws_header(b->data, b->len);
    json_t *env = json_loadb((const char *)b->data + h, b->len - h, 0, &jerr);
    if (env == NULL || !json_equal(json_object_get(env, "payload"), in.payload) ||
        !json_equal(json_object_get(env, "type"), json_object_get(in.root, "type"))) {
      fprintf(stderr, "the relayed frame does not carry the validated payload\n");
      abort();
    }
    json_decref(env);
    outbuf_unref(b);
  }
  envelope_in_free(&in);
  return 0;
}
