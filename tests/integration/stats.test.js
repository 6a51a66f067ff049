'use strict';
// network-stats, quality-update, analytics-event, virtual-background-update,
// e2ee-key-exchange / e2ee-ratchet-update: validation, who receives what, and
// what is kept in room-state.

const test = require('node:test');
const assert = require('node:assert');
const h = require('./helpers');
const f = require('./feature_helpers');

// [stats, expected bucket] around the documented thresholds.
const BUCKETS = [
  [{ rtt_ms: 20, jitter_ms: 2, packet_loss: 0, bitrate_kbps: 1800, fps: 30 }, 'good'],
  [{ rtt_ms: 150, jitter_ms: 30, packet_loss: 1 }, 'good'],
  [{ rtt_ms: 151 }, 'fair'],
  [{ jitter_ms: 30.5 }, 'fair'],
  [{ packet_loss: 1.01 }, 'fair'],
  [{ rtt_ms: 400, jitter_ms: 100, packet_loss: 5 }, 'fair'],
  [{ rtt_ms: 401 }, 'poor'],
  [{ jitter_ms: 101 }, 'poor'],
  [{ packet_loss: 5.5, rtt_ms: 10 }, 'poor'],
  [{ width: 1280, height: 720, available_bitrate_kbps: 2500 }, 'good'],
];

test('network-stats: relayed to hosts and moderators only (never back to the sender), with the quality bucket', async (t) => {
  await h.withServer({}, async (srv) => {
    const { host, mod, bob, carol, vic } = await f.joinAll(srv, 'net', [
      ['host', { role: 'host' }], ['mod', { role: 'moderator' }], ['bob'], ['carol'], ['vic', { role: 'viewer' }]]);
    const others = [carol, vic];
    let n = 0;
    for (const [stats, bucket] of BUCKETS) {
      await h.sub(t, `${JSON.stringify(stats)} -> ${bucket}`, srv, async () => {
        const sender = [bob, vic, carol][n++ % 3];
        const t0 = Date.now();
        sender.send({ type: 'network-stats', id: `ns${n}`, payload: stats });
        const got = await Promise.all([host.next(), mod.next()]);
        for (const m of got) {
          assert.strictEqual(m.type, 'network-stats', JSON.stringify(m));
          assert.strictEqual(m.from, sender.user);
          assert.strictEqual(m.payload.quality, bucket, JSON.stringify(m.payload));
          assert.ok(Number.isInteger(m.payload.ts) && m.payload.ts >= t0 - 5000, `ts ${m.payload.ts}`);
          const rest = Object.assign({}, m.payload);
          delete rest.quality;
          delete rest.ts;
          assert.deepStrictEqual(rest, stats, 'the measurements are relayed as sent');
        }
        await f.expectNoneAll([bob, carol, vic], 60);
      });
    }
    await h.sub(t, 'a host\'s stats reach the moderator, not the host itself', srv, async () => {
      host.send({ type: 'network-stats', payload: { rtt_ms: 500 } });
      const m = await mod.next();
      assert.strictEqual(m.from, 'host');
      assert.strictEqual(m.payload.quality, 'poor');
      await f.expectNoneAll([host, bob, carol, vic], 100);
    });
    await h.sub(t, 'a participant granted can_moderate by perms receives them too', srv, async () => {
      const watcher = await h.join(srv, 'net', 'watcher', { perms: { can_moderate: true } });
      for (const c of [host, mod, bob, carol, vic]) await c.next('user-joined');
      bob.send({ type: 'network-stats', payload: { fps: 24 } });
      const got = await Promise.all([host.next(), mod.next(), watcher.next()]);
      for (const m of got) assert.deepStrictEqual([m.type, m.from, m.payload.quality], ['network-stats', 'bob', 'good']);
      await f.expectNoneAll(others.concat([bob]), 60);
    });
  });
});

