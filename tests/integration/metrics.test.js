'use strict';
// Endpoints 29 (webrtc-metrics), 30 (stats) and GET /metrics: admin only, and
// the counters really move with the traffic.

const test = require('node:test');
const assert = require('node:assert');
const h = require('./helpers');
const f = require('./feature_helpers');

const PATHS = ['/webrtc/webrtc-metrics', '/webrtc/stats', '/metrics'];

const d = (after, before, ...path) => {
  const get = (o) => path.reduce((x, k) => (x == null ? undefined : x[k]), o) || 0;
  return get(after) - get(before);
};

test('metrics, stats and /metrics need an admin token', async () => {
  await h.withServer({}, async (srv) => {
    const participant = f.tok(srv, { sub: 'bob' });
    const host = f.tok(srv, { sub: 'alice', role: 'host' });
    const admin = f.adminTok(srv);
    for (const p of PATHS) {
      f.assertRestError(await f.rest(srv, 'GET', p, { token: participant }), 403, 'FORBIDDEN', `${p} participant`);
      f.assertRestError(await f.rest(srv, 'GET', p, { token: host }), 403, 'FORBIDDEN', `${p} host`);
      f.assertRestError(await f.rest(srv, 'GET', p), 401, 'UNAUTHORIZED', `${p} no token`);
      f.assertRestError(await f.rest(srv, 'GET', p, { token: `${admin}x` }), 401, 'INVALID_TOKEN', `${p} bad signature`);
      f.assertRestError(await f.rest(srv, 'GET', p, { token: f.tok(srv, { sub: 'ops', admin: 'true' }) }), 401, 'INVALID_TOKEN', `${p} admin claim of the wrong type`);
      const ok = await f.rest(srv, 'GET', p, { token: admin });
      assert.strictEqual(ok.status, 200, `${p}: ${ok.text}`);
    }
  });
});

