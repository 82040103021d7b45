// Bad input gets the caller's own (OpenAI) error shape and a correct status, never a crash.
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startStack, request, rawExchange, assertOpenAIError, logged, sleep } from './stack.mjs';

let stack;
let edgePid;
const it = (name, fn) => test(name, logged(() => stack, fn));
const good = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'still fine' }] };

before(async () => {
  stack = await startStack();
  edgePid = stack.pid('edge');
  assert.ok(edgePid > 0);
});

after(async () => {
  await stack?.stop();
});

// After each refusal, the upstream must not have been called: a 400 is the gateway's own.
async function assertNothingUpstream() {
  const seen = await stack.mock.requests();
  assert.equal(seen.length, 0, `the upstream was called: ${JSON.stringify(seen).slice(0, 300)}`);
}

it('malformed JSON is 400 in the OpenAI shape', async () => {
  await stack.mock.clear();
  for (const body of ['{"model":"gpt-4o-mini","messages":[', 'not json at all', '{"model":}', '']) {
    const r = await stack.chat(body);
    const e = assertOpenAIError(assert, r, 400, `body ${JSON.stringify(body)}`);
    assert.equal(e.type, 'invalid_request_error');
  }
  await assertNothingUpstream();
});

it('fields of the wrong type are 400 with param naming the field', async () => {
  await stack.mock.clear();
  const cases = [
    [{ model: 1, messages: [{ role: 'user', content: 'x' }] }, 'model'],
    [{ model: 'gpt-4o-mini', messages: {} }, 'messages'],
    [{ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }], stream: 'yes' }, 'stream'],
  ];
  for (const [body, param] of cases) {
    const r = await stack.chat(body);
    const e = assertOpenAIError(assert, r, 400, JSON.stringify(body));
    assert.equal(e.param, param, `param for ${JSON.stringify(body)}`);
    assert.equal(e.type, 'invalid_request_error');
  }
  await assertNothingUpstream();
});

it('invalid UTF-8 inside a string is 400', async () => {
  await stack.mock.clear();
  const head = Buffer.from('{"model":"gpt-4o-mini","messages":[{"role":"user","content":"bad ');
  const tail = Buffer.from('"}]}');
  for (const bytes of [[0xff], [0xc3, 0x28], [0xed, 0xa0, 0x80] /* surrogate */, [0xe2, 0x82]]) {
    const body = Buffer.concat([head, Buffer.from(bytes), tail]);
    const r = await stack.chat(body);
    assertOpenAIError(assert, r, 400, `bytes ${Buffer.from(bytes).toString('hex')}`);
  }
  await assertNothingUpstream();
});

// 50 MB of well-formed JSON (the limit is 32 MiB by default).
function bigBody() {
  const size = 50 * 1024 * 1024;
  const head = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"';
  const tail = '"}]}';
  const body = Buffer.alloc(size, 'a');
  body.write(head, 0);
  body.write(tail, size - tail.length);
  return body;
}

it('a 50 MB body with Content-Length is refused with 413 and nothing crashes', async () => {
  await stack.mock.clear();
  const body = bigBody();
  // Like curl: the head first, reading the answer while the body streams out. The answer may
  // come before any of the body has been read, so give it a moment to.
  const r = await rawExchange(stack.port,
    'POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n' +
    `Authorization: Bearer placeholder\r\nContent-Length: ${body.length}\r\n\r\n`, body,
    { holdBodyMs: 500 });
  const e = assertOpenAIError(assert, r, 413, '50 MB body');
  assert.equal(e.type, 'invalid_request_error');
  await assertNothingUpstream();
  assert.equal(stack.pid('edge'), edgePid, 'edge restarted');
  assert.ok(stack.isAlive(edgePid), 'edge died');
});

