/* Configuration table and loaders (see config.h). */
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

enum opt_type { OPT_STR, OPT_INT, OPT_BOOL };

struct opt {
  const char *name;   /* flag without "--" and config file key */
  const char *env;
  enum opt_type type;
  size_t off;
  const char *def;    /* NULL: unset */
  long min, max;      /* for OPT_INT */
  const char *help;
};

#define S(f) OPT_STR, offsetof(struct config, f)
#define I(f) OPT_INT, offsetof(struct config, f)
#define B(f) OPT_BOOL, offsetof(struct config, f)

static const struct opt opts[] = {
  {"listen", "HUDDLE_LISTEN", S(listen), "127.0.0.1:8080", 0, 0, "Address and port to serve HTTP and WebSocket on (port 0: any free port)."},
  {"data-dir", "HUDDLE_DATA_DIR", S(data_dir), "./data", 0, 0, "Directory for the SQLite database and the generated JWT secret."},
  {"config", "HUDDLE_CONFIG", S(config_file), NULL, 0, 0, "Config file of 'name = value' lines using these option names."},
  {"log-level", "HUDDLE_LOG_LEVEL", S(log_level), "info", 0, 0, "error, warn, info or debug."},
  {"jwt-secret", "HUDDLE_JWT_SECRET", S(jwt_secret), NULL, 0, 0, "HMAC secret for tokens (32+ bytes). Unset: generated once into <data-dir>/jwt.secret."},
  {"jwt-alg", "HUDDLE_JWT_ALG", S(jwt_alg), "HS256", 0, 0, "Token algorithm, pinned: HS256/384/512, RS256/384/512 or ES256/384/512."},
  {"jwt-public-key", "HUDDLE_JWT_PUBLIC_KEY", S(jwt_public_key), NULL, 0, 0, "PEM public key file, for the RS and ES algorithms."},
  {"stun-urls", "HUDDLE_STUN_URLS", S(stun_urls), "stun:stun.l.google.com:19302", 0, 0, "Comma-separated STUN URLs for GET /webrtc/config (empty: none)."},
  {"turn-urls", "HUDDLE_TURN_URLS", S(turn_urls), "", 0, 0, "Comma-separated TURN URLs (empty: no TURN)."},
  {"turn-secret", "HUDDLE_TURN_SECRET", S(turn_secret), NULL, 0, 0, "coturn static-auth-secret for time-limited TURN credentials."},
  {"turn-ttl", "HUDDLE_TURN_TTL", I(turn_ttl), "86400", 60, 604800, "Lifetime of TURN credentials, seconds."},
  {"max-room-participants", "HUDDLE_MAX_ROOM_PARTICIPANTS", I(max_room_participants), "50", 1, 100000, "Participants per room."},
  {"max-connections", "HUDDLE_MAX_CONNECTIONS", I(max_connections), "100000", 1, 10000000, "Open connections overall; at start huddle raises its soft open-files limit to this plus 256 (up to the hard limit)."},
  {"max-connections-per-ip", "HUDDLE_MAX_CONNECTIONS_PER_IP", I(max_connections_per_ip), "1000", 1, 10000000, "Open connections per client address."},
  {"max-header-bytes", "HUDDLE_MAX_HEADER_BYTES", I(max_header_bytes), "8192", 256, 81920, "Bytes of request line and headers (answered with 431)."},
  {"max-body-bytes", "HUDDLE_MAX_BODY_BYTES", I(max_body_bytes), "1048576", 0, 67108864, "Bytes of a request body (answered with 413)."},
  {"max-ws-message", "HUDDLE_MAX_WS_MESSAGE", I(max_ws_message), "65536", 128, 16777216, "Bytes of one WebSocket message (closed with 1009)."},
  {"max-ws-fragments", "HUDDLE_MAX_WS_FRAGMENTS", I(max_ws_fragments), "64", 1, 65536, "Frames in one fragmented WebSocket message (closed with 1009)."},
  {"max-send-queue", "HUDDLE_MAX_SEND_QUEUE", I(max_send_queue), "4194304", 65536, 1073741824, "Bytes queued to one client before it is disconnected as too slow."},
  {"json-max-depth", "HUDDLE_JSON_MAX_DEPTH", I(json_max_depth), "16", 2, 1000, "Nesting depth of JSON input."},
  {"json-max-values", "HUDDLE_JSON_MAX_VALUES", I(json_max_values), "4096", 8, 10000000, "Values in one JSON input."},
  {"header-timeout-ms", "HUDDLE_HEADER_TIMEOUT_MS", I(header_timeout_ms), "10000", 100, 600000, "Time to receive a whole request (408 after)."},
  {"idle-timeout-ms", "HUDDLE_IDLE_TIMEOUT_MS", I(idle_timeout_ms), "60000", 100, 3600000, "Idle keep-alive time between HTTP requests."},
  {"ping-interval-ms", "HUDDLE_PING_INTERVAL_MS", I(ping_interval_ms), "20000", 100, 3600000, "WebSocket ping interval; a peer silent for two intervals is dropped."},
  {"shutdown-timeout-ms", "HUDDLE_SHUTDOWN_TIMEOUT_MS", I(shutdown_timeout_ms), "3000", 0, 60000, "Time given to clients to close on SIGTERM/SIGINT."},
  {"max-lag-ms", "HUDDLE_MAX_LAG_MS", I(max_lag_ms), "500", 1, 60000, "Event-loop lag above which health reports degraded."},
  {"rate-websocket-message", "HUDDLE_RATE_WEBSOCKET_MESSAGE", S(rate[0]), "100/1m", 0, 0, "Per-user limit on WebSocket messages of any type (N/window, window in ms, s, m or h; 0/1m disables)."},
  {"rate-chat-message", "HUDDLE_RATE_CHAT_MESSAGE", S(rate[1]), "60/1m", 0, 0, "Per-user limit on chat-message."},
  {"rate-hand-raise", "HUDDLE_RATE_HAND_RAISE", S(rate[2]), "5/1m", 0, 0, "Per-user limit on hand-raise."},
  {"rate-reaction", "HUDDLE_RATE_REACTION", S(rate[3]), "20/1m", 0, 0, "Per-user limit on reaction."},
  {"rate-file-share", "HUDDLE_RATE_FILE_SHARE", S(rate[4]), "10/1h", 0, 0, "Per-user limit on file-share-offer."},
  {"rate-room-create", "HUDDLE_RATE_ROOM_CREATE", S(rate[5]), "10/1h", 0, 0, "Per-user limit on joins that create a room."},
  {"rate-settings-update", "HUDDLE_RATE_SETTINGS_UPDATE", S(rate[6]), "30/1m", 0, 0, "Per-user limit on settings, role and permission changes."},
  {"rate-api-call", "HUDDLE_RATE_API_CALL", S(rate[7]), "300/1m", 0, 0, "Per-user (or per-address without a token) limit on REST calls."},
  {"history-rooms", "HUDDLE_HISTORY_ROOMS", I(history_rooms), "10000", 0, 10000000, "Closed rooms whose analytics, recordings and streams stay queryable."},
  {"chat-max-chars", "HUDDLE_CHAT_MAX_CHARS", I(chat_max_chars), "4000", 1, 65536, "Longest chat message, in characters."},
  {"file-max-mb", "HUDDLE_FILE_MAX_MB", I(file_max_mb), "100", 1, 1048576, "Largest file that may be offered, in MiB."},
  {"e2ee-max-bytes", "HUDDLE_E2EE_MAX_BYTES", I(e2ee_max_bytes), "16384", 64, 1048576, "Largest serialized payload of an e2ee-* message."},
  {"resume-grace-ms", "HUDDLE_RESUME_GRACE_MS", I(resume_grace_ms), "30000", 0, 3600000, "Time a member whose connection dropped stays in the room, able to resume (0: it leaves at once)."},
  {"room-log-max", "HUDDLE_ROOM_LOG_MAX", I(room_log_max), "4096", 1, 1000000, "Messages per room kept for resume (the room log)."},
  {"room-log-max-bytes", "HUDDLE_ROOM_LOG_MAX_BYTES", I(room_log_max_bytes), "1048576", 65536, 1073741824, "Bytes of messages per room kept for resume (the oldest leave first)."},
  {"room-log-max-age-ms", "HUDDLE_ROOM_LOG_MAX_AGE_MS", I(room_log_max_age_ms), "300000", 1000, 86400000, "Age after which messages leave the room log."},
  {"max-json-body-bytes", "HUDDLE_MAX_JSON_BODY_BYTES", I(max_json_body_bytes), "16384", 0, 67108864, "Bytes of a JSON request body (the REST endpoints; at most --max-body-bytes)."},
  {"max-body-buffer-total", "HUDDLE_MAX_BODY_BUFFER_TOTAL", I(max_body_buffer_total), "67108864", 0, 1073741824, "Bytes of request bodies buffered across all connections (503 BODY_BUFFER_FULL beyond)."},
  {"file-room-quota-mb", "HUDDLE_FILE_ROOM_QUOTA_MB", I(file_room_quota_mb), "2048", 1, 1048576, "Stored and reserved file bytes per room, in MiB."},
  {"file-user-quota-mb", "HUDDLE_FILE_USER_QUOTA_MB", I(file_user_quota_mb), "1024", 1, 1048576, "Stored and reserved file bytes per user (all rooms), in MiB."},
  {"upload-expire-s", "HUDDLE_UPLOAD_EXPIRE_S", I(upload_expire_s), "3600", 1, 604800, "Time to finish an upload; an incomplete one is deleted after it."},
  {"clamd-socket", "HUDDLE_CLAMD_SOCKET", S(clamd_socket), NULL, 0, 0, "clamd UNIX socket for virus scanning of shared files (unset: files are not scanned)."},
  {"require-scan", "HUDDLE_REQUIRE_SCAN", I(require_scan), "0", 0, 1, "1: refuse file sharing unless every file can be virus-scanned."},
  {"room-empty-timeout", "HUDDLE_ROOM_EMPTY_TIMEOUT", I(room_empty_timeout), "300", 1, 604800, "Seconds a room made with POST /webrtc/rooms stays open before anyone joins (then it closes like any room when the last one leaves)."},
  {"metrics-token", "HUDDLE_METRICS_TOKEN", S(metrics_token), NULL, 0, 0, "Static bearer token (16+ bytes) that GET /metrics accepts besides admin JWTs; for Prometheus."},
  {"web-root", "HUDDLE_WEB_ROOT", S(web_root), NULL, 0, 0, "Directory of the web app served at / (unset: the installed one, else web/ of the checkout)."},
  {"dev-tokens", "HUDDLE_DEV_TOKENS", B(dev_tokens), "false", 0, 0, "Let anyone mint tokens with POST /webrtc/dev/token (development only; a bare --dev-tokens is true)."},
  {"database-url", "HUDDLE_DATABASE_URL", S(database_url), "", 0, 0, "Empty: SQLite at <data-dir>/huddle.db. postgres://user:pass@host:port/db: PostgreSQL."},
  {"chat-durability", "HUDDLE_CHAT_DURABILITY", S(chat_durability), "durable", 0, 0, "durable: chat is delivered and acknowledged only once stored; relaxed: at once, stored behind; off: chat is not stored (no history)."},
  {"store-sync", "HUDDLE_STORE_SYNC", S(store_sync), "full", 0, 0, "full: a commit waits for the disk (fdatasync), stored chat survives a power loss; normal: commits reach the operating system at once and the disk soon after (SQLite synchronous=NORMAL, PostgreSQL synchronous_commit=off), stored chat survives a crash of huddle but not of the machine."},
  {"store-queue-max", "HUDDLE_STORE_QUEUE_MAX", I(store_queue_max), "10000", 16, 10000000, "Records waiting for the database before new chat is refused (STORE_UNAVAILABLE)."},
  {"retention-days", "HUDDLE_RETENTION_DAYS", I(retention_days), "0", 0, 36500, "Days chat and analytics events are kept (0: forever); deleted by a background job."},
  {"history-max-mb", "HUDDLE_HISTORY_MAX_MB", I(history_max_mb), "256", 1, 1048576, "MiB of closed-room history kept in memory (each creator at most 1/16 of it)."},
  {"trusted-proxies", "HUDDLE_TRUSTED_PROXIES", S(trusted_proxies), "", 0, 0, "Comma-separated proxy addresses whose X-Forwarded-For names the client (empty: none)."},
  {"redis-url", "HUDDLE_REDIS_URL", S(redis_url), NULL, 0, 0, "redis://[[user]:password@]host[:port][/db]: run as one of several instances sharing rooms through Redis (unset: one instance)."},
  {"advertise-addr", "HUDDLE_ADVERTISE_ADDR", S(advertise_addr), NULL, 0, 0, "ip:port the other instances reach this one at, for shared files (unset: the listen address when it is a concrete IP)."},
};

