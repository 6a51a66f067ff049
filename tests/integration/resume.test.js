'use strict';
// Reconnection (issue 9): ../shared/protocol.md "Connection lifecycle" (5) and
// "Resume", CONTRACTS.md "Reconnection". A member whose connection drops (TCP cut
// without a close frame, or close code 1001) is away for the grace period; it
// comes back with resume_token and last_seq and gets every message addressed to
// it with seq > last_seq, in order, once, with the original seq, then room-state
// with resumed: true and a new resume_token, then live traffic; the others see
// participant-update reconnecting / connected and never a leave and a join.
// Failures: RESUME_EXPIRED, RESUME_GAP, RESUME_INVALID, each followed by a fresh
// join (room-state with resumed: false).
//
// The expected replay is computed from what a passive observer that never
// disconnected saw, plus the directed messages sent to the away member; never
// from hard-coded counts.

const test = require('node:test');
const assert = require('node:assert');
const h = require('./helpers');
const f = require('./feature_helpers');
const r = require('./resume_helpers');

const { ofType } = f;

/** The people of a room for the scenario tests: a host, three participants and bob, who drops. */
const CAST = [['alice', 'host'], ['carol', 'participant'], ['dave', 'participant'],
  ['obs', 'participant'], ['bob', 'participant']];

/** Sends a chat from c and waits for its echo and for obs to get it; resolves obs's copy. */
async function chatSeen(c, obs, text) {
  const id = `w${Math.random().toString(36).slice(2, 10)}`;
  c.send({ type: 'chat-message', id, payload: { text } });
  const echo = await c.nextWhere((m) => m.type === 'chat-message' && m.ref === id, 3000,
    `echo of ${c.user}'s chat ${JSON.stringify(text)}`);
  assert.strictEqual(echo.from, c.user, `echo from: ${JSON.stringify(echo)}`);
  const seen = await obs.nextWhere(ofType('chat-message', (p) => p.text === text), 3000,
    `${c.user}'s chat ${JSON.stringify(text)} at ${obs.user}`);
  assert.strictEqual(seen.from, c.user, `from at ${obs.user}: ${JSON.stringify(seen)}`);
  return seen;
}

/** A resume failure: exactly error(code, no ref) before room-state, which says resumed: false. */
function assertFreshAfter(res, code, user, room, what) {
  const { before, state } = res;
  assert.ok(before.length >= 1, `${what}: expected error ${code} before room-state, but room-state ` +
    `came first (resumed: ${JSON.stringify(state.payload.resumed)})`);
  r.assertResumeError(before[0], code, what);
  assert.strictEqual(before.length, 1, `${what}: only the error comes before room-state, got ${r.brief(before)}`);
  assert.strictEqual(state.payload.resumed, false,
    `${what}: room-state after ${code} says resumed: false (got ${JSON.stringify(state.payload.resumed)})`);
  assert.strictEqual(state.room, room, `${what}: room-state of room ${room}`);
  assert.strictEqual(state.payload.self.user_id, user, `${what}: room-state self is ${user}`);
  assert.strictEqual(typeof state.payload.self.resume_token, 'string', `${what}: a fresh resume_token`);
  assert.ok(state.payload.self.resume_token.length > 0, `${what}: a non-empty resume_token`);
}

/** Cuts c and waits until every client in watchers has seen c.user reconnecting (nothing else about it first). */
async function cutAndSeeReconnecting(c, watchers) {
  await r.cut(c);
  for (const w of watchers) {
    const m = await r.nextPresence(w, c.user);
    assert.deepStrictEqual({ type: m.type, from: m.from, payload: m.payload },
      { type: 'participant-update', from: 'server', payload: { user_id: c.user, status: 'reconnecting' } },
      `${w.user}: the first news of ${c.user}'s dropped connection is participant-update reconnecting ` +
      `(got ${m.type} ${JSON.stringify(m.payload)})`);
  }
}

/**
 * The main scenario: bob's TCP connection is destroyed; while he is away the others
 * chat (broadcast, private to him and to others), send directed signaling to him and
 * to others, react, change settings and raise/lower hands. He resumes awayMs after
 * the cut and must get exactly what is addressed to him, then room-state, then live.
 */
