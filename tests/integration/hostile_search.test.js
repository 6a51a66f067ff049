'use strict';
// Hostile review of the search index in its own file (ADR 0022,
// huddle.db-search, kept by the store's indexer thread): erasure and
// privacy through the new path, id reuse, heavy chat with searches in
// flight, SIGTERM and kill -9 mid-indexing, the index file deleted,
// damaged or unwritable, descriptors. SQLite only.
//
// The invariant every search is checked against: each message it answers
// holds every word asked for (a row is never answered by text it no longer
// has), and a search sees every message committed (echoed) before it.

const test = require('node:test');
const assert = require('node:assert');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const h = require('./helpers');
const f = require('./feature_helpers');

const TOMBSTONE = '[message removed]';

function chatPath(room, q = {}) {
  const s = new URLSearchParams(q).toString();
  return `/webrtc/rooms/${room}/chat${s ? `?${s}` : ''}`;
}

async function say(c, text, ref, to) {
  const m = { type: 'chat-message', id: ref, payload: { text } };
  if (to) m.to = to;
  c.send(m);
  return c.nextWhere((x) => x.type === 'chat-message' && x.ref === ref, 5000, `echo of ${ref}`);
}

/** Every message of a 200 search holds every word of q (lower case compare). */
function assertHolds(r, q, what) {
  assert.strictEqual(r.status, 200, `${what}: ${r.status} ${r.text.slice(0, 300)}`);
  for (const m of r.json.messages) {
    for (const w of q.toLowerCase().split(/\s+/).filter(Boolean)) {
      assert.ok(String(m.text).toLowerCase().includes(w),
        `${what}: a search for "${q}" answered ${JSON.stringify(m)}`);
    }
    assert.ok(!m.erased && m.text !== TOMBSTONE, `${what}: a search for "${q}" answered an erased message ${JSON.stringify(m)}`);
  }
  return r.json.messages;
}

async function search(srv, room, q, token, extra = {}) {
  return f.rest(srv, 'GET', chatPath(room, Object.assign({ q, limit: 200 }, extra)), { token });
}

/** Every page of a search (or of the history when q is null), oldest first. */
async function allPages(srv, room, q, token) {
  let out = [];
  let before = null;
  for (;;) {
    const p = { limit: 200 };
    if (q) p.q = q;
    if (before) p.before = before;
    const r = await f.rest(srv, 'GET', chatPath(room, p), { token });
    if (q) assertHolds(r, q, 'page'); else assert.strictEqual(r.status, 200, r.text);
    out = r.json.messages.concat(out);
    if (r.json.messages.length === 0 || !r.json.has_more) break;
    before = r.json.messages[0].message_id;
  }
  return out;
}

function ids(msgs) { return msgs.map((m) => m.message_id); }

function assertUnique(msgs, what) {
  const s = new Set(ids(msgs));
  assert.strictEqual(s.size, msgs.length, `${what}: a message answered twice`);
}

function indexFiles(dir) {
  return fs.readdirSync(dir).filter((n) => n.startsWith('huddle.db-search'));
}

/** A 200 exact answer or a taxonomy 503; returns the messages or null. */
function exactOr503(r, q, what) {
  if (r.status === 503) {
    f.assertRestError(r, 503, null, what);
    return null;
  }
  return assertHolds(r, q, what);
}

// ---------------------------------------------------------------- privacy

async function eraseScene(srv) {
  const { dora, bob } = await f.joinAll(srv, 'er', [['dora', { room: 'er' }], ['bob', { room: 'er' }], ['carol', { room: 'er' }]]);
  await say(dora, 'dora zebraword public', 'd1');
  await say(dora, 'dora zebraword private quagga', 'd2', 'bob');
  await bob.nextWhere((m) => m.type === 'chat-message' && m.payload.text.includes('quagga'));
  await say(bob, 'bob zebraword reply', 'b1');
  return { dora, bob };
}

const toks = (srv) => ({
  admin: f.adminTok(srv),
  bob: f.tok(srv, { sub: 'bob', room: 'er' }),
  carol: f.tok(srv, { sub: 'carol', room: 'er' }),
});

