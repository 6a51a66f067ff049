'use strict';
// Browser test helpers: Debian's Chromium driven by playwright-core with fake
// media devices (see /work/shared/notes/browser-tests.md for why each flag),
// pages that join through the web app, and getStats() probes that prove media
// flows (frames decoded, audio packets received), not only signaling.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const h = require('../integration/helpers');

const CHROMIUM = process.env.HUDDLE_CHROMIUM || '/usr/lib/chromium/chromium';
const ARTIFACTS = path.resolve(__dirname, '../../test-artifacts');

let chromium = null;
try {
  ({ chromium } = require('playwright-core'));
} catch (_) {
  chromium = null;
}

/** Why browser tests cannot run here, or null when they can. With
 * HUDDLE_E2E_REQUIRED set (scripts/test-all.sh), a missing browser is a failure. */
function unavailable() {
  let why = null;
  if (!chromium) why = 'playwright-core is not installed (cd tests && npm ci)';
  else if (!fs.existsSync(CHROMIUM)) why = `no Chromium at ${CHROMIUM} (scripts/deps.sh test installs it)`;
  if (why && process.env.HUDDLE_E2E_REQUIRED) throw new Error(`browser tests required: ${why}`);
  return why;
}

/** Ends the process if a test hangs (Playwright's own SIGTERM handler can keep node alive). */
function watchdog(ms) {
  const t = setTimeout(() => {
    process.stderr.write(`e2e watchdog: no result after ${ms} ms, exiting\n`);
    process.exit(1);
  }, ms);
  t.unref();
  return t;
}

async function launch() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'huddle-e2e-'));
  const ctx = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--no-first-run',
      '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
      '--allow-loopback-in-peer-connection', '--autoplay-policy=no-user-gesture-required'],
    viewport: { width: 1280, height: 800 },
  });
  ctx.setDefaultTimeout(30000); // generous: other work may share the two cores
  const logs = [];
  ctx.on('page', (p) => attachLogs(p, logs));
  return {
    ctx,
    logs,
    async close() {
      await ctx.close().catch(() => {});
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

function attachLogs(page, logs) {
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') logs.push(`[${page._huddleName || '?'}] ${m.type()}: ${m.text()}`); });
  page.on('pageerror', (e) => logs.push(`[${page._huddleName || '?'}] pageerror: ${e.message}`));
}

/** Starts huddle for browser tests: dev tokens on, the checkout's web/ found
 * beside build/, and the default rate limits (the app must live within them). */
function startServer(opts = {}) {
  return h.startServer(Object.assign({ logLevel: 'info', rateLimits: true }, opts, { args: ['--dev-tokens', ...(opts.args || [])] }));
}

function token(srv, room, user, role = 'participant', name) {
  return h.mintToken(srv.secret, { sub: user, room, role, name: name || user[0].toUpperCase() + user.slice(1) });
}

/** Opens /?room=R&token=T (a direct join) and waits until the app reports joined or waiting. */
async function joinPage(browser, srv, room, user, role, { waitFor = 'joined', query = '' } = {}) {
  const page = await browser.ctx.newPage();
  page._huddleName = user;
  const url = `http://${srv.addr}/?room=${room}&token=${token(srv, room, user, role)}${query}`;
  await page.goto(url);
  if (waitFor === 'joined') await page.waitForFunction(() => window.huddle.client && window.huddle.client.state === 'joined');
  else if (waitFor === 'waiting') await page.waitForFunction(() => window.huddle.client && window.huddle.client.state === 'waiting');
  return page;
}

/** Inbound media per remote user from getStats(): frames decoded and audio packets. */
function inbound(page) {
  return page.evaluate(async () => {
    const out = {};
    for (const [id, peer] of window.huddle.media.peers) {
      const r = await peer.pc.getStats();
      const s = { frames: 0, audio: 0, state: peer.pc.connectionState, serial: peer.serial };
      r.forEach((x) => {
        if (x.type === 'inbound-rtp' && x.kind === 'video') s.frames += x.framesDecoded || 0;
        if (x.type === 'inbound-rtp' && x.kind === 'audio') s.audio += x.packetsReceived || 0;
      });
      out[id] = s;
    }
    return out;
  });
}

/** Waits until page decodes rising video and receives rising audio from every user in from. */
async function expectMediaFrom(page, from, timeoutMs = 20000) {
  const first = await h.waitFor(async () => {
    const s = await inbound(page);
    return from.every((u) => s[u] && s[u].frames > 0 && s[u].audio > 0) ? s : null;
  }, timeoutMs, 200, `${page._huddleName} decoding media from ${from.join(', ')}`);
  const second = await h.waitFor(async () => {
    const s = await inbound(page);
    return from.every((u) => s[u].frames > first[u].frames && s[u].audio > first[u].audio) ? s : null;
  }, timeoutMs, 200, `${page._huddleName}: frames and audio packets from ${from.join(', ')} still rising`);
  return { first, second };
}

async function screenshot(page, name) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file });
  return file;
}

/**
 * A TCP proxy in front of srv, so a test can cut a page's WebSocket the way a
 * network does (no close frame). cutWebSockets() destroys every proxied
 * connection that began with a WebSocket upgrade.
 */
async function tcpProxy(srv) {
  const net = require('node:net');
  const pairs = new Set();
  const server = net.createServer((client) => {
    const upstream = net.connect(srv.port, '127.0.0.1');
    const pair = { client, upstream, ws: false };
    pairs.add(pair);
    client.once('data', (d) => { pair.ws = /^GET [^ ]*\/webrtc\/ws\//.test(d.toString('latin1')) && /upgrade: websocket/i.test(d.toString('latin1')); });
    client.pipe(upstream);
    upstream.pipe(client);
    const end = () => { pairs.delete(pair); client.destroy(); upstream.destroy(); };
    client.on('error', end);
    upstream.on('error', end);
    client.on('close', end);
    upstream.on('close', end);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const port = server.address().port;
  return {
    addr: `127.0.0.1:${port}`,
    secret: srv.secret,
    cutWebSockets() {
      let n = 0;
      for (const p of pairs) {
        if (!p.ws) continue;
        // resetAndDestroy: an RST like a dropped link, not a FIN the server might take for a close.
        if (p.client.resetAndDestroy) p.client.resetAndDestroy(); else p.client.destroy();
        if (p.upstream.resetAndDestroy) p.upstream.resetAndDestroy(); else p.upstream.destroy();
        pairs.delete(p);
        n++;
      }
      return n;
    },
    close() {
      for (const p of pairs) { p.client.destroy(); p.upstream.destroy(); }
      return new Promise((r) => server.close(r));
    },
  };
}

module.exports = {
  tcpProxy, unavailable, watchdog, launch, startServer, token, joinPage, inbound, expectMediaFrom, screenshot, ARTIFACTS, h };
