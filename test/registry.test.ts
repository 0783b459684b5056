import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ManifestError, loadModelSpecs } from "../src/inference/registry.js";
import { editedModelsDir } from "./helpers/models.js";
import { startTestServer } from "./helpers/service.js";


describe("model registry", () => {
  it("loads the fixture models and resolves one default per direction", async () => {
    const specs = await loadModelSpecs("test/fixtures/models");
    assert.deepEqual(specs.map((s) => [s.name, s.isDefault]).sort(), [["tiny-ct2mr", true], ["tiny-mr2ct", true], ["tiny-mr2ct-rgb", false]]);
    const rgb = specs.find((s) => s.name === "tiny-mr2ct-rgb")!;
    assert.equal(rgb.input.channels, 3);
    assert.deepEqual(specs.find((s) => s.name === "tiny-mr2ct")!.intensity.output, { window: "fixed", low: -1024, high: 3071 });
  });

  const bad: [string, (m: Record<string, any>) => unknown, RegExp][] = [
    ["invalid JSON", () => "{ not json", /is not valid JSON/],
    ["unknown direction", (m) => void (m.direction = "pet2ct"), /direction must be "mr2ct" or "ct2mr"/],
    ["missing ONNX file", (m) => void (m.onnx = "nope.onnx"), /onnx points to .*nope\.onnx, which is not a file/],
    ["zero input width", (m) => void (m.input.width = 0), /input\.width must be a positive integer/],
    ["2 channels", (m) => void (m.input.channels = 2), /input\.channels must be 1 or 3/],
    ["inverted window", (m) => void (m.intensity.output = { window: "fixed", low: 10, high: -10 }), /intensity\.output needs high > low/],
    ["percentile above 100", (m) => void (m.intensity.input = { window: "percentile", low: 1, high: 101 }), /percentiles must lie in \[0, 100\]/],
  ];
  for (const [what, edit, message] of bad) {
    it(`refuses a manifest with ${what}, naming the file and field`, async () => {
      const dir = editedModelsDir(edit);
      try {
        await assert.rejects(loadModelSpecs(dir), (error: Error) => {
          assert.ok(error instanceof ManifestError);
          assert.ok(error.message.includes(join(dir, "m", "model.json")), error.message);
          assert.match(error.message, message);
          return true;
        });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  it("refuses two defaults for one direction, and a folder without models", async () => {
    const dir = editedModelsDir(() => undefined);
    cpSync(join(dir, "m"), join(dir, "m2"), { recursive: true });
    const second = join(dir, "m2", "model.json");
    writeFileSync(second, JSON.stringify({ ...JSON.parse(readFileSync(second, "utf8")), name: "other" }));
    const empty = mkdtempSync(join(tmpdir(), "medsynth-empty-"));
    try {
      await assert.rejects(loadModelSpecs(dir), /are all "default" for mr2ct; flag one/);
      await assert.rejects(loadModelSpecs(empty), /no model\.json found under .*; set --models-dir/);
      // A missing folder (the relative default, run from elsewhere) points at the embedded models, which load.
      const error = await loadModelSpecs(join(empty, "models")).then(() => assert.fail("no models there"), (e: Error) => e);
      const embedded = /the embedded default models are in (\S+)\)$/.exec(error.message)?.[1];
      assert.ok(embedded, error.message);
      assert.ok((await loadModelSpecs(embedded)).some((spec) => spec.name === "mr2ct-heads"));
    } finally {
      rmSync(dir, { recursive: true, force: true });
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it("keeps the server from starting on a bad manifest", async () => {
    const dir = editedModelsDir((m) => void (m.direction = "sideways"));
    try {
      await assert.rejects(startTestServer({ modelsDir: dir }), ManifestError);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
