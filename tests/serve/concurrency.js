// concurrency.js — many clients at once against `cairn serve --parallel 2
// --queue 1`: streaming clients decoding together get the text each gets
// alone (greedy; batching is bit-exact, tests/test_batch.c), a full queue
// answers 429 with Retry-After, and clients that hang up free their slots.
'use strict';
const {check, done, openai, json, metric, until} = require('./lib.js');
const OpenAI = openai();
const model = process.env.CAIRN_MODEL;
const client = new OpenAI({apiKey: process.env.CAIRN_KEY, baseURL: process.env.CAIRN_URL + '/v1', maxRetries: 0});

async function streamText(prompt, max_tokens, signal) {
  let t = '';
  const s = await client.completions.create({model, prompt, max_tokens, temperature: 0, stream: true}, {signal});
  for await (const ch of s) t += ch.choices.length ? ch.choices[0].text : '';
  return t;
}

async function main() {
  const prompts = ['Once upon a time', 'The little dog', 'One day, Lily went', 'Tom and Sue'];
  const alone = [];
  for (const p of prompts) alone.push(await streamText(p, 48));
  check(new Set(alone).size > 1, 'different prompts give different texts', alone);
  // 3 at once: 2 decode together, 1 waits in the queue and joins when a slot frees
  const together = await Promise.all(prompts.slice(0, 3).map((p) => streamText(p, 48)));
  for (let i = 0; i < 3; i++)
    check(together[i] === alone[i], `client ${i}: same text together as alone`, [together[i], alone[i]]);

  // fill both slots and the queue with long streams, then one more is refused
  const ctl = [new AbortController(), new AbortController(), new AbortController()];
  const long = [];
  for (let i = 0; i < 2; i++) long.push(streamText(prompts[i], Number(process.env.CAIRN_LONG), ctl[i].signal).catch((e) => e));
  await until(async () => (await metric('cairn_slots_busy')) === 2);
  long.push(streamText(prompts[2], Number(process.env.CAIRN_LONG), ctl[2].signal).catch((e) => e));
  await until(async () => (await metric('cairn_queue_depth')) === 1);
  const r = await json('POST', '/v1/completions', {model, prompt: 'x', max_tokens: 4});
  check(r.status === 429 && r.headers['retry-after'] === '1' && r.json.error.type === 'rate_limit_error', 'full queue: 429 with Retry-After', [r.status, r.headers['retry-after'], r.body]);
  try {
    await client.completions.create({model, prompt: 'x', max_tokens: 4});
    check(false, 'the client sees the 429');
  } catch (e) {
    check(e.status === 429, 'the OpenAI client gets RateLimitError', e.status);
  }
  // hang up: the slots and the queue empty at once (not when generation would end)
  for (const c of ctl) c.abort();
  await Promise.all(long);
  await until(async () => (await metric('cairn_slots_busy')) === 0 && (await metric('cairn_queue_depth')) === 0);
  const m = await json('GET', '/health');
  check(m.json.slots_busy === 0 && m.json.queue_depth === 0, 'disconnects freed the slots', m.body);
  const after = await streamText(prompts[0], 48);
  check(after === alone[0], 'a freed slot serves the next client, same text', [after, alone[0]]);
  done('concurrency');
}

main().catch((e) => { console.error('FAIL: exception', e); process.exit(1); });
