/* HTTP/1.1 connection handling (see http.h). The whole request head is
 * buffered and checked by httpcheck before http-parser sees it; the parser is
 * paused at each message end so requests are handled one at a time. */
#define LOG_MODULE "http"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "net/http.h"
#include "net/httpcheck.h"
#include "net/server.h"
#include "net/ws.h"

#define MAX_HEADERS 100

static const char *hdr_names[HDR__COUNT] = {
  [HDR_AUTHORIZATION] = "authorization", [HDR_UPGRADE] = "upgrade",
  [HDR_CONNECTION] = "connection", [HDR_SEC_WS_KEY] = "sec-websocket-key",
  [HDR_SEC_WS_VERSION] = "sec-websocket-version", [HDR_CONTENT_TYPE] = "content-type",
  [HDR_UPLOAD_OFFSET] = "upload-offset", [HDR_UPLOAD_LENGTH] = "upload-length",
  [HDR_UPLOAD_CHECKSUM] = "upload-checksum", [HDR_UPLOAD_METADATA] = "upload-metadata",
  [HDR_TUS_RESUMABLE] = "tus-resumable", [HDR_RANGE] = "range",
  [HDR_IF_NONE_MATCH] = "if-none-match", [HDR_IF_MODIFIED_SINCE] = "if-modified-since",
  [HDR_X_FORWARDED_FOR] = "x-forwarded-for", [HDR_X_HUDDLE_FORWARDED] = "x-huddle-forwarded",
};

static struct conn *conn_of(http_parser *p) { return p->data; }

static int on_url(http_parser *p, const char *at, size_t len) {
  return buf_append(&conn_of(p)->req->url, at, len);
}

static int on_header_field(http_parser *p, const char *at, size_t len) {
  struct http_req *r = conn_of(p)->req;
  /* The head is parsed from one contiguous buffer, so a field arrives whole. */
  if (++r->nheaders > MAX_HEADERS) return -1;
  r->cur_hdr = -1;
  for (int i = 0; i < HDR__COUNT; i++) {
    if (strlen(hdr_names[i]) == len && strncasecmp(hdr_names[i], at, len) == 0) {
      r->cur_hdr = i;
      if (r->hdr[i].len) buf_append(&r->hdr[i], ", ", 2); /* repeated: join */
    }
  }
  return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len) {
  struct http_req *r = conn_of(p)->req;
  if (r->cur_hdr >= 0) return buf_append(&r->hdr[r->cur_hdr], at, len);
  return 0;
}

static int on_headers_complete(http_parser *p) {
  struct conn *c = conn_of(p);
  c->req->body_cap = (size_t)c->srv->cfg->max_body_bytes;
  int has_body = (p->flags & F_CHUNKED) || ((p->flags & F_CONTENTLENGTH) && p->content_length > 0);
  if (has_body && c->srv->handlers.head && !p->upgrade) {
    /* Stop here: process() shows the head to the hook before any body byte
     * is read (who asks, for which route, how much it may send). */
    c->req->head_seen = 1;
    http_parser_pause(p, 1);
    return 0;
  }
  if ((p->flags & F_CONTENTLENGTH) && p->content_length > (uint64_t)c->req->body_cap) {
    c->req->too_large = 1;
    return -1;
  }
  return 0;
}

static void on_timeout(struct conn *c);

static int on_body(http_parser *p, const char *at, size_t len) {
  struct conn *c = conn_of(p);
  if (c->req->stream) {
    /* Streamed: the handler copies what it keeps; no bytes stay here. */
    if (c->req->stream->on_chunk && c->req->stream->on_chunk(c->req->stream_data, at, len))
      conn_read_stop(c);
    conn_timer(c, (uint64_t)c->srv->cfg->header_timeout_ms, on_timeout); /* inactivity */
    return 0;
  }
  if (c->req->body.len + len > c->req->body_cap) {
    c->req->too_large = 1;
    return -1;
  }
  if (c->srv->body_buffered + len > (size_t)c->srv->cfg->max_body_buffer_total) {
    c->req->too_large = 2; /* all connections together hold the most allowed */
    return -1;
  }
  if (buf_append(&c->req->body, at, len) != 0) return -1;
  c->req->accounted += len;
  c->srv->body_buffered += len;
  return 0;
}

static int on_message_complete(http_parser *p) {
  conn_of(p)->req->complete = 1;
  http_parser_pause(p, 1);
  return 0;
}

static const http_parser_settings settings = {
  .on_url = on_url,
  .on_header_field = on_header_field,
  .on_header_value = on_header_value,
  .on_headers_complete = on_headers_complete,
  .on_body = on_body,
  .on_message_complete = on_message_complete,
};

