/* Unit tests for config.c: defaults, the config file, HUDDLE_* environment
 * variables and command-line flags, in that order of increasing precedence.
 * Every test starts with no HUDDLE_* variable set; config files are written
 * to temporary files and removed again. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

#define ARGC(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* ---- Helpers ---- */

/* Unsets every HUDDLE_* variable, whatever the environment of the run. */
static int clear_huddle_env(void **state) {
  char names[64][128];
  int n = 0;
  (void)state;
  for (char **e = environ; *e != NULL && n < 64; e++) {
    if (strncmp(*e, "HUDDLE_", 7) == 0) {
      const char *eq = strchr(*e, '=');
      size_t len = eq ? (size_t)(eq - *e) : strlen(*e);
      if (len < sizeof(names[0])) {
        memcpy(names[n], *e, len);
        names[n][len] = '\0';
        n++;
      }
    }
  }
  for (int i = 0; i < n; i++) unsetenv(names[i]);
  return 0;
}

/* The temporary config file of the running test; teardown removes it. */
static char tmp_config[64];

static int teardown(void **state) {
  if (tmp_config[0] != '\0') unlink(tmp_config);
  tmp_config[0] = '\0';
  return clear_huddle_env(state);
}

/* Writes contents to a fresh temporary file; path receives its name. */
static void write_config(const char *contents, char *path, size_t path_len) {
  int fd;
  FILE *f;
  snprintf(path, path_len, "/tmp/huddle-test-config-XXXXXX");
  fd = mkstemp(path);
  assert_true(fd >= 0);
  snprintf(tmp_config, sizeof(tmp_config), "%s", path);
  f = fdopen(fd, "w");
  assert_non_null(f);
  assert_int_equal(fputs(contents, f) >= 0, 1);
  assert_int_equal(fclose(f), 0);
}

/* Loads argv (argv[0] is the program) and returns config_load's result. */
static int load(struct config *c, int argc, char **argv, int *help, char *err, size_t err_len) {
  err[0] = '\0';
  return config_load(c, argc, argv, 1, help, err, err_len);
}

/* Asserts that argv is refused with a message containing want. */
static void assert_refused(int argc, char **argv, const char *want) {
  struct config c;
  char err[512];
  int help, rc = load(&c, argc, argv, &help, err, sizeof(err));
  config_free(&c); /* before any assertion, so a failure does not leak */
  assert_int_equal(rc, -1);
  if (strstr(err, want) == NULL) fail_msg("message '%s' lacks '%s'", err, want);
}

/* ---- Defaults ---- */

static void defaults_apply_without_file_env_or_flags(void **state) {
  struct config c;
  char err[256];
  char *argv[] = {"huddle"};
  int help = -1;
  (void)state;
  assert_int_equal(load(&c, ARGC(argv), argv, &help, err, sizeof(err)), 0);
  assert_int_equal(help, 0);
  assert_string_equal(c.listen, "127.0.0.1:8080");
  assert_int_equal(c.max_ws_message, 65536);
  assert_string_equal(c.data_dir, "./data");
  assert_string_equal(c.log_level, "info");
  assert_string_equal(c.jwt_alg, "HS256");
  assert_string_equal(c.turn_urls, "");
  assert_null(c.jwt_secret);
  assert_null(c.config_file);
  assert_null(c.jwt_public_key);
  assert_null(c.turn_secret);
  assert_int_equal(c.max_room_participants, 50);
  assert_int_equal(c.json_max_depth, 16);
  assert_int_equal(c.json_max_values, 4096);
  assert_int_equal(c.max_header_bytes, 8192);
  config_free(&c);
}

static void config_free_clears_strings_and_is_idempotent(void **state) {
  struct config c;
  char err[256];
  char *argv[] = {"huddle", "--jwt-secret=s"};
  int help;
  (void)state;
  assert_int_equal(load(&c, ARGC(argv), argv, &help, err, sizeof(err)), 0);
  config_free(&c);
  assert_null(c.listen);
  assert_null(c.jwt_secret);
  config_free(&c);
}

/* ---- Environment ---- */

