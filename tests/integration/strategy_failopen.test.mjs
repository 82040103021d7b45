// Fail-open per strategy, in real processes: a strategy that corrupts the request and then
// errors, or one that overruns the pipeline's deadline, is undone; the request reaches the
// upstream exactly as the caller sent it (the other strategies' work kept), and the edge's
// /admin stats count it. ANYRAY_FAULT_STRATEGY is the optimizer's test-only fault hook.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, logged, randomMarker } from './stack.mjs';

let stack;
const it = (name, fn) => test(name, logged(() => stack, fn));

after(async () => {
  await stack?.stop();
});

// window_budget and tool_pruning leave this request alone; param_tuning would clamp it.
const body = (tag) => `{"model":"gpt-4o-mini","max_tokens":8192,"temperature":0.70,` +
  `"messages":[{"role":"user","content":"fault ${tag} caf\\u00e9"}]}`;

for (const mode of ['fail', 'stall']) {
  it(`param_tuning that ${mode === 'fail' ? 'errors' : 'overruns the deadline'} leaves the request unchanged and is counted`, async (t) => {
    await stack?.stop();
    // The stall blocks the optimizer's loop until past its deadline: a 300 ms budget keeps
    // that inside the broker's liveness (three 200 ms heartbeats), as the 800 ms default is
    // inside three of the default 500 ms ones.
    stack = await startStack({ env: { ANYRAY_FAULT_STRATEGY: `param_tuning:${mode}`,
                                      ...(mode === 'stall' ? { ANYRAY_ADMIN_TOKEN: '', ANYRAY_OPTIMIZER_TIMEOUT_MS: '300' } : {}) } });
    // Counted from here on: the harness's warm-up calls may have failed open as a whole while
    // the workers were still registering.
    const statsBefore = mode === 'fail' ? (await stack.admin('GET', '/admin/optimizer/stats')).json : null;
    const failedBefore = statsBefore ? statsBefore.strategies.param_tuning.failed : 0;
    const calls = 3;
    for (let i = 0; i < calls; i++) {
      await stack.mock.clear();
      const sent = body(randomMarker(mode));
      const r = await stack.chat(sent, { timeoutMs: 20000 });
      assert.equal(r.status, 200, r.text);
      const [seen] = await stack.mock.requests();
      assert.equal(seen.body, sent, 'the upstream got the caller\'s bytes');
      assert.equal(r.headers['x-anyray-optimizations'], undefined);
      const row = await stack.spendRow(r.headers['x-anyray-request-id']);
      assert.equal(row.optimized, 1, 'the optimizer answered (the step, not the call, failed open)');
      t.diagnostic(`${mode}: answered in ${r.ms.toFixed(0)} ms`);
    }
    if (mode === 'fail') {
      const stats = await stack.admin('GET', '/admin/optimizer/stats');
      assert.equal(stats.status, 200, stats.text);
      const tuning = stats.json.strategies.param_tuning;
      assert.equal(tuning.failed - failedBefore, calls);
      assert.equal(tuning.changed, 0);
      assert.equal(stats.json.failOpen.total - statsBefore.failOpen.total, 0, 'no call failed open as a whole');
      assert.ok(stats.json.answered >= calls);
    } else {
      // This stack runs without ANYRAY_ADMIN_TOKEN: the admin API is off and says so.
      const off = await stack.admin('GET', '/admin/optimizer/stats');
      assert.equal(off.status, 403);
      assert.equal(off.json.error.code, 'admin_disabled');
      // The protocol port reports the overrun per strategy.
      const r = await stack.optimizerCall('/v1/optimize', { endpoint: '/v1/chat/completions', request: JSON.parse(body('p')) });
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.json.skipped.find((s) => s.kind === 'param_tuning'), { kind: 'param_tuning', reason: 'overran' });
      assert.equal(r.json.request.max_tokens, 8192);
      assert.equal(r.json.changed, false);
    }
  });
}
