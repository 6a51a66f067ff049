/* Unit tests for net/httpcheck.c: the strict request-head checks that run
 * before http-parser (RFC 9112). Heads are passed with explicit lengths so
 * that embedded NULs and truncated heads can be tested. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "net/httpcheck.h"

/* httpcheck_head on a string literal (sizeof keeps embedded NULs). */
#define CHECK(lit) httpcheck_head((lit), sizeof(lit) - 1)

/* ---- Accepting ---- */

static void httpcheck_accepts_get_with_headers(void **state) {
  (void)state;
  assert_int_equal(CHECK("GET /webrtc/health?x=1 HTTP/1.1\r\n"
                         "Host: example.com:8080\r\n"
                         "User-Agent: curl/8.0\r\n"
                         "Accept: */*\r\n"
                         "\r\n"), HTTPCHECK_OK);
}

static void httpcheck_accepts_websocket_upgrade(void **state) {
  (void)state;
  assert_int_equal(CHECK("GET /webrtc/ws/room-1?token=abc.def.ghi HTTP/1.1\r\n"
                         "Host: a\r\n"
                         "Upgrade: websocket\r\n"
                         "Connection: Upgrade\r\n"
                         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                         "Sec-WebSocket-Version: 13\r\n"
                         "\r\n"), HTTPCHECK_OK);
}

static void httpcheck_accepts_request_without_headers(void **state) {
  (void)state;
  assert_int_equal(CHECK("GET / HTTP/1.1\r\n\r\n"), HTTPCHECK_OK);
}

static void httpcheck_accepts_http_1_0(void **state) {
  (void)state;
  assert_int_equal(CHECK("GET / HTTP/1.0\r\nHost: a\r\n\r\n"), HTTPCHECK_OK);
}

static void httpcheck_accepts_tab_in_header_value(void **state) {
  (void)state;
  assert_int_equal(CHECK("GET / HTTP/1.1\r\nX-Thing:\ta\tb\t\r\n\r\n"), HTTPCHECK_OK);
}

static void httpcheck_accepts_empty_header_value(void **state) {
  (void)state;
  assert_int_equal(CHECK("GET / HTTP/1.1\r\nX-Empty:\r\nHost: a\r\n\r\n"), HTTPCHECK_OK);
}

static void httpcheck_accepts_obs_text_in_header_value(void **state) {
  (void)state;
  /* RFC 9110 field-vchar includes obs-text (0x80-0xFF). */
  assert_int_equal(CHECK("GET / HTTP/1.1\r\nX-Name: \xc3\x85ngstr\xc3\xb6m\r\n\r\n"),
                   HTTPCHECK_OK);
}

static void httpcheck_accepts_token_chars_in_method_and_name(void **state) {
  (void)state;
  assert_int_equal(CHECK("M-SEARCH / HTTP/1.1\r\nX!#$%&'*+-.^_`|~0z: v\r\n\r\n"), HTTPCHECK_OK);
}

/* ---- Line endings ---- */

static void httpcheck_rejects_bare_lf_after_request_line(void **state) {
  (void)state;
  assert_int_equal(CHECK("GET / HTTP/1.1\nHost: a\r\n\r\n"), HTTPCHECK_BAD);
}

static void httpcheck_rejects_bare_lf_after_header(void **state) {
  (void)state;
  assert_int_equal(CHECK("GET / HTTP/1.1\r\nHost: a\n\r\n"), HTTPCHECK_BAD);
}

static void httpcheck_rejects_bare_lf_as_blank_line(void **state) {
  (void)state;
  assert_int_equal(CHECK("GET / HTTP/1.1\r\nHost: a\r\n\n"), HTTPCHECK_BAD);
  assert_int_equal(CHECK("GET / HTTP/1.1\n\n"), HTTPCHECK_BAD);
}

static void httpcheck_rejects_bare_lf_inside_header_value(void **state) {
  (void)state;
  assert_int_equal(CHECK("GET / HTTP/1.1\r\nX-A: one\ntwo\r\n\r\n"), HTTPCHECK_BAD);
}

