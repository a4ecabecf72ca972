import iconv from 'iconv-lite';
import { SaxesParser, type SaxesTagPlain } from 'saxes';
import { qiaoError } from '../../errors.ts';
import { LIMITS, checkAccount, checkEmail, checkText, parseGender, type Gender } from '../fields.ts';
import type { ImportPlan, PlanDepartment, PlanUser } from './apply-plan.ts';
import { boundedChunks, type ImportSource } from './input.ts';
import { ProblemList } from './problems.ts';
import { StrictDecoder, sniffEncoding } from './text-decoding.ts';

/**
 * Tencent RTX's organisation export (RTX manager → 用户数据导入导出 → xml):
 *
 *   <?xml version="1.0" encoding="gb2312"?>
 *   <enterprise name="…">
 *     <departments>
 *       <department name="总部" describe="…">
 *         <user uid="zhangsan" name="张三" rtxno="10001" mobile="…" email="…" phone="…" gender="0"/>
 *         <department name="研发部">…</department>
 *       </department>
 *     </departments>
 *   </enterprise>
 *
 * Parsed as a stream with saxes (never a home-made parser). A DOCTYPE is refused outright, which rules out
 * external entities (XXE) and entity-expansion bombs; the input is bounded by `maxBytes`; malformed XML and
 * bytes invalid in the declared encoding are errors with line and column. A person listed in several
 * departments belongs to all of them.
 */

const WHAT = 'RTX organisation XML';
export const MAX_DEPTH = 64;

export interface RtxParseResult {
  plan: ImportPlan;
  encoding: string;
  enterprise: string | null;
}

interface SeenUser {
  plan: PlanUser;
  line: number;
  fingerprint: string;
  departments: Set<string>;
}

class Stop extends Error {}

/** Attribute names as RTX writes them vary in case; read them once, lower-cased. */
function attributes(node: SaxesTagPlain): Map<string, string> {
  const out = new Map<string, string>();
  for (const k in node.attributes) out.set(k.toLowerCase(), node.attributes[k]);
  return out;
}

function attr(attrs: Map<string, string>, ...names: string[]): string | undefined {
  for (const n of names) {
    const v = attrs.get(n);
    if (v !== undefined) return v.trim();
  }
  return undefined;
}

const orNull = (v: string | undefined) => (v === undefined || v === '' ? null : v);

