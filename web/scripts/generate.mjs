// Writes src/api.gen.ts from ../openapi/openapi.yaml (see appspec.mjs).
import { writeFileSync } from "node:fs";
import { generate, outPath } from "./appspec.mjs";

writeFileSync(outPath, await generate());
console.log(`wrote ${outPath}`);
