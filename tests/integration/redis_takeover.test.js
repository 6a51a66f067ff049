'use strict';
// Several instances (issue 11), the takeover window and what reaches every
// instance: a REST call forwarded to an owner that just died is answered
// (sent again to the new owner when that is safe), and a user's erase
// applies to the rooms of every instance.

const test = require('node:test');
const { execFileSync } = require('node:child_process');
const assert = require('node:assert');
const h = require('./helpers');
const rh = require('./redis_helpers');
const rs = require('./resume_helpers');
const f = require('./feature_helpers');

/** h.api with a client timeout longer than the takeover (and than the server's header timeout). */
function slowApi(srv, method, urlPath, token, body) {
  const headers = { Authorization: `Bearer ${token}` };
  let data;
  if (body !== undefined) {
    data = JSON.stringify(body);
    headers['Content-Type'] = 'application/json';
  }
  return h.httpRequest(srv, method, urlPath, { headers, body: data, timeoutMs: 20000 });
}

const { ownerOf } = rh;

test('REST calls forwarded to an owner that died are answered by the new owner, not left hanging', async () => {
  await rh.withCluster(3, { args: ['--resume-grace-ms', '20000'] }, async (r, [A, B, C]) => {
    const a = await h.join(A, 'tko', 'alice', { role: 'host' });
    const b = await h.join(B, 'tko', 'bob');
    await a.nextWhere((m) => m.type === 'user-joined' && m.payload.user_id === 'bob', 3000);
    assert.strictEqual(await ownerOf([A, B, C], 'tko'), A);
    const host = h.mintToken(h.SECRET, { sub: 'alice', role: 'host' });
    const bobTok = h.mintToken(h.SECRET, { sub: 'bob' });
    // Warm: the calls are forwarded (C has nobody in the room, B has bob).
    assert.strictEqual((await h.api(C, 'GET', '/webrtc/rooms/tko/settings', host)).status, 200);
    assert.strictEqual((await h.api(B, 'GET', '/webrtc/rooms/tko/settings', bobTok)).status, 200);

    A.proc.kill('SIGKILL');
    await A.exited;
    // Sent at once: A's lease still names it for up to 3 s, so each call
    // goes to A's inbox first. A read through C, one through B (which
    // takes the room over: it has a member), and a change through C that
    // A never read (safe to send again).
    const [getC, getB, setC] = await Promise.all([
      slowApi(C, 'GET', '/webrtc/rooms/tko/settings', host),
      slowApi(B, 'GET', '/webrtc/rooms/tko/settings', bobTok),
      slowApi(C, 'POST', '/webrtc/rooms/tko/settings', host, { chat_enabled: false }),
    ]);
    assert.strictEqual(getC.status, 200, getC.text);
    assert.strictEqual(getB.status, 200, getB.text);
    assert.strictEqual(setC.status, 200, setC.text);
    const owner = await ownerOf([B, C], 'tko');
    assert.strictEqual(owner, B, 'bob\'s instance took the room over');
    // The change took effect once, on the new owner.
    const got = await h.api(C, 'GET', '/webrtc/rooms/tko/settings', host);
    assert.strictEqual(got.status, 200, got.text);
    const settings = got.json.settings || got.json;
    assert.strictEqual(settings.chat_enabled, false, got.text);
    const hc = (await rh.clusterHealth(C)).components.cluster;
    assert.ok(hc.forwards_retried >= 2, JSON.stringify(hc));
    assert.strictEqual(hc.forwards_unanswered, 0, JSON.stringify(hc));
    // The meeting carries on for bob.
    await b.nextWhere((m) => rs.isStatusOf(m, 'alice') && m.payload.status === 'reconnecting', 10000);
  });
});

