import iconv from 'iconv-lite';
import { encodeGbk } from './gbk.ts';
import { type Gender, OrgError, type RtxOrg, type RtxUser, type UserInput } from './rtx-org.ts';
import { buildXml, children, parseXml, type XmlElement, type XmlNode } from './xml.ts';

/**
 * The organisation XML of RTX's USERSYNC object (RTX管理器 → 用户数据导入导出, or the SDK's USERSYNC
 * export with XMLENCODE `<?xml version="1.0" encoding="gb2312" ?>`):
 *
 *   <enterprise name=… postcode=… address=… phone=… email=…>
 *     <departments>
 *       <department name="公司" describe="">
 *         <user uid=… name=… email=… mobile=… rtxno=… phone=… position=… fax=… homepage=… address=… age=… gender=…/>
 *         <department name="技术部" describe="">…</department>
 *       </department>
 *     </departments>
 *   </enterprise>
 *
 * The declaration says gb2312 but the bytes are written in the server's ANSI code page (936, i.e. GBK), so
 * names with GBK-only characters such as 镕 are in the file even though a strict GB2312 decoder chokes on
 * them. Readers must decode as GBK; so does {@link parseOrgXml}.
 */
export const ORG_XML_DECLARATION = '<?xml version="1.0" encoding="gb2312" ?>';

export interface EnterpriseInfo {
  name: string;
  postcode?: string;
  address?: string;
  phone?: string;
  email?: string;
}

function userNode(u: RtxUser): XmlNode {
  // Attribute order as RTX writes it; fax/homepage/address/age are not kept by the emulator.
  return {
    '@_uid': u.uid,
    '@_name': u.name,
    '@_email': u.email,
    '@_mobile': u.mobile,
    '@_rtxno': String(u.rtxno),
    '@_phone': u.phone,
    '@_position': u.position,
    '@_fax': '',
    '@_homepage': '',
    '@_address': '',
    '@_age': '0',
    '@_gender': String(u.gender),
  };
}

/** The export as a string (still declaring gb2312). */
export function exportOrgXmlString(org: RtxOrg, enterprise: EnterpriseInfo): string {
  const usersByDept = new Map<number, RtxUser[]>();
  const homeless: RtxUser[] = [];
  for (const u of org.users()) {
    if (u.departmentIds.length === 0) homeless.push(u);
    for (const id of u.departmentIds) {
      if (!usersByDept.has(id)) usersByDept.set(id, []);
      usersByDept.get(id)!.push(u);
    }
  }
  const deptNode = (id: number): XmlNode => {
    const d = org.department(id)!;
    const node: XmlNode = { '@_name': d.name, '@_describe': d.describe };
    const users = usersByDept.get(id) ?? [];
    if (users.length) node.user = users.map(userNode);
    const kids = org.childDepartments(id);
    if (kids.length) node.department = kids.map((k) => deptNode(k.id));
    return node;
  };
  const departments: XmlNode = {};
  const top = org.childDepartments(null);
  if (top.length) departments.department = top.map((d) => deptNode(d.id));
  // Users in no department: RTX keeps them at the root of the tree, so they are written there.
  if (homeless.length) departments.user = homeless.map(userNode);
  return buildXml(
    {
      enterprise: {
        '@_name': enterprise.name,
        '@_postcode': enterprise.postcode ?? '',
        '@_address': enterprise.address ?? '',
        '@_phone': enterprise.phone ?? '',
        '@_email': enterprise.email ?? '',
        departments,
      },
    },
    ORG_XML_DECLARATION,
  );
}

/** The export as RTX hands it out: GBK bytes under a gb2312 declaration. */
export function exportOrgXml(org: RtxOrg, enterprise: EnterpriseInfo): Buffer {
  return encodeGbk(exportOrgXmlString(org, enterprise));
}

/** Decodes file bytes by their declaration: gb2312/gbk/gb18030 (and no declaration) as GBK, utf-8 as UTF-8. */
export function decodeXmlBytes(bytes: Buffer): string {
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) return bytes.subarray(3).toString('utf8');
  if (bytes[0] === 0xff && bytes[1] === 0xfe) return iconv.decode(bytes.subarray(2), 'utf16le');
  const head = bytes.subarray(0, 200).toString('latin1');
  const declared = /^\s*<\?xml[^>]*encoding\s*=\s*["']([^"']+)["']/i.exec(head)?.[1]?.toLowerCase();
  if (declared === 'utf-8' || declared === 'utf8') return bytes.toString('utf8');
  if (declared === 'gb18030') return iconv.decode(bytes, 'gb18030');
  return iconv.decode(bytes, 'gbk');
}

