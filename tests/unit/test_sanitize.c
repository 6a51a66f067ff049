/* Unit tests for guard/sanitize.c: chat text (XSS payloads, bidi and
 * control characters, strict UTF-8, length limits), reactions and file
 * names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "guard/sanitize.h"

#define MAX_CHARS 1000
#define MAX_REACTION_BYTES 64

/* Asserts that sanitize_text(s) succeeds and yields want. */
static void assert_text(const char *s, const char *want) {
  struct buf out = {0};
  enum api_err e = sanitize_text(s, strlen(s), MAX_CHARS, &out);
  if (e != API_OK) fail_msg("refused (%d): %s", (int)e, s);
  assert_non_null(out.data);
  assert_string_equal(out.data, want);
  assert_int_equal(out.len, strlen(want));
  buf_free(&out);
}

/* Asserts that sanitize_text(s[0..len)) is refused with want and leaves out empty. */
static void assert_text_refused_n(const char *s, size_t len, size_t max, enum api_err want) {
  struct buf out = {0};
  assert_int_equal(buf_append(&out, "stale", 5), 0);
  assert_int_equal(sanitize_text(s, len, max, &out), want);
  assert_int_equal(out.len, 0);
  buf_free(&out);
}

static void assert_text_refused(const char *s, enum api_err want) {
  assert_text_refused_n(s, strlen(s), MAX_CHARS, want);
}

static void assert_reaction_ok(const char *s) {
  enum api_err e = sanitize_reaction(s, strlen(s), MAX_REACTION_BYTES);
  if (e != API_OK) fail_msg("reaction refused: %s", s);
}

static void assert_reaction_refused(const char *s) {
  enum api_err e = sanitize_reaction(s, strlen(s), MAX_REACTION_BYTES);
  if (e != API_ERR_INVALID_MESSAGE) fail_msg("reaction accepted: %s", s);
}

static void assert_filename(const char *s, const char *want) {
  char out[256];
  enum api_err e = sanitize_filename(s, strlen(s), out, sizeof(out));
  if (e != API_OK) fail_msg("name refused: %s", s);
  assert_string_equal(out, want);
}

static void assert_filename_refused_n(const char *s, size_t len) {
  char out[256];
  assert_int_equal(sanitize_filename(s, len, out, sizeof(out)), API_ERR_INVALID_MESSAGE);
  assert_string_equal(out, "");
}

static void assert_filename_refused(const char *s) { assert_filename_refused_n(s, strlen(s)); }

/* A malloc'd string of n copies of unit followed by tail. */
static char *repeat(const char *unit, size_t n, const char *tail) {
  size_t ul = strlen(unit), tl = strlen(tail);
  char *s = malloc(ul * n + tl + 1);
  assert_non_null(s);
  for (size_t i = 0; i < n; i++) memcpy(s + i * ul, unit, ul);
  memcpy(s + ul * n, tail, tl + 1);
  return s;
}

/* ---- Text: HTML and XSS ---- */

static void text_escapes_html_special_characters(void **state) {
  (void)state;
  assert_text("a & b < c > d \" e ' f", "a &amp; b &lt; c &gt; d &quot; e &#39; f");
}

static void text_escapes_script_tag(void **state) {
  (void)state;
  assert_text("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;");
}

static void text_escapes_img_onerror(void **state) {
  (void)state;
  assert_text("<img src=x onerror=alert(1)>", "&lt;img src=x onerror=alert(1)&gt;");
}

static void text_neutralizes_javascript_href(void **state) {
  (void)state;
  assert_text("<a href=\"javascript:alert(1)\">x</a>",
              "&lt;a href=&quot;javascript&#58;alert(1)&quot;&gt;x&lt;/a&gt;");
}

static void text_neutralizes_mixed_case_javascript(void **state) {
  (void)state;
  assert_text("JaVaScRiPt:alert(1)", "JaVaScRiPt&#58;alert(1)");
}

static void text_neutralizes_javascript_with_tab_inside(void **state) {
  (void)state;
  assert_text("java\tscript:alert(1)", "java\tscript&#58;alert(1)");
}

static void text_neutralizes_javascript_with_newline_and_spaces(void **state) {
  (void)state;
  assert_text("java\nscript :x", "java\nscript &#58;x");
  assert_text("j a v a s c r i p t:x", "j a v a s c r i p t&#58;x");
}