test('network-stats: unknown field, negative, out of range, wrong type, empty -> INVALID_STATS', async (t) => {
  await h.withServer({}, async (srv) => {
    const { host, bob } = await f.joinAll(srv, 'badnet', [['host', { role: 'host' }], ['bob']]);
    const cases = [
      ['unknown field', { rtt_ms: 10, foo: 1 }],
      ['unknown field alone', { latency: 10 }],
      ['negative rtt', { rtt_ms: -1 }],
      ['rtt over 60000', { rtt_ms: 60001 }],
      ['jitter over 60000', { jitter_ms: 70000 }],
      ['packet_loss over 100', { packet_loss: 100.5 }],
      ['fps over 240', { fps: 241 }],
      ['width over 16384', { width: 16385 }],
      ['bitrate over 10000000', { bitrate_kbps: 10000001 }],
      ['a string number', { rtt_ms: '120' }],
      ['null', { rtt_ms: null }],
      ['boolean', { fps: true }],
      ['an object', { rtt_ms: { v: 1 } }],
      ['empty payload', {}],
    ];
    let n = 0;
    for (const [name, payload] of cases) {
      await h.sub(t, name, srv, async () => {
        const id = `b${++n}`;
        bob.send({ type: 'network-stats', id, payload });
        await f.expectWsError(bob, 'INVALID_STATS', id, name);
        await host.expectNone(30);
      });
    }
    await h.sub(t, 'no payload at all', srv, async () => {
      bob.send({ type: 'network-stats', id: 'np' });
      await f.expectWsError(bob, 'INVALID_STATS', 'np');
    });
    await h.sub(t, 'the maxima themselves are fine', srv, async () => {
      const max = { rtt_ms: 60000, jitter_ms: 60000, packet_loss: 100, bitrate_kbps: 10000000, available_bitrate_kbps: 10000000, fps: 240, width: 16384, height: 16384 };
      bob.send({ type: 'network-stats', payload: max });
      const m = await host.next();
      assert.strictEqual(m.type, 'network-stats', JSON.stringify(m));
      assert.strictEqual(m.payload.quality, 'poor');
      const zero = { rtt_ms: 0, packet_loss: 0 };
      bob.send({ type: 'network-stats', payload: zero });
      assert.strictEqual((await host.next()).payload.quality, 'good');
      await bob.expectNone(50);
    });
  });
});

test('quality-update: delivered to everyone else, kept in room-state; bad level or values -> INVALID_STATS', async (t) => {
  await h.withServer({}, async (srv) => {
    const { alice, bob, carol } = await f.joinAll(srv, 'qual', [['alice', { role: 'host' }], ['bob'], ['carol', { role: 'viewer' }]]);
    await h.sub(t, 'valid update reaches the others, not the sender', srv, async () => {
      const q = { quality: 'medium', max_bitrate_kbps: 800, width: 640, height: 360, fps: 24 };
      bob.send({ type: 'quality-update', id: 'q1', payload: q });
      const got = await Promise.all([alice.next(), carol.next()]);
      for (const m of got) {
        assert.strictEqual(m.type, 'quality-update', JSON.stringify(m));
        assert.strictEqual(m.from, 'bob');
        assert.deepStrictEqual(m.payload, q);
      }
      await bob.expectNone(100);
      for (const level of ['low', 'high', 'auto']) {
        carol.send({ type: 'quality-update', payload: { quality: level } });
        for (const c of [alice, bob]) assert.deepStrictEqual((await c.next()).payload, { quality: level });
      }
      await carol.expectNone(50);
      bob.send({ type: 'quality-update', payload: { quality: 'medium' } });
      for (const c of [alice, carol]) await c.next('quality-update');
    });
    const bad = [
      ['unknown level', { quality: 'ultra' }],
      ['upper case level', { quality: 'HIGH' }],
      ['level missing', { width: 640 }],
      ['level a number', { quality: 2 }],
      ['negative width', { quality: 'low', width: -1 }],
      ['fps over 240', { quality: 'low', fps: 500 }],
      ['bitrate a string', { quality: 'low', max_bitrate_kbps: '800' }],
      ['height fractional', { quality: 'low', height: 360.5 }],
    ];
    let n = 0;
    for (const [name, payload] of bad) {
      await h.sub(t, `${name} -> INVALID_STATS`, srv, async () => {
        const id = `qb${++n}`;
        bob.send({ type: 'quality-update', id, payload });
        await f.expectWsError(bob, 'INVALID_STATS', id, name);
        await f.expectNoneAll([alice, carol], 30);
      });
    }
    await h.sub(t, 'a newcomer sees each participant\'s last quality in room-state', srv, async () => {
      const dave = await h.join(srv, 'qual', 'dave');
      const byUser = Object.fromEntries(dave.state.payload.participants.map((p) => [p.user_id, p]));
      assert.strictEqual(byUser.bob.quality, 'medium', JSON.stringify(byUser.bob));
      assert.strictEqual(byUser.carol.quality, 'auto', JSON.stringify(byUser.carol));
      assert.strictEqual(byUser.alice.quality, undefined, 'no quality before one is sent');
    });
  });
});

