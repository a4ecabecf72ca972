/**
 * For followers of the event log woken by broadcasts: at most one run at a time, and a wake-up that comes
 * while one runs makes it go round once more instead of starting a second (which would read the same
 * events from the same cursor). Errors are reported, not thrown: the next wake-up or poll retries.
 */
export function singleFlight(run: () => Promise<number>, onError: (err: Error) => void): (() => Promise<number>) & { running(): Promise<number> | null } {
  let running: Promise<number> | null = null;
  let again = false;
  const go = () => {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      let n = 0;
      try {
        do {
          again = false;
          n += await run();
        } while (again);
      } catch (err) {
        onError(err as Error);
      } finally {
        running = null;
      }
      return n;
    })();
    return running;
  };
  // For a service stopping: wait for a run under way without starting one.
  return Object.assign(go, { running: () => running });
}
