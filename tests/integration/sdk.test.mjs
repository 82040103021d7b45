// The official openai SDK works against the gateway by changing only baseURL, with a
// placeholder key: the gateway holds the real one.
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startStack, logged } from './stack.mjs';

let stack;
let gateway; // SDK -> gateway, placeholder key
let direct; // SDK -> mock, the real key
const PLACEHOLDER = 'sk-placeholder-not-the-real-key';
const it = (name, fn) => test(name, logged(() => stack, fn));

before(async () => {
  stack = await startStack();
  gateway = new OpenAI({ baseURL: `${stack.base}/v1`, apiKey: PLACEHOLDER, maxRetries: 0, timeout: 20000 });
  direct = new OpenAI({ baseURL: stack.mock.url, apiKey: stack.mock.key, maxRetries: 0, timeout: 20000 });
});

after(async () => {
  await stack?.stop();
});

const params = (text, extra = {}) => ({
  model: 'gpt-4o-mini',
  messages: [
    { role: 'system', content: 'You are terse.' },
    { role: 'user', content: text },
  ],
  ...extra,
});

// The parts of a completion that must not depend on which way it went.
function essence(completion) {
  assert.equal(completion.object, 'chat.completion');
  return {
    model: completion.model,
    choices: completion.choices.map((c) => ({ index: c.index, message: c.message, finish_reason: c.finish_reason })),
    usage: completion.usage,
  };
}

async function collect(stream) {
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  const text = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
  const finish = chunks.map((c) => c.choices[0]?.finish_reason).filter(Boolean);
  const usages = chunks.filter((c) => c.usage != null).map((c) => c.usage);
  return { chunks, text, finish, usages };
}

it('non-stream create gives the same message, finish_reason and usage as the upstream', async () => {
  const p = params('Tell me about gateways in seven words please');
  const viaGateway = await gateway.chat.completions.create(p);
  const viaDirect = await direct.chat.completions.create(p);
  assert.ok(viaGateway.choices[0].message.content.length > 20, 'a real answer came back');
  assert.deepEqual(essence(viaGateway), essence(viaDirect));
  assert.equal(viaGateway.choices[0].finish_reason, 'stop');
  assert.ok(viaGateway.usage.prompt_tokens > 0 && viaGateway.usage.completion_tokens > 0);

  // finish_reason other than stop survives the trip too.
  const capped = params('one two three four five six seven', { max_tokens: 3 });
  const a = await gateway.chat.completions.create(capped);
  const b = await direct.chat.completions.create(capped);
  assert.equal(a.choices[0].finish_reason, 'length');
  assert.deepEqual(essence(a), essence(b));
});

it('stream create: deltas concatenate to the same text, same finish_reason, no usage unasked', async () => {
  const p = params('Stream me a short answer about message brokers');
  const whole = await direct.chat.completions.create(p);
  const viaGateway = await collect(await gateway.chat.completions.create({ ...p, stream: true }));
  const viaDirect = await collect(await direct.chat.completions.create({ ...p, stream: true }));
  assert.ok(viaGateway.chunks.length >= 3, `several chunks, got ${viaGateway.chunks.length}`);
  assert.equal(viaGateway.text, whole.choices[0].message.content);
  assert.equal(viaGateway.text, viaDirect.text);
  assert.deepEqual(viaGateway.finish, ['stop']);
  assert.deepEqual(viaGateway.finish, viaDirect.finish);
  assert.equal(viaGateway.chunks.length, viaDirect.chunks.length, 'same number of chunks');
  for (const c of viaGateway.chunks) assert.equal(c.object, 'chat.completion.chunk');
  // The gateway asks upstream for usage to record spend; the caller did not ask, so none shows.
  assert.deepEqual(viaDirect.usages, []);
  assert.deepEqual(viaGateway.usages, [], 'the usage chunk the gateway asked for leaked to the caller');
  assert.ok(viaGateway.chunks.every((c) => c.choices.length === 1), 'an empty-choices (usage) chunk leaked');
  // Nor the "usage": null member that asking for usage adds to every chunk upstream.
  assert.ok(viaDirect.chunks.every((c) => !('usage' in c)), 'the mock sent usage members unasked');
  assert.ok(viaGateway.chunks.every((c) => !('usage' in c)), 'a "usage" member leaked to the caller');
});

it('stream create with include_usage gives the same usage as the upstream', async () => {
  const p = params('Count the tokens of this one', { stream: true, stream_options: { include_usage: true } });
  const viaGateway = await collect(await gateway.chat.completions.create(p));
  const viaDirect = await collect(await direct.chat.completions.create(p));
  const whole = await direct.chat.completions.create(params('Count the tokens of this one'));
  assert.equal(viaGateway.text, whole.choices[0].message.content);
  assert.equal(viaGateway.usages.length, 1, 'exactly one usage chunk');
  assert.deepEqual(viaGateway.usages, viaDirect.usages);
  assert.deepEqual(viaGateway.usages[0], whole.usage);
});

it('models.list() works through the gateway', async () => {
  const ids = [];
  for await (const model of gateway.models.list()) ids.push(model.id);
  const want = [];
  for await (const model of direct.models.list()) want.push(model.id);
  assert.ok(ids.includes('gpt-4o-mini'), `models: ${ids}`);
  assert.deepEqual(ids, want);
});

it('the upstream checks the key, and the gateway used the server-held one', async () => {
  // A wrong key straight at the mock fails 401: the mock really checks.
  const wrong = new OpenAI({ baseURL: stack.mock.url, apiKey: PLACEHOLDER, maxRetries: 0 });
  await assert.rejects(() => wrong.chat.completions.create(params('hello')), (err) => {
    assert.equal(err.status, 401);
    assert.ok(err instanceof OpenAI.AuthenticationError);
    return true;
  });

  await stack.mock.clear();
  const r = await gateway.chat.completions.create(params('which key did you see'));
  assert.equal(r.choices[0].message.content, 'Mock reply to: which key did you see');
  const s = await collect(await gateway.chat.completions.create(params('and for a stream', { stream: true })));
  assert.equal(s.text, 'Mock reply to: and for a stream');
  for await (const _ of gateway.models.list()) break;
  const seen = await stack.mock.requests();
  assert.equal(seen.length, 3, `upstream calls: ${JSON.stringify(seen.map((x) => x.path))}`);
  for (const req of seen) {
    assert.equal(req.authorization, `Bearer ${stack.mock.key}`, `${req.method} ${req.path}`);
    assert.ok(!JSON.stringify(req).includes(PLACEHOLDER), 'the placeholder reached the upstream');
  }
});

it('the server-held key is never echoed back to the caller', async () => {
  const raw = await stack.chat(params('echo check'));
  assert.equal(raw.status, 200);
  const everything = raw.text + JSON.stringify(raw.headers);
  assert.ok(!everything.includes(stack.mock.key), 'the provider key appeared in a response');
  assert.ok(!stack.log().includes(stack.mock.key), 'the provider key appeared in a log line');
});
