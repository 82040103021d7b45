// The optimizer end to end: the default pipeline on the chat path (what the upstream sees, the
// headers, the savings rows), runtime settings through the admin API reaching two optimizer
// replicas within a second and surviving a restart, the audit log, and Optimizer Protocol v1
// on the optimizer port as another gateway calls it.
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, logged, sleep, waitFor, randomMarker } from './stack.mjs';
import { assertConforms, violations, loadSchema } from './schema.mjs';

let stack;
const it = (name, fn) => test(name, logged(() => stack, fn));

before(async () => {
  stack = await startStack({ env: { ANYRAY_REPLICAS_OPTIMIZER: '2' } });
});

after(async () => {
  await stack?.stop();
});

// A long conversation: a system prompt, many turns, a tool call and its result in the middle,
// and a last user turn.
function longConversation(marker, turns = 40) {
  const messages = [{ role: 'system', content: `You are terse. ${marker}` }];
  for (let i = 0; i < turns; i++) {
    messages.push({ role: 'user', content: `question ${i} ${marker} ` + 'lorem ipsum dolor sit amet '.repeat(20) });
    if (i === turns / 2) {
      messages.push({ role: 'assistant', content: null,
        tool_calls: [{ id: `call_${i}`, type: 'function', function: { name: 'lookup', arguments: '{"q":"x"}' } }] });
      messages.push({ role: 'tool', tool_call_id: `call_${i}`, content: 'result '.repeat(50) });
    }
    messages.push({ role: 'assistant', content: `answer ${i} ` + 'consectetur adipiscing elit '.repeat(20) });
  }
  messages.push({ role: 'user', content: `the last question ${marker}` });
  return messages;
}

async function putSettings(config, opts) {
  const r = await stack.admin('PUT', '/admin/optimizer/settings', config, opts);
  return r;
}

async function defaultConfig() {
  const r = await stack.admin('GET', '/admin/optimizer/settings');
  assert.equal(r.status, 200, r.text);
  return r.json;
}

it('the default pipeline clamps max_tokens upstream and says so in headers and savings rows', async () => {
  await stack.mock.clear();
  const marker = randomMarker('clamp');
  const r = await stack.chat({ model: 'gpt-4o-mini', max_tokens: 8192,
                               messages: [{ role: 'user', content: `hello ${marker}` }] });
  assert.equal(r.status, 200, r.text);
  const [seen] = await stack.mock.requests();
  assert.equal(JSON.parse(seen.body).max_tokens, 4096, 'the upstream got the clamped value');
  assert.equal(r.headers['x-anyray-optimizations'], 'param_tuning');
  assert.equal(r.headers['x-anyray-tokens-saved'], '0');
  const rid = r.headers['x-anyray-request-id'];
  const row = await stack.spendRow(rid);
  assert.equal(row.optimized, 1);
  const savings = await waitFor('savings rows', () => {
    const rows = stack.sql(`select kind, tokens_before, tokens_after from spend_savings where request_id = '${rid}' order by seq`);
    return rows.length ? rows : null;
  });
  // One row per strategy that ran: the default pipeline's enabled kinds that are built.
  const settings = await defaultConfig();
  const built = new Set(settings.capabilities.kinds.filter((k) => k.available).map((k) => k.kind));
  const ran = settings.config.strategies.filter((s) => s.enabled && built.has(s.kind)).map((s) => s.kind);
  assert.deepEqual(savings.map((s) => s.kind), ran);
  assert.ok(ran.includes('param_tuning') && ran.includes('window_budget'));
  for (const s of savings) assert.ok(s.tokens_before > 0 && s.tokens_after <= s.tokens_before);
  const all = JSON.stringify(stack.sql('select * from spend_savings'));
  assert.ok(!all.includes(marker), 'no content in savings rows');
});

it('a request the pipeline leaves alone reaches the upstream byte for byte, with no optimizations header', async () => {
  await stack.mock.clear();
  const body = `{"model":"gpt-4o-mini",  "messages":[{"role":"user","content":"caf\\u00e9 ${randomMarker()}"}], "temperature": 0.70}`;
  const r = await stack.chat(body);
  assert.equal(r.status, 200, r.text);
  const [seen] = await stack.mock.requests();
  assert.equal(seen.body, body);
  assert.equal(r.headers['x-anyray-optimizations'], undefined);
  assert.equal(r.headers['x-anyray-tokens-saved'], '0');
});

