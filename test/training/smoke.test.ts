// The Python training code, run by `npm run test:training` (not `npm test`):
// it needs training/requirements.txt installed, in .venv when there is one.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";

/** The project's virtual environment when it exists, else the python3 on PATH. */
const PYTHON = existsSync(".venv/bin/python") ? ".venv/bin/python" : "python3";

describe("training", () => {
  it("smoke test: 2 CycleGAN steps at 64x64, resume, ONNX export checked against PyTorch", () => {
    const run = spawnSync(PYTHON, ["-m", "training.smoke"], { encoding: "utf8", timeout: 300_000 });
    assert.equal(run.status, 0, `training.smoke failed (${PYTHON}):\n${run.stdout}\n${run.stderr}${run.error ? `\n${run.error.message}` : ""}`);
    assert.match(run.stdout, /training smoke test passed/);
  });
});
