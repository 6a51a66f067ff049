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
    // A backlog ahead of the searches: their syncs wait behind it in the writer, their catch-up in the indexer.
    for (let i = 0; i < 3000; i++) alice.send({ type: 'chat-message', id: `u${i}`, payload: { text: `termword late${i}` } });
    await alice.nextWhere((m) => m.ref === 'u100', 10000);
    const tok = f.tok(srv, { sub: 'alice', room: 'st' });
    const outcomes = Array.from({ length: 60 }, (_, k) => h.httpRequest(srv, 'GET', chatPath('st', { q: k % 2 ? 'termword' : `t${k}`, limit: 200 }),
      { headers: { Authorization: `Bearer ${tok}` }, timeoutMs: 8000 })
      .then((r) => ({ r }), (e) => ({ e })));
    // Every search read by the server (the request logged) before SIGTERM.
    await h.waitFor(() => srv.stderr.split('path=/webrtc/rooms/st/chat').length > 60, 8000, 20, '60 searches read');
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

// ---------------------------------------------------------------- the index file

/** The search for word answers exactly the history's messages holding it (or a taxonomy 503). */
async function exactOrDown(srv, room, word, token, what) {
  const r = await search(srv, room, word, token);
  const got = exactOr503(r, word, what);
  if (got === null) return null;
  const hist = await allPages(srv, room, null, token);
  const want = hist.filter((m) => m.text.split(/\s+/).includes(word));
  assert.deepStrictEqual(ids(got), ids(want), `${what}: search "${word}" is the history's messages holding it`);
  return got;
}

async function fill(c, prefix, n, word) {
  for (let i = 0; i < n; i++) c.send({ type: 'chat-message', id: `${prefix}${i}`, payload: { text: `${word} ${prefix}${i}` } });
  for (let i = 0; i < n; i++) await c.nextWhere((m) => m.type === 'chat-message' && m.ref === `${prefix}${i}`, 5000);
}

