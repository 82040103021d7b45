// Exercises the provider mock directly, through the official SDKs where
// there is one (@anthropic-ai/sdk, openai), AWS's own signer and event
// stream codec for Bedrock, and a JWT signed with node:crypto for Vertex.
// The mock runs as a separate process (start.mjs), as the integration
// tests will run it.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { generateKeyPairSync, createSign, randomBytes } from 'node:crypto';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI, { AzureOpenAI } from 'openai';
import { SignatureV4 } from '@smithy/signature-v4';
import { Sha256 } from '@aws-crypto/sha256-js';
import { EventStreamCodec } from '@smithy/eventstream-codec';
import { fromUtf8, toUtf8 } from '@smithy/util-utf8';
import { startProviderMock } from './start.mjs';
import { createProviderMock } from './server.mjs';

const secret = (prefix) => `${prefix}${randomBytes(16).toString('hex')}`;
const keys = generateKeyPairSync('rsa', { modulusLength: 2048 });
const otherKeys = generateKeyPairSync('rsa', { modulusLength: 2048 });
const config = {
  anthropicKey: secret('sk-ant-'),
  azureKey: secret(''),
  azureDeployments: { gpt4o: 'gpt-4o-2024-08-06', embed: 'text-embedding-3-small' },
  openaiKey: secret('sk-'),
  aws: { accessKeyId: 'AKIAMOCK0000EXAMPLE', secretAccessKey: secret(''), region: 'us-east-1' },
  vertex: {
    publicKeyPem: keys.publicKey.export({ type: 'spki', format: 'pem' }),
    clientEmail: 'gateway@mock-project.iam.gserviceaccount.com', project: 'mock-project', location: 'us-east5',
  },
};
const HEX = '0123456789abcdef0123456789abcdef';
const CLAUDE = 'anthropic.claude-3-5-sonnet-20240620-v1:0';

let mock;
before(async () => { mock = await startProviderMock(config); });
after(async () => { await mock?.stop(); });

// --- helpers -------------------------------------------------------------

// A request with node:http, keeping when each chunk arrived and whether the
// answer came whole (complete false: the connection was cut)
function raw(path, { method = 'POST', headers = {}, body, port = mock.port, signal } = {}) {
  return new Promise((resolve, reject) => {
    const start = Date.now();
    const req = http.request({ host: '127.0.0.1', port, path, method, signal,
      headers: { 'content-type': 'application/json', ...headers } }, (res) => {
      const chunks = [];
      res.on('data', (d) => chunks.push({ t: Date.now() - start, data: d }));
      res.on('error', () => {});
      res.on('close', () => {
        const buf = Buffer.concat(chunks.map((c) => c.data));
        resolve({ status: res.statusCode, headers: res.headers, chunks, buf, text: buf.toString(), complete: res.complete,
          json: () => JSON.parse(buf.toString()) });
      });
    });
    req.on('error', reject);
    if (body !== undefined) req.write(typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body));
    req.end();
  });
}

// SSE text → [{event, data}]
function sse(text) {
  return text.split(/\r?\n\r?\n/).filter((b) => b.trim()).map((block) => {
    const ev = /^event: (.*)$/m.exec(block);
    const data = /^data: (.*)$/m.exec(block)[1];
    return { event: ev ? ev[1] : null, data: data === '[DONE]' ? data : JSON.parse(data) };
  });
}

const anthropicHeaders = () => ({ 'x-api-key': config.anthropicKey, 'anthropic-version': '2023-06-01' });
const claudeBody = (text, extra = {}) => ({ model: 'claude-3-5-sonnet-20241022', max_tokens: 256, messages: [{ role: 'user', content: text }], ...extra });
const anthropicClient = () => new Anthropic({ apiKey: config.anthropicKey, baseURL: mock.url, maxRetries: 0 });
const openaiClient = () => new OpenAI({ apiKey: config.openaiKey, baseURL: `${mock.url}/v1`, maxRetries: 0 });
const azureClient = (o = {}) => new AzureOpenAI({ endpoint: mock.url, apiKey: config.azureKey, apiVersion: '2024-10-21', deployment: 'gpt4o', maxRetries: 0, ...o });

const WEATHER = { name: 'get_weather', description: 'Weather in a city', input_schema: { type: 'object', properties: { city: { type: 'string' } } } };
const LOOKUP = { name: 'lookup_doc', description: 'Fetch a document', input_schema: { type: 'object', properties: { id: { type: 'string' } } } };

// Bedrock: sign like the AWS SDK does, then send as is (or spoiled)
async function bedrock(op, body, opt = {}) {
  const path = `/model/${encodeURIComponent(opt.model ?? CLAUDE)}/${op}`;
  const text = JSON.stringify(body);
  const signer = new SignatureV4({ credentials: opt.credentials ?? config.aws, region: opt.region ?? config.aws.region,
    service: 'bedrock', sha256: Sha256, uriEscapePath: opt.uriEscapePath ?? true });
  const signed = await signer.sign({ method: 'POST', protocol: 'http:', hostname: '127.0.0.1', port: mock.port, path, query: {},
    headers: { host: `127.0.0.1:${mock.port}`, 'content-type': 'application/json', accept: 'application/json' }, body: text },
  { signingDate: opt.date ?? new Date() });
  const headers = { ...signed.headers, ...(opt.headers ?? {}) };
  if (opt.tamperSignature) headers.authorization = headers.authorization.replace(/.$/, (c) => (c === '0' ? '1' : '0'));
  if (opt.dropAuth) delete headers.authorization;
  return raw(path, { headers, body: opt.tamperBody ? text.replace('hello', 'HELLO') : text });
}
const converseBody = (text, extra = {}) => ({ messages: [{ role: 'user', content: [{ text }] }], ...extra });
const invokeBody = (text, extra = {}) => ({ anthropic_version: 'bedrock-2023-05-31', max_tokens: 256, messages: [{ role: 'user', content: text }], ...extra });

const codec = new EventStreamCodec(toUtf8, fromUtf8);
// Event-stream bytes → [{type, messageType, headers, payload}]
function frames(buf) {
  const out = [];
  for (let off = 0; off < buf.length;) {
    const len = buf.readUInt32BE(off);
    const msg = codec.decode(buf.subarray(off, off + len));
    const h = Object.fromEntries(Object.entries(msg.headers).map(([k, v]) => [k, v.value]));
    out.push({ type: h[':event-type'] ?? h[':exception-type'], messageType: h[':message-type'], headers: h, payload: JSON.parse(toUtf8(msg.body)) });
    off += len;
  }
  return out;
}