#define NOPTS (sizeof(opts) / sizeof(opts[0]))

/* String options that take one of a few words ('|'-separated). */
static const struct {
  const char *name, *words;
} choices[] = {
  {"chat-durability", "durable|relaxed|off"},
  {"store-sync", "full|normal"},
};

static const char *choices_of(const char *name) {
  for (size_t i = 0; i < sizeof(choices) / sizeof(choices[0]); i++)
    if (strcmp(choices[i].name, name) == 0) return choices[i].words;
  return NULL;
}

/* 1 if v is one of the '|'-separated words of list. */
static int one_of(const char *list, const char *v) {
  size_t n = strlen(v);
  for (const char *p = list; *p;) {
    const char *e = strchr(p, '|');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (len == n && strncmp(p, v, n) == 0) return 1;
    if (e == NULL) break;
    p = e + 1;
  }
  return 0;
}

static int set(struct config *c, const struct opt *o, const char *v, char *err, size_t err_len) {
  void *field = (char *)c + o->off;
  if (o->type == OPT_STR) {
    const char *words = choices_of(o->name);
    if (words && !one_of(words, v)) return snprintf(err, err_len, "%s: expected one of %s", o->name, words), -1;
    char **p = field;
    char *d = strdup(v);
    if (d == NULL) return snprintf(err, err_len, "out of memory"), -1;
    free(*p);
    *p = d;
    return 0;
  }
  if (o->type == OPT_BOOL) {
    int b = strcmp(v, "true") == 0 || strcmp(v, "1") == 0 || strcmp(v, "yes") == 0 || strcmp(v, "on") == 0;
    if (!b && strcmp(v, "false") && strcmp(v, "0") && strcmp(v, "no") && strcmp(v, "off"))
      return snprintf(err, err_len, "%s: expected true or false", o->name), -1;
    *(int *)field = b;
    return 0;
  }
  errno = 0;
  char *end;
  long n = strtol(v, &end, 10);
  if (errno || end == v || *end != '\0' || n < o->min || n > o->max) {
    snprintf(err, err_len, "%s: expected an integer from %ld to %ld", o->name, o->min, o->max);
    return -1;
  }
  *(int *)field = (int)n;
  return 0;
}

