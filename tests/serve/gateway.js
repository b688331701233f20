// gateway.js — the gateway of a real cairn serve (CAIRN_URL) in front of a
// second cairn serve playing the cloud (its test switch in FAULT_FILE, its
// byte record in RECORD), driven by the unmodified OpenAI Node client.
// Every policy against every upstream failure, stream and not; what a client
// gets from a stream that breaks halfway; local failures (prompt over the
// local context); the route header and body field; the randomized privacy
// run over cairn-rag (docs in MANIFEST); metrics.
'use strict';
const fs = require('fs');
const {check, done, openai, json, request, auth} = require('./lib.js');
const OpenAI = openai();
const client = new OpenAI({baseURL: process.env.CAIRN_URL + '/v1', apiKey: process.env.CAIRN_KEY || 'none', maxRetries: 0});
const MODEL = process.env.LOCAL_MODEL;

function fault(obj) { fs.writeFileSync(process.env.FAULT_FILE, JSON.stringify(obj)); }

// One request; resolves to {route, rule, upstream, text, error, status, cairn, broken}.
async function ask(policy, stream, extra = {}) {
  const body = Object.assign({model: MODEL, max_tokens: 6, messages: [{role: 'user', content: 'Once upon a time'}]}, extra);
  const opts = policy ? {headers: {'X-Cairn-Route-Policy': policy}} : {};
  const out = {text: '', cairn: null, broken: false};
  try {
    if (!stream) {
      const {data, response} = await client.chat.completions.create(body, opts).withResponse();
      out.route = response.headers.get('x-cairn-route');
      out.rule = response.headers.get('x-cairn-rule');
      out.upstream = response.headers.get('x-cairn-upstream');
      out.text = data.choices[0].message.content;
      out.cairn = data.cairn;
      out.status = response.status;
      out.sources = data.sources;
    } else {
      const {data, response} = await client.chat.completions.create(Object.assign({stream: true}, body), opts).withResponse();
      out.route = response.headers.get('x-cairn-route');
      out.rule = response.headers.get('x-cairn-rule');
      out.status = response.status;
      try {
        for await (const chunk of data) {
          if (chunk.cairn) out.cairn = chunk.cairn;
          for (const c of chunk.choices || []) if (c.delta && c.delta.content) out.text += c.delta.content;
        }
      } catch (e) {
        out.broken = true;           // the stream broke after the answer started
        out.error = e;
      }
    }
  } catch (e) {
    out.error = e;
    out.status = e.status;
    out.route = e.headers ? (e.headers['x-cairn-route'] || (e.headers.get && e.headers.get('x-cairn-route'))) : undefined;
  }
  return out;
}

const MODES = [
  {mode: 'ok'}, {mode: 'fail'}, {mode: '429'}, {mode: 'timeout'}, {mode: 'slow', delay_ms: 200}, {mode: 'drop', drop_after: 3},
];
const POLICIES = ['local-only', 'local-first', 'cloud-first', 'cloud-only'];

// The documented rules (docs/gateway.md), as the test's own table; the local model works here.
function expected(policy, mode, stream) {
  const upOk = mode === 'ok' || mode === 'slow';
  const broken = mode === 'drop' && stream;
  if (policy === 'local-only' || policy === 'local-first') return {route: 'local'};
  if (upOk) return {route: 'upstream'};
  if (broken) return {route: 'upstream', broken: true};
  if (policy === 'cloud-first') return {route: 'local', fallback: true};
  const status = {fail: 502, '429': 429, timeout: 504, drop: 502}[mode];
  return {route: 'error', status};
}

