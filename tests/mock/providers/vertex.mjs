// Google Vertex AI: the OAuth token endpoint a service account's token_uri
// points at (POST /token, JWT-bearer grant, RS256 checked against the
// configured public key), then Claude (rawPredict / streamRawPredict,
// answered by anthropic.mjs) and Gemini (gemini.mjs) under
// /v1/projects/{project}/locations/{location}/publishers/{publisher}/models/{model}:{method},
// each needing a Bearer token this mock issued and that has not expired.

import { createPublicKey, verify as verifySignature, randomBytes } from 'node:crypto';
import { Buffer } from 'node:buffer';
import { sendJson, sameSecret } from './sse.mjs';
import * as anthropic from './anthropic.mjs';
import * as gemini from './gemini.mjs';
import { plan } from './control.mjs';

const TOKEN_TTL_S = 3599;
const MAX_LIFETIME_S = 3600;
const SKEW_S = 300; // clock skew allowed on iat
const SCOPE = 'https://www.googleapis.com/auth/cloud-platform';

const grantError = (res, error, description) => sendJson(res, 400, { error, error_description: description });
const BAD_TIME = 'Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.';

function decodePart(s) {
  try { return JSON.parse(Buffer.from(s, 'base64url').toString('utf8')); } catch { return null; }
}

// POST /token. state.tokens: access token → expiry (ms since epoch)
export function token(ctx) {
  const { req, res, config, state } = ctx;
  const form = new URLSearchParams(ctx.raw.toString('utf8'));
  const grant = form.get('grant_type');
  if (grant !== 'urn:ietf:params:oauth:grant-type:jwt-bearer') {
    return grantError(res, 'unsupported_grant_type', `Invalid grant_type: ${String(grant ?? '').slice(0, 64)}`);
  }
  const parts = (form.get('assertion') ?? '').split('.');
  const header = parts.length === 3 ? decodePart(parts[0]) : null;
  const claims = parts.length === 3 ? decodePart(parts[1]) : null;
  if (!header || !claims) return grantError(res, 'invalid_grant', 'Invalid JWT: could not parse the assertion.');
  let good = false;
  try {
    good = header.alg === 'RS256' && verifySignature('RSA-SHA256', Buffer.from(`${parts[0]}.${parts[1]}`),
      createPublicKey(config.vertex.publicKeyPem), Buffer.from(parts[2], 'base64url'));
  } catch { good = false; }
  if (!good) return grantError(res, 'invalid_grant', 'Invalid JWT Signature.');
  if (claims.iss !== config.vertex.clientEmail) return grantError(res, 'invalid_grant', 'Invalid grant: account not found');
  const audience = `http://${req.headers.host}/token`;
  if (claims.aud !== audience) return grantError(res, 'invalid_grant', `Invalid JWT: Failed audience check. The right audience is ${audience}`);
  const now = Math.floor(Date.now() / 1000);
  const { iat, exp } = claims;
  if (!Number.isInteger(iat) || !Number.isInteger(exp) || exp <= now || iat > now + SKEW_S || exp <= iat || exp - iat > MAX_LIFETIME_S) {
    return grantError(res, 'invalid_grant', BAD_TIME);
  }
  if (typeof claims.scope !== 'string' || !claims.scope.split(' ').includes(SCOPE)) {
    return grantError(res, 'invalid_scope', 'Invalid OAuth scope or ID token audience provided.');
  }
  const access = `ya29.c.${randomBytes(48).toString('base64url')}`;
  state.tokens.set(access, Date.now() + TOKEN_TTL_S * 1000);
  sendJson(res, 200, { access_token: access, expires_in: TOKEN_TTL_S, token_type: 'Bearer' });
}

function issued(state, auth) {
  const m = /^Bearer (\S+)$/.exec(auth ?? '');
  if (!m) return false;
  for (const [t, expiry] of state.tokens) if (sameSecret(m[1], t)) return expiry > Date.now();
  return false;
}

const PATH = /^\/v1\/projects\/([^/]+)\/locations\/([^/]+)\/publishers\/([^/]+)\/models\/([^/:]+):([A-Za-z]+)$/;

