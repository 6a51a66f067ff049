'use strict';
// Issue 13 (hardening): regression tests for what rooms leave behind:
// memory per analytics event and a byte bound on closed rooms (6), one
// creator cannot evict another's records (8), a reused room id starts a
// clean session (15).

const fs = require('node:fs');
const test = require('node:test');
const assert = require('node:assert');
const h = require('./helpers');
const { RATES_OFF, people, ofType, adminTok, rest } = require('./feature_helpers');

function rssKiB(srv) {
  const status = fs.readFileSync(`/proc/${srv.proc.pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)[1]);
}

/** Properties of about 2 KB that make a large tree when parsed: 1000 small integers. */
const BIG_PROPS = { v: new Array(1000).fill(0) };

async function sendEvents(c, n) {
  for (let i = 0; i < n; i += 50) {
    for (let k = i; k < Math.min(n, i + 50); k++) c.send({ type: 'analytics-event', payload: { name: 'burst', properties: BIG_PROPS } });
    await c.sync();
  }
}

/* Sanitizer builds: no quarantine, so freed memory is reused as in a normal build. */
const ASAN_REUSE = { ASAN_OPTIONS: `${process.env.ASAN_OPTIONS ? `${process.env.ASAN_OPTIONS}:` : ''}quarantine_size_mb=0` };
/* Under valgrind (scripts/valgrind.sh) the process's RSS is memcheck's, not the server's. */
const UNDER_VALGRIND = /valgrind/.test(h.BIN);

test('defect 6: an analytics event near the properties cap costs about its size in memory', async (t) => {
  assert.ok(JSON.stringify(BIG_PROPS).length <= 2048 && JSON.stringify(BIG_PROPS).length > 2000);
  await h.withServer({ args: RATES_OFF.concat(['--rate-websocket-message', '0/1m']), env: ASAN_REUSE }, async (srv) => {
    const p = await people(srv, 'd6', [['ann', 'participant']]);
    await sendEvents(p.ann, 50); // warm up the allocator
    const before = rssKiB(srv);
    await sendEvents(p.ann, 1000); // fills the room's ring of 1000
    const grown = rssKiB(srv) - before;
    // 1000 events of ~2 KB of text: a few MB. Kept as parsed trees they took ~40-60 MB.
    t.diagnostic(`RSS grew by ${grown} KiB for 1000 events of ${JSON.stringify(BIG_PROPS).length} bytes`);
    if (!UNDER_VALGRIND) assert.ok(grown < 12 * 1024, `RSS grew by ${grown} KiB for 1000 events of 2 KB`);
    const r = await rest(srv, 'GET', '/webrtc/rooms/d6/analytics?limit=1', { token: adminTok(srv) });
    assert.deepStrictEqual(r.json.events[0].data, BIG_PROPS, 'the properties read back unchanged');
  });
});

test('defect 6: closed rooms are bounded by bytes, not only by count', async () => {
  await h.withServer({ args: RATES_OFF.concat(['--rate-websocket-message', '0/1m', '--history-max-mb', '1']) }, async (srv) => {
    for (let i = 0; i < 4; i++) {
      const p = await people(srv, `d6b${i}`, [[`u${i}`, 'participant']]);
      await sendEvents(p[`u${i}`], 250); // about 0.5 MB of history each
      await p[`u${i}`].end();
    }
    const stats = await h.waitFor(async () => {
      const r = await rest(srv, 'GET', '/webrtc/stats', { token: adminTok(srv) });
      return r.json.rooms.length === 0 && r.json;
    }, 3000, 20, 'rooms closed');
    assert.ok(stats.rooms_in_history <= 2, `at most 1 MiB of closed rooms: ${stats.rooms_in_history} kept`);
    assert.ok(stats.rooms_in_history >= 1);
  });
});

test('defect 8: one moderator closing breakout rooms does not evict another room\'s records', async () => {
  await h.withServer({ args: RATES_OFF.concat(['--history-rooms', '3', '--rate-room-create', '0/1h']) }, async (srv) => {
    const v = await people(srv, 'v8', [['vh', 'host']]);
    let r = await h.api(srv, 'POST', '/webrtc/rooms/v8/recordings/start', v.vh.token, {});
    assert.strictEqual(r.status, 201, r.text);
    r = await h.api(srv, 'POST', `/webrtc/rooms/v8/recordings/${r.json.recording.recording_id}/stop`, v.vh.token, {});
    assert.strictEqual(r.status, 200, r.text);
    await v.vh.end();
    const a = await people(srv, 'a8', [['ma', 'moderator']]);
    for (let round = 0; round < 3; round++) {
      a.ma.send({ type: 'breakout-room-create', payload: { count: 3 } });
      const made = await a.ma.nextWhere(ofType('breakout-room-create'));
      for (const b of made.payload.breakout_rooms) {
        a.ma.send({ type: 'breakout-room-close', payload: { breakout_room_id: b.breakout_room_id } });
        await a.ma.nextWhere(ofType('breakout-room-close', (x) => x.breakout_room_id === b.breakout_room_id));
      }
    }
    r = await rest(srv, 'GET', '/webrtc/rooms/v8/recordings', { token: adminTok(srv) });
    assert.strictEqual(r.status, 200, `v8's records survive: ${r.text}`);
    assert.strictEqual(r.json.recordings.length, 1);
    r = await rest(srv, 'GET', '/webrtc/rooms/v8/audit', { token: adminTok(srv) });
    assert.strictEqual(r.status, 200, r.text);
  });
});

test('defect 15: a reused room id starts a clean session; earlier sessions are for admins', async () => {
  await h.withServer({ args: RATES_OFF }, async (srv) => {
    const p = await people(srv, 'd15', [['hana', 'host'], ['vic', 'participant']]);
    p.hana.send({ type: 'participant-update', payload: { action: 'remove', user_id: 'vic', reason: 'private reason' } });
    await p.vic.waitClose();
    await p.hana.end();
    await h.waitFor(async () => (await h.health(srv)).rooms === 0, 3000, 20, 'the room to close');
    const q = await people(srv, 'd15', [['nia', 'moderator']]);
    assert.strictEqual(q.nia.state.payload.self.role, 'host');
    let r = await h.api(srv, 'GET', '/webrtc/rooms/d15/audit', q.nia.token);
    assert.strictEqual(r.status, 200, r.text);
    assert.ok(!r.text.includes('private reason') && !r.json.entries.some((e) => e.action === 'remove'),
      `the new host sees the previous session's log: ${r.text}`);
    r = await h.api(srv, 'GET', '/webrtc/rooms/d15/audit?session=1', q.nia.token);
    assert.ok(!r.text.includes('private reason'), 'a host cannot pick an earlier session');
    r = await rest(srv, 'GET', '/webrtc/rooms/d15/audit?session=1', { token: adminTok(srv) });
    assert.strictEqual(r.status, 200, r.text);
    assert.ok(r.json.entries.some((e) => e.action === 'remove' && e.details.reason === 'private reason'), r.text);
  });
});
