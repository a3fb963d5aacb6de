// A real OpenID Connect provider (panva's oidc-provider) for oakid-gate's
// end-to-end tests. Started and stopped by tests/peers/oidc_provider.py.
//
// Configuration is one JSON object, given as the first argument or in the
// OIDC_PEER_CONFIG environment variable:
//
//   {
//     "host": "127.0.0.1",            // only loopback, always
//     "port": 0,                      // 0: the OS picks; the READY line says which
//     "access_token_ttl": 3600,       // seconds; a client's own "access_token_ttl" wins
//     "redirect_uris": [...],         // for the default clients
//     "post_logout_redirect_uris": [...],
//     "clients": null,                // full client metadata list replacing the defaults
//     "client_secrets": {"gate-basic": "...", "gate-post": "..."},
//     "accounts": {"bob": {"groups": ["admins"]}},  // claims over the defaults
//     "conform_id_token_claims": true, // oidc-provider's default: claims via userinfo only
//     "jwt_resource": null            // a resource indicator (URL) whose access tokens
//                                     // are RFC 9068 JWTs (resourceIndicators, ES256, 300 s);
//                                     // client_credentials is enabled with it
//     "jwt_ttl": 300                  // seconds those JWTs live
//   }
//
// stdout carries one JSON object per line: {"event": "ready", ...} once
// listening, then one line per event the tests care about. Token values never
// appear; they are identified by `fp`, the first 16 hex digits of their
// SHA-256 (peers.oidc_provider.token_fingerprint computes the same).

import { createHash, generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { createServer } from 'node:http';

import Provider, { errors } from 'oidc-provider';
// Pinned at exactly 9.13.3, so this internal path is stable. The default
// store is an LRU of 1000 entries shared by every model; a provider that lives
// for a whole test session must not evict clients or grants, so we give the
// same adapter an unbounded store that still honours expiry.
import MemoryAdapter from 'oidc-provider/lib/adapters/memory_adapter.js';

function readConfig() {
  const raw = process.argv[2] ?? process.env.OIDC_PEER_CONFIG ?? '{}';
  return JSON.parse(raw);
}

function log(event, fields = {}) {
  // Writes to a file are synchronous in node: a line is on disk before the
  // HTTP response that caused it is sent.
  process.stdout.write(`${JSON.stringify({ event, time: Date.now() / 1000, ...fields })}\n`);
}

export function fingerprint(value) {
  if (typeof value !== 'string' || value === '') return undefined;
  return createHash('sha256').update(value).digest('hex').slice(0, 16);
}

function errorFields(err) {
  return {
    error: err?.error ?? err?.name,
    error_description: err?.error_description,
    error_detail: err?.error_detail,
    status: err?.statusCode ?? err?.status,
  };
}

function contextFields(ctx) {
  const params = ctx?.oidc?.params ?? {};
  const body = ctx?.request?.body ?? {};
  return {
    route: ctx?.oidc?.route,
    method: ctx?.method,
    path: ctx?.path,
    client_id: ctx?.oidc?.client?.clientId ?? params.client_id ?? body.client_id,
    grant_type: params.grant_type ?? body.grant_type,
  };
}

class ExpiringStore {
  #map = new Map();

  get(key) {
    const entry = this.#map.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiry !== undefined && entry.expiry <= Date.now()) {
      this.#map.delete(key);
      return undefined;
    }
    return entry.value;
  }

  set(key, value, { maxAge } = {}) {
    const expiry = typeof maxAge === 'number' && Number.isFinite(maxAge) ? Date.now() + maxAge : undefined;
    this.#map.set(key, { value, expiry });
    return this;
  }

  has(key) {
    return this.get(key) !== undefined;
  }

  delete(key) {
    return this.#map.delete(key);
  }
}

function signingKeys() {
  // Fresh keys at every start: nothing to commit, nothing to leak.
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  return {
    keys: [
      { ...ec, kid: `es256-${randomUUID()}`, alg: 'ES256', use: 'sig' },
      { ...rsa, kid: `rs256-${randomUUID()}`, alg: 'RS256', use: 'sig' },
    ],
  };
}

