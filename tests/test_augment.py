"""DiffAugment's transforms against their definitions and hand-checked moves."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import augment
from gan_jax.errors import UserError

KEY = jax.random.PRNGKey(0)
ALL = augment.POLICIES
# Few shapes, shared by the tests: on CPU, compiling each op for each new shape is most of the time.
COLOUR = (64, 16, 16, 3)


def _images(shape, dtype=np.float32):
  """Images in [-1, 1] from numpy's generator: no compile of jax's for each shape."""
  return np.random.default_rng(0).uniform(-1.0, 1.0, shape).astype(dtype)


def test_parse_policy():
  assert augment.parse_policy('color,translation,cutout') == ALL
  assert augment.parse_policy(' cutout, color ') == ('cutout', 'color')
  assert augment.parse_policy('') == ()
  with pytest.raises(UserError, match="Did you mean 'color'"):
    augment.parse_policy('colour,cutout')
  with pytest.raises(UserError, match='translation'):
    augment.parse_policy('color,')  # an empty name is a typo too


def test_shape_and_dtype_are_kept():
  x = _images(COLOUR)
  assert augment.diff_augment(KEY, x, ALL).shape == COLOUR
  # Under jit, for a batch of one grey bfloat16 image.
  x = _images((1, 8, 8, 1), jnp.bfloat16)
  y = jax.jit(augment.diff_augment, static_argnums=2)(KEY, x, ALL)
  assert y.shape == x.shape and y.dtype == x.dtype
  assert np.all(np.isfinite(np.asarray(y, np.float32)))


def test_empty_policy_is_identity():
  x = _images(COLOUR)
  np.testing.assert_array_equal(augment.diff_augment(KEY, x, ()), x)


def test_same_key_same_output_other_key_differs():
  x = _images(COLOUR)
  one, again = (augment.diff_augment(KEY, x, ALL) for _ in range(2))
  np.testing.assert_array_equal(one, again)
  assert not np.allclose(one, augment.diff_augment(jax.random.PRNGKey(1), x, ALL))


def test_brightness_shifts_each_image_by_its_draw():
  x = _images(COLOUR)
  shift = augment.brightness(KEY, x) - x
  drawn = jax.random.uniform(KEY, (len(x), 1, 1, 1), minval=-0.5, maxval=0.5)
  np.testing.assert_allclose(shift, jnp.broadcast_to(drawn, x.shape), atol=1e-6)
  np.testing.assert_allclose(shift.mean(axis=(1, 2, 3)), drawn.ravel(), atol=1e-6)
  assert -0.5 <= drawn.min() < -0.4 and 0.4 < drawn.max() < 0.5  # U[-0.5, 0.5)


def test_saturation_and_contrast_scale_deviations_from_their_means():
  x = _images(COLOUR)
  channel_mean = x.mean(axis=-1, keepdims=True)
  y = augment.saturation(KEY, x)
  np.testing.assert_allclose(y.mean(axis=-1, keepdims=True), channel_mean, atol=1e-6)
  factor = _scale(x - channel_mean, y - channel_mean)
  assert 0.0 <= factor.min() < 0.1 and 1.9 < factor.max() < 2.0  # U[0, 2)
  image_mean = x.mean(axis=(1, 2, 3), keepdims=True)
  y = augment.contrast(KEY, x)
  np.testing.assert_allclose(y.mean(axis=(1, 2, 3), keepdims=True), image_mean, atol=1e-6)
  factor = _scale(x - image_mean, y - image_mean)
  assert 0.5 <= factor.min() < 0.6 and 1.4 < factor.max() < 1.5  # U[0.5, 1.5)


def _scale(before, after):
  """The factor [B] per image with after = factor * before, checked to hold for every pixel."""
  factor = (before * after).sum(axis=(1, 2, 3)) / (before ** 2).sum(axis=(1, 2, 3))
  np.testing.assert_allclose(after, factor[:, None, None, None] * before, atol=1e-5)
  return factor


def test_color_on_grey_or_flat_images_is_brightness_alone():
  # Grey: each pixel is its own channel mean, so saturation is the identity.
  grey = _images(COLOUR[:3] + (1,))
  np.testing.assert_array_equal(augment.saturation(KEY, grey), grey)
  # A flat image has no deviations to scale: only the brightness shift is left.
  flat = jnp.full(COLOUR, 0.25)
  brightness_key = jax.random.split(KEY, 3)[0]
  np.testing.assert_allclose(augment.color(KEY, flat), augment.brightness(brightness_key, flat),
                             atol=1e-6)


def test_translate_by_hand():
  x = jnp.zeros((3, 4, 4, 2)).at[:, 0, 1].set(jnp.array([1.0, 2.0]))
  y = augment.translate(x, jnp.array([[1, -1], [0, 2], [-1, 0]]))
  np.testing.assert_array_equal(y[0, 1, 0], [1.0, 2.0])  # (0, 1) + (1, -1) = (1, 0)
  np.testing.assert_array_equal(y[1, 0, 3], [1.0, 2.0])  # (0, 1) + (0, 2) = (0, 3)
  assert np.count_nonzero(y[:2]) == 4
  np.testing.assert_array_equal(y[2], 0.0)  # moved out at the top: zeros come in, no wrap


def test_translation_moves_a_pixel_by_the_drawn_shift():
  # Shifts up to 1/8 of the size, rounded half up as the reference's int(0.125 * size + 0.5):
  # 28 / 8 = 3.5 -> 4 rows, 16 / 8 = 2 columns.
  x = jnp.zeros((64, 28, 16, 1)).at[:, 14, 8].set(1.0)
  y = np.asarray(augment.translation(KEY, x))
  assert np.all(y.sum(axis=(1, 2, 3)) == 1.0)  # still one pixel: none left the image
  _, rows, cols, _ = np.nonzero(y)
  shift = np.stack([rows - 14, cols - 8], axis=-1)
  assert set(shift[:, 0]) == set(range(-4, 5)) and set(shift[:, 1]) == set(range(-2, 3))
  # The same draw moves any image so, zeros filling in.
  images = _images(x.shape)
  np.testing.assert_array_equal(augment.translation(KEY, images),
                                augment.translate(images, jnp.asarray(shift)))


def test_cutout_zeroes_a_half_size_square_cropped_by_the_border():
  """The reference centres the square anywhere in [0, 16] and clamps it into the image.

  So a square inside the image zeroes exactly (16 / 2)^2 = 64 pixels, one crossing the
  border only its part inside, at least a 4 x 4 quarter.
  """
  side = COLOUR[1] // 2
  y = augment.cutout(KEY, jnp.ones(COLOUR))
  cut = np.asarray(y == 0)
  assert np.all(cut.all(axis=-1) == cut.any(axis=-1))  # all channels or none
  cut = cut[..., 0]
  rows, cols = cut.any(axis=2), cut.any(axis=1)  # [B, 16]: rows and columns with cut pixels
  heights, widths = _run_length(rows), _run_length(cols)
  np.testing.assert_array_equal(cut.sum(axis=(1, 2)), heights * widths)  # a rectangle
  assert heights.min() == widths.min() == side // 2 and heights.max() == widths.max() == side
  for lines, lengths in ((rows, heights), (cols, widths)):
    cropped = lines[lengths < side]
    assert len(cropped) and np.all(cropped[:, 0] | cropped[:, -1])  # only at a border
  inside = (heights == side) & (widths == side)
  np.testing.assert_array_equal(cut[inside].sum(axis=(1, 2)), side ** 2)
  # Per axis, 9 of the 17 centres keep the side whole: about (9 / 17)^2 = 28% inside.
  assert 0.15 < inside.mean() < 0.45


def _run_length(flags):
  """[B] lengths of the one run of True in each row of flags [B, N]; fails if there are more."""
  lengths = flags.sum(axis=1)
  first, last = flags.argmax(axis=1), flags.shape[1] - 1 - flags[:, ::-1].argmax(axis=1)
  np.testing.assert_array_equal(last - first + 1, lengths)
  return lengths


def test_cutout_of_an_odd_size_rounds_half_up():
  # int(0.5 * 7 + 0.5) = 4, centred in [0, 6]: a 4 x 4 square inside at most.
  cut = np.asarray(augment.cutout(KEY, jnp.ones((64, 7, 7, 1))) == 0)
  assert cut.sum(axis=(1, 2, 3)).max() == 16


def test_gradients_flow_to_the_pixels_that_are_kept():
  x = _images(COLOUR)
  y, pullback = jax.vjp(lambda x: augment.diff_augment(KEY, x, ('translation', 'cutout')), x)
  grad, = pullback(jnp.ones_like(y))  # the gradient of y.sum()
  # Each kept input pixel lands on one output pixel: gradient 1 there, 0 where it was lost.
  assert set(np.unique(grad)) == {0.0, 1.0}
  assert grad.sum() == np.count_nonzero(y) > 0
  grad = jax.grad(lambda x: augment.diff_augment(KEY, x, ALL).sum())(x)
  assert np.all(np.isfinite(grad)) and np.count_nonzero(grad) > 0
