import { qiaoError, type QiaoError } from '../../errors.ts';

/** One problem in an import file: where (row or line), which column or field, what is wrong. */
export interface ImportProblem {
  /** `row 5`, `line 12`, `users[3]`… in the file's own terms. */
  where: string;
  row?: number;
  line?: number;
  column?: string;
  field: string;
  message: string;
}

const SHOWN = 20;

/**
 * Collects every problem of a file so the admin can fix them all in one go, then refuses the whole import
 * (nothing is written). The message lists the first ones because the HTTP error body carries only the
 * message and one field; `data.problems` has them all.
 */
export class ProblemList {
  readonly items: ImportProblem[] = [];
  #limit: number;

  constructor(limit = 1000) {
    this.#limit = limit;
  }

  add(p: ImportProblem): void {
    if (this.items.length < this.#limit) this.items.push(p);
  }

  get full(): boolean {
    return this.items.length >= this.#limit;
  }

  throwIfAny(what: string): void {
    if (!this.items.length) return;
    throw importRefused(what, this.items);
  }
}

export function importRefused(what: string, problems: ImportProblem[]): QiaoError {
  const lines = problems.slice(0, SHOWN).map((p) => `${p.where}${p.column ? `, column ${p.column}` : ''}: ${p.message}`);
  const more = problems.length > SHOWN ? `; and ${problems.length - SHOWN} more` : '';
  return qiaoError('QIAO_VALIDATION', `${what} refused, nothing was imported: ${problems.length} problem(s): ${lines.join('; ')}${more}`, {
    field: problems[0]?.field ?? 'data',
    problems,
  });
}