static void httpcheck_rejects_bare_lf_at_start(void **state) {
  (void)state;
  assert_int_equal(CHECK("\nGET / HTTP/1.1\r\n\r\n"), HTTPCHECK_BAD);
}

static void httpcheck_rejects_bare_cr_inside_header_value(void **state) {
  (void)state;
  assert_int_equal(CHECK("GET / HTTP/1.1\r\nX-A: one\rtwo\r\n\r\n"), HTTPCHECK_BAD);
}

static void httpcheck_rejects_bare_cr_as_line_ending(void **state) {
  (void)state;
  assert_int_equal(CHECK("GET / HTTP/1.1\rHost: a\r\n\r\n"), HTTPCHECK_BAD);
  assert_int_equal(CHECK("GET / HTTP/1.1\r\nHost: a\r\n\r"), HTTPCHECK_BAD);
}

static void httpcheck_rejects_missing_blank_line(void **state) {
  (void)state;
  assert_int_equal(CHECK("GET / HTTP/1.1\r\nHost: a\r\n"), HTTPCHECK_BAD);
  assert_int_equal(CHECK("GET / HTTP/1.1\r\nHost: a"), HTTPCHECK_BAD);
  assert_int_equal(CHECK("GET / HTTP/1.1"), HTTPCHECK_BAD);
}

static void httpcheck_rejects_empty_head(void **state) {
  (void)state;
  assert_int_equal(httpcheck_head("", 0), HTTPCHECK_BAD);
  assert_int_equal(CHECK("\r\n\r\n"), HTTPCHECK_BAD);
}

static void httpcheck_rejects_bytes_after_blank_line(void **state) {
  (void)state;
  /* The head must end with the blank line (httpcheck.h). */
  assert_int_equal(CHECK("GET / HTTP/1.1\r\nHost: a\r\n\r\nbody"), HTTPCHECK_BAD);
}

/* ---- Header lines ---- */

static void httpcheck_rejects_obs_fold_with_space(void **state) {
  (void)state;
  assert_int_equal(CHECK("GET / HTTP/1.1\r\nX-A: one\r\n two\r\n\r\n"), HTTPCHECK_BAD);
}

static void httpcheck_rejects_obs_fold_with_tab(void **state) {
  (void)state;
  assert_int_equal(CHECK("GET / HTTP/1.1\r\nX-A: one\r\n\ttwo\r\n\r\n"), HTTPCHECK_BAD);
}

static void httpcheck_rejects_space_before_colon(void **state) {
  (void)state;
  assert_int_equal(CHECK("GET / HTTP/1.1\r\nHost : a\r\n\r\n"), HTTPCHECK_BAD);
}

static void httpcheck_rejects_tab_before_colon(void **state) {
  (void)state;
  assert_int_equal(CHECK("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n"), HTTPCHECK_BAD);
}

static void httpcheck_rejects_empty_header_name(void **state) {
  (void)state;
  assert_int_equal(CHECK("GET / HTTP/1.1\r\n: a\r\n\r\n"), HTTPCHECK_BAD);
}

static void httpcheck_rejects_header_without_colon(void **state) {
  (void)state;
  assert_int_equal(CHECK("GET / HTTP/1.1\r\nHost a\r\n\r\n"), HTTPCHECK_BAD);
  assert_int_equal(CHECK("GET / HTTP/1.1\r\nHost\r\n\r\n"), HTTPCHECK_BAD);
}

static void httpcheck_rejects_non_token_char_in_header_name(void **state) {
  (void)state;
  assert_int_equal(CHECK("GET / HTTP/1.1\r\nX(A): a\r\n\r\n"), HTTPCHECK_BAD);
  assert_int_equal(CHECK("GET / HTTP/1.1\r\nX\xc3\xa9: a\r\n\r\n"), HTTPCHECK_BAD);
}