async function missedWhileAway(srv, room, awayMs) {
  const p = await f.people(srv, room, CAST);
  const { alice, carol, dave, obs, bob } = p;
  const others = [alice, carol, dave, obs];
  await f.settle(Object.values(p));
  await chatSeen(alice, bob, 'before the cut'); // bob has processed traffic before he drops
  await f.settle(Object.values(p));
  const last = r.lastSeq(bob);
  const oldResumeToken = bob.state.payload.self.resume_token;
  assert.strictEqual(typeof oldResumeToken, 'string', 'room-state self.resume_token');
  const marks = new Map(others.map((c) => [c, c.all.length]));

  const cutAt = Date.now();
  await cutAndSeeReconnecting(bob, others);

  // Activity while bob is away. Each step ends with a broadcast fence chat from its
  // sender; obs receiving it means the server has handled everything the sender sent
  // before, so a directed message of the step has lo < seq < hi.
  const toBob = [];
  let hi = last;
  let n = 0;
  const step = async (sender, msgs) => {
    const lo = hi;
    for (const m of msgs) sender.send(m);
    const text = `fence ${++n} from ${sender.user}`;
    sender.send({ type: 'chat-message', payload: { text } });
    const at = await obs.nextWhere(ofType('chat-message', (pl) => pl.text === text), 3000, `"${text}" at obs`);
    const errs = sender.all.filter((m) => m.type === 'error');
    assert.deepStrictEqual(errs, [], `${sender.user}'s messages were refused while bob was away ` +
      `(an away member stays a valid target): ${JSON.stringify(errs).slice(0, 600)}`);
    for (const m of msgs) if (m.to === 'bob') toBob.push({ msg: m, sender, lo, hi: at.seq });
    hi = at.seq;
  };
  const cand = (i) => ({ candidate: `candidate:${i} 1 udp 2122260223 127.0.0.1 5000${i} typ host`, sdpMid: '0', sdpMLineIndex: 0 });

  await step(alice, [{ type: 'chat-message', payload: { text: 'hello while bob is away' } }]);
  const firstChat = obs.all.find((m) => m.type === 'chat-message' && m.payload.text === 'hello while bob is away');
  await step(carol, [
    { type: 'chat-message', id: 'pm-bob', to: 'bob', payload: { text: 'for bob only' } },
    { type: 'chat-message', id: 'pm-dave', to: 'dave', payload: { text: 'for dave only' } },
  ]);
  await step(alice, [
    { type: 'offer', to: 'bob', payload: { type: 'offer', sdp: h.sdp(300, 'alice-to-bob') } },
    { type: 'offer', to: 'dave', payload: { type: 'offer', sdp: h.sdp(300, 'alice-to-dave') } },
  ]);
  await step(dave, [
    { type: 'answer', to: 'bob', payload: { type: 'answer', sdp: h.sdp(300, 'dave-to-bob') } },
    { type: 'ice-candidate', to: 'carol', payload: cand(1) },
  ]);
  await step(carol, [
    { type: 'ice-candidate', to: 'bob', payload: cand(2) },
    { type: 'ice-candidate', to: 'bob', payload: { candidate: '', sdpMid: '0', sdpMLineIndex: 0 } },
  ]);
  await step(dave, [{ type: 'reaction', payload: { emoji: '👍' } }]);
  await step(alice, [{ type: 'room-settings-update', payload: { mute_on_join: true } }]);
  await step(carol, [{ type: 'hand-raise', payload: { raised: true } }]);
  await step(dave, [{ type: 'hand-raise', payload: { raised: true } }]);
  await step(alice, [
    { type: 'hand-raise', payload: { raised: false, user_id: 'carol' } },
    { type: 'room-settings-update', payload: { reactions_enabled: false } },
  ]);
  await step(dave, [{ type: 'chat-message', payload: { text: 'a reply', reply_to: firstChat.payload.message_id } }]);
  await step(alice, [{ type: 'ice-candidate', to: 'bob', payload: cand(3) }]);

  const wait = cutAt + awayMs - Date.now();
  if (wait > 0) await h.delay(wait);
  for (const c of others) await c.sync();
  const obsSaw = obs.all.slice(marks.get(obs));

  // bob comes back.
  const { c: bob2, before, state } = await r.joinResume(srv, room, bob.token, oldResumeToken, last, { user: 'bob' });
  const st = state.payload;
  assert.strictEqual(st.resumed, true, `room-state after a resume within the grace period says resumed: true ` +
    `(got ${JSON.stringify(st.resumed)}); messages before it: ${r.brief(before)}`);

  // The replay: seq order, each once, all after last_seq, nothing but room messages.
  const desc = `replay to bob after last_seq ${last}: ${r.brief(before)}`;
  for (const m of before) {
    assert.ok(m.type !== 'error' && m.type !== 'room-state', `no ${m.type} in the replay; ${desc}`);
    assert.ok(Number.isInteger(m.seq) && m.seq > last, `every replayed seq is > last_seq ${last}; ${desc}`);
  }
  for (let i = 1; i < before.length; i++) {
    assert.ok(before[i].seq > before[i - 1].seq, `replay in strictly increasing seq order (no duplicate); ${desc}`);
  }
  const directed = before.filter((m) => m.to !== undefined);
  const broadcast = before.filter((m) => m.to === undefined);
  for (const m of directed) {
    assert.strictEqual(m.to, 'bob', `the replay holds a message directed to someone else: ${JSON.stringify(m).slice(0, 300)}; ${desc}`);
  }
  // Broadcasts: exactly what obs saw after last_seq (original frames, original seq),
  // except the participant-updates about bob's own status, which go to the others.
  const expected = obsSaw.filter((m) => m.seq > last && m.to === undefined && !r.isStatusOf(m, 'bob'));
  assert.deepStrictEqual(broadcast.map(r.stripRef), expected.map(r.stripRef),
    `broadcasts replayed to bob = what obs (never disconnected) saw after seq ${last}\n` +
    `  replayed: ${r.brief(broadcast)}\n  expected: ${r.brief(expected)}`);
  // Directed to bob: every one sent, in the order sent, with a seq from when it was sent.
  assert.strictEqual(directed.length, toBob.length, `directed messages replayed to bob: ${r.brief(directed)}; ` +
    `sent to him: ${toBob.map((e) => `${e.msg.type}(${e.sender.user})`).join(' ')}`);
  toBob.forEach((e, i) => {
    const m = directed[i];
    const ctx = `directed #${i} ${e.msg.type} from ${e.sender.user}: ${JSON.stringify(m).slice(0, 400)}`;
    assert.strictEqual(m.type, e.msg.type, ctx);
    assert.strictEqual(m.from, e.sender.user, ctx);
    assert.ok(m.seq > e.lo && m.seq < e.hi, `${ctx}: seq ${m.seq} lies between ${e.lo} and ${e.hi}, when it was sent`);
    if (m.type === 'chat-message') {
      const echo = e.sender.all.find((x) => x.type === 'chat-message' && x.ref === e.msg.id);
      assert.ok(echo, `${e.sender.user} got the echo of ${e.msg.id}`);
      assert.deepStrictEqual(r.stripRef(m), r.stripRef(echo), `${ctx}: the original frame (as echoed to its sender)`);
    } else {
      assert.deepStrictEqual(m.payload, e.msg.payload, `${ctx}: payload relayed unchanged`);
    }
  });

  // room-state: the current state, a new single-use token.
  const maxSeen = Math.max(last, ...before.map((m) => m.seq), ...obsSaw.map((m) => m.seq));
  assert.strictEqual(st.self.user_id, 'bob');
  assert.strictEqual(typeof st.self.resume_token, 'string', 'resumed room-state carries self.resume_token');
  assert.ok(st.self.resume_token.length > 0, 'a non-empty resume_token');
  assert.notStrictEqual(st.self.resume_token, oldResumeToken, 'a fresh resume_token (single use)');
  assert.ok(Number.isInteger(st.seq) && st.seq >= maxSeen, `room-state payload.seq ${st.seq} is the room's current one (>= ${maxSeen})`);
  assert.ok(state.seq >= maxSeen, `room-state envelope seq ${state.seq} >= ${maxSeen}`);
  assert.deepStrictEqual(st.participants.map((x) => x.user_id).sort(), ['alice', 'bob', 'carol', 'dave', 'obs'],
    'participants after the resume');
  assert.strictEqual(st.settings.mute_on_join, true, 'settings changed while away are current');
  assert.strictEqual(st.settings.reactions_enabled, false, 'settings changed while away are current');
  assert.deepStrictEqual(st.hand_raise_queue.map((x) => [x.user_id, x.position]), [['dave', 1]],
    'hand-raise queue changed while away is current');

  // The others saw reconnecting, then connected; never a leave or a join.
  for (const c of others) {
    const m = await r.nextPresence(c, 'bob');
    assert.deepStrictEqual({ type: m.type, payload: m.payload },
      { type: 'participant-update', payload: { user_id: 'bob', status: 'connected' } },
      `${c.user} sees bob connected again (got ${m.type} ${JSON.stringify(m.payload)})`);
  }
  // Then live traffic both ways.
  const live = await chatSeen(alice, bob2, 'live after the resume');
  assert.ok(live.seq > st.seq && live.seq > maxSeen, `live chat seq ${live.seq} after room-state seq ${st.seq}`);
  for (const c of others) await chatSeen(bob2, c, `bob is back (to ${c.user})`);
  for (const c of others) {
    await c.sync();
    const seen = r.presenceOf(c, 'bob', c.all.slice(marks.get(c))).map((m) => ({ type: m.type, payload: m.payload }));
    assert.deepStrictEqual(seen, [
      { type: 'participant-update', payload: { user_id: 'bob', status: 'reconnecting' } },
      { type: 'participant-update', payload: { user_id: 'bob', status: 'connected' } },
    ], `${c.user} saw bob only go reconnecting and come back, once, no user-left/user-joined`);
  }
  await bob2.sync();
  assert.deepStrictEqual(r.presenceOf(bob2, 'bob'), [], 'bob gets no presence message about himself');
  assert.deepStrictEqual(bob2.all.filter((m) => m.type === 'error'), [], 'bob got no error');
  bob2.assertEnvelopes();
}