it('the admin API wants its token, compares it whole, and never echoes it', async () => {
  for (const token of [null, '', 'wrong', stack.adminToken.slice(0, -1), stack.adminToken + 'x']) {
    const r = await stack.admin('GET', '/admin/optimizer/settings', undefined, { token });
    assert.equal(r.status, 401, `token ${token}`);
    assert.equal(r.json.error.code, 'invalid_admin_token');
    assert.ok(!r.text.includes(stack.adminToken));
  }
  const settings = await defaultConfig();
  assert.equal(settings.capabilities.kinds.length, 10);
  for (const kind of settings.capabilities.kinds) {
    assert.ok(kind.paramSchema && typeof kind.available === 'boolean', kind.kind);
    assert.ok('defaultParams' in kind, kind.kind);
  }
  assert.deepEqual(settings.config.strategies.map((s) => s.kind),
    ['semantic_cache', 'vision_ocr', 'prompt_compression', 'context_compression', 'code_skeleton',
     'code_graph', 'relevance_filter', 'window_budget', 'tool_pruning', 'param_tuning']);
  // Served on the optimizer port too.
  const r = await stack.admin('GET', '/admin/optimizer/settings', undefined, { base: stack.optimizerBase });
  assert.equal(r.status, 200);
});

it('a bad PUT names the field path and leaves the running config untouched', async () => {
  const before = await defaultConfig();
  const cases = [
    [{ strategies: [{ kind: 'window_budget', enabled: 'yes' }] }, 'strategies[0].enabled'],
    [{ strategies: [{ kind: 'param_tuning', enabled: true, params: { maxTokensCap: -1 } }] }, 'strategies[0].params.maxTokensCap'],
    [{ strategies: [], overrides: { rules: [{ when: { teams: [7] }, disable: ['tool_pruning'] }] } }, 'overrides.rules[0].when.teams[0]'],
    [{ strategies: [{ kind: 'no_such_kind', enabled: true }] }, 'strategies[0].kind'],
    [{ strategies: [], surprise: 1 }, 'surprise'],
  ];
  for (const [config, param] of cases) {
    const r = await putSettings(config);
    assert.equal(r.status, 400, r.text);
    assert.equal(r.json.error.param, param, r.text);
    assert.match(r.json.error.message, new RegExp(param.replace(/[[\].]/g, '\\$&')));
  }
  const r = await putSettings('{"strategies": [');
  assert.equal(r.status, 400);
  const after = await defaultConfig();
  assert.equal(after.version, before.version);
  assert.deepEqual(after.config, before.config);
});

it('a PUT reaches both optimizer replicas within a second, with no restart, and survives one', async (t) => {
  const marker = randomMarker('window');
  const messages = longConversation(marker);
  const body = { model: 'gpt-4o-mini', messages };
  // Before: the default 24000-token budget leaves this conversation whole.
  await stack.mock.clear();
  let r = await stack.chat(body);
  assert.equal(r.status, 200, r.text);
  assert.equal(JSON.parse((await stack.mock.requests())[0].body).messages.length, messages.length);

  const current = await defaultConfig();
  const config = structuredClone(current.config);
  config.strategies.find((s) => s.kind === 'window_budget').params = { maxTokens: 1200 };
  const put = await putSettings({ config }, { headers: { 'x-anyray-admin-actor': 'ops@example' } });
  assert.equal(put.status, 200, put.text);
  assert.equal(put.json.version, current.version + 1);
  const putAt = Date.now();

  // Every call after one second is cropped, whichever replica takes it (20 calls over two
  // replicas: the broker hands out work by free credit, so both take some).
  let firstSeen = null;
  for (;;) {
    await stack.mock.clear();
    r = await stack.chat(body);
    const sent = JSON.parse((await stack.mock.requests())[0].body);
    if (sent.messages.length < messages.length) { firstSeen = Date.now() - putAt; break; }
    assert.ok(Date.now() - putAt < 1000, 'the change did not arrive within 1 s');
    await sleep(20);
  }
  t.diagnostic(`first call with the new config ${firstSeen} ms after the PUT returned`);
  await sleep(Math.max(0, 1000 - (Date.now() - putAt)));
  let stashId;
  for (let i = 0; i < 20; i++) {
    await stack.mock.clear();
    r = await stack.chat(body);
    assert.equal(r.status, 200, r.text);
    const sent = JSON.parse((await stack.mock.requests())[0].body).messages;
    assert.ok(sent.length < messages.length, `call ${i} after 1 s was not cropped`);
    assert.deepEqual(sent[0], messages[0], 'the system prompt is pinned');
    assert.deepEqual(sent.at(-1), messages.at(-1), 'the last user turn is pinned');
    // Tool calls and results stay paired.
    const ids = new Set(sent.flatMap((m) => (m.tool_calls || []).map((c) => c.id)));
    for (const m of sent.filter((m) => m.role === 'tool')) assert.ok(ids.has(m.tool_call_id));
    assert.match(r.headers['x-anyray-optimizations'], /window_budget/);
    assert.ok(Number(r.headers['x-anyray-tokens-saved']) > 1000, r.headers['x-anyray-tokens-saved']);
    const marker = JSON.stringify(sent).match(/retrieve with id ([0-9a-f]{32})/);
    assert.ok(marker, 'the elision marker names a stash id');
    stashId = marker[1];
  }
  // The cropped originals come back through the protocol port.
  const got = await stack.optimizerCall('/v1/retrieve', { id: stashId });
  assert.equal(got.status, 200, got.text);
  assertConforms(assert, 'optimizer/retrieve.response.schema.json', got.json);
  const original = JSON.parse(got.json.content);
  assert.ok(Array.isArray(original) && original.length > 10);
  assert.ok(got.json.content.includes(`question 1 ${marker}`));
  // Stored encrypted: the marker is nowhere in the database file in clear.
  assert.equal(stack.sql(`select count(*) as n from stash where hex(ciphertext) like '%${Buffer.from(marker).toString('hex').toUpperCase()}%'`)[0].n, 0);

  // Restart both optimizers: the stored version is what they come back with.
  for (const index of [0, 1]) {
    const old = stack.pid('optimizer', index);
    stack.signal('optimizer', 'SIGKILL', index);
    await stack.waitNewPid('optimizer', old, { index });
  }
  await waitFor('a cropped call after the restart', async () => {
    await stack.mock.clear();
    const again = await stack.chat(body);
    if (again.status !== 200 || !again.headers['x-anyray-optimizations']) return false;
    return JSON.parse((await stack.mock.requests())[0].body).messages.length < messages.length;
  }, { timeoutMs: 20000, intervalMs: 200 });

  // Put the default back for the tests after this one.
  assert.equal((await putSettings({ config: current.config })).status, 200);
});

