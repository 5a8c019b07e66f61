"""A blind camera (lens cap, darkness, a sensor that sends one colour) told from its first frame.

Such frames hold no place: localizing them gives confident nonsense (a black images folder was
``tracking`` at confidence 0.61). A frame is blind when its brightness barely varies once shrunk:
area averaging removes sensor noise but keeps every real scene's structure.
"""
import cv2
import numpy as np

BLIND_STD = 3.0  # grey levels (0-255) of spread in the shrunk frame, below which it shows nothing
_SHRUNK = (64, 48)


def blind_frame(image: np.ndarray, max_std: float = BLIND_STD) -> bool:
    """True for a uniform BGR (or grey) uint8 frame."""
    small = cv2.resize(image, _SHRUNK, interpolation=cv2.INTER_AREA)
    if small.ndim == 3:
        small = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
    return float(small.std()) < max_std
