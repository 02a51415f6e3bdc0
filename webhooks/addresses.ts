/**
 * Where a webhook may point. A receiver URL is chosen by whoever registers it, so without checks
 * it could make our workers call internal services or the cloud metadata endpoint. Only public
 * unicast addresses are allowed unless WEBHOOK_ALLOW_PRIVATE (on by default outside production).
 * The check runs at registration, for a clear 400, and again on every connection, against the
 * addresses the name resolves to then (a name can be re-pointed after registration).
 */
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';

/** The reason an address is refused, or null when it is a public unicast address. */
export function refusedAddress(address: string): string | null {
  if (!ipaddr.isValid(address)) return 'not an IP address';
  // ::ffff:10.0.0.1 is 10.0.0.1: judged as the IPv4 address it carries.
  const range = ipaddr.process(address).range();
  // Everything else (loopback, private, link-local with 169.254.169.254, unique local, carrier-grade
  // NAT, reserved, multicast, and IPv6 forms that embed an IPv4 address) is refused.
  return range === 'unicast' ? null : range;
}

export class RefusedAddressError extends Error {
  readonly code = 'EWEBHOOKADDRESS';
  constructor(host: string, address: string, range: string) {
    super(`${host} resolves to ${address}, a ${range} address; receivers must be public (WEBHOOK_ALLOW_PRIVATE allows others)`);
  }
}

/** Checks a literal IP host now; a name is checked when it is resolved. */
export function checkHost(host: string): void {
  const bare = host.replace(/^\[|\]$/g, '');
  if (!isIP(bare)) return;
  const range = refusedAddress(bare);
  if (range) throw new RefusedAddressError(host, bare, range);
}

/** Every address `host` resolves to now; refuses the name if any is not public. */
export async function checkResolved(host: string): Promise<void> {
  checkHost(host);
  const bare = host.replace(/^\[|\]$/g, '');
  if (isIP(bare)) return;
  let addresses: LookupAddress[];
  try {
    addresses = await new Promise((resolve, reject) =>
      dnsLookup(bare, { all: true }, (err, found) => (err ? reject(err) : resolve(found))),
    );
  } catch {
    return; // not resolvable now: the connection-time check decides when it is
  }
  for (const { address } of addresses) {
    const range = refusedAddress(address);
    if (range) throw new RefusedAddressError(host, address, range);
  }
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * A `lookup` for http.request that refuses non-public addresses: the connection goes to an
 * address that was checked, so a name re-pointed at an internal address gets nowhere.
 */
export function publicOnlyLookup(hostname: string, options: LookupOptions, callback: LookupCallback): void {
  dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return callback(err, []);
    for (const { address } of addresses) {
      const range = refusedAddress(address);
      if (range) return callback(new RefusedAddressError(hostname, address, range), []);
    }
    if (options.all) return callback(null, addresses);
    callback(null, addresses[0].address, addresses[0].family);
  });
}
