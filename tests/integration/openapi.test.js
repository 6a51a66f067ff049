// GET /webrtc/openapi.json: a valid OpenAPI 3.1 document (checked by a real
// validator from npm) with exactly the routes of src/api/api.c's table, each
// described, and each also listed in docs/protocol.md.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const h = require('./helpers');

const root = path.resolve(__dirname, '../..');

/** The route table as written in src/api/api.c: [{method, path}]. */
function routeTable() {
  const src = fs.readFileSync(path.join(root, 'src/api/api.c'), 'utf8');
  const rb = /#define RB "([^"]+)"/.exec(src)[1];
  const body = src.slice(src.indexOf('static const struct route routes[] = {'));
  const rows = [...body.slice(0, body.indexOf('};')).matchAll(/\{HTTP_(GET|POST|DELETE|PUT|PATCH|HEAD|OPTIONS), ((?:RB ?)?(?:"[^"]*")?),/g)];
  return rows.map((m) => {
    const p = m[2].replace(/^RB ?/, rb).replace(/"/g, '');
    return { method: m[1].toLowerCase(), path: p === '' ? rb : p };
  });
}

test('GET /webrtc/openapi.json is valid OpenAPI 3.1 and matches the route table', async () => {
  const { Validator } = await import('@seriousme/openapi-schema-validator');
  await h.withServer(async (srv) => {
    const r = await h.httpGet(srv, '/webrtc/openapi.json');
    assert.strictEqual(r.status, 200, r.text);
    assert.match(String(r.headers['content-type']), /application\/json/);
    const doc = r.json;
    assert.strictEqual(doc.openapi, '3.1.0');
    const validator = new Validator();
    const res = await validator.validate(JSON.parse(JSON.stringify(doc)));
    assert.ok(res.valid, `OpenAPI validation: ${String(JSON.stringify(res.errors, null, 1)).slice(0, 3000)}`);
    assert.strictEqual(validator.version, '3.1');

    const routes = routeTable();
    assert.ok(routes.length >= 40, `parsed ${routes.length} routes`);
    const documented = [];
    for (const [p, item] of Object.entries(doc.paths)) {
      for (const [m, op] of Object.entries(item)) {
        documented.push(`${m} ${p}`);
        assert.ok(op.summary && op.summary !== 'UNDOCUMENTED', `${m} ${p} has a summary`);
        assert.ok(op.responses && op.responses.default, `${m} ${p} documents its error form`);
        const params = (p.match(/\{[a-z_]+\}/g) || []).map((x) => x.slice(1, -1)).sort();
        const declared = (op.parameters || []).filter((x) => x.in === 'path').map((x) => x.name).sort();
        assert.deepStrictEqual(declared, params, `${m} ${p} path parameters`);
      }
    }
    assert.deepStrictEqual(documented.sort(), routes.map((x) => `${x.method} ${x.path}`).sort(),
      'the document has exactly the routes of the table');
    // And docs/protocol.md lists each of them.
    const md = fs.readFileSync(path.join(root, 'docs/protocol.md'), 'utf8');
    for (const x of routes) {
      const shown = x.path === '/webrtc/ws/{room_id}' ? `WS ${x.path}` : `${x.method.toUpperCase()} ${x.path}`;
      assert.ok(md.includes(`\`${shown}\``), `docs/protocol.md lists ${shown}`);
    }
  });
});

test('a route without a description would be caught: UNDOCUMENTED never appears', async () => {
  await h.withServer(async (srv) => {
    const r = await h.httpGet(srv, '/webrtc/openapi.json');
    assert.strictEqual(r.status, 200, r.text);
    assert.ok(Object.keys(r.json.paths).length >= 30, 'the document lists the routes');
    assert.ok(!r.text.includes('UNDOCUMENTED'), 'every route has a summary in src/api/openapi.c');
  });
});
