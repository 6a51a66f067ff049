/* huddle: configuration, the `token` sub-command, and the event loop.
 * No feature code lives here. */
#define LOG_MODULE "main"
#include "log.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/token.h"
#include "config.h"
#include "api/api.h"
#include "bus/bus.h"
#include "files/files.h"
#include "room/durable.h"
#include "room/family.h"
#include "cluster/cluster.h"
#include "room/hub.h"
#include "store/store.h"
#include "net/server.h"
#include "signal/signal.h"

static void token_usage(FILE *out) {
  fprintf(out,
          "Usage: huddle token --user U [--room R] [--role ROLE] [--name N] [--ttl S] [--admin]\n"
          "                    [--config FILE] [--data-dir DIR] [--jwt-secret S] [--jwt-alg HS256|HS384|HS512]\n\n"
          "Prints a development token signed with the secret the server uses. It never\n"
          "creates a secret: it finds it the way the server does (--jwt-secret, then\n"
          "HUDDLE_JWT_SECRET, then the config file's jwt-secret, else <data-dir>/jwt.secret;\n"
          "the data dir from --data-dir, HUDDLE_DATA_DIR, the config file, else ./data).\n\n"
          "  --user U      user id (sub), required: 1-64 of [A-Za-z0-9_.-]\n"
          "  --room R      bind the token to room R (default: any room)\n"
          "  --role ROLE   host, moderator, participant (default) or viewer\n"
          "  --name N      display name (default: the user id)\n"
          "  --ttl S       lifetime in seconds, 1-2678400 (default 3600: one hour)\n"
          "  --admin       a service token for REST calls (admin)\n"
          "Any other server option (see huddle --help) is accepted and used to find the secret.\n");
}

/* Finds the server's HMAC secret the way server_init does, without ever
 * creating one; on failure err says every place it looked. */
static int token_secret(const struct config *cfg, unsigned char **secret, size_t *len, char *err,
                        size_t err_len) {
  if (cfg->jwt_secret) {
    *secret = (unsigned char *)strdup(cfg->jwt_secret);
    *len = strlen(cfg->jwt_secret);
    return *secret ? 0 : -1;
  }
  char why[600];
  if (server_secret_load(cfg->data_dir, 0, secret, len, why, sizeof(why)) == 0) return 0;
  char cwd[1024] = "", file[700];
  const char *dir = cfg->data_dir;
  if (dir[0] != '/' && getcwd(cwd, sizeof(cwd)) == NULL) cwd[0] = '\0';
  if (strncmp(dir, "./", 2) == 0 && cwd[0]) dir += 2;
  if (cfg->config_file) snprintf(file, sizeof(file), "config file %s (no jwt-secret in it)", cfg->config_file);
  else snprintf(file, sizeof(file), "no config file (--config and HUDDLE_CONFIG unset)");
  snprintf(err, err_len,
           "no secret found, and this command never creates one. Looked at: --jwt-secret and "
           "HUDDLE_JWT_SECRET (unset); %s; %s%s%s/jwt.secret (%s). "
           "Pass the server's --data-dir or --config, or start the server once to generate the secret.",
           file, cwd, cwd[0] ? "/" : "", dir,
           strstr(why, "shorter") ? "shorter than 32 bytes" : "absent or unreadable");
  return -1;
}

/* `huddle token --user U [--room R] [--role R] [--name N] [--ttl S] [--admin]`
 * plus any server option (so --config, --data-dir and --jwt-secret find the
 * secret exactly as the server does). */
