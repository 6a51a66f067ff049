'use strict';
// Hostile review of schema 7 (ADR 0021: a user's chat is found through
// chat_senders, not an index on from_user) and of the reserved user id
// `anonymous`. SQLite and PostgreSQL (the throwaway cluster
// scripts/with-postgres.sh starts).

const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const { execSync } = require('node:child_process');
const h = require('./helpers');
const f = require('./feature_helpers');

const { RATES_OFF, roleTok, people, ofType } = f;
const PG_PORT = process.env.HUDDLE_TEST_PG_PORT;
const TOMB = '[message removed]';

function pgDatabase(name) {
  execSync(`psql -q -h 127.0.0.1 -p ${PG_PORT} -U huddle -d postgres -c 'CREATE DATABASE ${name}'`, { stdio: 'ignore' });
  return `postgres://huddle@127.0.0.1:${PG_PORT}/${name}`;
}

/** Sends a chat message from c (to: a user for a private one) and waits for its echo at c. */
async function say(c, id, text, to) {
  const m = { type: 'chat-message', id, payload: { text } };
  if (to) m.to = to;
  c.send(m);
  await c.nextWhere((x) => x.type === 'chat-message' && x.ref === id, 3000, `the echo of ${id}`);
}

/** The texts of a room's stored history (admin), oldest first. */
async function texts(srv, room) {
  const r = await f.rest(srv, 'GET', `/webrtc/rooms/${room}/chat?limit=100`, { token: f.adminTok(srv) });
  assert.strictEqual(r.status, 200, r.text);
  return r.json.messages.map((m) => m.text);
}

