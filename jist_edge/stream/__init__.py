"""Frames in, results out: source URIs, frame sources, the capture thread and its ring, sinks."""
