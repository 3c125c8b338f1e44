"""The game on 2-D toy data as one picture: D's belief over the plane, the real modes, G's samples.

Goodfellow et al. (2014), figure 1, in two dimensions: where the discriminator's heat map
is high it takes points for real, and the generator's samples move towards it. A run's
sample PNGs are these pictures; `gan_jax.animate` strings them into a GIF.
"""
import functools
from typing import Any

import flax.linen as nn
import jax
import numpy as np

from gan_jax import input_pipeline, writers

PyTree = Any


def plot_extent(dataset: str) -> float:
  """Half the side of the square shown for toy data set `dataset`: its modes and a margin."""
  centers, _ = input_pipeline.toy_modes(dataset)
  return 1.5 * float(np.abs(centers).max())


def grid_points(extent: float, resolution: int) -> np.ndarray:
  """[resolution**2, 2] points of [-extent, extent]^2, row by row from the top left.

  Row r lies at y = extent - r * step and column c at x = -extent + c * step, the
  corners on the square's corners: `writers.scatter_plot`'s layout of a heat map.
  """
  ticks = np.linspace(-extent, extent, resolution, dtype=np.float32)
  x, y = np.meshgrid(ticks, ticks[::-1])
  return np.stack([x.ravel(), y.ravel()], axis=1)


# The module is static (hashable), the variables traced: one program for every step's D.
@functools.partial(jax.jit, static_argnums=0)
def _logits(discriminator: nn.Module, variables: PyTree, points: jax.Array) -> jax.Array:
  return discriminator.apply(variables, points, train=False)


def discriminator_heat_map(discriminator: nn.Module, variables: PyTree, extent: float,
                           sigmoid: bool, resolution: int = 128) -> writers.HeatMap:
  """D's belief on a grid over [-extent, extent]^2, as `writers.scatter_plot` draws it.

  Args:
    discriminator: the D module.
    variables: its {'params': ..., 'batch_stats': ...}; applied with train=False.
    extent: half the side of the square.
    sigmoid: whether the loss reads the logit as D(x) = sigmoid(logit) (losses.SIGMOID_LOSSES).
      A critic's logit (Wasserstein, hinge, least squares) has no fixed scale: it is shown
      rescaled from its minimum to its maximum on the grid, and the legend says so.
    resolution: grid points per side.
  Returns:
    writers.HeatMap with values in [0, 1].
  """
  logits = np.asarray(_logits(discriminator, variables, grid_points(extent, resolution)))
  logits = logits.reshape(resolution, resolution).astype(np.float64)
  if sigmoid:
    return writers.HeatMap(1.0 / (1.0 + np.exp(-logits)), 'D(x)', '0 fake', '1 real')
  low, high = float(np.min(logits)), float(np.max(logits))
  values = (logits - low) / (high - low) if high > low else np.full_like(logits, 0.5)
  return writers.HeatMap(values, "D's logit, min to max", f'{low:.3g} fake', f'{high:.3g} real')


def game_picture(samples: np.ndarray, dataset: str, discriminator: nn.Module,
                 variables: PyTree, sigmoid: bool) -> np.ndarray:
  """G's samples (dots) and the real modes (crosses) over D's heat map, uint8 RGB with a legend.

  The real data's std (0.02 or 0.05) is about one pixel here: the crosses are where it lies.
  """
  extent = plot_extent(dataset)
  centers, _ = input_pipeline.toy_modes(dataset)
  heat_map = discriminator_heat_map(discriminator, variables, extent, sigmoid)
  return writers.scatter_plot(samples, extent, centers=centers, heat_map=heat_map)
