// Decodes an `otelprof record` pprof file with the pprof-format package (Datadog's pure
// JavaScript pprof codec) and prints a JSON summary the test driver checks.
//   node pprof_check.js PROFILE.pb.gz
'use strict';
const fs = require('fs');
const zlib = require('zlib');
const { Profile } = require('pprof-format');

const raw = zlib.gunzipSync(fs.readFileSync(process.argv[2]));
const p = Profile.decode(raw);
const str = (i) => p.stringTable.strings[Number(i)];
const fnName = new Map(p.function.map((f) => [Number(f.id), str(f.name)]));
const locFn = new Map(p.location.map((l) => [Number(l.id), l.line.map((ln) => fnName.get(Number(ln.functionId)))]));

const labelKeys = {};
let samples = 0;
let cpuNs = 0;
let leafFib = 0;
let leafFibWithTrace = 0;
let danglingLocations = 0;
for (const s of p.sample) {
  const n = Number(s.value[0]);
  samples += n;
  cpuNs += Number(s.value[1]);
  const labels = {};
  for (const l of s.label) {
    const k = str(l.key);
    labels[k] = Number(l.str) ? str(l.str) : Number(l.num);
    labelKeys[k] = (labelKeys[k] || 0) + n;
  }
  for (const id of s.locationId) if (!locFn.has(Number(id))) danglingLocations++;
  const leaf = s.locationId.length ? (locFn.get(Number(s.locationId[0])) || [])[0] : undefined;
  if (leaf === 'fib') {
    leafFib += n;
    if (labels.trace_id) leafFibWithTrace += n;
  }
}
console.log(JSON.stringify({
  sampleTypes: p.sampleType.map((t) => [str(t.type), str(t.unit)]),
  periodType: p.periodType ? [str(p.periodType.type), str(p.periodType.unit)] : null,
  period: Number(p.period),
  samples, cpuNs, leafFib, leafFibWithTrace, danglingLocations, labelKeys,
  functions: p.function.length, locations: p.location.length, mappings: p.mapping.length,
}));