static void env_overrides_default(void **state) {
  struct config c;
  char err[256];
  char *argv[] = {"huddle"};
  int help;
  (void)state;
  setenv("HUDDLE_LISTEN", "0.0.0.0:9000", 1);
  setenv("HUDDLE_MAX_WS_MESSAGE", "1024", 1);
  assert_int_equal(load(&c, ARGC(argv), argv, &help, err, sizeof(err)), 0);
  assert_string_equal(c.listen, "0.0.0.0:9000");
  assert_int_equal(c.max_ws_message, 1024);
  assert_string_equal(c.log_level, "info"); /* others keep their defaults */
  config_free(&c);
}

static void env_empty_string_sets_empty_value(void **state) {
  struct config c;
  char err[256];
  char *argv[] = {"huddle"};
  int help;
  (void)state;
  setenv("HUDDLE_STUN_URLS", "", 1);
  assert_int_equal(load(&c, ARGC(argv), argv, &help, err, sizeof(err)), 0);
  assert_string_equal(c.stun_urls, "");
  config_free(&c);
}

static void env_integer_out_of_range_names_variable(void **state) {
  char *argv[] = {"huddle"};
  (void)state;
  setenv("HUDDLE_MAX_WS_MESSAGE", "100", 1);
  assert_refused(ARGC(argv), argv, "HUDDLE_MAX_WS_MESSAGE");
}

/* ---- Flags ---- */

static void flag_overrides_env(void **state) {
  struct config c;
  char err[256];
  char *argv[] = {"huddle", "--listen=127.0.0.1:7000", "--max-ws-message", "2048"};
  int help;
  (void)state;
  setenv("HUDDLE_LISTEN", "0.0.0.0:9000", 1);
  setenv("HUDDLE_MAX_WS_MESSAGE", "1024", 1);
  assert_int_equal(load(&c, ARGC(argv), argv, &help, err, sizeof(err)), 0);
  assert_string_equal(c.listen, "127.0.0.1:7000");
  assert_int_equal(c.max_ws_message, 2048);
  config_free(&c);
}

static void flag_accepts_equals_form(void **state) {
  struct config c;
  char err[256];
  char *argv[] = {"huddle", "--listen=[::1]:8443", "--turn-ttl=3600"};
  int help;
  (void)state;
  assert_int_equal(load(&c, ARGC(argv), argv, &help, err, sizeof(err)), 0);
  assert_string_equal(c.listen, "[::1]:8443");
  assert_int_equal(c.turn_ttl, 3600);
  config_free(&c);
}

static void flag_accepts_separate_value_form(void **state) {
  struct config c;
  char err[256];
  char *argv[] = {"huddle", "--listen", "[::1]:8443", "--turn-ttl", "3600"};
  int help;
  (void)state;
  assert_int_equal(load(&c, ARGC(argv), argv, &help, err, sizeof(err)), 0);
  assert_string_equal(c.listen, "[::1]:8443");
  assert_int_equal(c.turn_ttl, 3600);
  config_free(&c);
}

static void flag_equals_form_keeps_later_equals_signs(void **state) {
  struct config c;
  char err[256];
  char *argv[] = {"huddle", "--jwt-secret=a=b==c"};
  int help;
  (void)state;
  assert_int_equal(load(&c, ARGC(argv), argv, &help, err, sizeof(err)), 0);
  assert_string_equal(c.jwt_secret, "a=b==c");
  config_free(&c);
}

static void flag_equals_form_allows_empty_value(void **state) {
  struct config c;
  char err[256];
  char *argv[] = {"huddle", "--stun-urls="};
  int help;
  (void)state;
  assert_int_equal(load(&c, ARGC(argv), argv, &help, err, sizeof(err)), 0);
  assert_string_equal(c.stun_urls, "");
  config_free(&c);
}

static void flag_given_twice_keeps_last(void **state) {
  struct config c;
  char err[256];
  char *argv[] = {"huddle", "--listen=a:1", "--listen", "b:2"};
  int help;
  (void)state;
  assert_int_equal(load(&c, ARGC(argv), argv, &help, err, sizeof(err)), 0);
  assert_string_equal(c.listen, "b:2");
  config_free(&c);
}

