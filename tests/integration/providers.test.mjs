// Every provider family natively, through both official SDKs with only their base URL changed
// (issue 5's acceptance): the openai and @anthropic-ai/sdk packages each complete a non-stream
// call, a streamed call and a tool-use round trip against OpenAI, Azure OpenAI, Anthropic,
// Bedrock (Converse, and InvokeModel for Claude), and Vertex AI (Claude and Gemini), each
// through the provider mock (tests/mock/providers), which checks keys, SigV4 signatures and
// service-account JWTs the way the real providers do. Then errors in the caller's shape,
// usage in the spend rows, and OpenAI beyond chat (embeddings, completions, responses).
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { startStack, logged, waitFor } from './stack.mjs';
import { startProviderMock } from '../mock/providers/start.mjs';

const hex = (n) => randomBytes(n).toString('hex');
const KEYS = {
  openai: `sk-openai-${hex(12)}`,
  anthropic: `sk-ant-${hex(12)}`,
  azure: `az-${hex(16)}`,
  aws: { accessKeyId: `AKIA${hex(8).toUpperCase()}`, secretAccessKey: hex(20), region: 'us-west-2' },
};
const PLACEHOLDER = 'sk-placeholder-not-a-real-key';
const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });

let mock;
let stack;
const it = (name, fn) => test(name, logged(() => stack, fn));

// The families: the provider slug, the model, and where the mock must see the call.
const FAMILIES = [
  { name: 'openai', provider: 'openai', model: 'gpt-4o-mini', route: /^\/v1\/chat\/completions$/ },
  { name: 'azure-openai', provider: 'azure-openai', model: 'prod-4o', route: /^\/openai\/deployments\/prod-4o\/chat\/completions$/ },
  { name: 'anthropic', provider: 'anthropic', model: 'claude-sonnet-4-5', route: /^\/v1\/messages$/ },
  { name: 'bedrock converse', provider: 'bedrock', model: 'amazon.nova-pro-v1:0', route: /^\/model\/amazon\.nova-pro-v1(%3A|:)0\/converse(-stream)?$/ },
  { name: 'bedrock claude', provider: 'bedrock', model: 'anthropic.claude-3-5-sonnet-20240620-v1:0', route: /^\/model\/anthropic\.claude-3-5-sonnet-20240620-v1(%3A|:)0\/(invoke|converse)/ },
  { name: 'vertex claude', provider: 'google-vertex-ai', model: 'claude-sonnet-4-5@20250929', route: /publishers\/anthropic\/models\/claude-sonnet-4-5(@|%40)20250929:(stream)?[rR]awPredict$/ },
  { name: 'vertex gemini', provider: 'google-vertex-ai', model: 'gemini-2.5-pro', route: /publishers\/google\/models\/gemini-2\.5-pro:(stream)?[gG]enerateContent$/ },
];

before(async () => {
  mock = await startProviderMock({
    openaiKey: KEYS.openai,
    anthropicKey: KEYS.anthropic,
    azureKey: KEYS.azure,
    azureDeployments: { 'prod-4o': 'gpt-4o-2024-08-06' },
    aws: KEYS.aws,
    vertex: { publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }), clientEmail: 'gw@proj-1.iam.gserviceaccount.com', project: 'proj-1', location: 'us-east5' },
  });
  const account = {
    type: 'service_account', project_id: 'proj-1', private_key_id: hex(20),
    private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }),
    client_email: 'gw@proj-1.iam.gserviceaccount.com', token_uri: `${mock.url}/token`,
  };
  stack = await startStack({
    env: {
      ANYRAY_PROVIDER_URL_OPENAI: `${mock.url}/v1`, ANYRAY_PROVIDER_KEY_OPENAI: KEYS.openai,
      ANYRAY_PROVIDER_URL_ANTHROPIC: `${mock.url}/v1`, ANYRAY_PROVIDER_KEY_ANTHROPIC: KEYS.anthropic,
      ANYRAY_PROVIDER_URL_AZURE_OPENAI: mock.url, ANYRAY_PROVIDER_KEY_AZURE_OPENAI: KEYS.azure,
      ANYRAY_AZURE_API_VERSION: '2024-10-21',
      ANYRAY_PROVIDER_URL_BEDROCK: mock.url, ANYRAY_BEDROCK_REGION: KEYS.aws.region,
      ANYRAY_PROVIDER_KEY_BEDROCK: `${KEYS.aws.accessKeyId}:${KEYS.aws.secretAccessKey}`,
      ANYRAY_PROVIDER_URL_GOOGLE_VERTEX_AI: mock.url, ANYRAY_VERTEX_LOCATION: 'us-east5',
      ANYRAY_PROVIDER_KEY_GOOGLE_VERTEX_AI: JSON.stringify(account),
    },
  });
});

