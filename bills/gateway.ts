/** Encore's API gateway and its auth handler: the same API-key rules as the standalone host. */
import { Gateway, type Header } from 'encore.dev/api';
import { authHandler } from 'encore.dev/auth';
import { identify, type AuthData } from '../core/encore';

interface AuthParams {
  authorization: Header<'Authorization'>;
  /** Set by the load balancer in front; repeated failures are rate limited per client. */
  forwardedFor?: Header<'X-Forwarded-For'>;
}

export const auth = authHandler<AuthParams, AuthData>(async (params) =>
  identify(params.authorization, params.forwardedFor?.split(',')[0]?.trim() || 'gateway'),
);

export const gateway = new Gateway({ authHandler: auth });
