'use strict';
// Several instances (issue 11) with more rooms, sessions and instances than
// a fixed-size scan would hold: every pass over them covers them all. The
// room sweeps (snapshots after a loop turn; the room list and the releases
// each tick) past 256 rooms, the claims after a Redis restart past 1,024
// owned rooms, the heartbeat checks past 64 instances and 1,024 sessions of
// one instance, the links of an erased user; and a takeover keeping the
// room's creation time.

const test = require('node:test');
const assert = require('node:assert');
const { execFileSync } = require('node:child_process');
const h = require('./helpers');
const rh = require('./redis_helpers');
const f = require('./feature_helpers');
const rs = require('./resume_helpers');

/** Runs one redis-cli command against the test's Redis; returns its output. */
function redis(r, ...args) {
  return execFileSync('redis-cli', ['-h', h.HOST, '-p', String(r.port), ...args]).toString().trim();
}

/** How many of the keys huddle:<kind>:<prefix><1..n> exist. */
function keysOf(r, kind, prefix, n) {
  return Number(redis(r, 'EVAL', "local c = 0 for i = 1, tonumber(ARGV[1]) do " +
    "if redis.call('EXISTS', 'huddle:' .. ARGV[2] .. ':' .. ARGV[3] .. i) == 1 then c = c + 1 end end return c",
  '0', String(n), kind, prefix));
}

/** Runs fn(i) for i in 1..n, at most width at once. */
async function pool(n, width, fn) {
  let next = 1;
  const worker = async () => {
    while (next <= n) await fn(next++);
  };
  await Promise.all(Array.from({ length: width }, worker));
}

async function listed(srv) {
  const res = await h.api(srv, 'GET', '/webrtc/rooms', f.adminTok(srv));
  assert.strictEqual(res.status, 200, res.text);
  return res.json.rooms;
}

const CREATES_OFF = ['--rate-room-create', '0/1m', '--rate-api-call', '0/1m'];

test('an instance with 330 rooms snapshots every one of them, lists them all and releases each that ends', async () => {
  await rh.withCluster(2, { args: CREATES_OFF }, async (r, [A, B]) => {
    const N = 330;
    const people = [];
    await pool(N, 30, async (i) => { people[i] = await h.join(A, `sw${i}`, `u${i}`); });
    // The join changed each room: its snapshot names its member, past the
    // 256th room of the sweep too.
    await h.waitFor(() => Number(redis(r, 'EVAL', "local c = 0 for i = 1, tonumber(ARGV[1]) do " +
      "local s = redis.call('GET', 'huddle:snap:sw' .. i) " +
      "if s and string.find(s, '\"u\":\"u' .. i .. '\"', 1, true) then c = c + 1 end end return c",
    '0', String(N))) === N, 5000, 50, `${N} snapshots naming their member`);
    // B owns none of them: it lists what A published, every room.
    await h.waitFor(async () => {
      const rows = (await listed(B)).filter((x) => /^sw\d+$/.test(x.room_id) && x.participants === 1);
      return rows.length === N;
    }, 5000, 100, `B lists the ${N} rooms of A`);
    // One room in five ends while 264 go on: each that ended gives its
    // lease, snapshot and stream up, wherever the sweep meets it.
    assert.strictEqual(keysOf(r, 'lease', 'sw', N), N);
    const ended = [];
    for (let i = 5; i <= N; i += 5) ended.push(i);
    for (const i of ended) people[i].ws.close(1000);
    const gone = (kind) => Number(redis(r, 'EVAL', "local c = 0 for _, i in ipairs(ARGV) do " +
      "if redis.call('EXISTS', 'huddle:' .. KEYS[1] .. ':sw' .. i) == 0 then c = c + 1 end end return c",
    '1', kind, ...ended.map(String)));
    await h.waitFor(() => gone('lease') === ended.length && gone('snap') === ended.length &&
      gone('stream') === ended.length, 5000, 100, `the leases, snapshots and streams of the ${ended.length} rooms that ended`);
    assert.strictEqual(keysOf(r, 'lease', 'sw', N), N - ended.length);
    // Then everyone leaves.
    for (let i = 1; i <= N; i++) if (i % 5 !== 0) people[i].ws.close(1000);
    await h.waitFor(() => keysOf(r, 'lease', 'sw', N) === 0 && keysOf(r, 'snap', 'sw', N) === 0 &&
      keysOf(r, 'stream', 'sw', N) === 0, 5000, 100, 'every lease, snapshot and stream released');
    await h.waitFor(async () => (await listed(B)).filter((x) => /^sw\d+$/.test(x.room_id)).length === 0,
      5000, 100, 'none listed');
  });
});

