// /metrics as Prometheus operators need it: `promtool check metrics` finds
// nothing, a static --metrics-token works where JWTs expire, and Debian's
// real `prometheus` scrapes huddle and answers a query for one of its series.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const net = require('node:net');
const { spawn, spawnSync } = require('node:child_process');
const h = require('./helpers');
const f = require('./feature_helpers');

const METRICS_TOKEN = 'scrape-token-0123456789abcdef';

function have(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

test('promtool check metrics finds nothing; the static metrics token is accepted, a wrong one refused', async (t) => {
  if (!have('promtool')) {
    t.skip('promtool not installed (scripts/deps.sh test installs prometheus)');
    return;
  }
  await h.withServer({ args: ['--metrics-token', METRICS_TOKEN] }, async (srv) => {
    const { alice } = await f.joinAll(srv, 'prom', [['alice'], ['bob']]);
    alice.send({ type: 'chat-message', payload: { text: 'hi' } });
    alice.send('{bad');
    await alice.next('error');
    const r = await f.rest(srv, 'GET', '/metrics', { token: METRICS_TOKEN });
    assert.strictEqual(r.status, 200, r.text);
    assert.match(r.text, /^huddle_event_loop_lag_seconds [0-9.]+$/m);
    assert.doesNotMatch(r.text, /_ms\b/);
    const lint = spawnSync('promtool', ['check', 'metrics'], { input: r.text, encoding: 'utf8' });
    assert.strictEqual(lint.status, 0, `promtool: ${lint.stdout}${lint.stderr}`);
    assert.strictEqual(`${lint.stdout}${lint.stderr}`.trim(), '', 'no finding');
    f.assertRestError(await f.rest(srv, 'GET', '/metrics', { token: `${METRICS_TOKEN}x` }), 401, 'INVALID_TOKEN');
    f.assertRestError(await f.rest(srv, 'GET', '/metrics', {}), 401, 'UNAUTHORIZED');
    // An admin JWT still works; a non-admin one does not.
    assert.strictEqual((await f.rest(srv, 'GET', '/metrics', { token: f.adminTok(srv) })).status, 200);
    f.assertRestError(await f.rest(srv, 'GET', '/metrics', { token: f.tok(srv, { sub: 'alice' }) }), 403, 'FORBIDDEN');
    await alice.end();
  });
});

test('--metrics-token shorter than 16 bytes is refused at start', () => {
  const r = h.runHuddle(['--metrics-token', 'short', '--listen', '127.0.0.1:0', '--data-dir', '/nonexistent/never-used']);
  assert.strictEqual(r.status, 2, r.stderr);
  assert.match(r.stderr, /--metrics-token must be at least 16 bytes/);
});

test('Debian prometheus scrapes huddle with the metrics token and answers a query', async (t) => {
  if (!have('prometheus')) {
    t.skip('prometheus not installed (scripts/deps.sh test installs it)');
    return;
  }
  await h.withServer({ args: ['--metrics-token', METRICS_TOKEN] }, async (srv) => {
    const c = await h.join(srv, 'scraped', 'alice');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'huddle-prom-'));
    const port = await freePort();
    // The scrape configuration documented in the README (operations section).
    fs.writeFileSync(path.join(dir, 'prometheus.yml'), [
      'global:',
      '  scrape_interval: 1s',
      'scrape_configs:',
      '  - job_name: huddle',
      '    metrics_path: /metrics',
      '    authorization:',
      '      type: Bearer',
      `      credentials: ${METRICS_TOKEN}`,
      '    static_configs:',
      `      - targets: ['${srv.addr}']`,
      '',
    ].join('\n'));
    const prom = spawn('prometheus', [`--config.file=${path.join(dir, 'prometheus.yml')}`,
      `--web.listen-address=127.0.0.1:${port}`, `--storage.tsdb.path=${path.join(dir, 'tsdb')}`],
    { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    prom.stderr.on('data', (d) => { log += d; });
    try {
      const value = await h.waitFor(async () => {
        const r = await h.httpGet(port, '/api/v1/query?query=huddle_participants');
        const res = r.json && r.json.data && r.json.data.result;
        return res && res.length ? res[0] : null;
      }, 20000, 200, 'prometheus to scrape huddle_participants');
      assert.strictEqual(value.metric.job, 'huddle');
      assert.strictEqual(value.value[1], '1', 'one participant, as Prometheus saw it');
      const up = await h.httpGet(port, '/api/v1/query?query=up%7Bjob%3D%22huddle%22%7D');
      assert.strictEqual(up.json.data.result[0].value[1], '1', `target up: ${log.slice(-2000)}`);
    } finally {
      prom.kill('SIGTERM');
      await new Promise((resolve) => { if (prom.exitCode !== null) resolve(); else prom.once('exit', resolve); });
      fs.rmSync(dir, { recursive: true, force: true });
    }
    await c.end();
  });
});
