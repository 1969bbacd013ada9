// A Node.js gRPC client (@grpc/grpc-js + @grpc/proto-loader) that propagates an
// OpenTelemetry span context with the OTel JS W3CTraceContextPropagator: it makes a
// sampled span context, injects it into the call's metadata, calls
// grpc.examples.echo.Echo/UnaryEcho (and BidirectionalStreamingEcho) on the target and
// prints one JSON line: the trace id and span id sent and the replies.
//   client.js HOST:PORT ECHO_PROTO
'use strict';
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const api = require('@opentelemetry/api');
const { W3CTraceContextPropagator } = require('@opentelemetry/core');
const crypto = require('crypto');

const [target, protoPath] = process.argv.slice(2);
if (!target || !protoPath) {
  console.error('usage: client.js HOST:PORT ECHO_PROTO');
  process.exit(2);
}
const def = protoLoader.loadSync(protoPath, { keepCase: true });
const Echo = grpc.loadPackageDefinition(def).grpc.examples.echo.Echo;
const client = new Echo(target, grpc.credentials.createInsecure());

const sc = {
  traceId: crypto.randomBytes(16).toString('hex'),
  spanId: crypto.randomBytes(8).toString('hex'),
  traceFlags: api.TraceFlags.SAMPLED,
};
const carrier = {};
new W3CTraceContextPropagator().inject(api.trace.setSpanContext(api.ROOT_CONTEXT, sc), carrier,
                                       api.defaultTextMapSetter);
const md = () => {
  const m = new grpc.Metadata();
  for (const [k, v] of Object.entries(carrier)) m.set(k, v);
  return m;
};
const deadline = () => Date.now() + 10000;

client.UnaryEcho({ message: '5' }, md(), { deadline: deadline() }, (err, resp) => {
  if (err) { console.error('UnaryEcho failed: ' + err.message); process.exit(1); }
  const replies = [];
  const call = client.BidirectionalStreamingEcho(md(), { deadline: deadline() });
  call.on('data', (r) => { replies.push(r.message); });
  call.on('error', (e) => { console.error('BidirectionalStreamingEcho failed: ' + e.message); process.exit(1); });
  call.on('end', () => {
    console.log(JSON.stringify({ traceId: sc.traceId, spanId: sc.spanId,
                                 traceparent: carrier.traceparent, unary: resp.message, bidi: replies }));
    client.close();
  });
  call.write({ message: '1' });
  call.write({ message: '2' });
  call.end();
});
