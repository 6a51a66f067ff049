/* What both back ends share about the schema: its version and the text
 * of the chat tombstone. The tables themselves are in each back end's
 * migrations (SQL dialects differ); docs/internals/store.md lists them. */
#ifndef HUDDLE_STORE_SCHEMA_H
#define HUDDLE_STORE_SCHEMA_H

#include <jansson.h>
#include <stdint.h>

#define STORE_SCHEMA_VERSION 8
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
/* Analytics events (schema 6, ADR 0020): a chat message writes no event
 * row; its "chat" event is read from its chat_messages row: the sender
 * ("anonymous" once erased, as erase left the event), name "room" or
 * "private", value 0, no data, the chat's ts. Stored events carry the
 * room's seq when they were recorded, so that within one millisecond a
 * chat sits among them where it happened: ordered by ts, seq, then a chat
 * (k 0) before the events recorded after it at its seq (k 1), then id.
 * The same SQL in both dialects ($1, $2 name the same parameter twice). */
#define STORE_EVENT_ROWS "SELECT room_id, ts, type, user_id, name, value, data, seq, 1 AS k, id FROM analytics_events"
#define STORE_CHAT_EVENT_ROWS                                                                               \
  "SELECT room_id, ts, 'chat' AS type,"                                                                   \
  " CASE WHEN erased <> 0 THEN '" STORE_ANONYMOUS "' ELSE from_user END AS user_id,"                     \
  " CASE WHEN to_user IS NULL THEN 'room' ELSE 'private' END AS name, 0 AS value, NULL AS data, seq,"    \
  " 0 AS k, id FROM chat_messages"
/* A room's newest 1,000 events ($1 room, $2 since), oldest first. Each
 * side is cut to its newest 1,000 first (by id, by seq: both follow time
 * within a room) so a long chat history is not sorted whole. */
#define STORE_EVENTS_SQL                                                                                  \
  "SELECT ts, type, user_id, name, value, data FROM (SELECT * FROM ("                                     \
  "SELECT * FROM (" STORE_EVENT_ROWS " WHERE room_id = $1 AND ts >= $2 ORDER BY id DESC LIMIT 1000) a"    \
  " UNION ALL SELECT * FROM (" STORE_CHAT_EVENT_ROWS " WHERE room_id = $1 AND ts >= $2"                  \
  " ORDER BY seq DESC LIMIT 1000) c) u ORDER BY ts DESC, seq DESC, k DESC, id DESC LIMIT 1000) e"       \
  " ORDER BY ts, seq, k, id"
/* Schema 7 (ADR 0021): chat_messages has no index on from_user. An index
 * keyed by sender put a random leaf page into every commit for each sender
 * in it (a 4 KiB WAL frame in SQLite), and served only erase and export.
 * chat_senders holds each (user, room) pair that has chat instead, with
 * last_ts, the time of the user's last message there give or take
 * STORE_SENDER_REFRESH_MS: the writer writes the pair with a user's first
 * message in a room and then only when that much time has passed since it
 * last did (store_sender_due), so that a page is dirtied once an hour per
 * pair, not per message. Always: a message's ts < its pair's last_ts +
 * STORE_SENDER_REFRESH_MS. The chat rows of one user: its rooms through
 * the pair, then (room_id, seq) within each room. p names the user's
 * parameter ("$1" or "?1"). */
#define STORE_SENDER_REFRESH_MS 3600000
#define STORE_CHAT_OF_USER(p) \
  "room_id IN (SELECT room_id FROM chat_senders WHERE user_id = " p ") AND from_user = " p
#define STORE_MIGRATION_7_ROWS                                                                            \
  "INSERT INTO chat_senders(user_id, room_id, last_ts)"                                                   \
  " SELECT from_user, room_id, max(ts) FROM chat_messages GROUP BY from_user, room_id;"                   \
  "DROP INDEX IF EXISTS chat_messages_from;"
/* Retention ($1: the cut-off): a pair goes once every message it can stand
 * for is older than the cut-off, so with the user's messages in that room
 * (an erased user's too). A pair written within the last refresh period is
 * never due, which is what lets a writer skip a pair it wrote recently
 * while another instance sweeps (the cut-off is at least a day ago). */
