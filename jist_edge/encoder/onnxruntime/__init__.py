"""The encoder on ONNX Runtime: FP32/FP16 sessions and the CPU INT8 model."""
