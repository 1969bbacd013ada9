#!/usr/bin/env node
// OTLP/HTTP test receiver for otelprof's exporter tests.
//
// Listens on 127.0.0.1 (ephemeral port; prints "PORT <n>" on stdout), decodes each POSTed
// ExportTraceServiceRequest with the official generated code shipped in
// @opentelemetry/otlp-proto-exporter-base@0.51.1 (build/src/generated/root.js), and appends
// one JSON line per request to --out before answering. Ids are written as hex, 64-bit
// integers as decimal strings.
//
// That generated code predates Span.flags (16) and Span.Link.flags (6), so those two
// fixed32 fields are read by a raw walk of the wire format (protobufjs's Reader).
//
// Options:
//   --out FILE         where the JSON lines go (required)
//   --plan LIST        answers for the first requests, in order, comma-separated:
//                      200, 400, 503, 429:ra=2 (a Retry-After header of 2 s), ...
//   --default CODE     answer once the plan is used up (default 200); same syntax
//   --delay-ms N       wait N ms before answering every request
//   --partial N:MSG    200 answers carry partial_success {rejected_spans N, error_message MSG}
//   --brief            log only span counts, not the decoded requests
'use strict';

const http = require('http');
const fs = require('fs');
const zlib = require('zlib');
const root = require('@opentelemetry/otlp-proto-exporter-base/build/src/generated/root.js');
const { Reader, Writer } = require('protobufjs/minimal');

const pb = root.opentelemetry.proto;
const Req = pb.collector.trace.v1.ExportTraceServiceRequest;
const Resp = pb.collector.trace.v1.ExportTraceServiceResponse;

function parseArgs(argv) {
  const o = { plan: [], def: { code: 200 }, delayMs: 0, partial: null, brief: false, out: null };
  const answer = (s) => {
    const [code, ...opts] = s.split(':');
    const a = { code: Number(code) };
    for (const kv of opts) {
      const [k, v] = kv.split('=');
      if (k === 'ra') a.retryAfter = v;
    }
    return a;
  };
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--out') o.out = argv[++i];
    else if (a === '--plan') o.plan = argv[++i].split(',').filter(Boolean).map(answer);
    else if (a === '--default') o.def = answer(argv[++i]);
    else if (a === '--delay-ms') o.delayMs = Number(argv[++i]);
    else if (a === '--partial') {
      const v = argv[++i];
      const c = v.indexOf(':');
      o.partial = { rejected: Number(v.slice(0, c)), message: v.slice(c + 1) };
    } else if (a === '--brief') o.brief = true;
    else throw new Error('unknown option ' + a);
  }
  if (!o.out) throw new Error('--out is required');
  return o;
}

const opts = parseArgs(process.argv);
const t0 = process.hrtime.bigint();
let seq = 0;

// ---- normalisation of a decoded request to plain JSON ----

const hex = (b) => (b ? Buffer.from(b).toString('hex') : '');
const str = (s) => (s == null ? '' : s);
const u64 = (v) => (v == null ? '0' : v.toString());
const num = (v) => (v == null ? 0 : Number(v));

function dbl(x) {
  if (Number.isNaN(x)) return 'NaN';
  if (x === Infinity) return 'Infinity';
  if (x === -Infinity) return '-Infinity';
  if (Object.is(x, -0)) return '-0';
  return x;
}

function anyValue(v) {
  if (!v) return {};
  switch (v.value) {
    case 'stringValue': return { stringValue: v.stringValue };
    case 'boolValue': return { boolValue: v.boolValue };
    case 'intValue': return { intValue: v.intValue.toString() };
    case 'doubleValue': return { doubleValue: dbl(v.doubleValue) };
    case 'arrayValue': return { arrayValue: (v.arrayValue.values || []).map(anyValue) };
    case 'kvlistValue': return { kvlistValue: attrs(v.kvlistValue.values) };
    case 'bytesValue': return { bytesValue: hex(v.bytesValue) };
    default: return {};
  }
}

function attrs(list) {
  return (list || []).map((kv) => ({ key: str(kv.key), value: anyValue(kv.value) }));
}

function span(s) {
  return {
    traceId: hex(s.traceId),
    spanId: hex(s.spanId),
    traceState: str(s.traceState),
    parentSpanId: hex(s.parentSpanId),
    flags: null, // from the raw walk
    name: str(s.name),
    kind: num(s.kind),
    startTimeUnixNano: u64(s.startTimeUnixNano),
    endTimeUnixNano: u64(s.endTimeUnixNano),
    attributes: attrs(s.attributes),
    droppedAttributesCount: num(s.droppedAttributesCount),
    events: (s.events || []).map((e) => ({
      timeUnixNano: u64(e.timeUnixNano),
      name: str(e.name),
      attributes: attrs(e.attributes),
      droppedAttributesCount: num(e.droppedAttributesCount),
    })),
    droppedEventsCount: num(s.droppedEventsCount),
    links: (s.links || []).map((l) => ({
      traceId: hex(l.traceId),
      spanId: hex(l.spanId),
      traceState: str(l.traceState),
      attributes: attrs(l.attributes),
      droppedAttributesCount: num(l.droppedAttributesCount),
      flags: null,
    })),
    droppedLinksCount: num(s.droppedLinksCount),
    status: { code: num(s.status && s.status.code), message: str(s.status && s.status.message) },
  };
}

