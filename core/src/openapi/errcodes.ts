/**
 * Every status code the Youdu-compatible open API answers with, named as Youdu's own documentation names
 * them (docs/api/a01_00009.md, 全局状态码), so a grep for `ERRCODE_INVALID_ENCRYPT` finds both the doc and
 * every place that answers it. Responses are always HTTP 200 with `{ errcode, errmsg }`: the vendor SDKs
 * treat any other HTTP status as a transport failure and never read the code.
 */
export const ERRCODE = {
  ERRCODE_OK: 0,
  ERRCODE_INTERNALERR: -1,
  ERRCODE_FALSE: 2,
  ERRCODE_NORIGHT: 3,
  ERRCODE_ILLEGAL_ACCESS: 4,
  ERRCODE_INVALID_REQUEST_BASIC: 5,

  // request validation (envelope, token)
  ERRCODE_MISS_ACCESSTOKEN: 100000,
  ERRCODE_ACCESSTOKEN_NOTEXIST: 100001,
  ERRCODE_ACCESSTOKEN_EXPIRED: 100002,
  ERRCODE_INVALID_REQUEST: 100003,
  ERRCODE_INVALID_FORMAT_JSON: 100004,
  ERRCODE_INVALID_APPID: 100005,
  ERRCODE_INVALID_ENCRYPT: 100006,
  ERRCODE_MISS_BUIN: 100008,
  ERRCODE_INVALID_BUIN: 100009,
  ERRCODE_MISS_APPID: 100010,
  ERRCODE_MISS_ENCRYPT: 100011,
  ERRCODE_INVALID_FORMAT_BUIN: 100012,
  ERRCODE_INVALID_FORMAT_APPID: 100013,
  ERRCODE_INVALID_FORMAT_ENCRYPT: 100014,

  // messages and media
  ERRCODE_TOUSER_OVERLIMIT: 200001,
  ERRCODE_INVALID_TOUSER: 200007,
  ERRCODE_INVALID_MULTIPART: 200008,
  ERRCODE_INVALID_FILETYPE: 200009,
  ERRCODE_FILE_NOTEXIST: 200010,

  // org: accounts, departments, users
  ERRCODE_ACCOUNT_NOTEXIST: 300001,
  ERRCODE_ACCOUNT_AUTHFAILED: 300002,
  ERRCODE_DEPT_ROOT_FORBIDDEN: 300101,
  ERRCODE_INVALID_FORMAT_DEPTID: 300102,
  ERRCODE_INVALID_FORMAT_DEPTNAME: 300103,
  ERRCODE_INVALID_FORMAT_DEPTSORTID: 300104,
  ERRCODE_INVALID_FORMAT_DEPTPARENTID: 300105,
  ERRCODE_INVALID_DEPTID: 300106,
  ERRCODE_INVALID_DEPTNAME: 300107,
  ERRCODE_INVALID_DEPTPARENTID: 300108,
  ERRCODE_MISS_DEPTID: 300109,
  ERRCODE_MISS_DEPTNAME: 300110,
  ERRCODE_MISS_DEPTPARENTID: 300111,
  ERRCODE_EXIST_DEPT: 300112,
  ERRCODE_EXIST_DEPT_SORTID: 300113,
  ERRCODE_DEPT_NOT_EXIST: 300114,
  ERRCODE_DEPT_HAS_SUBDEPT: 300115,
  ERRCODE_DEPT_HAS_USERS: 300116,
  ERRCODE_OVERLIMIT_DEPTNAME: 300117,
  ERRCODE_NOTEXIST_ORG: 300118,
  ERRCODE_INVALID_DEPTALIAS: 300119,
  ERRCODE_MISS_USERID: 300201,
  ERRCODE_MISS_USERNAME: 300202,
  ERRCODE_MISS_USERDEPT: 300203,
  ERRCODE_MISS_USERLIST: 300204,
  ERRCODE_INVALID_FORMAT_USERID: 300205,
  ERRCODE_INVALID_FORMAT_USERNAME: 300206,
  ERRCODE_INVALID_FORMAT_USERGENDER: 300207,
  ERRCODE_INVALID_FORMAT_USEREMAIL: 300208,
  ERRCODE_INVALID_FORMAT_USERPHONE: 300209,
  ERRCODE_INVALID_FORMAT_USERMOBILE: 300210,
  ERRCODE_INVALID_FORMAT_USERDEPT: 300211,
  ERRCODE_INVALID_FORMAT_USERLIST: 300212,
  ERRCODE_INVALID_FORMAT_PASSWORD: 300213,
  ERRCODE_INVALID_FORMAT_AUTHTYPE: 300214,
  ERRCODE_INVALID_FORMAT_POSITION: 300215,
  ERRCODE_INVALID_FORMAT_WEIGHT: 300216,
  ERRCODE_INVALID_FORMAT_SORTID: 300217,
  ERRCODE_OVERLIMIT_USERID: 300218,
  ERRCODE_OVERLIMIT_USERNAME: 300219,
  ERRCODE_OVERLIMIT_USEREMAIL: 300220,
  ERRCODE_OVERLIMIT_USERDEPT: 300221,
  ERRCODE_OVERLIMIT_USERLIST: 300222,
  ERRCODE_INVALID_USERID: 300223,
  ERRCODE_USER_EXIST: 300224,
  ERRCODE_USER_NOTEXIST: 300225,
  ERRCODE_EMPTY_DEPT: 300226,
  ERRCODE_USER_NOTIN_DEPT: 300227,
  ERRCODE_INVALID_FORMAT_DEPTLIST: 300301,
  ERRCODE_INVALID_FORMAT_DEPT: 300302,
  ERRCODE_INVALID_FORMAT_USER: 300303,
  ERRCODE_INVALID_FORMAT_POSITIONS: 300304,
  ERRCODE_MISS_GENDER: 300306,
  ERRCODE_NOTEXIST_DEPT: 300307,
  ERRCODE_NOTEXIST_PARENTDEPT: 300308,
  ERRCODE_REPEAT_USERID: 300311,
  // Youdu's table gives ERRCODE_NOTEXIST_JOBID the same number as ERRCODE_REPEAT_USERID; kept as documented.
  ERRCODE_NOTEXIST_JOBID: 300311,
  ERRCODE_EXIST_ENT_REPLACEALL: 300312,

  // groups
  ERRCODE_MISS_GROUPNAME: 500001,
  ERRCODE_INVALID_FORMAT_GROUPNAME: 500002,
  ERRCODE_OVERLIMIT_GROUPNAME: 500003,
  ERRCODE_GROUP_NOTEXIST: 500004,
  ERRCODE_GROUP_ACCESS_ERROR: 500005,
  ERRCODE_MISS_GROUPID: 500006,
  ERRCODE_INVALID_GROUP_USERID: 500007,
  ERRCODE_INVALID_FORMAT_GROUPID: 500008,
} as const;

