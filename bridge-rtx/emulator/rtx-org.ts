/**
 * The RTX organisation: a department tree addressed by backslash paths (`公司\技术部\开发组`, as the SDK's
 * DeptManager takes them) and user accounts. Account names are matched without regard to case, as RTX does
 * on Windows; the spelling they were created with is kept for output.
 */

export type Gender = 0 | 1; // RTX: 0 = male, 1 = female

export interface RtxDepartment {
  id: number;
  name: string;
  describe: string;
  parentId: number | null;
}

export interface RtxUser {
  /** The login account (RTX calls it the user name / nick). */
  uid: string;
  /** The display name (姓名). */
  name: string;
  /** The RTX number (UIN), unique. */
  rtxno: number;
  gender: Gender;
  mobile: string;
  email: string;
  phone: string;
  position: string;
  password: string;
  /** Index of the user's face picture; GetImage.cgi redirects to `images/<face+1>-<state>.bmp`. */
  face: number;
  departmentIds: number[];
}

export interface UserInput {
  uid: string;
  name?: string;
  rtxno?: number;
  gender?: Gender;
  mobile?: string;
  email?: string;
  phone?: string;
  position?: string;
  password?: string;
  face?: number;
  /** Department paths; missing departments are created. */
  departments?: string[];
}

export class OrgError extends Error {
  readonly field: string;
  readonly kind: 'validation' | 'not-found' | 'conflict';
  constructor(kind: 'validation' | 'not-found' | 'conflict', field: string, message: string) {
    super(message);
    this.name = 'OrgError';
    this.kind = kind;
    this.field = field;
  }
}

const FIRST_RTXNO = 1001; // RTX numbers handed out by a fresh RTX server start around 1000.
const MAX_UID_LENGTH = 64;

export function splitDeptPath(path: string): string[] {
  return path.split('\\').map((s) => s.trim()).filter((s) => s !== '');
}

export class RtxOrg {
  private depts = new Map<number, RtxDepartment>();
  /** parent id (null for top level) → child name → department; keeps path lookups cheap for 100k-user orgs. */
  private kids = new Map<number | null, Map<string, RtxDepartment>>();
  private usersByKey = new Map<string, RtxUser>();
  private rtxnos = new Set<number>();
  private nextDeptId = 1;
  private nextRtxno = FIRST_RTXNO;

  // ---- departments -------------------------------------------------------------------------------------

  departments(): RtxDepartment[] {
    return [...this.depts.values()];
  }

  department(id: number): RtxDepartment | undefined {
    return this.depts.get(id);
  }

  childDepartments(parentId: number | null): RtxDepartment[] {
    return [...(this.kids.get(parentId)?.values() ?? [])];
  }

  private childNamed(parentId: number | null, name: string): RtxDepartment | undefined {
    return this.kids.get(parentId)?.get(name);
  }

  deptPath(id: number): string {
    const parts: string[] = [];
    let cur = this.depts.get(id);
    while (cur) {
      parts.unshift(cur.name);
      cur = cur.parentId === null ? undefined : this.depts.get(cur.parentId);
    }
    return parts.join('\\');
  }

  findDeptByPath(path: string): RtxDepartment | undefined {
    let parentId: number | null = null;
    let found: RtxDepartment | undefined;
    for (const part of splitDeptPath(path)) {
      found = this.childNamed(parentId, part);
      if (!found) return undefined;
      parentId = found.id;
    }
    return found;
  }

  /**
   * What sendnotifybydepart.php's `receiverdepart` names: a full path, or — as the published examples
   * write it (`receiverdepart=运维开发组`) — the bare name of a department when exactly one has that name.
   */
  resolveDepartment(nameOrPath: string): RtxDepartment | undefined {
    const byPath = this.findDeptByPath(nameOrPath);
    if (byPath) return byPath;
    if (nameOrPath.includes('\\')) return undefined;
    const named = [...this.depts.values()].filter((d) => d.name === nameOrPath.trim());
    return named.length === 1 ? named[0] : undefined;
  }

  /** Creates every missing department along `path`; returns the last one. */
  ensureDepartment(path: string, describe?: string): RtxDepartment {
    const parts = splitDeptPath(path);
    if (parts.length === 0) throw new OrgError('validation', 'path', 'department path is empty');
    let parentId: number | null = null;
    let dept: RtxDepartment | undefined;
    for (const part of parts) {
      if (part.length > 64) throw new OrgError('validation', 'path', `department name "${part}" is longer than 64 characters`);
      dept = this.childNamed(parentId, part);
      if (!dept) {
        dept = { id: this.nextDeptId++, name: part, describe: '', parentId };
        this.depts.set(dept.id, dept);
        if (!this.kids.has(parentId)) this.kids.set(parentId, new Map());
        this.kids.get(parentId)!.set(part, dept);
      }
      parentId = dept.id;
    }
    if (describe !== undefined) dept!.describe = describe;
    return dept!;
  }