(async () => {
  for (const m of MODES) {
    fault(m);
    for (const p of POLICIES)
      for (const stream of [false, true]) {
        const r = await ask(p, stream);
        const want = expected(p, m.mode, stream);
        const what = `${p} upstream=${m.mode} stream=${stream}`;
        check(r.route === want.route, what + ': route', {got: r.route, want, rule: r.rule, err: r.error && r.error.message});
        if (want.route === 'error') {
          check(r.error && r.status === want.status, what + ': error status', {status: r.status});
          continue;
        }
        if (want.broken) {
          // the client gets the first events, then the error event: the SDK throws, no [DONE]
          check(r.broken && /broke the stream/.test(r.error.message), what + ': broken stream surfaces as an error',
                r.error && r.error.message);
          check(r.text.length > 0, what + ': the part before the break arrived', r.text);
          continue;
        }
        check(!r.error, what + ': no error', r.error && r.error.message);
        check(r.cairn && r.cairn.route === want.route, what + ': body field', r.cairn);
        check(r.cairn && typeof r.cairn.ms === 'number', what + ': time in the body', r.cairn);
        check(!!(r.cairn && r.cairn.fallback) === !!want.fallback, what + ': fallback flag', r.cairn);
        if (want.fallback) check(/->/.test(r.rule), what + ': the rule names the fall-over', r.rule);
        if (want.route === 'upstream') check(r.upstream === 'cloud' || stream, what + ': upstream header', r.upstream);
        check(r.text.length > 0, what + ': text', r.text);
      }
  }
  fault({mode: 'ok'});

  // the request's own field instead of the header
  let r = await ask(null, false, {cairn_route: 'cloud-only'});
  check(r.route === 'upstream', 'body field cairn_route', r.rule);
  r = await ask(null, false, {cairn_route: 'sometimes'});
  check(r.status === 400, 'a bad cairn_route is a 400', r.status);

  // local failure: a prompt longer than the local context
  // about 470 tokens: over the gateway's local context (--ctx 448), within the cloud's (512)
  const long = 'Once upon a time '.repeat(115);
  r = await ask('local-first', false, {messages: [{role: 'user', content: long}]});
  check(r.route === 'upstream' && r.cairn && r.cairn.fallback && /too_long/.test(r.cairn.rule), 'local-first: too long -> upstream',
        {route: r.route, cairn: r.cairn, err: r.error && r.error.message});
  r = await ask('local-only', false, {messages: [{role: 'user', content: long}]});
  check(r.status === 400, 'local-only: too long is a 400', r.status);

  // privacy, randomized: grounded questions under every policy
  const manifest = JSON.parse(fs.readFileSync(process.env.MANIFEST));
  let seed = 0x2545f491;
  const rnd = (n) => { seed ^= seed << 13; seed >>>= 0; seed ^= seed >>> 17; seed ^= seed << 5; seed >>>= 0; return seed % n; };
  let up = 0, refused = 0, local = 0;
  for (let q = 0; q < 60; q++) {
    const a = manifest[rnd(manifest.length)], b = manifest[rnd(manifest.length)];
    const policy = POLICIES[rnd(POLICIES.length)];
    const stream = rnd(2) === 1;
    const res = await ask(policy, stream, {model: 'cairn-rag', k: 3, messages: [{role: 'user', content: `what about ${a.word} and ${b.word}?`}]});
    if (process.env.DEBUG && q < 3) console.error(JSON.stringify({policy, stream, route: res.route, rule: res.rule, status: res.status, err: res.error && res.error.message}));
    if (res.route === 'upstream') { up++; if (!stream) check(Array.isArray(res.sources) && res.sources.length > 0, 'upstream grounded answer has sources', res.sources); }
    else if (res.route === 'refused') { refused++; check(res.status === 403, 'private refusal is a 403', res.status); }
    else if (res.route === 'local') local++;
    if (res.route === 'local' && policy !== 'local-only' && policy !== 'local-first')
      check(/private/.test(res.rule || ''), 'a grounded request kept local says why', res.rule);
  }
  const rec = fs.readFileSync(process.env.RECORD, 'latin1');
  let publicSeen = 0;
  for (const d of manifest) {
    if (d.private) check(!rec.includes(d.mark), 'private document never reaches the upstream', d);
    else if (rec.includes(d.mark)) publicSeen++;
  }
  check(up > 0 && publicSeen > 0, 'public context did go upstream (the test can fail)', {up, publicSeen});
  check(refused > 0 && local > 0, 'refusals and local answers happened', {refused, local});
  check(!/@corp\.example/.test(rec), 'no e-mail address reached the upstream');
  check(/\[REDACTED:email\]/.test(rec), 'the redaction rule fired');

  // metrics
  const mt = await request('GET', '/metrics', undefined, auth());
  for (const name of ['cairn_gateway_requests_total{route="upstream"}', 'cairn_gateway_fallbacks_total',
                      'cairn_gateway_refusals_total{reason="private"}', 'cairn_gateway_redactions_total{rule="email"}',
                      'cairn_gateway_upstream_errors_total{upstream="cloud",kind="timeout"}',
                      'cairn_gateway_upstream_latency_seconds_count{upstream="cloud"}', 'cairn_gateway_streams_broken_total'])
    check(mt.body.includes(name), 'metric ' + name);
  done('gateway.js');
})().catch((e) => { console.error(e); process.exit(1); });