// Vertex: a service-account JWT assertion signed with key
function jwt(claims = {}, key = keys.privateKey) {
  const now = Math.floor(Date.now() / 1000);
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const body = `${b64({ alg: 'RS256', typ: 'JWT', kid: 'mock' })}.${b64({ iss: config.vertex.clientEmail,
    scope: 'https://www.googleapis.com/auth/cloud-platform', aud: `${mock.url}/token`, iat: now, exp: now + 3600, ...claims })}`;
  return `${body}.${createSign('RSA-SHA256').update(body).sign(key).toString('base64url')}`;
}
const tokenRequest = (assertion) => raw('/token', { headers: { 'content-type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion }).toString() });
async function vertexToken() {
  const r = await tokenRequest(jwt());
  assert.equal(r.status, 200, r.text);
  return r.json().access_token;
}
const vertexPath = (publisher, model, method, { project = config.vertex.project, location = config.vertex.location } = {}) =>
  `/v1/projects/${project}/locations/${location}/publishers/${publisher}/models/${model}:${method}`;

// The Anthropic SDK aimed at Vertex the way @anthropic-ai/vertex-sdk does
// it: model out of the body into the URL, anthropic_version in, Bearer token
function vertexClaude(token) {
  const vertexFetch = (url, init) => {
    const body = JSON.parse(init.body);
    const model = body.model;
    delete body.model;
    body.anthropic_version = 'vertex-2023-10-16';
    const headers = new Headers(init.headers);
    headers.delete('x-api-key');
    headers.set('authorization', `Bearer ${token}`);
    return fetch(`${mock.url}${vertexPath('anthropic', model, body.stream ? 'streamRawPredict' : 'rawPredict')}`, { ...init, headers, body: JSON.stringify(body) });
  };
  return new Anthropic({ apiKey: 'unused', baseURL: mock.url, fetch: vertexFetch, maxRetries: 0 });
}

// --- Anthropic -----------------------------------------------------------

describe('anthropic', () => {
  test('SDK create: message shape, usage, request-id, server key seen', async () => {
    await mock.reset();
    const { data, response } = await anthropicClient().messages.create(claudeBody('hello there mock')).withResponse();
    assert.match(data.id, /^msg_01[A-Za-z0-9]{22}$/);
    assert.deepEqual(data.content, [{ type: 'text', text: 'Mock reply to: hello there mock' }]);
    assert.equal(data.stop_reason, 'end_turn');
    assert.equal(data.usage.input_tokens, 4); // 16 bytes / 4
    assert.equal(data.usage.output_tokens, 6);
    assert.match(response.headers.get('request-id'), /^req_/);
    const [rec] = await mock.requests();
    assert.equal(rec.family, 'anthropic');
    assert.equal(rec.headers.authorization, `Bearer ${config.anthropicKey}`); // how the 1.x SDK sends the key
    assert.equal(rec.body.messages[0].content, 'hello there mock');
  });

  test('SDK stream().finalMessage() and the exact event sequence, one write per event', async () => {
    const final = await anthropicClient().messages.stream(claudeBody('[mock chunks=4 chunk_delay=40] go')).finalMessage();
    assert.equal(final.content[0].text, 'w1 w2 w3 w4');
    assert.equal(final.usage.output_tokens, 4);
    const r = await raw('/v1/messages', { headers: anthropicHeaders(), body: claudeBody('[mock chunks=3 chunk_delay=60] go', { stream: true }) });
    const events = sse(r.text);
    assert.deepEqual(events.map((e) => e.event), ['message_start', 'content_block_start', 'ping', 'content_block_delta',
      'content_block_delta', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop']);
    for (const e of events) assert.equal(e.data.type, e.event);
    assert.deepEqual(events[7].data, { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 3 } });
    assert.match(r.headers['content-type'], /^text\/event-stream/);
    // Flushed as written: the deltas came in separate reads, spread in time
    const deltas = r.chunks.filter((c) => c.data.toString().includes('text_delta'));
    assert.equal(deltas.length, 3);
    assert.ok(deltas[2].t - deltas[0].t >= 100, `deltas at ${deltas.map((d) => d.t)}`);
  });

  test('tool use round trip (SDK), input from "retrieve with id", streamed input in pieces', async () => {
    const client = anthropicClient();
    const ask = `[mock tool=lookup_doc] retrieve with id ${HEX}`;
    const first = await client.messages.create(claudeBody(ask, { tools: [WEATHER, LOOKUP] }));
    assert.equal(first.stop_reason, 'tool_use');
    assert.equal(first.content[0].type, 'tool_use');
    assert.match(first.content[0].id, /^toolu_01/);
    assert.deepEqual(first.content[0].input, { id: HEX });
    const messages = [{ role: 'user', content: ask }, { role: 'assistant', content: first.content },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: first.content[0].id, content: 'the document text' }] }];
    const second = await client.messages.create({ model: 'claude-3-5-sonnet-20241022', max_tokens: 100, tools: [WEATHER, LOOKUP], messages });
    assert.equal(second.content[0].text, 'Mock reply to tool result: the document text');
    const streamed = await client.messages.stream(claudeBody(ask, { tools: [LOOKUP] })).finalMessage();
    assert.deepEqual(streamed.content[0].input, { id: HEX });
    const r = await raw('/v1/messages', { headers: anthropicHeaders(), body: claudeBody(ask, { tools: [LOOKUP], stream: true }) });
    const pieces = sse(r.text).filter((e) => e.data.delta?.type === 'input_json_delta').map((e) => e.data.delta.partial_json);
    assert.ok(pieces.length > 3);
    assert.equal(pieces[0], '');
    assert.deepEqual(JSON.parse(pieces.join('')), { id: HEX });
    const none = await client.messages.create(claudeBody('[mock tool=get_weather] hi', { tools: [WEATHER], tool_choice: { type: 'none' } }));
    assert.equal(none.content[0].type, 'text');
  });

  test('auth and version headers', async () => {
    await assert.rejects(new Anthropic({ apiKey: 'wrong', baseURL: mock.url, maxRetries: 0 }).messages.create(claudeBody('x')),
      (e) => e.status === 401 && e.error.error.type === 'authentication_error');
    const wrong = await raw('/v1/messages', { headers: { ...anthropicHeaders(), 'x-api-key': 'wrong' }, body: claudeBody('x') });
    assert.equal(wrong.status, 401);
    assert.deepEqual(wrong.json().error, { type: 'authentication_error', message: 'invalid x-api-key' });
    const bearer = await raw('/v1/messages', { headers: { authorization: `Bearer ${config.anthropicKey}`, 'anthropic-version': '2023-06-01' }, body: claudeBody('x') });
    assert.equal(bearer.status, 200);
    const noVersion = await raw('/v1/messages', { headers: { 'x-api-key': config.anthropicKey }, body: claudeBody('x') });
    assert.equal(noVersion.status, 400);
    assert.deepEqual(noVersion.json().error, { type: 'invalid_request_error', message: 'anthropic-version: header is required' });
    const noKey = await raw('/v1/messages', { headers: { 'anthropic-version': '2023-06-01' }, body: claudeBody('x') });
    assert.equal(noKey.status, 401);
  });

  test('validation: errors name the field', async () => {
    const cases = [
      [{ model: 'c', messages: [{ role: 'user', content: 'x' }] }, /^max_tokens: Field required/],
      [{ max_tokens: 5, messages: [{ role: 'user', content: 'x' }] }, /^model: Field required/],
      [{ model: 'c', max_tokens: 'five', messages: [{ role: 'user', content: 'x' }] }, /^max_tokens: Input should be a valid integer/],
      [{ model: 'c', max_tokens: 5, messages: [{ role: 'assistant', content: 'x' }] }, /first message must use the "user" role/],
      [{ model: 'c', max_tokens: 5, messages: [{ role: 'robot', content: 'x' }] }, /^messages\.0\.role/],
      [{ model: 'c', max_tokens: 5, messages: [{ role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_x', content: 'r' }] }] }, /unexpected `tool_use_id`/],
      [{ model: 'c', max_tokens: 5, messages: [{ role: 'user', content: 'q' }, { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_a', name: 'f', input: {} }] },
        { role: 'user', content: 'no result' }] }, /^messages\.1: `tool_use` ids were found without `tool_result`/],
    ];
    for (const [body, want] of cases) {
      const r = await raw('/v1/messages', { headers: anthropicHeaders(), body });
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal(r.json().type, 'error');
      assert.equal(r.json().error.type, 'invalid_request_error');
      assert.match(r.json().error.message, want);
    }
  });

  test('error switches: 429 (retry-after), 529, 500, 400, 401', async () => {
    const expect = { 429: 'rate_limit_error', 529: 'overloaded_error', 500: 'api_error', 400: 'invalid_request_error', 401: 'authentication_error' };
    for (const [status, type] of Object.entries(expect)) {
      const r = await raw('/v1/messages', { headers: anthropicHeaders(), body: claudeBody(`[mock status=${status}] hi`) });
      assert.equal(r.status, Number(status));
      assert.equal(r.json().error.type, type);
      assert.match(r.headers['request-id'], /^req_/);
    }
    const r = await raw('/v1/messages', { headers: anthropicHeaders(), body: claudeBody('[mock status=429 retry_after=7] hi') });
    assert.equal(r.headers['retry-after'], '7');
    await assert.rejects(anthropicClient().messages.create(claudeBody('[mock status=429] hi')), Anthropic.RateLimitError);
  });

  test('stream switches: error_after, drop_after, chunk count', async () => {
    const err = await raw('/v1/messages', { headers: anthropicHeaders(), body: claudeBody('[mock chunks=5 error_after=2 status=529] x', { stream: true }) });
    const events = sse(err.text);
    assert.equal(events.filter((e) => e.event === 'content_block_delta').length, 2);
    assert.deepEqual(events.at(-1), { event: 'error', data: { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } } });
    await assert.rejects(anthropicClient().messages.stream(claudeBody('[mock chunks=5 error_after=1] x')).finalMessage(), /api_error|Internal server error/);
    const cut = await raw('/v1/messages', { headers: anthropicHeaders(), body: claudeBody('[mock chunks=5 drop_after=2] x', { stream: true }) });
    assert.equal(cut.complete, false);
    assert.equal(sse(cut.text).filter((e) => e.event === 'content_block_delta').length, 2);
    assert.ok(!cut.text.includes('message_stop'));
  });

  test('count_tokens', async () => {
    const r = await anthropicClient().messages.countTokens({ model: 'claude-3-5-sonnet-20241022', messages: [{ role: 'user', content: '12345678' }], system: 'abcd' });
    assert.deepEqual(r, { input_tokens: 3 });
  });
});

// --- OpenAI --------------------------------------------------------------

describe('openai', () => {
  test('chat: SDK non-stream, stream with usage, tool call round trip', async () => {
    const client = openaiClient();
    const c = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello world' }] });
    assert.equal(c.choices[0].message.content, 'Mock reply to: hello world');
    assert.equal(c.usage.completion_tokens, 5);
    const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', stream: true, stream_options: { include_usage: true },
      messages: [{ role: 'user', content: '[mock chunks=3] x' }] });
    let text = '';
    let usage = null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? '';
      usage = chunk.usage ?? usage;
    }
    assert.equal(text, 'w1 w2 w3');
    assert.equal(usage.completion_tokens, 3);
    const tools = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: {} } } }];
    const call = await client.chat.completions.create({ model: 'gpt-4o-mini', tools, messages: [{ role: 'user', content: '[mock tool=get_weather] hi' }] });
    const tc = call.choices[0].message.tool_calls[0];
    assert.equal(call.choices[0].finish_reason, 'tool_calls');
    assert.equal(tc.function.arguments, '{}');
    const after = await client.chat.completions.create({ model: 'gpt-4o-mini', tools, messages: [{ role: 'user', content: 'hi' },
      call.choices[0].message, { role: 'tool', tool_call_id: tc.id, content: 'sunny' }] });
    assert.equal(after.choices[0].message.content, 'Mock reply to tool result: sunny');
  });

  test('embeddings: SDK default base64 decoded, float format equal, deterministic, dimensions', async () => {
    await mock.reset();
    const client = openaiClient();
    const a = await client.embeddings.create({ model: 'text-embedding-3-small', input: ['alpha', 'beta'] });
    const [rec] = await mock.requests();
    assert.equal(rec.body.encoding_format, 'base64'); // the SDK's default
    assert.equal(a.data.length, 2);
    assert.equal(a.data[0].embedding.length, 1536);
    const norm = Math.sqrt(a.data[0].embedding.reduce((s, v) => s + v * v, 0));
    assert.ok(Math.abs(norm - 1) < 1e-5);
    const f = await client.embeddings.create({ model: 'text-embedding-3-small', input: 'alpha', encoding_format: 'float' });
    assert.deepEqual(f.data[0].embedding, a.data[0].embedding);
    assert.notDeepEqual(a.data[1].embedding, a.data[0].embedding);
    assert.equal(f.usage.prompt_tokens, 2);
    const d = await client.embeddings.create({ model: 'text-embedding-3-large', input: 'x', dimensions: 8 });
    assert.equal(d.data[0].embedding.length, 8);
    await assert.rejects(client.embeddings.create({ model: 'text-embedding-3-small', input: '' }), (e) => e.status === 400);
  });

  test('legacy completions: text_completion, stream with usage, max_tokens default 16', async () => {
    const client = openaiClient();
    const c = await client.completions.create({ model: 'gpt-3.5-turbo-instruct', prompt: 'Say hi' });
    assert.equal(c.object, 'text_completion');
    assert.equal(c.choices[0].text, 'Mock reply to: Say hi');
    const long = await client.completions.create({ model: 'gpt-3.5-turbo-instruct', prompt: '[mock chunks=20] x' });
    assert.equal(long.choices[0].finish_reason, 'length');
    assert.equal(long.usage.completion_tokens, 16);
    const stream = await client.completions.create({ model: 'gpt-3.5-turbo-instruct', prompt: '[mock chunks=3] x', stream: true, stream_options: { include_usage: true } });
    let text = '';
    let usage = null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.text ?? '';
      usage = chunk.usage ?? usage;
    }
    assert.equal(text, 'w1 w2 w3');
    assert.equal(usage.total_tokens, usage.prompt_tokens + 3);
  });

  test('responses: object, stream event sequence with sequence numbers, function call round trip', async () => {
    const client = openaiClient();
    const r = await client.responses.create({ model: 'gpt-4o', input: 'hello there', instructions: 'be brief' });
    assert.match(r.id, /^resp_[0-9a-f]{48}$/);
    assert.equal(r.object, 'response');
    assert.equal(r.status, 'completed');
    assert.equal(r.output_text, 'Mock reply to: hello there');
    assert.deepEqual(r.output[0].content[0].annotations, []);
    assert.deepEqual(Object.keys(r.usage).sort(), ['input_tokens', 'input_tokens_details', 'output_tokens', 'output_tokens_details', 'total_tokens']);
    const stream = await client.responses.create({ model: 'gpt-4o', input: '[mock chunks=2] x', stream: true });
    const events = [];
    for await (const e of stream) events.push(e);
    assert.deepEqual(events.map((e) => e.type), ['response.created', 'response.in_progress', 'response.output_item.added',
      'response.content_part.added', 'response.output_text.delta', 'response.output_text.delta', 'response.output_text.done',
      'response.content_part.done', 'response.output_item.done', 'response.completed']);
    assert.deepEqual(events.map((e) => e.sequence_number), events.map((_, i) => i));
    assert.equal(events.at(-1).response.output[0].content[0].text, 'w1 w2');
    const tools = [{ type: 'function', name: 'get_weather', parameters: { type: 'object', properties: {} }, strict: false }];
    const call = await client.responses.create({ model: 'gpt-4o', tools, input: '[mock tool=get_weather] weather?' });
    assert.equal(call.output[0].type, 'function_call');
    assert.match(call.output[0].call_id, /^call_/);
    const after = await client.responses.create({ model: 'gpt-4o', tools, input: [{ role: 'user', content: 'weather?' }, call.output[0],
      { type: 'function_call_output', call_id: call.output[0].call_id, output: 'rainy' }] });
    assert.equal(after.output_text, 'Mock reply to tool result: rainy');
    await assert.rejects(client.responses.create({ model: 'gpt-4o', input: [{ type: 'function_call_output', call_id: 'call_nope', output: 'x' }] }),
      (e) => e.status === 400 && /No tool call found/.test(e.message));
    const fstream = await client.responses.create({ model: 'gpt-4o', tools, input: '[mock tool=get_weather] w', stream: true });
    const ftypes = [];
    for await (const e of fstream) ftypes.push(e.type);
    assert.ok(ftypes.includes('response.function_call_arguments.delta') && ftypes.includes('response.function_call_arguments.done'));
  });

  test('auth and error switches', async () => {
    await assert.rejects(new OpenAI({ apiKey: 'sk-wrong-key-000000', baseURL: `${mock.url}/v1`, maxRetries: 0 })
      .chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'x' }] }), (e) => e.status === 401 && e.code === 'invalid_api_key');
    await assert.rejects(openaiClient().chat.completions.create({ model: 'm', messages: [{ role: 'user', content: '[mock status=429] x' }] }), OpenAI.RateLimitError);
    await assert.rejects(openaiClient().responses.create({ model: 'm', input: '[mock status=500] x' }), OpenAI.InternalServerError);
    await assert.rejects(openaiClient().embeddings.create({ model: 'm', input: '[mock status=503] x' }), (e) => e.status === 503);
    const r = await raw('/v1/chat/completions', { headers: { authorization: `Bearer ${config.openaiKey}` },
      body: { model: 'm', stream: true, messages: [{ role: 'user', content: '[mock chunks=4 error_after=1] x' }] } });
    const events = sse(r.text);
    assert.equal(events.at(-1).data.error.type, 'server_error');
    assert.ok(!r.text.includes('[DONE]'));
  });
});

