#!/usr/bin/env node
// The `qiao` command. Each area registers its subcommands from core/src/cli/<area>.ts.
import { runCli } from '../src/cli/index.ts';

await runCli(process.argv);