static void req_reset(struct conn *c) {
  struct http_req *r = c->req;
  c->srv->body_buffered -= r->accounted;
  r->accounted = 0;
  r->head_seen = r->head_hooked = r->held = 0;
  r->stream = NULL;
  r->stream_data = NULL;
  r->body_cap = 0;
  buf_reset(&r->url);
  buf_reset(&r->body);
  for (int i = 0; i < HDR__COUNT; i++) buf_reset(&r->hdr[i]);
  r->cur_hdr = -1;
  r->nheaders = 0;
  r->complete = r->too_large = r->head_checked = 0;
}

int http_conn_init(struct conn *c) {
  c->req = calloc(1, sizeof(*c->req));
  if (c->req == NULL) return -1;
  http_parser_init(&c->req->parser, HTTP_REQUEST);
  c->req->parser.data = c;
  c->req->cur_hdr = -1;
  c->kind = CONN_HTTP;
  /* A connection that never sends a byte is closed like a slow one. */
  conn_timer(c, (uint64_t)c->srv->cfg->header_timeout_ms, on_timeout);
  return 0;
}

void http_conn_free(struct conn *c) {
  struct http_req *r = c->req;
  if (r == NULL) return;
  const struct http_stream *st = r->stream;
  r->stream = NULL;
  if (st && st->on_abort) st->on_abort(r->stream_data);
  r->stream_data = NULL;
  c->srv->body_buffered -= r->accounted;
  r->accounted = 0;
  buf_free(&r->in);
  buf_free(&r->url);
  buf_free(&r->body);
  for (int i = 0; i < HDR__COUNT; i++) buf_free(&r->hdr[i]);
  free(r);
  c->req = NULL;
}

/* ---- responses ---- */

const char *http_status_text(int status) {
  switch (status) {
  case 101: return "Switching Protocols";
  case 200: return "OK";
  case 201: return "Created";
  case 204: return "No Content";
  case 206: return "Partial Content";
  case 304: return "Not Modified";
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 408: return "Request Timeout";
  case 409: return "Conflict";
  case 410: return "Gone";
  case 413: return "Content Too Large";
  case 415: return "Unsupported Media Type";
  case 416: return "Range Not Satisfiable";
  case 422: return "Unprocessable Content";
  case 426: return "Upgrade Required";
  case 429: return "Too Many Requests";
  case 431: return "Request Header Fields Too Large";
  case 460: return "Checksum Mismatch";
  case 500: return "Internal Server Error";
  case 501: return "Not Implemented";
  case 503: return "Service Unavailable";
  case 505: return "HTTP Version Not Supported";
  default: return "Unknown";
  }
}

void http_reply(struct conn *c, int status, const char *extra_headers,
                const char *content_type, const void *body, size_t len) {
  /* A 4xx/5xx on a broken request, or the client's wish, ends the connection. */
  int keep = c->kind == CONN_HTTP && c->req && !c->srv->shutting_down && c->req->complete &&
             http_should_keep_alive(&c->req->parser) && status != 400 && status != 408 &&
             status != 413 && status != 431 && status != 505;
  char head[2048];
  /* Static files bring their own Cache-Control (net/static.c). */
  int own_cache = extra_headers && strncmp(extra_headers, "Cache-Control:", 14) == 0;
  int n = snprintf(head, sizeof(head),
                   "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                   "%sX-Content-Type-Options: nosniff\r\n"
                   "Connection: %s\r\n%s\r\n",
                   status, http_status_text(status), content_type, len,
                   own_cache ? "" : "Cache-Control: no-store\r\n",
                   keep ? "keep-alive" : "close", extra_headers ? extra_headers : "");
  if (n < 0 || (size_t)n >= sizeof(head)) n = 0;
  struct outbuf *b = outbuf_new((size_t)n + len);
  if (b == NULL) {
    conn_close(c);
    return;
  }
  memcpy(b->data, head, (size_t)n);
  if (c->req && c->req->parser.method == HTTP_HEAD) len = 0; /* headers only, Content-Length as for GET */
  if (len) memcpy(b->data + n, body, len);
  b->len = (size_t)n + len;
  c->srv->stats.http_requests++;
  if (status >= 100 && status < 600) c->srv->stats.http_by_status[status / 100]++;
  conn_write(c, b);
  if (!keep) conn_end(c);
}

void http_reply_json(struct conn *c, int status, json_t *body, const char *extra_headers) {
  char *s = body ? json_dumps(body, JSON_COMPACT) : NULL;
  json_decref(body);
  if (s == NULL) {
    static const char fail[] = "{\"error\":{\"code\":\"INTERNAL_ERROR\"}}";
    http_reply(c, 500, "", "application/json", fail, sizeof(fail) - 1);
    return;
  }
  http_reply(c, status, extra_headers, "application/json", s, strlen(s));
  free(s);
}

