"""Tests of gan_jax.toy_plot: D's heat map behind the real modes and G's samples."""
import flax.linen as nn
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import toy_plot, writers


class RightIsReal(nn.Module):
  """A discriminator sure that x > 0 is real and x < 0 fake; no parameters."""

  @nn.compact
  def __call__(self, x, train=True):
    del train
    return 20.0 * jnp.tanh(4.0 * x[:, 0])


def test_grid_points_run_row_by_row_from_the_top_left():
  points = toy_plot.grid_points(extent=2.0, resolution=3)
  np.testing.assert_allclose(points[:3], [[-2, 2], [0, 2], [2, 2]])  # the top row, y = +2
  np.testing.assert_allclose(points[-1], [2, -2])


def test_heat_map_of_sigmoid_d_is_its_probability():
  heat_map = toy_plot.discriminator_heat_map(RightIsReal(), {}, extent=3.0, sigmoid=True,
                                             resolution=4)
  assert heat_map.values.shape == (4, 4) and heat_map.caption.startswith('D(x)')
  np.testing.assert_allclose(heat_map.values[:, :2], 0.0, atol=1e-6)  # x < 0: fake
  np.testing.assert_allclose(heat_map.values[:, 2:], 1.0, atol=1e-6)


def test_heat_map_of_a_critic_spans_its_logits_range():
  heat_map = toy_plot.discriminator_heat_map(RightIsReal(), {}, extent=3.0, sigmoid=False,
                                             resolution=4)
  assert heat_map.values.min() == 0.0 and heat_map.values.max() == 1.0
  assert 'min to max' in heat_map.caption
  assert heat_map.low.startswith('-20') and heat_map.high.startswith('20')  # the logits' range


@pytest.mark.parametrize('sigmoid', [True, False])
def test_picture_shows_where_d_believes_real(sigmoid):
  # One sample at the origin; ring8's modes at radius 2, the square 3 wide on each side.
  image = toy_plot.game_picture(np.zeros((1, 2), np.float32), 'ring8', RightIsReal(), {},
                                sigmoid)
  fake, real = writers.heat_colors(np.array([0.0, 1.0]))
  size = image.shape[1]
  middle, left, right = size // 2, size // 12, size - size // 12  # x = -2.5, 2.5: no marker
  np.testing.assert_array_equal(image[middle - 10, left], fake)
  np.testing.assert_array_equal(image[middle - 10, right], real)
  np.testing.assert_array_equal(image[middle, middle], writers._POINT_COLOR)  # the sample on top