test('analytics-event: accepted silently (nobody receives anything); invalid name or properties -> INVALID_MESSAGE', async (t) => {
  await h.withServer({}, async (srv) => {
    const { alice, bob } = await f.joinAll(srv, 'aev', [['alice', { role: 'host' }], ['bob']]);
    await h.sub(t, 'valid events: no broadcast, no echo', srv, async () => {
      bob.send({ type: 'analytics-event', id: 'a1', payload: { name: 'screen.opened', properties: { source: 'menu' } } });
      bob.send({ type: 'analytics-event', id: 'a2', payload: { name: 'a_b-c.9' } });
      bob.send({ type: 'analytics-event', id: 'a3', payload: { name: 'x'.repeat(64), properties: null } });
      await f.expectNoneAll([alice, bob], 200);
    });
    const bad = [
      ['upper case name', { name: 'Screen.Opened' }],
      ['name with a space', { name: 'screen opened' }],
      ['empty name', { name: '' }],
      ['65 characters', { name: 'x'.repeat(65) }],
      ['name missing', { properties: {} }],
      ['name a number', { name: 5 }],
      ['name with HTML', { name: '<b>x</b>' }],
      ['properties an array', { name: 'ok', properties: [1, 2] }],
      ['properties a string', { name: 'ok', properties: 'x' }],
      ['properties over 2048 bytes', { name: 'ok', properties: { blob: 'x'.repeat(2100) } }],
    ];
    let n = 0;
    for (const [name, payload] of bad) {
      await h.sub(t, `${name} -> INVALID_MESSAGE`, srv, async () => {
        const id = `ab${++n}`;
        bob.send({ type: 'analytics-event', id, payload });
        await f.expectWsError(bob, 'INVALID_MESSAGE', id, name);
        await alice.expectNone(30);
      });
    }
    await h.sub(t, 'the valid ones are in the room analytics as custom events', srv, async () => {
      const r = await f.rest(srv, 'GET', '/webrtc/rooms/aev/analytics', { token: f.tok(srv, { sub: 'alice', role: 'host' }) });
      assert.strictEqual(r.status, 200, r.text);
      const custom = r.json.events.filter((e) => e.type === 'custom');
      assert.deepStrictEqual(custom.map((e) => [e.user_id, e.name]), [['bob', 'screen.opened'], ['bob', 'a_b-c.9'], ['bob', 'x'.repeat(64)]]);
      assert.deepStrictEqual(custom[0].data, { source: 'menu' });
      assert.strictEqual(custom[1].data, undefined);
    });
  });
});

test('virtual-background-update: blur / image / none delivered to everyone else and kept; invalid -> INVALID_MESSAGE', async (t) => {
  await h.withServer({}, async (srv) => {
    const { alice, bob, carol } = await f.joinAll(srv, 'vbg', [['alice'], ['bob'], ['carol', { role: 'viewer' }]]);
    const valid = [
      [{ type: 'blur', blur_radius: 12 }, { type: 'blur', blur_radius: 12 }],
      [{ type: 'blur' }, { type: 'blur', blur_radius: 10 }],
      [{ type: 'blur', blur_radius: 1 }, { type: 'blur', blur_radius: 1 }],
      [{ type: 'blur', blur_radius: 100 }, { type: 'blur', blur_radius: 100 }],
      [{ type: 'image', image_id: 'beach-01' }, { type: 'image', image_id: 'beach-01' }],
      [{ type: 'none' }, { type: 'none' }],
    ];
    for (const [payload, expected] of valid) {
      await h.sub(t, `valid ${JSON.stringify(payload)}`, srv, async () => {
        alice.send({ type: 'virtual-background-update', id: 'v', payload });
        const got = await Promise.all([bob.next(), carol.next()]);
        for (const m of got) {
          assert.strictEqual(m.type, 'virtual-background-update', JSON.stringify(m));
          assert.strictEqual(m.from, 'alice');
          assert.deepStrictEqual(m.payload, expected);
        }
        await alice.expectNone(60);
      });
    }
    const bad = [
      ['unknown type', { type: 'video' }],
      ['type missing', { blur_radius: 5 }],
      ['blur_radius 0', { type: 'blur', blur_radius: 0 }],
      ['blur_radius 101', { type: 'blur', blur_radius: 101 }],
      ['blur_radius a string', { type: 'blur', blur_radius: '12' }],
      ['blur_radius fractional', { type: 'blur', blur_radius: 2.5 }],
      ['image without image_id', { type: 'image' }],
      ['image_id with a path', { type: 'image', image_id: '../etc/passwd' }],
      ['image_id with a space', { type: 'image', image_id: 'my beach' }],
      ['image_id of 65 characters', { type: 'image', image_id: 'i'.repeat(65) }],
      ['image_id a URL', { type: 'image', image_id: 'https://evil.example/x.png' }],
    ];
    let n = 0;
    for (const [name, payload] of bad) {
      await h.sub(t, `${name} -> INVALID_MESSAGE`, srv, async () => {
        const id = `vb${++n}`;
        bob.send({ type: 'virtual-background-update', id, payload });
        await f.expectWsError(bob, 'INVALID_MESSAGE', id, name);
        await f.expectNoneAll([alice, carol], 30);
      });
    }
    await h.sub(t, 'room-state of a newcomer carries virtual_background', srv, async () => {
      bob.send({ type: 'virtual-background-update', payload: { type: 'image', image_id: 'office_2' } });
      for (const c of [alice, carol]) await c.next('virtual-background-update');
      const dave = await h.join(srv, 'vbg', 'dave');
      const byUser = Object.fromEntries(dave.state.payload.participants.map((p) => [p.user_id, p]));
      assert.deepStrictEqual(byUser.alice.virtual_background, { type: 'none' });
      assert.deepStrictEqual(byUser.bob.virtual_background, { type: 'image', image_id: 'office_2' });
      assert.strictEqual(byUser.carol.virtual_background, undefined);
    });
  });
});