// --- Azure OpenAI --------------------------------------------------------

describe('azure', () => {
  test('AzureOpenAI chat: deployment model, content filter members, api-key header', async () => {
    await mock.reset();
    const c = await azureClient().chat.completions.create({ model: 'anything', messages: [{ role: 'user', content: 'hi azure' }] });
    assert.equal(c.model, 'gpt-4o-2024-08-06');
    assert.equal(c.choices[0].message.content, 'Mock reply to: hi azure');
    assert.equal(c.prompt_filter_results[0].content_filter_results.hate.filtered, false);
    assert.equal(c.choices[0].content_filter_results.violence.severity, 'safe');
    const [rec] = await mock.requests();
    assert.equal(rec.family, 'azure');
    assert.equal(rec.path, '/openai/deployments/gpt4o/chat/completions');
    assert.equal(rec.query['api-version'], '2024-10-21');
    assert.equal(rec.headers['api-key'], config.azureKey);
  });

  test('AzureOpenAI stream: prompt filter chunk first, usage chunk, embeddings and completions', async () => {
    const stream = await azureClient().chat.completions.create({ model: 'x', stream: true, stream_options: { include_usage: true },
      messages: [{ role: 'user', content: '[mock chunks=2] x' }] });
    const chunks = [];
    for await (const c of stream) chunks.push(c);
    assert.ok(chunks[0].prompt_filter_results);
    assert.deepEqual(chunks[0].choices, []);
    assert.equal(chunks.map((c) => c.choices[0]?.delta?.content ?? '').join(''), 'w1 w2');
    assert.equal(chunks.at(-1).usage.completion_tokens, 2);
    const e = await azureClient({ deployment: 'embed' }).embeddings.create({ model: 'x', input: 'hello' });
    assert.equal(e.data[0].embedding.length, 1536);
    assert.equal(e.model, 'text-embedding-3-small');
    const t = await azureClient().completions.create({ model: 'x', prompt: 'hey' });
    assert.equal(t.choices[0].text, 'Mock reply to: hey');
  });

  test('errors: key, deployment, api-version, throttling', async () => {
    await assert.rejects(azureClient({ apiKey: 'bad' }).chat.completions.create({ model: 'x', messages: [{ role: 'user', content: 'x' }] }),
      (e) => e.status === 401 && e.code === '401' && /Access denied/.test(e.message));
    await assert.rejects(azureClient({ deployment: 'nope' }).chat.completions.create({ model: 'x', messages: [{ role: 'user', content: 'x' }] }),
      (e) => e.status === 404 && e.code === 'DeploymentNotFound');
    await assert.rejects(azureClient({ apiVersion: '2024-13-45' }).chat.completions.create({ model: 'x', messages: [{ role: 'user', content: 'x' }] }),
      (e) => e.status === 400 && e.code === 'BadRequest');
    const missing = await raw('/openai/deployments/gpt4o/chat/completions', { headers: { 'api-key': config.azureKey }, body: { messages: [] } });
    assert.equal(missing.status, 404);
    assert.deepEqual(missing.json(), { error: { code: '404', message: 'Resource not found' } });
    const r = await raw('/openai/deployments/gpt4o/chat/completions?api-version=2024-10-21', { headers: { 'api-key': config.azureKey },
      body: { messages: [{ role: 'user', content: '[mock status=429] x' }] } });
    assert.equal(r.status, 429);
    assert.equal(r.json().error.code, '429');
    assert.equal(r.headers['retry-after'], '1');
  });
});

