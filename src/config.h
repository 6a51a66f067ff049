/* Configuration: one table of options, read from (highest precedence first)
 * command-line flags, HUDDLE_* environment variables, an optional config file
 * of "name = value" lines, and built-in defaults. `huddle --help` prints the
 * table; the README's configuration table is checked against it by a test. */
#ifndef HUDDLE_CONFIG_H
#define HUDDLE_CONFIG_H

#include <stddef.h>
#include <stdio.h>

struct config {
  char *listen;                /* "host:port"; port 0 picks a free port */
  char *data_dir;
  char *config_file;           /* NULL: none */
  char *log_level;
  char *jwt_secret;            /* NULL: read or create <data_dir>/jwt.secret */
  char *jwt_alg;
  char *jwt_public_key;        /* path to a PEM public key for RS and ES algorithms */
  char *stun_urls;             /* comma-separated */
  char *turn_urls;             /* comma-separated; "" disables TURN */
  char *turn_secret;
  int turn_ttl;                /* seconds */
  int max_room_participants;
  int max_connections;
  int max_connections_per_ip;
  int max_header_bytes;
  int max_body_bytes;
  int max_ws_message;          /* bytes */
  int max_ws_fragments;        /* frames per message */
  int max_send_queue;          /* bytes queued per connection before it is cut off */
  int json_max_depth;
  int json_max_values;
  int header_timeout_ms;
  int idle_timeout_ms;
  int ping_interval_ms;
  int shutdown_timeout_ms;
  int max_lag_ms;              /* event-loop lag above which health says degraded */
  char *rate[8];               /* per rate_class: "N/window", e.g. "60/1m" (guard/ratelimit.h) */
  int history_rooms;           /* closed rooms whose history (analytics, recordings) is kept */
  int chat_max_chars;
  int file_max_mb;
  int e2ee_max_bytes;
  int resume_grace_ms;         /* a dropped member stays away this long before it leaves */
  int room_log_max;            /* entries kept per room for resume */
  int room_log_max_age_ms;     /* and for at most this long */
  int room_log_max_bytes;      /* and at most this many frame bytes */
  int max_json_body_bytes;     /* per-route cap of JSON REST bodies */
  int max_body_buffer_total;   /* bytes of bodies buffered across connections */
  int file_room_quota_mb;
  int file_user_quota_mb;
  int upload_expire_s;
  char *clamd_socket;          /* NULL: files are not scanned */
  int require_scan;
  int room_empty_timeout;      /* seconds a pre-created room waits for its first member */
  char *metrics_token;         /* NULL: GET /metrics needs an admin JWT */
  char *web_root;              /* NULL: the install location, else web/ in the checkout */
  int dev_tokens;              /* 1: POST /webrtc/dev/token mints tokens (development only) */
  char *database_url;          /* "" : SQLite under data_dir; postgres://... : PostgreSQL */
  char *chat_durability;       /* "durable", "relaxed" or "off" */
  char *store_sync;            /* "full" or "normal" */
  int store_queue_max;         /* records waiting for the database before new chat is refused */
  int retention_days;          /* 0: keep forever */
  int history_max_mb;          /* bytes bound of closed-room history, MiB */
  char *trusted_proxies;       /* comma-separated addresses whose X-Forwarded-For is believed */
  char *redis_url;             /* NULL: one instance (in-process bus); else src/cluster */
  char *advertise_addr;        /* NULL: the bound address, when a concrete IP (src/cluster, shared files) */
};

/* Fills c from defaults, then the config file (from --config or
 * HUDDLE_CONFIG), then the environment, then argv[first..argc). Unknown
 * options and bad values are errors: returns 0, or -1 with a message in err.
 * Sets *help when --help was given. */
int config_load(struct config *c, int argc, char **argv, int first, int *help,
                char *err, size_t err_len);
void config_free(struct config *c);
/* Prints every option with its flag, variable, default and description. */
void config_print_help(FILE *out);

#endif