#define STORE_STR_(x) #x
#define STORE_STR(x) STORE_STR_(x)
#define STORE_RET_SENDERS_SQL \
  "DELETE FROM chat_senders WHERE last_ts <= CAST($1 AS BIGINT) - " STORE_STR(STORE_SENDER_REFRESH_MS)
struct map;
/* A writer's memory of the pairs it wrote (key and time, in `known`):
 * returns 1 if the chat message (room, user, ts) must write its pair (the
 * pair is unknown, or last written STORE_SENDER_REFRESH_MS or more before
 * ts), and then remembers ts for it; 0 if the pair is known and recent.
 * Whatever a rolled-back transaction wrote must be forgotten (map_free). */
int store_sender_due(struct map *known, const char *room_id, const char *user_id, uint64_t ts);
/* One user's chat ($1), for export: what it sent (through chat_senders)
 * and the private messages sent to it. The same SQL in both dialects. */
#define STORE_EXPORT_CHAT_SQL                                                                             \
  "SELECT room_id, seq, message_id, from_user, to_user, reply_to, text, ts, erased"                      \
  " FROM chat_messages WHERE " STORE_CHAT_OF_USER("$1") " UNION"                                          \
  " SELECT room_id, seq, message_id, from_user, to_user, reply_to, text, ts, erased"                     \
  " FROM chat_messages WHERE to_user = $1 ORDER BY ts, seq"
/* One user's events ($1), for export: an erased user's chat is no longer
 * theirs (as its event rows were anonymized). */
#define STORE_EXPORT_EVENTS_SQL                                                                           \
  "SELECT room_id, ts, type, name, value, data FROM (" STORE_EVENT_ROWS " WHERE user_id = $1"             \
  " UNION ALL " STORE_CHAT_EVENT_ROWS " WHERE " STORE_CHAT_OF_USER("$1") " AND erased = 0) e"              \
  " ORDER BY ts, seq, k, id"
/* Migration 6, the same in both dialects after the column is added: old
 * event rows get the seq of the last chat recorded before them within a
 * millisecond's reach (so the order within a millisecond stays), then the
 * chat event rows that a stored chat message now stands for are deleted
 * (same room and sender, or an erased sender and "anonymous"; room or
 * private; the event's ts or one ms after the chat's: the two clocks were
 * read one after the other). Chat event rows with no chat row stay (chat
 * not stored: --chat-durability off, or a message refused after it was
 * recorded) and are read as before. These three macros are migration 6's
 * text: never edit them once shipped (add a migration instead). */
#define STORE_CHAT_EVENT_MATCH(a)                                                                         \
  "c.room_id = " a ".room_id AND c.ts BETWEEN " a ".ts - 1 AND " a ".ts"                                  \
  " AND (c.from_user = " a ".user_id OR (c.erased <> 0 AND " a ".user_id = '" STORE_ANONYMOUS "'))"       \
  " AND (CASE WHEN c.to_user IS NULL THEN 'room' ELSE 'private' END) = " a ".name"
#define STORE_CHAT_EVENT_NEAR                                                                             \
  "a.room_id = analytics_events.room_id AND a.type = 'chat' AND a.id < analytics_events.id"               \
  " AND a.ts BETWEEN analytics_events.ts - 1 AND analytics_events.ts + 1"
#define STORE_MIGRATION_6_ROWS                                                                            \
  "UPDATE analytics_events SET seq = (SELECT coalesce(max(c.seq), 0) FROM analytics_events a"             \
  " JOIN chat_messages c ON " STORE_CHAT_EVENT_MATCH("a") " WHERE " STORE_CHAT_EVENT_NEAR ")"             \
  " WHERE type <> 'chat' AND EXISTS (SELECT 1 FROM analytics_events a WHERE " STORE_CHAT_EVENT_NEAR ");"  \
  "DELETE FROM analytics_events WHERE type = 'chat' AND EXISTS (SELECT 1 FROM chat_messages c WHERE "     \
  STORE_CHAT_EVENT_MATCH("analytics_events") ");"
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