static const struct opt *find(const char *name, size_t len) {
  for (size_t i = 0; i < NOPTS; i++)
    if (strlen(opts[i].name) == len && strncmp(opts[i].name, name, len) == 0) return &opts[i];
  return NULL;
}

static char *trim(char *s) {
  while (isspace((unsigned char)*s)) s++;
  char *e = s + strlen(s);
  while (e > s && isspace((unsigned char)e[-1])) *--e = '\0';
  return s;
}

static int load_file(struct config *c, const char *path, char *err, size_t err_len) {
  FILE *f = fopen(path, "r");
  if (f == NULL) return snprintf(err, err_len, "config file %s: %s", path, strerror(errno)), -1;
  char line[4096];
  int lineno = 0, rc = 0;
  while (rc == 0 && fgets(line, sizeof(line), f)) {
    lineno++;
    if (strlen(line) == sizeof(line) - 1 && line[sizeof(line) - 2] != '\n' && !feof(f)) {
      snprintf(err, err_len, "%s:%d: line longer than %zu bytes", path, lineno, sizeof(line) - 2);
      rc = -1;
      break;
    }
    char *s = trim(line);
    if (*s == '\0' || *s == '#') continue;
    char *eq = strchr(s, '=');
    if (eq == NULL) {
      snprintf(err, err_len, "%s:%d: expected 'name = value'", path, lineno);
      rc = -1;
      break;
    }
    *eq = '\0';
    char *k = trim(s), *v = trim(eq + 1);
    const struct opt *o = find(k, strlen(k));
    if (o == NULL || strcmp(o->name, "config") == 0) {
      snprintf(err, err_len, "%s:%d: unknown option '%s'", path, lineno, k);
      rc = -1;
      break;
    }
    char why[256];
    rc = set(c, o, v, why, sizeof(why));
    if (rc) snprintf(err, err_len, "%s:%d: %s", path, lineno, why);
  }
  fclose(f);
  return rc;
}