// Errors Google's front end raises, before any model sees the request
function googleFail(res, code, message = null) {
  sendJson(res, code, gemini.googleError(code, message));
}

// Vertex answers throttling and auth for Claude in Google's shape; the
// model's own errors (529, 400...) in Anthropic's
function claudeErrorHook(res) {
  return (ctl) => {
    if (![401, 403, 404, 429].includes(ctl.status)) return false;
    const message = ctl.status === 429
      ? 'Quota exceeded for aiplatform.googleapis.com/online_prediction_requests_per_base_model with base model: anthropic-claude. Please submit a quota increase request.'
      : null;
    sendJson(res, ctl.status, gemini.googleError(ctl.status, message), ctl.retryAfter >= 0 ? { 'retry-after': String(ctl.retryAfter) } : {});
    return true;
  };
}

const claudeFail = (res, message) => sendJson(res, 400, { type: 'error', error: { type: 'invalid_request_error', message } });

export async function handle(ctx) {
  const { req, res, url, config, state } = ctx;
  if (!issued(state, req.headers.authorization)) return googleFail(res, 401);
  const m = PATH.exec(url.pathname);
  if (!m) return googleFail(res, 404, `The requested URL ${url.pathname} was not found on this server.`);
  const [, project, location, publisher, model, method] = m.map((s) => (s ? decodeURIComponent(s) : s));
  const resource = `projects/${project}/locations/${location}/publishers/${publisher}/models/${model}`;
  if (project !== config.vertex.project) {
    return googleFail(res, 403, `Permission 'aiplatform.endpoints.predict' denied on resource '//aiplatform.googleapis.com/${resource}' (or it may not exist).`);
  }
  if (location !== config.vertex.location) return googleFail(res, 404, `Publisher Model \`${resource}\` not found.`);
  const body = ctx.json;
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return googleFail(res, 400, 'Invalid JSON payload received.');

  // Claude token counting is a model of its own, "count-tokens", whose body names the model
  // to count for (unlike rawPredict's, where the URL does).
  if (publisher === 'anthropic' && model === 'count-tokens' && method === 'rawPredict') {
    if (body.anthropic_version !== 'vertex-2023-10-16') return claudeFail(res, "anthropic_version: Input should be 'vertex-2023-10-16'");
    if (typeof body.model !== 'string' || !body.model) return claudeFail(res, 'model: Field required');
    const bad = anthropic.validate({ max_tokens: 1, ...body, model: undefined, stream: undefined }, 'vertex');
    if (bad) return claudeFail(res, bad);
    return sendJson(res, 200, { input_tokens: plan(anthropic.conversation(body, ctx.base)).inputTokens });
  }
  if (publisher === 'anthropic' && (method === 'rawPredict' || method === 'streamRawPredict')) {
    if (body.anthropic_version === undefined) return claudeFail(res, 'anthropic_version: Field required');
    if (body.anthropic_version !== 'vertex-2023-10-16') return claudeFail(res, "anthropic_version: Input should be 'vertex-2023-10-16'");
    if ('model' in body) return claudeFail(res, 'model: Extra inputs are not permitted');
    const bad = anthropic.validate(body, 'vertex');
    if (bad) return claudeFail(res, bad);
    // "claude-3-5-sonnet-v2@20241022" is answered as "claude-3-5-sonnet-v2-20241022"
    return anthropic.answer(res, body, model.replace('@', '-'), ctx.base, 'vrtx_', {}, claudeErrorHook(res));
  }
  // Each publisher serves its own models only.
  if ((publisher === 'google' && !/^gemini-/.test(model)) || (publisher === 'anthropic' && model !== 'count-tokens' && !/^claude-/.test(model)))
    return googleFail(res, 404, `Publisher Model \`${resource}\` not found.`);
  if (publisher === 'google' && (method === 'generateContent' || method === 'streamGenerateContent')) {
    const bad = gemini.validate(body);
    if (bad) return googleFail(res, 400, bad);
    const mode = method === 'generateContent' ? 'json' : url.searchParams.get('alt') === 'sse' ? 'sse' : 'array';
    return gemini.answer(res, body, model, mode, ctx.base);
  }
  return googleFail(res, 404, `Publisher Model \`${resource}\` not found.`);
}
