"""JIST's joint image and sequence training, host side (torch): fine-tune on your own drives.

Installed as ``jist_edge.training`` (setup.cfg package_dir), beside export/ whose model it
trains and whose checkpoint layout it writes, so ``jist-edge export --checkpoint`` takes
the result. The on-device runtime (jist_edge/) never imports it.
"""