/* Finds the value of --name in argv: "--name=v" or "--name v". */
static int arg_value(int argc, char **argv, int i, const char **name, size_t *name_len,
                     const char **val) {
  const char *a = argv[i] + 2;
  const char *eq = strchr(a, '=');
  *name = a;
  if (eq) {
    *name_len = (size_t)(eq - a);
    *val = eq + 1;
    return 0;
  }
  *name_len = strlen(a);
  *val = i + 1 < argc ? argv[i + 1] : NULL;
  return 1;
}

int config_load(struct config *c, int argc, char **argv, int first, int *help,
                char *err, size_t err_len) {
  memset(c, 0, sizeof(*c));
  *help = 0;
  for (size_t i = 0; i < NOPTS; i++)
    if (opts[i].def && set(c, &opts[i], opts[i].def, err, err_len)) return -1;

  for (int i = first; i < argc; i++) {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      *help = 1; /* help never depends on a readable config */
      return 0;
    }
  }
  /* The config file's path may come from a flag or the environment. */
  const char *file = getenv("HUDDLE_CONFIG");
  for (int i = first; i < argc; i++) {
    if (strncmp(argv[i], "--config", 8) == 0 && (argv[i][8] == '\0' || argv[i][8] == '=')) {
      const char *n, *v;
      size_t nl;
      arg_value(argc, argv, i, &n, &nl, &v);
      file = v;
    }
  }
  if (file && *file) {
    if (set(c, find("config", 6), file, err, err_len)) return -1;
    if (load_file(c, file, err, err_len)) return -1;
  }

  for (size_t i = 0; i < NOPTS; i++) {
    const char *v = getenv(opts[i].env);
    if (v && set(c, &opts[i], v, err, err_len)) {
      char tmp[256];
      snprintf(tmp, sizeof(tmp), "%s", err);
      snprintf(err, err_len, "%s (from %s)", tmp, opts[i].env);
      return -1;
    }
  }

  for (int i = first; i < argc; i++) {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      *help = 1;
      return 0;
    }
    if (strncmp(argv[i], "--", 2) != 0) {
      snprintf(err, err_len, "unexpected argument '%s'", argv[i]);
      return -1;
    }
    const char *n, *v;
    size_t nl;
    int consumed = arg_value(argc, argv, i, &n, &nl, &v);
    const struct opt *o = find(n, nl);
    if (o == NULL) {
      snprintf(err, err_len, "unknown option '--%.*s' (see --help)", (int)nl, n);
      return -1;
    }
    if (o->type == OPT_BOOL && memchr(n, '=', strlen(n)) == NULL) {
      v = "true"; /* a bare boolean flag */
      consumed = 0;
    }
    if (v == NULL) {
      snprintf(err, err_len, "option '--%s' needs a value", o->name);
      return -1;
    }
    if (set(c, o, v, err, err_len)) return -1;
    i += consumed;
  }
  return 0;
}