static void httpcheck_rejects_control_char_in_header_value(void **state) {
  (void)state;
  assert_int_equal(CHECK("GET / HTTP/1.1\r\nX-A: a\x01z\r\n\r\n"), HTTPCHECK_BAD);
  assert_int_equal(CHECK("GET / HTTP/1.1\r\nX-A: a\x1bz\r\n\r\n"), HTTPCHECK_BAD);
}

static void httpcheck_rejects_del_in_header_value(void **state) {
  (void)state;
  assert_int_equal(CHECK("GET / HTTP/1.1\r\nX-A: a\x7fz\r\n\r\n"), HTTPCHECK_BAD);
}

static void httpcheck_rejects_nul_in_header_value(void **state) {
  (void)state;
  assert_int_equal(CHECK("GET / HTTP/1.1\r\nX-A: a\0z\r\n\r\n"), HTTPCHECK_BAD);
}

/* ---- Request line ---- */

static void httpcheck_rejects_http_0_9_request_line(void **state) {
  (void)state;
  assert_int_equal(CHECK("GET /\r\n\r\n"), HTTPCHECK_BAD);
}

static void httpcheck_answers_version_for_http_9_9(void **state) {
  (void)state;
  assert_int_equal(CHECK("GET / HTTP/9.9\r\nHost: a\r\n\r\n"), HTTPCHECK_VERSION);
}

static void httpcheck_answers_version_for_http_2_0(void **state) {
  (void)state;
  assert_int_equal(CHECK("GET / HTTP/2.0\r\nHost: a\r\n\r\n"), HTTPCHECK_VERSION);
}

static void httpcheck_answers_version_for_http_1_2(void **state) {
  (void)state;
  assert_int_equal(CHECK("GET / HTTP/1.2\r\nHost: a\r\n\r\n"), HTTPCHECK_VERSION);
}

static void httpcheck_rejects_malformed_version(void **state) {
  (void)state;
  assert_int_equal(CHECK("GET / HTTP/1.10\r\n\r\n"), HTTPCHECK_BAD);
  assert_int_equal(CHECK("GET / HTTP/11\r\n\r\n"), HTTPCHECK_BAD);
  assert_int_equal(CHECK("GET / HTTP/x.1\r\n\r\n"), HTTPCHECK_BAD);
  assert_int_equal(CHECK("GET / http/1.1\r\n\r\n"), HTTPCHECK_BAD);
  assert_int_equal(CHECK("GET / HTTP/1.1 \r\n\r\n"), HTTPCHECK_BAD);
}

static void httpcheck_rejects_non_token_char_in_method(void **state) {
  (void)state;
  assert_int_equal(CHECK("G(ET / HTTP/1.1\r\nHost: a\r\n\r\n"), HTTPCHECK_BAD);
  assert_int_equal(CHECK("GE\"T / HTTP/1.1\r\nHost: a\r\n\r\n"), HTTPCHECK_BAD);
  assert_int_equal(CHECK("G\x01T / HTTP/1.1\r\nHost: a\r\n\r\n"), HTTPCHECK_BAD);
}

static void httpcheck_rejects_empty_method(void **state) {
  (void)state;
  assert_int_equal(CHECK(" / HTTP/1.1\r\nHost: a\r\n\r\n"), HTTPCHECK_BAD);
}

static void httpcheck_rejects_two_spaces_before_target(void **state) {
  (void)state;
  assert_int_equal(CHECK("GET  / HTTP/1.1\r\nHost: a\r\n\r\n"), HTTPCHECK_BAD);
}

static void httpcheck_rejects_two_spaces_before_version(void **state) {
  (void)state;
  assert_int_equal(CHECK("GET /  HTTP/1.1\r\nHost: a\r\n\r\n"), HTTPCHECK_BAD);
}

static void httpcheck_rejects_tab_as_request_line_separator(void **state) {
  (void)state;
  assert_int_equal(CHECK("GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n"), HTTPCHECK_BAD);
  assert_int_equal(CHECK("GET /\tHTTP/1.1\r\nHost: a\r\n\r\n"), HTTPCHECK_BAD);
}

