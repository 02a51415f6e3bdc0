/** Encore's API gateway and its auth handler: the same API-key rules as the standalone host. */
import { Gateway, type Header } from 'encore.dev/api';
import { authHandler } from 'encore.dev/auth';
import { clientFromForwardedFor } from '../core/auth';
import { identify, trustedHops, type AuthData } from '../core/encore';
import { database } from './db';

interface AuthParams {
  authorization: Header<'Authorization'>;
  /**
   * Appended to by the proxies in front; repeated failures are rate limited per client. Its first
   * entries are whatever the caller wrote, so the client is read from the right (TRUST_PROXY hops).
   */
  forwardedFor?: Header<'X-Forwarded-For'>;
}

export const auth = authHandler<AuthParams, AuthData>(async (params) =>
  identify(database, params.authorization, clientOf(params.forwardedFor)),
);

/** The caller's address as the trusted proxies wrote it; one shared bucket when none is trusted. */
function clientOf(forwardedFor: string | undefined): string {
  const hops = trustedHops();
  return (hops !== undefined ? clientFromForwardedFor(forwardedFor, hops) : undefined) ?? 'gateway';
}

export const gateway = new Gateway({ authHandler: auth });
