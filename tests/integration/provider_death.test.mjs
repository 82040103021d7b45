// A provider that dies (kill -9) costs callers a clean 502/503 in the OpenAI shape within
// seconds, never a hang; the launcher restarts it and traffic flows again.
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startStack, assertOpenAIError, sseData, logged, waitFor, withTimeout } from './stack.mjs';

let stack;
const it = (name, fn) => test(name, logged(() => stack, fn));
const FEW_SECONDS = 5000;

before(async () => {
  stack = await startStack(); // 200 ms heartbeats: a dead worker is noticed fast
});

after(async () => {
  try { stack?.resume('launcher'); } catch {}
  await stack?.stop();
});

const ask = (content, extra = {}, timeoutMs = 15000) =>
  stack.chat({ model: 'gpt-4o-mini', messages: [{ role: 'user', content }], ...extra }, { timeoutMs });

function assertCleanFailure(r, what) {
  assert.ok(r.status === 502 || r.status === 503, `${what}: status ${r.status} ${r.text.slice(0, 200)}`);
  const e = assertOpenAIError(assert, r, r.status, what);
  assert.equal(e.type, 'server_error');
}

// A streamed call, resolved once it is complete; `seen` resolves at the first content delta.
function streamCall(content) {
  let onSeen;
  const seen = new Promise((resolve) => { onSeen = resolve; });
  const done = new Promise((resolve, reject) => {
    const req = http.request(`${stack.base}/v1/chat/completions`, {
      method: 'POST', agent: false,
      headers: { 'content-type': 'application/json', authorization: 'Bearer placeholder' },
    });
    req.on('error', reject);
    req.on('response', (res) => {
      let text = '';
      res.on('data', (c) => {
        text += c.toString('utf8');
        if (text.includes('"content":"w1')) onSeen();
      });
      res.on('end', () => resolve({ status: res.statusCode, text, endedAt: performance.now() }));
      res.on('error', reject);
      res.on('aborted', () => reject(new Error('stream aborted without an error event')));
    });
    req.end(JSON.stringify({ model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content }] }));
  });
  return { seen, done };
}

it('in-flight and new calls fail cleanly while the provider is dead; the launcher brings it back', async (t) => {
  const ok = await ask('before');
  assert.equal(ok.status, 200, ok.text);

  // Calls in flight at the provider: two non-stream ones the mock holds for 20 s, and a
  // stream already relaying (60 chunks, 250 ms apart).
  const slow = [ask('[mock latency=20000] slow one', {}, 30000), ask('[mock latency=20000] slow two', {}, 30000)];
  const stream = streamCall('[mock chunks=60 chunk_delay=250] streaming');
  await withTimeout(stream.seen, 10000, 'the stream to start');
  await waitFor('both slow calls to be held by the mock', async () => (await stack.mock.stats()).parked >= 2,
                { timeoutMs: 10000 });

  // Hold the launcher so "new calls while it is dead" really meet a dead provider.
  stack.pause('launcher');
  let killedAt;
  let pid;
  try {
    pid = stack.kill9('provider');
    killedAt = performance.now();

    for (const [i, call] of slow.entries()) {
      const r = await withTimeout(call, 10000, `in-flight call ${i}`);
      const after = performance.now() - killedAt;
      assertCleanFailure(r, `in-flight call ${i}`);
      assert.ok(after < FEW_SECONDS, `in-flight call ${i} answered ${after.toFixed(0)} ms after the kill`);
      t.diagnostic(`in-flight call ${i}: ${r.status} ${r.json.error.code} ${after.toFixed(0)} ms after the kill`);
    }
    // The stream already sent its 200: it must end with an error event, not hang or [DONE].
    const s = await withTimeout(stream.done, 10000, 'the in-flight stream to end');
    const streamAfter = s.endedAt - killedAt;
    assert.ok(streamAfter < FEW_SECONDS, `stream ended ${streamAfter.toFixed(0)} ms after the kill`);
    const events = sseData(s.text);
    assert.notEqual(events.at(-1), '[DONE]', 'a cut stream must not claim to be complete');
    const last = JSON.parse(events.at(-1));
    assert.deepEqual(Object.keys(last), ['error'], `last event: ${events.at(-1)}`);
    assert.deepEqual(Object.keys(last.error).sort(), ['code', 'message', 'param', 'type']);
    t.diagnostic(`in-flight stream ended with ${JSON.stringify(last.error.code)} ${streamAfter.toFixed(0)} ms after the kill`);

    for (let i = 0; i < 3; i++) {
      const r = await ask(`new call ${i}`, i === 1 ? { stream: true } : {}, 10000);
      assertCleanFailure(r, `new call ${i}`);
      assert.ok(r.ms < FEW_SECONDS, `new call ${i} took ${r.ms.toFixed(0)} ms`);
      t.diagnostic(`new call ${i}: ${r.status} ${r.json.error.code} in ${r.ms.toFixed(0)} ms`);
    }
  } finally {
    stack.resume('launcher');
  }

  const fresh = await stack.waitNewPid('provider', pid, { timeoutMs: 10000 });
  assert.notEqual(fresh, pid);
  const back = await waitFor('a call to succeed again', async () => {
    const r = await ask('back again', {}, 5000);
    if (r.status !== 200) assertCleanFailure(r, 'call during the restart');
    return r.status === 200 && r;
  }, { timeoutMs: 10000, intervalMs: 100 });
  assert.equal(back.json.choices[0].message.content, 'Mock reply to: back again');
  t.diagnostic(`back ${(performance.now() - killedAt).toFixed(0)} ms after the kill, provider pid ${pid} -> ${fresh}`);
});

it('with the launcher running, a killed provider is replaced and calls succeed within seconds', async (t) => {
  const pid = stack.pid('provider');
  assert.ok(stack.isAlive(pid));
  const killedAt = performance.now();
  stack.kill9('provider');
  const statuses = [];
  const back = await waitFor('a call to succeed again', async () => {
    const r = await ask('after the second kill', {}, 5000);
    statuses.push(r.status);
    if (r.status !== 200) assertCleanFailure(r, 'call during the restart');
    return r.status === 200 && r;
  }, { timeoutMs: 10000, intervalMs: 100 });
  assert.equal(back.json.choices[0].message.content, 'Mock reply to: after the second kill');
  const fresh = await stack.waitNewPid('provider', pid, { timeoutMs: 10000 });
  t.diagnostic(`back after ${(performance.now() - killedAt).toFixed(0)} ms; statuses ${statuses.join(',')}; pid ${pid} -> ${fresh}`);
  // Still streaming fine after the restart.
  const s = await ask('stream after restart', { stream: true });
  assert.equal(s.status, 200);
  assert.equal(sseData(s.text).at(-1), '[DONE]');
});