function normalise(req) {
  return {
    resourceSpans: (req.resourceSpans || []).map((rs) => ({
      resource: rs.resource
        ? { attributes: attrs(rs.resource.attributes),
            droppedAttributesCount: num(rs.resource.droppedAttributesCount) }
        : null,
      schemaUrl: str(rs.schemaUrl),
      scopeSpans: (rs.scopeSpans || []).map((ss) => ({
        scope: ss.scope ? { name: str(ss.scope.name), version: str(ss.scope.version) } : null,
        schemaUrl: str(ss.schemaUrl),
        spans: (ss.spans || []).map(span),
      })),
    })),
  };
}

// ---- raw walk: the fields the generated code does not know ----

function fields(buf) {
  const r = Reader.create(buf);
  const out = [];
  while (r.pos < r.len) {
    const tag = r.uint32();
    const f = tag >>> 3;
    const wt = tag & 7;
    if (wt === 2) out.push({ f, bytes: r.bytes() });
    else if (wt === 5) out.push({ f, u32: r.fixed32() });
    else { r.skipType(wt); out.push({ f }); }
  }
  return out;
}

function addFlags(buf, norm) {
  const rss = fields(buf).filter((x) => x.f === 1);
  rss.forEach((rs, i) => {
    const sss = fields(rs.bytes).filter((x) => x.f === 2);
    sss.forEach((ss, j) => {
      const sps = fields(ss.bytes).filter((x) => x.f === 2);
      sps.forEach((sp, k) => {
        const fl = fields(sp.bytes);
        const s = norm.resourceSpans[i].scopeSpans[j].spans[k];
        const f16 = fl.filter((x) => x.f === 16);
        s.flags = f16.length ? f16[f16.length - 1].u32 : 0;
        fl.filter((x) => x.f === 13).forEach((l, m) => {
          const f6 = fields(l.bytes).filter((x) => x.f === 6);
          s.links[m].flags = f6.length ? f6[f6.length - 1].u32 : 0;
        });
      });
    });
  });
}

// ---- server ----

function respond(res, a) {
  const headers = { 'Content-Type': 'application/x-protobuf' };
  let body;
  if (a.code >= 200 && a.code < 300) {
    const m = opts.partial
      ? { partialSuccess: { rejectedSpans: opts.partial.rejected, errorMessage: opts.partial.message } }
      : {};
    body = Buffer.from(Resp.encode(Resp.create(m)).finish());
  } else {
    // google.rpc.Status { string message = 2; }
    body = Buffer.from(Writer.create().uint32(18).string(`test receiver answered ${a.code}`).finish());
    if (a.retryAfter !== undefined) headers['Retry-After'] = a.retryAfter;
  }
  headers['Content-Length'] = body.length;
  res.writeHead(a.code, headers);
  res.end(body);
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('error', () => {});
  res.on('error', () => {});
  req.on('end', () => {
    const n = seq++;
    const a = n < opts.plan.length ? opts.plan[n] : opts.def;
    const raw = Buffer.concat(chunks);
    const rec = {
      seq: n,
      tMs: Number(process.hrtime.bigint() - t0) / 1e6,
      method: req.method,
      path: req.url,
      headers: req.headers,
      status: a.code,
      rawBytes: raw.length,
    };
    try {
      const body = req.headers['content-encoding'] === 'gzip' ? zlib.gunzipSync(raw) : raw;
      rec.bodyBytes = body.length;
      const norm = normalise(Req.decode(body));
      addFlags(body, norm);
      let spans = 0;
      for (const rs of norm.resourceSpans) for (const ss of rs.scopeSpans) spans += ss.spans.length;
      rec.spans = spans;
      if (!opts.brief) rec.request = norm;
    } catch (e) {
      rec.error = String(e && e.message ? e.message : e);
    }
    fs.appendFileSync(opts.out, JSON.stringify(rec) + '\n');
    const go = () => { if (!res.destroyed) respond(res, a); };
    if (opts.delayMs > 0) setTimeout(go, opts.delayMs);
    else go();
  });
});
server.keepAliveTimeout = 30000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`PORT ${server.address().port}\n`);
});
const stop = () => { server.close(); process.exit(0); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
