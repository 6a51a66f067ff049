/* libFuzzer target: file metadata validation (guard/filecheck.c): the
 * offer check on a name and type taken from the input, and the declared
 * versus sniffed type comparison. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guard/filecheck.h"
#include "log.h"

/* Quiet: the server logs refusals at info. */
__attribute__((constructor)) static void quiet(void) { log_threshold = LOG_ERROR; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 9) return 0;
  uint64_t fsize;
  memcpy(&fsize, data, 8);
  size_t split = data[8];
  const char *rest = (const char *)data + 9;
  size_t n = size - 9;
  if (split > n) split = n;
  char *name = malloc(split + 1), *mime = malloc(n - split + 1);
  memcpy(name, rest, split);
  name[split] = '\0';
  memcpy(mime, rest + split, n - split);
  mime[n - split] = '\0';
  enum api_err e = filecheck_offer(name, mime, fsize, 100u << 20);
  if (e == API_OK && fsize > (100u << 20)) abort();
  (void)filecheck_match(mime, name);
  (void)filecheck_match(name, name);
  free(name);
  free(mime);
  return 0;
}