static void flags_before_first_are_ignored(void **state) {
  struct config c;
  char err[256];
  char *argv[] = {"huddle", "token", "--listen=a:1"};
  int help;
  (void)state;
  assert_int_equal(config_load(&c, ARGC(argv), argv, 2, &help, err, sizeof(err)), 0);
  assert_string_equal(c.listen, "a:1");
  config_free(&c);
}

static void unknown_flag_is_refused_with_its_name(void **state) {
  char *argv[] = {"huddle", "--listen=a:1", "--bogus-option=1"};
  (void)state;
  assert_refused(ARGC(argv), argv, "--bogus-option");
}

static void flag_prefix_is_not_an_abbreviation(void **state) {
  char *argv[] = {"huddle", "--list=a:1"};
  (void)state;
  assert_refused(ARGC(argv), argv, "--list");
}

static void flag_without_value_is_refused(void **state) {
  char *argv[] = {"huddle", "--listen"};
  (void)state;
  assert_refused(ARGC(argv), argv, "--listen");
}

static void positional_argument_is_refused(void **state) {
  char *argv[] = {"huddle", "serve"};
  (void)state;
  assert_refused(ARGC(argv), argv, "serve");
}

static void single_dash_flag_is_refused(void **state) {
  char *argv[] = {"huddle", "-listen=a:1"};
  (void)state;
  assert_refused(ARGC(argv), argv, "-listen");
}

/* ---- Integers ---- */

static void integer_accepts_range_boundaries(void **state) {
  struct config c;
  char err[256];
  char *lo[] = {"huddle", "--max-ws-message=128"};
  char *hi[] = {"huddle", "--max-ws-message=16777216"};
  int help;
  (void)state;
  assert_int_equal(load(&c, ARGC(lo), lo, &help, err, sizeof(err)), 0);
  assert_int_equal(c.max_ws_message, 128);
  config_free(&c);
  assert_int_equal(load(&c, ARGC(hi), hi, &help, err, sizeof(err)), 0);
  assert_int_equal(c.max_ws_message, 16777216);
  config_free(&c);
}

static void integer_below_minimum_is_refused(void **state) {
  char *argv[] = {"huddle", "--max-ws-message=127"};
  (void)state;
  assert_refused(ARGC(argv), argv, "max-ws-message");
}

static void integer_above_maximum_is_refused(void **state) {
  char *argv[] = {"huddle", "--max-ws-message=16777217"};
  (void)state;
  assert_refused(ARGC(argv), argv, "max-ws-message");
}

/* Options that take one of a few words refuse any other, from every source. */
static void word_options_refuse_other_words(void **state) {
  char *a1[] = {"huddle", "--store-sync=sometimes"};
  char *a2[] = {"huddle", "--chat-durability", "Durable"};
  (void)state;
  assert_refused(ARGC(a1), a1, "store-sync: expected one of full|normal");
  assert_refused(ARGC(a2), a2, "chat-durability: expected one of durable|relaxed|off");
  setenv("HUDDLE_STORE_SYNC", "", 1);
  char *a3[] = {"huddle"};
  assert_refused(ARGC(a3), a3, "store-sync");
  unsetenv("HUDDLE_STORE_SYNC");
}

static void word_options_take_their_words(void **state) {
  char *argv[] = {"huddle", "--store-sync=normal", "--chat-durability=off"};
  struct config c;
  char err[512];
  int help;
  (void)state;
  assert_int_equal(load(&c, ARGC(argv), argv, &help, err, sizeof(err)), 0);
  assert_string_equal(c.store_sync, "normal");
  assert_string_equal(c.chat_durability, "off");
  config_free(&c);
  char *none[] = {"huddle"};
  assert_int_equal(load(&c, ARGC(none), none, &help, err, sizeof(err)), 0);
  assert_string_equal(c.store_sync, "full");
  assert_string_equal(c.chat_durability, "durable");
  config_free(&c);
}

