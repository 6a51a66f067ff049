'use strict';
// Shared files across instances (ADR 0019): a file uploaded and downloaded
// through the room's owner against the same through another instance that
// forwards to the owner, in the same run. Starts a throwaway redis-server
// and two instances (A owns the room, B forwards) on free loopback ports.
// Reports MiB/s, each instance's CPU ms per MiB (/proc/PID/stat) and, with
// --strace, the syscalls per MiB of a download on A (direct) and on B
// (forwarded), counted by strace -c (stable, unlike wall-clock time on a
// shared machine).
//
// Usage: node bench/files_cluster.js [--bin build/huddle] [--mib 50] [--runs 3] [--strace]
// Needs redis-server and the tests' npm packages (cd tests && npm ci).

const { spawn, spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const { SECRET, token, cpuMs, join, request } = require('./files_lib');

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const BIN = path.resolve(opt('bin', path.join(root, 'build/huddle')));
const MIB = Number(opt('mib', '50'));
const RUNS = Number(opt('runs', '3'));
const STRACE = args.includes('--strace');
const ROOM = 'bench-files';


function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const procs = [];
const dirs = [];

async function startRedis() {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'huddle-bench-redis-'));
  dirs.push(dir);
  const p = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '',
    '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'ignore'] });
  procs.push(p);
  let out = '';
  await new Promise((resolve) => p.stdout.on('data', (d) => {
    out += d;
    if (/Ready to accept/.test(out)) resolve();
  }));
  return port;
}

async function startHuddle(redisPort) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'huddle-bench-fc-'));
  dirs.push(dir);
  const a = ['--listen', '127.0.0.1:0', '--data-dir', dir, '--jwt-secret', SECRET, '--log-level', 'info',
    '--redis-url', `redis://127.0.0.1:${redisPort}`, '--file-max-mb', String(MIB + 1),
    '--file-room-quota-mb', String(MIB * 4), '--file-user-quota-mb', String(MIB * 4),
    '--rate-file-share', '0/1m', '--rate-api-call', '0/1m'];
  const proc = spawn(BIN, a, { stdio: ['ignore', 'ignore', 'pipe'] });
  procs.push(proc);
  let err = '';
  const port = await new Promise((resolve, reject) => {
    proc.stderr.on('data', (d) => {
      err += d;
      const m = err.match(/listening addr=127\.0\.0\.1:(\d+)/);
      if (m && /advertise_addr/.test(err)) resolve(Number(m[1]));
    });
    proc.on('exit', () => reject(new Error(`huddle exited: ${err}`)));
  });
  return { proc, port, pid: proc.pid };
}


/** Runs fn with strace -c attached to pid; resolves {result, calls: {name: n}}. */
async function straced(pid, fn) {
  const out = path.join(os.tmpdir(), `huddle-bench-strace-${pid}-${Date.now()}.txt`);
  const st = spawn('strace', ['-c', '-f', '-o', out, '-p', String(pid)], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 300)); // attached
  const result = await fn();
  st.kill('SIGINT');
  await new Promise((r) => st.once('exit', r));
  const calls = {};
  for (const line of fs.readFileSync(out, 'utf8').split('\n')) {
    const m = line.trim().split(/\s+/);
    if (m.length >= 5 && /^\d/.test(m[0]) && /^[a-z_0-9]+$/.test(m[m.length - 1])) {
      calls[m[m.length - 1]] = Number(m.length === 6 ? m[3] : m[3]);
    }
  }
  fs.rmSync(out, { force: true });
  return { result, calls };
}

