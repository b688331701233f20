// hostile.js — raw sockets against `cairn serve`: malformed requests, huge
// headers, a slowloris body, invalid UTF-8, path traversal and symlink
// escapes in uploads. Each must get a clean error (or a closed connection
// for the slow body) while the server keeps answering /health.
'use strict';
const net = require('net');
const {check, done, request, json, auth, sleep} = require('./lib.js');
const url = new URL(process.env.CAIRN_URL);

// Send raw bytes; resolve with everything the server sent before closing.
function raw(bytes, {slowMs = 0, chunk = 1} = {}) {
  return new Promise((resolve) => {
    const s = net.connect(Number(url.port), url.hostname);
    const got = [];
    let closed = false;
    s.on('data', (d) => got.push(d));
    s.on('error', () => {});
    s.on('close', () => { closed = true; resolve(Buffer.concat(got).toString('latin1')); });
    s.on('connect', async () => {
      const b = Buffer.from(bytes, 'latin1');
      if (!slowMs) { s.write(b); return; }
      for (let i = 0; i < b.length && !closed; i += chunk) {
        s.write(b.subarray(i, i + chunk));
        await sleep(slowMs);
      }
    });
    setTimeout(() => s.end(), slowMs ? 600000 : 5000);
  });
}

const status = (resp) => { const m = /^HTTP\/1\.[01] (\d{3})/.exec(resp); return m ? Number(m[1]) : 0; };
const A = process.env.CAIRN_KEY ? `Authorization: Bearer ${process.env.CAIRN_KEY}\r\n` : '';

async function alive(what) {
  const r = await request('GET', '/health');
  check(r.status === 200, 'server still serves after ' + what, r.status);
}