test('after a Redis restart an instance claims all of its 1,100 rooms again and writes their snapshots', async () => {
  await rh.withCluster(1, { args: CREATES_OFF }, async (r, [A]) => {
    const N = 1100;
    const admin = f.adminTok(A);
    await pool(N, 16, async (i) => {
      const res = await h.api(A, 'POST', '/webrtc/rooms', admin, { room_id: `rc${i}`, empty_timeout: 600 });
      assert.strictEqual(res.status, 201, res.text);
    });
    await h.waitFor(() => keysOf(r, 'lease', 'rc', N) === N, 5000, 50, `${N} leases`);
    await r.stop();
    await r.start(); // empty: no leases, no snapshots
    await rh.waitRedisUp(A, 10000);
    // Claimed again and snapshotted (a pre-created room changes nothing
    // after that: the snapshot comes from the claim alone).
    await h.waitFor(() => keysOf(r, 'lease', 'rc', N) === N && keysOf(r, 'snap', 'rc', N) === N, 5000, 100,
      `${N} leases and snapshots after the restart`);
    assert.strictEqual((await rh.clusterHealth(A)).components.cluster.owned_rooms.length, N);
  });
});

test('an owner checks the heartbeat of every instance with sessions here: past 64 live instances, past 1,024 sessions of one', async () => {
  // The other instances are played through Redis: their heartbeats and
  // the opens of their links in the owner's inbox (as link_send_open
  // writes them). 200 keep beating; 50 stop, and so does one with 1,040
  // sessions: every session of those is cut, wherever the map puts it.
  await rh.withCluster(1, { args: CREATES_OFF.concat(['--resume-grace-ms', '0', '--max-room-participants', '100']) },
    async (r, [A]) => {
      const inst = (await rh.clusterHealth(A)).components.cluster.instance_id;
      const admin = f.adminTok(A);
      const BIG = 1040;
      const LIVE = 200;
      const DEAD = 50;
      const rooms = Math.ceil(BIG / 100) + Math.ceil((LIVE + DEAD) / 100);
      for (let i = 0; i < rooms; i++) {
        const res = await h.api(A, 'POST', '/webrtc/rooms', admin, { room_id: `cut${i}` });
        assert.strictEqual(res.status, 201, res.text);
      }
      await h.waitFor(async () => (await rh.clusterHealth(A)).components.cluster.owned_rooms.length === rooms,
        5000, 50, 'the rooms owned by A');
      const big = 'f0000000000a';
      // Instances "<p><11 digits of j>" for j in 1..n: heartbeats set (or
      // deleted), and one session each in the rooms from ARGV[4] on.
      const beat = "for j = 1, tonumber(ARGV[2]) do local k = 'huddle:hb:' .. string.format('%s%011d', ARGV[1], j) " +
        "if ARGV[3] == 'set' then redis.call('SET', k, '1', 'PX', 60000) else redis.call('DEL', k) end end return 1";
      redis(r, 'SET', `huddle:hb:${big}`, '1', 'PX', '60000');
      redis(r, 'EVAL', beat, '0', 'a', String(LIVE), 'set');
      redis(r, 'EVAL', beat, '0', 'd', String(DEAD), 'set');
      // ARGV: instance, user prefix, sessions, first room number (100 a room).
      const opens = 'local n = tonumber(ARGV[3]) for i = 1, n do ' +
        'local room = ARGV[5] .. (tonumber(ARGV[4]) + math.floor((i - 1) / 100)) ' +
        "redis.call('XADD', KEYS[1], '*', 'k', 'open', 'i', ARGV[1], 'id', tostring(i), 'room', room, " +
        "'u', ARGV[2] .. i, 'n', ARGV[2] .. i, 'rm', '', 'cl', '1,0,0,0', 'adm', '0', 'rt', '', 'ls', '', 'g', '') " +
        'end return n';
      const each = "local n = 0 for _, p in ipairs({'a', 'd'}) do " +
        "local count = tonumber(ARGV[1]) if p == 'd' then count = tonumber(ARGV[2]) end " +
        'for j = 1, count do local inst = string.format(\'%s%011d\', p, j) ' +
        "redis.call('XADD', KEYS[1], '*', 'k', 'open', 'i', inst, 'id', '1', " +
        "'room', 'cut' .. (tonumber(ARGV[3]) + math.floor(n / 100)), 'u', inst, 'n', inst, 'rm', '', " +
        "'cl', '1,0,0,0', 'adm', '0', 'rt', '', 'ls', '', 'g', '') n = n + 1 end end return n";
      const inbox = `huddle:inbox:${inst}`;
      redis(r, 'EVAL', opens, '1', inbox, big, 'big', String(BIG), '0', 'cut');
      redis(r, 'EVAL', each, '1', inbox, String(LIVE), String(DEAD), String(Math.ceil(BIG / 100)));
      const members = async () => (await listed(A)).filter((x) => /^cut\d+$/.test(x.room_id))
        .reduce((s, x) => s + x.participants, 0);
      await h.waitFor(async () => await members() === BIG + LIVE + DEAD, 10000, 100, 'every session joined');
      redis(r, 'DEL', `huddle:hb:${big}`);
      redis(r, 'EVAL', beat, '0', 'd', String(DEAD), 'del');
      // Cut, and without a grace period gone; the live instances' members stay.
      await h.waitFor(async () => await members() === LIVE, 5000, 100, 'only the live instances\' members left');
    });
});

