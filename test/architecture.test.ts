// The import graph runs one way: contract ← imaging, batcher, inference,
// quality, workers, telemetry ← server; contract ← client; client + server ←
// cli; volume (pure NIfTI voxels, axial layout and PNG conventions, importing
// nothing of the project) ← imaging, cli and the viewer page, so the browser
// cuts a volume and reads a PNG as the CLI and the service do. Import specifiers are read with the TypeScript parser
// (static, re-exports and dynamic import()), so a wrong-way import fails here.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { builtinModules } from "node:module";
import { dirname, join, relative, resolve } from "node:path";
import ts from "typescript";

/** Source files under `dir` (the generated code in src/gen aside). */
function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts"))
    .map((entry) => join(entry.parentPath, entry.name))
    .filter((file) => !file.startsWith(join("src", "gen")));
}

const specifiers = (file: string): string[] =>
  ts.preProcessFile(readFileSync(file, "utf8"), true, true).importedFiles.map((imported) => imported.fileName);

/** The top folder under src/ a file belongs to ("server", "cli", ...), or "" for src/index.ts and src/entry-point.ts. */
const area = (file: string): string => {
  const parts = relative("src", file).split("/");
  return parts.length > 1 ? parts[0] : "";
};

/** Every import from one src/ file into another: [importing file, area imported]. */
function projectImports(): [file: string, target: string][] {
  return sources("src").flatMap((file) =>
    specifiers(file)
      .filter((specifier) => specifier.startsWith("."))
      .map((specifier): [string, string] => [file, area(relative(process.cwd(), resolve(dirname(file), specifier)))]),
  );
}

/** What each area may import besides itself ("" is src/index.ts and src/entry-point.ts). */
const MAY_IMPORT: Record<string, readonly string[]> = {
  contract: ["gen"],
  client: ["contract", "gen"],
  imaging: ["contract", "gen", "volume"],
  batcher: [],
  workers: ["imaging"],
  inference: ["contract", "gen", "imaging", "workers"],
  quality: ["imaging", "workers"],
  telemetry: [],
  dicomweb: [],
  // Pure and browser-safe: the CLI and the viewer page read and cut a volume the same way.
  volume: [],
  // The page's code, bundled for the browser by esbuild at build time.
  viewer: ["gen", "volume"],
  server: ["contract", "gen", "imaging", "batcher", "inference", "quality", "workers", "telemetry", "dicomweb", ""],
  cli: ["client", "server", "contract", "gen", "imaging", "inference", "quality", "dicomweb", "volume", ""],
  "": ["client", "contract", "gen"],
};

describe("architecture", () => {
  it("src/server imports neither src/client nor src/cli; src/client imports neither src/server nor src/cli", () => {
    const imports = projectImports();
    const wrong = (from: string, to: readonly string[]) =>
      imports.filter(([file, target]) => area(file) === from && to.includes(target)).map(([file, target]) => `${file} -> src/${target}`);
    assert.deepEqual(wrong("server", ["client", "cli"]), []);
    assert.deepEqual(wrong("client", ["server", "cli"]), []);
  });

  it("src/contract imports nothing of the project but the generated code", () => {
    const above = projectImports().filter(([file, target]) => area(file) === "contract" && !["contract", "gen"].includes(target));
    assert.deepEqual(above, []);
  });

  it("every import between src/ folders runs the one way", () => {
    const violations = projectImports()
      .filter(([file, target]) => target !== area(file) && !(MAY_IMPORT[area(file)] ?? []).includes(target))
      .map(([file, target]) => `${file} -> src/${target || "(root)"}`);
    assert.deepEqual(violations, []);
    assert.deepEqual(Object.keys(MAY_IMPORT).filter(Boolean).sort(), readdirSync("src", { withFileTypes: true }).filter((e) => e.isDirectory() && e.name !== "gen").map((e) => e.name).sort(), "every folder has a rule");
  });

  it("every package the code imports is declared: src/ in dependencies (the viewer, bundled at build, in either), tests and benches in either", () => {
    const pkg = JSON.parse(readFileSync("package.json", "utf8")) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };
    const packageOf = (specifier: string) => specifier.split("/").slice(0, specifier.startsWith("@") ? 2 : 1).join("/");
    const undeclared = (files: string[], declared: Record<string, string>) =>
      files.flatMap((file) =>
        specifiers(file)
          .filter((specifier) => !specifier.startsWith(".") && !specifier.startsWith("node:") && !builtinModules.includes(specifier))
          .filter((specifier) => !(packageOf(specifier) in declared))
          .map((specifier) => `${file}: ${specifier}`),
      );
    const viewer = (file: string) => file.startsWith(join("src", "viewer"));
    assert.deepEqual(undeclared(sources("src").filter((file) => !viewer(file)), pkg.dependencies), []);
    assert.deepEqual(undeclared([...sources("src").filter(viewer), ...sources("test"), ...sources("bench")], { ...pkg.dependencies, ...pkg.devDependencies }), []);
  });
});
