/* Behind a reverse proxy: the client address of a request. When the TCP
 * peer is one of --trusted-proxies, the X-Forwarded-For header names the
 * client: the rightmost address that is not itself a trusted proxy (the
 * leftmost entries are whatever the client sent and are not believed).
 * From any other peer the header is ignored. */
#ifndef HUDDLE_NET_PROXY_H
#define HUDDLE_NET_PROXY_H

#include <stddef.h>

struct conn;

/* 1 if addr is in the comma-separated list (exact address match). */
int proxy_trusted(const char *list, const char *addr);
/* Picks the client from an X-Forwarded-For value xff[0..len) given the
 * trusted list; writes it (a valid IPv4/IPv6 text address) into out.
 * Returns 0, or -1 if the header names no usable address. */
int proxy_client_from_xff(const char *list, const char *xff, size_t len, char *out, size_t out_len);
/* Per request: sets c->ip to the client a trusted proxy names (moving the
 * per-address count). Returns 0, or -1 after replying 429 when the client
 * address is over its connection limit. */
int proxy_resolve(struct conn *c);

#endif
