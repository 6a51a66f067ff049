'use strict';
// Several instances (issue 11), the parts that used to stay per instance:
// breakout grants single-use across the cluster, the cluster-wide room list
// and ROOM_ALREADY_EXISTS, and snapshots that carry breakout rooms and
// recordings through a takeover. Three huddle instances and a throwaway
// redis-server on loopback (redis_helpers.js).

const test = require('node:test');
const assert = require('node:assert');
const { execFileSync } = require('node:child_process');
const h = require('./helpers');
const rh = require('./redis_helpers');
const { RATES_OFF, ofType } = require('./feature_helpers');

/** Runs one redis-cli command against the test's Redis; returns its output. */
function redis(r, ...args) {
  return execFileSync('redis-cli', ['-h', h.HOST, '-p', String(r.port), ...args]).toString().trim();
}

/** The jti of a grant (auth/grant.h: base64url(payload || 32-byte HMAC), payload fields joined by '\n'). */
function jtiOf(grant) {
  const raw = Buffer.from(grant, 'base64url');
  return raw.subarray(0, raw.length - 32).toString().split('\n').pop();
}

/** Opens a WebSocket with a grant; resolves {c, first} (first: room-state or error). */
async function withGrant(srv, room, grant) {
  const c = await h.connect(srv, room, null, { via: 'none', query: `grant=${grant}` });
  return { c, first: await c.next(undefined, 5000) };
}

async function assignedGrant(host, c, bid, user) {
  host.send({ type: 'breakout-room-assign', payload: { breakout_room_id: bid, user_id: user } });
  const m = await c.nextWhere(ofType('breakout-room-assign', (x) => x.grant !== undefined), 5000, `assignment at ${user}`);
  return m.payload.grant;
}

test('breakout grants through any instance, single-use across the cluster', async () => {
  await rh.withCluster(3, { args: RATES_OFF }, async (r, [A, B, C]) => {
    const hana = await h.join(A, 'fam', 'hana', { role: 'host' }); // A owns the family
    const pat = await h.join(B, 'fam', 'pat');
    const mo = await h.join(C, 'fam', 'mo');
    const tok = h.mintToken(h.SECRET, { sub: 'hana', role: 'host' });
    const made = await h.api(B, 'POST', '/webrtc/rooms/fam/breakout-rooms', tok, { rooms: [{ name: 'X' }] });
    assert.strictEqual(made.status, 201, made.text);
    const bid = made.json.breakout_rooms[0].breakout_room_id;

    // pat (on B) moves into the breakout room through B: the grant works there.
    const g1 = await assignedGrant(hana, pat, bid, 'pat');
    const p1 = await withGrant(B, bid, g1);
    assert.strictEqual(p1.first.type, 'room-state', JSON.stringify(p1.first).slice(0, 300));
    assert.strictEqual(p1.first.payload.self.user_id, 'pat');
    assert.strictEqual(redis(r, 'EXISTS', `huddle:grant:${jtiOf(g1)}`), '1', 'the spent jti is in Redis');
    const ttl = Number(redis(r, 'PTTL', `huddle:grant:${jtiOf(g1)}`));
    assert.ok(ttl > 0, `the spent mark expires with the grant (PTTL ${ttl})`);
    // The same grant again, through A (the family's owner) and through C: refused.
    for (const S of [A, C]) {
      const again = await withGrant(S, bid, g1);
      assert.strictEqual(again.first.type, 'error', JSON.stringify(again.first).slice(0, 300));
      assert.strictEqual(again.first.payload.code, 'INVALID_TOKEN');
    }

    // mo (on C) moves through A, the owner; the same grant through B is refused.
    const g2 = await assignedGrant(hana, mo, bid, 'mo');
    const m1 = await withGrant(A, bid, g2);
    assert.strictEqual(m1.first.type, 'room-state', JSON.stringify(m1.first).slice(0, 300));
    const m2 = await withGrant(B, bid, g2);
    assert.strictEqual(m2.first.type, 'error', JSON.stringify(m2.first).slice(0, 300));
    assert.strictEqual(m2.first.payload.code, 'INVALID_TOKEN');

    // Forged or mismatched grants are still refused before the upgrade.
    await h.expectRefused(B, bid, null, 401, 'INVALID_TOKEN', { via: 'none', query: `grant=${'0'.repeat(64)}` });
    await h.expectRefused(B, 'fam', null, 403, 'TOKEN_ROOM_MISMATCH', { via: 'none', query: `grant=${g2}` });
  });
});