// --- Bedrock -------------------------------------------------------------

describe('bedrock', () => {
  test('SigV4 signed Converse accepted; answer shape', async () => {
    await mock.reset();
    const r = await bedrock('converse', converseBody('hello bedrock', { system: [{ text: 'sys' }], inferenceConfig: { maxTokens: 100 } }));
    assert.equal(r.status, 200, r.text);
    const out = r.json();
    assert.deepEqual(out.output, { message: { role: 'assistant', content: [{ text: 'Mock reply to: hello bedrock' }] } });
    assert.equal(out.stopReason, 'end_turn');
    assert.deepEqual(out.usage, { inputTokens: 4, outputTokens: 5, totalTokens: 9 });
    assert.equal(typeof out.metrics.latencyMs, 'number');
    assert.ok(r.headers['x-amzn-requestid']);
    const [rec] = await mock.requests();
    assert.equal(rec.path, '/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse');
  });

  test('SigV4 rejections: body, signature, key id, clock, missing, path encoding, region', async () => {
    const body = converseBody('hello');
    const check = async (r, status, type, message) => {
      assert.equal(r.status, status, r.text);
      assert.equal(r.headers['x-amzn-errortype'].split(':')[0], type);
      if (message) assert.match(r.json().message, message);
    };
    await check(await bedrock('converse', body, { tamperBody: true }), 403, 'InvalidSignatureException', /signature we calculated does not match/);
    await check(await bedrock('converse', body, { tamperSignature: true }), 403, 'InvalidSignatureException');
    await check(await bedrock('converse', body, { credentials: { ...config.aws, accessKeyId: 'AKIAWRONG' } }), 403, 'UnrecognizedClientException');
    await check(await bedrock('converse', body, { credentials: { ...config.aws, secretAccessKey: 'wrong' } }), 403, 'InvalidSignatureException');
    await check(await bedrock('converse', body, { date: new Date(Date.now() - 6 * 60 * 1000) }), 403, 'InvalidSignatureException', /Signature expired/);
    await check(await bedrock('converse', body, { dropAuth: true }), 403, 'MissingAuthenticationTokenException');
    // AWS signs the path encoded twice: %3A becomes %253A in the canonical request
    await check(await bedrock('converse', body, { uriEscapePath: false }), 403, 'InvalidSignatureException');
    await check(await bedrock('converse', body, { region: 'us-west-2' }), 403, 'InvalidSignatureException');
  });

  test('session token: required and checked when configured (in-process server)', async () => {
    const cfg = { ...config, aws: { ...config.aws, sessionToken: secret('tok') } };
    const local = createProviderMock(cfg);
    const port = await local.listen(0);
    try {
      const send = async (credentials) => {
        const signer = new SignatureV4({ credentials, region: cfg.aws.region, service: 'bedrock', sha256: Sha256 });
        const path = `/model/${encodeURIComponent(CLAUDE)}/converse`;
        const text = JSON.stringify(converseBody('hi'));
        const s = await signer.sign({ method: 'POST', protocol: 'http:', hostname: '127.0.0.1', port, path, query: {},
          headers: { host: `127.0.0.1:${port}`, 'content-type': 'application/json' }, body: text });
        return raw(path, { port, headers: s.headers, body: text });
      };
      assert.equal((await send(cfg.aws)).status, 200);
      const r = await send({ ...cfg.aws, sessionToken: undefined });
      assert.equal(r.status, 403);
      assert.match(r.headers['x-amzn-errortype'], /^UnrecognizedClientException/);
      assert.equal(local.requests().length, 2);
    } finally {
      await local.close();
    }
  });

  test('Converse tool use and validation', async () => {
    const toolConfig = { tools: [{ toolSpec: { name: 'lookup_doc', inputSchema: { json: { type: 'object', properties: { id: { type: 'string' } } } } } }] };
    const ask = `[mock tool=lookup_doc] retrieve with id ${HEX}`;
    const r = await bedrock('converse', converseBody(ask, { toolConfig }));
    const use = r.json().output.message.content[0].toolUse;
    assert.equal(r.json().stopReason, 'tool_use');
    assert.match(use.toolUseId, /^tooluse_/);
    assert.deepEqual(use.input, { id: HEX });
    const messages = [{ role: 'user', content: [{ text: ask }] }, { role: 'assistant', content: [{ toolUse: use }] },
      { role: 'user', content: [{ toolResult: { toolUseId: use.toolUseId, content: [{ text: 'doc body' }] } }] }];
    const after = await bedrock('converse', { messages, toolConfig });
    assert.equal(after.json().output.message.content[0].text, 'Mock reply to tool result: doc body');
    const bad = [
      [{ messages: [] }, /must start with a user message/],
      [{ messages: [{ role: 'assistant', content: [{ text: 'x' }] }] }, /must start with a user message/],
      [{ messages: [{ role: 'user', content: [{ text: 'a' }] }, { role: 'user', content: [{ text: 'b' }] }] }, /must alternate/],
      [{ messages, toolConfig: undefined }, /toolConfig field must be defined/],
      [{ toolConfig, messages: [messages[0], messages[1], { role: 'user', content: [{ toolResult: { toolUseId: 'tooluse_other', content: [{ text: 'x' }] } }] }] }, /toolResult blocks/],
      [{ toolConfig, messages: [messages[0], messages[1], { role: 'user', content: [{ text: 'forgot' }] }] }, /Expected toolResult blocks at messages\.2\.content/],
    ];
    for (const [body, want] of bad) {
      const e = await bedrock('converse', body);
      assert.equal(e.status, 400, JSON.stringify(body));
      assert.match(e.headers['x-amzn-errortype'], /^ValidationException:/);
      assert.match(e.json().message, want);
    }
  });

  test('ConverseStream: real frames, decoded with the codec', async () => {
    const r = await bedrock('converse-stream', converseBody('[mock chunks=3] x'));
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'application/vnd.amazon.eventstream');
    const fs = frames(r.buf);
    assert.deepEqual(fs.map((f) => f.type), ['messageStart', 'contentBlockDelta', 'contentBlockDelta', 'contentBlockDelta', 'contentBlockStop', 'messageStop', 'metadata']);
    for (const f of fs) {
      assert.equal(f.messageType, 'event');
      assert.equal(f.headers[':content-type'], 'application/json');
      assert.match(f.payload.p, /^[a-zA-Z0-9]+$/);
    }
    assert.equal(fs.slice(1, 4).map((f) => f.payload.delta.text).join(''), 'w1 w2 w3');
    assert.equal(fs[5].payload.stopReason, 'end_turn');
    assert.deepEqual(fs[6].payload.usage, { inputTokens: 5, outputTokens: 3, totalTokens: 8 }); // 17 bytes / 4
    const toolConfig = { tools: [{ toolSpec: { name: 'lookup_doc', inputSchema: { json: { type: 'object', properties: { id: { type: 'string' } } } } } }] };
    const t = frames((await bedrock('converse-stream', converseBody(`[mock tool=lookup_doc] retrieve with id ${HEX}`, { toolConfig }))).buf);
    assert.equal(t[1].type, 'contentBlockStart');
    assert.equal(t[1].payload.start.toolUse.name, 'lookup_doc');
    const inputs = t.filter((f) => f.type === 'contentBlockDelta').map((f) => f.payload.delta.toolUse.input);
    assert.ok(inputs.length > 3);
    assert.deepEqual(JSON.parse(inputs.join('')), { id: HEX });
    assert.equal(t.find((f) => f.type === 'messageStop').payload.stopReason, 'tool_use');
  });

  test('InvokeModel (Claude): Anthropic message, Bedrock body rules, token headers', async () => {
    const r = await bedrock('invoke', invokeBody('hello claude'));
    assert.equal(r.status, 200, r.text);
    const msg = r.json();
    assert.match(msg.id, /^msg_bdrk_01/);
    assert.equal(msg.model, 'claude-3-5-sonnet-20240620');
    assert.equal(msg.content[0].text, 'Mock reply to: hello claude');
    assert.equal(r.headers['x-amzn-bedrock-output-token-count'], '5');
    for (const [body, want] of [[invokeBody('x', { model: 'claude' }), /extraneous key \[model\]/],
      [{ max_tokens: 5, messages: [{ role: 'user', content: 'x' }] }, /required key \[anthropic_version\]/],
      [invokeBody('x', { anthropic_version: '2023-06-01' }), /Invalid API version/],
      [{ ...invokeBody('x'), messages: [{ role: 'assistant', content: 'x' }] }, /first message must use the "user" role/]]) {
      const e = await bedrock('invoke', body);
      assert.equal(e.status, 400);
      assert.match(e.headers['x-amzn-errortype'], /^ValidationException/);
      assert.match(e.json().message, want);
    }
  });

  test('InvokeModelWithResponseStream: chunk frames carry the Anthropic events', async () => {
    const r = await bedrock('invoke-with-response-stream', invokeBody('[mock chunks=2] x'));
    assert.equal(r.status, 200);
    const fs = frames(r.buf);
    assert.ok(fs.every((f) => f.type === 'chunk' && typeof f.payload.p === 'string'));
    const events = fs.map((f) => JSON.parse(Buffer.from(f.payload.bytes, 'base64').toString()));
    assert.deepEqual(events.map((e) => e.type), ['message_start', 'content_block_start', 'ping', 'content_block_delta',
      'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop']);
    assert.match(events[0].message.id, /^msg_bdrk_/);
    assert.equal(events.at(-1)['amazon-bedrock-invocationMetrics'].outputTokenCount, 2);
  });

  test('error switches: 429 throttling, 400 validation, mid-stream exception frames', async () => {
    const t = await bedrock('converse', converseBody('[mock status=429] x'));
    assert.equal(t.status, 429);
    assert.match(t.headers['x-amzn-errortype'], /^ThrottlingException:/);
    assert.equal(t.json().message, 'Too many requests, please wait before trying again.');
    const v = await bedrock('invoke', invokeBody('[mock status=400] x'));
    assert.equal(v.status, 400);
    assert.match(v.headers['x-amzn-errortype'], /^ValidationException:/);
    const s = frames((await bedrock('converse-stream', converseBody('[mock chunks=4 error_after=2 status=429] x'))).buf);
    assert.deepEqual(s.map((f) => f.type), ['messageStart', 'contentBlockDelta', 'contentBlockDelta', 'throttlingException']);
    assert.equal(s.at(-1).messageType, 'exception');
    const i = frames((await bedrock('invoke-with-response-stream', invokeBody('[mock chunks=4 error_after=1] x'))).buf);
    assert.equal(i.at(-1).type, 'internalServerException');
  });
});

