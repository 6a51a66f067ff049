#!/usr/bin/env node
// Instructions per relayed message, one message at a time: starts huddle
// under callgrind, joins two members, and sends N directed messages from
// one to the other, each only after the previous one arrived (so each is
// its own read, dispatch and write). The counters are zeroed before the
// first and dumped after the last, so the figure is everything the server
// does in user space for the message, from the read to the write, plus
// the event loop around it. An idle window of the same length is measured
// too and reported (it is not subtracted).
//
//   node scripts/cg-relay.js [--bin build/huddle] [--n 200] [--kind offer|answer|candidate|chat]
//                            [--sdp 6144] [--role participant|viewer] [--out DIR] [--strace 1]
// With --strace 1, the server runs under strace -c instead (whole run, joins
// included: use a large --n) and syscalls per message are printed.
// A viewer sends a recvonly SDP, so the publish check reads it (guard/sdp.c).
'use strict';
const { spawn, execFileSync } = require('child_process');
const crypto = require('crypto');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');
const WebSocket = require(path.join(__dirname, '..', 'tests', 'node_modules', 'ws'));

const args = { bin: 'build/huddle', n: 200, kind: 'offer', sdp: 6144, role: 'participant', out: '' };
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
args.n = Number(args.n);
args.sdp = Number(args.sdp);
const SECRET = 'cg-relay-secret-cg-relay-secret-0123456789';
const out = args.out || fs.mkdtempSync(path.join(os.tmpdir(), 'cg-relay-'));
fs.mkdirSync(out, { recursive: true });

const b64u = (s) => Buffer.from(s).toString('base64').replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
function token(claims) {
  const now = Math.floor(Date.now() / 1000);
  const input = `${b64u(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${b64u(JSON.stringify(Object.assign({ iat: now, exp: now + 3600 }, claims)))}`;
  return `${input}.${b64u(crypto.createHmac('sha256', SECRET).update(input).digest())}`;
}

// A Chrome-like session description of about `bytes` bytes (CRLF lines).
function sdp(bytes, dir) {
  const l = ['v=0', 'o=- 4611731400430051336 2 IN IP4 127.0.0.1', 's=-', 't=0 0', 'a=group:BUNDLE 0 1',
    'a=extmap-allow-mixed', 'a=msid-semantic: WMS stream', 'm=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8',
    'c=IN IP4 0.0.0.0', 'a=rtcp:9 IN IP4 0.0.0.0', 'a=ice-ufrag:EsAw', 'a=ice-pwd:bP+XJMM09aR8AiX1jdukzR6Y',
    'a=ice-options:trickle', 'a=fingerprint:sha-256 DA:39:A3:EE:5E:6B:4B:0D:32:55:BF:EF:95:60:18:90:AF:D8:07:09',
    'a=setup:actpass', 'a=mid:0', 'a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level', `a=${dir}`,
    'a=rtcp-mux', 'a=rtpmap:111 opus/48000/2', 'a=rtcp-fb:111 transport-cc', 'a=fmtp:111 minptime=10;useinbandfec=1',
    'm=video 9 UDP/TLS/RTP/SAVPF 96 97', 'c=IN IP4 0.0.0.0', 'a=mid:1', `a=${dir}`, 'a=rtcp-mux', 'a=rtcp-rsize'];
  let pt = 96;
  while (l.join('\r\n').length < bytes - 120) {
    l.push(`a=rtpmap:${pt} VP8/90000`, `a=rtcp-fb:${pt} goog-remb`, `a=rtcp-fb:${pt} transport-cc`,
      `a=rtcp-fb:${pt} ccm fir`, `a=rtcp-fb:${pt} nack`, `a=rtcp-fb:${pt} nack pli`,
      `a=rtpmap:${pt + 1} rtx/90000`, `a=fmtp:${pt + 1} apt=${pt}`);
    pt = pt >= 126 ? 96 : pt + 2;
  }
  l.push('a=ssrc:1001 cname:relaybench');
  return l.join('\r\n') + '\r\n';
}

function message(i) {
  const dir = args.role === 'viewer' ? 'recvonly' : 'sendrecv';
  switch (args.kind) {
    case 'offer': return { type: 'offer', id: `o${i}`, to: 'bob', payload: { type: 'offer', sdp: sdp(args.sdp, dir) } };
    case 'answer': return { type: 'answer', id: `a${i}`, to: 'bob', payload: { type: 'answer', sdp: sdp(args.sdp, dir) } };
    case 'candidate': return { type: 'ice-candidate', id: `c${i}`, to: 'bob', payload: {
      candidate: 'candidate:842163049 1 udp 1677729535 203.0.113.7 46154 typ srflx raddr 10.0.0.5 rport 46154 generation 0',
      sdpMid: '0', sdpMLineIndex: 0 } };
    default: return { type: 'chat-message', id: `m${i}`, payload: { text: 'hello there, this is a chat message' } };
  }
}

