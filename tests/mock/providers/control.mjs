// The "[mock key=value ...]" switches and what they make every family do.
//
// Same convention as the C mock (tests/mock/mock_control.h), so a test
// steers any provider the same way: the switches sit at the start of the
// last user text. Each family boils its request down to a "conversation"
// (see plan()) and renders the plan in its own wire format; this module
// decides the reply and paces streams, so every family answers alike.

import { Buffer } from 'node:buffer';

const MAX_DELAY_MS = 600000; // a typo must not park a request for a year
const MAX_CHUNKS = 100000;
export const USER_WORDS = 12; // words of the user's text quoted back
export const TOOL_CHARS = 80; // characters of a tool result quoted back

export function defaults() {
  return {
    latency: 0, status: 0, retryAfter: -1, chunks: -1, chunkDelay: 0,
    hang: false, dropAfter: -1, errorAfter: -1, tool: '',
  };
}

const TOOL_NAME = /^[A-Za-z0-9_-]{1,64}$/;
const NUMBER = /^[0-9]{1,9}$/;

// Unknown keys and bad values are ignored, never fatal (as in C).
function apply(ctl, key, val) {
  if (key === 'tool') {
    if (TOOL_NAME.test(val)) ctl.tool = val;
    return;
  }
  if (!NUMBER.test(val)) return;
  const n = Number(val);
  if (n > MAX_DELAY_MS) return;
  switch (key) {
    case 'latency': ctl.latency = n; break;
    case 'status': if (n === 0 || (n >= 200 && n <= 599)) ctl.status = n === 200 ? 0 : n; break;
    case 'retry_after': ctl.retryAfter = n; break;
    case 'chunks': ctl.chunks = Math.min(n, MAX_CHUNKS); break;
    case 'chunk_delay': ctl.chunkDelay = n; break;
    case 'hang': ctl.hang = n !== 0; break;
    case 'drop': ctl.dropAfter = n ? -2 : -1; break;
    case 'drop_after': ctl.dropAfter = n; break;
    // Not in the C mock: stream K content chunks, then the provider's
    // mid-stream error (its kind picked by status=, default 500).
    case 'error_after': ctl.errorAfter = n; break;
    default: break;
  }
}

// If text starts with "[mock ...]", apply it over a copy of base; used is
// how many characters the prefix and the blanks after it take (0 if none).
export function parseControl(text, base = defaults()) {
  const ctl = { ...base };
  if (typeof text !== 'string' || !/^\[mock[\]\s]/.test(text)) return { ctl, used: 0 };
  const end = text.indexOf(']');
  for (const word of text.slice(5, end).split(/\s+/)) {
    const eq = word.indexOf('=');
    if (eq > 0) apply(ctl, word.slice(0, eq), word.slice(eq + 1));
  }
  let used = end + 1;
  while (used < text.length && /\s/.test(text[used])) used++;
  return { ctl, used };
}

// Split text into stream pieces: each word with the blanks after it, none
// after the last, so the pieces join back to the text.
function pieces(text) {
  const words = [...text.matchAll(/\S+\s*/g)].map((m) => m[0]);
  if (words.length) words[words.length - 1] = words[words.length - 1].trimEnd();
  return words;
}

// The first 32 lowercase hex digits after "retrieve with id " in any text
function retrieveId(texts) {
  for (const t of texts) {
    const m = /retrieve with id ([0-9a-f]{32})/.exec(t);
    if (m) return m[1];
  }
  return '';
}

// The call's arguments in the pieces a real stream cuts them into
function toolArgPieces(name, props, texts) {
  const wantsId = (props && typeof props === 'object' && 'id' in props) || name.includes('retrieve');
  if (!wantsId) return ['{}'];
  const hex = retrieveId(texts);
  const out = ['{"', 'id', '":"'];
  for (let i = 0; i < hex.length; i += 8) out.push(hex.slice(i, i + 8));
  out.push('"}');
  return out;
}

export function countTokens(texts) {
  let bytes = 0;
  for (const t of texts) bytes += Buffer.byteLength(t, 'utf8');
  return Math.ceil(bytes / 4);
}

