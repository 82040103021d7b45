// AWS Bedrock runtime: POST /model/{modelId}/converse | converse-stream |
// invoke | invoke-with-response-stream, every request SigV4-checked
// (sigv4.mjs). Streams are binary event-stream frames built with AWS's own
// codec (@smithy/eventstream-codec), one frame per res.write.

import { randomUUID } from 'node:crypto';
import { Buffer } from 'node:buffer';
import { EventStreamCodec } from '@smithy/eventstream-codec';
import { fromUtf8, toUtf8 } from '@smithy/util-utf8';
import { verify } from './sigv4.mjs';
import { plan, hold, Pacer, failsUpFront } from './control.mjs';
import { openStream, endStream, sendJson, newId } from './sse.mjs';
import * as anthropic from './anthropic.mjs';

const codec = new EventStreamCodec(toUtf8, fromUtf8);
const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

const BEDROCK = 'http://internal.amazon.com/coral/com.amazon.bedrock/';
const AVAILABILITY = 'http://internal.amazon.com/coral/com.amazon.coral.availability/';

// status → [x-amzn-ErrorType name, its coral namespace, message, stream exception name]
const EXCEPTIONS = {
  400: ['ValidationException', BEDROCK, 'Mock bad request.', 'validationException'],
  403: ['AccessDeniedException', BEDROCK, "You don't have access to the model with the specified model ID.", 'modelStreamErrorException'],
  404: ['ResourceNotFoundException', BEDROCK, 'Could not resolve the foundation model from the provided model identifier.', 'modelStreamErrorException'],
  408: ['ModelTimeoutException', BEDROCK, 'Model has timed out in processing the request. Try your request again.', 'modelTimeoutException'],
  424: ['ModelErrorException', BEDROCK, 'Received error from the model.', 'modelStreamErrorException'],
  429: ['ThrottlingException', AVAILABILITY, 'Too many requests, please wait before trying again.', 'throttlingException'],
  500: ['InternalServerException', BEDROCK, 'The server encountered an internal error while processing the request.', 'internalServerException'],
  503: ['ServiceUnavailableException', AVAILABILITY, 'Bedrock is unable to process your request.', 'serviceUnavailableException'],
};

export function exceptionFor(status) {
  const e = EXCEPTIONS[status] ?? (status >= 502 ? EXCEPTIONS[503] : status >= 500 ? EXCEPTIONS[500] : EXCEPTIONS[400]);
  return { status, type: e[0], namespace: e[1], message: e[2], streamType: e[3] };
}

function headers() {
  return { 'x-amzn-requestid': randomUUID() };
}

// Errors as AWS's restJson protocol has them: {"message"} + x-amzn-ErrorType
function fail(res, status, type, message, extra = {}) {
  sendJson(res, status, { message }, { ...headers(), 'x-amzn-errortype': type, ...extra });
}
const invalid = (res, message) => fail(res, 400, `ValidationException:${BEDROCK}`, message);

// The "p" member Bedrock pads every event payload with, so the size of a
// frame does not give its content away: a prefix of this alphabet.
const PAD = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
const pad = () => PAD.slice(0, 1 + Math.floor(Math.random() * PAD.length));

function frame(res, type, payload, messageType = 'event') {
  const headersOut = {
    [messageType === 'event' ? ':event-type' : ':exception-type']: { type: 'string', value: type },
    ':content-type': { type: 'string', value: 'application/json' },
    ':message-type': { type: 'string', value: messageType },
  };
  const bytes = codec.encode({ headers: headersOut, body: fromUtf8(JSON.stringify(payload)) });
  return new Promise((resolve) => res.write(bytes, () => resolve()));
}
const event = (res, type, payload) => frame(res, type, { ...payload, p: pad() });
const exception = (res, status) => {
  const e = exceptionFor(status);
  return frame(res, e.streamType, { message: e.message }, 'exception');
};

// --- Converse ------------------------------------------------------------

const textOf = (blocks) => (Array.isArray(blocks) ? blocks : [])
  .map((b) => (typeof b?.text === 'string' ? b.text : isObject(b?.json) ? JSON.stringify(b.json) : '')).filter(Boolean).join('\n');

