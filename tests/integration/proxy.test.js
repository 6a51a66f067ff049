'use strict';
// Deployment behind TLS (docs/security.md): Debian's nginx in front of huddle
// with a self-signed certificate made here by openssl. WebSocket over wss
// works through it, and per-address limits see the address X-Forwarded-For
// names only when the peer is one of --trusted-proxies.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const net = require('node:net');
const https = require('node:https');
const http = require('node:http');
const { spawn, execFileSync } = require('node:child_process');
const test = require('node:test');
const assert = require('node:assert');
const h = require('./helpers');
const { tok, ofType } = require('./feature_helpers');

const NGINX = process.env.NGINX_BIN || '/usr/sbin/nginx';
const PROXY_ADDR = '127.0.0.2'; // nginx connects to huddle from here (proxy_bind)

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/** The nginx configuration documented in docs/security.md, with test paths and ports. */
function nginxConf(dir, listenPort, upstreamPort) {
  return `
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log info;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path ${dir}/tmp/body;
  proxy_temp_path ${dir}/tmp/proxy;
  fastcgi_temp_path ${dir}/tmp/fastcgi;
  uwsgi_temp_path ${dir}/tmp/uwsgi;
  scgi_temp_path ${dir}/tmp/scgi;

  map $http_upgrade $connection_upgrade {
    default upgrade;
    ''      close;
  }
  upstream huddle {
    server 127.0.0.1:${upstreamPort};
  }
  server {
    listen 127.0.0.1:${listenPort} ssl;
    ssl_certificate     ${dir}/cert.pem;
    ssl_certificate_key ${dir}/key.pem;
    ssl_protocols       TLSv1.2 TLSv1.3;
    client_max_body_size 1m;

    location /webrtc/ {
      proxy_pass http://huddle;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_bind ${PROXY_ADDR};
      proxy_read_timeout 3600s;
      proxy_send_timeout 3600s;
      proxy_buffering off;
    }
  }
}
`;
}

async function startNginx(upstreamPort) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'huddle-nginx-'));
  fs.mkdirSync(path.join(dir, 'tmp'), { mode: 0o777 });
  fs.chmodSync(path.join(dir, 'tmp'), 0o777);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
    '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')], { stdio: 'ignore' });
  const port = await freePort();
  fs.writeFileSync(path.join(dir, 'nginx.conf'), nginxConf(dir, port, upstreamPort));
  const proc = spawn(NGINX, ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-g', 'daemon off;'],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((resolve) => proc.on('exit', resolve));
  await h.waitFor(() => new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true); });
    s.on('error', () => resolve(false));
  }), 5000, 50, `nginx listening (${stderr})`);
  const ca = fs.readFileSync(path.join(dir, 'cert.pem'));
  return {
    port, ca, dir,
    async stop() {
      proc.kill('SIGQUIT');
      await Promise.race([exited, h.delay(3000)]);
      try { proc.kill('SIGKILL'); } catch (_) { /* gone */ }
      fs.rmSync(dir, { recursive: true, force: true });
    },
    log() { try { return fs.readFileSync(path.join(dir, 'error.log'), 'utf8').slice(-2000); } catch (_) { return ''; } },
  };
}

/** GET over https through nginx from a chosen local address. */
function viaProxy(px, urlPath, localAddress, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port: px.port, path: urlPath, method: 'GET', ca: px.ca, localAddress, headers, agent: false },
      (res) => {
        let body = '';
        res.on('data', (d) => { body += d; });
        res.on('end', () => resolve({ status: res.statusCode, text: body }));
      });
    req.on('error', reject);
    req.end();
  });
}

/** GET straight to huddle from a chosen local address. */
function direct(srv, urlPath, localAddress, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: srv.port, path: urlPath, method: 'GET', localAddress, headers, agent: false },
      (res) => {
        let body = '';
        res.on('data', (d) => { body += d; });
        res.on('end', () => resolve({ status: res.statusCode, text: body }));
      });
    req.on('error', reject);
    req.end();
  });
}

function wss(px, room, token) {
  return new Promise((resolve, reject) => {
    const ws = new h.WebSocket(`wss://127.0.0.1:${px.port}/webrtc/ws/${room}`, {
      headers: { Authorization: `Bearer ${token}` }, ca: px.ca, perMessageDeflate: false,
    });
    const msgs = [];
    const waiters = [];
    ws.on('message', (d) => {
      const m = JSON.parse(d.toString());
      const w = waiters.findIndex((x) => x.pred(m));
      if (w >= 0) waiters.splice(w, 1)[0].resolve(m); else msgs.push(m);
    });
    ws.on('open', () => resolve({
      ws,
      send: (m) => ws.send(JSON.stringify(m)),
      next(pred) {
        const i = msgs.findIndex(pred);
        if (i >= 0) return Promise.resolve(msgs.splice(i, 1)[0]);
        return h.withTimeout(new Promise((res) => waiters.push({ pred, resolve: res })), 3000, 'message through nginx');
      },
    }));
    ws.on('unexpected-response', (req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    ws.on('error', reject);
  });
}

test('behind nginx with TLS: wss works, and per-address limits see the forwarded client only from a trusted proxy', async () => {
  const args = ['--trusted-proxies', PROXY_ADDR, '--rate-api-call', '3/1m'];
  await h.withServer({ args }, async (srv) => {
    const px = await startNginx(srv.port);
    try {
      // WebSocket upgrade through the proxy, both ways.
      const a = await wss(px, 'px', tok(srv, { sub: 'alice', room: 'px' }));
      assert.strictEqual((await a.next(ofType('room-state'))).payload.self.user_id, 'alice');
      const b = await wss(px, 'px', tok(srv, { sub: 'bob', room: 'px' }));
      await b.next(ofType('room-state'));
      await a.next(ofType('user-joined'));
      b.send({ type: 'chat-message', payload: { text: 'over wss' } });
      assert.strictEqual((await a.next(ofType('chat-message'))).payload.text, 'over wss');
      a.ws.close();
      b.ws.close();

      // api_call per address without a token: the client behind nginx is the key.
      for (let i = 0; i < 3; i++) assert.strictEqual((await viaProxy(px, '/webrtc/config', '127.0.0.3')).status, 200);
      assert.strictEqual((await viaProxy(px, '/webrtc/config', '127.0.0.3')).status, 429, 'client .3 spent its budget');
      assert.strictEqual((await viaProxy(px, '/webrtc/config', '127.0.0.4')).status, 200, 'client .4 has its own budget');
      // A forged X-Forwarded-For sent to nginx does not buy a new budget: nginx appends the real peer.
      const forged = await viaProxy(px, '/webrtc/config', '127.0.0.3', { 'X-Forwarded-For': '10.9.9.9' });
      assert.strictEqual(forged.status, 429, `forged header through the proxy: ${forged.text}`);

      // Straight to huddle from an untrusted peer: the header is ignored.
      for (let i = 0; i < 3; i++) {
        assert.strictEqual((await direct(srv, '/webrtc/config', '127.0.0.5', { 'X-Forwarded-For': `10.0.0.${i}` })).status, 200);
      }
      const spoof = await direct(srv, '/webrtc/config', '127.0.0.5', { 'X-Forwarded-For': '10.0.0.99' });
      assert.strictEqual(spoof.status, 429, 'X-Forwarded-For from an untrusted peer changes nothing');
    } catch (e) {
      e.message += `\n----- nginx error.log -----\n${px.log()}`;
      throw e;
    } finally {
      await px.stop();
    }
  });
});