it('a client that sends all 50 MB before reading (fetch, as the SDKs do) gets the 413, not a reset', async () => {
  // fetch (undici, what the openai SDK uses) writes the whole body, then reads. If the edge
  // answers early and closes with the body unread, the kernel resets the connection and the
  // client sees ECONNRESET instead of the 413 (RFC 9112 section 9.6: close in stages).
  // Three tries: whether the reset wins the race with the answer varies from run to run.
  const body = bigBody();
  const outcomes = [];
  for (let i = 0; i < 3; i++) {
    try {
      const res = await fetch(`${stack.base}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: 'Bearer placeholder' },
        body,
        signal: AbortSignal.timeout(60000),
      });
      const text = await res.text();
      let json;
      try { json = JSON.parse(text); } catch {}
      outcomes.push(res.status === 413 && json?.error?.message && 'code' in json.error ? '413' : `${res.status} ${text.slice(0, 100)}`);
    } catch (err) {
      outcomes.push(err.cause?.code || err.cause?.message || err.message);
    }
  }
  assert.deepEqual(outcomes, ['413', '413', '413'],
                   `fetch of a 50 MB body: ${outcomes.join(', ')} (want the 413 each time, not a reset)`);
  assert.ok(stack.isAlive(edgePid), 'edge died');
});

it('a 50 MB body without Content-Length (chunked) is refused with 413 too', async () => {
  await stack.mock.clear();
  // No length announced: the edge must count what it reads and stop keeping it past the limit.
  const r = await new Promise((resolve, reject) => {
    const sock = net.connect(stack.port, '127.0.0.1');
    const chunks = [];
    sock.on('data', (c) => chunks.push(c));
    sock.on('error', (err) => (chunks.length ? resolve(Buffer.concat(chunks)) : reject(err)));
    sock.on('close', () => resolve(Buffer.concat(chunks)));
    sock.setTimeout(30000, () => sock.destroy(new Error('no answer within 30 s')));
    sock.write('POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
               'Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n');
    const piece = Buffer.alloc(1024 * 1024, 'a');
    let sent = 0;
    const pump = () => {
      while (sent < 50) {
        sent++;
        const ok = sock.write(Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece,
                                             Buffer.from('\r\n')]));
        if (!ok) return sock.once('drain', pump);
      }
      sock.write('0\r\n\r\n');
    };
    pump();
  });
  const text = r.toString('latin1');
  const m = /^HTTP\/1\.[01] (\d+)/.exec(text);
  assert.ok(m, `an HTTP response, got ${JSON.stringify(text.slice(0, 200))}`);
  assert.equal(Number(m[1]), 413, text.slice(0, 400));
  const json = JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4).replace(/^[0-9a-f]+\r\n/i, '').replace(/\r\n0\r\n\r\n$/, ''));
  assert.deepEqual(Object.keys(json.error).sort(), ['code', 'message', 'param', 'type']);
  await assertNothingUpstream();
  assert.ok(stack.isAlive(edgePid), 'edge died');
});

it('an unknown path is 404 in the OpenAI shape', async () => {
  for (const [method, path] of [['POST', '/v1/chat/completion'], ['GET', '/v1/nope'], ['GET', '/']]) {
    const r = await request(stack.base + path, { method, headers: { 'content-type': 'application/json' },
                                                 body: method === 'POST' ? JSON.stringify(good) : undefined });
    const e = assertOpenAIError(assert, r, 404, `${method} ${path}`);
    assert.equal(e.type, 'invalid_request_error');
  }
});

it('a wrong method is 405 in the OpenAI shape', async () => {
  for (const [method, path] of [['GET', '/v1/chat/completions'], ['DELETE', '/v1/chat/completions'],
                                ['POST', '/v1/models']]) {
    const r = await request(stack.base + path, { method });
    assertOpenAIError(assert, r, 405, `${method} ${path}`);
  }
});

it('a bad x-anyray-metadata header is 400 naming the header', async () => {
  await stack.mock.clear();
  for (const value of ['not json', '[1,2]', '{"user":1}', '{"team":{"a":1}}',
                       JSON.stringify({ user: 'u'.repeat(129) })]) {
    const r = await stack.chat(good, { headers: { 'x-anyray-metadata': value } });
    const e = assertOpenAIError(assert, r, 400, `x-anyray-metadata ${value.slice(0, 40)}`);
    assert.equal(e.param, 'x-anyray-metadata');
  }
  await assertNothingUpstream();
});

it('after all of that a normal request succeeds on the same edge process', async () => {
  // Give a crashed edge time to be noticed and replaced before we look.
  await sleep(300);
  const r = await stack.chat(good);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.choices[0].message.content, 'Mock reply to: still fine');
  assert.equal(stack.pid('edge'), edgePid, 'the edge was restarted (it crashed)');
  assert.ok(stack.isAlive(edgePid), 'the edge process is gone');
  assert.doesNotMatch(stack.log(), /edge\[0\][^\n]*(AddressSanitizer|runtime error|exited|restart)/,
                      'the edge reported a crash or sanitizer error');
});