async function main() {
  let r = await raw('GARBAGE\r\n\r\n');
  check(status(r) >= 400 && status(r) < 500 || r === '', 'malformed request line: 4xx or closed', r.slice(0, 80));
  await alive('a malformed request line');
  r = await raw('GET /health HTTP/9.9\r\nHost: x\r\nConnection: close\r\n\r\n');
  check(status(r) === 505 || (status(r) >= 400 && status(r) < 500), 'bad HTTP version rejected', r.slice(0, 80));
  await alive('a bad version');
  r = await raw('GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\nBroken header line\r\n\r\n');
  check(status(r) === 400 || status(r) === 200, 'a broken header line: 400 (or ignored)', r.slice(0, 80));
  r = await raw(`POST /v1/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n${A}Content-Length: abc\r\n\r\n{}`);
  check(status(r) >= 400 && status(r) < 500, 'non-numeric Content-Length: 4xx', r.slice(0, 80));
  await alive('a bad Content-Length');
  r = await raw(`POST /v1/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n${A}Content-Length: 99999999999\r\n\r\n{}`);
  check(status(r) === 413, 'huge Content-Length: 413 before the body', r.slice(0, 80));
  r = await raw('GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: ' + 'a'.repeat(200000) + '\r\n\r\n');
  check(status(r) === 431 || status(r) === 413 || status(r) === 400, 'huge header: 431', r.slice(0, 80));
  let many = 'GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n';
  for (let i = 0; i < 5000; i++) many += `X-H${i}: v\r\n`;
  r = await raw(many + '\r\n');
  check(status(r) === 431 || status(r) === 413 || status(r) === 400, 'thousands of headers: 431', r.slice(0, 80));
  await alive('huge headers');
  r = await raw('GET /../../../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n' + A + '\r\n');
  check(status(r) === 404 && !/root:/.test(r), 'path traversal in the URL: 404', r.slice(0, 120));

  // chunked body over the cap: 413 once it is all in (or the connection closed)
  let chunked = `POST /v1/search HTTP/1.1\r\nHost: x\r\nConnection: close\r\n${A}Transfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n`;
  const piece = 'x'.repeat(65536);
  for (let i = 0; i < 160; i++) chunked += piece.length.toString(16) + '\r\n' + piece + '\r\n';
  chunked += '0\r\n\r\n';
  r = await raw(chunked);
  check(status(r) === 413 || r === '', 'chunked body over the cap: 413', r.slice(0, 80));
  await alive('an oversized chunked body');

  // slowloris: a body that trickles in is cut off (the server has --timeout 2);
  // meanwhile other clients are served
  const body = JSON.stringify({query: 'pump', k: 1});
  const slow = raw(`POST /v1/search HTTP/1.1\r\nHost: x\r\nConnection: close\r\n${A}Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n` + body,
                   {slowMs: 400, chunk: 1});
  await sleep(300);
  await alive('a slow client started');
  r = await slow;
  check(!/"results"/.test(r), 'a body trickling in is not served (connection closed)', r.slice(0, 120));
  await alive('a slowloris body');
  // headers that trickle in: also cut off by the idle/overall limits, others served meanwhile
  const slowHead = raw('GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Slow: ' + 'a'.repeat(30), {slowMs: 50, chunk: 1});
  await alive('slow headers started');
  slowHead.then(() => {});

  // invalid UTF-8 in JSON
  r = await request('POST', '/v1/search', Buffer.from([0x7b, 0x22, 0x71, 0x75, 0x65, 0x72, 0x79, 0x22, 0x3a, 0x22, 0xc3, 0x28, 0x22, 0x7d]),
                    Object.assign({'Content-Type': 'application/json'}, auth()));
  check(r.status === 400 && JSON.parse(r.body).error.code === 'invalid_encoding', 'invalid UTF-8: 400', r.body);
  r = await request('POST', '/v1/search', Buffer.from('{"query":"\xed\xa0\x80"}', 'latin1'), Object.assign({'Content-Type': 'application/json'}, auth()));
  check(r.status === 400, 'an encoded surrogate: 400', r.body);
  r = await json('POST', '/v1/search', [1, 2]);
  check(r.status === 400, 'a JSON array body: 400', r.body);
  r = await json('POST', '/v1/search', {query: 7});
  check(r.status === 400 && r.json.error.param === 'query', 'a number for query: 400', r.body);
  r = await request('POST', '/v1/search', '', Object.assign({'Content-Type': 'application/json'}, auth()));
  check(r.status === 400, 'an empty body: 400', r.body);
  r = await request('POST', '/v1/search', '{"query": "a"' + ' '.repeat(10) + ', "k": 1e400}', Object.assign({'Content-Type': 'application/json'}, auth()));
  check(r.status === 400, 'k = 1e400: 400', r.body);
  r = await request('POST', '/v1/search', '['.repeat(100000), Object.assign({'Content-Type': 'application/json'}, auth()));
  check(r.status === 400, 'deeply nested JSON: 400', r.body);

  // uploads: names that would leave the uploads directory
  const before = (await json('GET', '/v1/documents?limit=1000')).json.total;
  for (const name of ['../escape.md', '../../etc/cron.d/x', '..', '.', '.hidden', 'a/b.md', 'a\\b.md', '/abs.md',
                      'nul\u0000byte.md', 'ctl\u0001.md', '', 'x'.repeat(300)]) {
    r = await json('POST', '/v1/documents', {name, text: 'owned'});
    check(r.status === 400 && (r.json.error.code === 'invalid_name' || name.includes('\u0000')), 'upload name rejected: ' + JSON.stringify(name), r.body);
  }
  r = await request('POST', '/v1/documents?name=..%2F..%2Fescape.md', 'owned', Object.assign({'Content-Type': 'text/plain'}, auth()));
  check(r.status === 400, 'raw upload with ../ in ?name=', r.body);
  // a symlink planted in the uploads directory (the shell made uploads/evil.md -> outside file)
  r = await json('POST', '/v1/documents', {name: 'evil.md', text: 'replaced, not written through'});
  check(r.status === 201 || r.status === 200, 'upload over a planted symlink replaces the link', r.body);
  r = await json('POST', '/v1/documents', {name: 'bad64.md', content_base64: '!!!not base64!!!'});
  check(r.status === 400, 'bad base64: 400', r.body);
  const after = (await json('GET', '/v1/documents?limit=1000')).json.total;
  check(after === before + 1, 'only the one good upload was stored', [before, after]);
  // no endpoint takes a server path
  r = await json('POST', '/v1/documents', {name: 'x.md', path: '/etc/passwd'});
  check(r.status === 400, 'a server path is not an upload', r.body);
  await alive('the upload checks');
  done('hostile');
}

main().catch((e) => { console.error('FAIL: exception', e); process.exit(1); });
