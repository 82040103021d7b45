// The mock upstream answers with tool calls the way the real API does ("[mock tool=NAME]"),
// quotes a tool result back, and refuses tool messages that do not pair with a call.
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { startMock, request, sseData, assertOpenAIError } from './stack.mjs';

let mock;

before(async () => {
  mock = await startMock();
});

after(async () => {
  await mock?.stop();
});

const DOC_ID = '0123456789abcdef0123456789abcdef';
const TOOLS = [
  { type: 'function',
    function: { name: 'lookup', description: 'Fetch a document',
                parameters: { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] } } },
  { type: 'function', function: { name: 'ping', parameters: { type: 'object', properties: {} } } },
  { type: 'function', function: { name: 'ar_retrieve' } },
];

function chat(body) {
  return request(`${mock.url}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${mock.key}` },
    body: JSON.stringify({ model: 'gpt-4o-mini', ...body }),
  });
}

// A conversation in which the system message offers a document to retrieve
function asking(tool, extra = []) {
  return [
    { role: 'system', content: `Long text elided; retrieve with id ${DOC_ID} to read it.` },
    { role: 'user', content: `[mock tool=${tool}] what does the document say?` },
    ...extra,
  ];
}

function callTurn(id, name = 'lookup') {
  return { role: 'assistant', content: null,
           tool_calls: [{ id, type: 'function', function: { name, arguments: `{"id":"${DOC_ID}"}` } }] };
}

function assertToolCallMessage(message, name, args) {
  assert.deepEqual(Object.keys(message), ['role', 'content', 'tool_calls', 'refusal', 'annotations']);
  assert.equal(message.role, 'assistant');
  assert.equal(message.content, null);
  assert.equal(message.refusal, null);
  assert.deepEqual(message.annotations, []);
  assert.equal(message.tool_calls.length, 1);
  const call = message.tool_calls[0];
  assert.deepEqual(Object.keys(call), ['id', 'type', 'function']);
  assert.match(call.id, /^call_[A-Za-z0-9]{24}$/);
  assert.equal(call.type, 'function');
  assert.deepEqual(call.function, { name, arguments: args });
  return call;
}

test('non-stream: a tool call with the id found after "retrieve with id "', async () => {
  const res = await chat({ messages: asking('lookup'), tools: TOOLS });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json.object, 'chat.completion');
  const choice = res.json.choices[0];
  assert.equal(choice.finish_reason, 'tool_calls');
  const call = assertToolCallMessage(choice.message, 'lookup', `{"id":"${DOC_ID}"}`);
  assert.deepEqual(JSON.parse(call.function.arguments), { id: DOC_ID });
  const u = res.json.usage;
  assert.ok(u.completion_tokens > 0 && u.total_tokens === u.prompt_tokens + u.completion_tokens);
  // A second call gets a fresh id
  const again = await chat({ messages: asking('lookup'), tools: TOOLS });
  assert.notEqual(again.json.choices[0].message.tool_calls[0].id, call.id);
});

test('arguments: {} without an "id" property; {"id":...} for a *retrieve* name; "" when no id is given', async () => {
  let res = await chat({ messages: asking('ping'), tools: TOOLS });
  assertToolCallMessage(res.json.choices[0].message, 'ping', '{}');
  res = await chat({ messages: asking('ar_retrieve'), tools: TOOLS });
  assertToolCallMessage(res.json.choices[0].message, 'ar_retrieve', `{"id":"${DOC_ID}"}`);
  res = await chat({ messages: [{ role: 'user', content: '[mock tool=lookup] no id here' }], tools: TOOLS });
  assertToolCallMessage(res.json.choices[0].message, 'lookup', '{"id":""}');
});

test('no call when the tool is not offered, or tool_choice is "none": plain text', async () => {
  for (const body of [{ messages: asking('absent'), tools: TOOLS },
                      { messages: asking('lookup') },
                      { messages: asking('lookup'), tools: TOOLS, tool_choice: 'none' }]) {
    const res = await chat(body);
    assert.equal(res.status, 200, res.text);
    const choice = res.json.choices[0];
    assert.equal(choice.finish_reason, 'stop');
    assert.equal(choice.message.content, 'Mock reply to: what does the document say?');
    assert.equal(choice.message.tool_calls, undefined);
  }
});

