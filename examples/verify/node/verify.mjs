// Verify the identity guichet sends to your application (Node, `jose`).
//
// Copy verifyAssertion and verifySignature into your application; the command line below is how
// the guichet test suite runs them:
//
//   node verify.mjs --jwks-url https://app.example.gouv.fr/.guichet/jwks.json \
//     --issuer https://app.example.gouv.fr --audience http://127.0.0.1:9000 \
//     --hmac-key-env GUICHET_HMAC_KEY < request.json
//
// request.json: {"method": "GET", "path": "/path?query", "headers": {"x-guichet-sub": "...", ...}}
// Exit 0 and "OK sub=..." when both proofs hold, exit 1 and "REJECTED: reason" otherwise.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { parseArgs } from 'node:util';
import { createRemoteJWKSet, jwtVerify } from 'jose';

const ASSERTION_HEADER = 'x-guichet-assertion';
const SIGNATURE_HEADER = 'x-guichet-signature';

const keySets = new Map();

/** Checks the JWT's signature (key from the JWKS by kid), iss, aud, exp; returns its claims. */
export async function verifyAssertion(token, { jwksUrl, issuer, audience }) {
  if (!keySets.has(jwksUrl)) keySets.set(jwksUrl, createRemoteJWKSet(new URL(jwksUrl)));
  const { payload } = await jwtVerify(token, keySets.get(jwksUrl), {
    issuer,
    audience,
    algorithms: ['ES256', 'EdDSA'],
    clockTolerance: 5,
    requiredClaims: ['iss', 'aud', 'exp', 'iat', 'sub'],
  });
  return payload;
}

/** Checks X-Guichet-Signature over the method, path, time and x-guichet-* headers. */
export function verifySignature(method, path, headers, key, maxAge = 60, now = Date.now() / 1000) {
  const value = headers[SIGNATURE_HEADER];
  if (!value) throw new Error('no signature header');
  const fields = Object.fromEntries(
    value.split(',').map((part) => {
      const at = part.indexOf('=');
      return [part.slice(0, at).trim(), part.slice(at + 1).trim()];
    }),
  );
  const timestamp = Number.parseInt(fields.t, 10);
  if (!Number.isFinite(timestamp) || Math.abs(now - timestamp) > maxAge) {
    throw new Error('signature too old');
  }
  const lines = Object.entries(headers)
    .filter(([name]) => name.startsWith('x-guichet-') && name !== ASSERTION_HEADER && name !== SIGNATURE_HEADER)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, val]) => `${name}:${val}\n`)
    .join('');
  const canonical = `v1\n${method}\n${path}\n${timestamp}\n${lines}`;
  const expected = Buffer.from(createHmac('sha256', key).update(canonical, 'utf8').digest('base64url'));
  const given = Buffer.from(fields.v1 ?? '');
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) {
    throw new Error('signature mismatch');
  }
}

async function main() {
  const { values } = parseArgs({
    options: {
      'jwks-url': { type: 'string' },
      issuer: { type: 'string' },
      audience: { type: 'string' },
      'hmac-key-env': { type: 'string' },
      'max-age': { type: 'string', default: '60' },
    },
  });
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  const request = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  const headers = Object.fromEntries(
    Object.entries(request.headers).map(([name, value]) => [name.toLowerCase(), value]),
  );
  try {
    const claims = await verifyAssertion(headers[ASSERTION_HEADER] ?? '', {
      jwksUrl: values['jwks-url'],
      issuer: values.issuer,
      audience: values.audience,
    });
    verifySignature(
      request.method,
      request.path,
      headers,
      process.env[values['hmac-key-env']],
      Number(values['max-age']),
    );
    if (claims.sub !== headers['x-guichet-sub']) throw new Error('sub differs between the assertion and the header');
    console.log(`OK sub=${claims.sub}`);
    return 0;
  } catch (error) {
    console.log(`REJECTED: ${error.message}`);
    return 1;
  }
}

process.exitCode = await main();