function defaultClients(config) {
  const secrets = config.client_secrets ?? {};
  const common = {
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    redirect_uris: config.redirect_uris ?? [],
    post_logout_redirect_uris: config.post_logout_redirect_uris ?? [],
  };
  return [
    {
      ...common,
      client_id: 'gate-basic',
      client_secret: secrets['gate-basic'] ?? randomBytes(24).toString('base64url'),
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'ES256',
    },
    {
      ...common,
      client_id: 'gate-post',
      client_secret: secrets['gate-post'] ?? randomBytes(24).toString('base64url'),
      token_endpoint_auth_method: 'client_secret_post',
      id_token_signed_response_alg: 'RS256',
    },
  ];
}

function accountClaims(config, login) {
  // Any login is accepted (devInteractions takes any password too). A login
  // with an "@" is used as the e-mail address itself, so a test can pick the
  // domain; config.accounts[login] overrides any claim.
  const at = login.indexOf('@');
  const username = at > 0 ? login.slice(0, at) : login;
  return {
    sub: login,
    email: at > 0 ? login : `${login}@example.test`,
    email_verified: true,
    name: username.charAt(0).toUpperCase() + username.slice(1),
    preferred_username: username,
    groups: ['staff'],
    ...(config.accounts?.[login] ?? {}),
  };
}