static void httpcheck_rejects_control_or_non_ascii_in_target(void **state) {
  (void)state;
  assert_int_equal(CHECK("GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n"), HTTPCHECK_BAD);
  assert_int_equal(CHECK("GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n"), HTTPCHECK_BAD);
}

static void httpcheck_rejects_leading_blank_line(void **state) {
  (void)state;
  assert_int_equal(CHECK("\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), HTTPCHECK_BAD);
}

/* ---- httpcheck_head_end ---- */

static void head_end_returns_offset_past_blank_line(void **state) {
  const char s[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\nbody";
  (void)state;
  assert_int_equal(httpcheck_head_end(s, sizeof(s) - 1, 0), strlen(s) - strlen("body"));
}

static void head_end_finds_terminator_at_very_end(void **state) {
  const char s[] = "GET / HTTP/1.1\r\n\r\n";
  (void)state;
  assert_int_equal(httpcheck_head_end(s, sizeof(s) - 1, 0), sizeof(s) - 1);
  assert_int_equal(httpcheck_head_end("\r\n\r\n", 4, 0), 4);
}

static void head_end_returns_zero_when_incomplete(void **state) {
  const char s[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
  (void)state;
  assert_int_equal(httpcheck_head_end(s, sizeof(s) - 2, 0), 0);
  assert_int_equal(httpcheck_head_end(s, 0, 0), 0);
  assert_int_equal(httpcheck_head_end("\r\n\r", 3, 0), 0);
}

static void head_end_finds_bare_lf_blank_line_so_it_can_be_refused(void **state) {
  (void)state;
  assert_int_equal(httpcheck_head_end("GET / HTTP/1.1\n\n", 16, 0), 16);
  assert_int_equal(httpcheck_head("GET / HTTP/1.1\n\n", 16), HTTPCHECK_BAD);
  const char a[] = "GET / HTTP/1.1\r\nHost: x\r\n\n", b[] = "GET / HTTP/1.1\r\nHost: x\n\r\n";
  assert_int_equal(httpcheck_head_end(a, sizeof(a) - 1, 0), sizeof(a) - 1);
  assert_int_equal(httpcheck_head(a, sizeof(a) - 1), HTTPCHECK_BAD);
  assert_int_equal(httpcheck_head_end(b, sizeof(b) - 1, 0), sizeof(b) - 1);
  assert_int_equal(httpcheck_head(b, sizeof(b) - 1), HTTPCHECK_BAD);
}

static void head_end_ignores_terminator_beyond_len(void **state) {
  const char s[] = "A\r\n\r\n";
  (void)state;
  assert_int_equal(httpcheck_head_end(s, 4, 0), 0);
  assert_int_equal(httpcheck_head_end(s, 5, 0), 5);
}

static void head_end_starts_searching_at_from(void **state) {
  const char s[] = "A\r\n\r\nB\r\n\r\n";
  (void)state;
  assert_int_equal(httpcheck_head_end(s, sizeof(s) - 1, 0), 5);
  assert_int_equal(httpcheck_head_end(s, sizeof(s) - 1, 1), 5);
  /* from past the first terminator's start: only the second is found. */
  assert_int_equal(httpcheck_head_end(s, sizeof(s) - 1, 2), 10);
  assert_int_equal(httpcheck_head_end(s, sizeof(s) - 1, 6), 10);
  assert_int_equal(httpcheck_head_end(s, sizeof(s) - 1, 7), 0);
}

static void head_end_finds_terminator_straddling_from(void **state) {
  /* Incremental reads resume a few bytes back so a split "\r\n\r\n" is found. */
  const char s[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
  size_t len = sizeof(s) - 1;
  (void)state;
  assert_int_equal(httpcheck_head_end(s, len - 2, 0), 0);
  assert_int_equal(httpcheck_head_end(s, len, len - 2 - 3), len);
}

static void head_end_returns_zero_when_from_at_or_past_len(void **state) {
  const char s[] = "A\r\n\r\n";
  (void)state;
  assert_int_equal(httpcheck_head_end(s, 5, 5), 0);
  assert_int_equal(httpcheck_head_end(s, 5, 100), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(httpcheck_accepts_get_with_headers),
    cmocka_unit_test(httpcheck_accepts_websocket_upgrade),
    cmocka_unit_test(httpcheck_accepts_request_without_headers),
    cmocka_unit_test(httpcheck_accepts_http_1_0),
    cmocka_unit_test(httpcheck_accepts_tab_in_header_value),
    cmocka_unit_test(httpcheck_accepts_empty_header_value),
    cmocka_unit_test(httpcheck_accepts_obs_text_in_header_value),
    cmocka_unit_test(httpcheck_accepts_token_chars_in_method_and_name),
    cmocka_unit_test(httpcheck_rejects_bare_lf_after_request_line),
    cmocka_unit_test(httpcheck_rejects_bare_lf_after_header),
    cmocka_unit_test(httpcheck_rejects_bare_lf_as_blank_line),
    cmocka_unit_test(httpcheck_rejects_bare_lf_inside_header_value),
    cmocka_unit_test(httpcheck_rejects_bare_lf_at_start),
    cmocka_unit_test(httpcheck_rejects_bare_cr_inside_header_value),
    cmocka_unit_test(httpcheck_rejects_bare_cr_as_line_ending),
    cmocka_unit_test(httpcheck_rejects_missing_blank_line),
    cmocka_unit_test(httpcheck_rejects_empty_head),
    cmocka_unit_test(httpcheck_rejects_bytes_after_blank_line),
    cmocka_unit_test(httpcheck_rejects_obs_fold_with_space),
    cmocka_unit_test(httpcheck_rejects_obs_fold_with_tab),
    cmocka_unit_test(httpcheck_rejects_space_before_colon),
    cmocka_unit_test(httpcheck_rejects_tab_before_colon),
    cmocka_unit_test(httpcheck_rejects_empty_header_name),
    cmocka_unit_test(httpcheck_rejects_header_without_colon),
    cmocka_unit_test(httpcheck_rejects_non_token_char_in_header_name),
    cmocka_unit_test(httpcheck_rejects_control_char_in_header_value),
    cmocka_unit_test(httpcheck_rejects_del_in_header_value),
    cmocka_unit_test(httpcheck_rejects_nul_in_header_value),
    cmocka_unit_test(httpcheck_rejects_http_0_9_request_line),
    cmocka_unit_test(httpcheck_answers_version_for_http_9_9),
    cmocka_unit_test(httpcheck_answers_version_for_http_2_0),
    cmocka_unit_test(httpcheck_answers_version_for_http_1_2),
    cmocka_unit_test(httpcheck_rejects_malformed_version),
    cmocka_unit_test(httpcheck_rejects_non_token_char_in_method),
    cmocka_unit_test(httpcheck_rejects_empty_method),
    cmocka_unit_test(httpcheck_rejects_two_spaces_before_target),
    cmocka_unit_test(httpcheck_rejects_two_spaces_before_version),
    cmocka_unit_test(httpcheck_rejects_tab_as_request_line_separator),
    cmocka_unit_test(httpcheck_rejects_control_or_non_ascii_in_target),
    cmocka_unit_test(httpcheck_rejects_leading_blank_line),
    cmocka_unit_test(head_end_returns_offset_past_blank_line),
    cmocka_unit_test(head_end_finds_terminator_at_very_end),
    cmocka_unit_test(head_end_returns_zero_when_incomplete),
      cmocka_unit_test(head_end_finds_bare_lf_blank_line_so_it_can_be_refused),
    cmocka_unit_test(head_end_ignores_terminator_beyond_len),
    cmocka_unit_test(head_end_starts_searching_at_from),
    cmocka_unit_test(head_end_finds_terminator_straddling_from),
    cmocka_unit_test(head_end_returns_zero_when_from_at_or_past_len),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