test('webrtc-metrics: connections, rooms, participants, messages, errors and rate-limit hits follow the traffic', async (t) => {
  await h.withServer({ args: ['--rate-reaction', '1/1h'] }, async (srv) => {
    const m0 = await f.metrics(srv);
    assert.ok(Number.isInteger(m0.uptime_s) && m0.uptime_s >= 0);
    assert.strictEqual(m0.rooms, 0);
    assert.strictEqual(m0.participants, 0);
    assert.ok(m0.connections.current >= 1, 'the metrics request itself is a connection');
    for (const k of ['websocket_message', 'chat_message', 'hand_raise', 'reaction', 'file_share', 'room_create', 'settings_update', 'api_call']) {
      assert.strictEqual(m0.rate_limit_hits[k], 0, `rate_limit_hits.${k}`);
    }
    const { alice, bob, carol } = await f.joinAll(srv, 'met', [['alice'], ['bob'], ['carol']]);
    let m1;

    await h.sub(t, 'joins: connections.current +3, rooms 1, participants 3, websocket_total +3', srv, async () => {
      m1 = await h.waitFor(async () => {
        const m = await f.metrics(srv);
        return m.connections.current === m0.connections.current + 3 && m;
      }, 3000, 20, 'connections.current + 3');
      assert.strictEqual(m1.rooms, 1);
      assert.strictEqual(m1.participants, 3);
      assert.strictEqual(d(m1, m0, 'connections', 'websocket_total'), 3);
      assert.ok(d(m1, m0, 'connections', 'total') >= 4, 'three WebSockets and at least one HTTP request');
      assert.strictEqual(d(m1, m0, 'messages', 'out_by_type', 'user-joined'), 3, '1 + 2 user-joined deliveries');
    });

    await h.sub(t, 'a chat in a room of 3: in +1, out +3', srv, async () => {
      const before = await f.metrics(srv);
      alice.send({ type: 'chat-message', payload: { text: 'hi all' } });
      for (const c of [alice, bob, carol]) await c.next('chat-message');
      const after = await f.metrics(srv);
      assert.strictEqual(d(after, before, 'messages', 'in_by_type', 'chat-message'), 1);
      assert.strictEqual(d(after, before, 'messages', 'out_by_type', 'chat-message'), 3);
      assert.strictEqual(d(after, before, 'messages', 'in_total'), 1);
      assert.strictEqual(d(after, before, 'messages', 'out_total'), 3);
      assert.ok(d(after, before, 'bytes', 'in') > 0, 'bytes.in grows');
      assert.ok(d(after, before, 'bytes', 'out') > 0, 'bytes.out grows');
      assert.ok(d(after, before, 'http_requests', 'total') >= 1);
      assert.ok(d(after, before, 'http_requests', 'by_status', '2xx') >= 1);
    });

    await h.sub(t, 'a private chat: out +2; an offer: out +1', srv, async () => {
      const before = await f.metrics(srv);
      alice.send({ type: 'chat-message', to: 'bob', payload: { text: 'psst' } });
      await bob.next('chat-message');
      await alice.next('chat-message');
      alice.send({ type: 'offer', to: 'carol', payload: { type: 'offer', sdp: 'v=0\r\n' } });
      await carol.next('offer');
      const after = await f.metrics(srv);
      assert.strictEqual(d(after, before, 'messages', 'in_by_type', 'chat-message'), 1);
      assert.strictEqual(d(after, before, 'messages', 'out_by_type', 'chat-message'), 2);
      assert.strictEqual(d(after, before, 'messages', 'in_by_type', 'offer'), 1);
      assert.strictEqual(d(after, before, 'messages', 'out_by_type', 'offer'), 1);
    });

    await h.sub(t, 'errors_by_code counts WebSocket and REST errors', srv, async () => {
      const before = await f.metrics(srv);
      carol.send({ type: 'chat-message', id: 'e', payload: { text: '' } });
      await f.expectWsError(carol, 'INVALID_MESSAGE', 'e');
      carol.send({ type: 'offer', id: 'e2', to: 'nobody', payload: { type: 'offer', sdp: 'v=0\r\n' } });
      await f.expectWsError(carol, 'TARGET_NOT_FOUND', 'e2');
      f.assertRestError(await f.rest(srv, 'GET', '/webrtc/stats', { token: f.tok(srv, { sub: 'carol' }) }), 403, 'FORBIDDEN');
      const after = await f.metrics(srv);
      assert.strictEqual(d(after, before, 'errors_by_code', 'INVALID_MESSAGE'), 1);
      assert.strictEqual(d(after, before, 'errors_by_code', 'TARGET_NOT_FOUND'), 1);
      assert.strictEqual(d(after, before, 'errors_by_code', 'FORBIDDEN'), 1);
      assert.strictEqual(d(after, before, 'messages', 'in_by_type', 'chat-message'), 1, 'refused messages are counted in');
      assert.strictEqual(d(after, before, 'messages', 'out_by_type', 'error'), 2);
      assert.ok(d(after, before, 'http_requests', 'by_status', '4xx') >= 1);
    });

    await h.sub(t, 'rate_limit_hits counts a refusal (--rate-reaction 1/1h)', srv, async () => {
      const before = await f.metrics(srv);
      bob.send({ type: 'reaction', payload: { emoji: '👍' } });
      for (const c of [alice, bob, carol]) await c.next('reaction');
      bob.send({ type: 'reaction', id: 'r2', payload: { emoji: '👍' } });
      await f.expectWsError(bob, 'RATE_LIMIT_EXCEEDED', 'r2');
      const after = await f.metrics(srv);
      assert.strictEqual(d(after, before, 'rate_limit_hits', 'reaction'), 1);
      assert.strictEqual(d(after, before, 'rate_limit_hits', 'chat_message'), 0);
      assert.strictEqual(d(after, before, 'errors_by_code', 'RATE_LIMIT_EXCEEDED'), 1);
      assert.strictEqual(d(after, before, 'messages', 'in_by_type', 'reaction'), 2);
      assert.strictEqual(d(after, before, 'messages', 'out_by_type', 'reaction'), 3);
    });

    await h.sub(t, 'a participant leaving: participants and connections go down', srv, async () => {
      await carol.end();
      await alice.next('user-left');
      await bob.next('user-left');
      const m = await h.waitFor(async () => {
        const x = await f.metrics(srv);
        return x.participants === 2 && x.connections.current === m0.connections.current + 2 && x;
      }, 3000, 20, 'participants 2');
      assert.strictEqual(m.rooms, 1);
      await alice.end();
      await bob.end();
      const z = await h.waitFor(async () => {
        const x = await f.metrics(srv);
        return x.rooms === 0 && x.participants === 0 && x;
      }, 3000, 20, 'the room to close');
      assert.strictEqual(z.rooms, 0);
    });
  });
});