void config_free(struct config *c) {
  for (size_t i = 0; i < NOPTS; i++) {
    if (opts[i].type == OPT_STR) {
      char **p = (char **)((char *)c + opts[i].off);
      free(*p);
      *p = NULL;
    }
  }
}

void config_print_help(FILE *out) {
  fprintf(out,
          "Usage: huddle [options]            run the server\n"
          "       huddle token --user U [--room R] [--role ROLE] [--name N] [--ttl S] [--admin] [options]\n"
          "                                   print a development token signed with the server's secret\n"
          "                                   (huddle token --help for details)\n"
          "       huddle --version\n\n"
          "Options (flag, environment variable, default). Flags override the environment,\n"
          "which overrides the config file.\n\n");
  for (size_t i = 0; i < NOPTS; i++) {
    fprintf(out, "  --%-24s %-30s default: %s\n      %s", opts[i].name, opts[i].env,
            opts[i].def ? (*opts[i].def ? opts[i].def : "(empty)") : "(unset)", opts[i].help);
    if (opts[i].type == OPT_INT) fprintf(out, " Range: %ld to %ld.", opts[i].min, opts[i].max);
    if (choices_of(opts[i].name)) fprintf(out, " One of: %s.", choices_of(opts[i].name));
    fputc('\n', out);
  }
}
