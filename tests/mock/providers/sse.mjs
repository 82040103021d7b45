// Server-sent events and plain HTTP answers shared by the families.
//
// Every event is one res.write, so it leaves as soon as it is produced
// (sockets have Nagle off, see server.mjs): the gateway must cope with
// events arriving one by one, as from the real providers.

import { Buffer } from 'node:buffer';
import { randomBytes, timingSafeEqual, createHash } from 'node:crypto';
import { sendCut } from './control.mjs';

// Start an event stream: headers go out now, before the first event
export function openStream(res, headers = {}, contentType = 'text/event-stream; charset=utf-8') {
  res.writeHead(200, {
    'content-type': contentType,
    'cache-control': 'no-cache',
    connection: 'keep-alive',
    ...headers,
  });
  res.flushHeaders();
}

// One SSE event. name: the "event:" line (Anthropic, Responses) or null
// (Chat Completions, Gemini). eol: "\n", or "\r\n" as Google sends.
export function writeEvent(res, name, data, eol = '\n') {
  const text = typeof data === 'string' ? data : JSON.stringify(data);
  const head = name ? `event: ${name}${eol}` : '';
  return new Promise((resolve) => res.write(`${head}data: ${text}${eol}${eol}`, () => resolve()));
}

export function endStream(res) {
  if (!res.writableEnded && !res.destroyed) res.end();
}

// A JSON answer; drop=1 cuts it halfway like a broken connection would.
export function sendJson(res, status, body, headers = {}, ctl = null) {
  const text = JSON.stringify(body);
  const all = { 'content-type': 'application/json', ...headers };
  if (ctl && ctl.dropAfter !== -1) return sendCut(res, status, all, text);
  res.writeHead(status, { ...all, 'content-length': String(Buffer.byteLength(text)) });
  res.end(text);
}

// Compare secrets without leaking where they differ (length included:
// both are hashed to the same size first)
export function sameSecret(given, expected) {
  if (typeof given !== 'string' || typeof expected !== 'string' || !expected) return false;
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b) && given.length === expected.length;
}

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

// A fresh id like the real ones: prefix and n random base62 characters
export function newId(prefix, n) {
  const bytes = randomBytes(n);
  let out = prefix;
  for (const b of bytes) out += BASE62[b % 62];
  return out;
}

export const unixNow = () => Math.floor(Date.now() / 1000);