test('every fresh join\'s room-state says resumed: false and carries a resume_token', async () => {
  await h.withServer(async (srv) => {
    const alice = await h.join(srv, 'fresh', 'alice');
    const bob = await h.join(srv, 'fresh', 'bob');
    for (const c of [alice, bob]) {
      assert.strictEqual(c.state.payload.resumed, false,
        `${c.user}'s room-state payload.resumed is false (got ${JSON.stringify(c.state.payload.resumed)})`);
      assert.strictEqual(typeof c.state.payload.self.resume_token, 'string');
      assert.ok(c.state.payload.self.resume_token.length > 0);
    }
    assert.notStrictEqual(alice.state.payload.self.resume_token, bob.state.payload.self.resume_token);
  });
});

test('TCP cut, back after 1 s: exactly the missed messages addressed to it, then room-state resumed, then live; nobody saw it leave', async () => {
  await h.withServer({ args: f.RATES_OFF }, async (srv) => {
    await missedWhileAway(srv, 'away1', 1000);
  });
});

test('TCP cut, back after 20 s (default 30 s grace): exactly the missed messages, nobody saw it leave', { timeout: 90000 }, async () => {
  await h.withServer({ args: f.RATES_OFF }, async (srv) => {
    await missedWhileAway(srv, 'away20', 20000);
  });
});