after(async () => {
  await stack?.stop();
  await mock?.stop();
});

const openaiFor = (family) => new OpenAI({
  baseURL: `${stack.base}/v1`, apiKey: PLACEHOLDER, maxRetries: 0, timeout: 20000,
  defaultHeaders: { 'x-anyray-provider': family.provider },
});
const anthropicFor = (family) => new Anthropic({
  baseURL: stack.base, apiKey: PLACEHOLDER, maxRetries: 0, timeout: 20000,
  defaultHeaders: { 'x-anyray-provider': family.provider },
});

// What the mock saw since the last reset, for this family's route.
async function seen(family) {
  const all = await mock.requests();
  return all.filter((r) => family.route.test(r.path));
}

// Where each upstream shape keeps the system prompt: the translation put it there.
function systemOf(body) {
  if (body.systemInstruction) return body.systemInstruction.parts.map((p) => p.text).join('');
  if (Array.isArray(body.system)) return body.system.map((b) => b.text).join('');
  if (typeof body.system === 'string') return body.system;
  return body.messages?.find((m) => m.role === 'system' || m.role === 'developer')?.content;
}

const WEATHER_OPENAI = [{ type: 'function', function: { name: 'get_weather', description: 'Weather for a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } }];
const WEATHER_ANTHROPIC = [{ name: 'get_weather', description: 'Weather for a city', input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } }];

for (const family of FAMILIES) {
  // --- the openai SDK ---
  it(`openai SDK, ${family.name}: non-stream`, async () => {
    await mock.reset();
    const r = await openaiFor(family).chat.completions.create({
      model: family.model, max_tokens: 64,
      messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'hello from openai sdk' }],
    });
    assert.equal(r.object, 'chat.completion');
    assert.match(r.choices[0].message.content, /Mock reply to: hello from openai sdk/);
    assert.equal(r.choices[0].finish_reason, 'stop');
    assert.ok(r.usage.prompt_tokens > 0 && r.usage.completion_tokens > 0);
    const calls = await seen(family);
    assert.equal(calls.length, 1, `the mock saw the call at ${family.route}`);
    assert.ok(!JSON.stringify(calls[0].headers).includes(PLACEHOLDER), 'the server-held credential went, not the caller\'s');
    // The system prompt arrived where the upstream's own API puts it.
    assert.equal(systemOf(calls[0].body), 'Be brief.', `system prompt in ${JSON.stringify(calls[0].body)}`);
  });

  it(`openai SDK, ${family.name}: stream`, async () => {
    const stream = await openaiFor(family).chat.completions.create({
      model: family.model, max_tokens: 64, stream: true, stream_options: { include_usage: true },
      messages: [{ role: 'user', content: 'stream me please' }],
    });
    let text = '';
    const finish = [];
    let usage = null;
    let chunks = 0;
    for await (const chunk of stream) {
      chunks++;
      text += chunk.choices[0]?.delta?.content ?? '';
      if (chunk.choices[0]?.finish_reason) finish.push(chunk.choices[0].finish_reason);
      if (chunk.usage) usage = chunk.usage;
    }
    assert.match(text, /Mock reply to: stream me please/);
    assert.ok(chunks >= 3, 'several chunks, not one buffered body');
    assert.deepEqual(finish, ['stop']);
    assert.ok(usage && usage.prompt_tokens > 0 && usage.completion_tokens > 0, 'the usage chunk asked for');
  });

  it(`openai SDK, ${family.name}: tool-use round trip`, async () => {
    const client = openaiFor(family);
    const messages = [{ role: 'user', content: '[mock tool=get_weather] weather in Paris?' }];
    const first = await client.chat.completions.create({ model: family.model, max_tokens: 64, messages, tools: WEATHER_OPENAI });
    const call = first.choices[0].message.tool_calls?.[0];
    assert.ok(call, 'a tool call came back');
    assert.equal(first.choices[0].finish_reason, 'tool_calls');
    assert.equal(call.function.name, 'get_weather');
    assert.doesNotThrow(() => JSON.parse(call.function.arguments));
    messages.push(first.choices[0].message, { role: 'tool', tool_call_id: call.id, content: 'sunny, 21 C' });
    const second = await client.chat.completions.create({ model: family.model, max_tokens: 64, messages, tools: WEATHER_OPENAI });
    assert.match(second.choices[0].message.content, /Mock reply to tool result: .*sunny, 21 C/);
    // Streamed tool calls are assembled by the SDK's own stream helper.
    const stream = client.chat.completions.stream({ model: family.model, max_tokens: 64, messages: [messages[0]], tools: WEATHER_OPENAI });
    const final = await stream.finalChatCompletion();
    assert.equal(final.choices[0].message.tool_calls?.[0]?.function?.name, 'get_weather');
  });

  // --- the Anthropic SDK ---
  it(`anthropic SDK, ${family.name}: non-stream`, async () => {
    await mock.reset();
    const m = await anthropicFor(family).messages.create({
      model: family.model, max_tokens: 64, system: 'Be brief.',
      messages: [{ role: 'user', content: 'hello from anthropic sdk' }],
    });
    assert.equal(m.type, 'message');
    assert.equal(m.role, 'assistant');
    assert.match(m.content.find((b) => b.type === 'text').text, /Mock reply to: hello from anthropic sdk/);
    assert.equal(m.stop_reason, 'end_turn');
    assert.ok(m.usage.input_tokens > 0 && m.usage.output_tokens > 0);
    const calls = await seen(family);
    assert.equal(calls.length, 1, `the mock saw the call at ${family.route}`);
    assert.ok(!JSON.stringify(calls[0].headers).includes(PLACEHOLDER));
    assert.equal(systemOf(calls[0].body), 'Be brief.');
    // Claude on Bedrock and Vertex: the model in the URL, the API version in the body.
    if (/invoke|rawPredict/i.test(calls[0].path)) {
      assert.equal(calls[0].body.model, undefined);
      assert.match(calls[0].body.anthropic_version, /^(bedrock-2023-05-31|vertex-2023-10-16)$/);
    }
  });

  it(`anthropic SDK, ${family.name}: stream`, async () => {
    const stream = anthropicFor(family).messages.stream({
      model: family.model, max_tokens: 64, messages: [{ role: 'user', content: 'stream me please' }],
    });
    const types = [];
    stream.on('streamEvent', (e) => types.push(e.type));
    const m = await stream.finalMessage();
    assert.match(m.content[0].text, /Mock reply to: stream me please/);
    assert.equal(m.stop_reason, 'end_turn');
    assert.ok(m.usage.output_tokens > 0);
    assert.equal(types[0], 'message_start');
    assert.equal(types.at(-1), 'message_stop');
    assert.ok(types.filter((t) => t === 'content_block_delta').length >= 2, 'deltas as they came');
  });

  it(`anthropic SDK, ${family.name}: tool-use round trip`, async () => {
    const client = anthropicFor(family);
    const messages = [{ role: 'user', content: '[mock tool=get_weather] weather in Paris?' }];
    const first = await client.messages.create({ model: family.model, max_tokens: 64, messages, tools: WEATHER_ANTHROPIC });
    assert.equal(first.stop_reason, 'tool_use');
    const use = first.content.find((b) => b.type === 'tool_use');
    assert.ok(use && use.name === 'get_weather' && typeof use.input === 'object');
    messages.push({ role: 'assistant', content: first.content },
                  { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: 'sunny, 21 C' }] });
    const second = await client.messages.create({ model: family.model, max_tokens: 64, messages, tools: WEATHER_ANTHROPIC });
    assert.match(second.content.find((b) => b.type === 'text').text, /Mock reply to tool result: .*sunny, 21 C/);
    const streamed = await client.messages.stream({ model: family.model, max_tokens: 64, messages: [messages[0]], tools: WEATHER_ANTHROPIC }).finalMessage();
    assert.equal(streamed.content.find((b) => b.type === 'tool_use')?.name, 'get_weather');
  });
}

