'use strict';
// Issue 10, erasure of one user (POST /webrtc/admin/users/{id}/erase):
// after it, nothing huddle serves shows the user's chat text or display
// name, nor its id outside the records the protocol keeps (the tombstones'
// `from`, the server's user_export/user_erase audit entries): not the chat
// history, not a resume replay, not room-state, not the room's audit and
// analytics lists (live, from memory), not the export; and a user in a
// room when it is erased is closed with 4007. SQLite and PostgreSQL (the
// throwaway cluster scripts/with-postgres.sh starts).

const test = require('node:test');
const assert = require('node:assert');
const { execSync } = require('node:child_process');
const h = require('./helpers');
const f = require('./feature_helpers');
const rh = require('./resume_helpers');

const { RATES_OFF, roleTok, people, ofType } = f;
const PG_PORT = process.env.HUDDLE_TEST_PG_PORT;

function pgDatabase(name) {
  execSync(`psql -q -h 127.0.0.1 -p ${PG_PORT} -U huddle -d postgres -c 'CREATE DATABASE ${name}'`, { stdio: 'ignore' });
  return `postgres://huddle@127.0.0.1:${PG_PORT}/${name}`;
}

const SECRET_TEXT = 'dora secret words';
const SECRET_NAME = 'Dora Hidden';

/** Fails if text shows dora's chat text, display name or (unless allowed) id. */
function assertClean(text, what, allowId = false) {
  assert.ok(!text.includes(SECRET_TEXT), `${what} shows the erased chat text: ${text.slice(0, 600)}`);
  assert.ok(!text.includes(SECRET_NAME), `${what} shows the erased display name: ${text.slice(0, 600)}`);
  if (!allowId) assert.ok(!text.includes('"dora"'), `${what} names dora: ${text.slice(0, 600)}`);
}

async function eraseClearsEverything(args) {
  const room = 'erz';
  await h.withServer({ args: RATES_OFF.concat(args) }, async (srv) => {
    const p = await people(srv, room, [['hana', 'host'], ['bob', 'participant'],
      ['dora', 'participant', { name: SECRET_NAME }]]);
    // bob drops (grace period) and will resume: his replay is the room log.
    const last = rh.lastSeq(p.bob);
    const rt = p.bob.state.payload.self.resume_token;
    await rh.cut(p.bob);
    await p.hana.nextWhere((m) => rh.isStatusOf(m, 'bob'), 3000, 'bob reconnecting');
    p.dora.send({ type: 'chat-message', id: 'd1', payload: { text: SECRET_TEXT } });
    await p.hana.nextWhere(ofType('chat-message', (x) => x.text === SECRET_TEXT));
    p.hana.send({ type: 'chat-message', id: 'h1', payload: { text: 'hana stays' } });
    await p.hana.nextWhere((m) => m.type === 'chat-message' && m.ref === 'h1');
    p.dora.send({ type: 'hand-raise', payload: { raised: true } });
    await p.hana.nextWhere(ofType('hand-raise-queue', (x) => x.queue.length === 1));
    // Audited about dora: a mute by the host, and a role change.
    p.hana.send({ type: 'media-control', payload: { kind: 'audio', enabled: false, user_id: 'dora' } });
    await p.dora.nextWhere(ofType('media-control', (x) => x.user_id === 'dora' && x.by === 'hana'));
    p.hana.send({ type: 'role-updated', payload: { user_id: 'dora', role: 'viewer' } });
    await p.dora.nextWhere(ofType('role-updated', (x) => x.user_id === 'dora' && x.role === 'viewer'));
    const admin = f.adminTok(srv);
    const hanaTok = roleTok(srv, 'hana', 'host', room);
    let r = await f.rest(srv, 'GET', `/webrtc/rooms/${room}/audit`, { token: hanaTok });
    assert.ok(r.text.includes('"dora"'), `the audit names dora before: ${r.text}`);

    r = await f.rest(srv, 'POST', '/webrtc/admin/users/dora/erase', { token: admin });
    assert.strictEqual(r.status, 200, r.text);
    // dora, in the room, is closed with 4007; the others see her leave.
    const closed = await p.dora.waitClose();
    assert.strictEqual(closed.code, 4007, JSON.stringify(closed));
    await p.hana.nextWhere(ofType('user-left', (x) => x.user_id === 'dora' && x.reason === 'erased'));

    // Resume replay and room-state.
    const bobTok = roleTok(srv, 'bob', 'participant', room);
    const { before, state } = await rh.joinResume(srv, room, bobTok, rt, last, { user: 'bob' });
    assert.strictEqual(state.payload.resumed, true, 'bob resumed');
    const tomb = before.find((m) => m.type === 'chat-message' && m.from === 'dora');
    assert.ok(tomb, `the replay keeps dora's message as a tombstone: ${rh.brief(before)}`);
    assert.strictEqual(tomb.payload.text, '[message removed]');
    assert.strictEqual(tomb.payload.erased, true);
    assert.ok(before.some((m) => m.type === 'chat-message' && m.payload.text === 'hana stays'), rh.brief(before));
    // The tombstone keeps from: "dora" (as the history does); nothing else names her.
    assertClean(JSON.stringify(before.filter((m) => m !== tomb)), 'the resume replay');
    assertClean(JSON.stringify(tomb), 'the tombstone', true);
    assertClean(JSON.stringify(state), 'room-state');

    // REST: history, the room's audit and analytics (live, from memory), the export.
    r = await f.rest(srv, 'GET', `/webrtc/rooms/${room}/chat`, { token: admin });
    assert.strictEqual(r.status, 200, r.text);
    assertClean(r.text, 'the chat history', true);
    r = await f.rest(srv, 'GET', `/webrtc/rooms/${room}/audit`, { token: hanaTok });
    assert.strictEqual(r.status, 200, r.text);
    assert.ok(r.json.entries.some((e) => e.action === 'mute' && e.target === 'anonymous'), r.text);
    assertClean(r.text, 'the room audit');
    r = await f.rest(srv, 'GET', `/webrtc/rooms/${room}/analytics`, { token: hanaTok });
    assert.strictEqual(r.status, 200, r.text);
    assertClean(r.text, 'the room analytics');
    r = await f.rest(srv, 'GET', '/webrtc/admin/users/dora/export', { token: admin });
    assert.strictEqual(r.status, 200, r.text);
    assertClean(r.text, 'the export', true);
    assert.deepStrictEqual(r.json.room_policy, [], r.text);
    assert.deepStrictEqual(r.json.analytics_events, [], r.text);
    assert.deepStrictEqual(r.json.participant_sessions, [], r.text);
    assert.ok(r.json.audit.every((a) => a.room_id === ''), `only the server's own entries: ${JSON.stringify(r.json.audit)}`);

    // dora may come back (her token is still valid): a newcomer, no role kept.
    const d2 = await h.connect(srv, room, roleTok(srv, 'dora', 'participant', room));
    const st = await d2.next();
    assert.strictEqual(st.type, 'room-state', JSON.stringify(st));
    assert.strictEqual(st.payload.self.role, 'participant', 'the in-room demotion went with the erase');
  });
}