test('close code 1001 enters the grace period; close code 1000 is a leave', async (t) => {
  await h.withServer(async (srv) => {
    await h.sub(t, '1001 (going away): others see reconnecting, the member resumes and gets what it missed', srv, async () => {
      const p = await f.people(srv, 'going', [['alice', 'host'], ['obs', 'participant'], ['bob', 'participant']]);
      await f.settle(Object.values(p));
      const last = r.lastSeq(p.bob);
      const mark = p.obs.all.length;
      p.bob.ws.close(1001, 'going away');
      await p.bob.waitClose(2000);
      const m = await r.nextPresence(p.obs, 'bob');
      assert.deepStrictEqual({ type: m.type, payload: m.payload },
        { type: 'participant-update', payload: { user_id: 'bob', status: 'reconnecting' } },
        `a 1001 close is not a leave: obs sees reconnecting (got ${m.type} ${JSON.stringify(m.payload)})`);
      const missed = await chatSeen(p.alice, p.obs, 'said after the 1001 close');
      const { c: bob2, before, state } = await r.joinResume(srv, 'going', p.bob.token, p.bob.state.payload.self.resume_token, last, { user: 'bob' });
      assert.strictEqual(state.payload.resumed, true, `resumed after a 1001 close (got ${JSON.stringify(state.payload.resumed)})`);
      const expected = p.obs.all.slice(mark).filter((x) => x.seq > last && !r.isStatusOf(x, 'bob'));
      assert.ok(expected.some((x) => x.seq === missed.seq));
      assert.deepStrictEqual(before.map(r.stripRef), expected.map(r.stripRef),
        `replay after the 1001 close: got ${r.brief(before)}, expected ${r.brief(expected)}`);
      const back = await r.nextPresence(p.obs, 'bob');
      assert.deepStrictEqual(back.payload, { user_id: 'bob', status: 'connected' }, `obs sees bob connected: ${JSON.stringify(back)}`);
      await chatSeen(bob2, p.obs, 'bob after 1001');
      await p.obs.sync();
      assert.deepStrictEqual(r.presenceOf(p.obs, 'bob', p.obs.all.slice(mark)).map((x) => x.type),
        ['participant-update', 'participant-update'], 'no user-left / user-joined for bob');
    });
    await h.sub(t, '1000 (normal close): others see user-left reason left at once; the session cannot be resumed', srv, async () => {
      const p = await f.people(srv, 'leaving', [['alice', 'host'], ['obs', 'participant'], ['bob', 'participant']]);
      await f.settle(Object.values(p));
      const last = r.lastSeq(p.bob);
      const rt = p.bob.state.payload.self.resume_token;
      const mark = p.obs.all.length;
      const cl = await p.bob.end();
      assert.strictEqual(cl.code, 1000);
      const m = await r.nextPresence(p.obs, 'bob');
      assert.deepStrictEqual({ type: m.type, payload: m.payload },
        { type: 'user-left', payload: { user_id: 'bob', reason: 'left' } },
        `a 1000 close is a leave (got ${m.type} ${JSON.stringify(m.payload)})`);
      // Left means gone: the old token resumes nothing. The contract names RESUME_INVALID
      // for an unknown token and RESUME_EXPIRED for a session that is over; either says it.
      const res = await r.joinResume(srv, 'leaving', p.bob.token, rt, last, { user: 'bob' });
      assert.ok(res.before.length >= 1, `resuming a session that was left with 1000 fails with an error first; ` +
        `got room-state resumed: ${JSON.stringify(res.state.payload.resumed)} straight away`);
      const code = res.before[0].payload && res.before[0].payload.code;
      assert.ok(code === 'RESUME_INVALID' || code === 'RESUME_EXPIRED', `RESUME_INVALID or RESUME_EXPIRED after a leave, got ${JSON.stringify(res.before[0])}`);
      assertFreshAfter(res, code, 'bob', 'leaving', 'resume after a 1000 close');
      const j = await r.nextPresence(p.obs, 'bob');
      assert.strictEqual(j.type, 'user-joined', `bob's new connection is a fresh join for the others: ${JSON.stringify(j)}`);
      await p.obs.sync();
      assert.deepStrictEqual(r.presenceOf(p.obs, 'bob', p.obs.all.slice(mark)).map((x) => x.type), ['user-left', 'user-joined'],
        'no participant-update reconnecting for a member that closed with 1000');
    });
  });
});