test('/metrics is Prometheus text with the documented series and the same counters', async () => {
  await h.withServer({ args: ['--rate-chat-message', '1/1h'] }, async (srv) => {
    const { alice, bob, carol } = await f.joinAll(srv, 'prom', [['alice'], ['bob'], ['carol']]);
    alice.send({ type: 'chat-message', payload: { text: 'one' } });
    for (const c of [alice, bob, carol]) await c.next('chat-message');
    alice.send({ type: 'chat-message', id: 'x', payload: { text: 'two' } });
    await f.expectWsError(alice, 'RATE_LIMIT_EXCEEDED', 'x');

    const r = await f.rest(srv, 'GET', '/metrics', { token: f.adminTok(srv) });
    assert.strictEqual(r.status, 200, r.text);
    assert.match(String(r.headers['content-type']), /^text\/plain; ?version=0\.0\.4/);
    const text = r.text;
    assert.ok(text.endsWith('\n'), 'ends with a newline');
    const samples = new Map();
    const typed = new Set();
    for (const line of text.split('\n')) {
      if (line === '') continue;
      if (line.startsWith('#')) {
        const m = line.match(/^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$/);
        assert.ok(m, `comment line: ${line}`);
        if (m[1] === 'TYPE') {
          assert.match(m[3], /^(counter|gauge|histogram|summary|untyped)$/);
          typed.add(m[2]);
        }
        continue;
      }
      const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"\\\n]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"\\\n]*")*\})? (-?[0-9.]+(e[+-]?[0-9]+)?|NaN|\+Inf|-Inf)$/);
      assert.ok(m, `sample line: ${JSON.stringify(line)}`);
      // A histogram's samples are its name plus _bucket, _sum and _count.
      assert.ok(typed.has(m[1]) || typed.has(m[1].replace(/_(bucket|sum|count)$/, '')), `# TYPE precedes ${m[1]}`);
      samples.set(`${m[1]}${m[2] || ''}`, Number(m[4]));
    }
    const series = ['huddle_uptime_seconds', 'huddle_connections', 'huddle_connections_total', 'huddle_websockets_total',
      'huddle_rooms', 'huddle_participants', 'huddle_bytes_in_total', 'huddle_bytes_out_total',
      'huddle_slow_consumers_dropped_total', 'huddle_event_loop_lag_seconds'];
    for (const s of series) assert.ok(samples.has(s), `series ${s}`);
    assert.ok(samples.get('huddle_connections') >= 4, 'three WebSockets and this request');
    assert.strictEqual(samples.get('huddle_rooms'), 1);
    assert.strictEqual(samples.get('huddle_participants'), 3);
    assert.strictEqual(samples.get('huddle_websockets_total'), 3);
    assert.strictEqual(samples.get('huddle_messages_in_total{type="chat-message"}'), 2, 'refused ones count in');
    assert.strictEqual(samples.get('huddle_messages_out_total{type="chat-message"}'), 3);
    assert.strictEqual(samples.get('huddle_messages_out_total{type="user-joined"}'), 3);
    assert.strictEqual(samples.get('huddle_rate_limit_hits_total{limit_type="chat_message"}'), 1);
    assert.strictEqual(samples.get('huddle_rate_limit_hits_total{limit_type="reaction"}'), 0);
    assert.strictEqual(samples.get('huddle_errors_total{code="RATE_LIMIT_EXCEEDED"}'), 1);
    for (const cls of ['1xx', '2xx', '3xx', '4xx', '5xx']) {
      assert.ok(samples.has(`huddle_http_responses_total{class="${cls}"}`), `http class ${cls}`);
    }
    // The JSON endpoint tells the same story.
    const j = await f.metrics(srv);
    assert.strictEqual(j.messages.in_by_type['chat-message'], 2);
    assert.strictEqual(j.messages.out_by_type['chat-message'], 3);
    assert.strictEqual(j.rate_limit_hits.chat_message, 1);
  });
});

