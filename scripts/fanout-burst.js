#!/usr/bin/env node
// scripts/fanout-burst.js: counts huddle's write-family syscalls per
// delivery when room members send in bursts (issue 16, fan-out). Starts
// huddle on a free loopback port, joins MEMBERS clients to one room, then
// for ROUNDS rounds has SENDERS of them each send BURST chat messages at
// once (one socket write of BURST frames), and waits until every member has
// every message. strace -c -f counts the server's syscalls over the rounds
// only; with --callgrind the server runs under valgrind and the counters
// are zeroed and dumped around the rounds instead.
//
//   node scripts/fanout-burst.js [--bin build/huddle] [--members 50] [--senders 49]
//        [--burst 5] [--rounds 20] [--callgrind] [--out DIR]
//
// Needs strace (or valgrind) and the `ws` package from tests/ (cd tests && npm ci).
// Numbers, not a test: the suite never asserts on them.
'use strict';
const { spawn, execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const WebSocket = require(path.join(__dirname, '..', 'tests', 'node_modules', 'ws'));

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const BIN = path.resolve(opt('bin', path.join(__dirname, '..', 'build', 'huddle')));
const MEMBERS = Number(opt('members', 50));
const SENDERS = Number(opt('senders', MEMBERS - 1));
const BURST = Number(opt('burst', 5));
const ROUNDS = Number(opt('rounds', 20));
const CALLGRIND = args.includes('--callgrind');
// --sequence: strace the calls themselves (epoll_wait, read, write, writev)
// instead of counting them, to see that a lone message is written before the
// loop waits again (try --members 2 --senders 1 --burst 1 --rounds 3).
const SEQUENCE = args.includes('--sequence');
const OUT = opt('out', fs.mkdtempSync(path.join(os.tmpdir(), 'fanout-burst-')));
const SECRET = 'fanout-burst-secret-fanout-burst-secret-0123';

const b64u = (s) => Buffer.from(s).toString('base64url');
function token(sub) {
  const now = Math.floor(Date.now() / 1000);
  const input = `${b64u(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${b64u(JSON.stringify({ sub, iat: now, exp: now + 3600 }))}`;
  return `${input}.${crypto.createHmac('sha256', SECRET).update(input).digest('base64url')}`;
}

async function main() {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fanout-burst-data-'));
  const cg = path.join(OUT, 'callgrind.out');
  const cmd = CALLGRIND ? ['valgrind', '--tool=callgrind', `--callgrind-out-file=${cg}`, BIN] : [BIN];
  const srv = spawn(cmd[0], [...cmd.slice(1), '--listen', '127.0.0.1:0', '--data-dir', dataDir,
    '--jwt-secret', SECRET, '--log-level', 'info', '--chat-durability', 'off',
    '--rate-websocket-message', '0/1m', '--rate-chat-message', '0/1m', '--rate-room-create', '0/1m',
    '--max-connections-per-ip', '100000'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const port = await new Promise((resolve, reject) => {
    const on = (d) => {
      log += d;
      const m = /listening addr=127\.0\.0\.1:(\d+)/.exec(log);
      if (m) resolve(Number(m[1]));
    };
    srv.stdout.on('data', on);
    srv.stderr.on('data', on);
    srv.on('exit', (code) => reject(new Error(`huddle exited (${code}): ${log}`)));
  });

  const clients = [];
  let received = 0;
  let want = 0;
  let wake = null;
  for (let i = 0; i < MEMBERS; i++) {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/webrtc/ws/burst`, {
      headers: { Authorization: `Bearer ${token(`u${i}`)}` }, perMessageDeflate: false,
    });
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
    ws.on('message', (d) => {
      if (d.toString().startsWith('{"type":"chat-message"')) received++;
      if (wake && received >= want) wake();
    });
    clients.push(ws);
  }
  await new Promise((r) => setTimeout(r, 300)); // joins and their broadcasts settle

  // Frames for one burst: BURST masked text frames in one buffer, one write.
  const text = 'x'.repeat(150);
  const frame = (s) => {
    const p = Buffer.from(s);
    const h = p.length < 126 ? Buffer.from([0x81, 0x80 | p.length]) : Buffer.from([0x81, 0xfe, p.length >> 8, p.length & 255]);
    const mask = crypto.randomBytes(4);
    for (let i = 0; i < p.length; i++) p[i] ^= mask[i & 3];
    return Buffer.concat([h, mask, p]);
  };

  const straceOut = path.join(OUT, 'strace.txt');
  let tracer = null;
  if (CALLGRIND) execFileSync('callgrind_control', ['-z', String(srv.pid)], { stdio: 'ignore' });
  else {
    tracer = spawn('strace', [...(SEQUENCE ? ['-tt', '-e', 'trace=epoll_wait,read,write,writev'] : ['-c']),
      '-f', '-p', String(srv.pid), '-o', straceOut], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 500)); // attached
  }
  received = 0;
  for (let r = 0; r < ROUNDS; r++) {
    want += SENDERS * BURST * MEMBERS; // chat goes to every member, the sender too
    const done = new Promise((resolve) => { wake = resolve; });
    for (let s = 0; s < SENDERS; s++) {
      const frames = [];
      for (let k = 0; k < BURST; k++) {
        frames.push(frame(JSON.stringify({ type: 'chat-message', id: `r${r}s${s}k${k}`, payload: { text } })));
      }
      clients[s]._socket.write(Buffer.concat(frames));
    }
    const timeout = setTimeout(() => wake && wake(), 60000);
    await done;
    clearTimeout(timeout);
  }
  const deliveries = received;
  if (CALLGRIND) execFileSync('callgrind_control', ['-d', String(srv.pid)], { stdio: 'ignore' });
  else {
    tracer.kill('SIGINT');
    await new Promise((r) => tracer.on('exit', r));
  }
  for (const ws of clients) ws.terminate();
  srv.kill('SIGTERM');
  await new Promise((r) => srv.on('exit', r));

  const messages = ROUNDS * SENDERS * BURST;
  console.log(`members ${MEMBERS}, senders ${SENDERS} x burst ${BURST}, rounds ${ROUNDS}: ` +
    `${messages} messages in, ${deliveries} deliveries (expected ${messages * MEMBERS})`);
  if (SEQUENCE) {
    console.log(fs.readFileSync(straceOut, 'utf8').split('\n').filter((l) => !/resumed>|unfinished/.test(l) || /writev|read\(/.test(l)).join('\n'));
  } else if (!CALLGRIND) {
    const t = fs.readFileSync(straceOut, 'utf8');
    const count = (name) => {
      const m = new RegExp(`^\\s*[\\d.]+\\s+[\\d.]+\\s+\\d+\\s+(\\d+)\\s+(?:\\d+\\s+)?${name}$`, 'm').exec(t);
      return m ? Number(m[1]) : 0;
    };
    const writes = count('write') + count('writev') + count('sendmsg') + count('sendto');
    console.log(`write-family syscalls: ${writes} (write ${count('write')}, writev ${count('writev')}, ` +
      `sendmsg ${count('sendmsg')}), ${(writes / deliveries).toFixed(3)} per delivery; ` +
      `read ${count('read')}, epoll_wait ${count('epoll_wait')}; ` +
      `pwrite64 ${count('pwrite64')} (the store's thread: SQLite)`);
    console.log(`strace -c table: ${straceOut}`);
  } else {
    // callgrind_control -d wrote <out>.1: the rounds only (the exit dump, <out>, is the teardown).
    const files = fs.readdirSync(OUT).filter((f) => f.startsWith('callgrind.out'));
    const m = /^summary:\s+(\d+)/m.exec(fs.readFileSync(`${cg}.1`, 'utf8'));
    const dumped = m ? Number(m[1]) : NaN;
    console.log(`instructions (callgrind, user space, the rounds only): ${dumped}, ` +
      `${Math.round(dumped / deliveries)} per delivery, ${Math.round(dumped / messages)} per message in`);
    console.log(`callgrind files: ${files.map((f) => path.join(OUT, f)).join(' ')}`);
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