it('every change is in the audit log: who, what, when, and never the body', async () => {
  const r = await stack.admin('GET', '/admin/audit?limit=50');
  assert.equal(r.status, 200, r.text);
  const entries = r.json.entries;
  const puts = entries.filter((e) => e.action === 'config.put' && e.target === 'optimizer');
  assert.ok(puts.some((e) => e.actor === 'admin:ops@example'), JSON.stringify(entries.slice(0, 5)));
  assert.ok(puts.every((e) => e.ts_ms > 0 && e.detail.sha256 && e.detail.version > 0));
  assert.ok(entries.some((e) => e.action === 'config.rejected'));
  assert.ok(!r.text.includes('maxTokens"'), 'no config content in the audit log');
  for (let i = 1; i < entries.length; i++) assert.ok(entries[i - 1].ts_ms > entries[i].ts_ms, 'newest first');
  const since = await stack.admin('GET', `/admin/audit?since_ms=${entries[1].ts_ms}`);
  assert.equal(since.json.entries.length, 1);
  assert.equal((await stack.admin('GET', '/admin/audit?limit=0')).status, 400);
});

it('Optimizer Protocol v1 on the optimizer port: optimize, optimize-response, cache, retrieve', async () => {
  const request = { model: 'gpt-4o', max_tokens: 8192, messages: [{ role: 'user', content: 'Summarize this changelog' }] };
  const message = {
    endpoint: '/v1/chat/completions', request, metadata: { user: 'alice', team: 'platform' },
    canShortCircuit: true, budgetMs: 800,
  };
  assertConforms(assert, 'optimizer/optimize.request.schema.json', message);
  let r = await stack.optimizerCall('/v1/optimize', message);
  assert.equal(r.status, 200, r.text);
  assertConforms(assert, 'optimizer/optimize.response.schema.json', r.json);
  assert.equal(r.json.changed, true);
  assert.equal(r.json.cacheHit, false);
  assert.equal(r.json.request.max_tokens, 4096);
  assert.deepEqual(r.json.request.messages, request.messages);
  const tuning = r.json.applied.find((a) => a.kind === 'param_tuning');
  assert.ok(tuning && tuning.changed && tuning.tokensBefore > 0 && typeof tuning.ms === 'number');
  assert.ok(Array.isArray(r.json.skipped));
  assert.ok(r.json.tokensBefore >= r.json.tokensAfter);

  // Anthropic's shape too, inferred from the endpoint.
  r = await stack.optimizerCall('/v1/optimize', {
    endpoint: '/v1/messages',
    request: { model: 'claude-sonnet-4', max_tokens: 9000, system: 'Be brief.', messages: [{ role: 'user', content: 'hi' }] },
  });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.request.max_tokens, 4096);
  assert.equal(r.json.request.system, 'Be brief.');

  // Wrong messages: 400 naming the member, in the protocol's error shape.
  for (const [body, param] of [
    [{ request }, 'endpoint'],
    [{ endpoint: '/v1/chat/completions', request, budgetMs: 'soon' }, 'budgetMs'],
    [{ endpoint: '/v1/chat/completions', request, extra: 1 }, 'extra'],
    [{ endpoint: '/v1/chat/completions', request: { messages: 'no' } }, 'request'],
  ]) {
    r = await stack.optimizerCall('/v1/optimize', body);
    assert.equal(r.status, 400, r.text);
    assertConforms(assert, 'optimizer/error.schema.json', r.json);
    // What the server refuses, the published schema refuses too (the request one is the
    // provider's business, not the schema's).
    if (param !== 'request')
      assert.ok(violations(loadSchema('optimizer/optimize.request.schema.json'), body).length > 0, param);
    assert.equal(r.json.error.param, param);
    assert.equal(r.json.error.type, 'invalid_request_error');
  }
  r = await stack.optimizerCall('/v1/optimize', '{"endpoint": "/v1/chat/completions", "request": {');
  assert.equal(r.status, 400);

  const responseMessage = { endpoint: '/v1/chat/completions', request, response: { id: 'chatcmpl-1', choices: [] } };
  assertConforms(assert, 'optimizer/optimize-response.request.schema.json', responseMessage);
  r = await stack.optimizerCall('/v1/optimize-response', responseMessage);
  assert.equal(r.status, 200, r.text);
  assertConforms(assert, 'optimizer/optimize-response.response.schema.json', r.json);
  assert.deepEqual(r.json, { changed: false, applied: [], skipped: [], response: { id: 'chatcmpl-1', choices: [] } });
  const cacheMessage = { endpoint: '/v1/chat/completions', request, response: {}, ttlSeconds: 60 };
  assertConforms(assert, 'optimizer/cache.request.schema.json', cacheMessage);
  r = await stack.optimizerCall('/v1/cache', cacheMessage);
  assert.equal(r.status, 200, r.text);
  assertConforms(assert, 'optimizer/cache.response.schema.json', r.json);
  assert.equal(r.json.stored, false);
  r = await stack.optimizerCall('/v1/retrieve', { id: '0123456789abcdef0123456789abcdef' });
  assert.equal(r.status, 404, r.text);
  assertConforms(assert, 'optimizer/error.schema.json', r.json);
  assert.equal(r.json.error.param, 'id');

  // The protocol port is not the SDK surface, and the SDK port is not the protocol.
  r = await stack.optimizerCall('/v1/chat/completions', { model: 'x', messages: [] });
  assert.equal(r.status, 404);
  r = await stack.chat({ endpoint: '/v1/chat/completions', request }, { path: '/v1/optimize' });
  assert.equal(r.status, 404);
});