static int cmd_token(int argc, char **argv) {
  struct token_claims tc;
  memset(&tc, 0, sizeof(tc));
  tc.role = ROOM_ROLE_PARTICIPANT;
  long ttl = 3600;
  char **rest = calloc((size_t)argc + 1, sizeof(char *));
  int nrest = 0, rc = 1;
  if (rest == NULL) return 1;
  rest[nrest++] = argv[0];
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      token_usage(stdout);
      rc = 0;
      goto out;
    } else if (strcmp(a, "--admin") == 0) {
      tc.admin = 1;
    } else if (strcmp(a, "--room") == 0 || strcmp(a, "--user") == 0 || strcmp(a, "--role") == 0 ||
               strcmp(a, "--name") == 0 || strcmp(a, "--ttl") == 0) {
      if (v == NULL) {
        fprintf(stderr, "huddle token: %s needs a value (see huddle token --help)\n", a);
        goto out;
      }
      i++;
      if (strcmp(a, "--room") == 0) snprintf(tc.room, sizeof(tc.room), "%s", v);
      else if (strcmp(a, "--user") == 0) snprintf(tc.sub, sizeof(tc.sub), "%s", v);
      else if (strcmp(a, "--name") == 0) snprintf(tc.name, sizeof(tc.name), "%s", v);
      else if (strcmp(a, "--ttl") == 0) ttl = strtol(v, NULL, 10);
      else if (perm_role_parse(v, &tc.role) != 0) {
        fprintf(stderr, "huddle token: --role must be host, moderator, participant or viewer\n");
        goto out;
      }
    } else {
      rest[nrest++] = argv[i];
    }
  }
  if (!id_valid(tc.sub, strlen(tc.sub)) || token_sub_reserved(tc.sub)) {
    fprintf(stderr, "huddle token: --user is required (1-64 of [A-Za-z0-9_.-]; not server or anonymous);"
                    " see huddle token --help\n");
    goto out;
  }
  if (tc.room[0] && !id_valid(tc.room, strlen(tc.room))) {
    fprintf(stderr, "huddle token: --room must be 1-64 of [A-Za-z0-9_.-]\n");
    goto out;
  }
  if (ttl <= 0 || ttl > 31L * 24 * 3600) {
    fprintf(stderr, "huddle token: --ttl must be 1 to 2678400 seconds\n");
    goto out;
  }
  struct config cfg;
  char err[1800];
  int help;
  if (config_load(&cfg, nrest, rest, 1, &help, err, sizeof(err)) != 0) {
    fprintf(stderr, "huddle token: %s\n", err);
    config_free(&cfg);
    goto out;
  }
  if (strcmp(cfg.jwt_alg, "HS256") != 0 && strcmp(cfg.jwt_alg, "HS384") != 0 &&
      strcmp(cfg.jwt_alg, "HS512") != 0) {
    fprintf(stderr, "huddle token: the server uses --jwt-alg %s: tokens are signed by the holder of "
                    "the private key, not by huddle (minting needs HS256, HS384 or HS512)\n", cfg.jwt_alg);
    config_free(&cfg);
    goto out;
  }
  unsigned char *secret = NULL;
  size_t secret_len = 0;
  if (token_secret(&cfg, &secret, &secret_len, err, sizeof(err)) != 0) {
    fprintf(stderr, "huddle token: %s\n", err);
    config_free(&cfg);
    goto out;
  }
  tc.iat = (int64_t)(server_now_ms() / 1000);
  tc.exp = tc.iat + ttl;
  char *jwt = token_mint_alg(secret, secret_len, &tc, cfg.jwt_alg);
  free(secret);
  config_free(&cfg);
  if (jwt == NULL) {
    fprintf(stderr, "huddle token: could not mint a token (secret shorter than 32 bytes?)\n");
    goto out;
  }
  printf("%s\n", jwt);
  free(jwt);
  rc = 0;