export type ErrcodeName = keyof typeof ERRCODE;

/** What a cgi handler throws to answer with a Youdu status code; `errmsg` names the field at fault. */
export class CgiError extends Error {
  readonly errcode: number;
  readonly codeName: ErrcodeName;
  constructor(name: ErrcodeName, errmsg: string) {
    super(errmsg);
    this.name = 'CgiError';
    this.codeName = name;
    this.errcode = ERRCODE[name];
  }
}

export function cgiError(name: ErrcodeName, errmsg: string): CgiError {
  return new CgiError(name, errmsg);
}

/**
 * A Qiao error from an action (org, im, auth) translated to the nearest Youdu code. `fallback` is the code
 * the endpoint documents for "the thing you named is wrong" (e.g. ERRCODE_DEPT_NOT_EXIST for dept calls).
 */
export function fromQiaoError(err: unknown, hints: { notFound?: ErrcodeName; conflict?: ErrcodeName; invalid?: ErrcodeName } = {}): CgiError {
  if (err instanceof CgiError) return err;
  const e = err as { type?: string; message?: string; data?: unknown };
  const message = e?.message ?? String(err);
  switch (e?.type) {
    case 'QIAO_NOT_FOUND':
    case 'QIAO_CONVERSATION_NOT_FOUND':
      return cgiError(hints.notFound ?? 'ERRCODE_INVALID_REQUEST', message);
    case 'QIAO_CONFLICT':
      return cgiError(hints.conflict ?? 'ERRCODE_INVALID_REQUEST', message);
    case 'QIAO_VALIDATION':
    case 'VALIDATION_ERROR':
    case 'QIAO_BAD_REQUEST':
      return cgiError(hints.invalid ?? 'ERRCODE_INVALID_REQUEST', validationMessage(e));
    case 'QIAO_FORBIDDEN':
    case 'QIAO_NOT_A_MEMBER':
      return cgiError('ERRCODE_NORIGHT', message);
    case 'QIAO_PAYLOAD_TOO_LARGE':
    case 'QIAO_QUOTA_EXCEEDED':
      return cgiError('ERRCODE_INVALID_REQUEST', message);
    default:
      return cgiError('ERRCODE_INTERNALERR', message);
  }
}

function validationMessage(e: { message?: string; data?: unknown }): string {
  if (Array.isArray(e.data) && e.data.length) {
    const first = e.data[0] as { message?: string };
    if (first?.message) return first.message;
  }
  return e.message ?? 'invalid request';
}
