/* Unit tests for net/outbuf.c: refcounted send buffers and server-side
 * WebSocket frame headers (RFC 6455 section 5.2). Frees are checked by
 * running under AddressSanitizer: a missing free is a leak, an extra one a
 * double free. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/outbuf.h"

/* Under AddressSanitizer, let a failed malloc return NULL as libc's does
 * instead of aborting, so allocation failure can be tested. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1"; }

/* ---- Lifecycle ---- */

static void new_returns_empty_buffer_with_one_ref(void **state) {
  struct outbuf *b = outbuf_new(100);
  (void)state;
  assert_non_null(b);
  assert_int_equal(b->refs, 1);
  assert_int_equal(b->len, 0);
  assert_int_equal(b->cap, 100);
  memset(b->data, 0xAB, b->cap); /* the whole capacity is writable */
  outbuf_unref(b);
}

static void new_accepts_zero_capacity(void **state) {
  struct outbuf *b = outbuf_new(0);
  (void)state;
  assert_non_null(b);
  assert_int_equal(b->cap, 0);
  assert_int_equal(b->refs, 1);
  outbuf_unref(b);
}

static void new_returns_null_when_allocation_fails(void **state) {
  (void)state;
  assert_null(outbuf_new(SIZE_MAX / 2));
}

static void new_returns_null_when_capacity_overflows_size(void **state) {
  /* sizeof(struct outbuf) + cap wraps around to a small allocation. */
  struct outbuf *b = outbuf_new(SIZE_MAX);
  (void)state;
  if (b != NULL) {
    free(b);
    fail_msg("outbuf_new(SIZE_MAX) returned a buffer claiming cap %zu", (size_t)SIZE_MAX);
  }
}

static void ref_increments_and_returns_same_buffer(void **state) {
  struct outbuf *b = outbuf_new(8);
  (void)state;
  assert_ptr_equal(outbuf_ref(b), b);
  assert_int_equal(b->refs, 2);
  assert_ptr_equal(outbuf_ref(b), b);
  assert_int_equal(b->refs, 3);
  outbuf_unref(b);
  outbuf_unref(b);
  outbuf_unref(b);
}

static void unref_decrements_until_last_ref_frees(void **state) {
  struct outbuf *b = outbuf_new(8);
  (void)state;
  outbuf_ref(b);
  outbuf_ref(b);
  outbuf_unref(b);
  assert_int_equal(b->refs, 2);
  outbuf_unref(b);
  assert_int_equal(b->refs, 1);
  outbuf_unref(b); /* freed here; ASan reports a leak otherwise */
}

static void shared_buffer_keeps_data_until_last_unref(void **state) {
  struct outbuf *b = outbuf_ws_frame(0x1, "hello", 5);
  struct outbuf *sends[3];
  (void)state;
  for (int i = 0; i < 3; i++) sends[i] = outbuf_ref(b);
  outbuf_unref(b); /* the producer's own ref */
  for (int i = 0; i < 3; i++) {
    assert_int_equal(sends[i]->len, 7);
    assert_memory_equal(sends[i]->data + 2, "hello", 5);
    outbuf_unref(sends[i]);
  }
}

static void unref_ignores_null(void **state) {
  (void)state;
  outbuf_unref(NULL);
}

/* ---- Header length ---- */

static void header_len_is_2_up_to_125(void **state) {
  (void)state;
  assert_int_equal(outbuf_ws_header_len(0), 2);
  assert_int_equal(outbuf_ws_header_len(1), 2);
  assert_int_equal(outbuf_ws_header_len(125), 2);
}

static void header_len_is_4_from_126_to_65535(void **state) {
  (void)state;
  assert_int_equal(outbuf_ws_header_len(126), 4);
  assert_int_equal(outbuf_ws_header_len(127), 4);
  assert_int_equal(outbuf_ws_header_len(65535), 4);
}

static void header_len_is_10_from_65536(void **state) {
  (void)state;
  assert_int_equal(outbuf_ws_header_len(65536), 10);
  assert_int_equal(outbuf_ws_header_len(16777216), 10);
  assert_int_equal(outbuf_ws_header_len(SIZE_MAX), 10);
}

/* ---- Header bytes ---- */

static void header_for_125_uses_7bit_length(void **state) {
  unsigned char h[10];
  static const unsigned char want[] = {0x81, 125};
  (void)state;
  outbuf_ws_header(h, 0x1, 125);
  assert_memory_equal(h, want, sizeof(want));
}

static void header_for_126_uses_16bit_length(void **state) {
  unsigned char h[10];
  static const unsigned char want[] = {0x81, 126, 0x00, 0x7e};
  (void)state;
  outbuf_ws_header(h, 0x1, 126);
  assert_memory_equal(h, want, sizeof(want));
}

static void header_for_65535_uses_16bit_length(void **state) {
  unsigned char h[10];
  static const unsigned char want[] = {0x81, 126, 0xff, 0xff};
  (void)state;
  outbuf_ws_header(h, 0x1, 65535);
  assert_memory_equal(h, want, sizeof(want));
}

static void header_for_65536_uses_64bit_length(void **state) {
  unsigned char h[10];
  static const unsigned char want[] = {0x81, 127, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00};
  (void)state;
  outbuf_ws_header(h, 0x1, 65536);
  assert_memory_equal(h, want, sizeof(want));
}