test('grace expiry: the others get user-left reason timeout; a later resume gets RESUME_EXPIRED and joins afresh', async () => {
  await h.withServer({ args: ['--resume-grace-ms', '1000'] }, async (srv) => {
    const p = await f.people(srv, 'expire', [['alice', 'host'], ['obs', 'participant'], ['bob', 'participant']]);
    await f.settle(Object.values(p));
    const last = r.lastSeq(p.bob);
    const rt = p.bob.state.payload.self.resume_token;
    await cutAndSeeReconnecting(p.bob, [p.alice, p.obs]);
    for (const c of [p.alice, p.obs]) {
      const m = await r.nextPresence(c, 'bob', 8000);
      assert.deepStrictEqual({ type: m.type, from: m.from, payload: m.payload },
        { type: 'user-left', from: 'server', payload: { user_id: 'bob', reason: 'timeout' } },
        `${c.user}: after the grace period bob leaves with reason timeout (got ${m.type} ${JSON.stringify(m.payload)})`);
    }
    const res = await r.joinResume(srv, 'expire', p.bob.token, rt, last, { user: 'bob' });
    assertFreshAfter(res, 'RESUME_EXPIRED', 'bob', 'expire', 'resume after the grace period');
    const j = await r.nextPresence(p.obs, 'bob');
    assert.strictEqual(j.type, 'user-joined', `after RESUME_EXPIRED bob joins afresh: the others see user-joined, got ${JSON.stringify(j)}`);
    await chatSeen(res.c, p.obs, 'bob again after expiry');
    await chatSeen(p.alice, res.c, 'welcome back bob');
  });
});

test('RESUME_GAP when the room log no longer holds last_seq + 1 (count bound), then a fresh join that works', async () => {
  await h.withServer({ args: ['--room-log-max', '16'] }, async (srv) => {
    const p = await f.people(srv, 'gap', [['alice', 'host'], ['obs', 'participant'], ['bob', 'participant']]);
    await f.settle(Object.values(p));
    const last = r.lastSeq(p.bob);
    await cutAndSeeReconnecting(p.bob, [p.obs]);
    for (let i = 0; i < 40; i++) p.alice.send({ type: 'chat-message', payload: { text: `filler ${i}` } });
    await p.obs.nextWhere(ofType('chat-message', (pl) => pl.text === 'filler 39'), 5000, 'the 40th filler chat at obs');
    const res = await r.joinResume(srv, 'gap', p.bob.token, p.bob.state.payload.self.resume_token, last, { user: 'bob' });
    assertFreshAfter(res, 'RESUME_GAP', 'bob', 'gap', `resume from last_seq ${last} after 40 messages with --room-log-max 16`);
    await chatSeen(res.c, p.obs, 'bob after the gap');
    await chatSeen(p.alice, res.c, 'alice to bob after the gap');
  });
});

test('RESUME_GAP when last_seq + 1 has aged out of the room log (age bound)', async () => {
  await h.withServer({ args: ['--room-log-max-age-ms', '1000'] }, async (srv) => {
    const p = await f.people(srv, 'aged', [['alice', 'host'], ['obs', 'participant'], ['bob', 'participant']]);
    await f.settle(Object.values(p));
    const last = r.lastSeq(p.bob);
    await cutAndSeeReconnecting(p.bob, [p.obs]);
    await chatSeen(p.alice, p.obs, 'old news');
    await h.delay(1600); // older than --room-log-max-age-ms (the grace period is the default 30 s)
    await chatSeen(p.alice, p.obs, 'new news');
    const res = await r.joinResume(srv, 'aged', p.bob.token, p.bob.state.payload.self.resume_token, last, { user: 'bob' });
    assertFreshAfter(res, 'RESUME_GAP', 'bob', 'aged', `resume from last_seq ${last} after the log aged out`);
    await chatSeen(res.c, p.obs, 'bob after the aged gap');
  });
});