static void integer_overflowing_long_is_refused(void **state) {
  char *argv[] = {"huddle", "--max-ws-message=99999999999999999999999"};
  char *neg[] = {"huddle", "--max-ws-message=-99999999999999999999999"};
  (void)state;
  assert_refused(ARGC(argv), argv, "max-ws-message");
  assert_refused(ARGC(neg), neg, "max-ws-message");
}

static void integer_with_trailing_garbage_is_refused(void **state) {
  char *argv[] = {"huddle", "--max-ws-message=4096k"};
  char *hex[] = {"huddle", "--max-ws-message=0x1000"};
  char *empty[] = {"huddle", "--max-ws-message="};
  (void)state;
  assert_refused(ARGC(argv), argv, "max-ws-message");
  assert_refused(ARGC(hex), hex, "max-ws-message");
  assert_refused(ARGC(empty), empty, "max-ws-message");
}

/* ---- Config file ---- */

static void file_overrides_defaults(void **state) {
  struct config c;
  char err[512], path[64], flag[128];
  char *argv[] = {"huddle", flag};
  int help;
  (void)state;
  write_config("# huddle test config\n"
               "\n"
               "listen = 10.0.0.1:1234\n"
               "max-ws-message = 2048\n"
               "   log-level=debug   \n",
               path, sizeof(path));
  snprintf(flag, sizeof(flag), "--config=%s", path);
  assert_int_equal(load(&c, ARGC(argv), argv, &help, err, sizeof(err)), 0);
  assert_string_equal(c.listen, "10.0.0.1:1234");
  assert_int_equal(c.max_ws_message, 2048);
  assert_string_equal(c.log_level, "debug");
  assert_string_equal(c.config_file, path);
  assert_string_equal(c.data_dir, "./data"); /* not in the file */
  config_free(&c);
}

static void file_named_by_env_is_read(void **state) {
  struct config c;
  char err[512], path[64];
  char *argv[] = {"huddle"};
  int help;
  (void)state;
  write_config("listen = 10.0.0.2:1\n", path, sizeof(path));
  setenv("HUDDLE_CONFIG", path, 1);
  assert_int_equal(load(&c, ARGC(argv), argv, &help, err, sizeof(err)), 0);
  assert_string_equal(c.listen, "10.0.0.2:1");
  assert_string_equal(c.config_file, path);
  config_free(&c);
}

static void file_named_by_flag_separate_form_is_read(void **state) {
  struct config c;
  char err[512], path[64];
  char *argv[] = {"huddle", "--config", path};
  int help;
  (void)state;
  write_config("listen = 10.0.0.3:1\n", path, sizeof(path));
  assert_int_equal(load(&c, ARGC(argv), argv, &help, err, sizeof(err)), 0);
  assert_string_equal(c.listen, "10.0.0.3:1");
  config_free(&c);
}

static void file_named_by_flag_beats_file_named_by_env(void **state) {
  struct config c;
  char err[512], path[64];
  char *argv[] = {"huddle", "--config", path};
  int help;
  (void)state;
  write_config("listen = 10.0.0.4:1\n", path, sizeof(path));
  setenv("HUDDLE_CONFIG", "/nonexistent/env.conf", 1);
  assert_int_equal(load(&c, ARGC(argv), argv, &help, err, sizeof(err)), 0);
  assert_string_equal(c.listen, "10.0.0.4:1");
  assert_string_equal(c.config_file, path);
  config_free(&c);
}

static void env_overrides_file(void **state) {
  struct config c;
  char err[512], path[64];
  char *argv[] = {"huddle", "--config", path};
  int help;
  (void)state;
  write_config("listen = 10.0.0.1:1234\nmax-ws-message = 2048\n", path, sizeof(path));
  setenv("HUDDLE_LISTEN", "0.0.0.0:9000", 1);
  assert_int_equal(load(&c, ARGC(argv), argv, &help, err, sizeof(err)), 0);
  assert_string_equal(c.listen, "0.0.0.0:9000");
  assert_int_equal(c.max_ws_message, 2048); /* file still beats the default */
  config_free(&c);
}

