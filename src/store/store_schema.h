/* What both back ends share about the schema: its version and the text
 * of the chat tombstone. The tables themselves are in each back end's
 * migrations (SQL dialects differ); docs/internals/store.md lists them. */
#ifndef HUDDLE_STORE_SCHEMA_H
#define HUDDLE_STORE_SCHEMA_H

#include <jansson.h>

#define STORE_SCHEMA_VERSION 3
#define STORE_TOMBSTONE "[message removed]"
#define STORE_ANONYMOUS "anonymous"

/* Builds a history message object the way chat-message delivered it.
 * to and reply_to may be NULL or "". New reference. */
json_t *store_chat_json(unsigned long long seq, const char *message_id, const char *from,
                        const char *sender_name, const char *to, const char *reply_to,
                        const char *text, unsigned long long ts, int erased);
/* Splits q into words for a full-text search, each double-quoted and
 * separated by spaces (FTS5 "AND" syntax). Returns 0, or -1 if no word. */
int store_fts_words(const char *q, char *out, size_t out_len);

#endif
