import iconv from 'iconv-lite';

/**
 * Generates a synthetic RTX organisation export of any size as a byte stream, for the benchmark and the
 * tests (nobody keeps a 100,000-person file in the repository). Departments form a 10-ary tree; people
 * are spread evenly, every 20th also in a second department.
 */
export interface SampleOptions {
  departments: number;
  users: number;
  encoding?: 'gb2312' | 'utf-8';
  /** Added to names, so a second import can differ from the first. */
  nameSuffix?: string;
}

const FANOUT = 10;
const CHUNK = 256 * 1024;

export async function* rtxSample(opts: SampleOptions): AsyncGenerator<Buffer> {
  const enc = opts.encoding ?? 'gb2312';
  const encode = (s: string) => (enc === 'utf-8' ? Buffer.from(s, 'utf8') : iconv.encode(s, 'gbk'));
  const n = opts.departments;
  const members = new Map<number, number[]>();
  for (let j = 0; j < opts.users; j++) {
    const home = j % n;
    members.set(home, [...(members.get(home) ?? []), j]);
    if (j % 20 === 0 && n > 1) {
      const second = (home + 1) % n;
      members.set(second, [...(members.get(second) ?? []), j]);
    }
  }
  const suffix = opts.nameSuffix ?? '';
  const user = (j: number) =>
    `<user uid="user${j}" name="用户${j}${suffix}" rtxno="${100000 + j}" mobile="138${String(j).padStart(8, '0')}" email="user${j}@example.com" phone="0756-${String(j % 10000).padStart(4, '0')}" gender="${j % 2}"/>`;
  let buf = `<?xml version="1.0" encoding="${enc === 'utf-8' ? 'UTF-8' : 'gb2312'}"?>\n<enterprise name="样例公司">\n<departments>\n`;
  // Depth-first with an explicit stack: open a department, list its people, then its children, then close.
  const roots = Array.from({ length: Math.min(FANOUT, n) }, (_, i) => i);
  const stack: Array<{ id: number; close: boolean }> = roots.reverse().map((id) => ({ id, close: false }));
  while (stack.length) {
    const { id, close } = stack.pop()!;
    if (close) buf += '</department>\n';
    else {
      buf += `<department name="部门${id}${suffix}" describe="第${id}号部门">\n`;
      for (const j of members.get(id) ?? []) buf += `${user(j)}\n`;
      stack.push({ id, close: true });
      const first = FANOUT + FANOUT * id;
      for (let c = Math.min(first + FANOUT, n) - 1; c >= first; c--) stack.push({ id: c, close: false });
    }
    if (buf.length >= CHUNK) {
      yield encode(buf);
      buf = '';
    }
  }
  buf += '</departments>\n</enterprise>\n';
  yield encode(buf);
}

export async function sampleBuffer(opts: SampleOptions): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const p of rtxSample(opts)) parts.push(p);
  return Buffer.concat(parts);
}