static void text_neutralizes_javascript_split_by_removed_characters(void **state) {
  (void)state;
  assert_text("java\x01script:x", "javascript&#58;x");
  assert_text("java\xe2\x80\xaescript:x", "javascript&#58;x");   /* U+202E */
  assert_text("javascript\x7f:x", "javascript&#58;x");
}

static void text_neutralizes_data_scheme(void **state) {
  (void)state;
  assert_text("data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
              "data&#58;text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==");
}

static void text_neutralizes_vbscript(void **state) {
  (void)state;
  assert_text("VBScript:MsgBox(1)", "VBScript&#58;MsgBox(1)");
}

static void text_neutralizes_scheme_after_punctuation(void **state) {
  (void)state;
  assert_text("(javascript:x)", "(javascript&#58;x)");
  assert_text("x=Data:y", "x=Data&#58;y");
  assert_text("'vbscript:z'", "&#39;vbscript&#58;z&#39;");
}

static void text_neutralizes_every_occurrence(void **state) {
  (void)state;
  assert_text("javascript:a data:b", "javascript&#58;a data&#58;b");
}

static void text_leaves_metadata_colon_alone(void **state) {
  (void)state;
  assert_text("metadata: x", "metadata: x");
}

static void text_leaves_other_colons_alone(void **state) {
  (void)state;
  assert_text("see https://example.com/a:b", "see https://example.com/a:b");
  assert_text("javascripts: fun", "javascripts: fun");
  assert_text("the data is: 42", "the data is: 42");
  assert_text("time 10:30", "time 10:30");
}

/* ---- Text: removed characters ---- */

static void text_removes_rtl_override(void **state) {
  (void)state;
  assert_text("abc\xe2\x80\xae" "def", "abcdef");
}

static void text_removes_every_bidi_control(void **state) {
  (void)state;
  /* U+200E U+200F U+061C U+202A..U+202E U+2066..U+2069 */
  assert_text("a\xe2\x80\x8e" "b\xe2\x80\x8f" "c\xd8\x9c" "d\xe2\x80\xaa\xe2\x80\xab\xe2\x80\xac"
              "\xe2\x80\xad\xe2\x80\xae" "e\xe2\x81\xa6\xe2\x81\xa7\xe2\x81\xa8\xe2\x81\xa9" "f",
              "abcdef");
}

static void text_removes_controls_but_keeps_newline_and_tab(void **state) {
  (void)state;
  assert_text("a\x01" "b\x1f" "c\x7f" "d\xc2\x85" "e\xc2\x9f" "f\r\ng\th\x1b[31m",
              "abcdef\ng\th[31m");
}

static void text_removes_nul_byte(void **state) {
  struct buf out = {0};
  (void)state;
  assert_int_equal(sanitize_text("a\0b", 3, MAX_CHARS, &out), API_OK);
  assert_string_equal(out.data, "ab");
  buf_free(&out);
}

static void text_removes_byte_order_mark(void **state) {
  (void)state;
  assert_text("\xef\xbb\xbfhi", "hi");
}

static void text_turns_line_separators_into_newlines(void **state) {
  (void)state;
  assert_text("a\xe2\x80\xa8" "b\xe2\x80\xa9" "c", "a\nb\nc");
}

/* ---- Text: Unicode kept ---- */

static void text_keeps_accents_and_cjk(void **state) {
  const char *s = "Café naïve Ærøskøbing 日本語 한국어 Ελληνικά עברית العربية";
  (void)state;
  assert_text(s, s);
}

static void text_keeps_emoji_sequences_and_flags(void **state) {
  const char *s = "👩‍💻 🇫🇷 👍🏽 ❤️ 👨‍👩‍👧‍👦 🏴󠁧󠁢󠁳󠁣󠁴󠁿";
  (void)state;
  assert_text(s, s);
}

static void text_keeps_zero_width_joiners_and_spaces(void **state) {
  const char *s = "a\xe2\x80\x8d" "b\xe2\x80\x8b" "c\xc2\xa0" "d";
  (void)state;
  assert_text(s, s);
}

/* ---- Text: invalid UTF-8 ---- */

