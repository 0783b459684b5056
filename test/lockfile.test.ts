import { it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

// This registry serves only some platforms' optional binaries (e.g. buf's), so
// `npm install` here can drop the others from the lock, and `npm ci` on a clean
// clone then refuses the lock as out of sync.
it("package-lock lists every optional dependency of every locked package", () => {
  const lock = JSON.parse(readFileSync("package-lock.json", "utf8")) as {
    packages: Record<string, { optionalDependencies?: Record<string, string> }>;
  };
  const missing: string[] = [];
  for (const [path, entry] of Object.entries(lock.packages)) {
    for (const name of Object.keys(entry.optionalDependencies ?? {})) {
      const nested = `${path}/node_modules/${name}`;
      if (!lock.packages[nested] && !lock.packages[`node_modules/${name}`]) missing.push(`${name} (of ${path || "the root"})`);
    }
  }
  assert.deepEqual(missing, [], "add the missing entries with their os/cpu so npm ci accepts the lock");
});
