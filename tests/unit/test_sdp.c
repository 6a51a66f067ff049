/* Unit tests for guard/sdp.c: the publish check reads SDP as libwebrtc
 * does (LF lines, one trailing CR dropped, session-level direction ignored,
 * port 0 + bundle-only is live, default sendrecv). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "guard/sdp.h"

/* s written as the body of a JSON string with \r and \n escapes (s has
 * no backslash), into out (2 * strlen(s) bytes); returns its length. */
static size_t json_form(const char *s, char *out) {
  size_t n = 0;
  for (; *s; s++) {
    if (*s == '\r' || *s == '\n') {
      out[n++] = '\\';
      out[n++] = *s == '\r' ? 'r' : 'n';
    } else {
      out[n++] = *s;
    }
  }
  return n;
}

/* Reads s, and checks that the reading of its JSON form (the relay path's,
 * without unescaping) is the same. */
static struct sdp_sending rd(const char *s) {
  struct sdp_sending o, j;
  sdp_sending(s, strlen(s), &o);
  if (strchr(s, '\\') == NULL) {
    char buf[2048];
    assert_true(2 * strlen(s) <= sizeof(buf));
    sdp_sending_json(buf, json_form(s, buf), &j);
    assert_int_equal(j.audio, o.audio);
    assert_int_equal(j.video, o.video);
  }
  return o;
}

#define HEAD "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"

static void recvonly_sections_send_nothing(void **state) {
  (void)state;
  struct sdp_sending o = rd(HEAD "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=recvonly\r\n"
                                 "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=inactive\r\n");
  assert_int_equal(o.audio, 0);
  assert_int_equal(o.video, 0);
}

static void default_is_sendrecv(void **state) {
  (void)state;
  struct sdp_sending o = rd(HEAD "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=sendonly\r\n");
  assert_int_equal(o.audio, 1);
  assert_int_equal(o.video, 1);
}

/* Defect 4, shape 1: session-level recvonly is ignored by libwebrtc. */
static void session_level_direction_ignored(void **state) {
  (void)state;
  struct sdp_sending o = rd(HEAD "a=recvonly\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nm=video 9 RTP/AVP 96\r\n");
  assert_int_equal(o.audio, 1);
  assert_int_equal(o.video, 1);
}

/* Defect 4, shape 2: port 0 with bundle-only is a live section. */
static void bundle_only_port_zero_is_live(void **state) {
  (void)state;
  struct sdp_sending o = rd(HEAD "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=recvonly\r\n"
                                 "m=video 0 UDP/TLS/RTP/SAVPF 96\r\na=bundle-only\r\na=sendrecv\r\n");
  assert_int_equal(o.audio, 0);
  assert_int_equal(o.video, 1);
  o = rd(HEAD "m=video 0 UDP/TLS/RTP/SAVPF 96\r\na=sendrecv\r\n"); /* rejected section */
  assert_int_equal(o.video, 0);
}

/* Defect 4, shape 3: a bare CR does not end a line. */
static void bare_cr_does_not_split(void **state) {
  (void)state;
  struct sdp_sending o = rd(HEAD "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=recvonly\rm=video 9 RTP/AVP 96\r\n");
  /* libwebrtc: one attribute line "a=recvonly\rm=video..." (not a direction) */
  assert_int_equal(o.audio, 1);
  assert_int_equal(o.video, 0);
  o = rd(HEAD "m=audio 9 UDP/TLS/RTP/SAVPF 111\na=recvonly\n"); /* LF-only lines are fine */
  assert_int_equal(o.audio, 0);
}

static void last_direction_wins_and_exact_match(void **state) {
  (void)state;
  assert_int_equal(rd(HEAD "m=audio 9 RTP/AVP 0\r\na=recvonly\r\na=sendrecv\r\n").audio, 1);
  assert_int_equal(rd(HEAD "m=audio 9 RTP/AVP 0\r\na=sendrecv\r\na=recvonly\r\n").audio, 0);
  assert_int_equal(rd(HEAD "m=audio 9 RTP/AVP 0\r\na=recvonly \r\n").audio, 1);
  assert_int_equal(rd(HEAD "m=audio 9 RTP/AVP 0\r\na=recvonly\r\r\n").audio, 1);
}

static void odd_ports_and_kinds(void **state) {
  (void)state;
  assert_int_equal(rd(HEAD "m=audio 0/2 RTP/AVP 0\r\n").audio, 0);
  assert_int_equal(rd(HEAD "m=audio x RTP/AVP 0\r\n").audio, 1);   /* unsure: assumed live */
  assert_int_equal(rd(HEAD "m=audio 00 RTP/AVP 0\r\n").audio, 0);
  assert_int_equal(rd(HEAD "m=audio\r\n").audio, 1);
  struct sdp_sending o = rd(HEAD "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n");
  assert_int_equal(o.audio + o.video, 0);
  o = rd("");
  assert_int_equal(o.audio + o.video, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(recvonly_sections_send_nothing),
    cmocka_unit_test(default_is_sendrecv),
    cmocka_unit_test(session_level_direction_ignored),
    cmocka_unit_test(bundle_only_port_zero_is_live),
    cmocka_unit_test(bare_cr_does_not_split),
    cmocka_unit_test(last_direction_wins_and_exact_match),
    cmocka_unit_test(odd_ports_and_kinds),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