static void text_refuses_overlong_encodings(void **state) {
  (void)state;
  assert_text_refused("\xc0\xaf", API_ERR_INVALID_MESSAGE);
  assert_text_refused("a\xc1\xbf", API_ERR_INVALID_MESSAGE);
  assert_text_refused("\xe0\x80\xaf", API_ERR_INVALID_MESSAGE);
  assert_text_refused("\xe0\x9f\xbf", API_ERR_INVALID_MESSAGE);
  assert_text_refused("\xf0\x80\x80\xaf", API_ERR_INVALID_MESSAGE);
  assert_text_refused("\xf0\x8f\xbf\xbf", API_ERR_INVALID_MESSAGE);
}

static void text_refuses_surrogates(void **state) {
  (void)state;
  assert_text_refused("\xed\xa0\x80", API_ERR_INVALID_MESSAGE);
  assert_text_refused("\xed\xbf\xbf", API_ERR_INVALID_MESSAGE);
  assert_text_refused("\xed\xa0\xbd\xed\xb8\x80", API_ERR_INVALID_MESSAGE); /* CESU-8 */
}

static void text_refuses_code_points_above_10ffff(void **state) {
  (void)state;
  assert_text_refused("\xf4\x90\x80\x80", API_ERR_INVALID_MESSAGE);
  assert_text_refused("\xf5\x80\x80\x80", API_ERR_INVALID_MESSAGE);
  assert_text_refused("\xf8\x88\x80\x80\x80", API_ERR_INVALID_MESSAGE);
  assert_text_refused("\xff", API_ERR_INVALID_MESSAGE);
}

static void text_refuses_truncated_sequences(void **state) {
  (void)state;
  assert_text_refused("ok \xe2\x82", API_ERR_INVALID_MESSAGE);
  assert_text_refused("\xf0\x9f\x91", API_ERR_INVALID_MESSAGE);
  assert_text_refused("\xc3", API_ERR_INVALID_MESSAGE);
  assert_text_refused("\xe2\x82" "a", API_ERR_INVALID_MESSAGE);
}

static void text_refuses_stray_continuation_byte(void **state) {
  (void)state;
  assert_text_refused("a\x80" "b", API_ERR_INVALID_MESSAGE);
  assert_text_refused("\xbf", API_ERR_INVALID_MESSAGE);
}

static void text_refuses_invalid_utf8_after_the_limit(void **state) {
  (void)state;
  assert_text_refused_n("abc\xff", 4, 2, API_ERR_INVALID_MESSAGE);
}

/* ---- Text: length ---- */

static void text_accepts_exactly_max_chars(void **state) {
  struct buf out = {0};
  const char *s = "éééé日"; /* 5 code points, 11 bytes */
  (void)state;
  assert_int_equal(sanitize_text(s, strlen(s), 5, &out), API_OK);
  assert_string_equal(out.data, s);
  buf_free(&out);
}

static void text_refuses_one_over_max_chars(void **state) {
  (void)state;
  assert_text_refused_n("éééé日a", strlen("éééé日a"), 5, API_ERR_MESSAGE_TOO_LONG);
}

static void text_counts_code_points_before_cleaning(void **state) {
  (void)state;
  assert_text_refused_n("ab\x01", 3, 2, API_ERR_MESSAGE_TOO_LONG);
  assert_text_refused_n("<>", 2, 1, API_ERR_MESSAGE_TOO_LONG);
}

static void text_limit_ignores_escaping_growth(void **state) {
  struct buf out = {0};
  (void)state;
  assert_int_equal(sanitize_text("<<", 2, 2, &out), API_OK);
  assert_string_equal(out.data, "&lt;&lt;");
  buf_free(&out);
}

/* ---- Text: empty ---- */

static void text_refuses_empty(void **state) {
  (void)state;
  assert_text_refused("", API_ERR_INVALID_MESSAGE);
  assert_text_refused_n(NULL, 0, MAX_CHARS, API_ERR_INVALID_MESSAGE);
}

static void text_refuses_whitespace_only(void **state) {
  (void)state;
  assert_text_refused(" \t\n  \n", API_ERR_INVALID_MESSAGE);
  assert_text_refused("\xe3\x80\x80\xc2\xa0\xe2\x80\x8b", API_ERR_INVALID_MESSAGE);
}