test('RESUME_INVALID: garbage, already used, another user\'s, another room\'s token; each then a working fresh join', async (t) => {
  await h.withServer(async (srv) => {
    await h.sub(t, 'a garbage resume_token (an away member, and a newcomer)', srv, async () => {
      const p = await f.people(srv, 'inv1', [['alice', 'host'], ['obs', 'participant'], ['bob', 'participant']]);
      await f.settle(Object.values(p));
      const last = r.lastSeq(p.bob);
      await cutAndSeeReconnecting(p.bob, [p.obs]);
      const res = await r.joinResume(srv, 'inv1', p.bob.token, 'not-a-resume-token', last, { user: 'bob' });
      assertFreshAfter(res, 'RESUME_INVALID', 'bob', 'inv1', 'garbage resume_token');
      await chatSeen(res.c, p.obs, 'bob after a garbage token');
      // Someone who never was in the room, with a well-formed but unknown token.
      const zedTok = f.roleTok(srv, 'zed', 'participant', 'inv1');
      const z = await r.joinResume(srv, 'inv1', zedTok, 'ab'.repeat(32), 0, { user: 'zed', via: 'header' });
      assertFreshAfter(z, 'RESUME_INVALID', 'zed', 'inv1', 'unknown resume_token of a newcomer');
      const j = await r.nextPresence(p.obs, 'zed');
      assert.strictEqual(j.type, 'user-joined', `zed's failed resume is a fresh join: ${JSON.stringify(j)}`);
      await chatSeen(z.c, p.obs, 'zed is here');
    });
    await h.sub(t, 'a resume_token already used once (single use)', srv, async () => {
      const p = await f.people(srv, 'inv2', [['alice', 'host'], ['obs', 'participant'], ['bob', 'participant']]);
      await f.settle(Object.values(p));
      const rt1 = p.bob.state.payload.self.resume_token;
      const last1 = r.lastSeq(p.bob);
      await cutAndSeeReconnecting(p.bob, [p.obs]);
      const ok = await r.joinResume(srv, 'inv2', p.bob.token, rt1, last1, { user: 'bob' });
      assert.strictEqual(ok.state.payload.resumed, true,
        `the first use of the token resumes (got resumed: ${JSON.stringify(ok.state.payload.resumed)}; before: ${r.brief(ok.before)})`);
      const rt2 = ok.state.payload.self.resume_token;
      assert.notStrictEqual(rt2, rt1, 'each room-state carries the next token');
      const back = await r.nextPresence(p.obs, 'bob');
      assert.deepStrictEqual(back.payload, { user_id: 'bob', status: 'connected' });
      await chatSeen(ok.c, p.obs, 'bob resumed once');
      const last2 = r.lastSeq(ok.c);
      await cutAndSeeReconnecting(ok.c, [p.obs]);
      const res = await r.joinResume(srv, 'inv2', p.bob.token, rt1, last2, { user: 'bob' });
      assertFreshAfter(res, 'RESUME_INVALID', 'bob', 'inv2', 'the first resume_token used a second time');
      await chatSeen(res.c, p.obs, 'bob after reusing a token');
    });
    await h.sub(t, 'another user\'s resume_token', srv, async () => {
      const p = await f.people(srv, 'inv3', [['alice', 'host'], ['obs', 'participant'], ['bob', 'participant'], ['eve', 'participant']]);
      await f.settle(Object.values(p));
      const mark = p.obs.all.length;
      await cutAndSeeReconnecting(p.bob, [p.obs]);
      await cutAndSeeReconnecting(p.eve, [p.obs]);
      const res = await r.joinResume(srv, 'inv3', p.eve.token, p.bob.state.payload.self.resume_token, r.lastSeq(p.bob), { user: 'eve' });
      assertFreshAfter(res, 'RESUME_INVALID', 'eve', 'inv3', 'eve presenting bob\'s resume_token');
      assert.strictEqual(res.state.payload.self.user_id, 'eve', 'eve does not become bob');
      await chatSeen(res.c, p.obs, 'eve with her own identity');
      await p.obs.sync();
      const aboutBob = r.presenceOf(p.obs, 'bob', p.obs.all.slice(mark)).map((m) => m.payload.status || m.type);
      assert.deepStrictEqual(aboutBob, ['reconnecting'], 'bob\'s session was not resumed by eve\'s connection');
    });
    await h.sub(t, 'a resume_token from another room', srv, async () => {
      const bobTok = r.tokenFor(srv, 'bob'); // no room claim: valid for both rooms
      const alice = (await f.people(srv, 'inv4a', [['alice', 'host']])).alice;
      const bob = await h.connect(srv, 'inv4a', bobTok);
      bob.user = 'bob';
      bob.state = await bob.next('room-state');
      await alice.next('user-joined');
      const obs = (await f.people(srv, 'inv4b', [['obs', 'host']])).obs;
      const mark = alice.all.length;
      await cutAndSeeReconnecting(bob, [alice]);
      const res = await r.joinResume(srv, 'inv4b', bobTok, bob.state.payload.self.resume_token, r.lastSeq(bob), { user: 'bob' });
      assertFreshAfter(res, 'RESUME_INVALID', 'bob', 'inv4b', 'a resume_token of room inv4a presented to room inv4b');
      const j = await r.nextPresence(obs, 'bob');
      assert.strictEqual(j.type, 'user-joined', `bob joins inv4b afresh: ${JSON.stringify(j)}`);
      await chatSeen(res.c, obs, 'bob in the other room');
      await alice.sync();
      assert.deepStrictEqual(r.presenceOf(alice, 'bob', alice.all.slice(mark)).map((m) => m.payload.status || m.type), ['reconnecting'],
        'bob is still away in inv4a: the other room\'s connection did not resume him there');
    });
  });
});

