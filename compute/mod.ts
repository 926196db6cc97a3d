/** The compute engine's public ops, one module per kernel family. */
export * from "./norm.ts";
export * from "./embedding.ts";
export * from "./rope.ts";
export * from "./activations.ts";
export * from "./softmax.ts";
export * from "./dropout.ts";
export * from "./attention.ts";
export * from "./loss.ts";
export * from "./optim.ts";