static void header_64bit_length_is_big_endian(void **state) {
  unsigned char h[10];
  static const unsigned char want[] = {0x82, 127, 0, 0, 0, 0x01, 0x02, 0x03, 0x04, 0x05};
  (void)state;
  outbuf_ws_header(h, 0x2, (size_t)0x0102030405ULL);
  assert_memory_equal(h, want, sizeof(want));
}

static void header_writes_only_its_length(void **state) {
  unsigned char h[12];
  (void)state;
  memset(h, 0xEE, sizeof(h));
  outbuf_ws_header(h, 0x1, 10);
  assert_int_equal(h[2], 0xEE);
  memset(h, 0xEE, sizeof(h));
  outbuf_ws_header(h, 0x1, 300);
  assert_int_equal(h[4], 0xEE);
  memset(h, 0xEE, sizeof(h));
  outbuf_ws_header(h, 0x1, 70000);
  assert_int_equal(h[10], 0xEE);
}

static void header_sets_fin_and_opcode_without_mask(void **state) {
  unsigned char h[10];
  (void)state;
  outbuf_ws_header(h, 0x8, 2); /* close */
  assert_int_equal(h[0], 0x88);
  assert_int_equal(h[1], 2);
  outbuf_ws_header(h, 0x9, 0); /* ping */
  assert_int_equal(h[0], 0x89);
  assert_int_equal(h[1], 0);
  outbuf_ws_header(h, 0xA, 125); /* pong */
  assert_int_equal(h[0], 0x8A);
  assert_int_equal(h[1] & 0x80, 0);
}

static void header_keeps_opcode_to_four_bits(void **state) {
  unsigned char h[10];
  (void)state;
  outbuf_ws_header(h, 0x71, 0);
  assert_int_equal(h[0], 0x81); /* RSV bits stay clear */
}

/* ---- Frames ---- */

/* Builds a frame of len payload bytes (a counting pattern) and checks it. */
static void check_frame(size_t len, size_t want_header) {
  unsigned char *payload = malloc(len ? len : 1);
  unsigned char h[10];
  struct outbuf *b;
  assert_non_null(payload);
  for (size_t i = 0; i < len; i++) payload[i] = (unsigned char)(i * 7);
  b = outbuf_ws_frame(0x1, payload, len);
  assert_non_null(b);
  assert_int_equal(b->refs, 1);
  assert_int_equal(b->len, want_header + len);
  assert_true(b->cap >= b->len);
  outbuf_ws_header(h, 0x1, len);
  assert_memory_equal(b->data, h, want_header);
  if (len) assert_memory_equal(b->data + want_header, payload, len);
  outbuf_unref(b);
  free(payload);
}

static void frame_of_0_bytes_is_header_only(void **state) {
  (void)state;
  check_frame(0, 2);
}

static void frame_of_125_bytes_has_2_byte_header(void **state) {
  (void)state;
  check_frame(125, 2);
}

static void frame_of_126_bytes_has_4_byte_header(void **state) {
  (void)state;
  check_frame(126, 4);
}

static void frame_of_65535_bytes_has_4_byte_header(void **state) {
  (void)state;
  check_frame(65535, 4);
}

static void frame_of_65536_bytes_has_10_byte_header(void **state) {
  (void)state;
  check_frame(65536, 10);
}

static void frame_carries_opcode(void **state) {
  struct outbuf *b = outbuf_ws_frame(0x2, "\x00\x01", 2);
  (void)state;
  assert_non_null(b);
  assert_int_equal(b->data[0], 0x82);
  assert_int_equal(b->data[1], 2);
  assert_int_equal(b->data[2], 0x00);
  assert_int_equal(b->data[3], 0x01);
  outbuf_unref(b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(new_returns_empty_buffer_with_one_ref),
    cmocka_unit_test(new_accepts_zero_capacity),
    cmocka_unit_test(new_returns_null_when_allocation_fails),
    cmocka_unit_test(new_returns_null_when_capacity_overflows_size),
    cmocka_unit_test(ref_increments_and_returns_same_buffer),
    cmocka_unit_test(unref_decrements_until_last_ref_frees),
    cmocka_unit_test(shared_buffer_keeps_data_until_last_unref),
    cmocka_unit_test(unref_ignores_null),
    cmocka_unit_test(header_len_is_2_up_to_125),
    cmocka_unit_test(header_len_is_4_from_126_to_65535),
    cmocka_unit_test(header_len_is_10_from_65536),
    cmocka_unit_test(header_for_125_uses_7bit_length),
    cmocka_unit_test(header_for_126_uses_16bit_length),
    cmocka_unit_test(header_for_65535_uses_16bit_length),
    cmocka_unit_test(header_for_65536_uses_64bit_length),
    cmocka_unit_test(header_64bit_length_is_big_endian),
    cmocka_unit_test(header_writes_only_its_length),
    cmocka_unit_test(header_sets_fin_and_opcode_without_mask),
    cmocka_unit_test(header_keeps_opcode_to_four_bits),
    cmocka_unit_test(frame_of_0_bytes_is_header_only),
    cmocka_unit_test(frame_of_125_bytes_has_2_byte_header),
    cmocka_unit_test(frame_of_126_bytes_has_4_byte_header),
    cmocka_unit_test(frame_of_65535_bytes_has_4_byte_header),
    cmocka_unit_test(frame_of_65536_bytes_has_10_byte_header),
    cmocka_unit_test(frame_carries_opcode),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
