// Azure OpenAI: POST /openai/deployments/{deployment}/{chat/completions |
// embeddings | completions}?api-version=YYYY-MM-DD[-preview], api-key header.
// Bodies and answers are OpenAI's (chat.mjs, openai.mjs) with the
// deployment's model in "model" and Azure's content-filter members; the
// errors Azure itself raises (key, version, deployment, throttling) have
// its {"error":{"code","message"}} shape, the model's pass through in
// OpenAI's.

import { randomUUID } from 'node:crypto';
import { sendJson, sameSecret } from './sse.mjs';
import * as chat from './chat.mjs';
import { errorFor, validateEmbeddings, answerEmbeddings, validateCompletions, answerCompletions } from './openai.mjs';

const ROUTES = {
  'chat/completions': ['ChatCompletions_Create', chat.validate, chat.answer],
  embeddings: ['Embeddings_Create', validateEmbeddings, answerEmbeddings],
  completions: ['Completions_Create', validateCompletions, answerCompletions],
};

function headers() {
  const id = randomUUID();
  return { 'apim-request-id': id, 'x-request-id': id, 'x-ms-region': 'East US', 'x-ms-client-request-id': 'Not-Set' };
}

const azureError = (res, status, code, message, extra = {}) =>
  sendJson(res, status, { error: { code, message } }, { ...headers(), ...extra });

// Well formed (a real date, optionally -preview) and not older than the first GA API
function goodVersion(v) {
  const m = /^(\d{4})-(\d{2})-(\d{2})(-preview)?$/.exec(v);
  if (!m) return false;
  const d = new Date(`${m[1]}-${m[2]}-${m[3]}T00:00:00Z`);
  return !Number.isNaN(d.getTime()) && d.toISOString().startsWith(`${m[1]}-${m[2]}-${m[3]}`) && v >= '2022-12-01';
}

// The answer to [mock status=]: throttling in Azure's words (retry-after
// always, as Azure sends it), the rest as the model behind would say it
function switchError(status, ctl, operation, version, model) {
  if (status === 429) {
    const after = ctl.retryAfter >= 0 ? ctl.retryAfter : 1;
    return { status, headers: { 'retry-after': String(after), 'retry-after-ms': String(after * 1000) }, body: { error: { code: '429',
      message: `Requests to the ${operation} Operation under Azure OpenAI API version ${version} have exceeded token rate limit of your current OpenAI S0 pricing tier. ` +
        `Please retry after ${after} second${after === 1 ? '' : 's'}. Please go here: https://aka.ms/oai/quotaincrease if you would like to further increase the default rate limit.` } } };
  }
  if (status === 401) return { status, headers: {}, body: { error: { code: '401', message: DENIED } } };
  const e = errorFor(status, model);
  return { status, headers: ctl.retryAfter >= 0 ? { 'retry-after': String(ctl.retryAfter) } : {}, body: { error: e.error } };
}

const DENIED = 'Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active ' +
  'subscription and use a correct regional API endpoint for your resource.';

export async function handle(ctx) {
  const { req, res, url, config } = ctx;
  const m = /^\/openai\/deployments\/([^/]+)\/(chat\/completions|embeddings|completions)$/.exec(url.pathname);
  if (!m) return azureError(res, 404, '404', 'Resource not found');
  const version = url.searchParams.get('api-version');
  if (!version) return azureError(res, 404, '404', 'Resource not found');
  if (!goodVersion(version)) return azureError(res, 400, 'BadRequest', 'API version not supported');
  if (!sameSecret(req.headers['api-key'], config.azureKey)) return azureError(res, 401, '401', DENIED);
  const deployment = decodeURIComponent(m[1]);
  const model = config.azureDeployments?.[deployment];
  if (!model) {
    return azureError(res, 404, 'DeploymentNotFound', 'The API deployment for this resource does not exist. If you created the deployment ' +
      'within the last 5 minutes, please wait a moment and try again.');
  }
  const body = ctx.json;
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    return sendJson(res, 400, { error: chat.oaiError(400, 'We could not parse the JSON body of your request.').error }, headers());
  }
  const [operation, validate, answer] = ROUTES[m[2]];
  const bad = validate(body, false);
  if (bad) return sendJson(res, bad.status, { error: bad.error }, headers());
  const opts = { model, azure: true, headers: headers(), errorFor: (s, ctl) => switchError(s, ctl, operation, version, model) };
  return answer(res, body, opts, ctx.base);
}