static void text_refuses_only_removed_characters(void **state) {
  (void)state;
  assert_text_refused("\x01\x02\xe2\x80\xae\x7f \xef\xbb\xbf", API_ERR_INVALID_MESSAGE);
}

static void text_replaces_previous_buffer_content(void **state) {
  struct buf out = {0};
  (void)state;
  assert_int_equal(buf_append(&out, "old", 3), 0);
  assert_int_equal(sanitize_text("new", 3, MAX_CHARS, &out), API_OK);
  assert_string_equal(out.data, "new");
  buf_free(&out);
}

/* ---- Reactions ---- */

static void reaction_accepts_single_emoji(void **state) {
  (void)state;
  assert_reaction_ok("👍");
  assert_reaction_ok("🎉");
  assert_reaction_ok("😂");
  assert_reaction_ok("©");
}

static void reaction_accepts_variation_selectors(void **state) {
  (void)state;
  assert_reaction_ok("❤️");
  assert_reaction_ok("❤");
  assert_reaction_ok("™\xef\xb8\x8e"); /* U+FE0E */
}

static void reaction_accepts_skin_tones(void **state) {
  (void)state;
  assert_reaction_ok("👍🏽");
  assert_reaction_ok("👋🏿");
}

static void reaction_accepts_zwj_sequences(void **state) {
  (void)state;
  assert_reaction_ok("👩‍💻");
  assert_reaction_ok("👨‍👩‍👧‍👦");
  assert_reaction_ok("🏳️‍🌈");
  assert_reaction_ok("🕵🏽‍♂️");
}

static void reaction_accepts_longest_sequence_of_ten_code_points(void **state) {
  (void)state;
  assert_reaction_ok("👩🏻‍❤️‍💋‍👨🏼");
}

static void reaction_accepts_flags(void **state) {
  (void)state;
  assert_reaction_ok("🇫🇷");
  assert_reaction_ok("🏴󠁧󠁢󠁳󠁣󠁴󠁿"); /* Scotland: U+1F3F4 + tags + cancel tag */
}

static void reaction_accepts_keycaps(void **state) {
  (void)state;
  assert_reaction_ok("1️⃣");
  assert_reaction_ok("#⃣");
  assert_reaction_ok("*️⃣");
}

static void reaction_accepts_exactly_max_bytes(void **state) {
  (void)state;
  assert_int_equal(sanitize_reaction("👍", 4, 4), API_OK);
}

static void reaction_refuses_text(void **state) {
  (void)state;
  assert_reaction_refused("hi");
  assert_reaction_refused("<script>");
  assert_reaction_refused("1");
  assert_reaction_refused("👍a");
}

static void reaction_refuses_two_separate_emoji(void **state) {
  (void)state;
  assert_reaction_refused("👍👍");
  assert_reaction_refused("🇫🇷🇩🇪");
  assert_reaction_refused("👍🏽🏽");
}

static void reaction_refuses_empty_and_spaces(void **state) {
  (void)state;
  assert_reaction_refused("");
  assert_reaction_refused(" ");
  assert_reaction_refused(" 👍");
  assert_reaction_refused("👍 ");
  assert_int_equal(sanitize_reaction(NULL, 0, MAX_REACTION_BYTES), API_ERR_INVALID_MESSAGE);
}

static void reaction_refuses_dangling_joiners_and_modifiers(void **state) {
  (void)state;
  assert_reaction_refused("👍\xe2\x80\x8d");
  assert_reaction_refused("\xe2\x80\x8d👍");
  assert_reaction_refused("👩\xe2\x80\x8d\xe2\x80\x8d💻");
  assert_reaction_refused("\xef\xb8\x8f");
  assert_reaction_refused("👍\xef\xb8\x8f\xef\xb8\x8f");
  assert_reaction_refused("\xe2\x83\xa3");
}

static void reaction_refuses_lone_or_odd_regional_indicators(void **state) {
  (void)state;
  assert_reaction_refused("🇫");
  assert_reaction_refused("🇫🇷🇩");
}

static void reaction_refuses_malformed_tag_sequences(void **state) {
  (void)state;
  assert_reaction_refused("🏴\xf3\xa0\x81\xa7\xf3\xa0\x81\xa2");            /* no cancel tag */
  assert_reaction_refused("👍\xf3\xa0\x81\xa7\xf3\xa0\x81\xbf");            /* not after U+1F3F4 */
  assert_reaction_refused("\xf3\xa0\x81\xbf");                             /* cancel tag alone */
}

