// A Node.js client traced with the OpenTelemetry JS SDK: starts a CLIENT span, injects it
// with W3CTraceContextPropagator, calls the URL given on the command line and prints one
// JSON line: the span's trace id and span id, the HTTP status and the response body.
'use strict';
const http = require('http');
const api = require('@opentelemetry/api');
const { W3CTraceContextPropagator } = require('@opentelemetry/core');
const { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } =
  require('@opentelemetry/sdk-trace-base');

const url = process.argv[2];
if (!url) {
  console.error('usage: client.js URL');
  process.exit(2);
}
const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider();
provider.addSpanProcessor(new SimpleSpanProcessor(exporter));
const tracer = provider.getTracer('otelprof-http-test');
const propagator = new W3CTraceContextPropagator();

const span = tracer.startSpan('GET', { kind: api.SpanKind.CLIENT });
const headers = {};
propagator.inject(api.trace.setSpan(api.ROOT_CONTEXT, span), headers, api.defaultTextMapSetter);
const sc = span.spanContext();
const req = http.get(url, { headers, timeout: 10000 }, (res) => {
  let body = '';
  res.setEncoding('utf8');
  res.on('data', (d) => { body += d; });
  res.on('end', () => {
    span.end();
    console.log(JSON.stringify({ traceId: sc.traceId, spanId: sc.spanId,
                                 traceparent: headers.traceparent, status: res.statusCode, body }));
  });
});
req.on('error', (e) => { console.error('request failed: ' + e.message); process.exit(1); });
req.on('timeout', () => { req.destroy(new Error('timeout')); });