test('stream: the real chunk sequence for a tool call, then usage and [DONE]', async () => {
  const res = await chat({ messages: asking('lookup'), tools: TOOLS, stream: true,
                           stream_options: { include_usage: true } });
  assert.equal(res.status, 200, res.text);
  assert.match(res.headers['content-type'], /text\/event-stream/);
  const data = sseData(res.text);
  assert.equal(data.at(-1), '[DONE]');
  const chunks = data.slice(0, -1).map((d) => JSON.parse(d));
  for (const c of chunks) assert.equal(c.object, 'chat.completion.chunk');
  assert.equal(new Set(chunks.map((c) => c.id)).size, 1, 'one id for the whole stream');

  const first = chunks[0].choices[0];
  assert.equal(first.finish_reason, null);
  assert.deepEqual(Object.keys(first.delta), ['role', 'content', 'tool_calls', 'refusal']);
  assert.equal(first.delta.role, 'assistant');
  assert.equal(first.delta.content, null);
  assert.equal(first.delta.refusal, null);
  assert.equal(first.delta.tool_calls.length, 1);
  const head = first.delta.tool_calls[0];
  assert.match(head.id, /^call_[A-Za-z0-9]{24}$/);
  assert.deepEqual({ ...head, id: 'x' },
                   { index: 0, id: 'x', type: 'function', function: { name: 'lookup', arguments: '' } });

  const usage = chunks.at(-1);
  assert.deepEqual(usage.choices, []);
  const finish = chunks.at(-2).choices[0];
  assert.deepEqual(finish.delta, {});
  assert.equal(finish.finish_reason, 'tool_calls');

  const pieces = chunks.slice(1, -2).map((c) => {
    const ch = c.choices[0];
    assert.equal(ch.finish_reason, null);
    assert.deepEqual(Object.keys(ch.delta), ['tool_calls']);
    assert.equal(ch.delta.tool_calls.length, 1);
    const tc = ch.delta.tool_calls[0];
    assert.deepEqual(Object.keys(tc), ['index', 'function']);
    assert.equal(tc.index, 0);
    assert.deepEqual(Object.keys(tc.function), ['arguments']);
    return tc.function.arguments;
  });
  assert.ok(pieces.length >= 3, `arguments come in several pieces: ${JSON.stringify(pieces)}`);
  assert.equal(pieces.join(''), `{"id":"${DOC_ID}"}`);
  assert.equal(usage.usage.completion_tokens, pieces.length);
  for (const c of chunks.slice(0, -1)) assert.equal(c.usage, null);
});

test('stream without include_usage: no usage chunk, and {} for a tool without "id"', async () => {
  const res = await chat({ messages: asking('ping'), tools: TOOLS, stream: true });
  const data = sseData(res.text);
  assert.equal(data.at(-1), '[DONE]');
  const chunks = data.slice(0, -1).map((d) => JSON.parse(d));
  assert.equal(chunks.length, 3);
  assert.equal(chunks[0].choices[0].delta.tool_calls[0].function.name, 'ping');
  assert.equal(chunks[1].choices[0].delta.tool_calls[0].function.arguments, '{}');
  assert.equal(chunks[2].choices[0].finish_reason, 'tool_calls');
  for (const c of chunks) assert.ok(!('usage' in c));
});

test('a tool result last: text quoting its first 80 characters, no second call', async () => {
  const doc = 'The retrieved document.\nIt says   many things, '.padEnd(120, 'x');
  const messages = asking('lookup', [callTurn('call_abc'),
                                     { role: 'tool', tool_call_id: 'call_abc', content: doc }]);
  const res = await chat({ messages, tools: TOOLS });
  assert.equal(res.status, 200, res.text);
  const choice = res.json.choices[0];
  assert.equal(choice.finish_reason, 'stop');
  assert.equal(choice.message.tool_calls, undefined);
  assert.equal(choice.message.content, `Mock reply to tool result: ${doc.slice(0, 80)}`);

  // Content as parts, streamed: the pieces join to the same kind of text
  const parts = [{ type: 'text', text: 'première partie' }, { type: 'text', text: 'seconde' }];
  const streamed = await chat({ tools: TOOLS, stream: true,
                                messages: asking('lookup', [callTurn('call_p'),
                                  { role: 'tool', tool_call_id: 'call_p', content: parts }]) });
  const data = sseData(streamed.text);
  assert.equal(data.at(-1), '[DONE]');
  const chunks = data.slice(0, -1).map((d) => JSON.parse(d));
  const text = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
  assert.equal(text, 'Mock reply to tool result: première partie\nseconde');
  assert.equal(chunks.at(-1).choices[0].finish_reason, 'stop');
  assert.ok(chunks.every((c) => !c.choices[0].delta.tool_calls));
});

