// Fail-open: with the optimizer stalled or dead, requests still go upstream byte-for-byte
// unchanged, and the optimizer costs at most its 800 ms budget.
//
// This stack runs 1000 ms heartbeats, not the harness's 200 ms: the broker forgets a silent
// worker after three beats, i.e. 2-3 s after a SIGSTOP here. At 200 ms (or the default 500)
// that would come at 400-600 ms (1000-1500 ms), so broker liveness, not the edge's 800 ms
// budget, could end the wait and a wrong budget would go unnoticed under the 1500 ms bound.
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, logged, sleep, waitFor, randomMarker } from './stack.mjs';

let stack;
const it = (name, fn) => test(name, logged(() => stack, fn));

before(async () => {
  stack = await startStack({ env: { ANYRAY_HEARTBEAT_MS: '1000' } });
});

after(async () => {
  // Never leave anything stopped, whatever happened.
  for (const target of ['launcher', 'optimizer']) {
    try { stack?.resume(target); } catch {}
  }
  await stack?.stop();
});

// A body a re-serialiser could not reproduce: odd spacing, key order, escapes, non-ASCII.
function oddBody(tag) {
  return `{ "messages" : [ {"content":"fail open ${tag} \\u00e9t\\u00e9 caf\u00e9 \\"q\\" \\/ 1.0e0",` +
         `"role":"user"} ],\n\t"model":"gpt-4o-mini", "temperature": 1.50, "x_extra": [1, 2.0, {"a" : null}] }`;
}

// Send it, time it, check the answer and that the upstream got exactly these bytes.
async function sendUnchanged(tag) {
  await stack.mock.clear();
  const body = oddBody(tag);
  const r = await stack.chat(body, { timeoutMs: 20000 });
  assert.equal(r.status, 200, r.text);
  assert.ok(r.json.choices[0].message.content.startsWith('Mock reply to: fail open'), r.text);
  const seen = await stack.mock.requests();
  assert.equal(seen.length, 1, 'one upstream call');
  assert.ok(Buffer.from(seen[0].body, 'utf8').equals(Buffer.from(body, 'utf8')),
            `upstream body differs:\n sent ${body}\n got  ${seen[0].body}`);
  return { ms: r.ms, rid: r.headers['x-anyray-request-id'] };
}

// Baseline: normal requests with a live optimizer go through it and are marked optimized.
async function baseline() {
  const times = [];
  for (let i = 0; i < 3; i++) {
    const { ms, rid } = await sendUnchanged(`base${i}`);
    times.push(ms);
    assert.equal((await stack.spendRow(rid)).optimized, 1, 'optimized with the optimizer up');
  }
  return Math.max(...times);
}

// After the optimizer is back, requests are optimized again.
async function recovered() {
  await waitFor('requests to be optimized again', async () => {
    const { rid } = await sendUnchanged(randomMarker('again'));
    return (await stack.spendRow(rid)).optimized === 1;
  }, { timeoutMs: 20000, intervalMs: 200 });
}

it('a stalled optimizer (SIGSTOP) costs the 800 ms budget, then the request goes on unchanged', async (t) => {
  const base = await baseline();
  const pid = stack.pause('optimizer');
  try {
    const { ms, rid } = await sendUnchanged('stalled');
    t.diagnostic(`baseline ${base.toFixed(0)} ms, stalled optimizer ${ms.toFixed(0)} ms`);
    // The edge waited out its budget (>= 750 ms: the budget decided, not some error), and
    // no more than the budget plus slack (< 1500 ms: it did not wait for the worker).
    assert.ok(ms >= 750, `answered in ${ms.toFixed(0)} ms: the 800 ms budget did not decide`);
    assert.ok(ms < 1500, `answered in ${ms.toFixed(0)} ms (baseline ${base.toFixed(0)} ms): over budget`);
    const row = await stack.spendRow(rid);
    assert.equal(row.optimized, 0, 'a failed-open call is not marked optimized');
    assert.equal(row.status, 200);
  } finally {
    stack.resume(pid);
  }
  assert.equal(stack.pid('optimizer'), pid, 'the optimizer was restarted: it was only stalled');
  await recovered();
});

it('a killed optimizer (kill -9, launcher held) fails open at once with NO_WORKER', async (t) => {
  const base = await baseline();
  // Hold the launcher so it cannot restart the optimizer while we look.
  stack.pause('launcher');
  try {
    const pid = stack.kill9('optimizer');
    await waitFor('the optimizer to be gone', () => !stack.isAlive(pid), { timeoutMs: 5000 });
    // The first call may still meet a broker that has the dead worker registered: then the
    // budget bounds it.
    const first = await sendUnchanged('killed-first');
    assert.ok(first.ms < 1500, `first call after the kill took ${first.ms.toFixed(0)} ms`);
    // Once the broker has dropped it (three 1000 ms beats at most), NO_WORKER comes back at
    // once and the edge goes on without waiting out its 800 ms budget. A call that waited
    // takes >= 800 ms by construction; one that did not takes what a normal call takes. On a
    // loaded machine a normal call can be slow too, so judge the median of five, and bound
    // every one by the budget plus slack.
    await sleep(3500);
    const times = [];
    for (let i = 0; i < 5; i++) {
      const { ms, rid } = await sendUnchanged(`killed${i}`);
      times.push(Math.round(ms));
      const row = await stack.spendRow(rid);
      assert.equal(row.optimized, 0);
      assert.equal(row.status, 200);
    }
    const median = [...times].sort((a, b) => a - b)[2];
    const timing = `baseline ${base.toFixed(0)} ms, first after kill ${first.ms.toFixed(0)} ms, ` +
                   `then ${times.join(', ')} ms (median ${median})`;
    t.diagnostic(timing);
    assert.ok(median < 750, `with no optimizer, calls waited out the budget instead of failing open at once: ${timing}`);
    assert.ok(times.every((ms) => ms < 1500), `a call took longer than budget plus slack: ${timing}`);
    stack.resume('launcher');
    const fresh = await stack.waitNewPid('optimizer', pid, { timeoutMs: 15000 });
    assert.notEqual(fresh, pid);
  } finally {
    stack.resume('launcher');
  }
  await recovered();
});
