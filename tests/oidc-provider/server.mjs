// A real, third-party OpenID provider for guichet's integration tests: panva's oidc-provider
// (the library both French federations' cores are built on), configured like ProConnect:
// its scopes and claims, ES256 id_token and signed (ES256) userinfo, the claims parameter,
// RP-initiated logout, client_secret_post.
//
// Usage: node server.mjs PORT CLIENT_SECRET REDIRECT_URI POST_LOGOUT_REDIRECT_URI
// A fresh signing key at each start: restarting it is a key rotation.
import { generateKeyPair, exportJWK } from 'jose';
import Provider from 'oidc-provider';

const [port, secret, redirectUri, postLogoutRedirectUri] = process.argv.slice(2);

const { privateKey } = await generateKeyPair('ES256', { extractable: true });
const signingKey = { ...(await exportJWK(privateKey)), alg: 'ES256', use: 'sig', kid: `op-${Date.now()}` };

const agents = {
  hdupre: {
    given_name: 'Hélène Marie',
    usual_name: 'Dupré-Lefèvre',
    email: 'helene.dupre-lefevre@interieur.gouv.fr',
    uid: 'hdupre',
    siret: '21920023500014',
    idp_id: 'fia1v2',
  },
};

const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [{
    client_id: 'guichet',
    client_secret: secret,
    redirect_uris: [redirectUri],
    post_logout_redirect_uris: [postLogoutRedirectUri],
    response_types: ['code'],
    grant_types: ['authorization_code'],
    token_endpoint_auth_method: 'client_secret_post',
    id_token_signed_response_alg: 'ES256',
    userinfo_signed_response_alg: 'ES256',
  }],
  jwks: { keys: [signingKey] },
  enabledJWA: { idTokenSigningAlgValues: ['ES256'], userinfoSigningAlgValues: ['ES256'] },
  scopes: ['openid', 'given_name', 'usual_name', 'email', 'uid', 'siret', 'idp_id'],
  claims: {
    openid: ['sub'],
    given_name: ['given_name'],
    usual_name: ['usual_name'],
    email: ['email'],
    uid: ['uid'],
    siret: ['siret'],
    idp_id: ['idp_id'],
  },
  acrValues: ['eidas1', 'eidas2', 'eidas3'],
  features: {
    devInteractions: { enabled: true },
    claimsParameter: { enabled: true },
    jwtUserinfo: { enabled: true },
    rpInitiatedLogout: { enabled: true },
  },
  pkce: { required: () => false },
  async findAccount(ctx, id) {
    const claims = agents[id];
    if (!claims) return undefined;
    return { accountId: id, claims: async () => ({ sub: id, ...claims }) };
  },
});
provider.proxy = false;
provider.listen(Number(port), '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${port} with key ${signingKey.kid}`);
});
