// A real OpenID provider for slipway's tests: oidc-provider (a certified implementation)
// with its development login pages, on 127.0.0.1 at the port given.
//
//   node provider.mjs PORT CONFIG_JSON
//
// CONFIG_JSON: {"client_id", "client_secret", "redirect_uris": [...],
//               "accounts": {"login": {"email", "groups": [...]}}}
// Any password signs in (the development login pages); a login CONFIG_JSON does not
// list is an account with no groups.
// Prints "listening on URL" once it answers.
import Provider from "oidc-provider";

const [port, raw] = process.argv.slice(2);
const config = JSON.parse(raw);
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: config.client_id,
    client_secret: config.client_secret,
    redirect_uris: config.redirect_uris,
    grant_types: ["authorization_code"],
    response_types: ["code"],
    token_endpoint_auth_method: "client_secret_basic",
  }],
  pkce: { required: () => true },
  claims: { openid: ["sub"], email: ["email"], profile: ["name"], groups: ["groups"] },
  scopes: ["openid", "email", "profile", "groups"],
  features: { devInteractions: { enabled: true } },
  cookies: { keys: ["slipway-tests-only"] },
  async findAccount(ctx, id) {
    // an account not listed signs in with no groups
    const account = config.accounts[id] || { email: `${id}@example.com`, groups: [] };
    return {
      accountId: id,
      async claims() {
        return { sub: id, email: account.email, name: id, groups: account.groups };
      },
    };
  },
});
provider.proxy = false;

provider.listen(Number(port), "127.0.0.1", () => {
  console.log(`listening on ${issuer}`);
});