const freePort = () => new Promise((res) => {
  const s = net.createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => res(p)); });
});
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function join(port, user, role) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/webrtc/ws/cgroom`, { headers: { authorization: `Bearer ${token({ sub: user, role })}` } });
    const queue = [];
    let waiter = null;
    ws.on('message', (d) => { const m = JSON.parse(d); if (waiter) { const w = waiter; waiter = null; w(m); } else queue.push(m); });
    ws.next = () => new Promise((r) => { if (queue.length) r(queue.shift()); else waiter = r; });
    ws.on('open', async () => { const st = await ws.next(); if (st.type !== 'room-state') reject(new Error(JSON.stringify(st))); else resolve(ws); });
    ws.on('error', reject);
  });
}

// The instructions in a callgrind dump (its "totals:" or "summary:" line).
function irOf(file) {
  const m = fs.readFileSync(file, 'utf8').match(/^(?:totals|summary): (\d+)/m);
  return m ? Number(m[1]) : NaN;
}
function dump(pid) {
  const before = new Set(fs.readdirSync(out));
  execFileSync('callgrind_control', ['-d', String(pid)], { stdio: 'ignore' });
  const added = fs.readdirSync(out).filter((f) => !before.has(f) && f.startsWith('cg.'));
  return path.join(out, added.sort().pop());
}

async function main() {
  const port = await freePort();
  const data = fs.mkdtempSync(path.join(os.tmpdir(), 'cg-relay-data-'));
  const flags = [args.bin, '--listen', `127.0.0.1:${port}`, '--data-dir', data, '--jwt-secret', SECRET,
    '--rate-websocket-message', '0/1m', '--rate-chat-message', '0/1m', '--log-level', 'warn'];
  const srv = args.strace
    ? spawn('strace', ['-f', '-qq', '-c', '-o', `${out}/strace.txt`, ...flags], { stdio: ['ignore', 'ignore', 'pipe'] })
    : spawn('valgrind', ['--tool=callgrind', `--callgrind-out-file=${out}/cg.%p`, ...flags], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  srv.stderr.on('data', (d) => { err += d; });
  for (let i = 0; i < 300; i++) {
    const ok = await new Promise((r) => { const s = net.connect(port, '127.0.0.1', () => { s.end(); r(true); }).on('error', () => r(false)); });
    if (ok) break;
    await sleep(100);
  }
  try {
    const alice = await join(port, 'alice', args.role === 'viewer' ? 'viewer' : undefined);
    const bob = await join(port, 'bob');
    const send = async (i) => {
      alice.send(JSON.stringify(message(i)));
      for (;;) { const m = await bob.next(); if (m.from === 'alice') return m; }
    };
    const first = await send(0);
    if (first.type !== message(0).type) throw new Error(`bob got ${JSON.stringify(first).slice(0, 200)}`);
    for (let i = 1; i < 20; i++) await send(i); // warm up
    const bytes = JSON.stringify(message(1)).length;
    if (args.strace) {
      for (let i = 0; i < args.n; i++) await send(100 + i);
      alice.close();
      bob.close();
      await sleep(300);
      // The server is strace's child: stop it, and strace writes its summary and exits.
      const exited = new Promise((r) => srv.on('exit', r));
      process.kill(Number(execFileSync('pgrep', ['-P', String(srv.pid)]).toString().trim().split('\n')[0]), 'SIGTERM');
      await exited;
      const calls = {};
      for (const l of fs.readFileSync(`${out}/strace.txt`, 'utf8').split('\n')) {
        const m = l.match(/^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)$/);
        if (m) calls[m[2]] = Number(m[1]);
      }
      const per = {};
      for (const k of ['read', 'write', 'writev', 'epoll_wait', 'epoll_pwait']) if (calls[k]) per[k] = +(calls[k] / args.n).toFixed(3);
      const line = JSON.stringify({ kind: args.kind, role: args.role, message_bytes: bytes, n: args.n, syscalls_per_message_whole_run: per, strace: `${out}/strace.txt` });
      process.stdout.write(`${line}\n`, () => process.exit(0)); // the clients' close handshakes would wait 30 s
      return;
    }
    execFileSync('callgrind_control', ['-z', String(srv.pid)], { stdio: 'ignore' });
    const t0 = Date.now();
    for (let i = 0; i < args.n; i++) await send(100 + i);
    const ms = Date.now() - t0;
    const busy = irOf(dump(srv.pid));
    execFileSync('callgrind_control', ['-z', String(srv.pid)], { stdio: 'ignore' });
    await sleep(ms);
    const idle = irOf(dump(srv.pid));
    console.log(JSON.stringify({ kind: args.kind, role: args.role, message_bytes: bytes, n: args.n, window_ms: ms,
      ir_total: busy, ir_per_message: Math.round(busy / args.n), idle_ir_same_window: idle,
      ir_per_message_minus_idle: Math.round((busy - idle) / args.n), profile: out }));
    alice.close();
    bob.close();
  } finally {
    if (srv.exitCode === null && srv.signalCode === null) {
      srv.kill('SIGTERM');
      await new Promise((r) => srv.on('exit', r));
    }
    fs.rmSync(data, { recursive: true, force: true });
  }
}
main().catch((e) => { console.error(e); process.exit(1); });