void http_reply_error(struct conn *c, enum api_err e, const char *detail, int64_t retry_after_ms) {
  const struct api_err_info *info = api_err_info(e);
  json_t *err = json_pack("{s:s,s:s,s:s}", "code", info->code, "message", info->message,
                          "recovery", info->recovery);
  if (err && detail && *detail) json_object_set_new(err, "detail", json_string(detail));
  char extra[160] = "";
  if (err && retry_after_ms > 0) {
    json_object_set_new(err, "retry_after_ms", json_integer(retry_after_ms));
    snprintf(extra, sizeof(extra), "Retry-After: %lld\r\n", (long long)((retry_after_ms + 999) / 1000));
  }
  if (e == API_ERR_METHOD_NOT_ALLOWED && detail) snprintf(extra, sizeof(extra), "Allow: %s\r\n", detail);
  http_reply_json(c, info->status, err ? json_pack("{s:o}", "error", err) : NULL, extra);
}

/* ---- timers ---- */

static void on_timeout(struct conn *c) {
  if (c->kind != CONN_HTTP || c->req == NULL) return;
  if (c->req->held) {
    /* A response that stopped moving (a client that does not read) ends;
     * a handler still working on a complete body (a scan) is waited for. */
    if (c->req->stream && c->req->stream->on_end == NULL) conn_close(c);
    return;
  }
  if (c->in_request) {
    log_info("request_timeout ip=%s", c->ip);
    c->req->complete = 0;
    http_reply_error(c, API_ERR_REQUEST_TIMEOUT, NULL, 0);
  } else {
    conn_close(c);
  }
}

/* ---- input ---- */

static void process(struct conn *c);

/* The request is answered: reset for the next one on a kept-alive connection. */
static void finish_request(struct conn *c) {
  const struct config *cfg = c->srv->cfg;
  if (c->req->parser.upgrade && !c->ending) conn_end(c); /* not ours to upgrade */
  req_reset(c);
  http_parser_init(&c->req->parser, HTTP_REQUEST);
  c->req->parser.data = c;
  c->in_request = 0;
  if (!c->closing && !c->ending) conn_timer(c, (uint64_t)cfg->idle_timeout_ms, on_timeout);
}

void http_stream_set(struct conn *c, const struct http_stream *ops, void *data) {
  c->req->stream = ops;
  c->req->stream_data = data;
}

void http_stream_resume(struct conn *c) {
  if (c->closing || c->ending) return;
  if (!c->req->peer_done) conn_read_start(c);
  conn_timer(c, (uint64_t)c->srv->cfg->header_timeout_ms, on_timeout);
}

void http_request_done(struct conn *c) {
  c->req->held = 0;
  c->req->drain_wanted = 0;
  c->req->stream = NULL;
  c->req->stream_data = NULL;
  if (c->closing || c->ending || c->kind != CONN_HTTP) return;
  finish_request(c);
  if (!c->req->peer_done) conn_read_start(c);
  process(c);
}

static void fail(struct conn *c, enum api_err e, const char *why) {
  log_info("bad_request ip=%s code=%s reason=%s", c->ip, api_err_code(e), why);
  c->req->complete = 0;
  http_reply_error(c, e, NULL, 0);
}

static void process_input(struct conn *c);

/* Runs the complete requests in the input; once the client has closed its
 * side and nothing is being answered, ends the connection after the
 * answers. */
static void process(struct conn *c) {
  process_input(c);
  if (!c->closing && !c->ending && c->kind == CONN_HTTP && c->req->peer_done && !c->req->held) conn_end(c);
}

void http_on_eof(struct conn *c) {
  c->req->peer_done = 1;
  conn_read_stop(c);
  process(c);
}

/* After the head hook: 1 to read the body, 0 when the request was refused,
 * answered or held (http_head_hold). */
static int after_head(struct conn *c) {
  if (c->closing || c->ending || c->req->held) return 0; /* refused, or answered already */
  if (!c->req->stream && (c->req->parser.flags & F_CONTENTLENGTH) &&
      c->req->parser.content_length > (uint64_t)c->req->body_cap) {
    fail(c, API_ERR_PAYLOAD_TOO_LARGE, "body");
    return 0;
  }
  http_parser_pause(&c->req->parser, 0);
  return 1;
}

void http_head_hold(struct conn *c) {
  c->req->held = 1;
  conn_read_stop(c);
}

void http_head_continue(struct conn *c) {
  if (c->kind != CONN_HTTP || c->req == NULL) return;
  c->req->held = 0;
  if (!after_head(c)) return;
  if (!c->req->peer_done) conn_read_start(c);
  conn_timer(c, (uint64_t)c->srv->cfg->header_timeout_ms, on_timeout);
  process(c);
}

/* The most bytes the head of c's request may have (the in buffer holds
 * len bytes of it, or more): --max-header-bytes, and HTTP_FORWARD_HEAD_EXTRA
 * more for a request another instance passed on (the header is looked for
 * only in a head over the limit). */