out:
  free(rest);
  return rc;
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "token") == 0) return cmd_token(argc, argv);
  if (argc > 1 && strcmp(argv[1], "--version") == 0) {
    printf("huddle %s\n", HUDDLE_VERSION);
    return 0;
  }
  struct config cfg;
  char err[512];
  int help;
  if (config_load(&cfg, argc, argv, 1, &help, err, sizeof(err)) != 0) {
    fprintf(stderr, "huddle: %s\n", err);
    config_free(&cfg);
    return 2;
  }
  if (help) {
    config_print_help(stdout);
    config_free(&cfg);
    return 0;
  }
  if (log_level_parse(cfg.log_level, &log_threshold) != 0) {
    fprintf(stderr, "huddle: --log-level must be error, warn, info or debug\n");
    config_free(&cfg);
    return 2;
  }
  if (cfg.metrics_token && strlen(cfg.metrics_token) < 16) {
    fprintf(stderr, "huddle: --metrics-token must be at least 16 bytes\n");
    config_free(&cfg);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);

  uv_loop_t loop;
  uv_loop_init(&loop);
  struct server srv;
  struct hub hub;
  memset(&hub, 0, sizeof(hub));
  int rc = 0;
  /* The wiring: the net layer calls up only through these handlers, the
   * room layer reaches sessions only through the hub's session callbacks. */
  struct conn_handlers handlers = {
    .request = api_dispatch,
    .head = api_http_head, /* bodies: authorization and caps before reading */
    .ws_text = signal_on_message,
    .ws_binary = signal_on_binary,
    .ws_end = signal_on_end,
    .tick = hub_tick,
    .data = &hub,
  };
  int ok = server_init(&srv, &loop, &cfg, err, sizeof(err)) == 0;
  srv.handlers = handlers;
  ok = ok && hub_init(&hub, &loop, &cfg, err, sizeof(err)) == 0;
  if (ok) family_grant_key(&hub, srv.jwt_secret, srv.jwt_secret_len); /* breakout grants */
  signal_sessions_register(&hub);
  api_ws_join_register(signal_join);
  ok = ok && store_open(&hub.store, &loop, cfg.data_dir, cfg.database_url, (size_t)cfg.store_queue_max,
                        strcmp(cfg.store_sync, "normal") == 0, err, sizeof(err)) == 0;
  ok = ok && durable_init(&hub, err, sizeof(err)) == 0;
  if (ok) store_loop_unref(hub.store); /* the loop ends with the server's handles; store_stop below */
  if (ok && bus_local_new(&hub.bus, signal_bus_deliver, &hub) != 0) {
    snprintf(err, sizeof(err), "cannot create the message bus");
    ok = 0;
  }
  ok = ok && files_open(&hub.files, &hub, err, sizeof(err)) == 0;
  if (ok && cfg.redis_url) {
    /* Several instances: requests, messages and ends pass the cluster first. */
    ok = cluster_start(&hub, &srv, cfg.redis_url, err, sizeof(err)) == 0;
    srv.handlers.request = cluster_on_request;
    srv.handlers.head = cluster_on_head; /* files of rooms owned elsewhere: forwarded with their bodies */
    srv.handlers.ws_text = cluster_on_text;
    srv.handlers.ws_binary = cluster_on_binary;
    srv.handlers.ws_end = cluster_on_end;
  }
  if (!ok || server_listen(&srv, err, sizeof(err)) != 0) {
    log_error("startup_failed reason=\"%s\"", err);
    rc = 1;
    server_abort(&srv);
  } else {
    log_info("listening addr=%s version=%s data_dir=%s store=%s bus=%s%s%s", srv.bound,
             HUDDLE_VERSION, cfg.data_dir, store_backend(hub.store), hub.bus->ops->name,
             hub.cluster ? " instance=" : "", hub.cluster ? cluster_instance_id(hub.cluster) : "");
    if (cfg.dev_tokens) log_warn("dev_tokens_on anyone who can reach this server can mint tokens");
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  files_close(hub.files);        /* closes its timer: one more turn to finish */
  store_stop(hub.store);         /* commits what is queued, closes its async handle */
  uv_run(&loop, UV_RUN_DEFAULT);
  hub_free(&hub);                /* may delete files with evicted histories: before files_free */
  server_free(&srv);
  files_free(hub.files);
  int lc = uv_loop_close(&loop);
  if (lc != 0) log_error("loop_close_failed err=%s", uv_err_name(lc));
  if (rc == 0) log_info("stopped");
  config_free(&cfg);
  return rc;
}