test('a change forwarded to a dead owner that cannot be answered in time gets 503 with a retry hint, not silence', async () => {
  // A header timeout of 3 s: the call must be answered before it closes the
  // connection, i.e. before the room's lease (3 s) can have passed to B.
  await rh.withCluster(3, { args: ['--header-timeout-ms', '3000'] }, async (r, [A, B, C]) => {
    const a = await h.join(A, 'tk5', 'alice', { role: 'host' });
    const b = await h.join(B, 'tk5', 'bob');
    await a.nextWhere((m) => m.type === 'user-joined' && m.payload.user_id === 'bob', 3000);
    assert.strictEqual(await ownerOf([A, B, C], 'tk5'), A);
    const host = h.mintToken(h.SECRET, { sub: 'alice', role: 'host' });
    assert.strictEqual((await h.api(C, 'GET', '/webrtc/rooms/tk5/settings', host)).status, 200);
    A.proc.kill('SIGKILL');
    await A.exited;
    const set = await slowApi(C, 'POST', '/webrtc/rooms/tk5/settings', host, { chat_enabled: false });
    // Normally 503: A's lease outlives the bound. Should A's last renewal
    // have come late, the takeover may beat the bound: then the call (A
    // never read it) is answered by the new owner and took effect.
    await b.nextWhere((m) => rs.isStatusOf(m, 'alice') && m.payload.status === 'reconnecting', 10000);
    await h.waitFor(async () => (await ownerOf([B, C], 'tk5')) === B, 10000, 100, 'B owns tk5');
    const got = await h.api(C, 'GET', '/webrtc/rooms/tk5/settings', host);
    assert.strictEqual(got.status, 200, got.text);
    const chatEnabled = (got.json.settings || got.json).chat_enabled;
    if (set.status === 503) {
      const e = h.assertApiError(set, 503, 'SERVICE_UNAVAILABLE');
      assert.ok(e.retry_after_ms > 0, set.text);
      assert.ok(Number(set.headers['retry-after']) > 0, JSON.stringify(set.headers));
      // At the bound A's heartbeat may still be there: "may have" then.
      assert.match(e.detail, /did not take effect|may have taken effect/, set.text);
      assert.strictEqual(chatEnabled, true, `the refused change did not take effect: ${got.text}`);
      const hc = (await rh.clusterHealth(C)).components.cluster;
      assert.strictEqual(hc.forwards_unanswered, 1, JSON.stringify(hc));
    } else {
      assert.strictEqual(set.status, 200, set.text);
      assert.strictEqual(chatEnabled, false, got.text);
    }
  });
});