test('erase (SQLite): the user is closed with 4007; replay, room-state, history, audit, analytics and export no longer show it', async () => {
  await eraseClearsEverything([]);
});

test('erase (PostgreSQL): the same', { skip: !PG_PORT && 'no PostgreSQL cluster (run through scripts/test.sh)' }, async () => {
  await eraseClearsEverything(['--database-url', pgDatabase(`huddle_erase_${process.pid}_${Date.now() % 100000}`)]);
});

test('erase: a resume replay that spans the erased user\'s join shows neither the join nor its name', async () => {
  // The room log keeps a user-joined as compact data and renders it at a
  // resume (docs/internals/roomlog.md): the erase must judge that entry too.
  const room = 'erzj';
  await h.withServer({ args: RATES_OFF }, async (srv) => {
    const p = await people(srv, room, [['hana', 'host'], ['bob', 'participant']]);
    const last = rh.lastSeq(p.bob);
    const rt = p.bob.state.payload.self.resume_token;
    await rh.cut(p.bob);
    await p.hana.nextWhere((m) => rh.isStatusOf(m, 'bob'), 3000, 'bob reconnecting');
    const more = await people(srv, room, [['dora', 'participant', { name: SECRET_NAME }], ['carl', 'participant', { name: 'Carl Kept' }]]);
    await p.hana.nextWhere(ofType('user-joined', (x) => x.user_id === 'carl'));
    const r = await f.rest(srv, 'POST', '/webrtc/admin/users/dora/erase', { token: f.adminTok(srv) });
    assert.strictEqual(r.status, 200, r.text);
    await more.dora.waitClose();
    const { before } = await rh.joinResume(srv, room, roleTok(srv, 'bob', 'participant', room), rt, last, { user: 'bob' });
    assert.ok(before.some((m) => m.type === 'user-joined' && m.payload.user_id === 'carl' && m.payload.name === 'Carl Kept'),
      `carl's join is replayed: ${rh.brief(before)}`);
    assertClean(JSON.stringify(before), 'the resume replay');
  });
});

