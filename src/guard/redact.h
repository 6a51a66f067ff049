/* Redaction of live-stream targets by the URL's structure, not by pattern.
 * Of scheme://[userinfo@]host[:port], then the application path, then the
 * key (the last path segment), then [?query][#fragment], it keeps the
 * scheme, host, port and application path (every path segment but the
 * last) and replaces userinfo, the key, a query and a fragment each with
 * four asterisks. */
#ifndef HUDDLE_GUARD_REDACT_H
#define HUDDLE_GUARD_REDACT_H

#include <stddef.h>

/* Writes the redacted form of url[0..len) into out. Returns 0, or -1 if
 * url is not rtmp:// or rtmps:// with a host, an application and a key, or
 * out is too small. */
int redact_stream_target(const char *url, size_t len, char *out, size_t out_len);

#endif