test('a tool message that answers no call of the assistant message before it: 400', async () => {
  const cases = [
    // wrong id
    [asking('lookup', [callTurn('call_a'), { role: 'tool', tool_call_id: 'call_b', content: 'x' }]), 3],
    // no assistant call at all
    [[{ role: 'user', content: 'hi' }, { role: 'tool', tool_call_id: 'call_a', content: 'x' }], 1],
    // the call was answered already and a user message came between
    [asking('lookup', [callTurn('call_a'), { role: 'tool', tool_call_id: 'call_a', content: 'x' },
                       { role: 'user', content: 'more' }, { role: 'tool', tool_call_id: 'call_a', content: 'x' }]), 5],
  ];
  for (const [messages, index] of cases) {
    const res = await chat({ messages, tools: TOOLS });
    const e = assertOpenAIError(assert, res, 400);
    assert.deepEqual(e, {
      message: "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.",
      type: 'invalid_request_error', param: `messages.[${index}].role`, code: null });
  }
});

test('an assistant message with tool_calls not answered by a tool message for each id: 400', async () => {
  const two = { role: 'assistant', content: null, tool_calls: [
    { id: 'call_one', type: 'function', function: { name: 'lookup', arguments: '{}' } },
    { id: 'call_two', type: 'function', function: { name: 'ping', arguments: '{}' } }] };
  const cases = [
    [asking('lookup', [two, { role: 'tool', tool_call_id: 'call_two', content: 'x' },
                       { role: 'user', content: 'go on' }]), 'call_one', 4],
    [asking('lookup', [two]), 'call_one, call_two', 2],
  ];
  for (const [messages, missing, index] of cases) {
    const res = await chat({ messages, tools: TOOLS });
    const e = assertOpenAIError(assert, res, 400);
    assert.deepEqual(e, {
      message: "An assistant message with 'tool_calls' must be followed by tool messages responding " +
               "to each 'tool_call_id'. The following tool_call_ids did not have response messages: " +
               missing,
      type: 'invalid_request_error', param: `messages.[${index}].role`, code: null });
  }
  // Both answered, in either order: fine
  const ok = await chat({ tools: TOOLS, messages: asking('lookup', [two,
    { role: 'tool', tool_call_id: 'call_two', content: 'b' },
    { role: 'tool', tool_call_id: 'call_one', content: 'a' }]) });
  assert.equal(ok.status, 200, ok.text);
  assert.equal(ok.json.choices[0].message.content, 'Mock reply to tool result: a');
});

test('malformed tool fields are refused like the real API', async () => {
  let res = await chat({ messages: [{ role: 'user', content: 'x' }, { role: 'tool', content: 'x' }] });
  let e = assertOpenAIError(assert, res, 400);
  assert.equal(e.param, 'messages[1].tool_call_id');
  assert.equal(e.code, 'missing_required_parameter');
  res = await chat({ messages: [{ role: 'user', content: 'x' },
                                { role: 'assistant', tool_calls: [{ id: 'c', function: { name: 'f', arguments: '{}' } }] },
                                { role: 'tool', tool_call_id: 'c', content: 'x' }] });
  e = assertOpenAIError(assert, res, 400);
  assert.equal(e.param, 'messages[1].tool_calls[0].type');
  res = await chat({ messages: [{ role: 'user', content: 'x' }], tools: 'lookup' });
  e = assertOpenAIError(assert, res, 400);
  assert.equal(e.param, 'tools');
  assert.equal(e.code, 'invalid_type');
  res = await chat({ messages: [{ role: 'user', content: 'x' }], tools: [{ type: 'function' }] });
  e = assertOpenAIError(assert, res, 400);
  assert.equal(e.param, 'tools[0].function');
});

test('every request is recorded with its body, tool turns included', async () => {
  await mock.clear();
  const messages = asking('lookup', [callTurn('call_rec'),
                                     { role: 'tool', tool_call_id: 'call_rec', content: 'recorded' }]);
  await chat({ messages, tools: TOOLS });
  const log = await mock.requests();
  const entries = Array.isArray(log) ? log : log.requests;
  assert.ok(Array.isArray(entries) && entries.length === 1, JSON.stringify(log).slice(0, 300));
  const entry = entries[0];
  const body = typeof entry.body === 'string' ? JSON.parse(entry.body) : entry.body;
  assert.deepEqual(body.messages, messages);
  assert.deepEqual(body.tools, TOOLS);
});