async function assertErased(srv, what) {
  const t = toks(srv);
  for (const [who, token] of Object.entries(t)) {
    let r = await search(srv, 'er', 'zebraword', token);
    assert.deepStrictEqual(assertHolds(r, 'zebraword', `${what} ${who}`).map((m) => m.text), ['bob zebraword reply'], `${what}: ${who}`);
    for (const w of ['dora', 'quagga', 'public', 'private']) {
      r = await search(srv, 'er', w, token);
      assert.deepStrictEqual(assertHolds(r, w, `${what} ${who}`), [], `${what}: ${who} searching "${w}"`);
    }
  }
}

test('erase: at its 200 no search (member, recipient, admin) matches the erased text, nor after a restart', async () => {
  const dataDir = h.freshDataDir();
  try {
    let srv = await h.startServer({ dataDir });
    try {
      await eraseScene(srv);
      const t = toks(srv);
      assert.strictEqual(assertHolds(await search(srv, 'er', 'zebraword', t.admin), 'zebraword', 'admin').length, 3);
      assert.strictEqual(assertHolds(await search(srv, 'er', 'zebraword', t.bob), 'zebraword', 'bob').length, 3);
      assert.strictEqual(assertHolds(await search(srv, 'er', 'zebraword', t.carol), 'zebraword', 'carol').length, 2);
      const r = await f.rest(srv, 'POST', '/webrtc/admin/users/dora/erase', { token: t.admin });
      assert.strictEqual(r.status, 200, r.text);
      await assertErased(srv, 'right after the erase');
    } catch (e) { throw h.decorateError(e, srv); } finally {
      h.closeAllClients();
      await srv.stopAndAssert();
    }
    srv = await h.startServer({ dataDir });
    try {
      await assertErased(srv, 'after a restart');
    } catch (e) { throw h.decorateError(e, srv); } finally {
      await srv.stopAndAssert();
    }
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

test('erase: the index file from before the erase put back (a backup restored) does not bring the erased words back', async () => {
  const dataDir = h.freshDataDir();
  const bak = h.freshDataDir();
  try {
    let srv = await h.startServer({ dataDir });
    try {
      await eraseScene(srv);
      assert.strictEqual(assertHolds(await search(srv, 'er', 'zebraword', f.adminTok(srv)), 'zebraword', 'admin').length, 3);
    } finally {
      h.closeAllClients();
      await srv.stopAndAssert();
    }
    for (const n of indexFiles(dataDir)) fs.copyFileSync(path.join(dataDir, n), path.join(bak, n));
    assert.ok(indexFiles(bak).length > 0, 'the index file was saved');
    srv = await h.startServer({ dataDir });
    try {
      const r = await f.rest(srv, 'POST', '/webrtc/admin/users/dora/erase', { token: f.adminTok(srv) });
      assert.strictEqual(r.status, 200, r.text);
      await assertErased(srv, 'right after the erase');
    } finally {
      await srv.stopAndAssert();
    }
    for (const n of indexFiles(dataDir)) fs.rmSync(path.join(dataDir, n));
    for (const n of indexFiles(bak)) fs.copyFileSync(path.join(bak, n), path.join(dataDir, n));
    srv = await h.startServer({ dataDir });
    try {
      await assertErased(srv, 'with the index file from before the erase');
    } catch (e) { throw h.decorateError(e, srv); } finally {
      await srv.stopAndAssert();
    }
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
    fs.rmSync(bak, { recursive: true, force: true });
  }
});

test('private messages through the search: only their two parties and admin tokens find them', async () => {
  await h.withServer({}, async (srv) => {
    const { alice, bob } = await f.joinAll(srv, 'pv', [['alice', { room: 'pv' }], ['bob', { room: 'pv' }], ['carol', { room: 'pv' }]]);
    await say(alice, 'okapiword for bob only', 'a1', 'bob');
    await say(bob, 'okapiword back to alice', 'b1', 'alice');
    await say(alice, 'okapiword for everyone', 'a2');
    const see = async (token) => assertHolds(await search(srv, 'pv', 'okapiword', token), 'okapiword', 'pv').map((m) => m.text);
    const everyone = ['okapiword for everyone'];
    const all = ['okapiword for bob only', 'okapiword back to alice', 'okapiword for everyone'];
    assert.deepStrictEqual(await see(f.tok(srv, { sub: 'alice', room: 'pv' })), all);
    assert.deepStrictEqual(await see(f.tok(srv, { sub: 'bob', room: 'pv' })), all);
    assert.deepStrictEqual(await see(f.tok(srv, { sub: 'carol', room: 'pv' })), everyone);
    assert.deepStrictEqual(await see(f.tok(srv, { sub: 'dave', room: 'pv' })), everyone, 'a token for the room, not in it');
    assert.deepStrictEqual(await see(f.adminTok(srv)), all);
    for (const w of ['only', 'back']) {
      const r = await search(srv, 'pv', w, f.tok(srv, { sub: 'carol', room: 'pv' }));
      assert.deepStrictEqual(assertHolds(r, w, 'carol'), [], `carol searching "${w}"`);
    }
  });
});

// ---------------------------------------------------------------- load

test('heavy chat with searches in flight: each finds what was echoed before it, exactly once; the total equals the history', async () => {
  await h.withServer({}, async (srv) => {
    const { alice, bob } = await f.joinAll(srv, 'hv', [['alice', { room: 'hv' }], ['bob', { room: 'hv' }]]);
    const tok = f.tok(srv, { sub: 'bob', room: 'hv' });
    const N = 600;
    // alice floods without waiting; bob says a word, waits for its echo, and searches it.
    for (let i = 0; i < N; i++) alice.send({ type: 'chat-message', id: `f${i}`, payload: { text: `floodcommon n${i}x` } });
    const checks = [];
    for (let k = 0; k < 20; k++) {
      await say(bob, `floodcommon probe${k}y`, `p${k}`);
      const r = await search(srv, 'hv', `probe${k}y`, tok);
      assert.strictEqual(assertHolds(r, `probe${k}y`, `probe ${k}`).length, 1, `probe ${k} found once right after its echo`);
      checks.push(search(srv, 'hv', 'floodcommon', tok).then((x) => assertHolds(x, 'floodcommon', 'flood in flight')));
    }
    await Promise.all(checks);
    for (let i = 0; i < N; i++) await alice.nextWhere((m) => m.type === 'chat-message' && m.ref === `f${i}`, 10000, `echo f${i}`);
    const hist = await allPages(srv, 'hv', null, tok);
    const found = await allPages(srv, 'hv', 'floodcommon', tok);
    assertUnique(found, 'flood');
    assert.strictEqual(hist.length, N + 20);
    assert.deepStrictEqual(ids(found), ids(hist), 'the search finds every message of the history');
    for (const i of [0, 1, 511, 512, 599]) {
      const r = await search(srv, 'hv', `n${i}x`, tok);
      assert.deepStrictEqual(assertHolds(r, `n${i}x`, `n${i}x`).map((m) => m.text), [`floodcommon n${i}x`]);
    }
  });
});

test('many searches at once: every answer is exact', async () => {
  await h.withServer({}, async (srv) => {
    const { alice } = await f.joinAll(srv, 'ms', [['alice', { room: 'ms' }]]);
    for (let i = 0; i < 40; i++) alice.send({ type: 'chat-message', id: `m${i}`, payload: { text: `manyword w${i}z` } });
    for (let i = 0; i < 40; i++) await alice.nextWhere((m) => m.ref === `m${i}`, 5000);
    const tok = f.tok(srv, { sub: 'alice', room: 'ms' });
    const rs = await Promise.all(Array.from({ length: 120 }, (_, k) => search(srv, 'ms', `w${k % 40}z`, tok)));
    rs.forEach((r, k) => assert.deepStrictEqual(assertHolds(r, `w${k % 40}z`, `search ${k}`).map((m) => m.text), [`manyword w${k % 40}z`]));
  });
});

test('erase during heavy chat: at its 200 none of the erased user\'s words is found', async () => {
  await h.withServer({}, async (srv) => {
    const { dora, bob } = await f.joinAll(srv, 'eh', [['dora', { room: 'eh' }], ['bob', { room: 'eh' }]]);
    for (let i = 0; i < 60; i++) dora.send({ type: 'chat-message', id: `d${i}`, payload: { text: `dorasecret s${i}q` } });
    for (let i = 0; i < 60; i++) await dora.nextWhere((m) => m.ref === `d${i}`, 5000);
    for (let i = 0; i < 500; i++) bob.send({ type: 'chat-message', id: `b${i}`, payload: { text: `bobflood k${i}` } });
    const r = await f.rest(srv, 'POST', '/webrtc/admin/users/dora/erase', { token: f.adminTok(srv) });
    assert.strictEqual(r.status, 200, r.text);
    const admin = f.adminTok(srv);
    assert.deepStrictEqual(assertHolds(await search(srv, 'eh', 'dorasecret', admin), 'dorasecret', 'after erase'), []);
    assert.deepStrictEqual(assertHolds(await search(srv, 'eh', 's7q', admin), 's7q', 'after erase'), []);
    for (let i = 0; i < 500; i++) await bob.nextWhere((m) => m.type === 'chat-message' && m.ref === `b${i}`, 10000);
    const found = await allPages(srv, 'eh', 'bobflood', admin);
    assert.strictEqual(found.length, 500);
    assertUnique(found, 'bobflood');
  });
});

// ---------------------------------------------------------------- shutdown and crash

test('SIGTERM with searches in flight: each answers (exact or 503) or its connection closes; no hang, clean exit', async () => {
  const srv = await h.startServer({});
  try {
    const { alice } = await f.joinAll(srv, 'st', [['alice', { room: 'st' }]]);
    for (let i = 0; i < 300; i++) alice.send({ type: 'chat-message', id: `s${i}`, payload: { text: `termword t${i}` } });
    await alice.nextWhere((m) => m.ref === 's299', 10000);
    for (let i = 0; i < 200; i++) alice.send({ type: 'chat-message', id: `u${i}`, payload: { text: `termword late${i}` } });
    const tok = f.tok(srv, { sub: 'alice', room: 'st' });
    const outcomes = Array.from({ length: 60 }, (_, k) => h.httpRequest(srv, 'GET', chatPath('st', { q: k % 2 ? 'termword' : `t${k}`, limit: 200 }),
      { headers: { Authorization: `Bearer ${tok}` }, timeoutMs: 8000 })
      .then((r) => ({ r }), (e) => ({ e })));
    await h.delay(5);
    const stopped = srv.stop({ timeoutMs: 8000 });
    const got = await Promise.all(outcomes);
    const st = await stopped;
    assert.ok(!st.hung, 'the server exited after SIGTERM');
    assert.strictEqual(st.signal, null);
    assert.strictEqual(st.code, 0, `exit code ${st.code} (23 = ASan/LSan, 24 = UBSan)`);
    got.forEach((o, k) => {
      if (o.e) {
        assert.ok(!/timed out/.test(o.e.message), `search ${k} hung: ${o.e.message}`);
        return;
      }
      exactOr503(o.r, k % 2 ? 'termword' : `t${k}`, `search ${k}`);
    });
    assert.ok(!/AddressSanitizer|runtime error/.test(srv.stderr), 'no sanitizer report');
  } catch (e) {
    throw h.decorateError(e, srv);
  } finally {
    h.closeAllClients();
    await srv.stop();
    srv.cleanup();
  }
});

test('kill -9 right after a burst of chat: after the restart the search finds every stored message exactly once', async () => {
  const dataDir = h.freshDataDir();
  try {
    let srv = await h.startServer({ dataDir });
    const N = 1500;
    try {
      const { alice } = await f.joinAll(srv, 'kk', [['alice', { room: 'kk' }]]);
      for (let i = 0; i < N; i++) alice.send({ type: 'chat-message', id: `k${i}`, payload: { text: `killword c${i}v` } });
      for (let i = 0; i < N; i++) await alice.nextWhere((m) => m.ref === `k${i}`, 10000);
    } finally {
      await srv.stop({ signal: 'SIGKILL' });
      h.closeAllClients();
    }
    srv = await h.startServer({ dataDir });
    try {
      const tok = f.tok(srv, { sub: 'x', room: 'kk' });
      const hist = await allPages(srv, 'kk', null, tok);
      assert.strictEqual(hist.length, N, 'every echoed message was stored');
      const found = await allPages(srv, 'kk', 'killword', tok);
      assertUnique(found, 'after kill -9');
      assert.deepStrictEqual(ids(found), ids(hist));
      for (const i of [0, 1023, 1024, N - 1]) {
        const r = await search(srv, 'kk', `c${i}v`, tok);
        assert.strictEqual(assertHolds(r, `c${i}v`, `c${i}v`).length, 1);
      }
    } catch (e) { throw h.decorateError(e, srv); } finally {
      await srv.stopAndAssert();
    }
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});