it('spend rows carry each provider, model and usage', async () => {
  for (const family of FAMILIES) {
    const rows = await waitFor(`${family.name}'s spend rows`, () => {
      const found = stack.spendRows(`provider = '${family.provider}' AND model = '${family.model}' AND status = 200`);
      return found.length >= 8 && found;
    });
    for (const row of rows) assert.ok(row.input_tokens > 0 && row.output_tokens > 0, `${family.name} usage in ${JSON.stringify(row)}`);
  }
  const endpoints = new Set(stack.spendRows('1=1').map((r) => r.endpoint));
  assert.ok(endpoints.has('/v1/messages') && endpoints.has('/v1/chat/completions'));
});

// --- errors come back in the caller's shape, with the right status ---
for (const family of FAMILIES) {
  it(`errors from ${family.name} reach each SDK as its own error class`, async () => {
    await assert.rejects(
      openaiFor(family).chat.completions.create({ model: family.model, messages: [{ role: 'user', content: '[mock status=429] slow down' }] }),
      (err) => err instanceof OpenAI.RateLimitError && err.status === 429 && typeof err.message === 'string');
    await assert.rejects(
      anthropicFor(family).messages.create({ model: family.model, max_tokens: 16, messages: [{ role: 'user', content: '[mock status=429] slow down' }] }),
      (err) => err instanceof Anthropic.RateLimitError && err.status === 429 && err.error?.type === 'error');
    await assert.rejects(
      anthropicFor(family).messages.create({ model: family.model, max_tokens: 16, messages: [{ role: 'user', content: '[mock status=400] bad' }] }),
      (err) => err instanceof Anthropic.BadRequestError && err.error?.error?.type === 'invalid_request_error');
  });
}