// The erase's completion revisits the room logs (and what waits behind a
// chat being stored): only what was logged or held when the erase began. The
// store is held with a table lock from psql, so that the erased user is
// back and talking before the erase commits; `relaxed` logs its new chat at
// once, `durable` holds it behind the erase.
async function comesStraightBack(durability) {
  const { spawn } = require('node:child_process');
  const room = 'back';
  const db = `huddle_back_${durability}_${process.pid}_${Date.now() % 100000}`;
  await h.withServer({ args: RATES_OFF.concat(['--database-url', pgDatabase(db), '--chat-durability', durability]) }, async (srv) => {
    const p = await people(srv, room, [['hana', 'host'], ['bob', 'participant'], ['dora', 'participant']]);
    for (let i = 0; i < 20; i++) p.dora.send({ type: 'chat-message', id: `o${i}`, payload: { text: `${SECRET_TEXT} ${i}` } });
    await p.dora.nextWhere((m) => m.ref === 'o19', 5000, 'the last old message');
    const old19 = await p.bob.nextWhere((m) => m.type === 'chat-message' && m.payload.text === `${SECRET_TEXT} 19`);
    /** dora's chat messages c received after her old ones (tombstones included). */
    const newAt = (c) => c.all.filter((m) => m.type === 'chat-message' && m.from === 'dora' && m.seq > old19.seq);
    // bob drops (grace period) and resumes after it all: his replay is the room log.
    const last = rh.lastSeq(p.bob);
    const rt = p.bob.state.payload.self.resume_token;
    await rh.cut(p.bob);
    await p.hana.nextWhere((m) => rh.isStatusOf(m, 'bob'), 3000, 'bob reconnecting');
    const admin = f.adminTok(srv);
    const lock = spawn('psql', ['-q', '-h', '127.0.0.1', '-p', PG_PORT, '-U', 'huddle', '-d', db], { stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    lock.stdout.on('data', (d) => { out += d; });
    try {
      lock.stdin.write("BEGIN; LOCK TABLE chat_messages IN EXCLUSIVE MODE; SELECT 'locked';\n");
      await h.waitFor(async () => out.includes('locked'), 5000, 20, 'the lock');
      const erased = f.rest(srv, 'POST', '/webrtc/admin/users/dora/erase', { token: admin, timeoutMs: 15000 });
      await p.dora.waitClose();
      const d2 = await h.connect(srv, room, roleTok(srv, 'dora', 'participant', room));
      assert.strictEqual((await d2.next()).type, 'room-state');
      for (let i = 0; i < 5; i++) d2.send({ type: 'chat-message', id: `n${i}`, payload: { text: `dora is back ${i}` } });
      if (durability === 'relaxed') await h.waitFor(() => newAt(p.hana).length === 5, 5000, 20, 'the new messages at hana before the commit');
      else await h.delay(300);
      lock.stdin.write('COMMIT;\n');
      assert.strictEqual((await erased).status, 200);
    } finally {
      lock.stdin.end();
      await new Promise((resolve) => { if (lock.exitCode !== null) resolve(); else lock.on('exit', resolve); });
    }
    // Live: hana heard the new messages as they were sent, not as tombstones.
    const live = await h.waitFor(() => (newAt(p.hana).length === 5 ? newAt(p.hana) : null), 5000, 20, 'the new messages at hana');
    assert.deepStrictEqual(live.map((m) => m.payload.text), [0, 1, 2, 3, 4].map((i) => `dora is back ${i}`));
    // The stored history: the old ones tombstones, the new ones kept.
    const r = await h.waitFor(async () => {
      const x = await f.rest(srv, 'GET', `/webrtc/rooms/${room}/chat?limit=100`, { token: admin });
      return x.json && x.json.messages.length === 25 ? x : null;
    }, 5000, 50, 'all 25 messages in the history');
    const texts = r.json.messages.map((m) => m.text);
    assert.deepStrictEqual(texts.slice(0, 20), Array(20).fill('[message removed]'), texts.join(' | '));
    assert.deepStrictEqual(texts.slice(20), [0, 1, 2, 3, 4].map((i) => `dora is back ${i}`));
    assertClean(r.text, 'the history', true);
    // The resume replay (the room log, revisited when the erase completed) says the same.
    const { before, state } = await rh.joinResume(srv, room, roleTok(srv, 'bob', 'participant', room), rt, last, { user: 'bob' });
    assert.strictEqual(state.payload.resumed, true, 'bob resumed');
    const chat = before.filter((m) => m.type === 'chat-message').map((m) => m.payload.text);
    assert.deepStrictEqual(chat, [0, 1, 2, 3, 4].map((i) => `dora is back ${i}`), rh.brief(before));
    assert.ok(before.some((m) => m.type === 'user-joined' && m.payload.user_id === 'dora'), `dora's return is replayed: ${rh.brief(before)}`);
    assert.ok(state.payload.participants.some((x) => x.user_id === 'dora'), 'dora is in the room');
    // The room's analytics (live, from memory) as the store has them: her
    // new join and chat are hers, the old ones anonymous.
    const hanaTok = roleTok(srv, 'hana', 'host', room);
    const an = await f.rest(srv, 'GET', `/webrtc/rooms/${room}/analytics`, { token: hanaTok });
    assert.strictEqual(an.status, 200, an.text);
    const evs = an.json.events.filter((e) => e.type === 'join' || e.type === 'chat');
    const doraJoins = evs.filter((e) => e.type === 'join' && e.user_id === 'dora');
    assert.strictEqual(doraJoins.length, 1, `her new join is hers: ${an.text}`);
    assert.strictEqual(evs.filter((e) => e.type === 'chat' && e.user_id === 'dora').length, 5, `her 5 new messages are hers: ${an.text}`);
    assert.strictEqual(evs.filter((e) => e.type === 'chat' && e.user_id === 'anonymous').length, 20, `her 20 old ones are anonymous: ${an.text}`);
  });
}

for (const d of ['relaxed', 'durable']) {
  test(`erase (${d} chat): what the user says after coming straight back, before the erase commits, is kept`, { skip: !PG_PORT && 'no PostgreSQL cluster (run through scripts/test.sh)' }, () => comesStraightBack(d));
}
