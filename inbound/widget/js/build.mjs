// Build the loader and the chat UI into ../static (committed; tests rebuild and compare).
// Usage: node build.mjs [outdir]
import { build } from "esbuild";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const outdir = process.argv[2] || join(here, "..", "static");

for (const name of ["loader", "app"]) {
  await build({
    entryPoints: [join(here, "src", `${name}.js`)],
    outfile: join(outdir, `${name}.js`),
    bundle: true,
    minify: true,
    format: "iife",
    target: ["es2020"],
    legalComments: "none",
    charset: "utf8",
    logLevel: "warning",
  });
}