async function main() {
  const size = MIB * 1048576;
  const line = Buffer.from('bench text line for the file transfer benchmark 0123456789\n');
  const data = Buffer.alloc(size);
  for (let o = 0; o < size; o += line.length) line.copy(data, o);
  const sha = crypto.createHash('sha256').update(data).digest('hex');
  const redis = await startRedis();
  const A = await startHuddle(redis);
  const B = await startHuddle(redis);
  const host = await join(A.port, ROOM, 'owen'); // A owns the room
  await host.next((m) => m.type === 'room-state');
  const ws = await join(B.port, ROOM, 'alice');
  await ws.next((m) => m.type === 'room-state');
  const auth = { Authorization: `Bearer ${token('alice', ROOM)}` };
  const tus = (o) => Object.assign({ 'Tus-Resumable': '1.0.0', 'Upload-Offset': '0',
    'Content-Type': 'application/offset+octet-stream', 'Content-Length': size }, auth, o || {});
  const results = [];
  const s = (a, b) => Number(b - a) / 1e9;
  for (let run = 0; run < RUNS; run++) {
    const r = { run, mib: MIB };
    for (const [name, S] of [['direct', A], ['forwarded', B]]) {
      const id = `b${run}${name}`;
      ws.send(JSON.stringify({ type: 'file-share-offer', id, payload: { name: `f${id}.txt`, size, mime_type: 'text/plain', sha256: sha } }));
      const echo = await ws.next((m) => m.ref === id);
      const url = echo.payload.upload_url;
      let a0 = cpuMs(A.pid), b0 = cpuMs(B.pid), t0 = process.hrtime.bigint();
      const up = await request(S.port, 'PATCH', url, tus(), data);
      let t1 = process.hrtime.bigint();
      if (up.status !== 204) throw new Error(`PATCH ${up.status}`);
      r[`upload_${name}_mib_s`] = +(MIB / s(t0, t1)).toFixed(1);
      r[`upload_${name}_cpu_ms_per_mib_A`] = +((cpuMs(A.pid) - a0) / MIB).toFixed(2);
      r[`upload_${name}_cpu_ms_per_mib_B`] = +((cpuMs(B.pid) - b0) / MIB).toFixed(2);
      const T = echo.payload.transfer_id;
      const fin = await ws.next((m) => (m.type === 'file-share-complete' || m.type === 'file-share-reject') && m.payload.transfer_id === T);
      if (fin.type !== 'file-share-complete') throw new Error(JSON.stringify(fin.payload));
      a0 = cpuMs(A.pid), b0 = cpuMs(B.pid), t0 = process.hrtime.bigint();
      const down = await request(S.port, 'GET', url, auth);
      t1 = process.hrtime.bigint();
      if (down.status !== 200 || down.bytes !== size) throw new Error(`GET ${down.status} ${down.bytes}`);
      r[`download_${name}_mib_s`] = +(MIB / s(t0, t1)).toFixed(1);
      r[`download_${name}_cpu_ms_per_mib_A`] = +((cpuMs(A.pid) - a0) / MIB).toFixed(2);
      r[`download_${name}_cpu_ms_per_mib_B`] = +((cpuMs(B.pid) - b0) / MIB).toFixed(2);
      if (STRACE && run === 0) {
        const who = name === 'direct' ? A : B;
        const { calls } = await straced(who.pid, () => request(S.port, 'GET', url, auth));
        const per = {};
        for (const [k, v] of Object.entries(calls)) if (v >= MIB) per[k] = +(v / MIB).toFixed(1);
        r[`download_${name}_syscalls_per_mib_on_${name === 'direct' ? 'A' : 'B'}`] = per;
      }
      await request(A.port, 'DELETE', url, Object.assign({ 'Tus-Resumable': '1.0.0' }, auth));
    }
    console.log(JSON.stringify(r));
    results.push(r);
  }
  const med = (k) => results.map((x) => x[k]).sort((a, b) => a - b)[Math.floor(results.length / 2)];
  console.log(`\n| ${MIB} MiB file (median of ${RUNS}) | through the owner (A) | through another instance (B -> A) |\n|---|---|---|`);
  for (const k of ['upload', 'download']) {
    console.log(`| ${k} MiB/s | ${med(`${k}_direct_mib_s`)} | ${med(`${k}_forwarded_mib_s`)} |`);
    console.log(`| ${k} CPU ms/MiB on A | ${med(`${k}_direct_cpu_ms_per_mib_A`)} | ${med(`${k}_forwarded_cpu_ms_per_mib_A`)} |`);
    console.log(`| ${k} CPU ms/MiB on B | ${med(`${k}_direct_cpu_ms_per_mib_B`)} | ${med(`${k}_forwarded_cpu_ms_per_mib_B`)} |`);
  }
  ws.close();
  host.close();
}

main().catch((e) => { console.error(e); process.exitCode = 1; }).finally(async () => {
  for (const p of procs.reverse()) {
    if (p.exitCode === null) {
      p.kill('SIGTERM');
      await new Promise((r) => p.once('exit', r));
    }
  }
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  spawnSync('true');
});