// --- Vertex AI -----------------------------------------------------------

describe('vertex', () => {
  test('token endpoint: right key accepted, another key and bad claims rejected', async () => {
    const ok = await tokenRequest(jwt());
    assert.equal(ok.status, 200);
    const tok = ok.json();
    assert.match(tok.access_token, /^ya29\./);
    assert.equal(tok.expires_in, 3599);
    assert.equal(tok.token_type, 'Bearer');
    const other = await tokenRequest(jwt({}, otherKeys.privateKey));
    assert.equal(other.status, 400);
    assert.deepEqual(other.json(), { error: 'invalid_grant', error_description: 'Invalid JWT Signature.' });
    const now = Math.floor(Date.now() / 1000);
    for (const claims of [{ aud: 'https://oauth2.googleapis.com/token' }, { iss: 'someone@else.iam.gserviceaccount.com' },
      { iat: now - 7200, exp: now - 3600 }, { exp: now + 7200 }]) {
      const r = await tokenRequest(jwt(claims));
      assert.equal(r.status, 400, JSON.stringify(claims));
      assert.equal(r.json().error, 'invalid_grant');
    }
    const scope = await tokenRequest(jwt({ scope: 'https://www.googleapis.com/auth/userinfo.email' }));
    assert.equal(scope.json().error, 'invalid_scope');
  });

  test('Claude rawPredict/streamRawPredict through the Anthropic SDK (as the Vertex SDK calls them)', async () => {
    await mock.reset();
    const client = vertexClaude(await vertexToken());
    const m = await client.messages.create({ model: 'claude-3-5-sonnet-v2@20241022', max_tokens: 50, messages: [{ role: 'user', content: 'hi vertex' }] });
    assert.match(m.id, /^msg_vrtx_01/);
    assert.equal(m.model, 'claude-3-5-sonnet-v2-20241022');
    assert.equal(m.content[0].text, 'Mock reply to: hi vertex');
    const reqs = await mock.requests();
    const rec = reqs.find((q) => q.path.endsWith(':rawPredict'));
    assert.equal(rec.body.anthropic_version, 'vertex-2023-10-16');
    assert.equal(rec.body.model, undefined);
    const s = await client.messages.stream({ model: 'claude-3-5-sonnet-v2@20241022', max_tokens: 50, messages: [{ role: 'user', content: '[mock chunks=3] x' }] }).finalMessage();
    assert.equal(s.content[0].text, 'w1 w2 w3');
    const tool = await client.messages.create({ model: 'claude-3-5-sonnet-v2@20241022', max_tokens: 50, tools: [WEATHER], messages: [{ role: 'user', content: '[mock tool=get_weather] w' }] });
    assert.match(tool.content[0].id, /^toolu_vrtx_01/);
  });

  test('Vertex auth, project, location and Claude body rules', async () => {
    const token = await vertexToken();
    const body = { anthropic_version: 'vertex-2023-10-16', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] };
    const path = vertexPath('anthropic', 'claude-3-5-sonnet-v2@20241022', 'rawPredict');
    const none = await raw(path, { body });
    assert.equal(none.status, 401);
    assert.equal(none.json().error.status, 'UNAUTHENTICATED');
    assert.equal((await raw(path, { headers: { authorization: 'Bearer ya29.forged' }, body })).status, 401);
    const auth = { authorization: `Bearer ${token}` };
    const project = await raw(vertexPath('anthropic', 'm', 'rawPredict', { project: 'other' }), { headers: auth, body });
    assert.equal(project.status, 403);
    assert.equal(project.json().error.status, 'PERMISSION_DENIED');
    assert.equal((await raw(vertexPath('anthropic', 'm', 'rawPredict', { location: 'europe-west1' }), { headers: auth, body })).status, 404);
    const withModel = await raw(path, { headers: auth, body: { ...body, model: 'claude' } });
    assert.equal(withModel.status, 400);
    assert.equal(withModel.json().error.type, 'invalid_request_error');
    const noVersion = await raw(path, { headers: auth, body: { max_tokens: 10, messages: body.messages } });
    assert.match(noVersion.json().error.message, /^anthropic_version/);
    const limited = await raw(path, { headers: auth, body: { ...body, messages: [{ role: 'user', content: '[mock status=429] x' }] } });
    assert.equal(limited.status, 429);
    assert.equal(limited.json().error.status, 'RESOURCE_EXHAUSTED');
    const overloaded = await raw(path, { headers: auth, body: { ...body, messages: [{ role: 'user', content: '[mock status=529] x' }] } });
    assert.equal(overloaded.json().error.type, 'overloaded_error');
    await mock.expireTokens();
    assert.equal((await raw(path, { headers: auth, body })).status, 401);
  });

  test('Gemini generateContent: text, function call, function response', async () => {
    const auth = { authorization: `Bearer ${await vertexToken()}` };
    const path = vertexPath('google', 'gemini-2.0-flash-001', 'generateContent');
    const r = await raw(path, { headers: auth, body: { contents: [{ role: 'user', parts: [{ text: 'hello gemini' }] }], systemInstruction: { parts: [{ text: 'sys' }] } } });
    assert.equal(r.status, 200, r.text);
    const out = r.json();
    assert.deepEqual(out.candidates[0].content, { role: 'model', parts: [{ text: 'Mock reply to: hello gemini' }] });
    assert.equal(out.candidates[0].finishReason, 'STOP');
    assert.equal(out.usageMetadata.promptTokenCount, 4);
    assert.equal(out.usageMetadata.candidatesTokenCount, 5);
    assert.equal(out.usageMetadata.totalTokenCount, 9);
    assert.equal(out.modelVersion, 'gemini-2.0-flash-001');
    assert.ok(out.responseId);
    const tools = [{ functionDeclarations: [{ name: 'lookup_doc', parameters: { type: 'object', properties: { id: { type: 'string' } } } }] }];
    const ask = { role: 'user', parts: [{ text: `[mock tool=lookup_doc] retrieve with id ${HEX}` }] };
    const call = (await raw(path, { headers: auth, body: { contents: [ask], tools } })).json();
    assert.deepEqual(call.candidates[0].content.parts, [{ functionCall: { name: 'lookup_doc', args: { id: HEX } } }]);
    const contents = [ask, call.candidates[0].content, { role: 'user', parts: [{ functionResponse: { name: 'lookup_doc', response: { result: 'the doc' } } }] }];
    const after = (await raw(path, { headers: auth, body: { contents, tools } })).json();
    assert.equal(after.candidates[0].content.parts[0].text, 'Mock reply to tool result: the doc');
    for (const [body, want] of [[{ contents: [] }, /at least one parts field/], [{ contents: [{ role: 'bot', parts: [{ text: 'x' }] }] }, /valid role/],
      [{ contents: [ask, call.candidates[0].content, { role: 'user', parts: [{ text: 'no response' }] }], tools }, /number of function response parts/]]) {
      const e = await raw(path, { headers: auth, body });
      assert.equal(e.status, 400);
      assert.equal(e.json().error.status, 'INVALID_ARGUMENT');
      assert.match(e.json().error.message, want);
    }
  });

  test('Gemini streamGenerateContent: SSE with CRLF, text over several events, usage on each; JSON array without alt=sse', async () => {
    const auth = { authorization: `Bearer ${await vertexToken()}` };
    const body = { contents: [{ role: 'user', parts: [{ text: '[mock chunks=3 chunk_delay=30] x' }] }] };
    const r = await raw(`${vertexPath('google', 'gemini-2.0-flash-001', 'streamGenerateContent')}?alt=sse`, { headers: auth, body });
    assert.match(r.headers['content-type'], /^text\/event-stream/);
    assert.ok(r.text.includes('\r\n\r\n'));
    const events = sse(r.text).map((e) => e.data);
    assert.equal(events.length, 3);
    assert.equal(events.map((e) => e.candidates[0].content.parts[0].text).join(''), 'w1 w2 w3');
    assert.ok(events.every((e) => e.usageMetadata.promptTokenCount > 0));
    assert.equal(events.at(-1).candidates[0].finishReason, 'STOP');
    assert.equal(events.at(-1).usageMetadata.candidatesTokenCount, 3);
    assert.ok(r.chunks.length >= 3);
    const arr = await raw(vertexPath('google', 'gemini-2.0-flash-001', 'streamGenerateContent'), { headers: auth, body });
    assert.equal(JSON.parse(arr.text).length, 3);
  });

  test('Gemini error switches: 429 RESOURCE_EXHAUSTED, mid-stream error', async () => {
    const auth = { authorization: `Bearer ${await vertexToken()}` };
    const r = await raw(vertexPath('google', 'gemini-2.0-flash-001', 'generateContent'), { headers: auth,
      body: { contents: [{ parts: [{ text: '[mock status=429] x' }] }] } });
    assert.equal(r.status, 429);
    assert.equal(r.json().error.status, 'RESOURCE_EXHAUSTED');
    assert.equal(r.json().error.code, 429);
    const s = await raw(`${vertexPath('google', 'gemini-2.0-flash-001', 'streamGenerateContent')}?alt=sse`, { headers: auth,
      body: { contents: [{ parts: [{ text: '[mock chunks=3 error_after=1 status=503] x' }] }] } });
    assert.equal(sse(s.text).at(-1).data.error.status, 'UNAVAILABLE');
  });
});