test('a second live connection resuming the same session replaces the first (4001 after SESSION_REPLACED); others see nothing', async () => {
  await h.withServer(async (srv) => {
    const p = await f.people(srv, 'twice', [['alice', 'host'], ['obs', 'participant'], ['bob', 'participant']]);
    await f.settle(Object.values(p));
    const last = r.lastSeq(p.bob);
    const rt = p.bob.state.payload.self.resume_token;
    const markObs = p.obs.all.length;
    const markAlice = p.alice.all.length;
    for (const text of ['one', 'two', 'three']) await chatSeen(p.alice, p.bob, `while bob is still connected: ${text}`);
    await p.obs.sync();
    const expected = p.obs.all.slice(markObs).filter((m) => m.seq > last);
    // The client has not processed those three yet (last_seq before them) and opens a second connection.
    const { c: bob2, before, state } = await r.joinResume(srv, 'twice', p.bob.token, rt, last, { user: 'bob' });
    assert.strictEqual(state.payload.resumed, true, `the second connection resumes (got ${JSON.stringify(state.payload.resumed)}; before: ${r.brief(before)})`);
    assert.notStrictEqual(state.payload.self.resume_token, rt);
    assert.deepStrictEqual(before.map(r.stripRef), expected.map(r.stripRef),
      `replay to the second connection: got ${r.brief(before)}, expected ${r.brief(expected)}`);
    const cl = await p.bob.waitClose(3000);
    assert.strictEqual(cl.code, 4001, `the first connection is closed with 4001, got ${JSON.stringify(cl)}`);
    const errs = p.bob.all.filter((m) => m.type === 'error');
    assert.deepStrictEqual(errs.map((m) => m.payload.code), ['SESSION_REPLACED'],
      `the first connection gets SESSION_REPLACED before 4001: ${r.brief(p.bob.all)}`);
    assert.strictEqual(p.bob.all[p.bob.all.length - 1], errs[0], 'SESSION_REPLACED is the last message before the close');
    // The others: nothing about bob at all.
    await chatSeen(p.alice, bob2, 'after the replacement');
    await chatSeen(bob2, p.obs, 'bob on the second connection');
    for (const [c, mark] of [[p.obs, markObs], [p.alice, markAlice]]) {
      await c.sync();
      assert.deepStrictEqual(r.presenceOf(c, 'bob', c.all.slice(mark)), [],
        `${c.user} sees no user-left / user-joined / participant-update status for bob`);
    }
  });
});

/** alice makes bob a moderator without can_share_screen; bob, then carol, raise hands. */
async function promoteAndRaise(p) {
  const { alice, bob, carol, obs } = p;
  alice.send({ type: 'role-updated', payload: { user_id: 'bob', role: 'moderator' } });
  await obs.nextWhere(ofType('role-updated', (pl) => pl.user_id === 'bob' && pl.role === 'moderator'), 2000, 'role-updated at obs');
  alice.send({ type: 'permission-updated', payload: { user_id: 'bob', permissions: { can_share_screen: false } } });
  await obs.nextWhere(ofType('permission-updated', (pl) => pl.user_id === 'bob'), 2000, 'permission-updated at obs');
  bob.send({ type: 'hand-raise', payload: { raised: true } });
  await obs.nextWhere(ofType('hand-raise-queue', (pl) => pl.queue.length === 1), 2000, 'queue [bob] at obs');
  carol.send({ type: 'hand-raise', payload: { raised: true } });
  await obs.nextWhere(ofType('hand-raise-queue', (pl) => pl.queue.length === 2), 2000, 'queue [bob, carol] at obs');
  for (const c of Object.values(p)) {
    assert.deepStrictEqual(c.all.filter((m) => m.type === 'error'), [], `${c.user}: no error while setting up`);
  }
}

