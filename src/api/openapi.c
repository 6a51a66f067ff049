/* GET /webrtc/openapi.json: an OpenAPI 3.1 description of every REST
 * endpoint, generated from the route table (api.c) so that it cannot miss a
 * route. Each route's summary comes from the table below; a route without
 * one is described as "UNDOCUMENTED", which the integration test refuses.
 * Shapes of bodies are in docs/protocol.md; this document names the
 * operations, their parameters, security and error form. */
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "net/http.h"
#include "net/server.h"

struct op_doc {
  const char *method;
  const char *pattern;
  const char *summary;
  int status;          /* success status */
  int body;            /* 1: takes a JSON request body; 2: a tus byte stream */
};

#define RB "/webrtc/rooms/{room_id}"

static const struct op_doc docs[] = {
  {"GET", "/webrtc/ws/{room_id}", "WebSocket upgrade: join the room (token in Authorization or ?token=)", 101, 0},
  {"GET", "/webrtc/config", "ICE servers (STUN, and TURN credentials with a token)", 200, 0},
  {"GET", RB "/participants", "Participants of the room", 200, 0},
  {"GET", RB "/participants/enhanced", "Participants with permissions, info and network stats (moderators)", 200, 0},
  {"POST", RB "/participants/{user_id}/info", "Update a participant's enhanced info", 200, 1},
  {"POST", RB "/participants/{user_id}/remove", "Remove (ban) a participant", 200, 1},
  {"POST", RB "/roles/{user_id}", "Change a participant's role", 200, 1},
  {"GET", RB "/roles/{user_id}", "A participant's role", 200, 0},
  {"POST", RB "/permissions/{user_id}", "Override a participant's permissions", 200, 1},
  {"GET", RB "/permissions/{user_id}", "A participant's effective permissions", 200, 0},
  {"GET", RB "/analytics", "Analytics events of the room", 200, 0},
  {"GET", RB "/analytics/summary", "Computed analytics summary", 200, 0},
  {"POST", RB "/recordings/start", "Start a recording", 201, 1},
  {"POST", RB "/recordings/{recording_id}/stop", "Stop a recording", 200, 1},
  {"GET", RB "/recordings", "Recordings of the room", 200, 0},
  {"GET", RB "/settings", "Room settings", 200, 0},
  {"POST", RB "/settings", "Change room settings", 200, 1},
  {"POST", RB "/hand-raise", "Raise or lower a hand, or call the next speaker", 200, 1},
  {"GET", RB "/hand-raise/queue", "The hand-raise queue", 200, 0},
  {"GET", RB "/waiting-room", "Users in the waiting room (moderators)", 200, 0},
  {"POST", RB "/waiting-room/{user_id}/admit", "Admit a waiting user", 200, 1},
  {"POST", RB "/waiting-room/{user_id}/reject", "Reject a waiting user", 200, 1},
  {"POST", RB "/breakout-rooms", "Open breakout rooms", 201, 1},
  {"POST", RB "/breakout-rooms/{breakout_room_id}/assign/{user_id}", "Assign a participant to a breakout room", 200, 1},
  {"DELETE", RB "/breakout-rooms/{breakout_room_id}", "Close a breakout room (its members return)", 200, 0},
  {"GET", RB "/audit", "The room's audit log (moderators)", 200, 0},
  {"POST", RB "/live-streams/start", "Start a live stream", 201, 1},
  {"POST", RB "/live-streams/{stream_id}/stop", "Stop a live stream", 200, 1},
  {"GET", RB "/live-streams", "Live streams of the room", 200, 0},
  {"GET", "/webrtc/health", "Health with per-component status (no token)", 200, 0},
  {"GET", "/webrtc/webrtc-metrics", "Server metrics as JSON (admin)", 200, 0},
  {"GET", "/webrtc/stats", "Server and room statistics (admin)", 200, 0},
  {"GET", "/webrtc/rate-limits/{limit_type}/status", "The caller's budget for one rate limit", 200, 0},
  {"GET", "/metrics", "Metrics in the Prometheus text format (admin JWT or --metrics-token)", 200, 0},
  {"POST", "/webrtc/rooms", "Create a room ahead of time (host or admin)", 201, 1},
  {"GET", "/webrtc/rooms", "Every open room with live counts (admin)", 200, 0},
  {"GET", RB, "One open room", 200, 0},
  {"DELETE", RB, "Close a room: everyone is told and disconnected (4006)", 200, 0},
  {"GET", RB "/validate", "Would a WebSocket upgrade with this token be admitted now? (no side effects)", 200, 0},
  {"GET", "/webrtc/openapi.json", "This OpenAPI 3.1 document", 200, 0},
  {"POST", "/webrtc/dev/token", "Mint a token for any room, user and role (only with --dev-tokens; 404 without; development only)", 200, 1},
  {"OPTIONS", RB "/files/", "tus capabilities (Tus-Version, Tus-Extension, Tus-Max-Size)", 204, 0},
  {"OPTIONS", RB "/files", "tus capabilities (the same without the trailing slash)", 204, 0},
  {"POST", RB "/files/", "tus creation: offer a file (Upload-Length, Upload-Metadata); Location is the upload URL", 201, 0},
  {"POST", RB "/files", "tus creation (the same without the trailing slash)", 201, 0},
  {"HEAD", RB "/files/{file_id}", "tus offset: the bytes stored (Upload-Offset, Upload-Length)", 200, 0},
  {"PATCH", RB "/files/{file_id}", "tus upload: append bytes at Upload-Offset (application/offset+octet-stream)", 204, 2},
  {"DELETE", RB "/files/{file_id}", "tus termination: delete the upload or the file (its sender)", 204, 0},
  {"GET", RB "/files/{file_id}", "Download a shared file (Range supported)", 200, 0},
  {"GET", RB "/chat", "Chat history from the database (limit, before, after, q); members, room tokens, admins", 200, 0},
  {"GET", "/webrtc/admin/users/{user_id}/export", "Everything stored about one user (admin)", 200, 0},
  {"POST", "/webrtc/admin/users/{user_id}/erase", "Erase one user: chat text tombstoned, analytics and audit anonymized, room policy entries removed, its live sessions closed (4007) (admin)", 200, 0},
};

