// Streaming is relayed as it happens, and a caller who leaves stops the upstream call.
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startStack, sseData, logged, waitFor, withTimeout } from './stack.mjs';

let stack;
const it = (name, fn) => test(name, logged(() => stack, fn));

before(async () => {
  stack = await startStack();
});

after(async () => {
  await stack?.stop();
});

// Open a streamed chat call; resolves once the response head is in, with the arrival time
// of every body piece recorded as it comes.
function openStream(content, extra = {}) {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const req = http.request(`${stack.base}/v1/chat/completions`, {
      method: 'POST',
      agent: false,
      headers: { 'content-type': 'application/json', authorization: 'Bearer placeholder' },
    });
    req.on('error', reject);
    req.on('response', (res) => {
      const s = { req, res, start, pieces: [], text: '', ended: false, headAt: performance.now() - start };
      s.done = new Promise((ok, fail) => {
        res.on('data', (c) => {
          s.pieces.push({ at: performance.now() - start, text: c.toString('utf8') });
          s.text += c.toString('utf8');
        });
        res.on('end', () => { s.ended = true; s.endAt = performance.now() - start; ok(s); });
        res.on('error', fail);
        res.on('aborted', () => fail(new Error('aborted')));
      });
      resolve(s);
    });
    req.end(JSON.stringify({ model: 'gpt-4o-mini', stream: true,
                             messages: [{ role: 'user', content }], ...extra }));
  });
}

it('the first SSE bytes reach the caller long before the upstream finishes', async () => {
  // 12 chunks 150 ms apart: the upstream takes about 1.8 s from first to last.
  const s = await openStream('[mock chunks=12 chunk_delay=150] go');
  assert.equal(s.res.statusCode, 200);
  assert.match(s.res.headers['content-type'], /text\/event-stream/);
  await withTimeout(s.done, 30000, 'the stream to end');
  const firstContent = s.pieces.find((p) => p.text.includes('"content":"w1'));
  assert.ok(firstContent, `the first word arrived: ${s.text.slice(0, 300)}`);
  const last = s.pieces.at(-1);
  // The upstream spends >= 11 x 150 ms between w1 and w12; relayed as it goes, the caller
  // sees w1 at least a second before the end. A buffering gateway would deliver it all at once.
  assert.ok(last.at - firstContent.at >= 1000,
            `first content at ${firstContent.at.toFixed(0)} ms, end at ${last.at.toFixed(0)} ms`);
  // And in several pieces spread over that time.
  const spread = new Set(s.pieces.map((p) => Math.floor(p.at / 100))).size;
  assert.ok(spread >= 6, `body arrived in ${s.pieces.length} pieces over ${spread} 100 ms slots`);
  const events = sseData(s.text);
  assert.equal(events.at(-1), '[DONE]');
  const text = events.slice(0, -1).map((d) => JSON.parse(d).choices[0]?.delta?.content ?? '').join('');
  assert.equal(text, Array.from({ length: 12 }, (_, i) => `w${i + 1}`).join(' '));
});

it('a caller who disconnects mid-stream cancels the upstream stream', async () => {
  const base = (await stack.mock.stats()).open_streams;
  // 100 chunks 100 ms apart: 10 s if nobody stops it.
  const s = await openStream('[mock chunks=100 chunk_delay=100] long one');
  assert.equal(s.res.statusCode, 200);
  const rid = s.res.headers['x-anyray-request-id'];
  await waitFor('a few content chunks', () => s.text.includes('"content":"w3'), { timeoutMs: 10000, intervalMs: 20 });
  assert.equal((await stack.mock.stats()).open_streams, base + 1, 'the upstream stream is open');
  const cut = performance.now();
  s.done.catch(() => {}); // it will be aborted: that is the point
  s.req.destroy();
  s.res.destroy();
  await waitFor('the upstream stream to close', async () => (await stack.mock.stats()).open_streams === base,
                { timeoutMs: 8000, intervalMs: 20 });
  const took = performance.now() - cut;
  // Cancelled, not run out: the full stream would need ~9.7 s more.
  assert.ok(took < 3000, `upstream stream closed ${took.toFixed(0)} ms after the caller left`);
  assert.ok(!s.ended, 'the stream had already ended');

  // The gateway is fine afterwards and the call got its spend row.
  const again = await stack.chat({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'after' }] });
  assert.equal(again.status, 200);
  const row = await stack.spendRow(rid);
  assert.equal(row.stream, 1);
});

it('a caller who leaves before the first byte cancels the upstream call too (499 in spend)', async () => {
  // The upstream holds the call for 20 s before answering; the caller gives up after 300 ms.
  const base = (await stack.mock.stats()).parked;
  const req = http.request(`${stack.base}/v1/chat/completions`, {
    method: 'POST', agent: false,
    headers: { 'content-type': 'application/json', authorization: 'Bearer placeholder',
               'x-anyray-metadata': JSON.stringify({ session: 'gone-early' }) },
  });
  req.on('error', () => {});
  req.end(JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: '[mock latency=20000] slow' }] }));
  await waitFor('the upstream call to be held', async () => (await stack.mock.stats()).parked === base + 1,
                { timeoutMs: 5000, intervalMs: 20 });
  const cut = performance.now();
  req.destroy();
  await waitFor('the upstream call to be released', async () => (await stack.mock.stats()).parked === base,
                { timeoutMs: 8000, intervalMs: 20 });
  const took = performance.now() - cut;
  assert.ok(took < 3000, `upstream call released ${took.toFixed(0)} ms after the caller left (holds 20 s)`);
  const row = await waitFor('the spend row of the abandoned call',
    () => stack.spendRows("session_id = 'gone-early'")[0], { timeoutMs: 5000, intervalMs: 100 });
  assert.equal(row.status, 499);
});