it('bad input gets the caller\'s error shape: wrong shape for the endpoint, unsupported endpoint, missing members', async () => {
  // Anthropic body without max_tokens at /v1/messages: Anthropic's shape, 400.
  let r = await stack.chat({ model: 'claude-x', messages: [{ role: 'user', content: 'x' }] }, { path: '/v1/messages' });
  assert.equal(r.status, 400);
  assert.equal(r.json.type, 'error');
  assert.equal(r.json.error.type, 'invalid_request_error');
  // An OpenAI chat body at /v1/messages is missing max_tokens too; Anthropic-shaped.
  r = await stack.chat({ model: 'claude-x', max_tokens: 5, messages: 'not an array' }, { path: '/v1/messages' });
  assert.equal(r.status, 400);
  assert.equal(r.json.error.type, 'invalid_request_error');
  // Embeddings cannot go to Anthropic: OpenAI-shaped 400 naming the provider.
  r = await stack.chat({ model: 'e', input: 'x' }, { path: '/v1/embeddings', headers: { 'x-anyray-provider': 'anthropic' } });
  assert.equal(r.status, 400);
  assert.match(r.json.error.message, /anthropic/);
  // count_tokens to Bedrock: Anthropic-shaped refusal.
  r = await stack.chat({ model: 'anthropic.claude-3-5-sonnet-20240620-v1:0', messages: [{ role: 'user', content: 'x' }] },
                       { path: '/v1/messages/count_tokens', headers: { 'x-anyray-provider': 'bedrock' } });
  assert.equal(r.status, 400);
  assert.equal(r.json.type, 'error');
  // A request the target cannot express: n > 1 to Anthropic.
  r = await stack.chat({ model: 'claude-x', n: 2, messages: [{ role: 'user', content: 'x' }] }, { headers: { 'x-anyray-provider': 'anthropic' } });
  assert.equal(r.status, 400);
  assert.equal(r.json.error.param, 'n');
});

