// A real OpenID Provider for the console's sign-in tests: node-oidc-provider
// (OpenID Certified) on 127.0.0.1, with its development login and consent
// screens. Accounts are whatever login is typed; their groups come from
// IDP_GROUPS (JSON: {"login": ["group", ...]}), their verified email is
// login@sunrise-clinic.example unless IDP_EMAILS names another (JSON:
// {"login": "address"}: a provider that lets two people claim one
// address). Prints "listening <port>".
//
// Input: IDP_PORT, REDIRECT_URI, POST_LOGOUT_URI, CLIENT_SECRET, IDP_GROUPS, IDP_EMAILS.
import Provider from 'oidc-provider';

const port = Number(process.env.IDP_PORT);
const groups = JSON.parse(process.env.IDP_GROUPS || '{}');
const emails = JSON.parse(process.env.IDP_EMAILS || '{}');
const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [{
    client_id: 'throughline-console',
    client_secret: process.env.CLIENT_SECRET,
    redirect_uris: [process.env.REDIRECT_URI],
    post_logout_redirect_uris: [process.env.POST_LOGOUT_URI],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  scopes: ['openid', 'email', 'groups'],
  claims: { openid: ['sub'], email: ['email', 'email_verified'], groups: ['groups'] },
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  features: { devInteractions: { enabled: true }, rpInitiatedLogout: { enabled: true } },
  cookies: { keys: ['throughline-test-cookie-key'] },
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        const email = emails[id] || `${id}@sunrise-clinic.example`;
        return { sub: id, email, email_verified: true, groups: groups[id] || [] };
      },
    };
  },
});
provider.listen(port, '127.0.0.1', () => console.log(`listening ${port}`));
