import type { Context } from 'moleculer';

/**
 * The bytes of an im file, as the person `userId` may read it, gathered from `im.files.read` pages (im
 * answers at most its chunk limit per call). For handing people's files to apps: callbacks and exports.
 */
export async function readImFile(ctx: Pick<Context, 'call'>, userId: number, fileId: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (let offset = 0; ; ) {
    const r = await ctx.call<{ length: number; size: number; data: string }, object>('im.files.read', { userId, fileId, offset });
    parts.push(Buffer.from(r.data, 'base64'));
    offset += r.length;
    if (offset >= r.size || r.length === 0) break;
  }
  return Buffer.concat(parts);
}
