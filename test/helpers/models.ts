import { cpSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A models folder (under the temp dir) holding the real tiny MR→CT model as `m`, its manifest changed by `edit`. */
export function editedModelsDir(edit: (manifest: Record<string, any>) => unknown): string {
  const dir = mkdtempSync(join(tmpdir(), "medsynth-models-"));
  cpSync("test/fixtures/models/tiny-mr2ct", join(dir, "m"), { recursive: true });
  const path = join(dir, "m", "model.json");
  const manifest = JSON.parse(readFileSync(path, "utf8"));
  const edited = edit(manifest) ?? manifest;
  writeFileSync(path, typeof edited === "string" ? edited : JSON.stringify(edited));
  return dir;
}
