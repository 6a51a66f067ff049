'use strict';
// Persistence (issue 10) against the real binary and real databases: chat
// history over REST (pages, cursors, search, privacy, who may read), restart
// (history, message ids, room settings), kill -9 under chat load, a corrupt
// database, admin export and erasure, and PostgreSQL stopped mid-meeting.
// The PostgreSQL cases use the throwaway cluster scripts/with-postgres.sh
// starts (scripts/test.sh always does).

const test = require('node:test');
const assert = require('node:assert');
const { execSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const h = require('./helpers');
const f = require('./feature_helpers');

const PG = process.env.HUDDLE_TEST_PG_PORT ? {
  port: process.env.HUDDLE_TEST_PG_PORT,
  ctl: process.env.HUDDLE_TEST_PG_CTL,
  as: process.env.HUDDLE_TEST_PG_AS,
} : null;

function pgRun(cmd) {
  execSync(`${PG.as} "${cmd.replace(/"/g, '\\"')}"`, { stdio: 'ignore' });
}

function pgDatabase(name) {
  execSync(`psql -q -h 127.0.0.1 -p ${PG.port} -U huddle -d postgres -c 'CREATE DATABASE ${name}'`, { stdio: 'ignore' });
  return `postgres://huddle@127.0.0.1:${PG.port}/${name}`;
}

function historyPath(room, q = {}) {
  const s = new URLSearchParams(q).toString();
  return `/webrtc/rooms/${room}/chat${s ? `?${s}` : ''}`;
}

async function historyAll(srv, room, token) {
  // Pages backwards from the newest (the protocol's default page).
  let out = [];
  let before = null;
  for (;;) {
    const q = { limit: 200 };
    if (before) q.before = before;
    const r = await f.rest(srv, 'GET', historyPath(room, q), { token });
    assert.strictEqual(r.status, 200, r.text);
    out = r.json.messages.concat(out);
    if (r.json.messages.length === 0 || !r.json.has_more) break;
    before = r.json.messages[0].message_id;
  }
  return out;
}

async function say(c, text, ref) {
  c.send({ type: 'chat-message', id: ref, payload: { text } });
  return c.nextWhere((m) => m.type === 'chat-message' && m.ref === ref, 3000, `echo of ${ref}`);
}

test('chat history: pages and cursors, full-text search, private messages only for their parties', async () => {
  await h.withServer({}, async (srv) => {
    const { alice, bob, carol } = await f.joinAll(srv, 'hist', [
      ['alice', { name: 'Alice', room: 'hist' }], ['bob', { room: 'hist' }], ['carol', { room: 'hist' }]]);
    const ids = [];
    for (let i = 1; i <= 12; i++) ids.push((await say(alice, `public note ${i}`, `p${i}`)).payload.message_id);
    alice.send({ type: 'chat-message', id: 'priv', to: 'bob', payload: { text: 'budget secret for bob' } });
    await alice.nextWhere((m) => m.ref === 'priv');
    await bob.nextWhere((m) => m.type === 'chat-message' && m.payload.text === 'budget secret for bob');
    await say(carol, 'the budget meeting moved', 'c1');
    const tBob = f.tok(srv, { sub: 'bob', room: 'hist' });
    const tCarol = f.tok(srv, { sub: 'carol', room: 'hist' });

    let r = await f.rest(srv, 'GET', historyPath('hist', { limit: 5 }), { token: tCarol });
    assert.strictEqual(r.status, 200, r.text);
    assert.deepStrictEqual(Object.keys(r.json).sort(), ['has_more', 'messages']);
    assert.strictEqual(r.json.messages.length, 5);
    assert.strictEqual(r.json.has_more, true);
    assert.strictEqual(r.json.messages[4].text, 'the budget meeting moved', 'newest last');
    assert.ok(!r.json.messages.some((m) => m.private), 'carol does not see the private message');
    const m0 = r.json.messages[0];
    for (const k of ['message_id', 'from', 'text', 'ts', 'seq']) assert.ok(k in m0, `${k} in ${JSON.stringify(m0)}`);
    assert.strictEqual(m0.message_id, `m${m0.seq}`);

    r = await f.rest(srv, 'GET', historyPath('hist', { limit: 5, before: ids[5] }), { token: tCarol });
    assert.deepStrictEqual(r.json.messages.map((m) => m.text), [1, 2, 3, 4, 5].map((i) => `public note ${i}`));
    assert.strictEqual(r.json.has_more, false);
    r = await f.rest(srv, 'GET', historyPath('hist', { limit: 3, after: ids[2] }), { token: tCarol });
    assert.deepStrictEqual(r.json.messages.map((m) => m.text), [4, 5, 6].map((i) => `public note ${i}`));
    assert.strictEqual(r.json.has_more, true);

    r = await f.rest(srv, 'GET', historyPath('hist', { q: 'budget' }), { token: tCarol });
    assert.deepStrictEqual(r.json.messages.map((m) => m.text), ['the budget meeting moved']);
    r = await f.rest(srv, 'GET', historyPath('hist', { q: 'budget' }), { token: tBob });
    assert.deepStrictEqual(r.json.messages.map((m) => m.text), ['budget secret for bob', 'the budget meeting moved']);
    assert.strictEqual(r.json.messages[0].to, 'bob');
    r = await f.rest(srv, 'GET', historyPath('hist', { q: 'budget' }), { token: f.adminTok(srv) });
    assert.strictEqual(r.json.messages.length, 2, 'admin tokens see private messages');

    // Who may read: members (in the room, or a token for this room) and admins.
    f.assertRestError(await f.rest(srv, 'GET', historyPath('hist'), { token: f.tok(srv, { sub: 'mallory' }) }),
      403, 'FORBIDDEN', 'a token for no room, not in the room');
    f.assertRestError(await f.rest(srv, 'GET', historyPath('hist'), { token: f.tok(srv, { sub: 'x', room: 'other' }) }),
      403, 'TOKEN_ROOM_MISMATCH');
    f.assertRestError(await f.rest(srv, 'GET', historyPath('hist'), {}), 401, 'UNAUTHORIZED');
    for (const bad of [{ limit: 0 }, { limit: 201 }, { limit: 'x' }, { before: '12' }, { after: 'mx' }]) {
      f.assertRestError(await f.rest(srv, 'GET', historyPath('hist', bad), { token: tBob }), 400, 'BAD_REQUEST', JSON.stringify(bad));
    }
  });
});

test('chat history: pipelined requests are answered in order behind a store read', async () => {
  await h.withServer({}, async (srv) => {
    const alice = await h.join(srv, 'pipe', 'alice', { room: 'pipe' });
    await say(alice, 'one', 'a1');
    const t = f.tok(srv, { sub: 'alice', room: 'pipe' });
    const c = await h.rawConnect(srv);
    const req = (p) => `GET ${p} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${t}\r\n\r\n`;
    await c.write(req(historyPath('pipe')) + req('/webrtc/health') + req(historyPath('pipe', { q: 'one' })));
    const rs = await c.responses(3, 5000);
    c.destroy();
    assert.deepStrictEqual(rs.map((x) => x.status), [200, 200, 200]);
    assert.strictEqual(rs[0].json.messages[0].text, 'one');
    assert.ok('components' in rs[1].json, 'second answer is health');
    assert.strictEqual(rs[2].json.messages.length, 1);
  });
});

test('restart: history survives, message ids continue past the stored ones, room settings come back', async () => {
  const dataDir = h.freshDataDir();
  try {
    let srv = await h.startServer({ dataDir });
    let id1;
    let recId;
    try {
      const host = await h.join(srv, 'keep', 'hana', { role: 'host', room: 'keep' });
      id1 = (await say(host, 'before the restart', 'k1')).payload.message_id;
      const r = await f.rest(srv, 'POST', '/webrtc/rooms/keep/settings', {
        token: f.tok(srv, { sub: 'hana', room: 'keep', role: 'host' }), json: { chat_enabled: true, locked: true, mute_on_join: true } });
      assert.strictEqual(r.status, 200, r.text);
      const ht = f.tok(srv, { sub: 'hana', room: 'keep', role: 'host' });
      const rec = await f.rest(srv, 'POST', '/webrtc/rooms/keep/recordings/start', { token: ht });
      assert.strictEqual(rec.status, 201, rec.text);
      recId = rec.json.recording_id || (rec.json.recording && rec.json.recording.recording_id);
      assert.ok(recId, rec.text);
      host.send({ type: 'analytics-event', payload: { name: 'before_restart', properties: { a: 1 } } });
      await h.delay(50);
      await host.end();
      h.closeAllClients();
    } finally {
      await srv.stopAndAssert();
    }
    srv = await h.startServer({ dataDir });
    try {
      // Lists and summaries of a room from before the restart come from the store.
      const admin = f.adminTok(srv);
      let a = await f.rest(srv, 'GET', '/webrtc/rooms/keep/analytics', { token: admin });
      assert.strictEqual(a.status, 200, a.text);
      const types = a.json.events.map((e) => e.type);
      assert.ok(types.includes('join') && types.includes('custom') && types.includes('leave'), a.text);
      assert.deepStrictEqual(a.json.events.find((e) => e.type === 'custom').data, { a: 1 });
      a = await f.rest(srv, 'GET', '/webrtc/rooms/keep/audit', { token: admin });
      assert.strictEqual(a.status, 200, a.text);
      assert.ok(a.json.entries.some((e) => e.action === 'settings_update' && e.actor === 'hana'), a.text);
      a = await f.rest(srv, 'GET', '/webrtc/rooms/keep/recordings', { token: admin });
      assert.strictEqual(a.status, 200, a.text);
      assert.deepStrictEqual(a.json.recordings.map((x) => [x.recording_id, x.state, x.stopped_by]),
        [[recId, 'stopped', 'server']], 'stopped when the room closed');
      a = await f.rest(srv, 'GET', '/webrtc/rooms/keep/analytics/summary', { token: admin });
      assert.strictEqual(a.status, 200, a.text);
      assert.strictEqual(a.json.live, false);
      assert.strictEqual(a.json.total_sessions, 1);
      assert.strictEqual(a.json.peak_participants, 1);
      assert.strictEqual(a.json.custom_events, 1);
      assert.strictEqual(a.json.recordings, 1);
      assert.ok(a.json.closed_at > 0, a.text);
      f.assertRestError(await f.rest(srv, 'GET', '/webrtc/rooms/never/analytics/summary', { token: admin }),
        404, 'ROOM_NOT_FOUND');
      // Closed room, new process: members and admins read it.
      const t = f.tok(srv, { sub: 'ivan', room: 'keep' });
      let r = await f.rest(srv, 'GET', historyPath('keep'), { token: t });
      assert.strictEqual(r.status, 200, r.text);
      assert.deepStrictEqual(r.json.messages.map((m) => [m.message_id, m.text]), [[id1, 'before the restart']]);
      const host = await h.join(srv, 'keep', 'hana', { role: 'host', room: 'keep' });
      assert.strictEqual(host.state.payload.settings.locked, true, 'settings restored');
      assert.strictEqual(host.state.payload.settings.mute_on_join, true, 'settings restored');
      const id2 = (await say(host, 'after the restart', 'k2')).payload.message_id;
      assert.ok(Number(id2.slice(1)) > Number(id1.slice(1)), `${id2} continues after ${id1}`);
      r = await f.rest(srv, 'GET', historyPath('keep'), { token: t });
      assert.deepStrictEqual(r.json.messages.map((m) => m.text), ['before the restart', 'after the restart']);
    } finally {
      h.closeAllClients();
      await srv.stopAndAssert();
    }
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

async function killUnderChatLoad(t, args) {
  const dataDir = h.freshDataDir();
  try {
    let srv = await h.startServer({ dataDir, logLevel: 'info', args });
    const received = new Map(); // message_id -> message
    const inFlight = new Set(); // texts sent and not acknowledged when the server died
    const orders = [];
    try {
      const { list } = await f.joinAll(srv, 'load', [['u1', { room: 'load' }], ['u2', { room: 'load' }], ['u3', { room: 'load' }]]);
      let n = 0;
      let stop = false;
      const senders = list.map((c) => (async () => {
        while (!stop && c.ws.readyState === 1) {
          const batch = [];
          for (let i = 0; i < 10; i++) {
            const text = `${c.user} says ${++n}`;
            inFlight.add(text);
            c.send({ type: 'chat-message', id: text, payload: { text } });
            batch.push(text);
          }
          await h.delay(2);
        }
      })());
      await h.delay(150 + Math.floor(Math.random() * 600));
      srv.proc.kill('SIGKILL');
      stop = true;
      await srv.exited;
      await Promise.all(senders);
      for (const c of list) {
        const mine = [];
        for (const m of c.all) {
          if (m.type !== 'chat-message') continue;
          received.set(m.payload.message_id, m);
          if (m.ref) inFlight.delete(m.ref);
          mine.push(m.seq);
        }
        orders.push(mine);
      }
      h.closeAllClients();
    } catch (e) {
      try { srv.proc.kill('SIGKILL'); } catch (_) { /* gone */ }
      throw e;
    }
    assert.ok(received.size > 0, 'some chat was delivered before the kill');
    for (const o of orders) {
      for (let i = 1; i < o.length; i++) assert.ok(o[i] > o[i - 1], 'each client saw seq increase');
    }
    srv = await h.startServer({ dataDir, args });
    try {
      const hist = await historyAll(srv, 'load', f.adminTok(srv));
      const byId = new Map(hist.map((m) => [m.message_id, m]));
      for (const [id, m] of received) {
        const s = byId.get(id);
        assert.ok(s, `received ${id} (${m.payload.text}) is in the history`);
        assert.strictEqual(s.text, m.payload.text);
        assert.strictEqual(s.seq, m.seq);
        assert.strictEqual(s.from, m.from);
      }
      for (let i = 1; i < hist.length; i++) assert.ok(hist[i].seq > hist[i - 1].seq, 'history in seq order');
      // Nothing nobody received, except what was in flight at the kill
      // (committed, not yet delivered: its sender never got the ack).
      const extra = hist.filter((m) => !received.has(m.message_id));
      for (const m of extra) assert.ok(inFlight.has(m.text), `${m.message_id} "${m.text}" was neither received nor in flight`);
      t.diagnostic(`kill -9: ${received.size} received, ${hist.length} stored, ${extra.length} in flight at the kill`);
    } finally {
      await srv.stopAndAssert();
    }
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

test('kill -9 under chat load: every message anyone received is in the history, same id, text and order', async (t) => {
  await killUnderChatLoad(t, []);
});

// --store-sync normal: commits do not wait for the disk, but a killed
// process loses nothing the operating system already has.
test('kill -9 under chat load with --store-sync normal: the same guarantee', async (t) => {
  await killUnderChatLoad(t, ['--store-sync', 'normal']);
});

test('a corrupt database file stops the server with a clear error, and is left alone', async () => {
  const dataDir = h.freshDataDir();
  try {
    const file = path.join(dataDir, 'huddle.db');
    fs.writeFileSync(file, Buffer.alloc(8192, 0x5a));
    const r = spawnSync(h.BIN, ['--listen', '127.0.0.1:0', '--data-dir', dataDir, '--jwt-secret', h.SECRET],
      { env: h.childEnv(), encoding: 'utf8', timeout: 10000 });
    assert.notStrictEqual(r.status, 0, 'non-zero exit');
    assert.match(r.stderr, /startup_failed.*huddle\.db/, r.stderr);
    assert.strictEqual(fs.readFileSync(file).length, 8192, 'the file was not replaced');
    assert.ok(fs.readFileSync(file).every((b) => b === 0x5a), 'the file was not written');
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

test('admin export and erasure of one user, both in the audit log', async () => {
  await h.withServer({}, async (srv) => {
    const { dora, eve } = await f.joinAll(srv, 'gdpr', [['dora', { room: 'gdpr' }], ['eve', { room: 'gdpr' }]]);
    await say(dora, 'dora was here', 'd1');
    await say(eve, 'eve too', 'e1');
    await dora.end();
    const admin = f.adminTok(srv);
    f.assertRestError(await f.rest(srv, 'GET', '/webrtc/admin/users/dora/export', { token: f.tok(srv, { sub: 'dora' }) }),
      403, 'FORBIDDEN');
    let r = await f.rest(srv, 'GET', '/webrtc/admin/users/dora/export', { token: admin });
    assert.strictEqual(r.status, 200, r.text);
    assert.deepStrictEqual(r.json.chat_messages.map((m) => m.text), ['dora was here']);
    assert.ok(r.json.participant_sessions.length >= 1, r.text);
    assert.ok(r.json.analytics_events.some((e) => e.type === 'join'), r.text);
    r = await f.rest(srv, 'POST', '/webrtc/admin/users/dora/erase', { token: admin });
    assert.strictEqual(r.status, 200, r.text);
    assert.strictEqual(r.json.erased, true);
    r = await f.rest(srv, 'GET', historyPath('gdpr'), { token: admin });
    const dm = r.json.messages.find((m) => m.from === 'dora');
    assert.strictEqual(dm.text, '[message removed]');
    assert.strictEqual(dm.erased, true);
    assert.strictEqual(r.json.messages.find((m) => m.from === 'eve').text, 'eve too');
    r = await f.rest(srv, 'GET', '/webrtc/admin/users/dora/export', { token: admin });
    assert.strictEqual(r.json.analytics_events.length, 0, 'analytics anonymized');
    const actions = r.json.audit.map((a) => a.action);
    assert.ok(actions.includes('user_export') && actions.includes('user_erase'), JSON.stringify(r.json.audit));
    f.assertRestError(await f.rest(srv, 'POST', '/webrtc/admin/users/bad%20id/erase', { token: admin }), 400, 'BAD_REQUEST');
  });
});

test('admin export and erasure cover the stored room policy: role change and ban exported, erased, not back after a restart', async () => {
  const dataDir = h.freshDataDir();
  const room = 'gdprp';
  const enter = async (srv, user, role) => {
    const c = await h.connect(srv, room, f.roleTok(srv, user, role, room));
    const st = await c.next();
    assert.strictEqual(st.type, 'room-state', `${user}: ${JSON.stringify(st).slice(0, 200)}`);
    return st.payload.self;
  };
  try {
    let srv = await h.startServer({ dataDir });
    try {
      const p = await f.people(srv, room, [['hana', 'host'], ['dora', 'moderator'], ['vic', 'participant']]);
      p.hana.send({ type: 'role-updated', payload: { user_id: 'dora', role: 'viewer' } });
      await p.dora.nextWhere(f.ofType('role-updated', (x) => x.user_id === 'dora' && x.role === 'viewer'));
      p.hana.send({ type: 'participant-update', payload: { action: 'remove', user_id: 'dora', reason: 'test' } });
      await p.dora.waitClose();
      p.hana.send({ type: 'participant-update', payload: { action: 'remove', user_id: 'vic', reason: 'test' } });
      await p.vic.waitClose();
    } finally {
      h.closeAllClients();
      await srv.stopAndAssert();
    }
    srv = await h.startServer({ dataDir });
    try {
      const admin = f.adminTok(srv);
      let r = await f.rest(srv, 'GET', '/webrtc/admin/users/dora/export', { token: admin });
      assert.strictEqual(r.status, 200, r.text);
      assert.strictEqual(r.json.room_policy.length, 1, r.text);
      const part = r.json.room_policy[0];
      assert.strictEqual(part.room_id, room, r.text);
      assert.strictEqual(part.user.role, 'viewer', 'the role change is exported');
      assert.strictEqual(part.banned, true, 'the ban is exported');
      assert.strictEqual(JSON.stringify(part).includes('vic'), false, 'only the user\'s part');
      r = await f.rest(srv, 'POST', '/webrtc/admin/users/dora/erase', { token: admin });
      assert.strictEqual(r.status, 200, r.text);
      r = await f.rest(srv, 'GET', '/webrtc/admin/users/dora/export', { token: admin });
      assert.deepStrictEqual(r.json.room_policy, [], 'the snapshot no longer names dora');
      r = await f.rest(srv, 'GET', '/webrtc/admin/users/vic/export', { token: admin });
      assert.strictEqual(r.json.room_policy[0].banned, true, 'others keep theirs');
      // The room, re-created from the index in this process, has forgotten dora.
      assert.strictEqual((await enter(srv, 'hana', 'host')).role, 'host');
      assert.strictEqual((await enter(srv, 'dora', 'moderator')).role, 'moderator', 'no ban, no demotion');
    } finally {
      h.closeAllClients();
      await srv.stopAndAssert();
    }
    srv = await h.startServer({ dataDir });
    try {
      assert.strictEqual((await enter(srv, 'hana', 'host')).role, 'host');
      assert.strictEqual((await enter(srv, 'dora', 'moderator')).role, 'moderator', 'a restart does not bring it back');
      await h.expectRefused(srv, room, f.roleTok(srv, 'vic', 'participant', room), 403, 'USER_BANNED');
      const r = await f.rest(srv, 'GET', '/webrtc/admin/users/dora/export', { token: f.adminTok(srv) });
      assert.deepStrictEqual(r.json.room_policy, [], r.text);
    } finally {
      h.closeAllClients();
      await srv.stopAndAssert();
    }
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

test('PostgreSQL stopped mid-meeting: rooms keep working, health degraded, chat refused clearly, backlog drains in order', { skip: !PG && 'no PostgreSQL cluster (run through scripts/test.sh)' }, async () => {
  const url = pgDatabase(`huddle_it_${process.pid}_${Date.now() % 100000}`);
  await h.withServer({ args: ['--database-url', url, '--store-queue-max', '40'] }, async (srv) => {
    const { alice, bob } = await f.joinAll(srv, 'pgr', [['alice', { room: 'pgr' }], ['bob', { room: 'pgr' }]]);
    await say(alice, 'stored in postgres', 'a1');
    await bob.next('chat-message');
    let hl = await h.health(srv);
    assert.strictEqual(hl.components.store.backend, 'postgresql');
    assert.strictEqual(hl.status, 'ok');

    pgRun(`${PG.ctl} -m fast -w stop`);
    let up = false;
    try {
      await h.waitFor(async () => (await h.health(srv)).components.store.state === 'down', 8000, 50, 'store down');
      const hr = await h.httpGet(srv, '/webrtc/health');
      assert.strictEqual(hr.status, 200, 'degraded, still serving');
      assert.strictEqual(hr.json.status, 'degraded');
      assert.ok(hr.json.components.store.error, 'the store says why');
      // Durable chat cannot be promised: refused with its ref; nobody gets it.
      alice.send({ type: 'chat-message', id: 'a2', payload: { text: 'while down' } });
      f.assertWsError(await alice.next(), 'STORE_UNAVAILABLE', 'a2');
      // Everything else works; its records wait in the backlog, in order.
      alice.send({ type: 'offer', to: 'bob', payload: { sdp: 'v=0' } });
      assert.strictEqual((await bob.next('offer')).from, 'alice');
      for (let i = 0; i < 5; i++) alice.send({ type: 'analytics-event', payload: { name: `down_${i}`, properties: { i } } });
      await h.waitFor(async () => (await h.health(srv)).components.store.backlog >= 5, 3000, 20, 'backlog');
      await bob.expectNone(100);
      // History cannot be read: a clear 503.
      f.assertRestError(await f.rest(srv, 'GET', historyPath('pgr'), { token: f.adminTok(srv) }), 503, 'STORE_UNAVAILABLE');

      pgRun(`${PG.ctl} -w start`);
      up = true;
      await h.waitFor(async () => {
        const j = await h.health(srv);
        return j.status === 'ok' && j.components.store.backlog === 0;
      }, 10000, 50, 'store back and drained');
      await say(alice, 'after the outage', 'a3');
      const hist = await historyAll(srv, 'pgr', f.adminTok(srv));
      assert.deepStrictEqual(hist.map((m) => m.text), ['stored in postgres', 'after the outage']);
      const ex = await f.rest(srv, 'GET', '/webrtc/admin/users/alice/export', { token: f.adminTok(srv) });
      const custom = ex.json.analytics_events.filter((e) => e.type === 'custom').map((e) => e.name);
      assert.deepStrictEqual(custom, [0, 1, 2, 3, 4].map((i) => `down_${i}`), 'the backlog drained, in order');
    } finally {
      if (!up) pgRun(`${PG.ctl} -w start`);
    }
  });
});

test('PostgreSQL stopped, relaxed durability: chat is delivered and buffered up to the bound, then refused; the backlog drains', { skip: !PG && 'no PostgreSQL cluster' }, async () => {
  const url = pgDatabase(`huddle_rx_${process.pid}_${Date.now() % 100000}`);
  await h.withServer({ args: ['--database-url', url, '--store-queue-max', '20', '--chat-durability', 'relaxed'] }, async (srv) => {
    const { alice, bob } = await f.joinAll(srv, 'pgx', [['alice', { room: 'pgx' }], ['bob', { room: 'pgx' }]]);
    pgRun(`${PG.ctl} -m fast -w stop`);
    let up = false;
    try {
      await h.waitFor(async () => (await h.health(srv)).components.store.state === 'down', 8000, 50, 'store down');
      const delivered = [];
      let refused = null;
      for (let i = 0; i < 40 && !refused; i++) {
        alice.send({ type: 'chat-message', id: `x${i}`, payload: { text: `buffered ${i}` } });
        const m = await alice.nextWhere((x) => x.ref === `x${i}`);
        if (m.type === 'error') refused = m;
        else delivered.push(m.payload.text);
      }
      assert.ok(delivered.length > 0, 'chat is delivered while the database is down');
      assert.ok(refused, 'past the bound chat is refused');
      f.assertWsError(refused, 'STORE_UNAVAILABLE');
      for (const t of delivered) await bob.nextWhere((m) => m.type === 'chat-message' && m.payload.text === t);
      pgRun(`${PG.ctl} -w start`);
      up = true;
      await h.waitFor(async () => {
        const j = await h.health(srv);
        return j.status === 'ok' && j.components.store.backlog === 0;
      }, 10000, 50, 'drained');
      const hist = await historyAll(srv, 'pgx', f.adminTok(srv));
      assert.deepStrictEqual(hist.map((m) => m.text), delivered, 'every delivered message, in order, nothing else');
    } finally {
      if (!up) pgRun(`${PG.ctl} -w start`);
    }
  });
});

test('retention: chat and events older than --retention-days are deleted by the background job, newer ones kept', { skip: !PG && 'no PostgreSQL cluster' }, async () => {
  const db = `huddle_rt_${process.pid}_${Date.now() % 100000}`;
  const url = pgDatabase(db);
  const dataDir = h.freshDataDir();
  try {
    let srv = await h.startServer({ dataDir, args: ['--database-url', url] });
    try {
      const a = await h.join(srv, 'ret', 'alice', { room: 'ret' });
      await say(a, 'old message', 'r1');
      await say(a, 'new message', 'r2');
      await a.end();
    } finally {
      h.closeAllClients();
      await srv.stopAndAssert();
    }
    // Age the first message and every event by three days.
    execSync(`psql -q -h 127.0.0.1 -p ${PG.port} -U huddle -d ${db} -c "UPDATE chat_messages SET ts = ts - 259200000 WHERE text = 'old message'; UPDATE analytics_events SET ts = ts - 259200000"`, { stdio: 'ignore' });
    srv = await h.startServer({ dataDir, args: ['--database-url', url, '--retention-days', '1'] });
    try {
      const admin = f.adminTok(srv);
      await h.waitFor(async () => (await historyAll(srv, 'ret', admin)).length === 1, 8000, 100, 'the sweep');
      assert.deepStrictEqual((await historyAll(srv, 'ret', admin)).map((m) => m.text), ['new message']);
      const ex = await f.rest(srv, 'GET', '/webrtc/admin/users/alice/export', { token: admin });
      // Every aged event is gone; the new message's chat event is read from
      // the message itself since schema 6 (ADR 0020), so it stays with it.
      assert.deepStrictEqual(ex.json.analytics_events.map((e) => [e.type, e.name]), [['chat', 'room']], 'aged events deleted');
      assert.strictEqual(ex.json.chat_messages.length, 1);
      await srv.waitForLog(/retention_sweep before=\d+ days=1/, 3000);
    } finally {
      await srv.stopAndAssert();
    }
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

test('durable chat and the room log: a member away in its grace period resumes and replays the stored chat in seq order', async () => {
  const rh = require('./resume_helpers');
  await h.withServer({}, async (srv) => {
    const { alice, bob } = await f.joinAll(srv, 'awaychat', [
      ['alice', { name: 'Alice', room: 'awaychat' }], ['bob', { room: 'awaychat' }]]);
    const last = rh.lastSeq(bob);
    const rt = [...bob.all].find((m) => m.type === 'room-state').payload.self.resume_token;
    await rh.cut(bob);
    await alice.nextWhere((m) => rh.isStatusOf(m, 'bob'), 3000, 'bob reconnecting at alice');
    // Chat (held until stored) interleaved with messages that queue behind it.
    for (let i = 1; i <= 4; i++) {
      alice.send({ type: 'chat-message', id: `a${i}`, payload: { text: `while you were away ${i}` } });
      alice.send({ type: 'reaction', id: `r${i}`, payload: { emoji: '\u{1F44D}' } });
    }
    await alice.nextWhere((m) => m.type === 'reaction' && m.ref === 'r4', 3000, 'the last reaction');
    const { before, state } = await rh.joinResume(srv, 'awaychat', f.tok(srv, { sub: 'bob', room: 'awaychat' }), rt, last, { user: 'bob' });
    assert.strictEqual(state.payload.resumed, true, 'bob resumed');
    const seqs = before.map((m) => m.seq);
    for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i] > seqs[i - 1], `replay in seq order: ${seqs}`);
    const chats = before.filter((m) => m.type === 'chat-message').map((m) => m.payload.text);
    assert.deepStrictEqual(chats, [1, 2, 3, 4].map((i) => `while you were away ${i}`));
    assert.strictEqual(before.filter((m) => m.type === 'reaction').length, 4, 'the reactions behind the chat too');
    // Each chat sits just before its reaction, as alice sent them.
    for (const m of before.filter((x) => x.type === 'chat-message')) {
      assert.ok(before.some((x) => x.type === 'reaction' && x.seq === m.seq + 1), `reaction after ${m.seq}`);
    }
    const r = await f.rest(srv, 'GET', historyPath('awaychat'), { token: f.tok(srv, { sub: 'bob', room: 'awaychat' }) });
    assert.strictEqual(r.status, 200, r.text);
    assert.deepStrictEqual(r.json.messages.map((m) => m.text), chats, 'and they are in the history');
  });
});

test('health names the store sync mode; a word it does not know stops the server with a clear error', async () => {
  await h.withServer({}, async (srv) => {
    assert.strictEqual((await h.health(srv)).components.store.sync, 'full');
  });
  await h.withServer({ args: ['--store-sync', 'normal'] }, async (srv) => {
    assert.strictEqual((await h.health(srv)).components.store.sync, 'normal');
  });
  const r = spawnSync(process.env.HUDDLE_BIN, ['--store-sync', 'maybe'], { encoding: 'utf8', timeout: 5000 });
  assert.strictEqual(r.status, 2);
  assert.match(r.stderr, /store-sync: expected one of full\|normal/);
});

// A member who joins while a durable chat message waits for the store: its
// room-state says the last seq published, so the chat (and what waits
// behind it) arrives numbered above it, and a resume from room-state's seq
// would replay it. The store is held with a table lock from psql.
test('a join while a chat waits for the store: room-state seq is below the held chat, which then arrives', { skip: !PG && 'no PostgreSQL cluster' }, async () => {
  const { spawn } = require('node:child_process');
  const db = `huddle_gate_${process.pid}_${Date.now() % 100000}`;
  const url = pgDatabase(db);
  await h.withServer({ args: ['--database-url', url] }, async (srv) => {
    const { alice } = await f.joinAll(srv, 'gate', [['alice', { room: 'gate' }]]);
    await say(alice, 'before', 'b0'); // the tables exist and the writer is connected
    const lock = spawn('psql', ['-q', '-h', '127.0.0.1', '-p', PG.port, '-U', 'huddle', '-d', db], { stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    lock.stdout.on('data', (d) => { out += d; });
    try {
      lock.stdin.write("BEGIN; LOCK TABLE chat_messages IN EXCLUSIVE MODE; SELECT 'locked';\n");
      await h.waitFor(async () => out.includes('locked'), 5000, 20, 'the lock');
      alice.send({ type: 'chat-message', id: 'held', payload: { text: 'held by the store' } });
      // The chat is in the writer's hands (no echo while the lock holds);
      // bob joins meanwhile.
      const waiting = () => execSync(`psql -qtA -h 127.0.0.1 -p ${PG.port} -U huddle -d ${db} -c "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = '${db}'"`).toString().trim();
      await h.waitFor(async () => waiting() === '1', 5000, 20, 'the writer waiting on the lock');
      const bob = await h.join(srv, 'gate', 'bob', { room: 'gate' });
      const st = [...bob.all].find((m) => m.type === 'room-state');
      bob.send({ type: 'chat-message', id: 'bad', payload: {} });
      const err = await bob.nextWhere((m) => m.type === 'error' && m.ref === 'bad', 5000, 'the error at bob');
      lock.stdin.write('COMMIT;\n');
      const chat = await bob.nextWhere((m) => m.type === 'chat-message' && m.payload.text === 'held by the store', 5000, 'the held chat at bob');
      assert.ok(chat.seq > st.seq, `chat seq ${chat.seq} above room-state seq ${st.seq}`);
      assert.ok(chat.seq > st.payload.seq, `chat seq ${chat.seq} above room-state payload seq ${st.payload.seq}`);
      assert.ok(chat.seq > err.seq, `chat seq ${chat.seq} above the error's seq ${err.seq}`);
      const echo = await alice.nextWhere((m) => m.type === 'chat-message' && m.ref === 'held', 5000, 'the echo');
      assert.strictEqual(echo.seq, chat.seq);
    } finally {
      lock.stdin.end();
      await new Promise((resolve) => { if (lock.exitCode !== null) resolve(); else lock.on('exit', resolve); });
    }
  });
});

// ADR 0020: a chat message writes no analytics row; its event is read from
// the stored message. After a restart the room's analytics from the store
// list what the live room's analytics listed: each chat once, in place
// (durable and relaxed). With --chat-durability off nothing of chat is
// stored: the store's analytics have no chat events, as its summary has no
// messages.
for (const durability of ['durable', 'relaxed', 'off']) {
  test(`analytics after a restart (--chat-durability ${durability}): chat events come from the stored chat, once`, async () => {
    const dataDir = h.freshDataDir();
    const args = ['--chat-durability', durability];
    const room = `an-${durability}`;
    const pick = (evs) => evs.filter((e) => e.type !== 'leave').map((e) => [e.type, e.user_id, e.name || null]);
    let live;
    try {
      let srv = await h.startServer({ dataDir, args });
      try {
        const { hana, bob } = await f.joinAll(srv, room, [['hana', { role: 'host', room }], ['bob', { room }]]);
        await say(hana, 'one', 'a1');
        bob.send({ type: 'analytics-event', payload: { name: 'between', properties: { b: 2 } } });
        await h.delay(20);
        bob.send({ type: 'chat-message', to: 'hana', id: 'p1', payload: { text: 'psst' } });
        await hana.nextWhere((m) => m.type === 'chat-message' && m.payload.text === 'psst', 3000, 'private');
        await say(hana, 'two', 'a2');
        const a = await f.rest(srv, 'GET', `/webrtc/rooms/${room}/analytics`, { token: f.adminTok(srv) });
        assert.strictEqual(a.status, 200, a.text);
        live = pick(a.json.events);
        assert.deepStrictEqual(live.filter((e) => e[0] === 'chat'),
          [['chat', 'hana', 'room'], ['chat', 'bob', 'private'], ['chat', 'hana', 'room']], a.text);
        await hana.end();
        await bob.end();
        h.closeAllClients();
      } finally {
        await srv.stopAndAssert();
      }
      srv = await h.startServer({ dataDir, args });
      try {
        const admin = f.adminTok(srv);
        const a = await f.rest(srv, 'GET', `/webrtc/rooms/${room}/analytics`, { token: admin });
        assert.strictEqual(a.status, 200, a.text);
        const stored = pick(a.json.events);
        const s = await f.rest(srv, 'GET', `/webrtc/rooms/${room}/analytics/summary`, { token: admin });
        assert.strictEqual(s.status, 200, s.text);
        const ex = await f.rest(srv, 'GET', '/webrtc/admin/users/hana/export', { token: admin });
        assert.strictEqual(ex.status, 200, ex.text);
        const hanaChat = ex.json.analytics_events.filter((e) => e.type === 'chat');
        if (durability === 'off') {
          assert.deepStrictEqual(stored, live.filter((e) => e[0] !== 'chat'), a.text);
          assert.strictEqual(s.json.messages_total, 0, s.text);
          assert.strictEqual(hanaChat.length, 0, ex.text);
        } else {
          assert.deepStrictEqual(stored, live, a.text);
          assert.strictEqual(s.json.messages_total, 3, s.text);
          assert.deepStrictEqual(hanaChat.map((e) => [e.room_id, e.name]), [[room, 'room'], [room, 'room']], ex.text);
        }
      } finally {
        await srv.stopAndAssert();
      }
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
}
