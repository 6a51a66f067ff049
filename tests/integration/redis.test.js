'use strict';
// Several instances sharing rooms through Redis (issue 11): three huddle
// instances and a throwaway redis-server on loopback.

const test = require('node:test');
const assert = require('node:assert');
const h = require('./helpers');
const rh = require('./redis_helpers');
const rs = require('./resume_helpers');

test('members on three instances: one room, the same seq order, directed relay, REST through any instance', async () => {
  await rh.withCluster(3, async (r, [A, B, C]) => {
    const a = await h.join(A, 'spread', 'alice', { role: 'host' });
    const b = await h.join(B, 'spread', 'bob');
    const c = await h.join(C, 'spread', 'carol');
    const ids = c.state.payload.participants.map((p) => p.user_id).sort();
    assert.deepStrictEqual(ids, ['alice', 'bob', 'carol'], 'carol on C sees the members of A and B');
    await a.nextWhere((m) => m.type === 'user-joined' && m.payload.user_id === 'carol', 3000);
    await b.nextWhere((m) => m.type === 'user-joined' && m.payload.user_id === 'carol', 3000);

    // A burst of concurrent chat from all three: everyone sees one order.
    const N = 40;
    for (let i = 0; i < N; i++) {
      a.send({ type: 'chat-message', payload: { text: `a${i}` } });
      b.send({ type: 'chat-message', payload: { text: `b${i}` } });
      c.send({ type: 'chat-message', payload: { text: `c${i}` } });
    }
    for (const cl of [a, b, c]) {
      await h.waitFor(() => rh.chats(cl).length >= 3 * N, 10000, 20, `${cl.user} got ${3 * N} chats`);
    }
    assert.deepStrictEqual(rh.chats(b), rh.chats(a), 'bob (B) and alice (A) saw the same chat sequence');
    assert.deepStrictEqual(rh.chats(c), rh.chats(a), 'carol (C) and alice (A) saw the same chat sequence');
    for (const cl of [a, b, c]) cl.assertEnvelopes();
    const seqs = rh.chats(a).map((s) => Number(s.split(':')[0]));
    for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i] > seqs[i - 1], 'increasing seq');

    // Directed relay from C to B (neither owns the room), and only to B.
    c.send({ type: 'offer', to: 'bob', payload: { sdp: h.sdp(100, 'c2b') } });
    const off = await b.next('offer', 3000);
    assert.strictEqual(off.from, 'carol');
    await a.expectNoneWhere((m) => m.type === 'offer', 'offer at alice');
    b.send({ type: 'answer', to: 'carol', payload: { sdp: h.sdp(100, 'b2c') } });
    assert.strictEqual((await c.next('answer', 3000)).from, 'bob');
    b.send({ type: 'ice-candidate', to: 'alice', payload: { candidate: 'candidate:1 1 udp 1 127.0.0.1 9 typ host' } });
    assert.strictEqual((await a.next('ice-candidate', 3000)).from, 'bob');

    // A change through A (settings), read through B and C.
    const tokA = h.mintToken(h.SECRET, { sub: 'alice', role: 'host' });
    const tokB = h.mintToken(h.SECRET, { sub: 'bob' });
    const set = await h.api(A, 'POST', '/webrtc/rooms/spread/settings', tokA, { chat_enabled: false });
    assert.strictEqual(set.status, 200, set.text);
    for (const S of [B, C]) {
      const got = await h.api(S, 'GET', '/webrtc/rooms/spread/settings', tokB);
      assert.strictEqual(got.status, 200, got.text);
      assert.strictEqual(got.json.settings ? got.json.settings.chat_enabled : got.json.chat_enabled, false, got.text);
    }
    // A change through C (a role), seen by everyone's socket and by REST on A.
    const tokC = h.mintToken(h.SECRET, { sub: 'carol', role: 'host' });
    const role = await h.api(C, 'POST', '/webrtc/rooms/spread/roles/bob', tokC, { role: 'moderator' });
    assert.ok(role.status === 403 || role.status === 200, role.text); // carol's token says host; her seat says participant
    const role2 = await h.api(B, 'POST', '/webrtc/rooms/spread/roles/bob', tokA, { role: 'moderator' });
    assert.strictEqual(role2.status, 200, role2.text);
    await b.nextWhere((m) => m.type === 'role-updated', 3000);
    await c.nextWhere((m) => m.type === 'role-updated', 3000);
    const rg = await h.api(A, 'GET', '/webrtc/rooms/spread/roles/bob', tokA);
    assert.strictEqual(rg.status, 200, rg.text);
    assert.strictEqual(rg.json.role, 'moderator', rg.text);

    const hb = await rh.clusterHealth(B);
    assert.ok(hb.components.cluster.forwarded_out > 0, JSON.stringify(hb));
    const owners = [];
    for (const S of [A, B, C]) owners.push(...(await rh.clusterHealth(S)).components.cluster.owned_rooms);
    assert.deepStrictEqual(owners, ['spread'], 'exactly one owner');
  });
});