test('/webrtc/stats lists the live room with participants and seq; process figures are real', async () => {
  await h.withServer({ args: ['--chat-max-chars', '123', '--max-room-participants', '7'] }, async (srv) => {
    const admin = f.adminTok(srv);
    const { alice, bob } = await f.joinAll(srv, 'stt', [['alice', { role: 'host' }], ['bob']]);
    const solo = await h.join(srv, 'stt-2', 'solo');
    alice.send({ type: 'chat-message', payload: { text: 'x' } });
    const last = await bob.next('chat-message');
    await alice.next('chat-message');
    const r = await f.rest(srv, 'GET', '/webrtc/stats', { token: admin });
    assert.strictEqual(r.status, 200, r.text);
    const s = r.json;
    assert.strictEqual(typeof s.server.version, 'string');
    assert.strictEqual(s.server.pid, srv.pid);
    assert.ok(Number.isInteger(s.server.rss_bytes) && s.server.rss_bytes > 0, `rss_bytes ${s.server.rss_bytes}`);
    const rss = srv.rssKb() * 1024;
    assert.ok(s.server.rss_bytes > rss / 4 && s.server.rss_bytes < rss * 4, `rss_bytes ${s.server.rss_bytes} vs VmRSS ${rss}`);
    assert.ok(s.server.uptime_s >= 0);
    assert.ok(s.server.cpu_user_s >= 0 && s.server.cpu_system_s >= 0);
    const rooms = Object.fromEntries(s.rooms.map((x) => [x.room_id, x]));
    assert.deepStrictEqual(Object.keys(rooms).sort(), ['stt', 'stt-2']);
    assert.strictEqual(rooms.stt.participants, 2);
    assert.strictEqual(rooms.stt.peak_participants, 2);
    assert.strictEqual(rooms.stt.seq, last.seq, 'the room\'s current seq');
    assert.strictEqual(rooms.stt.recording, false);
    assert.strictEqual(rooms.stt.live_streams, 0);
    assert.ok(Number.isInteger(rooms.stt.created_at));
    assert.strictEqual(rooms['stt-2'].participants, 1);
    assert.ok(s.rooms_in_history >= 2);
    assert.strictEqual(s.limits.chat_max_chars, 123);
    assert.strictEqual(s.limits.max_room_participants, 7);
    // A recording and a stream show up.
    const hostTok = f.tok(srv, { sub: 'alice', role: 'host' });
    assert.strictEqual((await f.rest(srv, 'POST', '/webrtc/rooms/stt/recordings/start', { token: hostTok })).status, 201);
    assert.strictEqual((await f.rest(srv, 'POST', '/webrtc/rooms/stt/live-streams/start', { token: hostTok, json: { target_url: 'rtmp://h.example.com/a/k' } })).status, 201);
    const r2 = await f.rest(srv, 'GET', '/webrtc/stats', { token: admin });
    const st2 = r2.json.rooms.find((x) => x.room_id === 'stt');
    assert.strictEqual(st2.recording, true);
    assert.strictEqual(st2.live_streams, 1);
    assert.strictEqual(st2.seq, last.seq + 2, 'recording-status and live-stream-start took a seq each');
    // bob leaves: participants 1, peak stays 2.
    await bob.end();
    await alice.next('user-left');
    const r3 = await f.rest(srv, 'GET', '/webrtc/stats', { token: admin });
    const st3 = r3.json.rooms.find((x) => x.room_id === 'stt');
    assert.strictEqual(st3.participants, 1);
    assert.strictEqual(st3.peak_participants, 2);
    await solo.end();
  });
});

test('/metrics: huddle_read_to_flush_seconds counts the turns that read and wrote, as a cumulative histogram', async () => {
  // Chat not held for the store: each read's output leaves in the same turn.
  await h.withServer({ args: f.RATES_OFF.concat(['--chat-durability', 'off']) }, async (srv) => {
    const { alice, bob } = await f.joinAll(srv, 'turns', [['alice'], ['bob']]);
    for (let i = 0; i < 20; i++) {
      alice.send({ type: 'chat-message', payload: { text: `m${i}` } });
      await bob.next('chat-message');
    }
    const r = await f.rest(srv, 'GET', '/metrics', { token: f.adminTok(srv) });
    assert.strictEqual(r.status, 200, r.text);
    assert.match(r.text, /^# TYPE huddle_read_to_flush_seconds histogram$/m);
    const buckets = [...r.text.matchAll(/^huddle_read_to_flush_seconds_bucket\{le="([^"]+)"\} (\d+)$/gm)].map((m) => [m[1], Number(m[2])]);
    assert.ok(buckets.length >= 2 && buckets.at(-1)[0] === '+Inf', r.text);
    for (let i = 1; i < buckets.length; i++) {
      assert.ok(Number(buckets[i][0]) > Number(buckets[i - 1][0]) || buckets[i][0] === '+Inf', 'bounds grow');
      assert.ok(buckets[i][1] >= buckets[i - 1][1], 'counts are cumulative');
    }
    const count = Number(r.text.match(/^huddle_read_to_flush_seconds_count (\d+)$/m)[1]);
    const sum = Number(r.text.match(/^huddle_read_to_flush_seconds_sum ([0-9.e+-]+)$/m)[1]);
    assert.strictEqual(buckets.at(-1)[1], count, '+Inf equals the count');
    assert.ok(count >= 20, `each chat read was a turn that wrote (${count})`);
    assert.ok(sum > 0 && sum < count, `sum ${sum} s over ${count} turns`);
  });
});