it('a 429 keeps the provider\'s retry-after, whatever the caller\'s shape', async () => {
  for (const family of [FAMILIES[0], FAMILIES[2]]) {
    const r = await stack.chat({ model: family.model, messages: [{ role: 'user', content: '[mock status=429 retry_after=7] x' }] },
                               { headers: { 'x-anyray-provider': family.provider } });
    assert.equal(r.status, 429);
    assert.equal(r.headers['retry-after'], '7', family.name);
  }
});

it('a model the provider does not serve: its error, in the caller\'s shape', async () => {
  await assert.rejects(
    openaiFor(FAMILIES[2]).chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] }),
    (err) => err instanceof OpenAI.NotFoundError && err.status === 404 && /gpt-4o/.test(err.message));
  await assert.rejects(
    anthropicFor(FAMILIES[3]).messages.create({ model: 'not a model id', max_tokens: 8, messages: [{ role: 'user', content: 'x' }] }),
    (err) => err instanceof Anthropic.BadRequestError && /model identifier is invalid/.test(err.message));
  await assert.rejects(
    openaiFor(FAMILIES[6]).chat.completions.create({ model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'x' }] }),
    (err) => err instanceof OpenAI.NotFoundError && /not found/.test(err.message));
});

it('count_tokens through Anthropic and Vertex', async () => {
  const body = { model: 'claude-sonnet-4-5', messages: [{ role: 'user', content: 'count these words please' }] };
  const anthropic = await anthropicFor(FAMILIES[2]).messages.countTokens(body);
  assert.ok(anthropic.input_tokens > 0);
  // Vertex counts Claude tokens at its own count-tokens model; the answer is Anthropic's shape.
  await mock.reset();
  const vertex = await anthropicFor(FAMILIES[5]).messages.countTokens({ ...body, model: FAMILIES[5].model });
  assert.equal(vertex.input_tokens, anthropic.input_tokens);
  const calls = (await mock.requests()).filter((r) => /count-tokens:rawPredict$/.test(r.path));
  assert.equal(calls.length, 1);
  assert.equal(calls[0].body.anthropic_version, 'vertex-2023-10-16');
});

it('OpenAI beyond chat: embeddings, completions (streamed too), responses (streamed too)', async () => {
  const client = openaiFor(FAMILIES[0]);
  const e = await client.embeddings.create({ model: 'text-embedding-3-small', input: ['alpha', 'beta'] });
  assert.equal(e.data.length, 2);
  assert.equal(e.data[0].embedding.length, 1536);
  const c = await client.completions.create({ model: 'gpt-3.5-turbo-instruct', prompt: 'say hi', max_tokens: 8 });
  assert.match(c.choices[0].text, /Mock reply to/);
  let streamed = '';
  for await (const chunk of await client.completions.create({ model: 'gpt-3.5-turbo-instruct', prompt: 'say hi', max_tokens: 8, stream: true }))
    streamed += chunk.choices[0]?.text ?? '';
  assert.match(streamed, /Mock reply to/);
  const resp = await client.responses.create({ model: 'gpt-4.1', input: 'hello responses' });
  assert.match(resp.output_text, /Mock reply to: hello responses/);
  const rs = client.responses.stream({ model: 'gpt-4.1', input: 'stream responses' });
  const final = await rs.finalResponse();
  const text = final.output.flatMap((item) => item.content ?? []).map((part) => part.text ?? '').join('');
  assert.match(text, /Mock reply to: stream responses/);
  // Azure too, for embeddings.
  const az = await openaiFor(FAMILIES[1]).embeddings.create({ model: 'prod-4o', input: 'alpha' });
  assert.equal(az.data.length, 1);
  // Spend rows are written after the answer: wait for both, streamed and not, with usage.
  const rows = await waitFor('the two /v1/responses spend rows', () => {
    const found = stack.spendRows(`endpoint = '/v1/responses'`);
    return found.length >= 2 && found;
  });
  assert.ok(rows.every((row) => row.input_tokens > 0 && row.output_tokens > 0), JSON.stringify(rows));
});