export async function parseRtxXml(src: ImportSource, opts: { maxBytes: number; source?: string | null }): Promise<RtxParseResult> {
  const problems = new ProblemList();
  const departments: PlanDepartment[] = [];
  const users = new Map<string, SeenUser>();
  const siblings = new Map<string, number>();
  const sortCounters = new Map<string | null, number>();
  const nextSort = (parent: string | null) => {
    const n = sortCounters.get(parent) ?? 0;
    sortCounters.set(parent, n + 1);
    return n;
  };
  const stack: Array<{ name: string; deptKey: string | null }> = [];
  let enterprise: string | null = null;
  let sawRoot = false;
  let tagLine = 1;
  let tagColumn = 1;

  const parser = new SaxesParser({ position: true, xmlns: false });
  const at = () => ({ line: tagLine, column: tagColumn });
  parser.on('doctype', () => {
    throw qiaoError(
      'QIAO_VALIDATION',
      `${WHAT} refused at line ${parser.line}: DOCTYPE declarations are not allowed (they can pull in external entities or expand into a memory bomb); RTX exports have none`,
      { field: 'data', line: parser.line },
    );
  });
  parser.on('error', (err) => {
    const m = /^(?:[^:]*:)?(\d+):(\d+): (.*)$/s.exec(err.message);
    const line = m ? Number(m[1]) : parser.line;
    const column = m ? Number(m[2]) + 1 : parser.column + 1;
    throw qiaoError('QIAO_VALIDATION', `${WHAT} is not well-formed XML at line ${line}, column ${column}: ${m ? m[3] : err.message}`, { field: 'data', line, column });
  });
  parser.on('opentagstart', () => {
    tagLine = parser.line;
    tagColumn = parser.column;
  });
  parser.on('opentag', (node) => {
    const name = node.name.toLowerCase();
    const attrs = attributes(node);
    const parent = stack[stack.length - 1];
    const parentDept = [...stack].reverse().find((s) => s.deptKey !== null)?.deptKey ?? null;
    if (!sawRoot) {
      sawRoot = true;
      if (name !== 'enterprise') {
        throw qiaoError('QIAO_VALIDATION', `${WHAT}: the root element must be <enterprise>, found <${node.name}> at line ${tagLine}`, { field: 'data', line: tagLine });
      }
      enterprise = orNull(attr(attrs, 'name'));
    }
    if (stack.length >= MAX_DEPTH) {
      throw qiaoError('QIAO_VALIDATION', `${WHAT}: elements nest deeper than ${MAX_DEPTH} levels at line ${tagLine}`, { field: 'data', line: tagLine });
    }
    let deptKey: string | null = null;
    if (name === 'department') {
      if (parent && parent.name !== 'departments' && parent.name !== 'department') {
        problems.add({ where: `line ${tagLine}`, line: tagLine, field: 'department', message: `<department> must sit inside <departments> or another <department>, not <${parent.name}>` });
      }
      const deptName = attr(attrs, 'name') ?? '';
      const p = checkText('name', deptName, LIMITS.departmentName, true);
      if (p) problems.add({ where: `line ${tagLine}`, line: tagLine, column: 'name', field: 'department.name', message: `department ${p.message}` });
      const describe = attr(attrs, 'describe', 'description');
      const pd = checkText('describe', describe, LIMITS.description);
      if (pd) problems.add({ where: `line ${tagLine}`, line: tagLine, column: 'describe', field: 'department.describe', message: pd.message });
      const sib = `${parentDept ?? ''}\u0000${deptName}`;
      const prior = siblings.get(sib);
      if (prior !== undefined) {
        problems.add({ where: `line ${tagLine}`, line: tagLine, column: 'name', field: 'department.name', message: `department "${deptName}" appears twice under the same parent: lines ${prior} and ${tagLine}` });
      } else siblings.set(sib, tagLine);
      deptKey = `d${departments.length}`;
      departments.push({
        key: deptKey,
        parentKey: parentDept,
        name: deptName,
        description: orNull(describe),
        sortOrder: nextSort(parentDept),
        source: opts.source ?? null,
        where: `line ${tagLine}, position ${tagColumn}`,
      });
    } else if (name === 'user') {
      readUser(attrs, parentDept);
    }
    stack.push({ name, deptKey });
    if (problems.full) throw new Stop();
  });
  parser.on('closetag', () => {
    stack.pop();
  });

  function readUser(attrs: Map<string, string>, deptKey: string | null): void {
    const { line, column: col } = at();
    const where = `line ${line}, position ${col}`;
    const account = attr(attrs, 'uid', 'account') ?? '';
    const bad = (column: string, field: string, message: string) => problems.add({ where, line, column, field, message: account ? `account "${account.slice(0, 64)}": ${message}` : message });
    const pa = checkAccount(account, 'uid');
    if (pa) return bad('uid', 'user.uid', pa.message);
    const name = attr(attrs, 'name') || account;
    const gRaw = attr(attrs, 'gender', 'sex');
    const gender = parseGender(gRaw);
    if (gRaw !== undefined && gender === undefined) bad('gender', 'user.gender', `gender "${gRaw.slice(0, 20)}" is not 0 (male), 1 (female), 男 or 女`);
    const fields = {
      name,
      mobile: orNull(attr(attrs, 'mobile', 'mobilephone')),
      phone: orNull(attr(attrs, 'phone', 'telephone', 'tel')),
      email: orNull(attr(attrs, 'email')),
      shortNumber: orNull(attr(attrs, 'shortnumber', 'short')),
      gender: (gender ?? null) as Gender | null,
    };
    const position = orNull(attr(attrs, 'position', 'title', 'duty'));
    const rtxno = orNull(attr(attrs, 'rtxno'));
    for (const [column, field, max] of [
      ['name', 'name', LIMITS.name],
      ['mobile', 'mobile', LIMITS.mobile],
      ['phone', 'phone', LIMITS.phone],
      ['shortnumber', 'shortNumber', LIMITS.shortNumber],
    ] as const) {
      const p = checkText(column, fields[field], max, field === 'name');
      if (p) bad(column, `user.${column}`, p.message);
    }
    const pe = checkEmail(fields.email, 'email');
    if (pe) bad('email', 'user.email', pe.message);
    const pp = checkText('position', position, LIMITS.position);
    if (pp) bad('position', 'user.position', pp.message);
    const px = checkText('rtxno', rtxno, LIMITS.externalId);
    if (px) bad('rtxno', 'user.rtxno', px.message);

    const fingerprint = JSON.stringify([fields, rtxno]);
    const seen = users.get(account);
    const membership = deptKey === null ? null : { deptKey, position, weight: 0 };
    if (seen) {
      if (deptKey === null || seen.departments.has(deptKey)) {
        return bad('uid', 'user.uid', `account "${account}" appears twice in the same department: lines ${seen.line} and ${line}`);
      }
      if (seen.fingerprint !== fingerprint) {
        return bad('uid', 'user.uid', `account "${account}" appears twice with different details: lines ${seen.line} and ${line}`);
      }
      seen.departments.add(deptKey);
      seen.plan.memberships!.push(membership!);
      return;
    }
    users.set(account, {
      line,
      fingerprint,
      departments: new Set(deptKey === null ? [] : [deptKey]),
      plan: {
        where,
        account,
        fields: { ...fields, externalId: rtxno, ...(opts.source ? { source: opts.source } : {}) },
        memberships: membership ? [membership] : [],
        membershipMode: 'replace',
      },
    });
  }

  let encoding = 'UTF-8';
  try {
    let decoder: StrictDecoder | null = null;
    let head: Buffer = Buffer.alloc(0);
    for await (const chunk of boundedChunks(src, opts.maxBytes, WHAT)) {
      if (!decoder) {
        head = Buffer.concat([head, chunk]);
        if (head.length < 1024) continue;
        decoder = start(head);
        continue;
      }
      parser.write(decoder.write(chunk));
    }
    if (!decoder) decoder = start(head);
    parser.write(decoder.end());
    parser.close();
  } catch (err) {
    if (!(err instanceof Stop)) throw err;
  }
  if (!sawRoot && !problems.items.length) throw qiaoError('QIAO_VALIDATION', `${WHAT} is empty: no <enterprise> element`, { field: 'data' });
  problems.throwIfAny(`${WHAT} import`);
  return { plan: { departments, users: [...users.values()].map((u) => u.plan) }, encoding, enterprise };

  function start(head: Buffer): StrictDecoder {
    const sniffed = sniffEncoding(head, WHAT);
    encoding = sniffed.label;
    const decoder = new StrictDecoder(sniffed.codec, sniffed.label, WHAT);
    parser.write(decoder.write(head.subarray(sniffed.bom)));
    return decoder;
  }
}

