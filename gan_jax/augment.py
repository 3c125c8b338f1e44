"""DiffAugment: random, differentiable augmentations of the images the discriminator sees.

Zhao et al., 2020, "Differentiable Augmentation for Data-Efficient GAN Training". D sees
real and generated images alike only through random transforms, and G's gradient flows back
through them: D cannot memorise a small data set, and, as fakes are transformed too, G is
not rewarded for generating transformed images.
The semantics are those of the reference DiffAugment_pytorch.py
(github.com/mit-han-lab/data-efficient-gans), for NHWC images in [-1, 1]; every draw is per
image, and every function is pure: jit-able with static shapes, differentiable w.r.t. x.
"""
from typing import Callable

import jax
import jax.numpy as jnp

from gan_jax.errors import unknown_name_error

POLICIES = ('color', 'translation', 'cutout')


def parse_policy(policy: str) -> tuple[str, ...]:
  """'color,translation' -> ('color', 'translation'); '' -> (). Unknown names: UserError."""
  names = tuple(name.strip() for name in policy.split(',')) if policy.strip() else ()
  for name in names:
    if name not in POLICIES:
      raise unknown_name_error('DiffAugment policy', name, POLICIES)
  return names


def diff_augment(key: jax.Array, x: jax.Array, policy: tuple[str, ...]) -> jax.Array:
  """Applies the transforms of `policy` (from `parse_policy`) in turn to images x [B, H, W, C].

  `policy` is a tuple, so it can be a static argument of jax.jit. Augment every batch D sees,
  real and fake, in D's and G's steps alike, each with a fresh key. Penalties on D's input
  gradient (R1, WGAN-GP, DRAGAN) differentiate D(diff_augment(key, x)) at the un-augmented x,
  with the real batch's key: DiffAugment-stylegan2-pytorch's training/loss.py takes R1 so.
  """
  for name, name_key in zip(policy, jax.random.split(key, len(policy))):
    x = _TRANSFORMS[name](name_key, x)
  return x


def _per_image(key: jax.Array, x: jax.Array, low: float, high: float) -> jax.Array:
  """U[low, high) draws [B, 1, 1, 1] in x's dtype: one per image, broadcast over its pixels."""
  return jax.random.uniform(key, (x.shape[0], 1, 1, 1), x.dtype, low, high)


def brightness(key: jax.Array, x: jax.Array) -> jax.Array:
  """Adds U[-0.5, 0.5) to each image."""
  return x + _per_image(key, x, -0.5, 0.5)


def saturation(key: jax.Array, x: jax.Array) -> jax.Array:
  """Scales each pixel's deviation from its mean over channels by U[0, 2) per image.

  The identity on grey images (C = 1): a pixel is its own channel mean, so it has no colour
  to saturate.
  """
  mean = jnp.mean(x, axis=-1, keepdims=True)
  return mean + (x - mean) * _per_image(key, x, 0.0, 2.0)


def contrast(key: jax.Array, x: jax.Array) -> jax.Array:
  """Scales each pixel's deviation from its image's mean by U[0.5, 1.5) per image."""
  mean = jnp.mean(x, axis=(1, 2, 3), keepdims=True)
  return mean + (x - mean) * _per_image(key, x, 0.5, 1.5)


def color(key: jax.Array, x: jax.Array) -> jax.Array:
  """Brightness, saturation, then contrast, as the reference's 'color' policy."""
  brightness_key, saturation_key, contrast_key = jax.random.split(key, 3)
  return contrast(contrast_key, saturation(saturation_key, brightness(brightness_key, x)))


def translate(x: jax.Array, shift: jax.Array) -> jax.Array:
  """Moves image b's content by shift[b] = (rows, columns) pixels, filling in zeros.

  out[b, i, j] = x[b, i - shift[b, 0], j - shift[b, 1]], or 0 where that is outside the
  image: a gather, so the gradient w.r.t. x is the scatter back.
  """
  _, h, w, _ = x.shape
  rows = jnp.arange(h) - shift[:, :1]  # [B, H]: the row each output row reads
  cols = jnp.arange(w) - shift[:, 1:]  # [B, W]
  x = jnp.take_along_axis(x, jnp.clip(rows, 0, h - 1)[:, :, None, None], axis=1)
  x = jnp.take_along_axis(x, jnp.clip(cols, 0, w - 1)[:, None, :, None], axis=2)
  inside = _in_range(rows, h)[:, :, None, None] & _in_range(cols, w)[:, None, :, None]
  return jnp.where(inside, x, 0)


def translation(key: jax.Array, x: jax.Array) -> jax.Array:
  """Translates each image by up to 1/8 of its size along each axis, with zero padding.

  Integer shifts uniform in [-s, s] with s = round(size / 8), half up as the reference's
  int(0.125 * size + 0.5): s = 4 for 28 or 32 pixels. The reference moves content by minus
  its draw; the distribution is symmetric, so it is the same.
  """
  b, h, w, _ = x.shape
  limit = jnp.array([(h + 4) // 8, (w + 4) // 8])
  return translate(x, jax.random.randint(key, (b, 2), -limit, limit + 1))


def cutout(key: jax.Array, x: jax.Array) -> jax.Array:
  """Zeroes a rectangle of half the image's height and width at a random place per image.

  As in the reference: the sides are round(size / 2), half up (int(0.5 * size + 0.5)); the
  centre is uniform over the rows [0, h] for an even side, [0, h - 1] for an odd one (and
  likewise for columns), and the rectangle is cropped where it crosses the border (its
  index grid is clamped into the image), so near a border fewer pixels are cut.
  """
  b, h, w, _ = x.shape
  size_h, size_w = (h + 1) // 2, (w + 1) // 2
  high = jnp.array([h + 1 - size_h % 2, w + 1 - size_w % 2])
  top_left = jax.random.randint(key, (b, 2), 0, high) - jnp.array([size_h // 2, size_w // 2])
  rows = jnp.arange(h) - top_left[:, :1]  # [B, H]: the row's index inside the rectangle
  cols = jnp.arange(w) - top_left[:, 1:]
  cut = _in_range(rows, size_h)[:, :, None, None] & _in_range(cols, size_w)[:, None, :, None]
  return jnp.where(cut, 0, x)


def _in_range(index: jax.Array, size: int) -> jax.Array:
  return (index >= 0) & (index < size)


_TRANSFORMS: dict[str, Callable[[jax.Array, jax.Array], jax.Array]] = {
    'color': color,
    'translation': translation,
    'cutout': cutout,
}
