// Spend: one content-free row per call, with the tokens the upstream reported, attributed by
// x-anyray-metadata, even for streams whose caller did not ask for usage.
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startStack, request, sseData, logged, sleep, randomMarker } from './stack.mjs';

let stack;
const it = (name, fn) => test(name, logged(() => stack, fn));
const META = { user: 'alice', team: 'platform', session: 's1' };

before(async () => {
  stack = await startStack();
});

after(async () => {
  await stack?.stop();
});

const count = () => stack.sql('select count(*) as n from spend')[0].n;

// What the mock reports as usage for these messages: ask it directly, streamed with
// include_usage (the usage chunk), which is what the gateway must have recorded.
async function upstreamUsage(messages) {
  const r = await request(`${stack.mock.url}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${stack.mock.key}` },
    body: JSON.stringify({ model: 'gpt-4o-mini', messages, stream: true, stream_options: { include_usage: true } }),
  });
  assert.equal(r.status, 200, r.text);
  const usage = sseData(r.text).filter((d) => d !== '[DONE]').map((d) => JSON.parse(d)).find((c) => c.usage)?.usage;
  assert.ok(usage && usage.prompt_tokens > 0 && usage.completion_tokens > 0, 'the mock reported usage');
  return usage;
}

it('N calls leave exactly N rows with upstream usage, attribution, and no content', async () => {
  const marker = randomMarker('zebracorn');
  const before = count();
  const calls = [];
  // A mix: non-stream, stream without usage asked, stream with usage asked; prompts of
  // different lengths so the token counts differ from call to call.
  const kinds = ['plain', 'stream', 'stream+usage', 'plain', 'stream', 'plain', 'stream'];
  for (let i = 0; i < kinds.length; i++) {
    const kind = kinds[i];
    const words = Array.from({ length: 3 + i * 2 }, (_, k) => `${marker}${k}`).join(' ');
    const messages = [
      { role: 'system', content: `${marker} system prompt ${i}` },
      { role: 'user', content: `secret ${words}` },
    ];
    const body = { model: 'gpt-4o-mini', messages };
    if (kind !== 'plain') body.stream = true;
    if (kind === 'stream+usage') body.stream_options = { include_usage: true };
    const r = await stack.chat(body, { headers: { 'x-anyray-metadata': JSON.stringify(META) } });
    assert.equal(r.status, 200, r.text);
    const rid = r.headers['x-anyray-request-id'];
    assert.match(rid || '', /^[0-9a-f]{16,64}$/, 'x-anyray-request-id header');
    let reported; // usage the caller saw, if any
    if (kind === 'plain') {
      reported = r.json.usage;
      assert.ok(r.json.choices[0].message.content.includes(marker));
    } else {
      const events = sseData(r.text);
      assert.equal(events.at(-1), '[DONE]');
      const chunks = events.slice(0, -1).map((d) => JSON.parse(d));
      const usageChunks = chunks.filter((c) => c.usage != null);
      if (kind === 'stream') {
        // The gateway asked upstream for usage; the caller did not and must not see it.
        assert.deepEqual(usageChunks, [], 'the injected usage chunk reached the caller');
        assert.ok(chunks.every((c) => c.choices.length > 0), 'an empty-choices usage chunk reached the caller');
      } else {
        assert.equal(usageChunks.length, 1, 'the caller asked for usage and must get it');
        reported = usageChunks[0].usage;
      }
      assert.ok(chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('').includes(marker));
    }
    const usage = await upstreamUsage(messages);
    if (reported) assert.deepEqual(reported, usage, 'the mock is deterministic');
    calls.push({ kind, rid, usage, stream: kind !== 'plain' });
  }
  const N = calls.length;
  assert.equal(new Set(calls.map((c) => c.rid)).size, N, 'request ids are unique');

  // Rows are written in batches: wait until all are in, then make sure no extra ones follow.
  await stack.spendRows(); // the table exists
  const deadline = Date.now() + 15000;
  while (count() < before + N && Date.now() < deadline) await sleep(100);
  await sleep(1500);
  assert.equal(count(), before + N, `exactly ${N} new rows`);

  for (const call of calls) {
    const rows = stack.spendRows(`request_id = '${call.rid}'`);
    assert.equal(rows.length, 1, `one row for ${call.kind} ${call.rid}`);
    const row = rows[0];
    assert.equal(row.input_tokens, call.usage.prompt_tokens, `input tokens of ${call.kind}`);
    assert.equal(row.output_tokens, call.usage.completion_tokens, `output tokens of ${call.kind}`);
    assert.equal(row.user_id, META.user);
    assert.equal(row.team, META.team);
    assert.equal(row.session_id, META.session);
    assert.equal(row.status, 200);
    assert.equal(Boolean(row.stream), call.stream, `stream flag of ${call.kind}`);
    assert.equal(row.model, 'gpt-4o-mini');
    assert.equal(row.provider, 'openai');
    assert.equal(row.endpoint, '/v1/chat/completions');
    assert.ok(row.latency_ms >= 0 && row.ttfb_ms >= 0 && row.ttfb_ms <= row.latency_ms + 1,
              `latency ${row.latency_ms} ttfb ${row.ttfb_ms}`);
  }
  // Different prompts, different counts: the rows are not all one copied value.
  assert.ok(new Set(calls.map((c) => c.usage.prompt_tokens)).size > 2);

  // No column of any row holds any text of the prompts or replies.
  const all = stack.spendRows();
  assert.ok(all.length >= N);
  for (const row of all)
    for (const [column, value] of Object.entries(row)) {
      const text = String(value ?? '').toLowerCase();
      for (const needle of [marker, 'secret', 'system prompt', 'mock reply'])
        assert.ok(!text.includes(needle.toLowerCase()), `column ${column} holds "${needle}": ${text.slice(0, 200)}`);
    }

  // Nor any file in the data dir (database, WAL, spools), nor any process's log.
  const files = [];
  const walk = (dir) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) files.push(p);
    }
  };
  walk(stack.dir);
  for (const file of files)
    assert.ok(!fs.readFileSync(file).includes(marker), `${file} holds prompt text`);
  assert.ok(!stack.log().includes(marker), 'a process logged prompt or reply text');
});

