'use strict';
// File transfer benchmark: upload (tus PATCH) and download throughput in
// MiB/s, and the server's CPU time per MiB (from /proc/PID/stat), on
// loopback against a release build.
//
// Usage: node bench/files.js [--bin build/huddle] [--mib 256] [--runs 3] [--clamd SOCKET]
// Needs the tests' npm packages (cd tests && npm ci). Prints one JSON line
// per run and a summary table.

const { spawn } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
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
const MIB = Number(opt('mib', '256'));
const RUNS = Number(opt('runs', '3'));
const CLAMD = opt('clamd', null);


async function start() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'huddle-bench-files-'));
  const a = ['--listen', '127.0.0.1:0', '--data-dir', dir, '--jwt-secret', SECRET, '--log-level', 'info',
    '--file-max-mb', String(MIB + 1), '--file-room-quota-mb', String(MIB * (RUNS + 1)),
    '--file-user-quota-mb', String(MIB * (RUNS + 1)), '--rate-file-share', '0/1m'];
  if (CLAMD) a.push('--clamd-socket', CLAMD);
  const proc = spawn(BIN, a, { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  const port = await new Promise((resolve, reject) => {
    proc.stderr.on('data', (d) => {
      err += d;
      const m = err.match(/listening addr=127\.0\.0\.1:(\d+)/);
      if (m) resolve(Number(m[1]));
    });
    proc.on('exit', () => reject(new Error(`huddle exited: ${err}`)));
  });
  return { proc, port, dir };
}


async function main() {
  const size = MIB * 1048576;
  const line = Buffer.from('bench text line for the file transfer benchmark 0123456789\n');
  const data = Buffer.alloc(size);
  for (let o = 0; o < size; o += line.length) line.copy(data, o);
  const sha = crypto.createHash('sha256').update(data).digest('hex');
  const srv = await start();
  const ws = await join(srv.port, 'bench', 'alice');
  await ws.next((m) => m.type === 'room-state');
  const auth = { Authorization: `Bearer ${token('alice', 'bench')}` };
  const results = [];
  for (let run = 0; run < RUNS; run++) {
    const id = `b${run}`;
    ws.send(JSON.stringify({ type: 'file-share-offer', id, payload: { name: `f${run}.txt`, size, mime_type: 'text/plain', sha256: sha } }));
    const echo = await ws.next((m) => m.ref === id);
    const url = echo.payload.upload_url;
    const c0 = cpuMs(srv.proc.pid);
    const t0 = process.hrtime.bigint();
    const up = await request(srv.port, 'PATCH', url, Object.assign({ 'Tus-Resumable': '1.0.0', 'Upload-Offset': '0',
      'Content-Type': 'application/offset+octet-stream', 'Content-Length': size }, auth), data);
    const t1 = process.hrtime.bigint();
    const c1 = cpuMs(srv.proc.pid);
    if (up.status !== 204) throw new Error(`PATCH ${up.status}`);
    const T = echo.payload.transfer_id;
    const fin = await ws.next((m) => (m.type === 'file-share-complete' || m.type === 'file-share-reject') && m.payload.transfer_id === T);
    if (fin.type !== 'file-share-complete') throw new Error(JSON.stringify(fin.payload));
    const t2 = process.hrtime.bigint();
    const c2 = cpuMs(srv.proc.pid);
    const down = await request(srv.port, 'GET', url, auth);
    const t3 = process.hrtime.bigint();
    const c3 = cpuMs(srv.proc.pid);
    if (down.status !== 200 || down.bytes !== size) throw new Error(`GET ${down.status} ${down.bytes}`);
    const s = (a, b) => Number(b - a) / 1e9;
    const r = {
      run, mib: MIB, scanned: !!CLAMD,
      upload_mib_s: +(MIB / s(t0, t1)).toFixed(1),
      upload_cpu_ms_per_mib: +((c1 - c0) / MIB).toFixed(2),
      checks_s: +s(t1, t2).toFixed(3),
      checks_cpu_ms_per_mib: +((c2 - c1) / MIB).toFixed(2),
      download_mib_s: +(MIB / s(t2, t3)).toFixed(1),
      download_cpu_ms_per_mib: +((c3 - c2) / MIB).toFixed(2),
    };
    console.log(JSON.stringify(r));
    results.push(r);
    // Free the disk for the next run.
    await request(srv.port, 'DELETE', url, Object.assign({ 'Tus-Resumable': '1.0.0' }, auth));
  }
  const med = (k) => results.map((r) => r[k]).sort((a, b) => a - b)[Math.floor(results.length / 2)];
  console.log(`\n| ${MIB} MiB file${CLAMD ? ', clamd scan' : ''} (median of ${RUNS}) | value |\n|---|---|`);
  for (const k of ['upload_mib_s', 'upload_cpu_ms_per_mib', 'checks_s', 'checks_cpu_ms_per_mib', 'download_mib_s', 'download_cpu_ms_per_mib']) {
    console.log(`| ${k} | ${med(k)} |`);
  }
  ws.close();
  srv.proc.kill('SIGTERM');
  await new Promise((r) => srv.proc.once('exit', r));
  fs.rmSync(srv.dir, { recursive: true, force: true });
}

main().catch((e) => { console.error(e); process.exit(1); });
