/* What both back ends share about the schema: its version and the text
 * of the chat tombstone. The tables themselves are in each back end's
 * migrations (SQL dialects differ); docs/internals/store.md lists them. */
#ifndef HUDDLE_STORE_SCHEMA_H
#define HUDDLE_STORE_SCHEMA_H

#include <jansson.h>

#define STORE_SCHEMA_VERSION 5
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

/* Room policy snapshots (room/durable_policy.c) and one user, for export
 * and erase. A snapshot names a user only inside double quotes (ids have
 * no characters JSON escapes), so `"<user_id>"` is a safe pre-filter:
 * store_policy_needle writes it to out (at least ID_MAX + 3 bytes). */
void store_policy_needle(const char *user_id, char *out, size_t out_len);
/* The user's part of one room's snapshot: {"room_id", "user"?: the user's
 * role/override entry, "rejected"?: true, "banned"?: true, "hand"?: {"name",
 * "raised_at"}}; NULL if the snapshot does not mention the user. New reference. */
json_t *store_policy_user_part(const char *room_id, const char *policy, const char *user_id);
/* The snapshot without the user, compact with sorted keys as durable_policy
 * writes it ("{}" when nothing is left); NULL if the user is not in it or it
 * does not parse. Caller frees. */
char *store_policy_without_user(const char *policy, const char *user_id);
/* Export: takes rows [{"room_id", "policy": text}] (steals the reference)
 * and returns the user's parts, one per room that mentions it. */
json_t *store_policy_export(json_t *rows, const char *user_id);
/* Completes an export answer: out gets user_id and the five lists (their
 * references stolen; policy_rows as store_policy_export takes them) in
 * place of its "items". */
void store_export_fill(json_t *out, const char *user_id, json_t *chat, json_t *sessions, json_t *events,
                       json_t *audit, json_t *policy_rows);

/* A room's stored summary ($1: room id) and its quality buckets: the same
 * SQL in both dialects. */
#define STORE_SUMMARY_SQL                                                                                  \
  "SELECT (SELECT count(*) FROM room_sessions WHERE room_id = $1) AS known,"                              \
  " (SELECT min(started_at) FROM room_sessions WHERE room_id = $1) AS created_at,"                        \
  " (SELECT max(ended_at) FROM room_sessions WHERE room_id = $1) AS closed_at,"                           \
  " (SELECT max(peak_participants) FROM room_sessions WHERE room_id = $1) AS peak_participants,"          \
  " (SELECT count(*) FROM participant_sessions WHERE room_id = $1) AS total_sessions,"                    \
  " (SELECT CAST(coalesce(sum(duration_ms), 0) AS BIGINT) FROM participant_sessions WHERE room_id = $1)"  \
  " AS session_ms,"                                                                                       \
  " (SELECT count(*) FROM analytics_events WHERE room_id = $1 AND type = 'custom') AS custom_events,"     \
  " (SELECT count(*) FROM recordings WHERE room_id = $1 AND kind = 'recording') AS recordings,"           \
  " (SELECT count(*) FROM recordings WHERE room_id = $1 AND kind = 'stream') AS live_streams,"            \
  " (SELECT count(*) FROM chat_messages WHERE room_id = $1) AS chat_messages"
/* What restores a room ($1: room id; store_room_refresh): the same SQL in
 * both dialects. */
#define STORE_ROOM_SQL                                                                                     \
  "SELECT (SELECT CAST(coalesce(max(seq), 0) AS BIGINT) FROM chat_messages WHERE room_id = $1) AS chat_seq," \
  " (SELECT CAST(coalesce(max(last_seq), 0) AS BIGINT) FROM room_sessions WHERE room_id = $1) AS session_seq," \
  " (SELECT settings FROM room_settings WHERE room_id = $1) AS settings,"                                 \
  " (SELECT policy FROM room_policy WHERE room_id = $1) AS policy"
#define STORE_QUALITY_SQL \
  "SELECT name, count(*) AS n FROM analytics_events WHERE room_id = $1 AND type = 'quality' GROUP BY name"

#endif
