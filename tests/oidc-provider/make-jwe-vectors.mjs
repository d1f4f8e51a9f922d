// Writes tests/fixtures/jwe-vectors.json: keys and JWE tokens made by node's `jose` (panva), an
// implementation independent of guichet's, for the unit tests of src/jose.rs.
// Usage (from this folder, after `npm ci`): node make-jwe-vectors.mjs > ../fixtures/jwe-vectors.json
import {
  generateKeyPair, exportPKCS8, exportJWK, importJWK, calculateJwkThumbprint, CompactEncrypt,
} from 'jose';

const plaintext = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJjaXRveWVubmUifQ.signature-of-the-provider';
const rsa = await generateKeyPair('RSA-OAEP-256', { extractable: true, modulusLength: 2048 });
const ec = await generateKeyPair('ECDH-ES', { extractable: true, crv: 'P-256' });
const foreign = await generateKeyPair('RSA-OAEP-256', { extractable: true, modulusLength: 2048 });
const rsaKid = await calculateJwkThumbprint(await exportJWK(rsa.publicKey));
const ecKid = await calculateJwkThumbprint(await exportJWK(ec.publicKey));

async function encrypt(alg, enc, publicKey, kid, extra = {}) {
  // WebCrypto binds an RSA key to one OAEP hash: re-import the public JWK for each algorithm.
  const key = await importJWK(await exportJWK(publicKey), alg);
  const jwe = new CompactEncrypt(new TextEncoder().encode(plaintext))
    .setProtectedHeader({ alg, enc, cty: 'JWT', ...(kid ? { kid } : {}) });
  if (extra.apu) jwe.setKeyManagementParameters(extra);
  return jwe.encrypt(key);
}

const tokens = {
  'RSA-OAEP/A256GCM': await encrypt('RSA-OAEP', 'A256GCM', rsa.publicKey, rsaKid),
  'RSA-OAEP-256/A256GCM': await encrypt('RSA-OAEP-256', 'A256GCM', rsa.publicKey, rsaKid),
  'RSA-OAEP-256/A256GCM without kid': await encrypt('RSA-OAEP-256', 'A256GCM', rsa.publicKey),
  'ECDH-ES/A256GCM': await encrypt('ECDH-ES', 'A256GCM', ec.publicKey, ecKid),
  'ECDH-ES/A128GCM': await encrypt('ECDH-ES', 'A128GCM', ec.publicKey, ecKid),
  'ECDH-ES/A256GCM with apu and apv': await encrypt('ECDH-ES', 'A256GCM', ec.publicKey, ecKid, {
    apu: new TextEncoder().encode('guichet-test-apu'),
    apv: new TextEncoder().encode('guichet-test-apv'),
  }),
  'foreign RSA-OAEP-256/A256GCM': await encrypt('RSA-OAEP-256', 'A256GCM', foreign.publicKey, rsaKid),
};

console.log(JSON.stringify({
  plaintext,
  rsa_pem: await exportPKCS8(rsa.privateKey),
  ec_pem: await exportPKCS8(ec.privateKey),
  rsa_thumbprint: rsaKid,
  ec_thumbprint: ecKid,
  tokens,
}, null, 2));
