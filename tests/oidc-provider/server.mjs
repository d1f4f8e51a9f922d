// A real, third-party OpenID provider for guichet's integration tests: panva's oidc-provider
// (the library both French federations' cores are built on), configured like one of them:
//
// - proconnect: ProConnect's scopes and claims, ES256 id_token and signed (ES256) userinfo,
//   the claims parameter, RP-initiated logout, client_secret_post;
// - franceconnect: FranceConnect v2's scopes and pivot identity, ES256 id_token and signed
//   userinfo, acr_values, and its strict authorize parameter list (PKCE or login_hint: 400);
// - franceconnect-v1: FranceConnect's legacy platform: no discovery for the client, the
//   documented /api/v1/ paths, id_token HS256 with the client secret, userinfo as plain JSON;
// - franceconnect-plus: as franceconnect, plus id_token and userinfo encrypted (JWE, A256GCM) with the
//   client's key fetched from its jwks_uri, and private_key_jwt at the token endpoint.
//
// Usage: node server.mjs PORT CLIENT_SECRET REDIRECT_URI POST_LOGOUT_REDIRECT_URI [PROFILE]
// Environment: GRANTED_ACR (the level the login grants; default: the first one requested),
// CLIENT_JWKS_URI and ENC_ALG (franceconnect-plus), TAMPER_USERINFO=1 (alter the signature of
// every userinfo JWT, as an attacker or a broken proxy would), SIGNING_KEY_FILE (below).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { generateKeyPair, exportJWK } from 'jose';
import Provider from 'oidc-provider';

const [port, secret, redirectUri, postLogoutRedirectUri, profile = 'proconnect'] = process.argv.slice(2);
const franceconnect = profile.startsWith('franceconnect');
const plus = profile === 'franceconnect-plus';
const v1 = profile === 'franceconnect-v1';

// A fresh signing key at each start (a restart is a key rotation), unless SIGNING_KEY_FILE names
// a file to keep it in across restarts.
async function loadSigningKey() {
  const file = process.env.SIGNING_KEY_FILE;
  if (file && existsSync(file)) return JSON.parse(readFileSync(file, 'utf8'));
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const key = { ...(await exportJWK(privateKey)), alg: 'ES256', use: 'sig', kid: `op-${Date.now()}` };
  if (file) writeFileSync(file, JSON.stringify(key), { mode: 0o600 });
  return key;
}
const signingKey = await loadSigningKey();

const people = {
  hdupre: {
    given_name: 'Hélène Marie',
    usual_name: 'Dupré-Lefèvre',
    email: 'helene.dupre-lefevre@interieur.gouv.fr',
    uid: 'hdupre',
    siret: '21920023500014',
    idp_id: 'fia1v2',
  },
  // Born abroad (empty birthplace, birthcountry 99217 = Japan), no usage name.
  eloise: {
    given_name: 'Éloïse Anaïs',
    family_name: 'LEFÈVRE',
    birthdate: '1985-07-14',
    gender: 'female',
    birthplace: '',
    birthcountry: '99217',
    preferred_username: '',
    email: 'eloise.lefevre@example.fr',
  },
};

const scopes = franceconnect
  ? ['openid', 'given_name', 'family_name', 'birthdate', 'gender', 'birthplace', 'birthcountry',
    'email', 'preferred_username']
  : ['openid', 'given_name', 'usual_name', 'email', 'uid', 'siret', 'idp_id'];
const claims = Object.fromEntries(scopes.map((s) => [s, s === 'openid' ? ['sub'] : [s]]));

const client = {
  client_id: 'guichet',
  redirect_uris: [redirectUri],
  post_logout_redirect_uris: [postLogoutRedirectUri],
  response_types: ['code'],
  grant_types: ['authorization_code'],
  id_token_signed_response_alg: v1 ? 'HS256' : 'ES256',
  ...(v1 ? {} : { userinfo_signed_response_alg: 'ES256' }),
};
if (plus) {
  const alg = process.env.ENC_ALG || 'RSA-OAEP-256';
  Object.assign(client, {
    token_endpoint_auth_method: 'private_key_jwt',
    jwks_uri: process.env.CLIENT_JWKS_URI,
    id_token_encrypted_response_alg: alg,
    id_token_encrypted_response_enc: 'A256GCM',
    userinfo_encrypted_response_alg: alg,
    userinfo_encrypted_response_enc: 'A256GCM',
  });
} else {
  Object.assign(client, { client_secret: secret, token_endpoint_auth_method: 'client_secret_post' });
}

