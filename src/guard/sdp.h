/* The publish check's reading of a session description, done the way
 * libwebrtc reads one, so that what the server lets through is what the
 * browser will do:
 * - lines end at LF only; one trailing CR is dropped from a line;
 * - direction attributes at session level (before the first m=) are
 *   ignored; a section's own a=sendrecv/sendonly/recvonly/inactive sets
 *   its direction (the last one wins), default sendrecv;
 * - a section is live unless its port is 0 without a=bundle-only;
 * - an attribute is matched exactly ("a=recvonly "), anything else is not
 *   a direction. Where the reading is unsure (a port that is not a number),
 *   it assumes the section sends. */
#ifndef HUDDLE_GUARD_SDP_H
#define HUDDLE_GUARD_SDP_H

#include <stddef.h>

struct sdp_sending {
  int audio;   /* 1: some live audio section sends */
  int video;   /* 1: some live video section sends */
};

/* Reads sdp[0..len) (NUL bytes are ordinary bytes) and fills *out. */
void sdp_sending(const char *sdp, size_t len, struct sdp_sending *out);

/* The same reading of an SDP as written inside a JSON string whose only
 * escapes are \r and \n (lib/jscan.h: escaped without JSCAN_ESC_OTHER),
 * without unescaping it: a line ends at the two bytes "\n", a trailing
 * "\r" is the CR that is dropped, and a CR inside a line (two bytes here,
 * one there) can no more match a direction or media name than it could
 * unescaped. */
void sdp_sending_json(const char *s, size_t len, struct sdp_sending *out);

#endif
