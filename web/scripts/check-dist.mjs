// Fails when the committed dist/ (embedded in the Go binary) is not what a
// fresh build of the sources gives. Fix: npm --prefix web run build.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "vite";
import { compareTrees } from "./compare.mjs";

const web = join(dirname(fileURLToPath(import.meta.url)), "..");
const tmp = mkdtempSync(join(tmpdir(), "eot-dist-"));
try {
  await build({ root: web, logLevel: "warn", build: { outDir: tmp, emptyOutDir: true } });
  const diffs = compareTrees(join(web, "dist"), tmp);
  if (diffs.length > 0) {
    console.error("web/dist does not match a fresh build; run: npm --prefix web run build");
    for (const d of diffs) console.error("  " + d);
    process.exit(1);
  }
  console.log("web/dist matches a fresh build");
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