// Converse's checks, with Bedrock's words; null if fine
export function validateConverse(body) {
  const msgs = body.messages;
  if (!Array.isArray(msgs) || !msgs.length) {
    return 'A conversation must start with a user message. Try again with a conversation that starts with a user message.';
  }
  const usesTools = msgs.some((m) => Array.isArray(m?.content) && m.content.some((b) => b?.toolUse || b?.toolResult));
  if (usesTools && !isObject(body.toolConfig)) return 'The toolConfig field must be defined when using toolUse and toolResult content blocks.';
  let pending = null; // toolUseIds of the previous assistant turn
  for (const [i, m] of msgs.entries()) {
    if (!isObject(m) || (m.role !== 'user' && m.role !== 'assistant')) {
      return `1 validation error detected: Value '${m?.role}' at 'messages.${i + 1}.member.role' failed to satisfy constraint: Member must satisfy enum value set: [user, assistant]`;
    }
    if (i === 0 && m.role !== 'user') return 'A conversation must start with a user message. Try again with a conversation that starts with a user message.';
    if (i > 0 && m.role === msgs[i - 1].role) {
      return 'A conversation must alternate between user and assistant roles. Make sure the conversation alternates between user and assistant roles and try again.';
    }
    if (!Array.isArray(m.content) || !m.content.length) {
      return `The content field in the Message object at messages.${i} is empty. Add a ContentBlock object to the content field and try again.`;
    }
    const results = m.content.filter((b) => b?.toolResult).map((b) => b.toolResult.toolUseId);
    if (results.length && !pending) return `The number of toolResult blocks at messages.${i}.content exceeds the number of toolUse blocks of previous turn.`;
    if (pending) {
      const stray = results.find((id) => !pending.includes(id));
      if (stray !== undefined || results.length > pending.length) {
        return `The number of toolResult blocks at messages.${i}.content exceeds the number of toolUse blocks of previous turn.`;
      }
      const left = pending.filter((id) => !results.includes(id));
      if (left.length) return `Expected toolResult blocks at messages.${i}.content for the following Ids: ${left.join(', ')}`;
    }
    const uses = m.content.filter((b) => b?.toolUse).map((b) => b.toolUse.toolUseId);
    pending = uses.length ? uses : null;
  }
  const max = body.inferenceConfig?.maxTokens;
  if (max !== undefined && (!Number.isInteger(max) || max < 1)) {
    return `1 validation error detected: Value '${max}' at 'inferenceConfig.maxTokens' failed to satisfy constraint: Member must have value greater than or equal to 1`;
  }
  for (const [i, t] of (body.toolConfig?.tools ?? []).entries()) {
    if (t?.toolSpec && (typeof t.toolSpec.name !== 'string' || !isObject(t.toolSpec.inputSchema))) {
      return `The toolConfig.tools.${i}.toolSpec field requires a name and an inputSchema.`;
    }
  }
  return null;
}

function converseConversation(body, base) {
  const texts = Array.isArray(body.system) ? [textOf(body.system)] : [];
  let controlText = '';
  let toolResult = null;
  for (const m of body.messages) {
    const text = textOf(m.content.filter((b) => typeof b?.text === 'string'));
    if (text) texts.push(text);
    const results = m.content.filter((b) => b?.toolResult).map((b) => textOf(b.toolResult.content));
    texts.push(...results);
    if (m.role === 'user' && text) controlText = text;
    toolResult = m.role === 'user' && results.length ? results.join('\n') : null;
  }
  return {
    controlText, toolResult, texts, base,
    tools: (body.toolConfig?.tools ?? []).filter((t) => t?.toolSpec).map((t) => ({ name: t.toolSpec.name, props: t.toolSpec.inputSchema?.json?.properties })),
    maxTokens: body.inferenceConfig?.maxTokens ?? null,
  };
}

const STOP = { stop: 'end_turn', tool: 'tool_use', length: 'max_tokens' };

async function converse(res, body, stream, base) {
  const started = Date.now();
  const bad = validateConverse(body);
  if (bad) return invalid(res, bad);
  const p = plan(converseConversation(body, base));
  if (!(await hold(p.ctl, res))) return;
  if (failsUpFront(p.ctl, stream)) return switchError(res, p.ctl);
  const toolUseId = newId('tooluse_', 22);
  const usage = { inputTokens: p.inputTokens, outputTokens: p.outputTokens, totalTokens: p.inputTokens + p.outputTokens };
  if (!stream) {
    let input = {};
    try { input = JSON.parse(p.text); } catch { /* cut short by maxTokens */ }
    const content = p.kind === 'tool' ? [{ toolUse: { toolUseId, name: p.toolName, input } }] : [{ text: p.text }];
    return sendJson(res, 200, { output: { message: { role: 'assistant', content } }, stopReason: STOP[p.finish], usage,
      metrics: { latencyMs: Date.now() - started } }, headers(), p.ctl);
  }
  openStream(res, headers(), 'application/vnd.amazon.eventstream');
  await event(res, 'messageStart', { role: 'assistant' });
  if (p.kind === 'tool') await event(res, 'contentBlockStart', { contentBlockIndex: 0, start: { toolUse: { toolUseId, name: p.toolName } } });
  const pacer = new Pacer(p.ctl, res, p.pieces.length);
  for (const piece of p.pieces) {
    const step = await pacer.next();
    if (step === 'drop') return;
    if (step === 'error') {
      await exception(res, p.ctl.status || 500);
      return endStream(res);
    }
    const delta = p.kind === 'tool' ? { toolUse: { input: piece } } : { text: piece };
    await event(res, 'contentBlockDelta', { contentBlockIndex: 0, delta });
  }
  await event(res, 'contentBlockStop', { contentBlockIndex: 0 });
  await event(res, 'messageStop', { stopReason: STOP[p.finish] });
  await event(res, 'metadata', { usage, metrics: { latencyMs: Date.now() - started } });
  endStream(res);
}

