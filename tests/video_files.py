"""Small real test media written by OpenCV: MJPG in .avi (exact read-back), image folders."""
import os

import cv2
import numpy as np


def frame_image(i, width=64, height=48):
    """A frame that differs from its neighbours: brightness steps with i, plus its number drawn in."""
    img = np.full((height, width, 3), (20 + 9 * i) % 200, dtype=np.uint8)
    img[:, :, 1] = (i * 37) % 256
    cv2.putText(img, str(i), (4, height - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 2)
    return img


def write_mjpg_avi(path, count, fps=30.0, width=64, height=48):
    """Write ``count`` frames and return the path; fails loudly if OpenCV cannot write MJPG."""
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    assert writer.isOpened(), "OpenCV cannot write MJPG .avi here"
    for i in range(count):
        writer.write(frame_image(i, width, height))
    writer.release()
    assert os.path.getsize(path) > 0
    return path


def read_all_with_opencv(path):
    """Reference decode straight through cv2.VideoCapture."""
    cap = cv2.VideoCapture(path)
    frames = []
    while True:
        ok, img = cap.read()
        if not ok:
            break
        frames.append(img)
    cap.release()
    return frames
