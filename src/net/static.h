/* Static files: the meeting web app at "/" and the browser SDK at "/sdk/",
 * served read-only from one directory with a strict Content-Security-Policy,
 * validators (ETag, Last-Modified) and no way out of that directory. It knows
 * nothing of rooms or tokens. See docs/adr/0010-static-serving-and-csp.md. */
#ifndef HUDDLE_NET_STATIC_H
#define HUDDLE_NET_STATIC_H

#include <stddef.h>

struct conn;

/* The Content-Security-Policy sent with every static file. */
#define STATIC_CSP                                                                       \
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; " \
  "media-src 'self' blob: mediastream:; connect-src 'self'; font-src 'self'; "          \
  "manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

/* Answers a GET or HEAD of path (the request target without its query, not
 * NUL-terminated) with a file under the web root, with 304 when the client's
 * validator matches, or with 404 NOT_FOUND. Returns 1 when it answered, 0
 * when the request is not one for static files (another method, or a path
 * under /webrtc/ or /metrics): the caller answers it. */
int static_serve(struct conn *c, const char *path, size_t path_len);

/* Decodes and checks a request path: percent-decodes it into out (at most
 * out_len bytes with the NUL), refuses encoded '/' or '\', NUL and other
 * control bytes, anything outside [A-Za-z0-9._-/], empty segments and any
 * segment starting with '.', and appends "index.html" to a path ending in
 * '/'. out never starts with '/'. Returns 0, or -1 when the path is refused. */
int static_path_clean(const char *path, size_t path_len, char *out, size_t out_len);

/* The web root in use: --web-root if set, else the install location, else
 * web/ beside the directory holding the running binary's directory (the
 * checkout when run from build/). Writes it into out; returns 0, or -1 when
 * none exists. */
int static_root(const char *configured, char *out, size_t out_len);

#endif