static size_t head_limit(const struct conn *c, size_t len) {
  static const char name[] = "\nx-huddle-forwarded:";
  const size_t nl = sizeof(name) - 1;
  size_t max = (size_t)c->srv->cfg->max_header_bytes;
  if (c->srv->cfg->redis_url == NULL || len <= max) return max;
  size_t scan = len < max + HTTP_FORWARD_HEAD_EXTRA ? len : max + HTTP_FORWARD_HEAD_EXTRA;
  const char *h = c->req->in.data;
  for (size_t i = 0; i + nl <= scan; i++)
    if (h[i] == '\n' && strncasecmp(h + i, name, nl) == 0) return max + HTTP_FORWARD_HEAD_EXTRA;
  return max;
}

static void process_input(struct conn *c) {
  const struct config *cfg = c->srv->cfg;
  while (!c->closing && !c->ending && c->kind == CONN_HTTP && !c->req->held && c->req->in.len > 0) {
    if (!c->in_request) {
      c->in_request = 1;
      conn_timer(c, (uint64_t)cfg->header_timeout_ms, on_timeout);
    }
    if (!c->req->head_checked) {
      /* A new request: the head must be complete and well formed first. */
      size_t end = httpcheck_head_end(c->req->in.data, c->req->in.len, 0);
      if (end == 0) {
        if (c->req->in.len > head_limit(c, c->req->in.len)) fail(c, API_ERR_HEADERS_TOO_LARGE, "head");
        return;
      }
      if (end > head_limit(c, end)) { fail(c, API_ERR_HEADERS_TOO_LARGE, "head"); return; }
      enum httpcheck_result r = httpcheck_head(c->req->in.data, end);
      if (r == HTTPCHECK_VERSION) {
        c->req->complete = 0;
        static const char body[] = "{\"error\":{\"code\":\"BAD_REQUEST\",\"message\":\"Only HTTP/1.0 and HTTP/1.1 are supported.\",\"recovery\":\"Send an HTTP/1.1 request.\"}}";
        http_reply(c, 505, "", "application/json", body, sizeof(body) - 1);
        return;
      }
      if (r != HTTPCHECK_OK) { fail(c, API_ERR_BAD_REQUEST, "malformed_head"); return; }
      c->req->head_checked = 1;
    }
    size_t n = http_parser_execute(&c->req->parser, &settings, c->req->in.data, c->req->in.len);
    enum http_errno he = HTTP_PARSER_ERRNO(&c->req->parser);
    if (c->req->too_large == 2) { fail(c, API_ERR_BODY_BUFFER_FULL, "body_buffer_total"); return; }
    if (c->req->too_large) { fail(c, API_ERR_PAYLOAD_TOO_LARGE, "body"); return; }
    if (c->req->nheaders > MAX_HEADERS) { fail(c, API_ERR_HEADERS_TOO_LARGE, "count"); return; }
    if (he != HPE_OK && he != HPE_PAUSED) { fail(c, API_ERR_BAD_REQUEST, http_errno_name(he)); return; }
    buf_consume(&c->req->in, n);
    if (c->req->head_seen && !c->req->head_hooked) {
      c->req->head_hooked = 1;
      c->srv->handlers.head(c);
      if (!after_head(c)) return;
      continue;
    }
    if (!c->req->complete) {
      if (c->req->parser.upgrade) { fail(c, API_ERR_BAD_REQUEST, "upgrade_body"); return; }
      return; /* the rest of the body is still on its way */
    }
    if (c->req->stream) {
      /* A streamed body ended: its handler answers when it is ready. */
      c->req->held = 1;
      if (c->req->stream->on_end) c->req->stream->on_end(c->req->stream_data);
      return;
    }
    c->srv->handlers.request(c);
    if (c->req->stream) {
      c->req->held = 1; /* the handler writes the response (a file) later */
      return;
    }
    if (c->kind == CONN_WS) {
      /* The request is no longer needed. Bytes after the upgrade request
       * are the first WebSocket frames. */
      struct buf rest = c->req->in;
      memset(&c->req->in, 0, sizeof(c->req->in));
      http_conn_free(c);
      if (rest.len) ws_on_data(c, rest.data, rest.len);
      buf_free(&rest);
      return;
    }
    finish_request(c);
  }
}

void http_on_data(struct conn *c, const char *data, size_t len) {
  /* Bounded: the head is capped before parsing and the body by the parser. */
  if (c->req->in.len + len > (size_t)c->srv->cfg->max_header_bytes + (size_t)c->srv->cfg->max_body_bytes + 65536) {
    { fail(c, API_ERR_PAYLOAD_TOO_LARGE, "input"); return; }
  }
  if (buf_append(&c->req->in, data, len) != 0) {
    conn_close(c);
    return;
  }
  process(c);
}
