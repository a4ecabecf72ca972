import net from 'node:net';

/** `::ffff:10.1.2.3` (an IPv4 client on a dual-stack socket) is 10.1.2.3 to an admin. */
export function normaliseIp(ip: string): string | null {
  const trimmed = ip.trim();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(trimmed);
  const candidate = mapped ? mapped[1] : trimmed;
  return net.isIP(candidate) ? candidate : null;
}

/**
 * Parses `10.0.0.0/8`, `fe80::/10` or a single address (taken as /32 or /128) with node:net's BlockList,
 * which checks the address and the prefix range. Returns the canonical text, or why it is not a range.
 */
export function parseCidr(text: string): { cidr: string; family: 'ipv4' | 'ipv6' } | { problem: string } {
  const [address, prefix, ...rest] = text.trim().split('/');
  const ip = normaliseIp(address ?? '');
  if (rest.length || !ip) return { problem: `"${text.slice(0, 80)}" is not an IP address or CIDR range (like 10.0.0.0/8)` };
  const family = net.isIPv4(ip) ? 'ipv4' : 'ipv6';
  const bits = prefix === undefined ? (family === 'ipv4' ? 32 : 128) : /^\d{1,3}$/.test(prefix) ? Number(prefix) : NaN;
  try {
    const list = new net.BlockList();
    list.addSubnet(ip, bits, family);
    // The canonical form BlockList reports, e.g. "Subnet: IPv4 10.0.0.0/8".
    const rule = list.rules[0] ?? '';
    return { cidr: rule.replace(/^Subnet: IPv[46] /, ''), family };
  } catch {
    return { problem: `"${text.slice(0, 80)}" has an invalid prefix length (0–${family === 'ipv4' ? 32 : 128})` };
  }
}

/** A BlockList of the given ranges (already validated when they were stored; a bad one is skipped). */
export function rangeList(cidrs: string[]): net.BlockList {
  const list = new net.BlockList();
  for (const c of cidrs) {
    const p = parseCidr(c);
    if ('cidr' in p) {
      const [address, bits] = p.cidr.split('/');
      list.addSubnet(address, Number(bits), p.family);
    }
  }
  return list;
}

export function inRanges(list: net.BlockList, ip: string): boolean {
  const n = normaliseIp(ip);
  if (!n) return false;
  return list.check(n, net.isIPv4(n) ? 'ipv4' : 'ipv6');
}

/**
 * The client's address. The socket's peer is the client unless it is a trusted proxy; then
 * X-Forwarded-For is read from the right, skipping trusted proxies, and the first other hop is the client
 * (hops further left were written by the client itself and prove nothing).
 */
export function clientIp(socketIp: string, forwardedFor: string | undefined, trustedProxies: string[]): string {
  const peer = normaliseIp(socketIp) ?? socketIp;
  if (!forwardedFor || trustedProxies.length === 0) return peer;
  const trusted = rangeList(trustedProxies);
  if (!inRanges(trusted, peer)) return peer;
  const hops = forwardedFor.split(',').map((h) => h.trim()).filter(Boolean);
  let client = peer;
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = normaliseIp(hops[i]);
    if (!hop) break;
    client = hop;
    if (!inRanges(trusted, hop)) break;
  }
  return client;
}
