/** The department tree in memory: 5,000 departments are small, and every view and move check walks it. */
export interface TreeNode {
  id: number;
  parentId: number | null;
}

export class DepartmentTree<N extends TreeNode = TreeNode> {
  readonly byId = new Map<number, N>();
  readonly children = new Map<number | null, N[]>();

  constructor(nodes: Iterable<N>) {
    for (const n of nodes) this.byId.set(n.id, n);
    for (const n of this.byId.values()) {
      // A parent that does not exist would orphan the node; treat it as top-level so it stays reachable.
      const parent = n.parentId !== null && this.byId.has(n.parentId) ? n.parentId : null;
      const list = this.children.get(parent) ?? [];
      list.push(n);
      this.children.set(parent, list);
    }
  }

  /** `id` and everything below it. */
  subtree(id: number): number[] {
    const out: number[] = [];
    const stack = [id];
    const seen = new Set<number>();
    while (stack.length) {
      const cur = stack.pop()!;
      if (seen.has(cur) || !this.byId.has(cur)) continue;
      seen.add(cur);
      out.push(cur);
      for (const c of this.children.get(cur) ?? []) stack.push(c.id);
    }
    return out;
  }

  /** The union of the subtrees of `ids`. */
  expand(ids: Iterable<number>): Set<number> {
    const out = new Set<number>();
    for (const id of ids) if (!out.has(id)) for (const d of this.subtree(id)) out.add(d);
    return out;
  }

  /** Parent first up to the top-level department, excluding `id` itself. */
  ancestors(id: number): number[] {
    const out: number[] = [];
    const seen = new Set<number>([id]);
    let cur = this.byId.get(id)?.parentId ?? null;
    while (cur !== null && !seen.has(cur) && this.byId.has(cur)) {
      out.push(cur);
      seen.add(cur);
      cur = this.byId.get(cur)!.parentId;
    }
    return out;
  }

  /** Depth-first order, parents before children: the order to create them in. */
  topDown(): N[] {
    // Iterative: a pathological tree thousands of levels deep must not overflow the stack.
    const out: N[] = [];
    const stack: N[] = [...(this.children.get(null) ?? [])].reverse();
    while (stack.length) {
      const n = stack.pop()!;
      out.push(n);
      const kids = this.children.get(n.id) ?? [];
      for (let i = kids.length - 1; i >= 0; i--) stack.push(kids[i]);
    }
    return out;
  }
}
