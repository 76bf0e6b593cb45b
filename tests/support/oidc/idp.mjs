// A real OpenID Provider for tests: panva's oidc-provider with its built-in
// login and consent forms (devInteractions accept any login and password).
// Configured from the environment by tests/support/oidc_provider.py:
//   ISSUER, PORT, CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, and optionally ACCOUNTS
// Listens on 127.0.0.1 only and prints "listening" once it accepts requests.
import Provider from 'oidc-provider';

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`idp.mjs: environment variable ${name} is required`);
    process.exit(2);
  }
  return value;
}

const issuer = required('ISSUER');
const port = Number(required('PORT'));
// Optional claims per login, as JSON: {"bob": {"email": "bob@school.example",
// "email_verified": false}}; any other login gets the defaults below.
const accounts = JSON.parse(process.env.ACCOUNTS || '{}');

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: required('CLIENT_ID'),
      client_secret: required('CLIENT_SECRET'),
      redirect_uris: [required('REDIRECT_URI')],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
  },
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return {
          sub: id, email: `${id}@example.org`, email_verified: true, name: `User ${id}`,
          ...(accounts[id] || {}),
        };
      },
    };
  },
  features: { devInteractions: { enabled: true } },
  // Test-only signing key for the provider's own cookies; never used outside loopback tests.
  cookies: { keys: ['gatehouse-test-idp-only'] },
  pkce: { required: () => true },
});

provider.listen(port, '127.0.0.1', () => {
  console.log('listening');
});

// Exit at once when the test harness terminates us: nothing here is worth draining.
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => process.exit(0));
}
