"""The paper's training augmentation (section 4.2), numpy and Pillow only.

A random square crop of [0.3, 1] of the short edge keeps the faces whose centre it contains (boxes clipped),
is resized to ``image_size`` squared, distorted photometrically and flipped horizontally with the left/right
landmark pairs swapped. Coordinates are image pixels throughout; landmarks move with their boxes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from facelocal.contract import RGB_MEAN
from facelocal.data.annotations import FaceAnnotations
from facelocal.detections import mirror_faces


@dataclass(frozen=True)
class PhotometricConfig:
    """Colour distortion of SSD, as used by the public RetinaFace port; each op fires with probability 0.5.

    brightness: largest added delta (0-255 scale); contrast, saturation: multiplier ranges;
    hue: largest hue shift in degrees.
    """

    brightness: float = 32.0
    contrast: tuple[float, float] = (0.5, 1.5)
    saturation: tuple[float, float] = (0.5, 1.5)
    hue: float = 18.0


@dataclass(frozen=True)
class AugmentConfig:
    """Parameters of :class:`Augmenter`.

    image_size: side of the square training image.
    crop_scale: range of the crop side as a fraction of the image's short edge.
    crop_attempts: crops drawn before giving up on one that holds a face centre; the whole image, padded to a
        square, is used then.
    flip_probability: chance of a horizontal flip.
    """

    image_size: int = 640
    crop_scale: tuple[float, float] = (0.3, 1.0)
    crop_attempts: int = 250
    flip_probability: float = 0.5
    photometric: PhotometricConfig | None = field(default_factory=PhotometricConfig)


@dataclass
class AugmentedSample:
    """A training image and its faces after augmentation.

    image: ``(S, S, 3)`` uint8 RGB. faces: in that image's pixels. face_indices: ``(N,)`` index of each face in
    the source annotations; clipped: ``(N,)`` bool, whether the crop cut the face's box.
    """

    image: np.ndarray
    faces: FaceAnnotations
    face_indices: np.ndarray
    clipped: np.ndarray


def random_square_crop(
    width: int, height: int, faces: FaceAnnotations, rng: np.random.Generator, config: AugmentConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Pick a square crop ``(x1, y1, x2, y2)`` that contains at least one face centre.

    Returns the crop and the ``(N,)`` mask of faces whose centre lies strictly inside it. When no face fits after
    ``config.crop_attempts`` draws (or there are no faces), returns the long-edge square at the origin, which
    keeps every face.
    """
    centres = (faces.boxes[:, :2] + faces.boxes[:, 2:]) / 2
    short = min(width, height)
    low, high = config.crop_scale
    for _ in range(config.crop_attempts if len(faces) else 0):
        side = max(1, int(rng.uniform(low, high) * short))
        x1 = int(rng.integers(0, width - side + 1))
        y1 = int(rng.integers(0, height - side + 1))
        crop = np.array([x1, y1, x1 + side, y1 + side], np.float32)
        inside = np.all((centres > crop[:2]) & (centres < crop[2:]), axis=1)
        if inside.any():
            return crop, inside
    side = max(width, height)
    return np.array([0, 0, side, side], np.float32), np.ones(len(faces), bool)


def crop_and_resize(
    image: np.ndarray, faces: FaceAnnotations, crop: np.ndarray, size: int
) -> tuple[np.ndarray, FaceAnnotations, np.ndarray]:
    """Cut ``crop`` (may reach past the image: the outside is mean-coloured) and scale it to ``size`` squared.

    Returns the ``(size, size, 3)`` image, the faces moved into it with boxes clipped to it, and the ``(N,)``
    mask of boxes that the clipping changed.
    """
    x1, y1, x2, y2 = (int(v) for v in crop)
    pil = Image.fromarray(image)
    if x2 > image.shape[1] or y2 > image.shape[0]:
        canvas = Image.new("RGB", (x2 - x1, y2 - y1), RGB_MEAN)
        canvas.paste(pil.crop((x1, y1, min(x2, image.shape[1]), min(y2, image.shape[0]))))
        pil = canvas
    else:
        pil = pil.crop((x1, y1, x2, y2))
    scale = size / (x2 - x1)
    resized = np.asarray(pil.resize((size, size), Image.Resampling.BILINEAR))
    offset = np.array([x1, y1], np.float32)
    boxes = (faces.boxes.reshape(-1, 2, 2) - offset) * scale
    clipped_boxes = np.clip(boxes, 0, size)
    clipped = np.any(clipped_boxes != boxes, axis=(1, 2))
    landmarks = (faces.landmarks - offset) * scale
    return resized, FaceAnnotations(clipped_boxes.reshape(-1, 4), landmarks, faces.has_landmarks), clipped


def horizontal_flip(image: np.ndarray, faces: FaceAnnotations) -> tuple[np.ndarray, FaceAnnotations]:
    """Mirror an image and its faces; the left/right eyes and mouth corners swap names."""
    boxes, landmarks = mirror_faces(faces.boxes, faces.landmarks, image.shape[1])
    return np.ascontiguousarray(image[:, ::-1]), FaceAnnotations(boxes, landmarks, faces.has_landmarks)


def photometric_distort(image: np.ndarray, rng: np.random.Generator, config: PhotometricConfig) -> np.ndarray:
    """Random brightness, contrast, saturation and hue, in SSD's order (contrast first or last at random)."""
    pixels = image.astype(np.float32)
    if rng.random() < 0.5:
        pixels += rng.uniform(-config.brightness, config.brightness)
    contrast_first = rng.random() < 0.5
    if contrast_first and rng.random() < 0.5:
        pixels *= rng.uniform(*config.contrast)
    saturation = rng.uniform(*config.saturation) if rng.random() < 0.5 else None
    hue = rng.uniform(-config.hue, config.hue) if rng.random() < 0.5 else None
    if saturation is not None or hue is not None:
        hsv = np.asarray(Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).convert("HSV")).astype(np.float32)
        if saturation is not None:
            hsv[..., 1] *= saturation
        if hue is not None:
            # Pillow stores hue in 0..255 for 0..360 degrees; it wraps around.
            hsv[..., 0] = (hsv[..., 0] + hue * 256 / 360) % 256
        hsv_image = Image.fromarray(np.clip(hsv, 0, 255).astype(np.uint8), mode="HSV")
        pixels = np.asarray(hsv_image.convert("RGB")).astype(np.float32)
    if not contrast_first and rng.random() < 0.5:
        pixels *= rng.uniform(*config.contrast)
    return np.clip(pixels, 0, 255).astype(np.uint8)


class Augmenter:
    """Applies crop, resize, photometric distortion and flip to one ``(H, W, 3)`` uint8 RGB image."""

    def __init__(self, config: AugmentConfig = AugmentConfig()) -> None:
        self.config = config

    def __call__(self, image: np.ndarray, faces: FaceAnnotations, rng: np.random.Generator) -> AugmentedSample:
        height, width = image.shape[:2]
        crop, inside = random_square_crop(width, height, faces, rng, self.config)
        indices = np.nonzero(inside)[0]
        image, kept, clipped = crop_and_resize(image, faces.select(indices), crop, self.config.image_size)
        if self.config.photometric is not None:
            image = photometric_distort(image, rng, self.config.photometric)
        if rng.random() < self.config.flip_probability:
            image, kept = horizontal_flip(image, kept)
        return AugmentedSample(image, kept, indices, clipped)
