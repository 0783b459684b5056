import { Direction } from "../gen/medsynth/v1/translator_pb.js";

/** The short names used by model manifests and the CLI. */
export type DirectionName = "mr2ct" | "ct2mr";

const BY_NAME: Record<DirectionName, Direction> = {
  mr2ct: Direction.MR_TO_CT,
  ct2mr: Direction.CT_TO_MR,
};

export function directionOf(value: Direction | DirectionName): Direction {
  if (typeof value === "number") return value;
  const direction = BY_NAME[value];
  if (direction === undefined) throw new Error(`unknown direction "${value}"; use mr2ct or ct2mr`);
  return direction;
}

export function directionName(direction: Direction): DirectionName {
  if (direction === Direction.MR_TO_CT) return "mr2ct";
  if (direction === Direction.CT_TO_MR) return "ct2mr";
  throw new Error(`direction ${direction} has no name`);
}

/** Modalities of the source (what is sent) and target (what comes back, and what a reference is). */
export function modalitiesOf(direction: DirectionName): { source: "mr" | "ct"; target: "mr" | "ct" } {
  return direction === "mr2ct" ? { source: "mr", target: "ct" } : { source: "ct", target: "mr" };
}