test('e2ee-key-exchange / e2ee-ratchet-update: relayed unchanged to "to" or to everyone else; oversized -> MESSAGE_TOO_LARGE', async () => {
  await h.withServer({ args: ['--e2ee-max-bytes', '100'] }, async (srv) => {
    const { alice, bob, carol } = await f.joinAll(srv, 'e2ee', [['alice'], ['bob'], ['carol', { role: 'viewer' }]]);
    // Directed: only bob, payload byte for byte (numbers, nesting, Unicode, HTML-like text).
    const key = { key_id: 3, public_key: 'QkFTRTY0', sig: '<x>&"é"', n: [1, 2.5, null, true] };
    alice.send({ type: 'e2ee-key-exchange', id: 'k1', to: 'bob', payload: key });
    const m = await bob.next();
    assert.strictEqual(m.type, 'e2ee-key-exchange', JSON.stringify(m));
    assert.strictEqual(m.from, 'alice');
    assert.strictEqual(m.to, 'bob');
    assert.deepStrictEqual(m.payload, key);
    await f.expectNoneAll([alice, carol], 100);

    // Broadcast: everyone except the sender.
    const ratchet = { epoch: 7, k: 'abc' };
    bob.send({ type: 'e2ee-ratchet-update', payload: ratchet });
    const got = await Promise.all([alice.next(), carol.next()]);
    for (const x of got) {
      assert.strictEqual(x.type, 'e2ee-ratchet-update', JSON.stringify(x));
      assert.strictEqual(x.from, 'bob');
      assert.strictEqual(x.to, undefined);
      assert.deepStrictEqual(x.payload, ratchet);
    }
    await bob.expectNone(100);
    carol.send({ type: 'e2ee-key-exchange', payload: { k: 1 } });
    for (const c of [alice, bob]) assert.deepStrictEqual((await c.next()).payload, { k: 1 });
    await carol.expectNone(50);
    bob.send({ type: 'e2ee-ratchet-update', to: 'carol', payload: { e: 1 } });
    assert.deepStrictEqual((await carol.next()).payload, { e: 1 });
    await f.expectNoneAll([alice, bob], 50);

    // Over --e2ee-max-bytes 100 (serialized payload) -> MESSAGE_TOO_LARGE, nothing relayed.
    alice.send({ type: 'e2ee-key-exchange', id: 'big', to: 'bob', payload: { public_key: 'A'.repeat(120) } });
    await f.expectWsError(alice, 'MESSAGE_TOO_LARGE', 'big');
    alice.send({ type: 'e2ee-ratchet-update', id: 'big2', payload: { k: 'B'.repeat(100) } });
    await f.expectWsError(alice, 'MESSAGE_TOO_LARGE', 'big2');
    await f.expectNoneAll([bob, carol], 100);
    // Just under the limit passes: {"k":"..."} of 100 bytes.
    const fit = { k: 'C'.repeat(100 - 8) };
    assert.strictEqual(JSON.stringify(fit).length, 100);
    alice.send({ type: 'e2ee-key-exchange', to: 'bob', payload: fit });
    assert.deepStrictEqual((await bob.next()).payload, fit);
    // Directed to an unknown user.
    alice.send({ type: 'e2ee-key-exchange', id: 'tnf', to: 'zed', payload: key });
    await f.expectWsError(alice, 'TARGET_NOT_FOUND', 'tnf');
    // The payload is never logged.
    assert.ok(!srv.stderr.includes('QkFTRTY0'), 'the key material is not in the log');
    for (const c of [alice, bob, carol]) c.assertEnvelopes();
  });
});