export interface ParsedOrg {
  enterprise: EnterpriseInfo;
  departments: { path: string; describe: string }[];
  users: (UserInput & { uid: string; departments: string[] })[];
}

function parseGender(raw: string | undefined): Gender {
  return raw?.trim() === '1' ? 1 : 0;
}

/** Reads an organisation XML (bytes in any declared encoding, or an already-decoded string). */
export function parseOrgXml(input: Buffer | string): ParsedOrg {
  const root = parseXml(typeof input === 'string' ? input : decodeXmlBytes(input));
  if (root.name !== 'enterprise') throw new OrgError('validation', 'xml', `root element is <${root.name}>, expected <enterprise>`);
  const a = root.attributes;
  const out: ParsedOrg = {
    enterprise: { name: a.name ?? '', postcode: a.postcode, address: a.address, phone: a.phone, email: a.email },
    departments: [],
    users: [],
  };
  const byUid = new Map<string, ParsedOrg['users'][number]>();
  const addUser = (el: XmlElement, deptPath: string | null) => {
    const uid = (el.attributes.uid ?? '').trim();
    if (uid === '') throw new OrgError('validation', 'uid', `a <user> ${deptPath ? `in "${deptPath}" ` : ''}has no uid`);
    const key = uid.toLowerCase();
    let u = byUid.get(key);
    if (!u) {
      const rtxno = (el.attributes.rtxno ?? '').trim();
      u = {
        uid,
        name: el.attributes.name ?? uid,
        rtxno: rtxno === '' ? undefined : Number.parseInt(rtxno, 10),
        gender: parseGender(el.attributes.gender),
        mobile: el.attributes.mobile ?? '',
        email: el.attributes.email ?? '',
        phone: el.attributes.phone ?? '',
        position: el.attributes.position ?? '',
        departments: [],
      };
      if (u.rtxno !== undefined && !(Number.isInteger(u.rtxno) && u.rtxno > 0)) {
        throw new OrgError('validation', 'rtxno', `user "${uid}" has rtxno "${rtxno}", expected a positive integer`);
      }
      byUid.set(key, u);
      out.users.push(u);
    }
    if (deptPath !== null && !u.departments.includes(deptPath)) u.departments.push(deptPath);
  };
  const walk = (el: XmlElement, parentPath: string | null) => {
    const name = (el.attributes.name ?? '').trim();
    if (name === '' || name.includes('\\')) throw new OrgError('validation', 'department', `a <department> under "${parentPath ?? '(root)'}" has no usable name`);
    const path = parentPath === null ? name : `${parentPath}\\${name}`;
    out.departments.push({ path, describe: el.attributes.describe ?? '' });
    for (const c of el.children) {
      if (c.name === 'user') addUser(c, path);
      else if (c.name === 'department') walk(c, path);
    }
  };
  for (const deps of children(root, 'departments')) {
    for (const c of deps.children) {
      if (c.name === 'department') walk(c, null);
      else if (c.name === 'user') addUser(c, null);
    }
  }
  return out;
}

export interface ImportResult {
  departments: number;
  users: number;
  created: number;
  updated: number;
}

/**
 * USERSYNC import. `merge` (the SDK's MODIFYMODE 1, as the emulator reads it) adds and updates what the file
 * lists and leaves everything else alone; a listed user's departments become the ones the file gives.
 * `replace` empties the organisation first. The file is parsed completely before anything changes.
 */
export function importOrgXml(org: RtxOrg, input: Buffer | string, mode: 'merge' | 'replace' = 'merge'): ImportResult {
  const parsed = parseOrgXml(input);
  if (mode === 'replace') org.clear();
  for (const d of parsed.departments) org.ensureDepartment(d.path, d.describe);
  let created = 0;
  let updated = 0;
  for (const u of parsed.users) {
    const { uid, ...fields } = u;
    if (org.user(uid)) {
      org.updateUser(uid, fields);
      updated++;
    } else {
      org.addUser(u);
      created++;
    }
  }
  return { departments: parsed.departments.length, users: parsed.users.length, created, updated };
}