it('admin stats count the pipeline per strategy', async () => {
  const r = await stack.admin('GET', '/admin/optimizer/stats');
  assert.equal(r.status, 200, r.text);
  assert.ok(r.json.calls > 0 && r.json.answered > 0);
  assert.ok(r.json.strategies.param_tuning.runs > 0 && r.json.strategies.param_tuning.changed > 0);
  assert.ok(r.json.strategies.window_budget.tokensSaved > 1000);
  assert.equal(typeof r.json.failOpen.total, 'number');
  assert.ok(r.json.configVersion >= 3);
});

it("the Configure page's two targeting rules behave as the page says", async () => {
  const current = await defaultConfig();
  const config = structuredClone(current.config);
  config.overrides.rules = [
    { when: { teams: ['platform'], models: ['gpt-4o*'] }, disable: ['prompt_compression'] },
    { when: { endpoints: ['/v1/embeddings'] }, enable: ['semantic_cache'], params: { semantic_cache: { threshold: 0.95 } } },
  ];
  assert.equal((await putSettings(config)).status, 200);
  await sleep(1000); // the promise: every replica has it within a second
  const request = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] };
  // The kinds that ran for a request (applied or skipped by the runner).
  const ranKinds = async (metadata, model = 'gpt-4o-mini') => {
    const r = await stack.optimizerCall('/v1/optimize', { endpoint: '/v1/chat/completions', request: { ...request, model }, metadata });
    assert.equal(r.status, 200, r.text);
    return [...r.json.applied, ...r.json.skipped].map((s) => s.kind);
  };
  // Rule 1: both matchers must match (team platform AND a gpt-4o* model) to drop it.
  assert.ok(!(await ranKinds({ team: 'platform' })).includes('prompt_compression'));
  assert.ok((await ranKinds({ team: 'search' })).includes('prompt_compression'));
  assert.ok((await ranKinds({ team: 'platform' }, 'o3-mini')).includes('prompt_compression'));
  assert.ok((await ranKinds({})).includes('prompt_compression'));
  // The same identity through the gateway's own x-anyray-metadata header reaches the rules:
  // the stats count a prompt_compression run only for the call that is not platform.
  const count = async () => {
    const row = (await stack.admin('GET', '/admin/optimizer/stats')).json.strategies.prompt_compression;
    return row ? row.runs + row.unavailable : 0;
  };
  const before = await count();
  await stack.chat({ ...request, model: 'gpt-4o' }, { headers: { 'x-anyray-metadata': JSON.stringify({ team: 'platform' }) } });
  assert.equal(await count(), before);
  await stack.chat({ ...request, model: 'gpt-4o' }, { headers: { 'x-anyray-metadata': JSON.stringify({ team: 'search' }) } });
  assert.equal(await count(), before + 1);
  // Rule 2: semantic_cache is on for /v1/embeddings only (write-back says which).
  const cache = async (endpoint) => (await stack.optimizerCall('/v1/cache', { endpoint, shape: 'openai.chat', request, response: {} })).json;
  assert.match((await cache('/v1/embeddings')).reason, /not available/);
  assert.match((await cache('/v1/chat/completions')).reason, /not enabled/);
  assert.equal((await putSettings({ config: current.config })).status, 200);
});