// ---- export ----------------------------------------------------------------------------------------------

export type RtxEncoding = 'gb2312' | 'gbk' | 'utf-8';

export interface RtxExportDepartment {
  id: number;
  parentId: number | null;
  name: string;
  description: string | null;
  sortOrder: number;
}

export interface RtxExportUser {
  account: string;
  name: string;
  gender: Gender | null;
  mobile: string | null;
  phone: string | null;
  email: string | null;
  shortNumber: string | null;
  externalId: string | null;
  departments: Array<{ departmentId: number; position: string | null }>;
}

/**
 * Writes the same format back. In GB2312/GBK, characters the encoding cannot hold (emoji, rare hanzi) are
 * written as numeric character references, so nothing is lost to a `?`.
 */
export function writeRtxXml(enterprise: string, departments: RtxExportDepartment[], users: RtxExportUser[], encoding: RtxEncoding): Buffer {
  const legacy = encoding !== 'utf-8';
  const esc = (s: string) => {
    let out = s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
    if (legacy && /[^\x00-\x7f]/.test(out)) {
      out = [...out].map((ch) => (ch.charCodeAt(0) < 0x80 || iconv.decode(iconv.encode(ch, 'gbk'), 'gbk') === ch ? ch : `&#x${ch.codePointAt(0)!.toString(16)};`)).join('');
    }
    return out;
  };
  const a = (k: string, v: string | null | undefined) => (v === null || v === undefined || v === '' ? '' : ` ${k}="${esc(v)}"`);
  const byParent = new Map<number | null, RtxExportDepartment[]>();
  const known = new Set(departments.map((d) => d.id));
  for (const d of departments) {
    const p = d.parentId !== null && known.has(d.parentId) ? d.parentId : null;
    const list = byParent.get(p) ?? [];
    list.push(d);
    byParent.set(p, list);
  }
  for (const list of byParent.values()) list.sort((x, y) => x.sortOrder - y.sortOrder || x.id - y.id);
  const members = new Map<number, string[]>();
  const loose: string[] = [];
  for (const u of users) {
    const gender = u.gender === 'male' ? '0' : u.gender === 'female' ? '1' : null;
    // RTX's own attribute order; position belongs to each department the person is listed in.
    const base = `<user${a('uid', u.account)}${a('name', u.name)}${a('email', u.email)}${a('mobile', u.mobile)}${a('rtxno', u.externalId)}${a('phone', u.phone)}`;
    const tail = `${a('gender', gender)}${a('shortnumber', u.shortNumber)}/>`;
    const listed = u.departments.filter((m) => known.has(m.departmentId));
    if (!listed.length) loose.push(`${base}${tail}`);
    for (const m of listed) {
      const list = members.get(m.departmentId) ?? [];
      list.push(`${base}${a('position', m.position)}${tail}`);
      members.set(m.departmentId, list);
    }
  }
  const out: string[] = [`<?xml version="1.0" encoding="${encoding === 'utf-8' ? 'UTF-8' : encoding === 'gbk' ? 'GBK' : 'gb2312'}"?>`, `<enterprise${a('name', enterprise)}>`, '  <departments>'];
  // Iterative walk: a deep tree must not overflow the stack.
  const walk: Array<{ d: RtxExportDepartment; depth: number; close: boolean }> = (byParent.get(null) ?? []).map((d) => ({ d, depth: 2, close: false })).reverse();
  while (walk.length) {
    const { d, depth, close } = walk.pop()!;
    const pad = '  '.repeat(depth);
    if (close) {
      out.push(`${pad}</department>`);
      continue;
    }
    out.push(`${pad}<department${a('name', d.name)}${a('describe', d.description)}>`);
    for (const u of members.get(d.id) ?? []) out.push(`${pad}  ${u}`);
    walk.push({ d, depth, close: true });
    for (const c of [...(byParent.get(d.id) ?? [])].reverse()) walk.push({ d: c, depth: depth + 1, close: false });
  }
  // People in no department sit directly under <departments>, where RTX keeps them.
  for (const u of loose) out.push(`    ${u}`);
  out.push('  </departments>', '</enterprise>', '');
  const text = out.join('\n');
  return legacy ? iconv.encode(text, 'gbk') : Buffer.from(text, 'utf8');
}
