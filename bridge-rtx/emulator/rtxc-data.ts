import { randomBytes, randomUUID } from 'node:crypto';
import { buildXml, child, parseXml, XmlError, type XmlNode } from './xml.ts';

/**
 * RTXCData: the XML an RTX client puts in a `Tencent.RTX.IM` request, and what the server's application
 * filter (RTXSAPI, AA_COPY) hands to `OnRecvMessage` as `Message.Content`. Each field is an
 * `<Item Key=… Type="String|Long|Buffer">value</Item>`; the message body is itself an RTXMsg document stored
 * as a *string* item, so its tags arrive escaped (`&lt;Txt&gt;`):
 *
 *   <RTXCData>
 *     <Item Key="Content" Type="String">&lt;RTXMsg Ver="1.0"&gt;&lt;Content&gt;&lt;Txt&gt;你好&lt;/Txt&gt;&lt;Font …/&gt;…</Item>
 *     <Item Key="Initiator" Type="String">zhangsan</Item>
 *     <Item Key="Key" Type="String">{589E22CE-91E2-4FB5-97C6-2D1DE253C539}</Item>
 *     <Item Key="im_message_id" Type="Buffer">EAAAANSTcL/D4jxDhS9VIr0khiV=</Item>
 *     <Item Key="Mode" Type="Long">4</Item>
 *     <Item Key="Title" Type="String">项目群</Item>
 *     <Item Key="DisGroupId" Type="Long">10001</Item>
 *   </RTXCData>
 *
 * Key is the conversation (window) GUID. Mode 0 is a one-to-one chat; Mode 4 a conversation of more than two
 * people, with Title its name and, for an RTX 群 (DisGroup), DisGroupId its number. A Buffer item is base64 of
 * a little-endian uint32 length followed by the bytes; im_message_id is 16 random bytes, unique per message.
 */

export const MODE_SINGLE = 0;
export const MODE_MULTI = 4;

/** The font a default RTX client sends (宋体 9pt, GB2312 charset 134). */
const DEFAULT_FONT = { Name: '宋体', CharSet: '134', PAF: '0', Size: '9', YOffset: '0', Effects: '1073741824', Color: '0' };

export interface RtxcMessage {
  key: string;
  mode: number;
  text: string;
  imMessageId: string;
  initiator?: string;
  title?: string;
  disGroupId?: number;
}

/** `{XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX}`: the form RTX uses for conversation keys. */
export function newGuid(): string {
  return `{${randomUUID().toUpperCase()}}`;
}

const GUID = /^\{[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\}$/;

export function isGuid(s: string): boolean {
  return GUID.test(s);
}

/** GUIDs compare case-insensitively; the emulator keys conversations by the upper-case form. */
export function normaliseGuid(s: string): string {
  return s.toUpperCase();
}

/** A fresh im_message_id: Buffer item encoding of 16 random bytes. */
export function newImMessageId(): string {
  const buf = Buffer.alloc(20);
  buf.writeUInt32LE(16, 0);
  randomBytes(16).copy(buf, 4);
  return buf.toString('base64');
}

// XML 1.0 cannot carry most C0 controls even escaped; RTX clients never type them, the HTTP SDK lets them in.
// eslint-disable-next-line no-control-regex
const XML_INVALID = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/g;

/** The RTXMsg document for `text` (the value of the Content item). */
export function buildRtxMsg(text: string): string {
  const font: XmlNode = {};
  for (const [k, v] of Object.entries(DEFAULT_FONT)) font[`@_${k}`] = v;
  return buildXml({ RTXMsg: { '@_Ver': '1.0', Content: { Txt: { '#text': text.replace(XML_INVALID, '') }, Font: font } } });
}

export function buildRtxcData(m: RtxcMessage): string {
  const items: XmlNode[] = [
    { '@_Key': 'Content', '@_Type': 'String', '#text': buildRtxMsg(m.text) },
    ...(m.initiator !== undefined ? [{ '@_Key': 'Initiator', '@_Type': 'String', '#text': m.initiator }] : []),
    { '@_Key': 'Key', '@_Type': 'String', '#text': m.key },
    { '@_Key': 'im_message_id', '@_Type': 'Buffer', '#text': m.imMessageId },
    { '@_Key': 'Mode', '@_Type': 'Long', '#text': String(m.mode) },
    ...(m.title !== undefined ? [{ '@_Key': 'Title', '@_Type': 'String', '#text': m.title }] : []),
    ...(m.disGroupId !== undefined ? [{ '@_Key': 'DisGroupId', '@_Type': 'Long', '#text': String(m.disGroupId) }] : []),
  ];
  return buildXml({ RTXCData: { Item: items } });
}

/** The RTXCData items by key (Key matching is case-insensitive, as RTXSAPI's GetString is). */
export function rtxcItems(xml: string): Map<string, { type: string; value: string }> {
  const root = parseXml(xml);
  if (root.name !== 'RTXCData') throw new XmlError(`root element is <${root.name}>, expected <RTXCData>`);
  const items = new Map<string, { type: string; value: string }>();
  for (const el of root.children) {
    if (el.name !== 'Item' || el.attributes.Key === undefined) continue;
    items.set(el.attributes.Key.toLowerCase(), { type: el.attributes.Type ?? 'String', value: el.text });
  }
  return items;
}

/** The text inside `<RTXMsg><Content><Txt>`. */
export function rtxMsgText(rtxMsg: string): string {
  const root = parseXml(rtxMsg);
  return (root.name === 'RTXMsg' && child(child(root, 'Content') ?? root, 'Txt')?.text) || '';
}

/** Reads what the filter forwards: the inverse of {@link buildRtxcData}. */
export function parseRtxcData(xml: string): RtxcMessage {
  const items = rtxcItems(xml);
  const str = (k: string) => items.get(k.toLowerCase())?.value;
  const long = (k: string) => {
    const v = str(k);
    return v === undefined || v.trim() === '' ? undefined : Number.parseInt(v, 10);
  };
  const content = str('Content');
  return {
    key: str('Key') ?? '',
    mode: long('Mode') ?? MODE_SINGLE,
    text: content ? rtxMsgText(content) : '',
    imMessageId: str('im_message_id') ?? '',
    initiator: str('Initiator'),
    title: str('Title'),
    disGroupId: long('DisGroupId'),
  };
}
