"""Fitting one uint8 image to the training shape: centre crop, resize, channel count."""
import numpy as np
from PIL import Image

CROPS = ('center', 'none')


def fit_image(image: np.ndarray, size: int, channels: int, crop: str = 'center') -> np.ndarray:
  """Returns `image` (uint8 [H, W, C], C 1, 3 or 4) as uint8 [size, size, channels].

  Args:
    image: the decoded image.
    size: the output side; 0 keeps the image's (which must then be square unless crop).
    channels: 1 (grey, ITU-R 601 luma as PIL's 'L') or 3 (RGB; grey is repeated); 0 keeps
      the image's own (an alpha channel is dropped).
    crop: 'center' cuts the largest centred square first; 'none' resizes as it is
      (non-square images are stretched).
  """
  if crop not in CROPS:
    raise ValueError(f'crop must be one of {CROPS}, got {crop!r}')
  if crop == 'center' and image.shape[0] != image.shape[1]:
    side = min(image.shape[:2])
    top, left = (image.shape[0] - side) // 2, (image.shape[1] - side) // 2
    image = image[top:top + side, left:left + side]
  pil = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
  want = channels or (1 if image.shape[-1] == 1 else 3)
  mode = 'L' if want == 1 else 'RGB'
  if pil.mode != mode:
    pil = pil.convert(mode)
  if size and pil.size != (size, size):
    # Antialiased Lanczos when shrinking (StyleGAN2-ADA's dataset_tool); bilinear when
    # growing, as torchvision's Resize (Fashion-MNIST at 32x32 and 64x64).
    shrinking = size < max(pil.size)
    pil = pil.resize((size, size), Image.Resampling.LANCZOS if shrinking
                     else Image.Resampling.BILINEAR)
  out = np.asarray(pil)
  return out[..., None] if out.ndim == 2 else out
