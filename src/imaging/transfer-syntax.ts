/**
 * The transfer syntaxes whose pixel data is native (not encapsulated): read
 * directly by dcmjs, and sized from the header alone before anything is
 * decoded. A module of its own so that the event loop's size check does not
 * load the codecs.
 */
export const TransferSyntax = {
  implicitLittle: "1.2.840.10008.1.2",
  explicitLittle: "1.2.840.10008.1.2.1",
  deflatedLittle: "1.2.840.10008.1.2.1.99",
  explicitBig: "1.2.840.10008.1.2.2",
} as const;