static void reaction_refuses_more_than_ten_code_points(void **state) {
  (void)state;
  /* six emoji joined: 11 code points */
  assert_reaction_refused("👍‍👍‍👍‍👍‍👍‍👍");
}

static void reaction_refuses_more_than_max_bytes(void **state) {
  (void)state;
  assert_int_equal(sanitize_reaction("👍", 4, 3), API_ERR_INVALID_MESSAGE);
  assert_int_equal(sanitize_reaction("👩‍💻", strlen("👩‍💻"), 8), API_ERR_INVALID_MESSAGE);
}

static void reaction_refuses_invalid_utf8(void **state) {
  (void)state;
  assert_reaction_refused("\xf0\x9f\x91");
  assert_reaction_refused("\xed\xa0\xbd\xed\xb1\x8d"); /* 👍 as CESU-8 surrogates */
}

/* ---- File names ---- */

static void filename_keeps_last_path_component(void **state) {
  (void)state;
  assert_filename("../../etc/passwd", "passwd");
  assert_filename("C:\\Users\\x\\evil.pdf", "evil.pdf");
  assert_filename("a/b\\c/d.txt", "d.txt");
}

static void filename_removes_rtl_override_and_keeps_real_extension(void **state) {
  char out[256];
  const char *s = "invoice\xe2\x80\xae" "fdp.exe";
  size_t n;
  (void)state;
  assert_int_equal(sanitize_filename(s, strlen(s), out, sizeof(out)), API_OK);
  assert_string_equal(out, "invoicefdp.exe");
  n = strlen(out);
  assert_true(n >= 4 && strcmp(out + n - 4, ".exe") == 0);
}

static void filename_removes_controls(void **state) {
  (void)state;
  assert_filename("a\tb\nc\x01" "d\x7f" "e\xc2\x80.txt", "abcde.txt");
  assert_filename("x\xe2\x81\xa6y\xe2\x80\x8f.pdf", "xy.pdf");
}

static void filename_trims_spaces_and_dots(void **state) {
  (void)state;
  assert_filename("  .hidden. . ", "hidden");
  assert_filename("report.pdf...", "report.pdf");
  assert_filename("evil.exe .", "evil.exe");
  assert_filename("my report.v2.pdf", "my report.v2.pdf");
}

static void filename_replaces_windows_reserved_characters(void **state) {
  (void)state;
  assert_filename("a:b*c?d\"e<f>g|h.txt", "a_b_c_d_e_f_g_h.txt");
}

static void filename_keeps_unicode(void **state) {
  (void)state;
  assert_filename("résumé 日本 👍.pdf", "résumé 日本 👍.pdf");
}

static void filename_refuses_dot_names_and_empty(void **state) {
  (void)state;
  assert_filename_refused("..");
  assert_filename_refused(".");
  assert_filename_refused("");
  assert_filename_refused("dir/");
  assert_filename_refused("a/..");
  assert_filename_refused(" . . ");
  assert_filename_refused("\xe2\x80\xae\x01");
  assert_filename_refused_n(NULL, 0);
}

static void filename_accepts_255_bytes(void **state) {
  char *s = repeat("a", 251, ".txt");
  char out[256];
  (void)state;
  assert_int_equal(sanitize_filename(s, strlen(s), out, sizeof(out)), API_OK);
  assert_int_equal(strlen(out), 255);
  free(s);
}

static void filename_refuses_256_bytes(void **state) {
  char *s = repeat("a", 252, ".txt");
  (void)state;
  assert_filename_refused(s);
  free(s);
}

static void filename_refuses_300_bytes(void **state) {
  char *s = repeat("a", 296, ".pdf");
  (void)state;
  assert_filename_refused(s);
  free(s);
}

static void filename_counts_bytes_not_code_points(void **state) {
  char *ok = repeat("é", 127, "a");   /* 255 bytes */
  char *long_ = repeat("é", 128, ""); /* 256 bytes, 128 code points */
  (void)state;
  assert_filename(ok, ok);
  assert_filename_refused(long_);
  free(ok);
  free(long_);
}