const encryptionAlgs = ['RSA-OAEP', 'RSA-OAEP-256', 'ECDH-ES'];
const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [client],
  jwks: { keys: [signingKey] },
  clientAuthMethods: ['client_secret_post', 'private_key_jwt'],
  enabledJWA: {
    idTokenSigningAlgValues: ['ES256', 'HS256'],
    userinfoSigningAlgValues: ['ES256'],
    clientAuthSigningAlgValues: ['ES256', 'RS256'],
    idTokenEncryptionAlgValues: encryptionAlgs,
    idTokenEncryptionEncValues: ['A256GCM'],
    userinfoEncryptionAlgValues: encryptionAlgs,
    userinfoEncryptionEncValues: ['A256GCM'],
  },
  scopes,
  claims,
  acrValues: ['eidas1', 'eidas2', 'eidas3'],
  ...(v1 ? {
    routes: {
      authorization: '/api/v1/authorize',
      token: '/api/v1/token',
      userinfo: '/api/v1/userinfo',
      end_session: '/api/v1/logout',
      jwks: '/api/v1/jwks',
    },
  } : {}),
  features: {
    devInteractions: { enabled: false },
    claimsParameter: { enabled: true },
    jwtUserinfo: { enabled: true },
    rpInitiatedLogout: { enabled: true },
    encryption: { enabled: plus },
  },
  pkce: { required: () => false },
  // oidc-provider refuses to fetch loopback addresses (SSRF protection); guichet's
  // provider-jwks.json is on loopback in these tests.
  fetch: (url, options) => globalThis.fetch(url, { ...options, dispatcher: undefined }),
  async findAccount(ctx, id) {
    const person = people[id];
    if (!person) return undefined;
    return { accountId: id, claims: async () => ({ sub: id, ...person }) };
  },
});
provider.proxy = false;

// The parameters FranceConnect accepts at /authorize; anything else is refused.
const FRANCECONNECT_PARAMS = new Set(['client_id', 'acr_values', 'claims', 'response_type', 'nonce',
  'state', 'redirect_uri', 'scope', 'prompt', 'idp_hint', 'ui_locales']);

function requestedAcr(params) {
  if (params.acr_values) return params.acr_values.split(' ')[0];
  try {
    const acr = JSON.parse(params.claims || '{}').id_token?.acr;
    return acr?.values?.[0] ?? acr?.value;
  } catch {
    return undefined;
  }
}

async function formBody(req) {
  let text = '';
  for await (const chunk of req) text += chunk;
  return new URLSearchParams(text);
}

const escape = (s) => String(s).replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);

provider.use(async (ctx, next) => {
  if (franceconnect && ctx.path === (v1 ? '/api/v1/authorize' : '/auth') && ctx.method === 'GET') {
    const unknown = [...new URLSearchParams(ctx.querystring).keys()]
      .filter((k) => !FRANCECONNECT_PARAMS.has(k));
    if (unknown.length) {
      ctx.status = 400;
      ctx.body = `invalid_request: parameters not allowed: ${unknown.join(', ')}`;
      return;
    }
  }
  const interaction = ctx.path.match(/^\/interaction\/[^/]+$/);
  if (interaction) {
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    const { prompt, params, session } = details;
    if (prompt.name === 'login' && ctx.method === 'GET') {
      const acr = process.env.GRANTED_ACR || requestedAcr(params) || 'eidas1';
      ctx.type = 'html';
      ctx.body = `<!doctype html><form method="post" action="${ctx.path}">
        <label>Identifiant <input name="login"></label>
        <input type="hidden" name="acr" value="${escape(acr)}">
        <button type="submit">Se connecter</button></form>`;
      return;
    }
    let result;
    if (prompt.name === 'login') {
      const form = await formBody(ctx.req);
      result = { login: { accountId: form.get('login'), acr: form.get('acr') } };
    } else if (prompt.name === 'consent') {
      const grant = new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
      if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
      if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
      result = { consent: { grantId: await grant.save() } };
    } else {
      ctx.throw(501, `prompt ${prompt.name} not implemented`);
    }
    ctx.redirect(await provider.interactionResult(ctx.req, ctx.res, result, {
      mergeWithLastSubmission: prompt.name !== 'login',
    }));
    return;
  }
  await next();
  if (process.env.TAMPER_USERINFO === '1' && ctx.path === '/me' && typeof ctx.body === 'string') {
    const [header, payload, signature] = ctx.body.split('.');
    const flipped = (signature[0] === 'A' ? 'B' : 'A') + signature.slice(1);
    ctx.body = [header, payload, flipped].join('.');
  }
});

// Why a request failed, on stderr (the tests keep it in a log file).
for (const event of ['grant.error', 'server_error', 'authorization.error', 'userinfo.error',
  'end_session.error', 'jwks.error']) {
  provider.on(event, (ctx, error) => {
    console.error(`${event}: ${error.message} ${error.error_description ?? ''} ${error.cause?.message ?? ''} ${error.cause?.cause?.message ?? ''}`);
  });
}

// Client metadata is validated lazily; fail at start instead.
try {
  await provider.Client.find(client.client_id);
} catch (error) {
  console.error(`invalid client metadata: ${error.error_description ?? error.message}`);
  process.exit(1);
}

provider.listen(Number(port), '127.0.0.1', () => {
  console.log(`oidc-provider (${profile}) listening on ${port} with key ${signingKey.kid}`);
});
