// Fails when src/api.gen.ts is not what openapi-typescript makes of the
// app-facing part of the committed spec. Fix: npm --prefix web run generate.
import { readFileSync } from "node:fs";
import { generate, outPath } from "./appspec.mjs";
import { firstDifference } from "./compare.mjs";

const committed = readFileSync(outPath, "utf8");
const fresh = await generate();
if (committed !== fresh) {
  console.error("web/src/api.gen.ts does not match openapi/openapi.yaml; run: npm --prefix web run generate");
  console.error(firstDifference(committed, fresh));
  process.exit(1);
}
console.log("web/src/api.gen.ts matches openapi/openapi.yaml");