it('with retrieveTool on, the model fetches an elided original and the caller sees only the answer', async () => {
  const current = await defaultConfig();
  const config = structuredClone(current.config);
  config.strategies.find((s) => s.kind === 'window_budget').params = { maxTokens: 1200 };
  config.retrieveTool = { enabled: true, maxCalls: 2 };
  assert.equal((await putSettings(config)).status, 200);
  await sleep(1000);
  const marker = randomMarker('expand');
  const messages = longConversation(marker);
  messages.at(-1).content = `[mock tool=anyray_retrieve] ${messages.at(-1).content}`;

  await stack.mock.clear();
  const r = await stack.chat({ model: 'gpt-4o-mini', messages });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers['x-anyray-retrieved'], '1');
  // The caller gets the final answer, built from the retrieved original, and no tool call.
  const message = r.json.choices[0].message;
  assert.ok(!message.tool_calls, JSON.stringify(message));
  assert.match(message.content, /^Mock reply to tool result: \[\{"role":"assistant","content":"answer 0 /);
  // Upstream saw two rounds: the first offered the tool; the second carried the call and the
  // stashed original as the tool result.
  const seen = (await stack.mock.requests()).map((q) => JSON.parse(q.body));
  assert.equal(seen.length, 2);
  assert.ok(seen[0].tools.some((t) => t.function.name === 'anyray_retrieve'));
  const last = seen[1].messages.at(-1);
  assert.equal(last.role, 'tool');
  assert.ok(last.content.includes(`question 1 ${marker}`));
  assert.equal(seen[1].messages.at(-2).tool_calls[0].function.name, 'anyray_retrieve');
  // Usage adds up both rounds in the spend row.
  const row = await stack.spendRow(r.headers['x-anyray-request-id']);
  assert.ok(row.input_tokens >= r.json.usage.prompt_tokens, JSON.stringify(row));

  // Streams are never offered the tool.
  await stack.mock.clear();
  const streamed = await stack.chat({ model: 'gpt-4o-mini', messages, stream: true });
  assert.equal(streamed.status, 200);
  const [upstream] = (await stack.mock.requests()).map((q) => JSON.parse(q.body));
  assert.ok(!(upstream.tools || []).some((t) => t.function.name === 'anyray_retrieve'));
  assert.equal((await putSettings({ config: current.config })).status, 200);
  await sleep(1000);
  // Off again: no tool offered.
  await stack.mock.clear();
  const off = await stack.chat({ model: 'gpt-4o-mini', messages });
  assert.equal(off.status, 200);
  const [plain] = (await stack.mock.requests()).map((q) => JSON.parse(q.body));
  assert.ok(!plain.tools, 'no tool without retrieveTool');
  assert.equal(off.headers['x-anyray-retrieved'], undefined);
});
