import path from 'node:path';
import { readJsonFile, writeJsonFile } from './state-file.ts';

/**
 * RTX passwords the agent sends with SendIM.cgi, which insists on the sender's password. A Qiao user who
 * wants to appear in RTX as themselves ("RTX mobile") gives theirs once; it is checked with Login.php and
 * kept here, beside RTX, readable by the agent's account only — never in Qiao's database. Everyone else is
 * relayed through the relay account, their name in front of the text.
 */
export class CredentialStore {
  readonly #file: string;
  #map: Record<string, string>;

  constructor(stateDir: string) {
    this.#file = path.join(stateDir, 'rtx-credentials.json');
    this.#map = readJsonFile<Record<string, string>>(this.#file) ?? {};
  }

  get(uid: string): string | undefined {
    return this.#map[uid.toLowerCase()];
  }

  has(uid: string): boolean {
    return uid.toLowerCase() in this.#map;
  }

  set(uid: string, password: string | null): void {
    if (password === null) delete this.#map[uid.toLowerCase()];
    else this.#map[uid.toLowerCase()] = password;
    writeJsonFile(this.#file, this.#map);
  }
}