#define NDOCS (sizeof(docs) / sizeof(docs[0]))

static const struct op_doc *doc_of(const char *method, const char *pattern) {
  for (size_t i = 0; i < NDOCS; i++)
    if (strcmp(docs[i].method, method) == 0 && strcmp(docs[i].pattern, pattern) == 0) return &docs[i];
  return NULL;
}

/* operationId: method and path in lower camel-ish words, e.g. get_webrtc_rooms_room_id. */
static void op_id(const char *method, const char *pattern, char *out, size_t len) {
  size_t o = 0;
  for (const char *m = method; *m && o + 1 < len; m++) out[o++] = (char)(*m | 0x20);
  for (const char *p = pattern; *p && o + 1 < len; p++) {
    char ch = *p;
    if (ch == '{' || ch == '}') continue;
    out[o++] = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ? ch : '_';
  }
  out[o] = '\0';
}

static json_t *path_params(const char *pattern) {
  json_t *list = json_array();
  for (const char *p = strchr(pattern, '{'); p; p = strchr(p + 1, '{')) {
    const char *end = strchr(p, '}');
    if (end == NULL) break;
    json_t *name = json_stringn(p + 1, (size_t)(end - p - 1));
    json_array_append_new(list, json_pack("{s:o,s:s,s:b,s:{s:s,s:s}}", "name", name, "in", "path", "required", 1,
                                          "schema", "type", "string", "pattern", "^[A-Za-z0-9_.-]{1,64}$"));
  }
  return list;
}