// --- switches every family shares, and the control routes ----------------

describe('switches and control', () => {
  test('latency delays the answer', async () => {
    const t = Date.now();
    const r = await raw('/v1/messages', { headers: anthropicHeaders(), body: claudeBody('[mock latency=300] x') });
    assert.equal(r.status, 200);
    assert.ok(Date.now() - t >= 290);
  });

  test('hang holds the request until the client leaves; the server stays fine', async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 200);
    await assert.rejects(raw('/v1/chat/completions', { signal: ac.signal, headers: { authorization: `Bearer ${config.openaiKey}` },
      body: { model: 'm', messages: [{ role: 'user', content: '[mock hang=1] x' }] } }), /abort/i);
    const ok = await bedrock('converse', converseBody('after hang'));
    assert.equal(ok.status, 200);
  });

  test('drop=1 cuts a non-stream body halfway; drop_after cuts a stream', async () => {
    const r = await bedrock('converse', converseBody('[mock drop=1] x'));
    assert.equal(r.complete, false);
    assert.ok(r.buf.length > 0 && r.buf.length < Number(r.headers['content-length']));
    const s = await raw(`${vertexPath('google', 'gemini-2.5-flash', 'streamGenerateContent')}?alt=sse`, { headers: { authorization: `Bearer ${await vertexToken()}` },
      body: { contents: [{ parts: [{ text: '[mock chunks=6 drop_after=2] x' }] }] } });
    assert.equal(s.complete, false);
    assert.equal(sse(s.text).length, 2);
  });

  test('requests log records family, path, query, headers and parsed body; reset clears it', async () => {
    await mock.reset();
    await azureClient().chat.completions.create({ model: 'x', messages: [{ role: 'user', content: 'logged' }] });
    await bedrock('converse', converseBody('logged too'));
    const log = await mock.requests();
    assert.deepEqual(log.map((q) => q.family), ['azure', 'bedrock']);
    assert.equal(log[0].body.messages[0].content, 'logged');
    assert.match(log[1].headers.authorization, /^AWS4-HMAC-SHA256 Credential=AKIAMOCK0000EXAMPLE\//);
    await mock.reset();
    assert.deepEqual(await mock.requests(), []);
  });

  test('start.mjs: a separate process, gone when its parent lets go of its stdin', async () => {
    const other = await startProviderMock(config);
    assert.notEqual(other.proc.pid, process.pid);
    assert.equal((await raw('/__mock/requests', { method: 'GET', port: other.port })).status, 200);
    const gone = new Promise((resolve) => other.proc.once('exit', resolve));
    other.proc.stdin.end();
    await gone;
    await other.stop();
  });

  test('unknown route: 404; GET on a provider route: 405', async () => {
    assert.equal((await raw('/v2/nothing', { body: {} })).status, 404);
    assert.equal((await raw('/v1/messages', { method: 'GET' })).status, 405);
  });
});