function switchError(res, ctl) {
  const e = exceptionFor(ctl.status);
  fail(res, ctl.status, `${e.type}:${e.namespace}`, e.message, ctl.retryAfter >= 0 ? { 'retry-after': String(ctl.retryAfter) } : {});
}

// --- InvokeModel (Claude) ------------------------------------------------

const malformed = (what) => `Malformed input request: #: ${what}, please reformat your input and try again.`;

// "us.anthropic.claude-3-5-sonnet-20240620-v1:0" → "claude-3-5-sonnet-20240620",
// the name Bedrock's Claude answers carry
const bareModel = (id) => id.replace(/^.*anthropic\./, '').replace(/-v\d+(:\d+)?$/, '');

async function invoke(res, body, modelId, stream, base) {
  const started = Date.now();
  if (!/anthropic\./.test(modelId)) return invalid(res, 'The provided model identifier is invalid.');
  for (const key of ['model', 'stream']) if (key in body) return invalid(res, malformed(`extraneous key [${key}] is not permitted`));
  for (const key of ['anthropic_version', 'max_tokens', 'messages']) if (!(key in body)) return invalid(res, malformed(`required key [${key}] not found`));
  if (body.anthropic_version !== 'bedrock-2023-05-31') return invalid(res, 'Invalid API version: anthropic_version must be "bedrock-2023-05-31".');
  const bad = anthropic.validate(body, 'bedrock');
  if (bad) return invalid(res, bad);
  const p = plan(anthropic.conversation(body, base));
  if (!(await hold(p.ctl, res))) return;
  if (failsUpFront(p.ctl, stream)) return switchError(res, p.ctl);
  const model = bareModel(modelId);
  const counts = {
    'x-amzn-bedrock-input-token-count': String(p.inputTokens),
    'x-amzn-bedrock-output-token-count': String(p.outputTokens),
  };
  if (!stream) {
    return sendJson(res, 200, anthropic.message(p, model, 'bdrk_'),
      { ...headers(), ...counts, 'x-amzn-bedrock-invocation-latency': String(Date.now() - started) }, p.ctl);
  }
  openStream(res, { ...headers(), 'x-amzn-bedrock-content-type': 'application/json' }, 'application/vnd.amazon.eventstream');
  // Each Anthropic event travels base64'd in a "chunk" frame
  const emit = (name, data) => event(res, 'chunk', { bytes: Buffer.from(JSON.stringify(data)).toString('base64') });
  const firstByte = Date.now() - started;
  const metrics = () => ({ 'amazon-bedrock-invocationMetrics': {
    inputTokenCount: p.inputTokens, outputTokenCount: p.outputTokens,
    invocationLatency: Date.now() - started, firstByteLatency: firstByte } });
  const pacer = new Pacer(p.ctl, res, p.pieces.length);
  const onError = (status) => exception(res, status);
  if (await anthropic.streamMessage(p, model, 'bdrk_', emit, pacer, onError, metrics)) endStream(res);
}

// --- routes --------------------------------------------------------------

const OPS = { converse: [converse, false], 'converse-stream': [converse, true], invoke: [invoke, false], 'invoke-with-response-stream': [invoke, true] };

export async function handle(ctx) {
  const { req, res, config } = ctx;
  const m = /^\/model\/([^/]+)\/(converse|converse-stream|invoke|invoke-with-response-stream)$/.exec(req.url.split('?')[0]);
  if (!m) return fail(res, 404, 'UnknownOperationException', 'Unknown operation');
  const denied = await verify(req, ctx.raw, config.aws);
  if (denied) return fail(res, denied.status, denied.type, denied.message);
  if (!isObject(ctx.json)) return invalid(res, 'Malformed input request, please reformat your input and try again.');
  const [op, stream] = OPS[m[2]];
  const modelId = decodeURIComponent(m[1]);
  // Model ids are "<provider>.<model>", optionally behind a region prefix ("us.anthropic...").
  if (!/^([a-z]{2,4}\.)?[a-z0-9-]+\.[A-Za-z0-9.:-]+$/.test(modelId)) return invalid(res, 'The provided model identifier is invalid.');
  return op === converse ? converse(res, ctx.json, stream, ctx.base) : invoke(res, ctx.json, modelId, stream, ctx.base);
}
