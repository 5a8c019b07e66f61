"""Frames in: source URIs, frame sources, the capture thread and its ring."""
