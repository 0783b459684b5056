/** Sizes both ends of a Translate call agree on unless configured otherwise. */

const MiB = 1024 * 1024;

/**
 * Largest message either side sends or accepts, bytes: a 4096×4096 float32
 * slice (64 MiB) plus a float32 reference of the same size, plus 16 MiB for
 * the rest of the message (DICOM headers, envelope).
 */
export const MAX_MESSAGE_BYTES = 2 * 4096 * 4096 * 4 + 16 * MiB;

/**
 * Slices in flight per stream: the client sends at most this many ahead of
 * the answers it has taken, and the server stops reading a stream with this
 * many unanswered.
 */
export const DEFAULT_WINDOW = 16;
