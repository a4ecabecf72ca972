/** A bare WebSocket for protocol tests: collects frames, waits for the ones asked for, reports the close. */
export class TestSocket {
  readonly ws: WebSocket;
  readonly frames: any[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  #waiters: Array<() => void> = [];

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.onmessage = (e) => {
      this.frames.push(JSON.parse(String(e.data)));
      for (const w of this.#waiters.splice(0)) w();
    };
    this.closed = new Promise((resolve) => {
      ws.addEventListener('close', (e) => {
        resolve({ code: e.code, reason: e.reason });
        for (const w of this.#waiters.splice(0)) w();
      });
    });
  }

  /** Opens `url` (`ws://…/v1/ws`); with `token`, authenticates with the first frame and waits for `ready`. */
  static async open(url: string, token?: string): Promise<TestSocket> {
    const ws = new WebSocket(url);
    const s = new TestSocket(ws);
    await new Promise<void>((resolve, reject) => {
      ws.addEventListener('open', () => resolve(), { once: true });
      ws.addEventListener('error', () => reject(new Error(`could not open ${url}`)), { once: true });
    });
    if (token) {
      s.send({ type: 'auth', token });
      await s.take((f) => f.type === 'ready');
    }
    return s;
  }

  send(frame: object | string | Uint8Array): void {
    this.ws.send(typeof frame === 'string' || frame instanceof Uint8Array ? frame : JSON.stringify(frame));
  }

  /** Removes and answers the first frame matching `match`, waiting for it if need be. */
  async take(match: (f: any) => boolean = () => true, ms = 5000): Promise<any> {
    const deadline = Date.now() + ms;
    for (;;) {
      const i = this.frames.findIndex(match);
      if (i >= 0) return this.frames.splice(i, 1)[0];
      if (this.ws.readyState === WebSocket.CLOSED) throw new Error(`socket closed before the frame came; frames: ${JSON.stringify(this.frames)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no such frame within ${ms} ms; frames: ${JSON.stringify(this.frames)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiters.push(() => (clearTimeout(t), resolve()));
      });
    }
  }

  close(): void {
    this.ws.close();
  }
}
