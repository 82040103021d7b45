// AWS Signature Version 4 checked the way AWS checks it, with AWS's own
// signer (@smithy/signature-v4) rather than a copy of the gateway's
// arithmetic: take the received method, raw path, query, the headers the
// Authorization header says were signed, the body and x-amz-date;
// recompute with the configured credentials; compare.

import { createHash, timingSafeEqual } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import { Sha256 } from '@aws-crypto/sha256-js';
import { sameSecret } from './sse.mjs';

const SERVICE = 'bedrock';
const SKEW_MS = 5 * 60 * 1000;
const CORAL = 'http://internal.amazon.com/coral/com.amazon.coral.service/';

// {status, type, message}: the error AWS answers with
const deny = (type, message, status = 403) => ({ status, type: `${type}:${CORAL}`, message });
const mismatch = () => deny('InvalidSignatureException', 'The request signature we calculated does not match the signature you provided. ' +
  'Check your AWS Secret Access Key and signing method. Consult the service documentation for details.');

const AUTH = /^AWS4-HMAC-SHA256 Credential=([^,\s]+),\s*SignedHeaders=([^,\s]+),\s*Signature=([^,\s]+)$/;

function parseAmzDate(s) {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s ?? '');
  return m ? new Date(Date.UTC(+m[1], m[2] - 1, +m[3], +m[4], +m[5], +m[6])) : null;
}

const amz = (d) => d.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');

// The query as the signer takes it: decoded names to a value or values
function queryObject(rawQuery) {
  const out = {};
  for (const [k, v] of new URLSearchParams(rawQuery)) {
    if (k in out) out[k] = [].concat(out[k], v);
    else out[k] = v;
  }
  return out;
}

// null when the request is signed right; else the error to answer.
// req: the node request; body: the raw Buffer; aws: the configured
// {accessKeyId, secretAccessKey, sessionToken?, region}.
export async function verify(req, body, aws, now = new Date()) {
  const auth = req.headers.authorization;
  if (!auth) return deny('MissingAuthenticationTokenException', 'Missing Authentication Token');
  const m = AUTH.exec(auth.trim());
  if (!m) return deny('IncompleteSignatureException', `Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters. Authorization=${auth.split(' ')[0]}`);
  const [akid, day, region, service, terminator] = m[1].split('/');
  if (!sameSecret(akid, aws.accessKeyId)) return deny('UnrecognizedClientException', 'The security token included in the request is invalid.');
  const token = req.headers['x-amz-security-token'];
  if ((aws.sessionToken || token !== undefined) && !sameSecret(token, aws.sessionToken)) {
    return deny('UnrecognizedClientException', 'The security token included in the request is invalid.');
  }
  const amzDate = req.headers['x-amz-date'];
  const date = parseAmzDate(amzDate);
  if (!date) return deny('IncompleteSignatureException', "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.");
  if (date.getTime() < now.getTime() - SKEW_MS) {
    return deny('InvalidSignatureException', `Signature expired: ${amzDate} is now earlier than ${amz(new Date(now.getTime() - SKEW_MS))} (${amz(now)} - 5 min.)`);
  }
  if (date.getTime() > now.getTime() + SKEW_MS) {
    return deny('InvalidSignatureException', `Signature not yet current: ${amzDate} is still later than ${amz(new Date(now.getTime() + SKEW_MS))} (${amz(now)} + 5 min.)`);
  }
  if (day !== amzDate.slice(0, 8)) {
    return deny('InvalidSignatureException', `Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '${day}' != '${amzDate.slice(0, 8)}', from '${amzDate}'.`);
  }
  if (region !== aws.region) return deny('InvalidSignatureException', `Credential should be scoped to a valid region. `);
  if (service !== SERVICE) return deny('InvalidSignatureException', `Credential should be scoped to correct service: '${SERVICE}'. `);
  if (terminator !== 'aws4_request') return deny('InvalidSignatureException', "Credential should be scoped with a valid terminator: 'aws4_request', not '" + terminator + "'. ");
  const signedNames = m[2].split(';');
  if (!signedNames.includes('host')) return deny('InvalidSignatureException', "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.");

  // A signed payload hash must be the body's: AWS hashes what it received
  const claimed = req.headers['x-amz-content-sha256'];
  if (claimed !== undefined && claimed !== createHash('sha256').update(body).digest('hex')) return mismatch();

  const headers = {};
  for (const name of signedNames) {
    if (req.headers[name] === undefined) return mismatch(); // signed a header that never came
    headers[name] = req.headers[name];
  }
  const [rawPath, rawQuery = ''] = req.url.split('?');
  const signer = new SignatureV4({
    credentials: { accessKeyId: aws.accessKeyId, secretAccessKey: aws.secretAccessKey, sessionToken: aws.sessionToken },
    region: aws.region, service: SERVICE, sha256: Sha256,
    uriEscapePath: true, // every AWS service but S3 signs the path encoded once more
    applyChecksum: false, // hash only what the client chose to sign
  });
  const signed = await signer.sign(
    { method: req.method, protocol: 'http:', hostname: '127.0.0.1', path: rawPath, query: queryObject(rawQuery), headers, body },
    { signingDate: date, signableHeaders: new Set(signedNames) },
  );
  const want = /Signature=([0-9a-f]{64})/.exec(signed.headers.authorization)[1];
  const given = m[3];
  const wantNames = /SignedHeaders=([^,]+)/.exec(signed.headers.authorization)[1];
  if (wantNames !== m[2] || given.length !== want.length || !timingSafeEqual(Buffer.from(given), Buffer.from(want))) return mismatch();
  return null;
}
