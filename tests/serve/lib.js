// lib.js — helpers shared by the server tests: raw HTTP requests, a check
// counter, and the OpenAI client resolved from CAIRN_TEST_SHARED.
'use strict';
const http = require('http');
const path = require('path');

let failures = 0, checks = 0;
function check(cond, what, extra) {
  checks++;
  if (!cond) {
    failures++;
    console.error('FAIL: ' + what + (extra !== undefined ? ' — ' + JSON.stringify(extra).slice(0, 600) : ''));
  }
}
function done(name) {
  console.error(`${name}: ${checks} checks, ${failures} failures`);
  process.exit(failures ? 1 : 0);
}

function openai() {
  const shared = process.env.CAIRN_TEST_SHARED;
  return require(path.join(shared, 'clients', 'openai-node', 'node_modules', 'openai'));
}

// One request with the body as given (string or Buffer); resolves to
// {status, headers, body (string)}.
function request(method, urlPath, body, headers = {}) {
  const u = new URL(process.env.CAIRN_URL + urlPath);
  return new Promise((resolve, reject) => {
    const req = http.request({hostname: u.hostname, port: u.port, path: u.pathname + u.search, method,
                              headers: Object.assign({'Connection': 'close'}, headers)}, (res) => {
      const parts = [];
      res.on('data', (d) => parts.push(d));
      res.on('end', () => resolve({status: res.statusCode, headers: res.headers, body: Buffer.concat(parts).toString()}));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (body !== undefined && body !== null) req.write(body);
    req.end();
  });
}

function auth() {
  return process.env.CAIRN_KEY ? {'Authorization': 'Bearer ' + process.env.CAIRN_KEY} : {};
}

async function json(method, urlPath, obj, extra = {}) {
  const r = await request(method, urlPath, obj === undefined ? undefined : JSON.stringify(obj),
                          Object.assign({'Content-Type': 'application/json'}, auth(), extra));
  try { r.json = JSON.parse(r.body); } catch (e) { r.json = null; }
  return r;
}

async function metric(name) {
  const r = await request('GET', '/metrics', undefined, auth());
  const m = r.body.match(new RegExp('^' + name + ' (\\d+)', 'm'));
  return m ? Number(m[1]) : NaN;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Poll until cond() is true (no deadline of its own: ctest's timeout bounds the test).
async function until(cond) {
  for (;;) {
    if (await cond()) return;
    await sleep(20);
  }
}

module.exports = {check, done, openai, request, json, auth, metric, sleep, until};
