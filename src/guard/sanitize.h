/* Sanitizing what users send for others to display: chat text, reaction
 * emoji, file names. Input is UTF-8 already validated by the JSON parser;
 * output is safe to insert into HTML as text. */
#ifndef HUDDLE_GUARD_SANITIZE_H
#define HUDDLE_GUARD_SANITIZE_H

#include <stddef.h>

#include "guard/errors.h"
#include "lib/buf.h"

/* Chat text: removes C0 controls except \n and \t, DEL, C1 controls, and
 * bidirectional overrides/embeddings/isolates (U+202A-U+202E,
 * U+2066-U+2069, U+200E, U+200F, U+061C); HTML-escapes & < > " ' (as &amp;
 * &lt; &gt; &quot; &#39;); neutralizes the schemes javascript:, vbscript:
 * and data: (case-insensitive, even with spaces or controls inside the word)
 * by writing their colon as &#58;. Keeps every other code point, emoji and
 * joiners included. Counts code points of the input: more than max_chars is
 * API_ERR_MESSAGE_TOO_LONG; nothing left after cleaning is
 * API_ERR_INVALID_MESSAGE. Appends the result to out (which is reset
 * first). Invalid UTF-8 is API_ERR_INVALID_MESSAGE. */
enum api_err sanitize_text(const char *in, size_t len, size_t max_chars, struct buf *out);
/* sanitize_text decoding every code point: what sanitize_text does for any
 * input but printable ASCII with \n and \t, which it cleans in one pass
 * with the same result. Exposed for tests that compare the two. */
enum api_err sanitize_text_cp(const char *in, size_t len, size_t max_chars, struct buf *out);

/* A reaction: one emoji or emoji sequence (with ZWJ, variation selectors,
 * skin tones, flags, keycaps), at most max_bytes bytes, and nothing else.
 * Returns API_OK or API_ERR_INVALID_MESSAGE. */
enum api_err sanitize_reaction(const char *in, size_t len, size_t max_bytes);

/* A file name: keeps the part after the last '/' or '\\', removes controls
 * and bidi characters, trims spaces and dots at both ends, and refuses an
 * empty result, "." or "..", or one over 255 bytes. Writes a NUL-terminated
 * name into out (out_len >= 256). Returns API_OK or API_ERR_INVALID_MESSAGE. */
enum api_err sanitize_filename(const char *in, size_t len, char *out, size_t out_len);

#endif
