// Gemini on Vertex AI: generateContent and streamGenerateContent
// (?alt=sse: "data: {...}\r\n\r\n" events; without it a JSON array sent
// element by element, as Google does). GenerateContentRequest in,
// GenerateContentResponse out, shapes as in googleapis/js-genai.

import { plan, hold, Pacer, failsUpFront } from './control.mjs';
import { openStream, writeEvent, endStream, sendJson, newId } from './sse.mjs';

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

// Google's JSON mapping takes lowerCamel and snake_case member names alike
const snake = (name) => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
const get = (obj, name) => (isObject(obj) ? obj[name] ?? obj[snake(name)] : undefined);

const STATUS = {
  400: ['INVALID_ARGUMENT', 'Mock bad request.'],
  401: ['UNAUTHENTICATED', 'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. ' +
    'See https://developers.google.com/identity/sign-in/web/devconsole-project.'],
  403: ['PERMISSION_DENIED', 'Permission denied.'],
  404: ['NOT_FOUND', 'Requested entity was not found.'],
  429: ['RESOURCE_EXHAUSTED', 'Resource exhausted. Please try again later. Please refer to https://cloud.google.com/vertex-ai/generative-ai/docs/error-code-429 for more details.'],
  500: ['INTERNAL', 'Internal error encountered.'],
  503: ['UNAVAILABLE', 'The service is currently unavailable.'],
  504: ['DEADLINE_EXCEEDED', 'Deadline exceeded.'],
};

// Google's error body {"error":{"code","message","status"}}
export function googleError(code, message = null) {
  const [status, text] = STATUS[code] ?? (code >= 500 ? ['INTERNAL', STATUS[500][1]] : ['FAILED_PRECONDITION', `Mock error with status ${code}.`]);
  return { error: { code, message: message ?? text, status } };
}

const NO_PARTS = 'Unable to submit request because it must include at least one parts field, which describes the prompt input. ' +
  'Learn more: https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/gemini';

// The first problem in Google's words, or null
export function validate(body) {
  const contents = body.contents;
  if (!Array.isArray(contents) || !contents.length) return NO_PARTS;
  let calls = 0; // functionCall parts of the previous model turn
  for (const [i, c] of contents.entries()) {
    if (!isObject(c)) return `Invalid value at 'contents[${i}]' (type.googleapis.com/google.cloud.aiplatform.v1.Content)`;
    const role = c.role ?? 'user';
    if (role !== 'user' && role !== 'model') return 'Please use a valid role: user, model.';
    if (!Array.isArray(c.parts) || !c.parts.length) return NO_PARTS;
    for (const part of c.parts) {
      if (!isObject(part)) return NO_PARTS;
      if (part.text === '') return 'Unable to submit request because it has an empty text parameter. Add a value to the parameter and try again.';
    }
    const responses = c.parts.filter((p) => get(p, 'functionResponse')).length;
    if (responses && !calls) return 'Please ensure that function response turn comes immediately after a function call turn.';
    if (calls && responses !== calls) {
      return 'Please ensure that the number of function response parts is equal to the number of function call parts of the function call turn.';
    }
    calls = role === 'model' ? c.parts.filter((p) => get(p, 'functionCall')).length : 0;
  }
  if ((contents[contents.length - 1].role ?? 'user') !== 'user') {
    return 'Please ensure that multiturn requests ends with a user role or a function response.';
  }
  const max = get(get(body, 'generationConfig'), 'maxOutputTokens');
  if (max !== undefined && (!Number.isInteger(max) || max < 1)) {
    return `Unable to submit request because it has a maxOutputTokens value of ${max} but the supported range is from 1 (inclusive) to 65537 (exclusive). Update the value and try again.`;
  }
  return null;
}

// A function response's text: the response itself when it is one string
// member (as {"result": "..."}), else its JSON
function responseText(fr) {
  const r = get(fr, 'response');
  if (typeof r === 'string') return r;
  const values = isObject(r) ? Object.values(r) : [];
  return values.length === 1 && typeof values[0] === 'string' ? values[0] : JSON.stringify(r ?? {});
}