test('a change the dead owner read but did not answer gets 503 (it may have taken effect), and is not sent again', async () => {
  // The owner is played here through redis-cli, so that it dies exactly
  // between reading the call and answering it: it holds the room's lease
  // and beats, takes the forwarded call out of its inbox as an instance
  // does before running one (inbox_mark_read: XTRIM MINID past it), then
  // its heartbeat goes. Sending the change again could apply it twice.
  await rh.withCluster(1, async (r, [B]) => {
    const redis = (...args) => execFileSync('redis-cli', ['-h', h.HOST, '-p', String(r.port), ...args]).toString().trim();
    const dead = 'f00dfeedbeef'; // an instance id as instances make them (12 hex digits)
    assert.strictEqual(redis('SET', 'huddle:lease:tk9', `${dead}:1`, 'PX', '60000'), 'OK');
    assert.strictEqual(redis('SET', `huddle:hb:${dead}`, '1', 'PX', '60000'), 'OK');
    const host = h.mintToken(h.SECRET, { sub: 'alice', role: 'host' });
    const pending = slowApi(B, 'POST', '/webrtc/rooms/tk9/settings', host, { chat_enabled: false });
    let entry = null;
    await h.waitFor(() => {
      const lines = redis('XRANGE', `huddle:inbox:${dead}`, '-', '+').split('\n').filter((l) => l !== '');
      if (lines.length === 0) return false;
      entry = { id: lines[0], fields: {} };
      for (let i = 1; i + 1 < lines.length; i += 2) entry.fields[lines[i]] = lines[i + 1];
      return true;
    }, 5000, 20, 'the call in the owner\'s inbox');
    assert.strictEqual(entry.fields.k, 'http', JSON.stringify(entry));
    assert.strictEqual(entry.fields.room, 'tk9');
    assert.strictEqual(entry.fields.url, '/webrtc/rooms/tk9/settings');
    assert.strictEqual(entry.fields.m, '3', 'HTTP_POST'); // http-parser's method number
    assert.deepStrictEqual(JSON.parse(entry.fields.body), { chat_enabled: false });
    // Read (trimmed past), then dead (no heartbeat; the lease still names it).
    const [ms, sq] = entry.id.split('-').map(BigInt);
    redis('XTRIM', `huddle:inbox:${dead}`, 'MINID', `${ms}-${sq + 1n}`);
    assert.strictEqual(redis('XLEN', `huddle:inbox:${dead}`), '0');
    assert.strictEqual(redis('DEL', `huddle:hb:${dead}`), '1');
    const set = await pending;
    const e = h.assertApiError(set, 503, 'SERVICE_UNAVAILABLE');
    assert.match(e.detail, /gone after it received the call; the call may have taken effect/, set.text);
    assert.ok(e.retry_after_ms > 0, set.text);
    assert.ok(Number(set.headers['retry-after']) > 0, JSON.stringify(set.headers));
    const hc = (await rh.clusterHealth(B)).components.cluster;
    assert.strictEqual(hc.forwards_unanswered, 1, JSON.stringify(hc));
    assert.strictEqual(hc.forwards_retried, 0, JSON.stringify(hc));
    // Not sent again, to the dead owner or anyone.
    assert.strictEqual(redis('XLEN', `huddle:inbox:${dead}`), '0');
  });
});

test('chat sent to an owner that just died is not lost: taken back from its inbox and sent to the new owner once', async () => {
  await rh.withCluster(3, { args: f.RATES_OFF.concat(['--resume-grace-ms', '20000']) }, async (r, [A, B, C]) => {
    const a = await h.join(A, 'tk3', 'alice', { role: 'host' });
    const b = await h.join(B, 'tk3', 'bob');
    const c = await h.join(C, 'tk3', 'carol');
    await b.nextWhere((m) => m.type === 'user-joined' && m.payload.user_id === 'carol', 3000);
    assert.strictEqual(await ownerOf([A, B, C], 'tk3'), A);
    b.send({ type: 'chat-message', payload: { text: 'b0' } });
    c.send({ type: 'chat-message', payload: { text: 'c0' } });
    await h.waitFor(() => rh.chats(b).length >= 2 && rh.chats(c).length >= 2, 3000);

    A.proc.kill('SIGKILL');
    await A.exited;
    // Before B and C learn the new owner (3 s lease): these go to A's inbox.
    for (const t of ['b1', 'b2']) b.send({ type: 'chat-message', payload: { text: t } });
    for (const t of ['c1', 'c2']) c.send({ type: 'chat-message', payload: { text: t } });
    await b.nextWhere((m) => rs.isStatusOf(m, 'alice') && m.payload.status === 'reconnecting', 10000);
    b.send({ type: 'chat-message', payload: { text: 'b3' } });
    c.send({ type: 'chat-message', payload: { text: 'c3' } });
    const texts = (x) => rh.chats(x).map((s) => s.split(':').slice(1).join(':'));
    await h.waitFor(() => texts(b).includes('b3') && texts(b).includes('c3') && texts(c).includes('b3') &&
      texts(c).includes('c3'), 10000, 50, 'b3 and c3 everywhere');
    // A last message from each: anything doubled or late was sequenced before it.
    b.send({ type: 'chat-message', payload: { text: 'bz' } });
    await h.waitFor(() => texts(b).includes('bz') && texts(c).includes('bz'), 10000, 50, 'bz everywhere');
    c.send({ type: 'chat-message', payload: { text: 'cz' } });
    await h.waitFor(() => texts(b).includes('cz') && texts(c).includes('cz'), 10000, 50, 'cz everywhere');
    assert.deepStrictEqual(rh.chats(b), rh.chats(c), 'bob and carol see one order');
    const got = texts(b);
    for (const t of ['b1', 'b2', 'c1', 'c2', 'b3', 'c3']) {
      assert.strictEqual(got.filter((x) => x === t).length, 1, `${t} exactly once: ${got}`);
    }
    // Each sender's order holds: b1 < b2 < b3, c1 < c2 < c3.
    for (const p of ['b', 'c']) {
      const idx = [1, 2, 3].map((i) => got.indexOf(`${p}${i}`));
      assert.ok(idx[0] < idx[1] && idx[1] < idx[2], `${p}'s order: ${got}`);
    }
    const seqs = rh.chats(b).map((s) => Number(s.split(':')[0]));
    for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i] > seqs[i - 1], `seq rises: ${seqs}`);
    let recovered = 0;
    for (const S of [B, C]) recovered += (await rh.clusterHealth(S)).components.cluster.msgs_recovered;
    // b1, b2, c1, c2 at least (b3 or c3 too when its instance had not yet
    // learned the new owner when it was sent).
    assert.ok(recovered >= 4, `taken back: ${recovered}`);
  });
});

