// openai_client.js — the official OpenAI Node client, unmodified, against
// a running `cairn serve` (CAIRN_URL, CAIRN_KEY, CAIRN_MODEL; the expected
// greedy completion of "Once upon a time" from `cairn generate` in
// CAIRN_EXPECT). Also cairn's own endpoints through plain HTTP.
'use strict';
const {check, done, openai, request, json, auth} = require('./lib.js');
const OpenAI = openai();
const model = process.env.CAIRN_MODEL;
const client = new OpenAI({apiKey: process.env.CAIRN_KEY, baseURL: process.env.CAIRN_URL + '/v1', maxRetries: 0});

async function expectError(p, status, code, what) {
  try {
    await p;
    check(false, what + ': no error');
  } catch (e) {
    check(e instanceof OpenAI.APIError, what + ': an APIError', String(e));
    check(e.status === status, what + ': status ' + status, e.status);
    if (code) check(e.code === code, what + ': code ' + code, e.error);
  }
}

async function main() {
  // models
  const models = [];
  for await (const m of client.models.list()) models.push(m.id);
  check(models.includes(model), 'models lists the chat model', models);
  check(models.includes('cairn-rag'), 'models lists cairn-rag', models);

  // completions: the same text as cairn generate, greedy
  const c = await client.completions.create({model, prompt: 'Once upon a time', max_tokens: 30, temperature: 0});
  check(c.object === 'text_completion', 'completion object', c);
  check(c.choices[0].text === process.env.CAIRN_EXPECT, 'completion equals cairn generate', [c.choices[0].text, process.env.CAIRN_EXPECT]);
  check(c.choices[0].finish_reason === 'length', 'finish_reason length', c.choices[0]);
  check(c.usage.completion_tokens === 30 && c.usage.prompt_tokens > 0, 'completion usage', c.usage);

  // streamed completion: the same text
  let st = '';
  for await (const ch of await client.completions.create({model, prompt: 'Once upon a time', max_tokens: 30, temperature: 0, stream: true}))
    st += ch.choices.length ? ch.choices[0].text : '';
  check(st === c.choices[0].text, 'streamed completion equals plain', [st, c.choices[0].text]);

  // stop strings: cut before the stop, finish_reason stop
  const words = c.choices[0].text.split(' ').filter((w) => w.length > 3);
  const stopWord = words[2];
  const cs = await client.completions.create({model, prompt: 'Once upon a time', max_tokens: 30, temperature: 0, stop: [stopWord]});
  check(cs.choices[0].finish_reason === 'stop', 'stop: finish_reason', cs.choices[0]);
  check(c.choices[0].text.startsWith(cs.choices[0].text) && !cs.choices[0].text.includes(stopWord) &&
        c.choices[0].text.slice(cs.choices[0].text.length).startsWith(stopWord), 'stop: text cut before the stop string', [cs.choices[0].text, stopWord]);

  // chat, plain then streaming with usage
  const msgs = [{role: 'system', content: 'You tell stories.'}, {role: 'user', content: 'Tell me about a cat.'}];
  const a = await client.chat.completions.create({model, messages: msgs, max_tokens: 24, temperature: 0, seed: 7});
  check(a.object === 'chat.completion', 'chat object', a);
  check(a.choices[0].message.role === 'assistant' && typeof a.choices[0].message.content === 'string' &&
        a.choices[0].message.content.length > 0, 'chat message', a.choices[0]);
  check(a.usage.total_tokens === a.usage.prompt_tokens + a.usage.completion_tokens, 'chat usage sums', a.usage);
  const stream = await client.chat.completions.create({model, messages: msgs, max_tokens: 24, temperature: 0, stream: true,
                                                       stream_options: {include_usage: true}});
  let text = '', usage = null, finish = null, roles = 0, chunks = 0;
  for await (const ch of stream) {
    chunks++;
    if (ch.usage) usage = ch.usage;
    if (!ch.choices.length) continue;
    if (ch.choices[0].delta.role) roles++;
    text += ch.choices[0].delta.content || '';
    if (ch.choices[0].finish_reason) finish = ch.choices[0].finish_reason;
  }
  check(text === a.choices[0].message.content, 'streamed chat equals plain', [text, a.choices[0].message.content]);
  check(roles === 1 && chunks > 3, 'role once, several chunks', [roles, chunks]);
  check(finish === a.choices[0].finish_reason, 'stream finish_reason', finish);
  check(usage && usage.completion_tokens === a.usage.completion_tokens && usage.prompt_tokens === a.usage.prompt_tokens,
        'usage in the last streamed chunk', usage);
  // prompt cache: the same conversation again reuses its prefix
  check(usage.prompt_tokens_details.cached_tokens === usage.prompt_tokens - 1, 'cached tokens on a repeated prompt', usage);
  const longer = msgs.concat([{role: 'assistant', content: a.choices[0].message.content}, {role: 'user', content: 'And then?'}]);
  const a2 = await client.chat.completions.create({model, messages: longer, max_tokens: 8, temperature: 0});
  check(a2.usage.prompt_tokens_details.cached_tokens >= a.usage.prompt_tokens - 1, 'the next turn reuses the conversation', a2.usage);

  // grounded answers: cairn-rag answers from the store with sources
  const g = await client.chat.completions.create({model: 'cairn-rag', messages: [{role: 'user', content: 'How do I clean the pump impeller?'}],
                                                  max_tokens: 16, temperature: 0});
  check(Array.isArray(g.sources) && g.sources.length > 0 && g.sources[0].path.endsWith('pumps.md'), 'cairn-rag sources', g.sources);
  check(g.sources[0].marker === 1 && g.usage.prompt_tokens > a.usage.prompt_tokens, 'sources are numbered and in the prompt', g.usage);
  const gf = await client.chat.completions.create({model: 'cairn-rag', messages: [{role: 'user', content: 'pump impeller bread'}],
                                                   max_tokens: 4, temperature: 0, filter: 'path GLOB "*bread*"', k: 1});
  check(gf.sources.length === 1 && gf.sources[0].path.endsWith('bread.md'), 'cairn-rag filter and k', gf.sources);
  let gsrc = null;
  for await (const ch of await client.chat.completions.create({model: 'cairn-rag', stream: true, max_tokens: 4,
                                                               messages: [{role: 'user', content: 'sourdough starter'}]}))
    if (ch.sources) gsrc = ch.sources;
  check(gsrc && gsrc[0].path.endsWith('bread.md'), 'cairn-rag sources in the last streamed chunk', gsrc);

  // embeddings (when the server has an embedding model)
  if (process.env.CAIRN_EMBED_MODEL) {
    const e1 = await client.embeddings.create({model: process.env.CAIRN_EMBED_MODEL, input: 'the cat sat on the mat'});
    const eb = await client.embeddings.create({model: process.env.CAIRN_EMBED_MODEL, input: ['a dog', 'the cat sat on the mat']});
    check(e1.data.length === 1 && eb.data.length === 2 && eb.data[1].index === 1, 'embeddings shape', eb.data.length);
    check(JSON.stringify(e1.data[0].embedding) === JSON.stringify(eb.data[1].embedding), 'same vector alone and in a batch');
    const e64 = await client.embeddings.create({model: process.env.CAIRN_EMBED_MODEL, input: 'the cat sat on the mat', encoding_format: 'base64'});
    const buf = Buffer.from(e64.data[0].embedding, 'base64');
    const f = Array.from(new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4));
    check(f.length === e1.data[0].embedding.length && f.every((x, i) => x === Math.fround(e1.data[0].embedding[i])),
          'base64 decodes to the float vector (the same floats)');
    const ref = JSON.parse(require('fs').readFileSync(process.env.CAIRN_EMBED_REF, 'utf8')).embeddings[0];
    check(ref.length === f.length && ref.every((x, i) => Math.fround(x) === f[i]), 'the server gives cairn embed\'s vector');
    check(e1.usage.prompt_tokens > 0 && eb.usage.prompt_tokens > e1.usage.prompt_tokens, 'embedding usage counts tokens', eb.usage);
    await expectError(client.embeddings.create({model: process.env.CAIRN_EMBED_MODEL, input: [1, 2, 3]}), 400, 'invalid_value', 'token arrays');
    await expectError(client.embeddings.create({model: process.env.CAIRN_EMBED_MODEL, input: 'x', dimensions: 7}), 400, 'invalid_value', 'dimensions');
    const longIn = 'word '.repeat(5000);
    await expectError(client.embeddings.create({model: process.env.CAIRN_EMBED_MODEL, input: longIn}), 400, 'context_length_exceeded', 'embedding input too long');
    check(models.includes(process.env.CAIRN_EMBED_MODEL), 'models lists the embedding model', models);
  } else {
    await expectError(client.embeddings.create({model: 'none', input: 'x'}), 404, 'model_not_found', 'embeddings without a model');
  }
  let rr = await json('POST', '/v1/rerank', {model: 'none', query: 'q', documents: ['a']});
  check(rr.status === 404 && rr.json.error.code === 'model_not_found', 'rerank without a reranker: 404', rr.body);

  // /v1/ask: answer + sources, plain and streamed
  let ask = await json('POST', '/v1/ask', {question: 'How do I clean the pump impeller?', max_tokens: 12, temperature: 0});
  check(ask.status === 200 && ask.json.object === 'answer' && typeof ask.json.answer === 'string' && ask.json.answer.length > 0 &&
        ask.json.sources[0].path.endsWith('pumps.md') && ask.json.timings.retrieval_ms >= 0, 'ask', ask.body);
  const g0 = await client.chat.completions.create({model: 'cairn-rag', messages: [{role: 'user', content: 'How do I clean the pump impeller?'}],
                                                   max_tokens: 12, temperature: 0});
  check(ask.json.answer === g0.choices[0].message.content, 'ask answers as cairn-rag does', [ask.json.answer, g0.choices[0].message.content]);
  const sse = await request('POST', '/v1/ask', JSON.stringify({question: 'sourdough starter', stream: true, max_tokens: 6, filter: 'path GLOB "*bread*"'}),
                            Object.assign({'Content-Type': 'application/json'}, auth()));
  const events = sse.body.split('\n\n').filter((e) => e.startsWith('data: ')).map((e) => e.slice(6));
  check(sse.status === 200 && /text\/event-stream/.test(sse.headers['content-type']) && events[events.length - 1] === '[DONE]',
        'ask streams SSE', sse.body.slice(0, 300));
  const last = JSON.parse(events[events.length - 2]);
  check(last.sources && last.sources.length === 1 && last.sources[0].path.endsWith('bread.md'), 'ask stream ends with the sources', last);
  ask = await json('POST', '/v1/ask', {question: ''});
  check(ask.status === 400 && ask.json.error.param === 'question', 'ask without a question: 400', ask.body);

  // errors, through the client
  const bad = new OpenAI({apiKey: 'wrong-key', baseURL: process.env.CAIRN_URL + '/v1', maxRetries: 0});
  await expectError(bad.models.list(), 401, 'invalid_api_key', 'wrong key');
  await expectError(bad.chat.completions.create({model, messages: msgs}), 401, 'invalid_api_key', 'wrong key (chat)');
  await expectError(client.chat.completions.create({model: 'no-such-model', messages: msgs}), 404, 'model_not_found', 'unknown model');
  await expectError(client.completions.create({model, prompt: 'once '.repeat(5000), max_tokens: 4}), 400, 'context_length_exceeded', 'prompt too long');
  await expectError(client.completions.create({model, prompt: 'Once', max_tokens: 2040 + 100000}), 400, 'invalid_value', 'max_tokens over the cap');
  await expectError(client.chat.completions.create({model, messages: msgs, n: 2}), 400, 'invalid_value', 'n=2');
  await expectError(client.chat.completions.create({model, messages: [{role: 'tool', content: 'x'}]}), 400, 'invalid_value', 'bad role');

  // errors, raw
  let r = await request('POST', '/v1/chat/completions', '{"model": "x", "messages": [', Object.assign({'Content-Type': 'application/json'}, auth()));
  check(r.status === 400 && JSON.parse(r.body).error.code === 'invalid_json', 'bad JSON is a 400', r.body);
  r = await request('GET', '/health');
  check(r.status === 200 && JSON.parse(r.body).status === 'ok', '/health needs no key', r.body);
  r = await request('GET', '/metrics');
  check(r.status === 401, '/metrics needs the key', r.status);
  r = await request('GET', '/metrics', undefined, auth());
  check(r.status === 200 && /cairn_http_requests_total\{route="chat",code="200"\} \d+/.test(r.body) &&
        /cairn_tokens_total\{kind="cached"\} [1-9]/.test(r.body) && /cairn_prompt_cache_hits_total [1-9]/.test(r.body) &&
        /cairn_queue_depth 0/.test(r.body), '/metrics counts', r.body.slice(0, 400));
  check(!('access-control-allow-origin' in r.headers), 'no CORS headers unless configured', r.headers);

  // /v1/search
  let s = await json('POST', '/v1/search', {query: 'centrifugal pump impeller', k: 2});
  check(s.status === 200 && s.json.results.length >= 1 && s.json.results[0].path.endsWith('pumps.md'), 'search', s.body);
  s = await json('POST', '/v1/search', {query: 'pump bread', filter: 'path GLOB "*bread*"'});
  check(s.status === 200 && s.json.results.every((x) => x.path.endsWith('bread.md')) && s.json.results.length === 1, 'search filter', s.body);
  s = await json('POST', '/v1/search', {query: 'pump', filter: 'path GLOB ('});
  check(s.status === 400 && /filter/.test(s.json.error.message), 'bad filter is a 400', s.body);
  s = await json('POST', '/v1/search', {query: 'pump', mode: 'dense'});
  check(s.status === 400 && s.json.error.code === 'unsupported_mode', 'dense without vectors is a 400', s.body);
  s = await json('POST', '/v1/search', {query: 'pump', k: 0});
  check(s.status === 400 && s.json.error.param === 'k', 'k out of range', s.body);

  // /v1/documents: upload, find, list, delete
  const before = await json('GET', '/v1/documents?limit=1000');
  check(before.status === 200 && before.json.total >= 2, 'list documents', before.body);
  let u = await json('POST', '/v1/documents', {name: 'kiln.md', text: '# Kilns\n\nA kiln fires clay pottery at high temperature.\n'});
  check(u.status === 201 && u.json.outcome === 'added' && u.json.chunks >= 1 && u.json.path.endsWith('uploads/kiln.md'), 'upload text', u.body);
  s = await json('POST', '/v1/search', {query: 'kiln pottery'});
  check(s.status === 200 && s.json.results.length && s.json.results[0].path.endsWith('kiln.md'), 'an upload is searchable at once', s.body);
  u = await json('POST', '/v1/documents', {name: 'b64.txt', content_base64: Buffer.from('glazing ceramics with ash').toString('base64')});
  check(u.status === 201, 'upload base64', u.body);
  const raw = await request('POST', '/v1/documents?name=raw.txt', 'weaving looms and shuttles', Object.assign({'Content-Type': 'text/plain'}, auth()));
  check(raw.status === 201, 'raw upload', raw.body);
  const list = await json('GET', '/v1/documents?limit=1000');
  check(list.json.total === before.json.total + 3, 'list counts the uploads', [list.json.total, before.json.total]);
  const page = await json('GET', '/v1/documents?limit=2&offset=1');
  check(page.json.data.length === 2 && page.json.data[0].id === list.json.data[1].id, 'paging', page.body);
  const fl = await json('GET', '/v1/documents?filter=' + encodeURIComponent('path GLOB "*kiln*"'));
  check(fl.json.total === 1 && fl.json.data[0].path.endsWith('kiln.md') && fl.json.data[0].chunks >= 1, 'list with a filter', fl.body);
  const del = await json('DELETE', '/v1/documents/' + fl.json.data[0].id);
  check(del.status === 200 && del.json.deleted === true, 'delete', del.body);
  s = await json('POST', '/v1/search', {query: 'kiln pottery'});
  check(s.status === 200 && !s.json.results.some((x) => x.path.endsWith('kiln.md')), 'a deleted document is gone from search', s.body);
  const del2 = await json('DELETE', '/v1/documents/' + fl.json.data[0].id);
  check(del2.status === 404, 'deleting again is a 404', del2.body);
  done('openai_client');
}

main().catch((e) => { console.error('FAIL: exception', e); process.exit(1); });