// --- fault rules by model (faults.mjs) -------------------------------------

describe('fault rules by model', () => {
  const oai = (model, text = 'x', extra = {}) => raw('/v1/chat/completions', { headers: { authorization: `Bearer ${config.openaiKey}` },
    body: { model, messages: [{ role: 'user', content: text }], ...extra } });
  const control = (path, body, method = 'POST') => raw(path, { method, body });

  test('a rule fails its model only, in the provider\'s shape; the next model answers; reset clears the rules', async () => {
    await mock.reset();
    await mock.faults([{ model: 'm-500', status: 500 }, { model: 'm-429', status: 429, retry_after: 1 }]);
    const a = await oai('m-500');
    assert.equal(a.status, 500);
    assert.equal(a.json().error.type, 'server_error');
    const b = await oai('m-429');
    assert.equal(b.status, 429);
    assert.equal(b.json().error.code, 'rate_limit_exceeded');
    assert.equal(b.headers['retry-after'], '1');
    const c = await oai('good');
    assert.equal(c.status, 200);
    assert.equal(c.json().choices[0].message.content, 'Mock reply to: x');
    const log = await mock.requests();
    assert.deepEqual(log.map((q) => q.model), ['m-500', 'm-429', 'good']);
    assert.deepEqual(log.map((q) => q.fault), [0, 1, null]);
    assert.ok(log.every((q) => Number.isInteger(q.time) && Math.abs(q.time - Date.now()) < 60000));
    assert.ok(log.every((q) => Number.isInteger(q.remote_port) && q.remote_port > 0), 'the caller\'s port is logged');
    const state = (await mock.faultRules()).rules;
    assert.deepEqual(state.map((r) => [r.model, r.hits]), [['m-500', 1], ['m-429', 1]]);
    await mock.reset();
    assert.deepEqual((await mock.faultRules()).rules, []);
    assert.deepEqual(await mock.requests(), []);
    assert.equal((await oai('m-500')).status, 200, 'no rule after reset');
  });

  test('times: the first N matching requests only, then the model answers normally', async () => {
    await mock.reset();
    await mock.faults([{ model: 'flaky', status: 503, times: 2 }]);
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await oai('flaky')).status);
    assert.deepEqual(statuses, [503, 503, 200, 200]);
    assert.equal((await oai('other')).status, 200);
    const [rule] = (await mock.faultRules()).rules;
    assert.deepEqual([rule.times, rule.left, rule.hits], [2, 0, 2]);
    // A new POST replaces the rules (and their counts)
    await mock.faults([{ model: 'flaky', status: 502, times: 1 }]);
    assert.deepEqual([(await oai('flaky')).status, (await oai('flaky')).status], [502, 200]);
    await mock.reset();
  });

  test('latency and hang by model; a [mock ...] switch in the text still wins', async () => {
    await mock.reset();
    await mock.faults([{ model: 'slow', latency: 300 }, { model: 'hang', hang: true }, { model: 'm-500', status: 500 }]);
    let t = Date.now();
    assert.equal((await oai('slow')).status, 200);
    assert.ok(Date.now() - t >= 290, 'slow waited');
    t = Date.now();
    assert.equal((await oai('fast')).status, 200);
    assert.ok(Date.now() - t < 250, 'another model did not');
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 300);
    await assert.rejects(raw('/v1/chat/completions', { signal: ac.signal, headers: { authorization: `Bearer ${config.openaiKey}` },
      body: { model: 'hang', messages: [{ role: 'user', content: 'x' }] } }), /abort/i);
    assert.equal((await oai('m-500', '[mock status=200] x')).status, 200, 'the text switch overrides the rule');
    const log = await mock.requests();
    assert.ok(log.some((q) => q.model === 'hang' && q.fault === 1), 'the hung request is logged');
    await mock.reset();
  });

  test('streams: a status rule fails up front; error_after in a rule errors midway', async () => {
    await mock.reset();
    await mock.faults([{ model: 's-500', status: 500 }, { model: 's-mid', error_after: 2, chunks: 5 }]);
    const a = await oai('s-500', 'x', { stream: true });
    assert.equal(a.status, 500);
    const b = await oai('s-mid', 'x', { stream: true });
    assert.equal(b.status, 200);
    const events = sse(b.text);
    assert.equal(events.at(-1).data.error.type, 'server_error');
    assert.equal(events.filter((e) => e.data?.choices?.[0]?.delta?.content).length, 2);
    await mock.reset();
  });

  test('each family matches the model it sees: Anthropic body, Azure deployment, Bedrock and Vertex path', async () => {
    await mock.reset();
    await mock.faults([
      { model: 'claude-fail', status: 529 },
      { model: 'gpt4o', status: 429 },
      { model: CLAUDE, status: 503 },
      { model: 'gemini-fail', status: 429 },
    ]);
    const a = await raw('/v1/messages', { headers: anthropicHeaders(), body: claudeBody('x', { model: 'claude-fail' }) });
    assert.equal(a.status, 529);
    assert.equal(a.json().error.type, 'overloaded_error');
    assert.equal((await raw('/v1/messages', { headers: anthropicHeaders(), body: claudeBody('x') })).status, 200);
    const z = await raw('/openai/deployments/gpt4o/chat/completions?api-version=2024-10-21', { headers: { 'api-key': config.azureKey },
      body: { messages: [{ role: 'user', content: 'x' }] } });
    assert.equal(z.status, 429);
    assert.equal(z.json().error.code, '429');
    const br = await bedrock('converse', converseBody('x'));
    assert.equal(br.status, 503);
    assert.match(br.headers['x-amzn-errortype'], /^ServiceUnavailableException:/);
    assert.equal((await bedrock('converse', converseBody('x'), { model: 'amazon.nova-pro-v1:0' })).status, 200);
    const auth = { authorization: `Bearer ${await vertexToken()}` };
    const g = await raw(vertexPath('google', 'gemini-fail', 'generateContent'), { headers: auth, body: { contents: [{ parts: [{ text: 'x' }] }] } });
    assert.equal(g.status, 429);
    assert.equal(g.json().error.status, 'RESOURCE_EXHAUSTED');
    const log = await mock.requests();
    assert.deepEqual(log.filter((q) => q.path !== '/token').map((q) => q.model),
      ['claude-fail', 'claude-3-5-sonnet-20241022', 'gpt4o', CLAUDE, 'amazon.nova-pro-v1:0', 'gemini-fail']);
    await mock.reset();
  });

  test('bad rules are refused with the member path and the old rules stay', async () => {
    await mock.reset();
    await mock.faults([{ model: 'keep', status: 500 }]);
    for (const [body, want] of [
      [{ rules: [{ status: 500 }] }, /rules\[0\]\.model/],
      [{ rules: [{ model: 'x', status: 99 }] }, /rules\[0\]\.status/],
      [{ rules: [{ model: 'x', times: 0 }] }, /rules\[0\]\.times/],
      [{ rules: [{ model: 'x' }, { model: 'y', nope: 1 }] }, /rules\[1\]\.nope/],
      [{ rules: 'x' }, /rules/],
    ]) {
      const r = await control('/__mock/faults', body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.match(r.json().error, want);
    }
    assert.deepEqual((await mock.faultRules()).rules.map((r) => r.model), ['keep']);
    assert.equal((await oai('keep')).status, 500);
    await mock.reset();
  });

  test('keys: a rotation makes the old key 401 and the new one work', async () => {
    const other = await startProviderMock(config);
    try {
      const call = (key) => raw('/v1/chat/completions', { port: other.port, headers: { authorization: `Bearer ${key}` },
        body: { model: 'm', messages: [{ role: 'user', content: 'x' }] } });
      const fresh = secret('sk-rotated-');
      assert.equal((await call(config.openaiKey)).status, 200);
      const r = await other.rotateKeys({ openaiKey: fresh });
      assert.ok(!JSON.stringify(r).includes(fresh), 'the answer does not echo the key');
      assert.equal((await call(config.openaiKey)).status, 401);
      assert.equal((await call(fresh)).status, 200);
      assert.equal((await raw('/__mock/keys', { port: other.port, body: { nope: 'x' } })).status, 400);
    } finally {
      await other.stop();
    }
  });
});
