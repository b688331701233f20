// fake_upstream.js — a loopback OpenAI-compatible "cloud" for the gateway
// tests (test-time helper only). Usage: node fake_upstream.js RECORD_FILE
// Prints "PORT <n>" when listening on 127.0.0.1.
//
// Every byte of every request (request line, headers, body) is appended to
// RECORD_FILE, so a test can prove what did and did not leave cairn.
// POST /_mode {"mode": M, ...} switches behaviour (not recorded):
//   ok       answer; completion = min(max_tokens, words) word tokens
//   fail     HTTP 500            fail_n: only the next n requests fail
//   429      HTTP 429
//   timeout  accept, never answer (until the connection closes)
//   slow     wait delay_ms before answering
//   drop     stream drop_after events, then destroy the socket
// GET /_stats -> {"requests": n}. Usage: prompt_tokens = bytes of the text
// of the messages + 4 per message (a byte tokenizer: the gateway's bound).
'use strict';
const http = require('http');
const fs = require('fs');
const record = process.argv[2];
let mode = { mode: 'ok', words: 6, delay_ms: 0, drop_after: 2, fail_n: -1 };
let requests = 0;

function textBytes(v) {
  if (typeof v === 'string') return Buffer.byteLength(v);
  if (Array.isArray(v)) return v.reduce((a, x) => a + textBytes(x), 0);
  if (v && typeof v === 'object')
    return Object.keys(v).reduce((a, k) => a + (k === 'role' || k === 'type' ? 0 : textBytes(v[k])), 0);
  return 0;
}

const server = http.createServer((req, res) => {
  const parts = [];
  req.on('data', (c) => parts.push(c));
  req.on('end', () => {
    const body = Buffer.concat(parts);
    if (req.url === '/_mode') {
      mode = Object.assign({ mode: 'ok', words: 6, delay_ms: 0, drop_after: 2, fail_n: -1 }, JSON.parse(body.toString()));
      res.end('{}');
      return;
    }
    if (req.url === '/_stats') {
      res.end(JSON.stringify({ requests }));
      return;
    }
    requests++;
    fs.appendFileSync(record, `${req.method} ${req.url} HTTP/${req.httpVersion}\n` +
      req.rawHeaders.join('\n') + '\n\n' + body.toString('latin1') + '\n');
    let j = {};
    try { j = JSON.parse(body.toString()); } catch (e) { res.statusCode = 400; res.end('{"error":{"message":"bad json"}}'); return; }
    let m = mode.mode;
    if (mode.fail_n === 0) m = 'ok';
    if (mode.fail_n > 0) mode.fail_n--;
    const answer = () => {
      if (m === 'fail') { res.statusCode = 500; res.setHeader('Content-Type', 'application/json'); res.end('{"error":{"message":"fake failure"}}'); return; }
      if (m === '429') { res.statusCode = 429; res.setHeader('Content-Type', 'application/json'); res.end('{"error":{"message":"slow down"}}'); return; }
      if (m === 'timeout') return;
      if (m === 'drop' && !j.stream) { res.socket.destroy(); return; }
      const msgs = j.messages || [];
      const pt = j.messages ? textBytes(msgs) + 4 * msgs.length : textBytes(j.prompt);
      const n = Math.min(j.max_tokens || 16, mode.words);
      const words = []; for (let i = 0; i < n; i++) words.push('up' + i);
      const usage = { prompt_tokens: pt, completion_tokens: n, total_tokens: pt + n };
      const chat = req.url.endsWith('/chat/completions');
      if (j.stream) {
        res.setHeader('Content-Type', 'text/event-stream');
        let k = 0;
        const send = () => {
          if (m === 'drop' && k === mode.drop_after) { res.socket.destroy(); return; }
          if (k < n) {
            const d = chat ? { id: 'x', object: 'chat.completion.chunk', created: 1, model: j.model, choices: [{ index: 0, delta: { content: words[k] + ' ' }, finish_reason: null }] }
                           : { id: 'x', object: 'text_completion', created: 1, model: j.model, choices: [{ index: 0, text: words[k] + ' ', finish_reason: null }] };
            res.write('data: ' + JSON.stringify(d) + '\n\n');
            k++;
            setImmediate(send);
            return;
          }
          res.write('data: ' + JSON.stringify({ id: 'x', object: 'chat.completion.chunk', created: 1, model: j.model, choices: [], usage }) + '\n\n');
          res.end('data: [DONE]\n\n');
        };
        send();
        return;
      }
      res.setHeader('Content-Type', 'application/json');
      const text = words.join(' ');
      res.end(JSON.stringify(chat
        ? { id: 'x', object: 'chat.completion', created: 1, model: j.model, choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' }], usage }
        : { id: 'x', object: 'text_completion', created: 1, model: j.model, choices: [{ index: 0, text, finish_reason: 'stop' }], usage }));
    };
    if (m === 'slow') setTimeout(answer, mode.delay_ms); else answer();
  });
});
server.keepAliveTimeout = 60000;
server.listen(0, '127.0.0.1', () => { process.stdout.write('PORT ' + server.address().port + '\n'); });
// die with the test that started us (a killed test must not leave us behind)
const parent = process.ppid;
setInterval(() => { try { process.kill(parent, 0); } catch (e) { process.exit(0); } }, 300).unref();
