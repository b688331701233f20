// gateway_load.js — requests alternately straight to the upstream and
// through a gateway-enabled cairn serve (bench_gateway_serve.sh); prints
// p50/p99 of each and the paired median of the differences.
// Usage: node gateway_load.js DIRECT_URL GATEWAY_URL N
'use strict';
const http = require('http');
const [direct, gateway, nStr] = process.argv.slice(2);
const n = Number(nStr || 2000);
const agent = new http.Agent({keepAlive: true, maxSockets: 1});
const body = JSON.stringify({model: 'big', max_tokens: 6, messages: [
  {role: 'system', content: 'Answer from the sources.'},
  {role: 'user', content: 'What does the pump manual say about cleaning the impeller every spring?'}]});
function post(base) {
  const u = new URL(base + '/v1/chat/completions');
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const req = http.request({hostname: u.hostname, port: u.port, path: u.pathname, method: 'POST', agent,
                              headers: {'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body),
                                        'X-Cairn-Route-Policy': 'cloud-only'}}, (res) => {
      const parts = [];
      res.on('data', (d) => parts.push(d));
      res.on('end', () => {
        if (res.statusCode !== 200) return reject(new Error(base + ': HTTP ' + res.statusCode + ' ' + Buffer.concat(parts)));
        resolve(Number(process.hrtime.bigint() - t0) / 1e6);
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}
const pct = (a, p) => a.slice().sort((x, y) => x - y)[Math.min(a.length - 1, Math.floor(a.length * p))];
(async () => {
  const d = [], g = [], diff = [];
  for (let i = -50; i < n; i++) {
    const a = await post(direct), b = await post(gateway);
    if (i >= 0) { d.push(a); g.push(b); diff.push(b - a); }
  }
  console.log(`through cairn serve, ${n} each: direct p50 ${pct(d, .5).toFixed(3)} ms p99 ${pct(d, .99).toFixed(3)} ms | ` +
              `gateway p50 ${pct(g, .5).toFixed(3)} ms p99 ${pct(g, .99).toFixed(3)} ms | added p50 ${(pct(g, .5) - pct(d, .5)).toFixed(3)} ms ` +
              `(paired median ${pct(diff, .5).toFixed(3)} ms)`);
})().catch((e) => { console.error(e.message); process.exit(1); });
