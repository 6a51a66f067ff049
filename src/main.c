/* huddle: configuration, the `token` sub-command, and the event loop.
 * No feature code lives here. */
#define LOG_MODULE "main"
#include "log.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/token.h"
#include "config.h"
#include "api/api.h"
#include "bus/bus.h"
#include "cluster/cluster.h"
#include "room/hub.h"
#include "store/store.h"
#include "net/server.h"
#include "signal/signal.h"

/* `huddle token --room R --user U [--role R] [--name N] [--ttl S] [--admin]`
 * plus any server option (so --data-dir and --jwt-secret find the secret). */
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
    if (strcmp(a, "--admin") == 0) {
      tc.admin = 1;
    } else if (strcmp(a, "--room") == 0 || strcmp(a, "--user") == 0 || strcmp(a, "--role") == 0 ||
               strcmp(a, "--name") == 0 || strcmp(a, "--ttl") == 0) {
      if (v == NULL) {
        fprintf(stderr, "huddle token: %s needs a value\n", a);
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
  if (!id_valid(tc.sub, strlen(tc.sub))) {
    fprintf(stderr, "huddle token: --user is required (1-64 of [A-Za-z0-9_.-])\n");
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
  char err[512];
  int help;
  if (config_load(&cfg, nrest, rest, 1, &help, err, sizeof(err)) != 0) {
    fprintf(stderr, "huddle token: %s\n", err);
    config_free(&cfg);
    goto out;
  }
  if (strncmp(cfg.jwt_alg, "HS", 2) != 0) {
    fprintf(stderr, "huddle token: minting needs an HMAC secret (--jwt-alg HS256)\n");
    config_free(&cfg);
    goto out;
  }
  unsigned char *secret = NULL;
  size_t secret_len = 0;
  if (cfg.jwt_secret) {
    secret = (unsigned char *)strdup(cfg.jwt_secret);
    secret_len = strlen(cfg.jwt_secret);
  } else if (server_secret_load(cfg.data_dir, 1, &secret, &secret_len, err, sizeof(err)) != 0) {
    fprintf(stderr, "huddle token: %s\n", err);
    config_free(&cfg);
    goto out;
  }
  tc.iat = (int64_t)(server_now_ms() / 1000);
  tc.exp = tc.iat + ttl;
  char *jwt = token_mint(secret, secret_len, &tc);
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
  signal(SIGPIPE, SIG_IGN);

  uv_loop_t loop;
  uv_loop_init(&loop);
  struct server srv;
  struct hub hub;
  memset(&hub, 0, sizeof(hub));
  int rc = 0;
  /* The wiring: the net layer calls up only through these handlers, the
   * room layer reaches sessions only through the hub's session callbacks. */
  struct conn_handlers handlers = {api_dispatch, signal_on_message, signal_on_binary, signal_on_end,
                                   hub_tick, &hub};
  int ok = server_init(&srv, &loop, &cfg, err, sizeof(err)) == 0;
  srv.handlers = handlers;
  ok = ok && hub_init(&hub, &loop, &cfg, err, sizeof(err)) == 0;
  signal_sessions_register(&hub);
  api_ws_join_register(signal_join);
  ok = ok && store_open(&hub.store, cfg.data_dir, err, sizeof(err)) == 0;
  if (ok && bus_local_new(&hub.bus, signal_bus_deliver, &hub) != 0) {
    snprintf(err, sizeof(err), "cannot create the message bus");
    ok = 0;
  }
  if (ok && cfg.redis_url) {
    /* Several instances: requests, messages and ends pass the cluster first. */
    ok = cluster_start(&hub, &srv, cfg.redis_url, err, sizeof(err)) == 0;
    srv.handlers.request = cluster_on_request;
    srv.handlers.ws_text = cluster_on_text;
    srv.handlers.ws_end = cluster_on_end;
  }
  if (!ok || server_listen(&srv, err, sizeof(err)) != 0) {
    log_error("startup_failed reason=\"%s\"", err);
    rc = 1;
    server_shutdown(&srv);
  } else {
    log_info("listening addr=%s version=%s data_dir=%s store=sqlite bus=%s%s%s", srv.bound,
             HUDDLE_VERSION, cfg.data_dir, hub.bus->ops->name, hub.cluster ? " instance=" : "",
             hub.cluster ? cluster_instance_id(hub.cluster) : "");
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  hub_free(&hub);
  server_free(&srv);
  int lc = uv_loop_close(&loop);
  if (lc != 0) log_error("loop_close_failed err=%s", uv_err_name(lc));
  if (rc == 0) log_info("stopped");
  config_free(&cfg);
  return rc;
}
