// Bedrock-shaped SigV4 vectors from AWS's own JS signer (@smithy/signature-v4 with
// @aws-crypto/sha256-js), in the layout of AWS's test suite: NAME.req (the request as sent,
// with the headers the signer added), .creq, .sts, .authz. Usage: node bedrock-vectors.mjs DIR
import { SignatureV4, getCanonicalHeaders, getPayloadHash } from "@smithy/signature-v4";
import { Sha256 } from "@aws-crypto/sha256-js";
import { HttpRequest } from "@smithy/protocol-http";
import fs from "node:fs";

const out = process.argv[2];
const date = new Date("2024-06-20T12:34:56Z");
const host = "bedrock-runtime.us-east-1.amazonaws.com";
const converse = '{"messages":[{"role":"user","content":[{"text":"Hello"}]}],"inferenceConfig":{"maxTokens":64}}';
const cases = [
  // The model id's ':' goes on the wire as %3A, as the SDK's serializer writes it.
  { name: "bedrock-converse", applyChecksum: false,
    path: "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse", body: converse },
  // The same with x-amz-content-sha256 (the SDK's default).
  { name: "bedrock-converse-content-sha256", applyChecksum: true,
    path: "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse", body: converse },
  // Temporary credentials: x-amz-security-token is signed.
  { name: "bedrock-converse-stream-session-token", applyChecksum: true,
    token: "IQoJb3JpZ2luX2VjEXAMPLEsessionTOKEN/with+slash=and+plus==",
    path: "/model/us.anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse-stream",
    body: '{"messages":[{"role":"user","content":[{"text":"Hi ሴ"}]}]}' },
];
for (const c of cases) {
  const signer = new SignatureV4({
    credentials: { accessKeyId: "AKIDEXAMPLE",
                   secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                   sessionToken: c.token },
    region: "us-east-1", service: "bedrock", sha256: Sha256, applyChecksum: c.applyChecksum,
  });
  const request = new HttpRequest({ method: "POST", protocol: "https:", hostname: host,
    path: c.path, body: c.body,
    headers: { host, "content-type": "application/json", accept: "application/json" } });
  const signed = await signer.sign(request, { signingDate: date });
  const h = signed.headers;
  // The intermediate texts, through the signer's own steps.
  const creq = signer.createCanonicalRequest(signed, getCanonicalHeaders(signed),
                                             await getPayloadHash(signed, Sha256));
  const scope = `${h["x-amz-date"].slice(0, 8)}/us-east-1/bedrock/aws4_request`;
  const sts = await signer.createStringToSign(h["x-amz-date"], scope, creq, "AWS4-HMAC-SHA256");
  let req = `POST ${c.path} HTTP/1.1\nHost:${host}\nContent-Type:application/json\n` +
            `Accept:application/json\nX-Amz-Date:${h["x-amz-date"]}\n`;
  if (h["x-amz-content-sha256"]) req += `X-Amz-Content-Sha256:${h["x-amz-content-sha256"]}\n`;
  if (c.token) req += `X-Amz-Security-Token:${c.token}\n`;
  fs.writeFileSync(`${out}/${c.name}.req`, `${req}\n${c.body}`);
  fs.writeFileSync(`${out}/${c.name}.creq`, creq);
  fs.writeFileSync(`${out}/${c.name}.sts`, sts);
  fs.writeFileSync(`${out}/${c.name}.authz`, h["authorization"]);
}