static void flag_overrides_file(void **state) {
  struct config c;
  char err[512], path[64];
  char *argv[] = {"huddle", "--listen=127.0.0.1:7000", "--config", path};
  int help;
  (void)state;
  write_config("listen = 10.0.0.1:1234\n", path, sizeof(path));
  assert_int_equal(load(&c, ARGC(argv), argv, &help, err, sizeof(err)), 0);
  assert_string_equal(c.listen, "127.0.0.1:7000");
  config_free(&c);
}

static void file_empty_value_sets_empty_string(void **state) {
  struct config c;
  char err[512], path[64];
  char *argv[] = {"huddle", "--config", path};
  int help;
  (void)state;
  write_config("stun-urls =\n", path, sizeof(path));
  assert_int_equal(load(&c, ARGC(argv), argv, &help, err, sizeof(err)), 0);
  assert_string_equal(c.stun_urls, "");
  config_free(&c);
}

static void file_line_without_equals_is_refused_with_line_number(void **state) {
  char path[64], want[128];
  char *argv[] = {"huddle", "--config", path};
  (void)state;
  write_config("listen = 10.0.0.1:1234\n# ok\nthis line is wrong\n", path, sizeof(path));
  snprintf(want, sizeof(want), "%s:3", path);
  assert_refused(ARGC(argv), argv, want);
}

static void file_unknown_option_is_refused_with_line_number(void **state) {
  char path[64], want[128];
  char *argv[] = {"huddle", "--config", path};
  (void)state;
  write_config("\nbogus = 1\n", path, sizeof(path));
  snprintf(want, sizeof(want), "%s:2", path);
  assert_refused(ARGC(argv), argv, want);
  assert_refused(ARGC(argv), argv, "bogus");
}

static void file_cannot_name_another_config_file(void **state) {
  char path[64];
  char *argv[] = {"huddle", "--config", path};
  (void)state;
  write_config("config = /etc/passwd\n", path, sizeof(path));
  assert_refused(ARGC(argv), argv, ":1");
}

static void file_bad_integer_is_refused_with_line_number(void **state) {
  char path[64], want[128];
  char *argv[] = {"huddle", "--config", path};
  (void)state;
  write_config("listen = a:1\nmax-ws-message = lots\n", path, sizeof(path));
  snprintf(want, sizeof(want), "%s:2", path);
  assert_refused(ARGC(argv), argv, "max-ws-message");
  assert_refused(ARGC(argv), argv, want);
}

static void missing_file_is_refused_with_its_path(void **state) {
  char *argv[] = {"huddle", "--config=/nonexistent/huddle.conf"};
  (void)state;
  assert_refused(ARGC(argv), argv, "/nonexistent/huddle.conf");
}

/* ---- Help ---- */

static void help_flag_sets_help(void **state) {
  struct config c;
  char err[256];
  char *argv[] = {"huddle", "--help"};
  int help = 0;
  (void)state;
  assert_int_equal(load(&c, ARGC(argv), argv, &help, err, sizeof(err)), 0);
  assert_int_equal(help, 1);
  config_free(&c);
}

static void short_help_flag_sets_help(void **state) {
  struct config c;
  char err[256];
  char *argv[] = {"huddle", "--listen=a:1", "-h"};
  int help = 0;
  (void)state;
  assert_int_equal(load(&c, ARGC(argv), argv, &help, err, sizeof(err)), 0);
  assert_int_equal(help, 1);
  config_free(&c);
}

static void help_lists_every_option_with_its_variable(void **state) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  (void)state;
  assert_non_null(f);
  config_print_help(f);
  fclose(f);
  assert_non_null(strstr(text, "--listen"));
  assert_non_null(strstr(text, "HUDDLE_LISTEN"));
  assert_non_null(strstr(text, "127.0.0.1:8080"));
  assert_non_null(strstr(text, "--max-ws-message"));
  assert_non_null(strstr(text, "HUDDLE_MAX_WS_MESSAGE"));
  free(text);
}

/* ---- booleans (--dev-tokens) ---- */