  /** Deletes a department with its sub-departments; their users stay, minus those memberships. */
  deleteDepartment(path: string): void {
    const dept = this.findDeptByPath(path);
    if (!dept) throw new OrgError('not-found', 'path', `department "${path}" does not exist`);
    const doomed = new Set(this.subtreeIds(dept.id));
    this.kids.get(dept.parentId)?.delete(dept.name);
    for (const id of doomed) {
      this.depts.delete(id);
      this.kids.delete(id);
    }
    for (const u of this.usersByKey.values()) u.departmentIds = u.departmentIds.filter((id) => !doomed.has(id));
  }

  /** The department and everything below it. */
  subtreeIds(id: number): number[] {
    const out = [id];
    for (let i = 0; i < out.length; i++) for (const c of this.childDepartments(out[i]!)) out.push(c.id);
    return out;
  }

  // ---- users -------------------------------------------------------------------------------------------

  users(): RtxUser[] {
    return [...this.usersByKey.values()];
  }

  user(uid: string): RtxUser | undefined {
    return this.usersByKey.get(uid.trim().toLowerCase());
  }

  userCount(): number {
    return this.usersByKey.size;
  }

  usersInDepartment(id: number): RtxUser[] {
    return [...this.usersByKey.values()].filter((u) => u.departmentIds.includes(id));
  }

  addUser(input: UserInput): RtxUser {
    const uid = (input.uid ?? '').trim();
    if (uid === '') throw new OrgError('validation', 'uid', 'uid is empty');
    if (uid.length > MAX_UID_LENGTH) throw new OrgError('validation', 'uid', `uid is longer than ${MAX_UID_LENGTH} characters`);
    if (/[\\/,;\s]/.test(uid)) throw new OrgError('validation', 'uid', `uid "${uid}" contains a separator (\\ / , ; or space) RTX cannot address`);
    if (this.user(uid)) throw new OrgError('conflict', 'uid', `user "${uid}" already exists`);
    let rtxno = input.rtxno;
    if (rtxno !== undefined) {
      if (!Number.isInteger(rtxno) || rtxno <= 0) throw new OrgError('validation', 'rtxno', 'rtxno must be a positive integer');
      if (this.rtxnos.has(rtxno)) throw new OrgError('conflict', 'rtxno', `rtxno ${rtxno} is taken`);
    } else {
      while (this.rtxnos.has(this.nextRtxno)) this.nextRtxno++;
      rtxno = this.nextRtxno++;
    }
    const user: RtxUser = {
      uid,
      name: input.name ?? uid,
      rtxno,
      gender: 0,
      mobile: '',
      email: '',
      phone: '',
      position: '',
      password: '',
      face: 0,
      departmentIds: [],
    };
    this.rtxnos.add(rtxno);
    this.usersByKey.set(uid.toLowerCase(), user);
    this.applyUserFields(user, input);
    return user;
  }

  updateUser(uid: string, input: Omit<UserInput, 'uid'>): RtxUser {
    const user = this.user(uid);
    if (!user) throw new OrgError('not-found', 'uid', `user "${uid}" does not exist`);
    if (input.rtxno !== undefined && input.rtxno !== user.rtxno) {
      if (!Number.isInteger(input.rtxno) || input.rtxno <= 0) throw new OrgError('validation', 'rtxno', 'rtxno must be a positive integer');
      if (this.rtxnos.has(input.rtxno)) throw new OrgError('conflict', 'rtxno', `rtxno ${input.rtxno} is taken`);
      this.rtxnos.delete(user.rtxno);
      this.rtxnos.add(input.rtxno);
      user.rtxno = input.rtxno;
    }
    this.applyUserFields(user, input);
    return user;
  }

  deleteUser(uid: string): RtxUser {
    const user = this.user(uid);
    if (!user) throw new OrgError('not-found', 'uid', `user "${uid}" does not exist`);
    this.usersByKey.delete(user.uid.toLowerCase());
    this.rtxnos.delete(user.rtxno);
    return user;
  }

  private applyUserFields(user: RtxUser, input: Omit<UserInput, 'uid'>): void {
    if (input.name !== undefined) user.name = String(input.name);
    if (input.gender !== undefined) {
      if (input.gender !== 0 && input.gender !== 1) throw new OrgError('validation', 'gender', 'gender must be 0 (male) or 1 (female)');
      user.gender = input.gender;
    }
    for (const f of ['mobile', 'email', 'phone', 'position', 'password'] as const) if (input[f] !== undefined) user[f] = String(input[f]);
    if (input.face !== undefined) user.face = input.face;
    if (input.departments !== undefined) user.departmentIds = [...new Set(input.departments.map((p) => this.ensureDepartment(p).id))];
  }

  clear(): void {
    this.depts.clear();
    this.kids.clear();
    this.usersByKey.clear();
    this.rtxnos.clear();
    this.nextDeptId = 1;
    this.nextRtxno = FIRST_RTXNO;
  }
}