test('resume on another instance: the member gets exactly what it missed', async () => {
  await rh.withCluster(3, async (r, [A, B, C]) => {
    const a = await h.join(A, 'hop', 'alice');
    const tokB = rs.tokenFor(B, 'bob');
    const b = await h.join(B, 'hop', 'bob');
    await a.nextWhere((m) => m.type === 'user-joined', 3000);
    a.send({ type: 'chat-message', payload: { text: 'before' } });
    await b.nextWhere((m) => m.type === 'chat-message', 3000);
    const last = rs.lastSeq(b);
    const rt = b.state.payload.self.resume_token;
    await rs.cut(b);
    await a.nextWhere((m) => rs.isStatusOf(m, 'bob') && m.payload.status === 'reconnecting', 3000);
    for (let i = 0; i < 5; i++) a.send({ type: 'chat-message', payload: { text: `missed${i}` } });
    await h.waitFor(() => rh.chats(a).length >= 6, 3000);
    // C has nobody in the room yet: it finds the owner in Redis and forwards.
    const parts = await h.api(C, 'GET', '/webrtc/rooms/hop/participants', tokB);
    assert.strictEqual(parts.status, 200, parts.text);
    assert.deepStrictEqual((parts.json.participants || parts.json).map((p) => p.user_id).sort(), ['alice', 'bob']);
    const { c: b2, before, state } = await rs.joinResume(C, 'hop', tokB, rt, last, { user: 'bob' });
    assert.strictEqual(state.payload.resumed, true, JSON.stringify(state).slice(0, 300));
    const missed = before.filter((m) => m.type === 'chat-message').map((m) => m.payload.text);
    assert.deepStrictEqual(missed, ['missed0', 'missed1', 'missed2', 'missed3', 'missed4']);
    await a.nextWhere((m) => rs.isStatusOf(m, 'bob') && m.payload.status === 'connected', 3000);
    b2.send({ type: 'chat-message', payload: { text: 'back' } });
    assert.strictEqual((await a.nextWhere((m) => m.type === 'chat-message' && m.payload.text === 'back', 3000)).from, 'bob');
  });
});

test('capacity across instances: 60 joins at once over three instances into a room of 50', async () => {
  await rh.withCluster(3, async (r, list) => {
    const attempts = [];
    for (let i = 0; i < 60; i++) {
      const S = list[i % 3];
      attempts.push((async () => {
        try {
          const c = await h.connect(S, 'full', h.mintToken(h.SECRET, { sub: `u${i}` }), { timeoutMs: 8000 });
          const m = await c.next(undefined, 8000);
          return m.type === 'room-state' ? { in: true, c } : { in: false, code: m.payload && m.payload.code, c };
        } catch (e) {
          if (e instanceof h.HttpRefusal) return { in: false, code: e.body && e.body.error.code };
          throw e;
        }
      })());
    }
    const res = await Promise.all(attempts);
    const admitted = res.filter((x) => x.in).length;
    const codes = res.filter((x) => !x.in).map((x) => x.code);
    assert.strictEqual(admitted, 50, `admitted ${admitted}; refusals ${JSON.stringify(codes)}`);
    assert.ok(codes.every((x) => x === 'ROOM_FULL'), JSON.stringify(codes));
    const tok = h.mintToken(h.SECRET, { sub: 'u0' });
    for (const S of list) {
      const p = await h.api(S, 'GET', '/webrtc/rooms/full/participants', tok);
      assert.strictEqual(p.status, 200, p.text);
      const arr = p.json.participants || p.json;
      assert.strictEqual(arr.length, 50, `instance ${S.port}: ${p.text.slice(0, 200)}`);
    }
  });
});