test('the index file deleted while the server runs: searches exact (or 503), chat goes on, a restart makes it again', async () => {
  const dataDir = h.freshDataDir();
  try {
    let srv = await h.startServer({ dataDir });
    try {
      const { alice } = await f.joinAll(srv, 'dl', [['alice', { room: 'dl' }]]);
      const tok = f.tok(srv, { sub: 'alice', room: 'dl' });
      await fill(alice, 'a', 30, 'delword');
      assert.strictEqual((await exactOrDown(srv, 'dl', 'delword', tok, 'before')).length, 30);
      for (const n of indexFiles(dataDir)) fs.rmSync(path.join(dataDir, n));
      await fill(alice, 'b', 30, 'delword');
      await exactOrDown(srv, 'dl', 'delword', tok, 'deleted');
      await fill(alice, 'c', 5, 'delword');
      await exactOrDown(srv, 'dl', 'delword', tok, 'deleted, more chat');
    } catch (e) { throw h.decorateError(e, srv); } finally {
      h.closeAllClients();
      await srv.stopAndAssert();
    }
    srv = await h.startServer({ dataDir });
    try {
      const got = await exactOrDown(srv, 'dl', 'delword', f.tok(srv, { sub: 'x', room: 'dl' }), 'after the restart');
      assert.ok(got && got.length === 65, 'the restart made the index again');
    } catch (e) { throw h.decorateError(e, srv); } finally {
      await srv.stopAndAssert();
    }
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

test('the index\'s main file deleted (its -wal left) and then kill -9: after the restart searches are exact', async () => {
  const dataDir = h.freshDataDir();
  try {
    let srv = await h.startServer({ dataDir });
    try {
      const { alice } = await f.joinAll(srv, 'dw', [['alice', { room: 'dw' }]]);
      const tok = f.tok(srv, { sub: 'alice', room: 'dw' });
      await fill(alice, 'a', 40, 'walword');
      assert.strictEqual((await exactOrDown(srv, 'dw', 'walword', tok, 'before')).length, 40);
      fs.rmSync(path.join(dataDir, 'huddle.db-search'));
      await fill(alice, 'b', 40, 'walword');
      await exactOrDown(srv, 'dw', 'walword', tok, 'main file deleted');
    } finally {
      await srv.stop({ signal: 'SIGKILL' });
      h.closeAllClients();
    }
    srv = await h.startServer({ dataDir });
    try {
      const got = await exactOrDown(srv, 'dw', 'walword', f.tok(srv, { sub: 'x', room: 'dw' }), 'after the restart');
      assert.ok(got && got.length === 80, 'every message found after the restart');
    } catch (e) { throw h.decorateError(e, srv); } finally {
      await srv.stopAndAssert();
    }
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

test('the index file overwritten with garbage while the server runs: searches exact or 503, chat goes on, clean exit, a restart rebuilds', async () => {
  const dataDir = h.freshDataDir();
  try {
    let srv = await h.startServer({ dataDir });
    const answers = [];
    try {
      const { alice } = await f.joinAll(srv, 'gb', [['alice', { room: 'gb' }]]);
      const tok = f.tok(srv, { sub: 'alice', room: 'gb' });
      await fill(alice, 'a', 30, 'garbword');
      assert.strictEqual((await exactOrDown(srv, 'gb', 'garbword', tok, 'before')).length, 30);
      const junk = Buffer.alloc(64 * 1024, 'this is not an index at all ');
      for (const n of indexFiles(dataDir)) fs.writeFileSync(path.join(dataDir, n), junk); // in place: same inode
      for (let k = 0; k < 6; k++) {
        await fill(alice, `g${k}_`, 10, 'garbword');
        const got = await exactOrDown(srv, 'gb', 'garbword', tok, `garbage, search ${k}`);
        answers.push(got === null ? 503 : 200);
      }
      assert.strictEqual(answers[answers.length - 1], 200, `the index is made again while running (answers: ${answers})`);
    } catch (e) { throw h.decorateError(e, srv); } finally {
      h.closeAllClients();
      await srv.stopAndAssert();
    }
    srv = await h.startServer({ dataDir });
    try {
      const got = await exactOrDown(srv, 'gb', 'garbword', f.tok(srv, { sub: 'x', room: 'gb' }), 'after the restart');
      assert.ok(got && got.length === 90, `the restart rebuilt the index (answers while running: ${answers})`);
    } catch (e) { throw h.decorateError(e, srv); } finally {
      await srv.stopAndAssert();
    }
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

test('the index path is a directory at start: the server starts, chat and erase work, searches answer a taxonomy error or exact', async () => {
  const dataDir = h.freshDataDir();
  try {
    fs.mkdirSync(path.join(dataDir, 'huddle.db-search'));
    await h.withServer({ dataDir }, async (srv) => {
      const { alice } = await f.joinAll(srv, 'dd', [['alice', { room: 'dd' }], ['dora', { room: 'dd' }]]);
      const tok = f.tok(srv, { sub: 'alice', room: 'dd' });
      await fill(alice, 'a', 10, 'dirword');
      await exactOrDown(srv, 'dd', 'dirword', tok, 'index path a directory');
      const r = await f.rest(srv, 'POST', '/webrtc/admin/users/alice/erase', { token: f.adminTok(srv) });
      assert.strictEqual(r.status, 200, r.text);
      const hist = await allPages(srv, 'dd', null, tok);
      assert.strictEqual(hist.length, 10);
      await exactOrDown(srv, 'dd', 'dirword', f.adminTok(srv), 'after the erase');
    });
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

// The server as an unprivileged user (root ignores file modes): a wrapper
// that execs the binary through setpriv, and helpers that spawn it.
function helpersAsNobody() {
  const wrap = path.join(h.freshDataDir(), 'huddle-as-nobody.sh');
  fs.writeFileSync(wrap, `#!/bin/sh\nexec setpriv --reuid=65534 --regid=65534 --clear-groups '${h.BIN}' "$@"\n`, { mode: 0o755 });
  fs.chmodSync(path.dirname(wrap), 0o755);
  const old = process.env.HUDDLE_BIN;
  process.env.HUDDLE_BIN = wrap;
  const key = require.resolve('./helpers');
  const saved = require.cache[key];
  delete require.cache[key];
  const hn = require('./helpers');
  require.cache[key] = saved;
  if (old === undefined) delete process.env.HUDDLE_BIN; else process.env.HUDDLE_BIN = old;
  hn.wrapDir = path.dirname(wrap);
  return hn;
}

const CAN_SETPRIV = process.getuid && process.getuid() === 0 && (() => {
  try { execFileSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'true']); return true; } catch { return false; }
})();

function nobodyDir() {
  const d = h.freshDataDir();
  fs.chownSync(d, 65534, 65534);
  return d;
}

async function unwritableIndex(mode) {
  const hn = helpersAsNobody();
  const dataDir = nobodyDir();
  try {
    let srv = await hn.startServer({ dataDir });
    try {
      const { dora } = await f.joinAll(srv, 'cm', [['dora', { room: 'cm' }], ['bob', { room: 'cm' }]]);
      await fill(dora, 'a', 10, 'modeword');
      assert.strictEqual((await exactOrDown(srv, 'cm', 'modeword', f.adminTok(srv), 'before')).length, 10);
    } finally {
      h.closeAllClients();
      await srv.stopAndAssert();
    }
    for (const n of indexFiles(dataDir)) fs.chmodSync(path.join(dataDir, n), mode);
    srv = await hn.startServer({ dataDir });
    try {
      const { bob } = await f.joinAll(srv, 'cm', [['bob', { room: 'cm' }]]);
      await fill(bob, 'b', 10, 'modeword');
      await exactOrDown(srv, 'cm', 'modeword', f.adminTok(srv), `index mode ${mode.toString(8)}`);
      const r = await f.rest(srv, 'POST', '/webrtc/admin/users/dora/erase', { token: f.adminTok(srv) });
      assert.strictEqual(r.status, 200, r.text);
      const got = await exactOrDown(srv, 'cm', 'modeword', f.adminTok(srv), 'after the erase');
      if (got) assert.strictEqual(got.length, 10, 'bob\'s only');
      assert.strictEqual((await allPages(srv, 'cm', null, f.adminTok(srv))).length, 20, 'chat goes on');
    } catch (e) { throw h.decorateError(e, srv); } finally {
      h.closeAllClients();
      await srv.stopAndAssert();
    }
    for (const n of indexFiles(dataDir)) fs.chmodSync(path.join(dataDir, n), 0o644);
    srv = await hn.startServer({ dataDir });
    try {
      const got = await exactOrDown(srv, 'cm', 'modeword', f.adminTok(srv), 'mode given back');
      assert.ok(got && got.length === 10, 'the erase reached the index once it could be written');
    } catch (e) { throw h.decorateError(e, srv); } finally {
      await srv.stopAndAssert();
    }
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
    fs.rmSync(hn.wrapDir, { recursive: true, force: true });
  }
}

test('the index file unreadable (chmod 000) at start, not root: the server starts, chat and erase work, searches exact or 503; the erase holds once it is readable again', { skip: !CAN_SETPRIV && 'needs root and setpriv' }, async () => {
  await unwritableIndex(0o000);
});

test('the index file read-only (chmod 444) at start, not root: the same', { skip: !CAN_SETPRIV && 'needs root and setpriv' }, async () => {
  await unwritableIndex(0o444);
});

test('a read-only data directory without an index file, not root: the server starts, chat works, searches exact or 503', { skip: !CAN_SETPRIV && 'needs root and setpriv' }, async () => {
  const hn = helpersAsNobody();
  const dataDir = nobodyDir();
  try {
    let srv = await hn.startServer({ dataDir });
    try {
      const { alice } = await f.joinAll(srv, 'ro', [['alice', { room: 'ro' }]]);
      await fill(alice, 'a', 10, 'roword');
    } finally {
      h.closeAllClients();
      await srv.stopAndAssert();
    }
    for (const n of indexFiles(dataDir)) fs.rmSync(path.join(dataDir, n));
    // The chat database's own files exist and are the server's; the directory is not.
    for (const n of ['huddle.db-wal', 'huddle.db-shm']) {
      if (!fs.existsSync(path.join(dataDir, n))) fs.writeFileSync(path.join(dataDir, n), '');
      fs.chownSync(path.join(dataDir, n), 65534, 65534);
    }
    fs.chownSync(dataDir, 0, 0);
    fs.chmodSync(dataDir, 0o755);
    srv = await hn.startServer({ dataDir });
    try {
      const { alice } = await f.joinAll(srv, 'ro', [['alice', { room: 'ro' }]]);
      await fill(alice, 'b', 10, 'roword');
      for (let k = 0; k < 3; k++) await exactOrDown(srv, 'ro', 'roword', f.adminTok(srv), `read-only directory ${k}`);
      assert.strictEqual((await allPages(srv, 'ro', null, f.adminTok(srv))).length, 20, 'chat goes on');
    } catch (e) { throw h.decorateError(e, srv); } finally {
      h.closeAllClients();
      await srv.stopAndAssert();
    }
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
    fs.rmSync(hn.wrapDir, { recursive: true, force: true });
  }
});

// ---------------------------------------------------------------- descriptors

function fdCount(pid) { return fs.readdirSync(`/proc/${pid}/fd`).length; }

test('out of descriptors while the index must be opened again: searches exact or 503, then exact once descriptors are back; none kept', async () => {
  const dataDir = h.freshDataDir();
  try {
    await h.withServer({ dataDir }, async (srv) => {
      const { alice } = await f.joinAll(srv, 'fd', [['alice', { room: 'fd' }]]);
      const tok = f.tok(srv, { sub: 'alice', room: 'fd' });
      await fill(alice, 'a', 30, 'fdword');
      assert.strictEqual((await exactOrDown(srv, 'fd', 'fdword', tok, 'before')).length, 30);
      const keep = await h.rawConnect(srv); // a keep-alive connection for the searches while no descriptor is left
      const req = (q) => `GET ${chatPath('fd', { q, limit: 200 })} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${tok}\r\n\r\n`;
      await keep.write(req('fdword'));
      assert.strictEqual((await keep.response(5000)).status, 200);
      const base = fdCount(srv.pid);
      // The index's file damaged in place: the indexer must let go of its connection and open one again.
      const junk = Buffer.alloc(64 * 1024, 'not an index ');
      for (const n of indexFiles(dataDir)) fs.writeFileSync(path.join(dataDir, n), junk);
      const hard = fs.readFileSync(`/proc/${srv.pid}/limits`, 'utf8').match(/Max open files\s+\d+\s+(\d+)/)[1];
      // Fewer than are open: the index's descriptors, once let go, cannot be had again.
      execFileSync('prlimit', ['--pid', String(srv.pid), `--nofile=${base - 6}:${hard}`]);
      await fill(alice, 'b', 10, 'fdword');
      for (let k = 0; k < 4; k++) {
        await keep.write(req('fdword'));
        const r = await keep.response(8000);
        const got = exactOr503(r, 'fdword', `no descriptors, search ${k}`);
        if (got) assert.strictEqual(got.length, 40, `no descriptors, search ${k}: exact`);
      }
      execFileSync('prlimit', ['--pid', String(srv.pid), `--nofile=${hard}:${hard}`]);
      await keep.write(req('fdword'));
      const r = await keep.response(8000);
      const got = exactOr503(r, 'fdword', 'descriptors back');
      assert.ok(got && got.length === 40, `descriptors back: the search answers exactly (status ${r.status})`);
      keep.destroy();
      for (let k = 0; k < 20; k++) assert.strictEqual((await exactOrDown(srv, 'fd', 'fdword', tok, `again ${k}`)).length, 40);
      await h.waitFor(() => fdCount(srv.pid) <= base + 1, 3000, 20, `descriptors back to ${base} (now ${fdCount(srv.pid)})`);
    });
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

test('a search refused because of the index: /webrtc/health, which its recovery hint names, does not say the store is all ok', async () => {
  const dataDir = h.freshDataDir();
  try {
    fs.mkdirSync(path.join(dataDir, 'huddle.db-search'));
    await h.withServer({ dataDir }, async (srv) => {
      const { alice } = await f.joinAll(srv, 'hh', [['alice', { room: 'hh' }]]);
      await fill(alice, 'a', 3, 'healthword');
      const r = await search(srv, 'hh', 'healthword', f.adminTok(srv));
      f.assertRestError(r, 503, 'STORE_UNAVAILABLE', 'index down');
      assert.match(r.json.error.recovery, /health/);
      const hr = await f.rest(srv, 'GET', '/webrtc/health', {});
      const store = hr.json.components.store;
      assert.ok(!(store.status === 'ok' && !JSON.stringify(store).match(/index|search/)),
        `health says nothing of the search index the 503 points at: ${JSON.stringify(store)}`);
    });
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

// ---------------------------------------------------------------- id reuse

const HAVE_SQLITE3 = (() => { try { execFileSync('sqlite3', ['-version'], { stdio: 'ignore' }); return true; } catch { return false; } })();

test('retention deletes every message, new chat takes their ids: searches exact, before and after a restart', { skip: !HAVE_SQLITE3 && 'no sqlite3 client' }, async () => {
  const dataDir = h.freshDataDir();
  try {
    let srv = await h.startServer({ dataDir });
    try {
      const { alice } = await f.joinAll(srv, 'rt', [['alice', { room: 'rt' }]]);
      await fill(alice, 'a', 20, 'oldword');
      assert.strictEqual((await exactOrDown(srv, 'rt', 'oldword', f.adminTok(srv), 'before')).length, 20);
    } finally {
      h.closeAllClients();
      await srv.stopAndAssert();
    }
    // Aged three days, in the chat table and in the index's copy of the rows (docs keeps each row's ts).
    execFileSync('sqlite3', [path.join(dataDir, 'huddle.db'), `UPDATE chat_messages SET ts = ts - ${3 * 86400000};`]);
    execFileSync('sqlite3', [path.join(dataDir, 'huddle.db-search'), `UPDATE docs SET ts = ts - ${3 * 86400000};`]);
    const check = async (what) => {
      const admin = f.adminTok(srv);
      assert.strictEqual((await exactOrDown(srv, 'rt', 'newword', admin, what) || []).length, 20, `${what}: new`);
      assert.deepStrictEqual(await exactOrDown(srv, 'rt', 'oldword', admin, what), [], `${what}: old`);
      assert.deepStrictEqual(await exactOrDown(srv, 'rt', 'a7', admin, what), [], `${what}: old a7`);
      assert.strictEqual((await exactOrDown(srv, 'rt', 'b7', admin, what) || []).length, 1, `${what}: b7`);
    };
    srv = await h.startServer({ dataDir, args: ['--retention-days', '1'] });
    try {
      await srv.waitForLog(/retention_sweep/, 8000);
      await h.waitFor(async () => (await allPages(srv, 'rt', null, f.adminTok(srv))).length === 0, 5000, 50, 'retention deleted the chat');
      const { alice } = await f.joinAll(srv, 'rt', [['alice', { room: 'rt' }]]);
      await fill(alice, 'b', 20, 'newword');
      await check('after retention');
    } catch (e) { throw h.decorateError(e, srv); } finally {
      h.closeAllClients();
      await srv.stopAndAssert();
    }
    const minId = execFileSync('sqlite3', [path.join(dataDir, 'huddle.db'), 'SELECT min(id) FROM chat_messages;']).toString().trim();
    assert.strictEqual(minId, '1', 'the new rows took the ids the index had');
    srv = await h.startServer({ dataDir });
    try {
      await check('after a restart');
    } catch (e) { throw h.decorateError(e, srv); } finally {
      await srv.stopAndAssert();
    }
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});