static void boolean_is_false_by_default_and_bare_flag_sets_it(void **state) {
  struct config c;
  char err[256];
  char *none[] = {"huddle"};
  char *bare[] = {"huddle", "--dev-tokens", "--listen", "127.0.0.1:1"};
  int help;
  (void)state;
  assert_int_equal(load(&c, ARGC(none), none, &help, err, sizeof(err)), 0);
  assert_int_equal(c.dev_tokens, 0);
  config_free(&c);
  /* A bare boolean does not eat the next argument. */
  assert_int_equal(load(&c, ARGC(bare), bare, &help, err, sizeof(err)), 0);
  assert_int_equal(c.dev_tokens, 1);
  assert_string_equal(c.listen, "127.0.0.1:1");
  config_free(&c);
}

static void boolean_accepts_words_from_flag_env_and_file(void **state) {
  struct config c;
  char err[256];
  char *off[] = {"huddle", "--dev-tokens", "--dev-tokens=false"};
  char path[64];
  int help;
  (void)state;
  assert_int_equal(load(&c, ARGC(off), off, &help, err, sizeof(err)), 0);
  assert_int_equal(c.dev_tokens, 0);
  config_free(&c);
  setenv("HUDDLE_DEV_TOKENS", "yes", 1);
  char *none[] = {"huddle"};
  assert_int_equal(load(&c, ARGC(none), none, &help, err, sizeof(err)), 0);
  assert_int_equal(c.dev_tokens, 1);
  config_free(&c);
  unsetenv("HUDDLE_DEV_TOKENS");
  write_config("dev-tokens = on\n", path, sizeof(path));
  char *file[] = {"huddle", "--config", path};
  assert_int_equal(load(&c, ARGC(file), file, &help, err, sizeof(err)), 0);
  assert_int_equal(c.dev_tokens, 1);
  config_free(&c);
}

static void boolean_refuses_other_words(void **state) {
  char *argv[] = {"huddle", "--dev-tokens=maybe"};
  (void)state;
  assert_refused(ARGC(argv), argv, "dev-tokens: expected true or false");
}

#define T(f) cmocka_unit_test_setup_teardown(f, clear_huddle_env, teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
    T(defaults_apply_without_file_env_or_flags),
    T(config_free_clears_strings_and_is_idempotent),
    T(env_overrides_default),
    T(env_empty_string_sets_empty_value),
    T(env_integer_out_of_range_names_variable),
    T(flag_overrides_env),
    T(flag_accepts_equals_form),
    T(flag_accepts_separate_value_form),
    T(flag_equals_form_keeps_later_equals_signs),
    T(flag_equals_form_allows_empty_value),
    T(flag_given_twice_keeps_last),
    T(flags_before_first_are_ignored),
    T(unknown_flag_is_refused_with_its_name),
    T(flag_prefix_is_not_an_abbreviation),
    T(flag_without_value_is_refused),
    T(positional_argument_is_refused),
    T(single_dash_flag_is_refused),
    T(integer_accepts_range_boundaries),
    T(integer_below_minimum_is_refused),
    T(integer_above_maximum_is_refused),
    T(word_options_refuse_other_words),
    T(word_options_take_their_words),
    T(integer_overflowing_long_is_refused),
    T(integer_with_trailing_garbage_is_refused),
    T(file_overrides_defaults),
    T(file_named_by_env_is_read),
    T(file_named_by_flag_separate_form_is_read),
    T(file_named_by_flag_beats_file_named_by_env),
    T(env_overrides_file),
    T(flag_overrides_file),
    T(file_empty_value_sets_empty_string),
    T(file_line_without_equals_is_refused_with_line_number),
    T(file_unknown_option_is_refused_with_line_number),
    T(file_cannot_name_another_config_file),
    T(file_bad_integer_is_refused_with_line_number),
    T(missing_file_is_refused_with_its_path),
    T(help_flag_sets_help),
    T(short_help_flag_sets_help),
    T(help_lists_every_option_with_its_variable),
    T(boolean_is_false_by_default_and_bare_flag_sets_it),
    T(boolean_accepts_words_from_flag_env_and_file),
    T(boolean_refuses_other_words),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