test('erase through another instance: the user, connected through B to a room owned by A, is closed with 4007', async () => {
  await rh.withCluster(3, { args: f.RATES_OFF }, async (r, [A, B, C]) => {
    const a = await h.join(A, 'erx', 'alice', { role: 'host' });
    const d = await h.join(B, 'erx', 'dora', { name: 'Dora Hidden' });
    const w = await h.join(A, 'erx', 'walt');
    await a.nextWhere((m) => m.type === 'user-joined' && m.payload.user_id === 'walt', 3000);
    assert.strictEqual(await ownerOf([A, B, C], 'erx'), A);
    d.send({ type: 'hand-raise', payload: { raised: true } });
    await a.nextWhere((m) => m.type === 'hand-raise-queue' && m.payload.queue.length === 1, 3000);
    // walt (on A, the owner) drops before dora's chat: he resumes after the erase.
    const wLast = rs.lastSeq(w);
    const wRt = w.state.payload.self.resume_token;
    await rs.cut(w);
    await a.nextWhere((m) => rs.isStatusOf(m, 'walt'), 3000);
    d.send({ type: 'chat-message', id: 'd1', payload: { text: 'dora secret words' } });
    await a.nextWhere((m) => m.type === 'chat-message' && m.payload.text === 'dora secret words', 3000);

    const res = await f.rest(C, 'POST', '/webrtc/admin/users/dora/erase', { token: f.adminTok(C) });
    assert.strictEqual(res.status, 200, res.text);
    const closed = await d.waitClose(5000);
    assert.strictEqual(closed.code, 4007, JSON.stringify(closed));
    await a.nextWhere((m) => m.type === 'user-left' && m.payload.user_id === 'dora' && m.payload.reason === 'erased',
      5000);
    await a.nextWhere((m) => m.type === 'hand-raise-queue' && m.payload.queue.length === 0, 5000);
    // A resume replay from the owner's log (through B) shows the tombstone, not the text.
    const { before, state } = await rs.joinResume(B, 'erx', rs.tokenFor(B, 'walt'), wRt, wLast, { user: 'walt' });
    assert.strictEqual(state.payload.resumed, true, JSON.stringify(state).slice(0, 400));
    assert.ok(!JSON.stringify(state).includes('"dora"'), 'room-state no longer lists dora');
    const text = JSON.stringify(before);
    assert.ok(!text.includes('dora secret words'), text.slice(0, 600));
    assert.ok(!text.includes('Dora Hidden'), text.slice(0, 600));
    const tomb = before.find((m) => m.type === 'chat-message' && m.payload.erased);
    assert.ok(tomb, `a tombstone in the replay: ${text.slice(0, 600)}`);
  });
});

