import fs from 'node:fs';
import net from 'node:net';
import { decodeXmlBytes } from './org-xml.ts';
import { child, children, parseXml } from './xml.ts';

/**
 * The HTTP SDK's IP allow-list, from `SDKProperty.xml` in the RTX server directory:
 *
 *   <Property>
 *     <APIClient><IPLimit Enabled="1"><IP>127.0.0.1</IP></IPLimit></APIClient>   (COM API callers)
 *     <sdkhttp><IPLimit Enabled="1"><IP>192.168.10.100</IP></IPLimit></sdkhttp>   (the port-8012 CGIs)
 *   </Property>
 *
 * Only `<sdkhttp>` governs the CGIs. The local host (127.0.0.1 / ::1) is always let in; other 127.x
 * addresses are not, which is what a REMOTE_ADDR comparison against 127.0.0.1 gives. RTX reads the file
 * when RTX_HTTPServer starts, so a changed file takes effect on restart (the emulator: on reload).
 */
export interface IpLimit {
  enabled: boolean;
  ips: string[];
}

export const NO_IP_LIMIT: IpLimit = { enabled: false, ips: [] };

export function parseSdkProperty(bytes: Buffer | string): IpLimit {
  const root = parseXml(typeof bytes === 'string' ? bytes : decodeXmlBytes(bytes));
  const sdkhttp = root.name === 'sdkhttp' ? root : child(root, 'sdkhttp');
  const limit = sdkhttp ? child(sdkhttp, 'IPLimit') : undefined;
  if (!limit) return { enabled: false, ips: [] };
  return {
    enabled: (limit.attributes.Enabled ?? '0').trim() === '1',
    ips: children(limit, 'IP')
      .map((ip) => normaliseIp(ip.text.trim()))
      .filter((ip) => ip !== ''),
  };
}

export function loadSdkProperty(file: string): IpLimit {
  return parseSdkProperty(fs.readFileSync(file));
}

/** `::ffff:10.0.0.1` (an IPv4 client on a dual-stack socket) is `10.0.0.1`. */
export function normaliseIp(ip: string): string {
  const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  return (v4 ? v4[1]! : ip).toLowerCase();
}

export function isLocalHost(ip: string): boolean {
  const n = normaliseIp(ip);
  return n === '127.0.0.1' || n === '::1';
}

export function ipAllowed(limit: IpLimit, remoteAddress: string | undefined): boolean {
  if (!remoteAddress) return false;
  if (isLocalHost(remoteAddress)) return true;
  if (!limit.enabled) return true;
  const n = normaliseIp(remoteAddress);
  return net.isIP(n) !== 0 && limit.ips.includes(n);
}
