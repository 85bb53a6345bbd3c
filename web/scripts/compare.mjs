// Byte-for-byte comparison of two files or two directory trees.
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";

function walk(dir, base = dir, out = []) {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, base, out);
    else out.push(relative(base, p));
  }
  return out;
}

/** Returns the differences between trees a (committed) and b (fresh), as lines. */
export function compareTrees(a, b) {
  const fa = walk(a);
  const fb = walk(b);
  const diffs = [];
  for (const f of fa) if (!fb.includes(f)) diffs.push(`only in the committed tree: ${f}`);
  for (const f of fb) if (!fa.includes(f)) diffs.push(`missing from the committed tree: ${f}`);
  for (const f of fa) {
    if (fb.includes(f) && !readFileSync(join(a, f)).equals(readFileSync(join(b, f)))) {
      diffs.push(`differs from a fresh build: ${f}`);
    }
  }
  return diffs;
}

/** The first line where two texts differ, for a readable failure. */
export function firstDifference(a, b) {
  const la = a.split("\n");
  const lb = b.split("\n");
  for (let i = 0; i < Math.max(la.length, lb.length); i++) {
    if (la[i] !== lb[i]) {
      return `line ${i + 1}:\n  committed: ${la[i] ?? "(end of file)"}\n  fresh:     ${lb[i] ?? "(end of file)"}`;
    }
  }
  return "";
}
