import { Command, CommanderError } from 'commander';
import { describeError } from '../errors.ts';

/** Subcommand modules, one per area; each exports `register(program)`. */
const AREAS = ['./start.ts', './licence.ts', './plugin.ts', './admin.ts', './backup.ts', './call.ts'];

export async function buildProgram(): Promise<Command> {
  const program = new Command('qiao')
    .description('Qiao (桥) — on-premise enterprise IM that runs beside Tencent RTX')
    .showHelpAfterError()
    .exitOverride();
  for (const area of AREAS) {
    const mod = (await import(area).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ERR_MODULE_NOT_FOUND' && err.message.includes(area.slice(2))) return null;
      throw err;
    })) as { register(program: Command): void } | null;
    mod?.register(program);
  }
  return program;
}

/** Parses argv and runs; errors print as one line (`code: message`) and set a non-zero exit code. */
export async function runCli(argv: string[]): Promise<void> {
  const program = await buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode;
      return;
    }
    const e = describeError(err);
    const field = (e.data as { field?: string } | undefined)?.field;
    console.error(`qiao: ${e.code}: ${e.message}${field ? ` (field: ${field})` : ''}`);
    process.exitCode = 1;
  }
}
