'use strict';
// Issue 10 ("restart of huddle restores a room's settings and roles") and
// issue 13 defect 1 ("in-room changes stick ... across restarts"): what a
// room's people were made in the room (roles, permission overrides), who
// was banned, and the hand queue come back when huddle is restarted on the
// same store, SQLite and PostgreSQL; a deleted room forgets them.
// PostgreSQL uses the throwaway cluster scripts/with-postgres.sh starts.

const test = require('node:test');
const assert = require('node:assert');
const { execSync } = require('node:child_process');
const fs = require('node:fs');
const h = require('./helpers');
const f = require('./feature_helpers');

const { RATES_OFF, roleTok, people, ofType, assertRestError, assertWsError } = f;
const PG_PORT = process.env.HUDDLE_TEST_PG_PORT;

function pgDatabase(name) {
  execSync(`psql -q -h 127.0.0.1 -p ${PG_PORT} -U huddle -d postgres -c 'CREATE DATABASE ${name}'`, { stdio: 'ignore' });
  return `postgres://huddle@127.0.0.1:${PG_PORT}/${name}`;
}

/** Connects with token and takes room-state. */
async function enter(srv, room, token, user) {
  const c = await h.connect(srv, room, token);
  const st = await c.next();
  assert.strictEqual(st.type, 'room-state', `${user} gets room-state: ${JSON.stringify(st).slice(0, 300)}`);
  c.state = st;
  c.user = user;
  return c;
}

