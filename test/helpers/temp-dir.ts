import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before } from "node:test";

/** A fresh folder under the temp dir for the tests of the enclosing `describe`, removed after them. */
export function useTempDir(prefix: string): { readonly path: string } {
  let path: string | undefined;
  before(() => {
    path = mkdtempSync(join(tmpdir(), `medsynth-${prefix}-`));
  });
  after(() => {
    if (path) rmSync(path, { recursive: true, force: true });
  });
  return {
    get path() {
      if (path === undefined) throw new Error("the temp dir is made in the suite's before()");
      return path;
    },
  };
}