/** bob's member kept moderator, can_share_screen false and its hand in first place. */
async function assertKept(srv, room, p, bobNow, state, what) {
  const st = state.payload;
  assert.strictEqual(st.self.role, 'moderator', `${what}: self.role (got ${st.self.role})`);
  assert.strictEqual(st.self.permissions.can_share_screen, false, `${what}: the override can_share_screen false`);
  assert.strictEqual(st.self.permissions.can_moderate, true, `${what}: moderator permissions`);
  const me = st.participants.find((x) => x.user_id === 'bob');
  assert.ok(me, `${what}: bob in participants`);
  assert.strictEqual(me.role, 'moderator', `${what}: bob's role in participants`);
  assert.deepStrictEqual(st.hand_raise_queue.map((x) => [x.user_id, x.position]), [['bob', 1], ['carol', 2]],
    `${what}: the raised hand kept its place`);
  const rest = await h.api(srv, 'GET', `/webrtc/rooms/${room}/permissions/bob`, p.alice.token);
  assert.strictEqual(rest.status, 200, rest.text);
  assert.strictEqual(rest.json.role, 'moderator', `${what}: REST role ${rest.text}`);
  assert.deepStrictEqual(rest.json.overrides, { can_share_screen: false }, `${what}: REST overrides ${rest.text}`);
  // In force, not just displayed.
  await h.wsRefused(bobNow, { type: 'screen-share-control', payload: { action: 'start' } }, 'PERMISSION_DENIED');
  bobNow.send({ type: 'hand-raise', payload: { raised: false, user_id: 'carol' } });
  const low = await p.obs.nextWhere(ofType('hand-raise', (pl) => pl.user_id === 'carol' && pl.raised === false), 2000,
    `${what}: bob, a moderator, lowers carol's hand`);
  assert.strictEqual(low.payload.by, 'bob');
}

test('role, permission overrides and a raised hand survive a resume', async () => {
  await h.withServer({ args: f.RATES_OFF }, async (srv) => {
    const p = await f.people(srv, 'keep', [['alice', 'host'], ['obs', 'participant'], ['bob', 'participant'], ['carol', 'participant']]);
    await promoteAndRaise(p);
    await f.settle(Object.values(p));
    const last = r.lastSeq(p.bob);
    await cutAndSeeReconnecting(p.bob, [p.obs]);
    await h.delay(300);
    const { c: bob2, state } = await r.joinResume(srv, 'keep', p.bob.token, p.bob.state.payload.self.resume_token, last, { user: 'bob' });
    assert.strictEqual(state.payload.resumed, true, `resumed (got ${JSON.stringify(state.payload.resumed)})`);
    await assertKept(srv, 'keep', p, bob2, state, 'after a resume');
  });
});

test('a fresh join of a member already in the room replaces the session and keeps role, overrides and raised hand', async () => {
  await h.withServer({ args: f.RATES_OFF }, async (srv) => {
    const p = await f.people(srv, 'rejoin', [['alice', 'host'], ['obs', 'participant'], ['bob', 'participant'], ['carol', 'participant']]);
    await promoteAndRaise(p);
    await f.settle(Object.values(p));
    const mark = p.obs.all.length;
    const bob2 = await h.connect(srv, 'rejoin', p.bob.token); // the same token (role participant), no resume_token
    bob2.user = 'bob';
    const state = await bob2.next(undefined, 3000);
    assert.strictEqual(state.type, 'room-state', `first message: ${JSON.stringify(state).slice(0, 300)}`);
    const cl = await p.bob.waitClose(3000);
    assert.strictEqual(cl.code, 4001, `old connection closed with 4001: ${JSON.stringify(cl)}`);
    const errs = p.bob.all.filter((m) => m.type === 'error');
    assert.deepStrictEqual(errs.map((m) => m.payload.code), ['SESSION_REPLACED']);
    const left = await r.nextPresence(p.obs, 'bob');
    assert.deepStrictEqual({ type: left.type, payload: left.payload }, { type: 'user-left', payload: { user_id: 'bob', reason: 'replaced' } });
    const joined = await r.nextPresence(p.obs, 'bob');
    assert.strictEqual(joined.type, 'user-joined', JSON.stringify(joined));
    assert.strictEqual(joined.payload.role, 'moderator', `user-joined shows the kept role: ${JSON.stringify(joined.payload)}`);
    await assertKept(srv, 'rejoin', p, bob2, state, 'after a fresh join replacing the session');
    assert.strictEqual(state.payload.resumed, false, `a fresh join says resumed: false (got ${JSON.stringify(state.payload.resumed)})`);
    await p.obs.sync();
    assert.deepStrictEqual(r.presenceOf(p.obs, 'bob', p.obs.all.slice(mark)).map((m) => m.type), ['user-left', 'user-joined']);
  });
});