async function restartRestores(args) {
  const dataDir = h.freshDataDir();
  const room = 'rst';
  try {
    let srv = await h.startServer({ dataDir, args });
    try {
      const p = await people(srv, room, [['hana', 'host'], ['mod', 'moderator'], ['pat', 'participant'],
        ['vic', 'participant'], ['rae', 'participant']]);
      p.hana.send({ type: 'role-updated', payload: { user_id: 'mod', role: 'viewer' } });
      await p.mod.nextWhere(ofType('role-updated', (x) => x.user_id === 'mod' && x.role === 'viewer'));
      p.hana.send({ type: 'permission-updated', payload: { user_id: 'pat', permissions: { can_chat: false } } });
      await p.pat.nextWhere(ofType('permission-updated', (x) => x.user_id === 'pat'));
      p.hana.send({ type: 'participant-update', payload: { action: 'remove', user_id: 'vic', reason: 'spam' } });
      await p.vic.waitClose();
      p.rae.send({ type: 'hand-raise', payload: { raised: true } });
      await p.hana.nextWhere(ofType('hand-raise-queue', (x) => x.queue.length === 1));
      // SIGTERM mid-meeting: everyone is still connected.
    } finally {
      h.closeAllClients();
      await srv.stopAndAssert();
    }

    srv = await h.startServer({ dataDir, args });
    try {
      const hana = await enter(srv, room, roleTok(srv, 'hana', 'host', room), 'hana');
      assert.strictEqual(hana.state.payload.self.role, 'host');
      // The hand queue: rae's hand is back once rae is.
      const rae = await enter(srv, room, roleTok(srv, 'rae', 'participant', room), 'rae');
      await hana.nextWhere(ofType('hand-raise-queue', (x) => x.queue.length === 1), 3000, 'the hand comes back');
      const q = await h.api(srv, 'GET', `/webrtc/rooms/${room}/hand-raise/queue`, roleTok(srv, 'hana', 'host', room));
      assert.strictEqual(q.status, 200, q.text);
      assert.deepStrictEqual(q.json.queue.map((x) => [x.user_id, x.position]), [['rae', 1]], q.text);
      assert.strictEqual(rae.state.payload.self.role, 'participant');

      // The demoted moderator, with its old moderator token: a viewer.
      const modTok = roleTok(srv, 'mod', 'moderator', room);
      const mod = await enter(srv, room, modTok, 'mod');
      assert.strictEqual(mod.state.payload.self.role, 'viewer', 'the demotion survived the restart');
      mod.send({ type: 'participant-update', id: 'rm', payload: { action: 'remove', user_id: 'rae' } });
      assertWsError(await mod.nextWhere(ofType('error')), 'PERMISSION_DENIED', 'rm');
      await mod.end();
      await h.delay(50);
      assertRestError(await h.api(srv, 'POST', `/webrtc/rooms/${room}/participants/rae/remove`, modTok, {}),
        403, 'PERMISSION_DENIED', 'the demoted moderator over REST');

      // The participant whose can_chat was revoked still cannot chat.
      const pat = await enter(srv, room, roleTok(srv, 'pat', 'participant', room), 'pat');
      assert.strictEqual(pat.state.payload.self.permissions.can_chat, false, 'can_chat stays revoked');
      pat.send({ type: 'chat-message', id: 'c1', payload: { text: 'hi' } });
      assertWsError(await pat.nextWhere(ofType('error')), 'PERMISSION_DENIED', 'c1');

      // The banned user is refused.
      const vicTok = roleTok(srv, 'vic', 'participant', room);
      await h.expectRefused(srv, room, vicTok, 403, 'USER_BANNED');
      assertRestError(await h.api(srv, 'GET', `/webrtc/rooms/${room}/participants`, vicTok), 403, 'USER_BANNED');

      // DELETE forgets the policy, as it forgets the settings.
      const del = await h.api(srv, 'DELETE', `/webrtc/rooms/${room}`, f.adminTok(srv));
      assert.ok(del.status === 200 || del.status === 204, del.text);
      h.closeAllClients();
    } finally {
      h.closeAllClients();
      await srv.stopAndAssert();
    }

    srv = await h.startServer({ dataDir, args });
    try {
      const mod = await enter(srv, room, roleTok(srv, 'mod', 'moderator', room), 'mod');
      assert.strictEqual(mod.state.payload.self.role, 'host', 'first in a fresh room, by its token');
      const vic = await enter(srv, room, roleTok(srv, 'vic', 'participant', room), 'vic');
      assert.strictEqual(vic.state.payload.self.role, 'participant', 'the ban went with the room');
      const pat = await enter(srv, room, roleTok(srv, 'pat', 'participant', room), 'pat');
      assert.strictEqual(pat.state.payload.self.permissions.can_chat, true, 'the override went with the room');
      const q = await h.api(srv, 'GET', `/webrtc/rooms/${room}/hand-raise/queue`, roleTok(srv, 'pat', 'participant', room));
      assert.deepStrictEqual(q.json.queue, [], 'no hand from the deleted room');
    } finally {
      h.closeAllClients();
      await srv.stopAndAssert();
    }
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

test('restart (SQLite): in-room roles, permission overrides, bans and the hand queue come back; DELETE forgets them', async () => {
  await restartRestores(RATES_OFF);
});

test('restart (PostgreSQL): in-room roles, permission overrides, bans and the hand queue come back; DELETE forgets them', { skip: !PG_PORT && 'no PostgreSQL cluster (run through scripts/test.sh)' }, async () => {
  const url = pgDatabase(`huddle_restore_${process.pid}_${Date.now() % 100000}`);
  await restartRestores(RATES_OFF.concat(['--database-url', url]));
});

// Retention (--retention-days) and what restores a room: a room whose last
// session ended before the cut-off loses its saved settings and policy with
// its chat; a room with a session since keeps them, however old they are.
// The rows are aged with the database's own client (sqlite3 / psql).
async function retentionRetires(args, age) {
  const dataDir = h.freshDataDir();
  const ban = async (srv, room) => {
    const p = await people(srv, room, [['hana', 'host'], ['vic', 'participant']]);
    const r = await f.rest(srv, 'POST', `/webrtc/rooms/${room}/settings`, { token: p.hana.token, json: { mute_on_join: true } });
    assert.strictEqual(r.status, 200, r.text);
    p.hana.send({ type: 'participant-update', payload: { action: 'remove', user_id: 'vic', reason: 'spam' } });
    await p.vic.waitClose();
    await p.hana.end();
  };
  try {
    let srv = await h.startServer({ dataDir, args });
    try {
      await ban(srv, 'oldr');
      await ban(srv, 'newr');
    } finally {
      h.closeAllClients();
      await srv.stopAndAssert();
    }
    const day3 = 3 * 86400000;
    age(dataDir, `UPDATE room_settings SET updated_at = updated_at - ${day3};` +
      ` UPDATE room_policy SET updated_at = updated_at - ${day3};` +
      ` UPDATE room_sessions SET started_at = started_at - ${day3}, ended_at = ended_at - ${day3} WHERE room_id = 'oldr';`);
    srv = await h.startServer({ dataDir, args: args.concat(['--retention-days', '1']) });
    try {
      await srv.waitForLog(/room_retired room=oldr/, 8000);
      // In this process: oldr comes back empty-handed, newr (a session
      // within the period) as it was.
      const vic = await enter(srv, 'oldr', roleTok(srv, 'vic', 'participant', 'oldr'), 'vic');
      assert.strictEqual(vic.state.payload.settings.mute_on_join, false, 'the settings went with the room');
      await vic.end();
      await h.expectRefused(srv, 'newr', roleTok(srv, 'vic', 'participant', 'newr'), 403, 'USER_BANNED');
      assert.ok(!srv.stderr.includes('room_retired room=newr'), 'newr kept');
    } finally {
      h.closeAllClients();
      await srv.stopAndAssert();
    }
    srv = await h.startServer({ dataDir, args });
    try {
      const vic = await enter(srv, 'oldr', roleTok(srv, 'vic', 'participant', 'oldr'), 'vic');
      assert.strictEqual(vic.state.payload.settings.mute_on_join, false, 'and they are gone from the database');
      await vic.end();
      await h.expectRefused(srv, 'newr', roleTok(srv, 'vic', 'participant', 'newr'), 403, 'USER_BANNED');
    } finally {
      h.closeAllClients();
      await srv.stopAndAssert();
    }
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

const HAVE_SQLITE3 = (() => { try { execSync('sqlite3 -version', { stdio: 'ignore' }); return true; } catch { return false; } })();

test('retention (SQLite): a room ended before the period loses its settings and bans; one with a session since keeps them', { skip: !HAVE_SQLITE3 && 'no sqlite3 client' }, async () => {
  await retentionRetires(RATES_OFF, (dataDir, sql) => execSync(`sqlite3 ${dataDir}/huddle.db "${sql}"`, { stdio: 'ignore' }));
});

test('retention (PostgreSQL): the same', { skip: !PG_PORT && 'no PostgreSQL cluster (run through scripts/test.sh)' }, async () => {
  const db = `huddle_retire_${process.pid}_${Date.now() % 100000}`;
  const url = pgDatabase(db);
  await retentionRetires(RATES_OFF.concat(['--database-url', url]),
    (dataDir, sql) => execSync(`psql -q -h 127.0.0.1 -p ${PG_PORT} -U huddle -d ${db} -c "${sql}"`, { stdio: 'ignore' }));
});

// A ban comes back with the room when it opens; the join that would open it
// (the banned user first in, after a restart) is refused already.
async function banHoldsForTheFirstJoin(args) {
  const dataDir = h.freshDataDir();
  try {
    let srv = await h.startServer({ dataDir, args });
    try {
      const p = await people(srv, 'bfirst', [['hana', 'host'], ['vic', 'participant']]);
      p.hana.send({ type: 'participant-update', payload: { action: 'remove', user_id: 'vic', reason: 'spam' } });
      await p.vic.waitClose();
    } finally {
      h.closeAllClients();
      await srv.stopAndAssert();
    }
    srv = await h.startServer({ dataDir, args });
    try {
      await h.expectRefused(srv, 'bfirst', roleTok(srv, 'vic', 'participant', 'bfirst'), 403, 'USER_BANNED');
      const hana = await enter(srv, 'bfirst', roleTok(srv, 'hana', 'host', 'bfirst'), 'hana');
      assert.strictEqual(hana.state.payload.participants.length, 1, 'vic did not get in');
    } finally {
      h.closeAllClients();
      await srv.stopAndAssert();
    }
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

test('restart (SQLite): a banned user is refused even as the first to enter the room again', async () => {
  await banHoldsForTheFirstJoin(RATES_OFF);
});

test('restart (PostgreSQL): a banned user is refused even as the first to enter the room again', { skip: !PG_PORT && 'no PostgreSQL cluster (run through scripts/test.sh)' }, async () => {
  await banHoldsForTheFirstJoin(RATES_OFF.concat(['--database-url', pgDatabase(`huddle_bfirst_${process.pid}_${Date.now() % 100000}`)]));
});

// The indirect paths of the same grants: a role and an override set over
// REST, and a role given inside a breakout room (kept at the family's main
// room) come back after a restart like the WebSocket ones.
async function indirectGrantsRestore(args) {
  const dataDir = h.freshDataDir();
  const room = 'ind';
  try {
    let srv = await h.startServer({ dataDir, args });
    try {
      const p = await people(srv, room, [['hana', 'host'], ['pat', 'participant'], ['bea', 'participant'], ['mod', 'participant']]);
      let r = await h.api(srv, 'POST', `/webrtc/rooms/${room}/roles/pat`, p.hana.token, { role: 'viewer' });
      assert.strictEqual(r.status, 200, r.text);
      r = await h.api(srv, 'POST', `/webrtc/rooms/${room}/permissions/bea`, p.hana.token, { permissions: { can_chat: false } });
      assert.strictEqual(r.status, 200, r.text);
      r = await h.api(srv, 'POST', `/webrtc/rooms/${room}/breakout-rooms`, p.hana.token, { name: 'B' });
      assert.strictEqual(r.status, 201, r.text);
      const bid = r.json.breakout_rooms[0].breakout_room_id;
      r = await h.api(srv, 'POST', `/webrtc/rooms/${room}/breakout-rooms/${bid}/assign/mod`, p.hana.token, {});
      assert.strictEqual(r.status, 200, r.text);
      const move = await p.mod.nextWhere(ofType('breakout-room-assign', (x) => x.grant !== undefined));
      const inB = await h.connect(srv, bid, null, { via: 'none', query: `grant=${move.payload.grant}` });
      assert.strictEqual((await inB.next()).type, 'room-state');
      r = await f.rest(srv, 'POST', `/webrtc/rooms/${bid}/roles/mod`, { token: f.adminTok(srv), json: { role: 'moderator' } });
      assert.strictEqual(r.status, 200, r.text);
      await inB.nextWhere(ofType('role-updated', (x) => x.user_id === 'mod' && x.role === 'moderator'));
    } finally {
      h.closeAllClients();
      await srv.stopAndAssert();
    }
    srv = await h.startServer({ dataDir, args });
    try {
      await enter(srv, room, roleTok(srv, 'hana', 'host', room), 'hana');
      const pat = await enter(srv, room, roleTok(srv, 'pat', 'participant', room), 'pat');
      assert.strictEqual(pat.state.payload.self.role, 'viewer', 'the role set over REST');
      const bea = await enter(srv, room, roleTok(srv, 'bea', 'participant', room), 'bea');
      assert.strictEqual(bea.state.payload.self.permissions.can_chat, false, 'the override set over REST');
      const mod = await enter(srv, room, roleTok(srv, 'mod', 'participant', room), 'mod');
      assert.strictEqual(mod.state.payload.self.role, 'moderator', 'the role given in the breakout room');
    } finally {
      h.closeAllClients();
      await srv.stopAndAssert();
    }
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

test('restart (SQLite): roles and overrides given over REST and inside a breakout room come back too', async () => {
  await indirectGrantsRestore(RATES_OFF);
});

test('restart (PostgreSQL): roles and overrides given over REST and inside a breakout room come back too', { skip: !PG_PORT && 'no PostgreSQL cluster (run through scripts/test.sh)' }, async () => {
  await indirectGrantsRestore(RATES_OFF.concat(['--database-url', pgDatabase(`huddle_ind_${process.pid}_${Date.now() % 100000}`)]));
});

// The waiting room's revoke: a user turned away (over REST) stays turned
// away from the room's REST reads after a restart (the rejection is part of
// the stored policy, like a ban).
async function rejectionRestores(args) {
  const dataDir = h.freshDataDir();
  const room = 'wrj';
  try {
    let srv = await h.startServer({ dataDir, args });
    try {
      const p = await people(srv, room, [['hana', 'host']]);
      let r = await h.api(srv, 'POST', `/webrtc/rooms/${room}/settings`, p.hana.token, { waiting_room: true });
      assert.strictEqual(r.status, 200, r.text);
      const w = await h.connect(srv, room, roleTok(srv, 'wally', 'participant', room));
      assert.strictEqual((await w.next()).type, 'waiting-room-join');
      r = await h.api(srv, 'POST', `/webrtc/rooms/${room}/waiting-room/wally/reject`, p.hana.token, { reason: 'no' });
      assert.strictEqual(r.status, 200, r.text);
      await w.waitClose();
    } finally {
      h.closeAllClients();
      await srv.stopAndAssert();
    }
    srv = await h.startServer({ dataDir, args });
    try {
      await enter(srv, room, roleTok(srv, 'hana', 'host', room), 'hana');
      const r = await h.api(srv, 'GET', `/webrtc/rooms/${room}/participants`, roleTok(srv, 'wally', 'participant', room));
      h.assertApiError(r, 403, 'PERMISSION_DENIED');
    } finally {
      h.closeAllClients();
      await srv.stopAndAssert();
    }
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

test('restart (SQLite): a rejection from the waiting room comes back', async () => {
  await rejectionRestores(RATES_OFF);
});

test('restart (PostgreSQL): a rejection from the waiting room comes back', { skip: !PG_PORT && 'no PostgreSQL cluster (run through scripts/test.sh)' }, async () => {
  await rejectionRestores(RATES_OFF.concat(['--database-url', pgDatabase(`huddle_wrj_${process.pid}_${Date.now() % 100000}`)]));
});

// The first join after a restart opens the room (and restores it): the
// demoted moderator coming back first, with its old moderator token, is
// what the room made it, not what its token says (found in review: the
// room's stored changes were applied only once the room was open).
async function demotedFirstBack(args) {
  const dataDir = h.freshDataDir();
  const room = 'rfirst';
  try {
    let srv = await h.startServer({ dataDir, args });
    try {
      const p = await people(srv, room, [['hana', 'host'], ['mod', 'moderator']]);
      p.hana.send({ type: 'role-updated', payload: { user_id: 'mod', role: 'viewer' } });
      await p.mod.nextWhere(ofType('role-updated', (x) => x.user_id === 'mod' && x.role === 'viewer'));
    } finally {
      h.closeAllClients();
      await srv.stopAndAssert();
    }
    srv = await h.startServer({ dataDir, args });
    try {
      const mod = await enter(srv, room, roleTok(srv, 'mod', 'moderator', room), 'mod');
      assert.notStrictEqual(mod.state.payload.self.role, 'moderator', 'the demotion holds for the first one back');
      assert.strictEqual(mod.state.payload.self.permissions.can_moderate, false, JSON.stringify(mod.state.payload.self));
    } finally {
      h.closeAllClients();
      await srv.stopAndAssert();
    }
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

test('restart (SQLite): a demoted moderator first back in the room is not a moderator', async () => {
  await demotedFirstBack(RATES_OFF);
});

test('restart (PostgreSQL): a demoted moderator first back in the room is not a moderator', { skip: !PG_PORT && 'no PostgreSQL cluster (run through scripts/test.sh)' }, async () => {
  await demotedFirstBack(RATES_OFF.concat(['--database-url', pgDatabase(`huddle_rfirst_${process.pid}_${Date.now() % 100000}`)]));
});
