"""jist-edge: the on-device runtime for JIST sequential visual place recognition.

This package must import on stock JetPack 4.6 (Python 3.6) and never imports torch;
the host-side export code lives in ``jist_edge.export`` and is only imported lazily.
"""

__version__ = "0.1.0"