function conversation(body, base) {
  const textOf = (parts) => (Array.isArray(parts) ? parts : []).filter((p) => typeof p?.text === 'string').map((p) => p.text).join('\n');
  const texts = [textOf(get(get(body, 'systemInstruction'), 'parts'))];
  let controlText = '';
  let toolResult = null;
  for (const c of body.contents) {
    const text = textOf(c.parts);
    const results = c.parts.filter((p) => get(p, 'functionResponse')).map((p) => responseText(get(p, 'functionResponse')));
    texts.push(text, ...results);
    if ((c.role ?? 'user') === 'user' && text) controlText = text;
    toolResult = results.length ? results.join('\n') : null;
  }
  const tools = (body.tools ?? []).flatMap((t) => get(t, 'functionDeclarations') ?? [])
    .map((f) => ({ name: f.name, props: (f.parameters ?? get(f, 'parametersJsonSchema'))?.properties }));
  return {
    controlText, toolResult, texts, tools, base,
    toolsOff: get(get(get(body, 'toolConfig'), 'functionCallingConfig'), 'mode') === 'NONE',
    maxTokens: get(get(body, 'generationConfig'), 'maxOutputTokens') ?? null,
  };
}

function usage(p, output) {
  return {
    promptTokenCount: p.inputTokens, candidatesTokenCount: output, totalTokenCount: p.inputTokens + output,
    trafficType: 'ON_DEMAND',
    promptTokensDetails: [{ modality: 'TEXT', tokenCount: p.inputTokens }],
    candidatesTokensDetails: [{ modality: 'TEXT', tokenCount: output }],
  };
}

const FINISH = { stop: 'STOP', tool: 'STOP', length: 'MAX_TOKENS' };

function args(text) {
  try { return JSON.parse(text); } catch { return {}; }
}

// mode: 'json' (generateContent), 'sse' or 'array' (streamGenerateContent)
export async function answer(res, body, model, mode, base) {
  const p = plan(conversation(body, base));
  if (!(await hold(p.ctl, res))) return;
  if (failsUpFront(p.ctl, mode !== 'json')) {
    const extra = p.ctl.retryAfter >= 0 ? { 'retry-after': String(p.ctl.retryAfter) } : {};
    return sendJson(res, p.ctl.status, googleError(p.ctl.status), extra);
  }
  const meta = { modelVersion: model, createTime: new Date().toISOString(), responseId: newId('', 20) };
  const candidate = (parts, finish) => ({ content: { role: 'model', parts }, ...(finish ? { finishReason: finish } : {}), index: 0 });
  // A function call comes whole in one piece, as Gemini sends it
  const chunks = p.kind === 'tool' ? [[{ functionCall: { name: p.toolName, args: args(p.text) } }]] : p.pieces.map((t) => [{ text: t }]);
  if (mode === 'json') {
    const parts = p.kind === 'tool' ? chunks[0] : [{ text: p.text }];
    return sendJson(res, 200, { candidates: [candidate(parts, FINISH[p.finish])], usageMetadata: usage(p, p.outputTokens), ...meta }, {}, p.ctl);
  }
  openStream(res, {}, mode === 'sse' ? 'text/event-stream' : 'application/json; charset=UTF-8');
  let first = true;
  const send = (obj) => {
    if (mode === 'sse') return writeEvent(res, null, obj, '\r\n');
    const text = (first ? '[' : ',\r\n') + JSON.stringify(obj);
    first = false;
    return new Promise((resolve) => res.write(text, () => resolve()));
  };
  const close = () => {
    if (mode === 'array') res.write(first ? '[]' : ']');
    endStream(res);
  };
  if (!chunks.length) chunks.push([{ text: '' }]);
  const pacer = new Pacer(p.ctl, res, chunks.length);
  let sent = 0;
  for (const [i, parts] of chunks.entries()) {
    const step = await pacer.next();
    if (step === 'drop') return;
    if (step === 'error') {
      await send(googleError(p.ctl.status || 500));
      return close();
    }
    sent += p.kind === 'tool' ? p.outputTokens : 1;
    const last = i === chunks.length - 1;
    await send({ candidates: [candidate(parts, last ? FINISH[p.finish] : null)], usageMetadata: usage(p, Math.min(sent, p.outputTokens)), ...meta });
  }
  close();
}