static void filename_limit_applies_after_trimming(void **state) {
  char *s = repeat("a", 250, "          .....   ");
  char *dir = repeat("d", 400, "/name.txt");
  char out[256];
  (void)state;
  assert_int_equal(sanitize_filename(s, strlen(s), out, sizeof(out)), API_OK);
  assert_int_equal(strlen(out), 250);
  assert_filename(dir, "name.txt");
  free(s);
  free(dir);
}

static void filename_refuses_invalid_utf8(void **state) {
  (void)state;
  assert_filename_refused("a\xc0\xae.txt");
  assert_filename_refused("\xff/ok.txt");
}

/* ---- sanitize_text's ASCII path against the code point path ---- */

static uint32_t rng_state = 2463534242u;
static uint32_t rng(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 17;
  rng_state ^= rng_state << 5;
  return rng_state;
}

/* Checks that sanitize_text and sanitize_text_cp agree on s[0..len). */
static void assert_paths_agree(const char *s, size_t len, size_t max) {
  struct buf a = {0}, b = {0};
  enum api_err ea = sanitize_text(s, len, max, &a), eb = sanitize_text_cp(s, len, max, &b);
  if (ea != eb || a.len != b.len || (a.len && memcmp(a.data, b.data, a.len) != 0))
    fail_msg("paths differ on \"%.*s\" (max %zu): %d \"%.*s\" against %d \"%.*s\"", (int)len, s, max, (int)ea,
             (int)a.len, a.data ? a.data : "", (int)eb, (int)b.len, b.data ? b.data : "");
  buf_free(&a);
  buf_free(&b);
}

/* Strings made of pieces that matter to the cleaning (scheme words in any
 * case and split by blanks, colons, HTML specials, letters and digits
 * around them, blanks) and, now and then, a byte the ASCII path leaves to
 * the code point path (a control, DEL, UTF-8). */
