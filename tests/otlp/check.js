#!/usr/bin/env node
// Compares what the test receiver decoded (receiver.js's JSON lines) with the spans a test
// sent (a JSON file the C test writes from its own span data), field by field.
//
//   node check.js EXPECTED.json RECEIVED.jsonl [--encoding gzip|identity]
//                 [--max-body BYTES] [--path /v1/traces]
//
// EXPECTED.json: {"spans": [{...span fields as receiver.js writes them...,
//                 "resource": {"attributes": [...]} or null,
//                 "scope": {"name", "version", "schemaUrl"} or null}]}
// Only requests answered 2xx count as delivered. Every expected span must be delivered
// exactly once, with equal fields, under its resource and scope; within one request a
// resource has one ResourceSpans and a scope one ScopeSpans (grouping). Exit 0 when all
// holds, 1 with the differences printed otherwise.
'use strict';

const fs = require('fs');

const [expectedPath, receivedPath, ...rest] = process.argv.slice(2);
const opt = {};
for (let i = 0; i < rest.length; i += 2) opt[rest[i].replace(/^--/, '')] = rest[i + 1];

const problems = [];
const fail = (m) => { if (problems.length < 40) problems.push(m); else if (problems.length === 40) problems.push('...'); };

function dbl(x) {
  if (typeof x !== 'number') return x;
  if (Number.isNaN(x)) return 'NaN';
  if (x === Infinity) return 'Infinity';
  if (x === -Infinity) return '-Infinity';
  if (Object.is(x, -0)) return '-0';
  return x;
}

// doubles in the expected file may be written as numbers; compare them as receiver.js does
function fixDoubles(v) {
  if (Array.isArray(v)) return v.map(fixDoubles);
  if (v && typeof v === 'object') {
    const o = {};
    for (const [k, x] of Object.entries(v)) o[k] = k === 'doubleValue' ? dbl(x) : fixDoubles(x);
    return o;
  }
  return v;
}

function compare(a, b, path) {
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b)) return fail(`${path}: expected ${JSON.stringify(a)}, got ${JSON.stringify(b)}`);
    if (a.length !== b.length) fail(`${path}: expected ${a.length} items, got ${b.length}`);
    for (let i = 0; i < Math.min(a.length, b.length); i++) compare(a[i], b[i], `${path}[${i}]`);
    return;
  }
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) compare(a[k], b[k], `${path}.${k}`);
    return;
  }
  if (!Object.is(a, b)) fail(`${path}: expected ${JSON.stringify(a)}, got ${JSON.stringify(b)}`);
}

const expected = fixDoubles(JSON.parse(fs.readFileSync(expectedPath, 'utf8'))).spans;
const lines = fs.readFileSync(receivedPath, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));

const got = new Map();
let delivered = 0;
for (const rec of lines) {
  if (!(rec.status >= 200 && rec.status < 300)) continue;
  delivered++;
  const where = `request ${rec.seq}`;
  if (rec.error) { fail(`${where}: not decodable: ${rec.error}`); continue; }
  if (!rec.request) { fail(`${where}: logged without --brief?`); continue; }
  if (rec.headers['content-type'] !== 'application/x-protobuf')
    fail(`${where}: content-type ${rec.headers['content-type']}`);
  const enc = rec.headers['content-encoding'] || 'identity';
  if (opt.encoding && enc !== opt.encoding) fail(`${where}: content-encoding ${enc}, expected ${opt.encoding}`);
  if (opt['max-body'] && rec.bodyBytes > Number(opt['max-body']))
    fail(`${where}: ${rec.bodyBytes} bytes, over the cap of ${opt['max-body']}`);
  if (opt.path && rec.path !== opt.path) fail(`${where}: path ${rec.path}, expected ${opt.path}`);
  const seenRes = new Set();
  for (const rs of rec.request.resourceSpans) {
    const resource = rs.resource ? { attributes: rs.resource.attributes } : null;
    const rkey = JSON.stringify(resource);
    if (seenRes.has(rkey)) fail(`${where}: resource ${rkey} split over two ResourceSpans`);
    seenRes.add(rkey);
    const seenScope = new Set();
    for (const ss of rs.scopeSpans) {
      const scope = ss.scope ? { name: ss.scope.name, version: ss.scope.version, schemaUrl: ss.schemaUrl } : null;
      const skey = JSON.stringify(scope);
      if (seenScope.has(skey)) fail(`${where}: scope ${skey} split over two ScopeSpans`);
      seenScope.add(skey);
      if (ss.spans.length === 0) fail(`${where}: empty ScopeSpans`);
      for (const s of ss.spans) {
        if (got.has(s.spanId)) fail(`span ${s.spanId} delivered twice`);
        got.set(s.spanId, { ...s, resource, scope });
      }
    }
  }
}

for (const e of expected) {
  const g = got.get(e.spanId);
  if (!g) { fail(`span ${e.spanId} (${e.name}) not delivered`); continue; }
  got.delete(e.spanId);
  compare(e, g, `span ${e.spanId}`);
}
for (const id of got.keys()) fail(`span ${id} delivered but not expected`);

if (problems.length) {
  console.log(`check: ${problems.length} problem(s) over ${delivered} delivered request(s):`);
  for (const p of problems) console.log('  ' + p);
  process.exit(1);
}
console.log(`check: ${expected.length} spans match in ${delivered} request(s)`);
