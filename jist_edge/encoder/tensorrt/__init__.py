"""TensorRT engines: version policy, building, the verified engine cache, and running them.

Only ``runner`` imports TensorRT and pycuda, and only when called, so this package
imports on machines without them.
"""
