"""Drawing results on images with OpenCV: a box, the emotion and a small probability bar chart
per face. (OpenCV rather than matplotlib: recognition installs need no plotting library.)"""

from __future__ import annotations

import cv2
import numpy as np

from ..labels import EMOTIONS

# BGR colour per emotion, used for the box, the label and the bars.
COLORS = {"angry": (40, 40, 220), "disgust": (40, 140, 40), "fear": (150, 60, 150),
          "happy": (0, 200, 255), "sad": (200, 120, 40), "surprise": (0, 140, 255),
          "neutral": (160, 160, 160)}


def annotate(image: np.ndarray, faces: list) -> np.ndarray:
    """A BGR copy of ``image`` with every face's box, emotion and probabilities drawn."""
    canvas = image.copy() if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if canvas.shape[2] == 4:
        canvas = cv2.cvtColor(canvas, cv2.COLOR_BGRA2BGR)
    unit = max(1.0, max(canvas.shape[:2]) / 640)  # scale text and lines with the picture
    for face in faces:
        x, y, w, h = face.box
        color = COLORS.get(face.emotion, (255, 255, 255))
        thickness = max(1, int(round(2 * unit)))
        cv2.rectangle(canvas, (x, y), (x + w, y + h), color, thickness)
        label = f"{face.emotion} {face.probabilities[face.emotion]:.0%}"
        font = 0.6 * unit
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, font, thickness)
        top = max(0, y - th - base - 4)
        cv2.rectangle(canvas, (x, top), (x + tw + 6, top + th + base + 4), color, -1)
        cv2.putText(canvas, label, (x + 3, top + th + 2), cv2.FONT_HERSHEY_SIMPLEX, font,
                    (0, 0, 0), thickness, cv2.LINE_AA)
        _bars(canvas, face.probabilities, x + w + int(6 * unit), y, unit)
    return canvas


def _bars(canvas: np.ndarray, probabilities: dict, left: int, top: int, unit: float) -> None:
    """Seven horizontal bars beside the face (moved inside the image when there is no room)."""
    row, width, name_width = int(14 * unit), int(60 * unit), int(62 * unit)
    total = name_width + width + int(40 * unit)
    left = min(left, canvas.shape[1] - total)
    top = min(max(0, top), canvas.shape[0] - row * len(EMOTIONS))
    if left < 0 or top < 0:
        return  # the picture is too small for a chart
    overlay = canvas.copy()
    cv2.rectangle(overlay, (left, top), (left + total, top + row * len(EMOTIONS)), (0, 0, 0), -1)
    cv2.addWeighted(overlay, 0.45, canvas, 0.55, 0, dst=canvas)
    for i, emotion in enumerate(EMOTIONS):
        p = probabilities.get(emotion, 0.0)
        y = top + i * row
        cv2.putText(canvas, emotion, (left + 2, y + row - 3), cv2.FONT_HERSHEY_SIMPLEX,
                    0.38 * unit, (255, 255, 255), 1, cv2.LINE_AA)
        x0 = left + name_width
        cv2.rectangle(canvas, (x0, y + 2), (x0 + int(width * p), y + row - 2),
                      COLORS[emotion], -1)
        cv2.putText(canvas, f"{p:.0%}", (x0 + width + 3, y + row - 3),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.38 * unit, (255, 255, 255), 1, cv2.LINE_AA)
