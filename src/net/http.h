/* HTTP/1.1 on http-parser: strict head checks, limits, keep-alive, and the
 * response writer. Complete requests go to api_dispatch(). */
#ifndef HUDDLE_NET_HTTP_H
#define HUDDLE_NET_HTTP_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "guard/errors.h"

/* A request passed on by another instance (it carries X-Huddle-Forwarded,
 * ADR 0019) may have a head this many bytes over --max-header-bytes: the
 * forwarding instance adds Host, Connection, X-Huddle-Forwarded and
 * X-Forwarded-For (at most about 150 bytes), so a head that fits at one
 * instance fits through any. Only with --redis-url; a client that forges
 * the header gains these bytes, no more. */
#define HTTP_FORWARD_HEAD_EXTRA 256

struct conn;

/* Sets c up for HTTP (allocates c->req) and arms the timer for its first
 * request. Returns 0, or -1 when out of memory. */
int http_conn_init(struct conn *c);
/* Frees c->req (at the upgrade, or with c); NULL afterwards. Idempotent. */
void http_conn_free(struct conn *c);
void http_on_data(struct conn *c, const char *data, size_t len);
/* The client closed its sending side: what it sent is answered, then the
 * connection ends (a half-close is not an abort). */
void http_on_eof(struct conn *c);

/* Writes a whole response. extra_headers is "" or CRLF-terminated lines. */
void http_reply(struct conn *c, int status, const char *extra_headers,
                const char *content_type, const void *body, size_t len);
/* Consumes body (a jansson reference) on every path. */
void http_reply_json(struct conn *c, int status, json_t *body, const char *extra_headers);
/* Replies with the taxonomy row for e; detail may be NULL. A retry_after_ms
 * above 0 adds the field and a Retry-After header. */
void http_reply_error(struct conn *c, enum api_err e, const char *detail, int64_t retry_after_ms);

/* A request body streamed to its handler, or a response the handler writes
 * later (then on_chunk and on_end are NULL). Every callback gets the data
 * pointer given to http_stream_set(). */
struct http_stream {
  /* Body bytes (valid during the call only). Returns 1 to stop reading
   * until http_stream_resume(), 0 to go on. */
  int (*on_chunk)(void *data, const char *at, size_t len);
  /* The whole body arrived. The handler replies when it is ready, then
   * calls http_request_done(). */
  void (*on_end)(void *data);
  /* The connection is going away before http_request_done(): forget it.
   * Called at most once, after which the stream is detached. */
  void (*on_abort)(void *data);
  /* A response the handler streams: what conn_write_stream() could not
   * write at once has been taken by the socket. NULL if never used. */
  void (*on_drained)(void *data);
};

/* Attaches a stream to c's current request. From the head hook: the body
 * goes to ops->on_chunk instead of a buffer. From a handler of a complete
 * request: the response is the handler's to finish (on_abort only). */
void http_stream_set(struct conn *c, const struct http_stream *ops, void *data);
/* Reads again after on_chunk returned 1. */
void http_stream_resume(struct conn *c);
/* Ends a held request: detaches the stream and goes on with the next
 * request on c (keep-alive), unless the reply ended the connection. */
void http_request_done(struct conn *c);

/* From the head hook: the hook's answer comes later (it asks someone
 * first). Reads stop and the body stays unread; on_abort of a stream set
 * meanwhile tells that the client went away. */
void http_head_hold(struct conn *c);
/* Ends http_head_hold: what the hook would have done is done now (a stream
 * attached, a refusal written, or nothing: the body is buffered), and the
 * request goes on from there. */
void http_head_continue(struct conn *c);

/* Text of a status code ("Not Found"). */
const char *http_status_text(int status);

#endif