test('an erase closes every link of the user that no owner has seen, however many', async () => {
  // With Redis away, a join's link waits for its room's lease: 300 of
  // them for one user, all closed by the erase (4007) on this instance.
  await rh.withCluster(1, async (r, [A]) => {
    await r.stop();
    // Noticed at once from the socket, or by the watchdog (an XREAD
    // unanswered for 5 s: hiredis 0.14's libuv adapter ignores poll errors).
    await h.waitFor(async () => (await rh.clusterHealth(A)).components.cluster.redis !== 'ok', 10000, 50,
      'Redis away');
    const N = 300;
    const links = [];
    const tok = h.mintToken(h.SECRET, { sub: 'eve' });
    await pool(N, 30, async (i) => { links.push(await h.connect(A, `er${i}`, tok)); });
    // Answered once the store committed it (a client bound past a slow disk's fsync).
    const res = await h.httpRequest(A, 'POST', '/webrtc/admin/users/eve/erase',
      { headers: { Authorization: `Bearer ${f.adminTok(A)}` }, timeoutMs: 15000 });
    assert.strictEqual(res.status, 200, res.text);
    await h.waitFor(() => links.every((c) => c.close), 5000, 50, `all ${N} links closed`);
    assert.deepStrictEqual([...new Set(links.map((c) => c.close.code))], [4007]);
    await r.start();
    await rh.waitRedisUp(A, 10000);
  });
});

test('a takeover keeps the room\'s creation time', async () => {
  await rh.withCluster(2, { args: ['--resume-grace-ms', '20000'] }, async (r, [A, B]) => {
    const a = await h.join(A, 'tkc', 'alice', { role: 'host' });
    const b = await h.join(B, 'tkc', 'bob');
    await a.nextWhere((m) => m.type === 'user-joined' && m.payload.user_id === 'bob', 3000);
    const host = f.adminTok(B);
    const before = await h.api(B, 'GET', '/webrtc/rooms/tkc', host);
    assert.strictEqual(before.status, 200, before.text);
    const created = before.json.room.created_at;
    assert.ok(created > 0, before.text);
    A.proc.kill('SIGKILL');
    await A.exited;
    await b.nextWhere((m) => rs.isStatusOf(m, 'alice') && m.payload.status === 'reconnecting', 10000);
    assert.ok((await rh.clusterHealth(B)).components.cluster.owned_rooms.includes('tkc'));
    const after = await h.api(B, 'GET', '/webrtc/rooms/tkc', host);
    assert.strictEqual(after.status, 200, after.text);
    assert.strictEqual(after.json.room.created_at, created, after.text);
    const an = await h.api(B, 'GET', '/webrtc/rooms/tkc/analytics/summary', host);
    assert.strictEqual(an.status, 200, an.text);
    assert.strictEqual(an.json.created_at, created, an.text);
  });
});