test('rate limits across instances: one user on two instances shares one chat budget', async () => {
  await rh.withCluster(2, { rateLimits: true, args: ['--rate-chat-message', '10/1m'] }, async (r, [A, B]) => {
    // Room x is owned by A, room y by B: the user's two connections are
    // handled by two different owners.
    const x = await h.join(A, 'rl-x', 'dana');
    const y = await h.join(B, 'rl-y', 'dana');
    const owners = {};
    for (const [S, name] of [[A, 'A'], [B, 'B']]) {
      for (const room of (await rh.clusterHealth(S)).components.cluster.owned_rooms) owners[room] = name;
    }
    assert.deepStrictEqual(owners, { 'rl-x': 'A', 'rl-y': 'B' });
    let ok = 0;
    const refused = [];
    for (let i = 0; i < 16; i++) {
      const c = i % 2 ? y : x;
      const id = `c${i}`;
      c.send({ type: 'chat-message', id, payload: { text: `t${i}` } });
      const m = await c.nextWhere((mm) => mm.ref === id || (mm.payload && mm.payload.ref === id), 3000);
      if (m.type === 'chat-message') ok++;
      else refused.push(m.payload.code);
    }
    assert.strictEqual(ok, 10, `accepted ${ok}, refused ${JSON.stringify(refused)}`);
    assert.deepStrictEqual(refused, Array(6).fill('RATE_LIMIT_EXCEEDED'));
  });
});

test('--redis-url with a password and a db index; a wrong password is degraded, a bad URL refused', async () => {
  const pw = 'pw-redis-test-1234';
  await rh.withCluster(2, { redisArgs: ['--requirepass', pw], redisUrl: (r) => `redis://:${pw}@${h.HOST}:${r.port}/3` },
    async (r, [A, B]) => {
      const a = await h.join(A, 'authed', 'alice');
      const b = await h.join(B, 'authed', 'bob');
      b.send({ type: 'chat-message', payload: { text: 'through db 3' } });
      assert.strictEqual((await a.next('chat-message', 3000)).payload.text, 'through db 3');
      const keys = (n) => require('node:child_process').execFileSync('redis-cli',
        ['-p', String(r.port), '-a', pw, '--no-auth-warning', '-n', String(n), 'KEYS', 'huddle:lease:*']).toString().trim();
      assert.strictEqual(keys(3), 'huddle:lease:authed');
      assert.strictEqual(keys(0), '');
      // The same Redis with a wrong password: the instance runs, degraded.
      const W = await h.startServer({ args: ['--redis-url', `redis://:wrong@${h.HOST}:${r.port}/3`] });
      try {
        await h.delay(500);
        const hw = await rh.clusterHealth(W);
        assert.strictEqual(hw.status, 'degraded', JSON.stringify(hw));
        assert.strictEqual(hw.components.cluster.redis, 'unavailable');
        await W.waitForLog(/redis_not_ready|redis_setup_failed/, 3000);
      } finally {
        await W.stopAndAssert();
        W.cleanup();
      }
    });
  for (const bad of ['http://127.0.0.1:6379', 'redis://', 'redis://127.0.0.1:99999', 'redis://127.0.0.1:6379/x']) {
    const res = h.runHuddle(['--listen', `${h.HOST}:0`, '--data-dir', h.freshDataDir(), '--jwt-secret', h.SECRET,
      '--redis-url', bad]);
    assert.notStrictEqual(res.status, 0, `${bad} refused`);
    assert.match(res.stderr, /redis-url/, res.stderr);
  }
});

test('waiting room across instances: a waiter on B is admitted by the host on A; /metrics on B', async () => {
  await rh.withCluster(2, async (r, [A, B]) => {
    const host = await h.join(A, 'wr', 'hana', { role: 'host' });
    host.send({ type: 'room-settings-update', payload: { waiting_room: true } });
    await host.next('room-settings-update', 3000);
    const c = await h.connect(B, 'wr', h.mintToken(h.SECRET, { sub: 'walt' }));
    assert.strictEqual((await c.next(undefined, 3000)).type, 'waiting-room-join');
    await host.nextWhere((m) => m.type === 'waiting-room-join' && m.payload.user_id === 'walt', 3000);
    host.send({ type: 'waiting-room-admit', payload: { user_id: 'walt' } });
    const st = await c.next('room-state', 3000);
    assert.deepStrictEqual(st.payload.participants.map((p) => p.user_id).sort(), ['hana', 'walt']);
    c.send({ type: 'chat-message', payload: { text: 'hello from the waiter' } });
    assert.strictEqual((await host.next('chat-message', 3000)).payload.text, 'hello from the waiter');
    const m = await h.api(B, 'GET', '/metrics', h.mintToken(h.SECRET, { sub: 'ops', admin: true }));
    assert.strictEqual(m.status, 200);
    assert.match(m.text, /^huddle_cluster_info\{instance_id="[0-9a-f]{12}"\} 1$/m);
    assert.match(m.text, /^huddle_cluster_forwarded_out_total [1-9]\d*$/m);
    assert.match(m.text, /^huddle_cluster_takeovers_total 0$/m);
    assert.match(m.text, /^huddle_cluster_stream_lag_seconds \d/m);
  });
});