// Decide the reply. conv, filled by each family from its own request:
//   controlText  text of the last user turn that has text (switches + question)
//   toolResult   text of the tool result(s) when the last turn answers a call, else null
//   texts        every text of the request (system, messages, tool results):
//                input tokens = ceil(UTF-8 bytes / 4); "retrieve with id" search
//   tools        [{name, props}] the request's function tools (props: parameter properties)
//   toolsOff     the request forbids tool calls (tool_choice none and the like)
//   maxTokens    output limit or null
//   base         switch defaults (the server's)
// Returns {ctl, kind 'text'|'tool', pieces, text, toolName, finish
// 'stop'|'tool'|'length', inputTokens, outputTokens}.
export function plan(conv) {
  const { ctl, used } = parseControl(conv.controlText ?? '', conv.base);
  const out = { ctl, kind: 'text', pieces: [], text: '', toolName: '', finish: 'stop' };
  const tool = !conv.toolResult && ctl.tool && !conv.toolsOff &&
    (conv.tools ?? []).find((t) => t.name === ctl.tool);
  if (conv.toolResult != null) {
    const quoted = [...conv.toolResult].slice(0, TOOL_CHARS).join('');
    out.pieces = pieces(`Mock reply to tool result: ${quoted || '(empty)'}`);
  } else if (tool) {
    out.kind = 'tool';
    out.toolName = tool.name;
    out.finish = 'tool';
    out.pieces = toolArgPieces(tool.name, tool.props, conv.texts ?? []);
  } else if (ctl.chunks >= 0) {
    out.pieces = Array.from({ length: ctl.chunks }, (_, i) => (i + 1 < ctl.chunks ? `w${i + 1} ` : `w${i + 1}`));
  } else {
    const words = (conv.controlText ?? '').slice(used).split(/\s+/).filter(Boolean).slice(0, USER_WORDS);
    out.pieces = pieces(`Mock reply to: ${words.length ? words.join(' ') : '(empty)'}`);
  }
  if (conv.maxTokens != null && conv.maxTokens < out.pieces.length) {
    out.pieces = out.pieces.slice(0, Math.max(0, conv.maxTokens));
    if (out.kind === 'text' && out.pieces.length) {
      out.pieces[out.pieces.length - 1] = out.pieces[out.pieces.length - 1].trimEnd();
    }
    out.finish = 'length';
  }
  out.text = out.pieces.join('');
  out.inputTokens = countTokens(conv.texts ?? []);
  out.outputTokens = out.pieces.length;
  return out;
}

// status= answers at once, unless a stream asked for error_after=: then the
// status only picks the kind of mid-stream error
export const failsUpFront = (ctl, stream) => ctl.status !== 0 && !(stream && ctl.errorAfter >= 0);

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// True while the client is still there to answer
export function alive(res) {
  return !res.destroyed && !res.socket?.destroyed && !res.writableEnded;
}

// latency= and hang= before any header goes out. Resolves false if the
// client left (or never will be answered, for hang).
export async function hold(ctl, res) {
  if (ctl.hang) {
    await new Promise((resolve) => res.on('close', resolve));
    return false;
  }
  if (ctl.latency > 0) await sleep(ctl.latency);
  return alive(res);
}

// Cut the connection the way a real failure would: no clean end
export function cut(res) {
  res.socket?.destroy();
  res.destroy();
}

// drop=1 on a non-stream answer: half the body, then the cut
export function sendCut(res, status, headers, body) {
  const bytes = Buffer.from(body);
  res.writeHead(status, { ...headers, 'content-length': String(bytes.length) });
  res.write(bytes.subarray(0, Math.floor(bytes.length / 2)), () => setTimeout(() => cut(res), 20));
}

// Paces a stream's content chunks: chunk_delay= before each, drop_after=
// (drop=1: halfway) cuts when the next chunk would go, error_after= asks
// for the provider's mid-stream error instead.
export class Pacer {
  constructor(ctl, res, total) {
    this.ctl = ctl;
    this.res = res;
    this.sent = 0;
    this.dropAt = ctl.dropAfter === -2 ? Math.floor((total + 1) / 2) : ctl.dropAfter;
  }

  // 'send' | 'drop' (connection cut, stop writing) | 'error' (write the error, end)
  async next() {
    if (!alive(this.res)) return 'drop';
    if (this.dropAt >= 0 && this.sent >= this.dropAt) {
      cut(this.res);
      return 'drop';
    }
    if (this.ctl.errorAfter >= 0 && this.sent >= this.ctl.errorAfter) return 'error';
    if (this.ctl.chunkDelay > 0) await sleep(this.ctl.chunkDelay);
    if (!alive(this.res)) return 'drop';
    this.sent++;
    return 'send';
  }
}