static void text_ascii_path_matches_code_point_path(void **state) {
  (void)state;
  static const char *const pieces[] = {
    "javascript", "JavaScript", "java script", "jav\tascript", "vbscript", "VBScript", "data", "DaTa", "d a t a",
    "metadata", "xjavascript", ":", ":", " :", "\t:", "\n", " ", "  ", "\t", "&", "<", ">", "\"", "'", "a", "Z",
    "0", "9", "-", "_", ".", "/", "(", "=", "hello", "http://x", "script", "java", "\r", "\x01", "\x7f", "\xc3\xa9",
    "\xe2\x80\xae",
  };
  const size_t npieces = sizeof(pieces) / sizeof(pieces[0]);
  char s[256];
  for (int round = 0; round < 40000; round++) {
    size_t len = 0, n = rng() % 24;
    for (size_t k = 0; k < n; k++) {
      /* The last four pieces (controls, DEL, UTF-8) come rarely. */
      uint32_t r = rng();
      const char *p = pieces[r % 16 == 0 ? npieces - 1 - (r >> 8) % 5 : (r >> 8) % (npieces - 5)];
      size_t pl = strlen(p);
      if (len + pl >= sizeof(s)) break;
      memcpy(s + len, p, pl);
      len += pl;
    }
    size_t max = rng() % 4 == 0 ? (len ? len - 1 : 0) : rng() % 4 == 0 ? len : 10000;
    assert_paths_agree(s, len, max);
  }
  /* Every short string over a small alphabet, exhaustively. */
  static const char alpha[] = {'d', 'a', 't', ':', ' ', 'x', '&', '\n', '\t'};
  for (size_t n = 0; n <= 6; n++) {
    size_t total = 1;
    for (size_t k = 0; k < n; k++) total *= sizeof(alpha);
    for (size_t code = 0; code < total; code++) {
      size_t c = code;
      for (size_t k = 0; k < n; k++, c /= sizeof(alpha)) s[k] = alpha[c % sizeof(alpha)];
      assert_paths_agree(s, n, 10000);
    }
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(text_escapes_html_special_characters),
    cmocka_unit_test(text_escapes_script_tag),
    cmocka_unit_test(text_escapes_img_onerror),
    cmocka_unit_test(text_neutralizes_javascript_href),
    cmocka_unit_test(text_neutralizes_mixed_case_javascript),
    cmocka_unit_test(text_neutralizes_javascript_with_tab_inside),
    cmocka_unit_test(text_neutralizes_javascript_with_newline_and_spaces),
    cmocka_unit_test(text_neutralizes_javascript_split_by_removed_characters),
    cmocka_unit_test(text_neutralizes_data_scheme),
    cmocka_unit_test(text_neutralizes_vbscript),
    cmocka_unit_test(text_neutralizes_scheme_after_punctuation),
    cmocka_unit_test(text_neutralizes_every_occurrence),
    cmocka_unit_test(text_leaves_metadata_colon_alone),
    cmocka_unit_test(text_leaves_other_colons_alone),
    cmocka_unit_test(text_removes_rtl_override),
    cmocka_unit_test(text_removes_every_bidi_control),
    cmocka_unit_test(text_removes_controls_but_keeps_newline_and_tab),
    cmocka_unit_test(text_removes_nul_byte),
    cmocka_unit_test(text_removes_byte_order_mark),
    cmocka_unit_test(text_turns_line_separators_into_newlines),
    cmocka_unit_test(text_keeps_accents_and_cjk),
    cmocka_unit_test(text_keeps_emoji_sequences_and_flags),
    cmocka_unit_test(text_keeps_zero_width_joiners_and_spaces),
    cmocka_unit_test(text_refuses_overlong_encodings),
    cmocka_unit_test(text_refuses_surrogates),
    cmocka_unit_test(text_refuses_code_points_above_10ffff),
    cmocka_unit_test(text_refuses_truncated_sequences),
    cmocka_unit_test(text_refuses_stray_continuation_byte),
    cmocka_unit_test(text_refuses_invalid_utf8_after_the_limit),
    cmocka_unit_test(text_accepts_exactly_max_chars),
    cmocka_unit_test(text_refuses_one_over_max_chars),
    cmocka_unit_test(text_counts_code_points_before_cleaning),
    cmocka_unit_test(text_limit_ignores_escaping_growth),
    cmocka_unit_test(text_refuses_empty),
    cmocka_unit_test(text_ascii_path_matches_code_point_path),
    cmocka_unit_test(text_refuses_whitespace_only),
    cmocka_unit_test(text_refuses_only_removed_characters),
    cmocka_unit_test(text_replaces_previous_buffer_content),
    cmocka_unit_test(reaction_accepts_single_emoji),
    cmocka_unit_test(reaction_accepts_variation_selectors),
    cmocka_unit_test(reaction_accepts_skin_tones),
    cmocka_unit_test(reaction_accepts_zwj_sequences),
    cmocka_unit_test(reaction_accepts_longest_sequence_of_ten_code_points),
    cmocka_unit_test(reaction_accepts_flags),
    cmocka_unit_test(reaction_accepts_keycaps),
    cmocka_unit_test(reaction_accepts_exactly_max_bytes),
    cmocka_unit_test(reaction_refuses_text),
    cmocka_unit_test(reaction_refuses_two_separate_emoji),
    cmocka_unit_test(reaction_refuses_empty_and_spaces),
    cmocka_unit_test(reaction_refuses_dangling_joiners_and_modifiers),
    cmocka_unit_test(reaction_refuses_lone_or_odd_regional_indicators),
    cmocka_unit_test(reaction_refuses_malformed_tag_sequences),
    cmocka_unit_test(reaction_refuses_more_than_ten_code_points),
    cmocka_unit_test(reaction_refuses_more_than_max_bytes),
    cmocka_unit_test(reaction_refuses_invalid_utf8),
    cmocka_unit_test(filename_keeps_last_path_component),
    cmocka_unit_test(filename_removes_rtl_override_and_keeps_real_extension),
    cmocka_unit_test(filename_removes_controls),
    cmocka_unit_test(filename_trims_spaces_and_dots),
    cmocka_unit_test(filename_replaces_windows_reserved_characters),
    cmocka_unit_test(filename_keeps_unicode),
    cmocka_unit_test(filename_refuses_dot_names_and_empty),
    cmocka_unit_test(filename_accepts_255_bytes),
    cmocka_unit_test(filename_refuses_256_bytes),
    cmocka_unit_test(filename_refuses_300_bytes),
    cmocka_unit_test(filename_counts_bytes_not_code_points),
    cmocka_unit_test(filename_limit_applies_after_trimming),
    cmocka_unit_test(filename_refuses_invalid_utf8),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
