'use strict';
// Helpers bench/files.js and bench/files_cluster.js share: a development
// token, a process's CPU time, a WebSocket member, a streamed HTTP request.
// Not a benchmark itself.

const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const WebSocket = require(path.join(root, 'tests/node_modules/ws'));

const SECRET = 'bench-secret-0123456789-0123456789-abcdefgh';
const TICK = 100; // USER_HZ on Linux

const b64u = (b) => Buffer.from(b).toString('base64').replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
function token(sub, room) {
  const h = b64u(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const p = b64u(JSON.stringify({ sub, room, exp: Math.floor(Date.now() / 1000) + 3600 }));
  return `${h}.${p}.${b64u(crypto.createHmac('sha256', SECRET).update(`${h}.${p}`).digest())}`;
}

function cpuMs(pid) {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const parts = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return ((Number(parts[11]) + Number(parts[12])) * 1000) / TICK; // utime + stime
}

function join(port, room, user) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/webrtc/ws/${room}?token=${token(user, room)}`);
    const queue = [];
    const waiters = [];
    ws.on('message', (d) => {
      queue.push(JSON.parse(d.toString()));
      waiters.splice(0).forEach((w) => w());
    });
    ws.next = async (pred) => {
      for (;;) {
        const i = queue.findIndex(pred);
        if (i >= 0) return queue.splice(i, 1)[0];
        await new Promise((r) => waiters.push(r));
      }
    };
    ws.on('open', () => resolve(ws));
    ws.on('error', reject);
  });
}

function request(port, method, url, headers, body) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: url, headers, agent: false }, (res) => {
      let n = 0;
      res.on('data', (d) => { n += d.length; });
      res.on('end', () => resolve({ status: res.statusCode, bytes: n }));
    });
    req.on('error', reject);
    if (body) {
      // Written in 1 MiB pieces, as a streaming client would.
      let o = 0;
      const pump = () => {
        while (o < body.length) {
          const ok = req.write(body.subarray(o, o + 1048576));
          o += 1048576;
          if (!ok) return req.once('drain', pump);
        }
        req.end();
        return undefined;
      };
      pump();
    } else {
      req.end();
    }
  });
}

module.exports = { SECRET, token, cpuMs, join, request };
