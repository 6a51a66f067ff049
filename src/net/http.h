/* HTTP/1.1 on http-parser: strict head checks, limits, keep-alive, and the
 * response writer. Complete requests go to api_dispatch(). */
#ifndef HUDDLE_NET_HTTP_H
#define HUDDLE_NET_HTTP_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "guard/errors.h"

struct conn;

/* Sets c up for HTTP and arms the timer for its first request. */
void http_conn_init(struct conn *c);
void http_conn_free(struct conn *c);
void http_on_data(struct conn *c, const char *data, size_t len);

/* Writes a whole response. extra_headers is "" or CRLF-terminated lines. */
void http_reply(struct conn *c, int status, const char *extra_headers,
                const char *content_type, const void *body, size_t len);
/* Consumes body (a jansson reference) on every path. */
void http_reply_json(struct conn *c, int status, json_t *body, const char *extra_headers);
/* Replies with the taxonomy row for e; detail may be NULL. A retry_after_ms
 * above 0 adds the field and a Retry-After header. */
void http_reply_error(struct conn *c, enum api_err e, const char *detail, int64_t retry_after_ms);

/* For a handler that answers later (a store read): keeps c (and the
 * request it answers) alive and holds pipelined requests until
 * http_defer_end, which the handler calls after writing its reply. If c
 * closed meanwhile, writing is skipped by the caller (check c->closing)
 * and http_defer_end only releases it. */
void http_defer(struct conn *c);
void http_defer_end(struct conn *c);

/* Text of a status code ("Not Found"). */
const char *http_status_text(int status);

#endif