// The room's analytics survive the owner (ADR 0006, "Analytics"): the owner
// writes its counts, events and audit entries to Redis as they change; the
// instance that takes the room over starts from them, so the summary, the
// events and the audit log asked through any instance go on from where
// they were, and what comes after is added once.
test('kill -9 the owner: the room\'s analytics summary, events and audit log go on on the new owner', async () => {
  await rh.withCluster(3, { args: f.RATES_OFF.concat(['--resume-grace-ms', '20000']) }, async (r, [A, B, C]) => {
    const a = await h.join(A, 'tka', 'alice', { role: 'host' });
    const b = await h.join(B, 'tka', 'bob');
    await a.nextWhere((m) => m.type === 'user-joined' && m.payload.user_id === 'bob', 3000);
    assert.strictEqual(await ownerOf([A, B, C], 'tka'), A);
    const host = h.mintToken(h.SECRET, { sub: 'alice', role: 'host' });
    for (const t of ['one', 'two', 'three']) b.send({ type: 'chat-message', payload: { text: t } });
    await h.waitFor(() => rh.chats(a).length >= 3, 3000, 20, 'chat reached alice');
    const set = await h.api(C, 'POST', '/webrtc/rooms/tka/settings', host, { reactions_enabled: false });
    assert.strictEqual(set.status, 200, set.text);
    await h.delay(400); // the owner writes at most every 100 ms
    const before = (await h.api(C, 'GET', '/webrtc/rooms/tka/analytics/summary', host)).json;
    const evBefore = (await h.api(C, 'GET', '/webrtc/rooms/tka/analytics?limit=1000', host)).json;
    const auBefore = (await h.api(C, 'GET', '/webrtc/rooms/tka/audit', host)).json;
    assert.strictEqual(before.messages_by_type['chat-message'], 3, JSON.stringify(before));
    assert.strictEqual(before.total_sessions, 2, JSON.stringify(before));
    assert.ok(evBefore.events.filter((e) => e.type === 'chat').length === 3, JSON.stringify(evBefore));
    const auditOf = (x) => (x.audit || x.entries || x.events || []).map((e) => e.action);
    assert.ok(auditOf(auBefore).includes('settings_update'), JSON.stringify(auBefore));

    A.proc.kill('SIGKILL');
    await A.exited;
    await b.nextWhere((m) => rs.isStatusOf(m, 'alice') && m.payload.status === 'reconnecting', 10000);
    assert.strictEqual(await ownerOf([B, C], 'tka'), B);
    b.send({ type: 'chat-message', payload: { text: 'four' } });
    await h.waitFor(async () => {
      const s = (await h.api(C, 'GET', '/webrtc/rooms/tka/analytics/summary', host)).json;
      return s && s.messages_by_type && s.messages_by_type['chat-message'] === 4;
    }, 5000, 100, 'the fourth chat counted after the three of the dead owner');
    const after = (await h.api(C, 'GET', '/webrtc/rooms/tka/analytics/summary', host)).json;
    assert.strictEqual(after.total_sessions, before.total_sessions, JSON.stringify(after));
    assert.strictEqual(after.peak_participants, before.peak_participants, JSON.stringify(after));
    assert.strictEqual(after.created_at, before.created_at);
    const evAfter = (await h.api(B, 'GET', '/webrtc/rooms/tka/analytics?limit=1000', host)).json;
    const chatsAfter = evAfter.events.filter((e) => e.type === 'chat');
    assert.strictEqual(chatsAfter.length, 4, JSON.stringify(evAfter));
    // The dead owner's events come first, as they were, and once.
    assert.deepStrictEqual(evAfter.events.slice(0, evBefore.events.length), evBefore.events);
    assert.strictEqual(evAfter.total_events, evBefore.total_events + 1, JSON.stringify(evAfter));
    const auAfter = (await h.api(B, 'GET', '/webrtc/rooms/tka/audit', host)).json;
    assert.deepStrictEqual(auditOf(auAfter), auditOf(auBefore));
  });
});
