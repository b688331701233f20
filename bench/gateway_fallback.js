// gateway_fallback.js — time to the first answer byte of a streamed request
// through a gateway-enabled cairn serve whose upstream never answers:
// local-only (the local time to first token) against cloud-first (upstream
// timeout, then local), alternating. Usage: node gateway_fallback.js URL TIMEOUT_MS ROUNDS
'use strict';
const http = require('http');
const [url, timeoutMs, roundsStr] = process.argv.slice(2);
const rounds = Number(roundsStr || 7);
const agent = new http.Agent({keepAlive: true, maxSockets: 1});
function ttfb(policy) {
  const body = JSON.stringify({model: process.env.LOCAL_MODEL, stream: true, max_tokens: 4,
                               messages: [{role: 'user', content: 'Once upon a time'}]});
  const u = new URL(url + '/v1/chat/completions');
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    let first = null, route = null;
    const req = http.request({hostname: u.hostname, port: u.port, path: u.pathname, method: 'POST', agent,
                              headers: {'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body),
                                        'X-Cairn-Route-Policy': policy}}, (res) => {
      route = res.headers['x-cairn-route'];
      res.on('data', (d) => {
        // the first event with content: the answer has started
        if (first === null && /"content":"[^"]/.test(d.toString())) first = Number(process.hrtime.bigint() - t0) / 1e6;
      });
      res.on('end', () => resolve({ms: first, route, rule: res.headers['x-cairn-rule']}));
    });
    req.on('error', reject);
    req.end(body);
  });
}
const med = (a) => a.slice().sort((x, y) => x - y)[Math.floor(a.length / 2)];
(async () => {
  const loc = [], fb = [], ex = [];
  await ttfb('local-only');     // warm up
  for (let i = 0; i < rounds; i++) {
    const a = await ttfb('local-only'), b = await ttfb('cloud-first');
    if (a.route !== 'local' || b.route !== 'local' || !/timeout -> local/.test(b.rule)) throw new Error('no fallback: ' + JSON.stringify(b));
    loc.push(a.ms); fb.push(b.ms); ex.push(b.ms - a.ms - Number(timeoutMs));
  }
  console.log(`fallback through cairn serve, upstream timeout ${timeoutMs} ms: local first token median ${med(loc).toFixed(1)} ms, ` +
              `cloud-first first token median ${med(fb).toFixed(1)} ms (max ${Math.max(...fb).toFixed(1)}); over timeout + local TTFT: ` +
              `median ${med(ex).toFixed(2)} ms, max ${Math.max(...ex).toFixed(2)} ms`);
})().catch((e) => { console.error(e.message); process.exit(1); });
