import { randomBytes } from "node:crypto";

/**
 * The UUID-derived root of PS3.5 §B.2: UIDs under it need no registered
 * organisation root, so it is the default until a site configures its own.
 */
export const DEFAULT_UID_ROOT = "2.25";

const MAX_UID_LENGTH = 64;
/** At least this many random digits (≈ 66 bits) follow the root. */
const MIN_SUFFIX_DIGITS = 20;
/** 39 digits hold any 128-bit value, as the 2.25 root requires. */
const MAX_SUFFIX_DIGITS = 39;
const UUID_LIMIT = 2n ** 128n;
const UID_SYNTAX = /^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$/;

/** Throws, saying what to change, unless `root` can prefix generated UIDs. */
export function checkUidRoot(root: string): void {
  if (!UID_SYNTAX.test(root)) {
    throw new Error(
      `UID root "${root}" is not a valid UID: use dot-separated numbers without leading zeros, e.g. "2.25" or your organisation's root`,
    );
  }
  if (root.length > MAX_UID_LENGTH - 1 - MIN_SUFFIX_DIGITS) {
    throw new Error(
      `UID root "${root}" is ${root.length} characters; at most ${MAX_UID_LENGTH - 1 - MIN_SUFFIX_DIGITS} leave room for ${MIN_SUFFIX_DIGITS} unique digits within the 64-character UID limit`,
    );
  }
}

/**
 * A UID under `root` whose last component is the integer value of `bytes`
 * (reduced to fit 64 characters, and below 2^128 as a UUID under 2.25 must
 * be): random bytes make a new UID, a keyed hash makes a stable replacement
 * for an existing one.
 */
export function uidFromBytes(root: string, bytes: Uint8Array): string {
  checkUidRoot(root);
  const digits = Math.min(MAX_SUFFIX_DIGITS, MAX_UID_LENGTH - root.length - 1);
  const limit = 10n ** BigInt(digits);
  const value = BigInt(`0x${Buffer.from(bytes).toString("hex")}`) % (limit < UUID_LIMIT ? limit : UUID_LIMIT);
  return `${root}.${value}`;
}

/** A new, globally unique UID under `root` (default "2.25"). */
export function newUid(root: string = DEFAULT_UID_ROOT): string {
  return uidFromBytes(root, randomBytes(16));
}

