/**
 * Checkpoints of Hugging Face model folders: safetensors (single and sharded) and torch zip
 * `pytorch_model.bin` readers that stream one tensor at a time, a safetensors writer, bit-exact float
 * conversions and typed config.json handling. Imports nothing from npm, so it runs from the source tree alone.
 */
export {
  allocData,
  bf16ToF32,
  convertFloat,
  type DType,
  DTYPE_BYTES,
  type DTypeArrays,
  f16BitsToNumber,
  f16ToF32,
  f32BitsToBf16Bits,
  f32BitsToF16Bits,
  f32ToBf16,
  f32ToF16,
  type HostData,
  type HostTensor,
  isFloatDType,
  numberToF16Bits,
  numel,
} from "./dtypes.ts";
export {
  MAX_HEADER_BYTES,
  parseSafetensorsHeader,
  type ReadAs,
  type ReadOptions,
  SafetensorsFile,
  type ShardedWriteOptions,
  storedBytes,
  type TensorInfo,
  type TensorToWrite,
  writeSafetensors,
  writeShardedSafetensors,
} from "./safetensors.ts";
export { TorchBinFile } from "./torch_bin.ts";
export { type TorchStorageRef, type TorchTensorRef, unpickleStateDict } from "./pickle.ts";
export { Checkpoint, type CheckpointFormat, openCheckpoint } from "./checkpoint.ts";
export {
  type ConfigDType,
  type GenerationDefaults,
  type Gpt2Config,
  loadModelConfig,
  type ModelConfig,
  modelConfigJson,
  parseModelConfig,
  type Qwen2Config,
  writeGenerationConfig,
  writeModelConfig,
} from "./config.ts";