// Every way a user's chat gets stored: room chat, private messages both
// ways, chat in a breakout room (stored under the breakout room's id),
// under --chat-durability relaxed (stored behind delivery), a first and a
// later message in a room across a restart (the SQLite writer's known
// pairs start empty), and a room first used after the restart. The export
// lists all of it and erase tombstones every message the user sent.
async function everyPathFound(args) {
  const dataDir = h.freshDataDir();
  const main = 'hsm';
  let bid;
  try {
    let srv = await h.startServer({ dataDir, args });
    try {
      const p = await people(srv, main, [['hana', 'host'], ['pat', 'participant']]);
      await say(p.pat, 'a1', 'pat main one');
      await say(p.pat, 'a2', 'pat to hana', 'hana');
      await say(p.hana, 'a3', 'hana to pat', 'pat');
      let r = await h.api(srv, 'POST', `/webrtc/rooms/${main}/breakout-rooms`, p.hana.token, { rooms: [{ name: 'A' }] });
      assert.strictEqual(r.status, 201, r.text);
      bid = r.json.breakout_rooms[0].breakout_room_id;
      r = await h.api(srv, 'POST', `/webrtc/rooms/${main}/breakout-rooms/${bid}/assign/pat`, p.hana.token);
      assert.strictEqual(r.status, 200, r.text);
      const move = await p.pat.nextWhere(ofType('breakout-room-assign', (x) => x.grant !== undefined), 3000, 'the grant');
      const inA = await h.connect(srv, bid, null, { via: 'none', query: `grant=${move.payload.grant}` });
      const st = await inA.next();
      assert.strictEqual(st.type, 'room-state', JSON.stringify(st).slice(0, 300));
      await say(inA, 'b1', 'pat in breakout');
    } finally {
      h.closeAllClients();
      await srv.stopAndAssert();
    }
    srv = await h.startServer({ dataDir, args });
    try {
      const p = await people(srv, main, [['hana', 'host'], ['pat', 'participant']]);
      await say(p.pat, 'c1', 'pat after restart');
      const q = await people(srv, 'hsn', [['pat', 'participant']]);
      await say(q.pat, 'c2', 'pat new room');
      const admin = f.adminTok(srv);
      const want = ['pat main one', 'pat to hana', 'hana to pat', 'pat in breakout', 'pat after restart', 'pat new room'];
      // Relaxed chat is stored behind delivery: wait (5 s at most) for all six rows.
      let exported;
      for (let i = 0; i < 100; i++) {
        const x = await f.rest(srv, 'GET', '/webrtc/admin/users/pat/export', { token: admin });
        assert.strictEqual(x.status, 200, x.text);
        exported = x.json;
        if (exported.chat_messages.length >= want.length) break;
        await h.delay(50);
      }
      assert.deepStrictEqual(exported.chat_messages.map((m) => m.text).sort(), want.slice().sort());
      const chatEvents = exported.analytics_events.filter((e) => e.type === 'chat');
      assert.strictEqual(chatEvents.length, 5, `pat's five chat events: ${JSON.stringify(exported.analytics_events)}`);
      const r = await f.rest(srv, 'POST', '/webrtc/admin/users/pat/erase', { token: admin });
      assert.strictEqual(r.status, 200, r.text);
      assert.deepStrictEqual(await texts(srv, main), [TOMB, TOMB, 'hana to pat', TOMB]);
      assert.deepStrictEqual(await texts(srv, bid), [TOMB]);
      assert.deepStrictEqual(await texts(srv, 'hsn'), [TOMB]);
    } finally {
      h.closeAllClients();
      await srv.stopAndAssert();
    }
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

test('chat_senders (SQLite): export and erase find a user\'s room, private, breakout and relaxed chat, across a restart', async () => {
  await everyPathFound(RATES_OFF.concat(['--chat-durability', 'relaxed']));
});

test('chat_senders (PostgreSQL): the same', { skip: !PG_PORT && 'no PostgreSQL cluster (run through scripts/with-postgres.sh)' }, async () => {
  const url = pgDatabase(`huddle_hs_${process.pid}_${Date.now() % 100000}`);
  await everyPathFound(RATES_OFF.concat(['--chat-durability', 'relaxed', '--database-url', url]));
});

// `anonymous` is reserved (auth/token.c token_sub_reserved, as `server` is:
// no token may carry it, docs/protocol.md "Identifiers"). The review found
// POST /webrtc/admin/users/anonymous/erase accepted (200) about a user that
// cannot exist, and erasing: Q_ERASE_AUDIT (and the rooms in memory)
// removed the details of every room audit entry that quotes "anonymous",
// here the reason of hana's removal of pat (a user nobody erased).
// Expected: 400 BAD_REQUEST, as for "server", and the entry unchanged.
test('erase refuses the reserved id "anonymous" as it refuses "server"', async () => {
  const room = 'hsa';
  await h.withServer({ args: RATES_OFF }, async (srv) => {
    const p = await people(srv, room, [['hana', 'host'], ['pat', 'participant']]);
    let r = await h.api(srv, 'POST', `/webrtc/rooms/${room}/participants/pat/remove`, p.hana.token, { reason: 'anonymous' });
    assert.strictEqual(r.status, 200, r.text);
    await p.pat.waitClose();
    const admin = f.adminTok(srv);
    const removal = async () => {
      const x = await f.rest(srv, 'GET', `/webrtc/rooms/${room}/audit`, { token: admin });
      assert.strictEqual(x.status, 200, x.text);
      return x.json.entries.find((e) => e.action === 'remove' && e.target === 'pat');
    };
    assert.deepStrictEqual((await removal()).details, { reason: 'anonymous' });
    r = await f.rest(srv, 'POST', '/webrtc/admin/users/server/erase', { token: admin });
    assert.strictEqual(r.status, 400, r.text);
    assert.strictEqual(r.json.error.code, 'BAD_REQUEST', r.text);
    r = await f.rest(srv, 'POST', '/webrtc/admin/users/anonymous/erase', { token: admin });
    const after = await removal();
    assert.strictEqual(r.status, 400, `erase of "anonymous": ${r.status} ${r.text}; pat's removal now ${JSON.stringify(after)}`);
    assert.strictEqual(r.json.error.code, 'BAD_REQUEST', r.text);
    assert.deepStrictEqual(after.details, { reason: 'anonymous' }, 'the audit entry is left as it was');
    // Nor is it exported: what is left of every erased user is no one's.
    for (const user of ['anonymous', 'server']) {
      r = await f.rest(srv, 'GET', `/webrtc/admin/users/${user}/export`, { token: admin });
      assert.strictEqual(r.status, 400, r.text);
      assert.strictEqual(r.json.error.code, 'BAD_REQUEST', r.text);
    }
  });
});

// The reserved ids elsewhere. `huddle token` refuses them (main.c), and a
// REST call naming one as its target finds nobody: no token can carry them,
// so nobody by that id is in a room or waits in its waiting room; the
// refusal is the one for an absent user (nothing stored or audited). That
// is right for admit/reject/assign/remove: the id names no one.
test('reserved ids: huddle token refuses them; REST targets named anonymous or server find nobody', async () => {
  const env = { HUDDLE_JWT_SECRET: 'x'.repeat(40) };
  const ok = h.runHuddle(['token', '--user', 'alice'], { env });
  assert.strictEqual(ok.status, 0, ok.stderr);
  for (const user of ['anonymous', 'server']) {
    const r = h.runHuddle(['token', '--user', user], { env });
    assert.notStrictEqual(r.status, 0, `huddle token --user ${user}: ${r.stdout}`);
    assert.strictEqual(r.stdout, '');
    assert.match(r.stderr, /not server or anonymous/);
  }
  const room = 'hsr';
  await h.withServer({ args: RATES_OFF }, async (srv) => {
    const p = await people(srv, room, [['hana', 'host'], ['pat', 'participant']]);
    let r = await h.api(srv, 'POST', `/webrtc/rooms/${room}/breakout-rooms`, p.hana.token, { rooms: [{ name: 'A' }] });
    assert.strictEqual(r.status, 201, r.text);
    const bid = r.json.breakout_rooms[0].breakout_room_id;
    for (const user of ['anonymous', 'server']) {
      h.assertApiError(await h.api(srv, 'POST', `/webrtc/rooms/${room}/waiting-room/${user}/admit`, p.hana.token), 404, 'WAITING_USER_NOT_FOUND');
      h.assertApiError(await h.api(srv, 'POST', `/webrtc/rooms/${room}/waiting-room/${user}/reject`, p.hana.token), 404, 'WAITING_USER_NOT_FOUND');
      h.assertApiError(await h.api(srv, 'POST', `/webrtc/rooms/${room}/breakout-rooms/${bid}/assign/${user}`, p.hana.token), 404, 'USER_NOT_IN_ROOM');
      h.assertApiError(await h.api(srv, 'POST', `/webrtc/rooms/${room}/participants/${user}/remove`, p.hana.token, {}), 404, 'USER_NOT_IN_ROOM');
    }
    r = await f.rest(srv, 'GET', `/webrtc/rooms/${room}/audit`, { token: p.hana.token });
    assert.strictEqual(r.status, 200, r.text);
    assert.ok(!r.json.entries.some((e) => e.target === 'anonymous' || e.target === 'server'), r.text);
  });
});