async function main() {
  const config = readConfig();
  const host = config.host ?? '127.0.0.1';
  const defaultAccessTokenTtl = config.access_token_ttl ?? 3600;

  // Listen first, so that the issuer can carry the port the OS chose.
  const server = createServer();
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port ?? 0, host, resolve);
  });
  const { port } = server.address();
  const issuer = `http://${host}:${port}`;

  const store = new ExpiringStore();
  const provider = new Provider(issuer, {
    adapter: (name) => new MemoryAdapter(name, store),
    clients: config.clients ?? defaultClients(config),
    jwks: signingKeys(),
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    pkce: { required: () => true },
    // Outgoing requests (back-channel logout) go to the tests' gates on 127.0.0.1,
    // which oidc-provider's SSRF protection refuses: loopback only here, so it is
    // left out (the dispatcher it would add).
    fetch: (url, options) => {
      const { dispatcher, ...rest } = options;
      return globalThis.fetch(url, rest);
    },
    rotateRefreshToken: true,
    issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
    conformIdTokenClaims: config.conform_id_token_claims ?? true,
    scopes: ['openid', 'offline_access', 'profile', 'email', 'groups'],
    claims: {
      openid: ['sub'],
      profile: ['name', 'preferred_username'],
      email: ['email', 'email_verified'],
      groups: ['groups'],
    },
    features: {
      devInteractions: { enabled: true },
      revocation: { enabled: true },
      introspection: { enabled: true },
      userinfo: { enabled: true },
      rpInitiatedLogout: { enabled: true },
      // Back-channel logout (OpenID Connect Back-Channel Logout 1.0): a client
      // registered with backchannel_logout_uri gets a logout token at logout.
      backchannelLogout: { enabled: true },
      // Open dynamic registration (RFC 7591) lets a session-wide provider
      // serve tests whose redirect URIs are only known at test time.
      registration: { enabled: true },
      clientCredentials: { enabled: Boolean(config.jwt_resource) },
      resourceIndicators: config.jwt_resource ? {
        enabled: true,
        defaultResource: async (ctx, client, oneOf) => oneOf,
        useGrantedResource: async () => false,
        async getResourceServerInfo(ctx, resourceIndicator) {
          if (resourceIndicator !== config.jwt_resource) throw new errors.InvalidTarget();
          return {
            scope: 'read:reports',
            audience: resourceIndicator,
            accessTokenFormat: 'jwt',
            accessTokenTTL: config.jwt_ttl ?? 300,
            jwt: { sign: { alg: 'ES256' } },
          };
        },
      } : { enabled: false },
    },
    extraClientMetadata: {
      properties: ['access_token_ttl'],
      validator(ctx, key, value) {
        if (key === 'access_token_ttl' && value !== undefined
            && !(Number.isInteger(value) && value > 0)) {
          throw new Error('access_token_ttl must be a positive integer');
        }
      },
    },
    ttl: {
      AccessToken: (ctx, token, client) => client?.access_token_ttl ?? defaultAccessTokenTtl,
      AuthorizationCode: 60,
      IdToken: 3600,
      RefreshToken: 14 * 24 * 3600,
      Interaction: 3600,
      Session: 14 * 24 * 3600,
      Grant: 14 * 24 * 3600,
    },
    async findAccount(ctx, sub) {
      return {
        accountId: sub,
        async claims() {
          return accountClaims(config, sub);
        },
      };
    },
  });

  provider.on('grant.success', (ctx) => {
    const body = ctx.body ?? {};
    const { entities } = ctx.oidc;
    // After a rotation the entity RefreshToken is the new one.
    const used = ctx.oidc.params.grant_type === 'refresh_token'
      ? (entities.RotatedRefreshToken ?? entities.RefreshToken)
      : undefined;
    log('grant.success', {
      ...contextFields(ctx),
      account_id: entities.Account?.accountId,
      scope: body.scope,
      expires_in: body.expires_in,
      access_token: fingerprint(body.access_token),
      refresh_token: fingerprint(body.refresh_token),
      id_token: body.id_token ? true : undefined,
      used_refresh_token: fingerprint(used?.jti),
    });
  });
  provider.on('grant.error', (ctx, err) => log('grant.error', { ...contextFields(ctx), ...errorFields(err) }));
  provider.on('grant.revoked', (ctx, grantId) => log('grant.revoked', { ...contextFields(ctx), grant_id: grantId }));
  provider.on('refresh_token.consumed', (token) => log('refresh_token.consumed', {
    client_id: token.clientId, grant_id: token.grantId, fp: fingerprint(token.jti),
  }));
  provider.on('authorization_code.consumed', (code) => log('authorization_code.consumed', {
    client_id: code.clientId, grant_id: code.grantId,
  }));
  for (const name of ['authorization.error', 'userinfo.error', 'revocation.error',
    'introspection.error', 'end_session.error', 'registration_create.error']) {
    provider.on(name, (ctx, err) => log(name, { ...contextFields(ctx), ...errorFields(err) }));
  }
  provider.on('server_error', (ctx, err) => log('server_error', {
    ...contextFields(ctx), ...errorFields(err), message: String(err?.message ?? err),
  }));
  provider.on('end_session.success', (ctx) => log('end_session.success', contextFields(ctx)));
  provider.on('backchannel.success', (ctx, client, accountId, sid) => log('backchannel.success', {
    client_id: client.clientId, account_id: accountId, sid: sid ? true : undefined,
  }));
  provider.on('backchannel.error', (ctx, err, client) => log('backchannel.error', {
    client_id: client?.clientId, ...errorFields(err), message: String(err?.message ?? err),
    cause: String(err?.cause?.message ?? err?.cause ?? ''),
  }));
  provider.on('registration_create.success', (ctx, client) => log('registration_create.success', {
    client_id: client.clientId, redirect_uris: client.redirectUris,
  }));

  // Successful revocation, introspection and userinfo calls emit no event of
  // their own; report them from the response.
  provider.use(async (ctx, next) => {
    await next();
    const route = ctx.oidc?.route;
    if (ctx.status !== 200) return;
    if (route === 'revocation') {
      const token = ctx.oidc.entities?.AccessToken ?? ctx.oidc.entities?.RefreshToken;
      log('revocation.success', {
        ...contextFields(ctx),
        token_type_hint: ctx.oidc.params?.token_type_hint,
        kind: token?.kind,
        fp: fingerprint(token?.jti),
      });
    } else if (route === 'introspection') {
      const body = typeof ctx.body === 'object' && ctx.body !== null ? ctx.body : {};
      log('introspection', {
        ...contextFields(ctx),
        active: body.active,
        sub: body.sub,
        token_type: body.token_type,
        token_client_id: body.client_id,
      });
    } else if (route === 'userinfo') {
      log('userinfo', { ...contextFields(ctx), sub: ctx.body?.sub });
    }
  });

  server.on('request', provider.callback());
  process.on('unhandledRejection', (err) => log('server_error', { message: String(err?.stack ?? err) }));
  for (const signal of ['SIGTERM', 'SIGINT']) {
    process.on(signal, () => {
      server.close();
      process.exit(0);
    });
  }
  log('ready', { issuer, port, pid: process.pid });
}

main().catch((err) => {
  log('startup_error', { message: String(err?.stack ?? err) });
  process.exit(1);
});
