import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

// Tests run from the repository root (npm test), as the other training tests assume.
const ROOT = process.cwd();
const VENV_PYTHON = join(ROOT, ".venv", "bin", "python");
const PYTHON = existsSync(VENV_PYTHON) ? VENV_PYTHON : "python3";
const SHARED = resolve(ROOT, "..", "shared");
const VHF = join(SHARED, "anatomy", "visible-human-female");
const REAL = join(SHARED, "real");

interface Measure {
  value: number | null;
  pass: boolean | null;
  range: string;
  note?: string;
}
type Stat = { mean: number | null; sd: number | null; n: number };

/** A measure is either computed (a finite number with a pass/fail boolean) or explained as not computable. */
function checkMeasures(where: string, measures: Record<string, Measure>, expected: string[]): number {
  assert.deepEqual(Object.keys(measures).sort(), [...expected].sort(), `${where}: measures`);
  let computed = 0;
  for (const [key, m] of Object.entries(measures)) {
    assert.equal(typeof m.range, "string", `${where}.${key}.range`);
    if (m.value === null) {
      assert.equal(m.pass, null, `${where}.${key}: no value, so no verdict`);
      assert.ok(typeof m.note === "string" && m.note.length > 0, `${where}.${key}: a missing value says why`);
    } else {
      assert.ok(Number.isFinite(m.value), `${where}.${key}.value = ${m.value}`);
      assert.equal(typeof m.pass, "boolean", `${where}.${key}.pass`);
      computed++;
    }
  }
  return computed;
}

function checkStat(where: string, stat: Stat, n: number): void {
  assert.equal(stat.n, n, `${where}.n`);
  assert.ok(Number.isFinite(stat.mean) && Number.isFinite(stat.sd), `${where} = ${JSON.stringify(stat)}`);
}

const CT_MEASURES = ["air_hu", "brain_hu", "csf_hu", "bone_fraction", "checkerboard"];
const MR_MEASURES = ["csf_brain_ratio", "gw_spread", "background_ratio", "outside_bright", "checkerboard"];

describe("training: real-scan report (training/realscan.py --quick)", () => {
  // The scans are not part of the repository (see training/realscan.py): without them there is nothing to check.
  const missing = !existsSync(join(VHF, "ct-head.nii.gz")) || !existsSync(join(VHF, "mr-t1"));
  const skip = missing && `needs ${VHF} (ct-head.nii.gz and mr-t1/), the Visible Human Female head of ../shared/anatomy`;
  it("writes report.json, README.md and the figure with finite numbers and pass/fail verdicts", { skip }, (t) => {
    const probe = spawnSync(PYTHON, ["-c", "import SimpleITK, PIL, scipy, numpy, torch"], { encoding: "utf8", timeout: 120_000 });
    if (probe.status !== 0) {
      assert.fail(`${PYTHON} cannot import the training stack (${(probe.stderr || String(probe.error)).trim().split("\n").pop()}): ` +
        "python3 -m venv .venv && .venv/bin/pip install -r training/requirements.txt");
    }
    const withReal = existsSync(REAL);
    if (!withReal) t.diagnostic(`${REAL} is absent: checking the paired Visible Human part (a) only`);
    const out = mkdtempSync(join(tmpdir(), "medsynth-realscan-test-"));
    try {
      const run = spawnSync(
        PYTHON,
        ["-m", "training.realscan", "--quick", "--out", out, "--look", join(out, "look.png"), "--node", process.execPath],
        { cwd: ROOT, encoding: "utf8", timeout: 600_000 },
      );
      assert.equal(run.status, 0, `${PYTHON} -m training.realscan --quick failed:\n${run.stdout}\n${run.stderr}`);
      const report = JSON.parse(readFileSync(join(out, "report.json"), "utf8"));
      assert.equal(report.schema, 1);
      assert.equal(report.quick, true);
      assert.match(report.date, /^\d{4}-\d{2}-\d{2}$/);
      assert.ok(Object.keys(report.models).length >= 2, "model names and versions from models/*/model.json");
      for (const [name, model] of Object.entries(report.models as Record<string, { version: string; direction: string }>)) {
        assert.ok(model.version && model.direction, `${name}: version and direction`);
      }

      // (a) the paired Visible Human check
      const paired = report.paired;
      const reg = paired.registration;
      assert.ok(Number.isFinite(reg.mattes_mi_initial) && Number.isFinite(reg.mattes_mi_final));
      assert.ok(reg.mattes_mi_final < reg.mattes_mi_initial, "the affine improves the mutual information");
      assert.equal(reg.mr_voxel_mm_estimated.length, 3);
      assert.equal(paired.slices_kept.length, 3);
      assert.equal(paired.per_slice.length, 3);
      for (const direction of ["mr2ct", "ct2mr"]) {
        const s = paired.summary[direction];
        assert.equal(s.slices, 3);
        for (const k of ["psnr", "ssim", "uqi", "vif", "mae"]) checkStat(`${direction}.service.${k}`, s.service[k], 3);
        const benchmark = direction === "mr2ct" ? ["psnr", "ssim", "mae_hu_head"] : ["psnr", "ssim"];
        for (const part of ["benchmark", "floor_benchmark"]) {
          assert.deepEqual(Object.keys(s[part]).sort(), [...benchmark].sort(), `${direction}.${part}`);
          for (const k of benchmark) checkStat(`${direction}.${part}.${k}`, s[part][k], 3);
        }
        for (const k of ["psnr", "ssim"]) checkStat(`${direction}.floor_service_convention.${k}`, s.floor_service_convention[k], 3);
      }
      checkMeasures("paired.unpaired_measures.mr2ct", paired.unpaired_measures.mr2ct, CT_MEASURES);
      checkMeasures("paired.unpaired_measures.ct2mr", paired.unpaired_measures.ct2mr, MR_MEASURES);

      // (b) plausibility on ../shared/real, when it is there
      const plausibility = report.plausibility;
      if (withReal) {
        assert.equal(plausibility.scans.length, 2, "--quick: one CT and one MR scan");
        assert.deepEqual(plausibility.scans.map((s: { direction: string }) => s.direction).sort(), ["ct2mr", "mr2ct"]);
        for (const scan of plausibility.scans) {
          const computed = checkMeasures(scan.scan, scan.measures, scan.direction === "mr2ct" ? CT_MEASURES : MR_MEASURES);
          assert.ok(computed > 0, `${scan.scan}: no measure computed`);
          assert.equal(typeof scan.passed, "boolean", `${scan.scan}.passed`);
          assert.ok(scan.per_slice.length >= 1);
        }
      } else {
        assert.equal(typeof plausibility.skipped, "string");
        assert.deepEqual(plausibility.scans, []);
      }

      const readme = readFileSync(join(out, "README.md"), "utf8");
      assert.match(readme, /## \(a\) Paired check/);
      assert.match(readme, /## \(b\) Plausibility/);
      const png = readFileSync(join(out, report.figure));
      assert.deepEqual([...png.subarray(1, 4)], [0x50, 0x4e, 0x47], "the figure is a PNG");
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