it('a call without metadata gets a row with empty attribution; bad calls are not billed as 200', async () => {
  const r = await stack.chat({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'anonymous' }] });
  assert.equal(r.status, 200);
  const row = await stack.spendRow(r.headers['x-anyray-request-id']);
  assert.equal(row.user_id, null);
  assert.equal(row.team, null);
  assert.equal(row.session_id, null);
  assert.equal(row.input_tokens, r.json.usage.prompt_tokens);
  assert.equal(row.output_tokens, r.json.usage.completion_tokens);

  // An upstream error is passed through and recorded with its own status.
  const e = await stack.chat({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: '[mock status=429] slow down' }] },
    { headers: { 'x-anyray-metadata': JSON.stringify(META) } });
  assert.equal(e.status, 429, e.text);
  const erow = await stack.spendRow(e.headers['x-anyray-request-id']);
  assert.equal(erow.status, 429);
  assert.equal(erow.team, 'platform');
});

it('rows of calls made while the spend actor is down are held by the edge and land once, after it returns', async () => {
  const before = count();
  stack.pause('launcher'); // so the killed spend actor stays down until we say
  let resumed = false;
  try {
    const old = stack.kill9('spend');
    await sleep(300);
    const ids = [];
    for (let i = 0; i < 5; i++) {
      const r = await stack.chat({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `while spend is down ${i}` }] },
        { headers: { 'x-anyray-metadata': JSON.stringify(META) } });
      assert.equal(r.status, 200, 'a call must not depend on the spend actor');
      ids.push(r.headers['x-anyray-request-id']);
    }
    await sleep(500);
    assert.equal(count(), before, 'no spend actor, yet rows appeared');
    stack.resume('launcher');
    resumed = true;
    await stack.waitNewPid('spend', old);
    for (const rid of ids) {
      const row = await stack.spendRow(rid, { timeoutMs: 20000 });
      assert.equal(row.team, 'platform');
      assert.equal(row.status, 200);
    }
    await sleep(1500); // retries must not add duplicates
    assert.equal(count(), before + ids.length);
  } finally {
    if (!resumed) stack.resume('launcher');
  }
});