static json_t *operation(const char *method, const char *pattern, int auth) {
  const struct op_doc *d = doc_of(method, pattern);
  char id[200], code[8];
  op_id(method, pattern, id, sizeof(id));
  snprintf(code, sizeof(code), "%d", d ? d->status : 200);
  int ws = strcmp(pattern, "/webrtc/ws/{room_id}") == 0;
  int text = strcmp(pattern, "/metrics") == 0;
  int files = strstr(pattern, "/files") != NULL;
  json_t *ok = json_pack("{s:s}", "description", d ? d->summary : "UNDOCUMENTED");
  if (files && strcmp(method, "GET") == 0)
    json_object_set_new(ok, "content", json_pack("{s:{s:{s:s,s:s}}}", "application/octet-stream", "schema", "type",
                                                 "string", "format", "binary"));
  else if (!ws && !files)
    json_object_set_new(ok, "content", text ? json_pack("{s:{s:{s:s}}}", "text/plain", "schema", "type", "string")
                                            : json_pack("{s:{s:{s:s}}}", "application/json", "schema", "type", "object"));
  json_t *responses = json_pack("{s:o,s:{s:s}}", code, ok, "default", "$ref", "#/components/responses/Error");
  json_t *op = json_pack("{s:s,s:s,s:o}", "operationId", id, "summary", d ? d->summary : "UNDOCUMENTED",
                         "responses", responses);
  json_t *params = path_params(pattern);
  if (ws || strstr(pattern, "/validate")) {
    json_array_append_new(params, json_pack("{s:s,s:s,s:b,s:s,s:{s:s}}", "name", "token", "in", "query", "required", 0,
                                            "description", "The JWT, for clients that cannot set headers",
                                            "schema", "type", "string"));
  }
  if (json_array_size(params)) json_object_set_new(op, "parameters", params);
  else json_decref(params);
  if (d && d->body == 2)
    json_object_set_new(op, "requestBody", json_pack("{s:b,s:{s:{s:{s:s,s:s}}}}", "required", 1, "content",
                                                     "application/offset+octet-stream", "schema", "type", "string",
                                                     "format", "binary"));
  else if (d && d->body)
    json_object_set_new(op, "requestBody", json_pack("{s:b,s:{s:{s:{s:s}}}}", "required", 0, "content",
                                                     "application/json", "schema", "type", "object"));
  if (auth == API_AUTH_REQUIRED)
    json_object_set_new(op, "security", json_pack("[{s:[]}]", "bearer"));
  else if (auth == API_AUTH_OPTIONAL || ws || strstr(pattern, "/validate") || text)
    json_object_set_new(op, "security", json_pack("[{s:[]},{}]", "bearer"));
  else
    json_object_set_new(op, "security", json_array());
  return op;
}

static json_t *document(void) {
  json_t *paths = json_object();
  const char *method, *pattern;
  int auth;
  for (size_t i = 0; api_route_at(i, &method, &pattern, &auth) == 0; i++) {
    json_t *item = json_object_get(paths, pattern);
    if (item == NULL) {
      item = json_object();
      json_object_set_new(paths, pattern, item);
    }
    char m[8];
    size_t n = strlen(method);
    for (size_t k = 0; k <= n && k < sizeof(m); k++) m[k] = (char)(method[k] | (method[k] ? 0x20 : 0));
    m[sizeof(m) - 1] = '\0';
    json_object_set_new(item, m, operation(method, pattern, auth));
  }
  json_t *error_schema = json_pack(
      "{s:s,s:[s],s:{s:{s:s,s:[s,s,s],s:{s:{s:s},s:{s:s},s:{s:s},s:{s:s},s:{s:s}}}}}", "type", "object", "required",
      "error", "properties", "error", "type", "object", "required", "code", "message", "recovery", "properties", "code",
      "type", "string", "message", "type", "string", "recovery", "type", "string", "detail", "type", "string",
      "retry_after_ms", "type", "integer");
  return json_pack(
      "{s:s,s:{s:s,s:s,s:s},s:o,s:{s:{s:{s:s,s:s,s:s}},s:{s:o},s:{s:{s:s,s:{s:{s:{s:s}}}}}}}", "openapi", "3.1.0",
      "info", "title", "huddle", "version", HUDDLE_VERSION, "description",
      "REST endpoints of the huddle meeting server. Message shapes and every error code: docs/protocol.md.",
      "paths", paths, "components", "securitySchemes", "bearer", "type", "http", "scheme", "bearer", "bearerFormat",
      "JWT", "schemas", "Error", error_schema, "responses", "Error", "description",
      "An error of the taxonomy (docs/protocol.md, Error codes)", "content", "application/json", "schema", "$ref",
      "#/components/schemas/Error");
}

/* GET /webrtc/openapi.json */
void api_openapi_get(struct api_req *r) {
  json_t *doc = document();
  if (doc == NULL) {
    api_reply_error(r, API_ERR_INTERNAL_ERROR, NULL);
    return;
  }
  api_reply_json(r, 200, doc);
}
