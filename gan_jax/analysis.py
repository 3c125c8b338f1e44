"""The API notebooks use to study a workdir: samples, interpolations, neighbours, curves.

`load(workdir)` gives a trained generator ready to call; the other functions are pure
numpy on its outputs, the training images or the workdir's JSON lines. Images are
float32 NHWC in [0, 1] throughout (as `gan_jax.sample` writes them); 2-D toy data are
points [N, 2] in data coordinates. experiments/analyze_checkpoint.ipynb shows them all.
"""
import dataclasses
import functools
import math
from typing import Any, Iterable, Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gan_jax import (checkpoints, data, input_pipeline, models, paths, run_control,
                     sample as sample_lib, writers)
from gan_jax.errors import UserError
from gan_jax.state import apply_per_example, generator_variables

@dataclasses.dataclass(frozen=True)
class Analysis:
  """A trained GAN loaded from a workdir, ready to generate."""
  workdir: str
  loaded: checkpoints.Loaded

  @property
  def config(self) -> ml_collections.ConfigDict:
    return self.loaded.config

  @property
  def step(self) -> int:
    """The checkpoint's step: generator updates done."""
    return int(self.loaded.state.step)

  @property
  def standing(self) -> str:
    """Where the run stood at this checkpoint and which limit ends it, e.g. 'step 42745 of
    100000, where the 15-minute budget (config.train_minutes) ended the run'."""
    return run_control.standing(self.config, self.step, self.loaded.meta['train_seconds'])

  @property
  def is_image(self) -> bool:
    """True for image data sets, False for 2-D toy points."""
    return not data.is_toy(self.config.dataset)

  def latents(self, num: int, seed: int = 0) -> np.ndarray:
    """The latents [num, latent_dim] that `sample(num, seed)` generates from."""
    config = self.config
    return np.asarray(models.sample_latents(jax.random.PRNGKey(seed),
                                            (num, config.model.latent_dim),
                                            config.model.latent_prior))

  def generate(self, z: np.ndarray, label: int | None = None, noise_seed: int = 0,
               fixed_noise: bool = False) -> np.ndarray:
    """G(z) for latents [N, latent_dim]: images in [0, 1], or points as they are.

    A conditional model makes class `label`, or classes spread evenly when None. A
    StyleGAN2's noise as `sample.generate_samples`: `sample(num, seed)` is
    `generate(latents(num, seed), noise_seed=seed)`; `fixed_noise` gives every image the
    first one's noise (interpolations).
    """
    labels = sample_lib.sample_labels(self.config, len(z), label)
    return sample_lib.generate_samples(self.loaded.generator, self.loaded.state, z, labels,
                                       noise_seed=noise_seed, fixed_noise=fixed_noise)

  def sample(self, num: int, seed: int = 0, label: int | None = None) -> np.ndarray:
    """`num` samples from the latents of `seed`: the same as `gan_jax.sample --seed`."""
    return sample_lib.sample(self.loaded, num, seed, label=label)


  def _check_style_based(self) -> None:
    if self.config.model.name != 'stylegan2':
      raise UserError(f'W and its styles belong to StyleGAN2 generators; this workdir has a '
                      f'{self.config.model.name} generator.')

  def ws(self, z: np.ndarray, truncation_psi: float = 1.0) -> np.ndarray:
    """A StyleGAN2's ws [N, num_ws, w_dim] of latents [N, latent_dim] (its EMA's mapping)."""
    self._check_style_based()
    return np.asarray(_map(self.loaded.generator, generator_variables(self.loaded.state),
                           jnp.asarray(z), truncation_psi))

  def synthesize(self, ws: np.ndarray, noise_seed: int = 0,
                 fixed_noise: bool = False) -> np.ndarray:
    """A StyleGAN2's images in [0, 1] of ws [N, num_ws, w_dim], with the noise `generate`
    gives the same rows."""
    self._check_style_based()
    indices = np.zeros(len(ws), np.int32) if fixed_noise else np.arange(len(ws))
    images = _synthesize(self.loaded.generator, generator_variables(self.loaded.state),
                         jnp.asarray(ws), sample_lib.noise_key(noise_seed), indices)
    return np.clip((np.asarray(images) + 1.0) / 2.0, 0.0, 1.0)


@functools.partial(jax.jit, static_argnums=0)
def _map(generator: nn.Module, variables: Any, z: jax.Array, truncation_psi: float) -> jax.Array:
  return generator.apply(variables, z, train=False, truncation_psi=truncation_psi, method='map')


@functools.partial(jax.jit, static_argnums=0)
def _synthesize(generator: nn.Module, variables: Any, ws: jax.Array, noise_key: jax.Array,
                noise_indices: jax.Array) -> jax.Array:
  return apply_per_example(generator, variables, (ws,), noise_key, noise_indices,
                           method='synthesize')


def load(workdir: str, step: int | None = None) -> Analysis:
  """Loads a workdir's config and its checkpoint at `step` (default: the latest)."""
  return Analysis(workdir, checkpoints.load(workdir, step))


def interpolate(z0: np.ndarray, z1: np.ndarray, num: int, method: str = 'linear') -> np.ndarray:
  """`num` evenly spaced latents from z0 to z1, both endpoints included.

  'slerp' follows the great circle between the two directions, so that, unlike the
  straight line, it does not pass near the origin, where Gaussian latents are
  unlikely: at equal norms every point keeps that norm. Vectors that are parallel
  or opposite (or zero) span no plane; there slerp falls back to the straight line.

  Args:
    z0: a latent [..., D].
    z1: a latent of the same shape.
    num: how many points, >= 2.
    method: 'linear' or 'slerp'.
  Returns:
    Latents [num, ..., D] with the dtype of z0; the first is z0 and the last z1.

  White, 2016, "Sampling Generative Networks", section 2.1.
  """
  if method not in ('linear', 'slerp'):
    raise ValueError(f"Unknown interpolation method {method!r}; valid ones: 'linear', 'slerp'.")
  z0, z1 = np.asarray(z0), np.asarray(z1)
  a, b = z0.astype(np.float64), z1.astype(np.float64)
  t = np.linspace(0.0, 1.0, num).reshape((num,) + (1,) * a.ndim)
  w0, w1 = 1.0 - t, t
  if method == 'slerp':
    norms = np.linalg.norm(a, axis=-1, keepdims=True) * np.linalg.norm(b, axis=-1, keepdims=True)
    cos = np.sum(a * b, axis=-1, keepdims=True) / np.where(norms > 0, norms, 1.0)
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    sin = np.sin(omega)
    # sin(omega) ~ 0 for parallel or opposite vectors: the formula is 0/0 there.
    curved = (sin > 1e-6) & (norms > 0)
    safe_sin = np.where(curved, sin, 1.0)
    w0 = np.where(curved, np.sin(w0 * omega) / safe_sin, w0)
    w1 = np.where(curved, np.sin(w1 * omega) / safe_sin, w1)
  return (w0 * a + w1 * b).astype(z0.dtype)


def tile_rows(rows: np.ndarray) -> np.ndarray:
  """Tiles images [R, C, H, W, ch] in [0, 1] into one uint8 image of R rows of C tiles.

  The tiles look as in `writers.image_grid`: white 2-pixel lines between them.
  """
  rows = np.asarray(rows, np.float32)
  images = rows.reshape((-1,) + rows.shape[2:]) * 2.0 - 1.0  # image_grid takes [-1, 1]
  return writers.image_grid(images, cols=rows.shape[1])


def interpolation_strip(analysis: Analysis, z0: np.ndarray, z1: np.ndarray, num: int = 8,
                        methods: Sequence[str] = ('linear', 'slerp')) -> np.ndarray:
  """One row of `num` images per method, interpolating from G(z0) to G(z1): uint8 [H', W', C]."""
  if not analysis.is_image:
    raise ValueError(f'{analysis.config.dataset} has 2-D points, not images: plot '
                     'analysis.generate(interpolate(...)) as a path instead.')
  return tile_rows(np.stack([analysis.generate(interpolate(z0, z1, num, method), fixed_noise=True)
                             for method in methods]))


def style_mixing_grid(analysis: Analysis, coarse_z: np.ndarray, fine_z: np.ndarray,
                      cutoff: int) -> np.ndarray:
  """StyleGAN's style-mixing figure as uint8 [H', W', C]: the top row is G(fine_z), the left
  column G(coarse_z), and inside, row i and column j mix coarse_z[i]'s styles in the layers
  before `cutoff` (the low resolutions: shape, pose) with fine_z[j]'s after it (texture,
  shading). The corner is white.
  """
  coarse, fine = analysis.ws(coarse_z), analysis.ws(fine_z)
  num_ws = coarse.shape[1]
  if not 0 < cutoff < num_ws:
    raise ValueError(f'cutoff must be in [1, {num_ws - 1}] (layers take {num_ws} styles), '
                     f'got {cutoff}.')
  rows, cols = len(coarse), len(fine)
  mixed = np.concatenate([np.repeat(coarse[:, None, :cutoff], cols, axis=1),
                          np.repeat(fine[None, :, cutoff:], rows, axis=0)], axis=2)
  inside = analysis.synthesize(mixed.reshape((rows * cols,) + coarse.shape[1:]))
  inside = inside.reshape((rows, cols) + inside.shape[1:])
  top = analysis.synthesize(fine)
  top = np.concatenate([np.ones_like(top[:1]), top])[None]
  left = analysis.synthesize(coarse)[:, None]
  return tile_rows(np.concatenate([top, np.concatenate([left, inside], axis=1)]))


def w_interpolation_strip(analysis: Analysis, z0: np.ndarray, z1: np.ndarray,
                          num: int = 8) -> np.ndarray:
  """One row of `num` images from G(z0) to G(z1) along the straight line in W (StyleGAN's
  perceptual path length measures this path's smoothness): uint8 [H', W', C]."""
  ends = analysis.ws(np.stack([z0, z1]))
  return tile_rows(analysis.synthesize(interpolate(ends[0], ends[1], num), fixed_noise=True)[None])


def training_images(config: ml_collections.ConfigDict, split: str = 'train') -> np.ndarray:
  """A config's whole data set split as float32 images [N, H, W, C] in [0, 1].

  Read and resized (config.data.image_size) as the training input pipeline does, from
  config.data.manual_dir / data_dir. Fashion-MNIST's 60,000 take 188 MB.
  """
  if data.is_toy(config.dataset):
    raise UserError(f'{config.dataset} is a toy data set: it has no finite set of training '
                    'examples, only its modes (input_pipeline.toy_modes).')
  return input_pipeline.load_examples(config, split)[0].astype(np.float32) / np.float32(255.0)


def nearest_neighbours(queries: np.ndarray, references: np.ndarray, k: int = 1,
                       chunk_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
  """The k references nearest to each query by L2 distance in pixel space.

  Distances are ranked through |q|^2 - 2 q.r + |r|^2, one chunk of queries at a time,
  so memory holds a [chunk_size, len(references)] matrix (61 MB against Fashion-MNIST's
  60,000 at the default), never [N, len(references)]. The k distances returned are then
  computed directly, so a copied training image is at distance 0, not at round-off.

  Args:
    queries: [N, ...], e.g. samples [N, H, W, C] in [0, 1].
    references: [M, ...] with the same trailing shape, e.g. `training_images(config)`.
    k: neighbours per query, <= M.
    chunk_size: queries per distance matrix.
  Returns:
    (indices int64 [N, k] into references, distances float32 [N, k]), nearest first.
  """
  queries = np.asarray(queries, np.float32).reshape(len(queries), -1)
  references = np.asarray(references, np.float32).reshape(len(references), -1)
  if not 1 <= k <= len(references):
    raise ValueError(f'k={k} must be in [1, {len(references)}], the number of references.')
  reference_norms = np.sum(references**2, axis=1)
  indices = np.empty((len(queries), k), np.int64)
  for start in range(0, len(queries), chunk_size):
    chunk = queries[start:start + chunk_size]
    # |q|^2 is the same for every reference of a query, so it does not change the ranking.
    scores = reference_norms[None, :] - 2.0 * chunk @ references.T
    indices[start:start + chunk_size] = np.argpartition(scores, k - 1, axis=1)[:, :k]
  distances = np.linalg.norm(queries[:, None, :] - references[indices], axis=-1)
  order = np.argsort(distances, axis=1, kind='stable')
  return (np.take_along_axis(indices, order, axis=1),
          np.take_along_axis(distances, order, axis=1).astype(np.float32))


def neighbour_grid(samples: np.ndarray, references: np.ndarray,
                   indices: np.ndarray) -> np.ndarray:
  """One row per sample: the sample, then its neighbours, nearest first; uint8 [H', W', C].

  Args:
    samples: images [N, H, W, C] in [0, 1].
    references: the images `indices` point into, e.g. `training_images(config)`.
    indices: [N, k] from `nearest_neighbours(samples, references, k)`.
  """
  return tile_rows(np.concatenate([np.asarray(samples)[:, None], references[indices]], axis=1))


def _flatten(record: Mapping[str, Any], prefix: str = '') -> dict[str, Any]:
  """{'floor': {'fid': 1}} -> {'floor/fid': 1}."""
  flat = {}
  for name, value in record.items():
    if isinstance(value, Mapping):
      flat.update(_flatten(value, f'{prefix}{name}/'))
    else:
      flat[prefix + name] = value
  return flat


def align(records: Iterable[Mapping[str, Any]]) -> dict[str, np.ndarray]:
  """Aligns records {'step': s, name: value, ...} into columns, one row per step.

  Nested dicts become 'parent/child' columns. A step logged twice keeps the later value
  of each name: a resumed run logs again the steps after its last checkpoint.

  Args:
    records: dicts with an integer 'step', e.g. the lines of metrics.jsonl.
  Returns:
    {'step': int64 [S] ascending, name: [S] ...}: float64 with NaN where a step lacks
    the name (or logged null, a non-finite value), or object with None for columns
    that are not all numbers.
  """
  rows = {}
  for record in records:
    flat = _flatten(record)
    rows.setdefault(int(flat.pop('step')), {}).update(flat)
  steps = sorted(rows)
  names = sorted({name for row in rows.values() for name in row})
  table = {'step': np.asarray(steps, np.int64)}
  for name in names:
    values = [rows[step].get(name) for step in steps]
    if all(v is None or isinstance(v, (int, float)) for v in values):
      table[name] = np.asarray([math.nan if v is None else v for v in values], np.float64)
    else:
      table[name] = np.asarray(values, object)
  return table


def metric_table(workdir: str) -> dict[str, np.ndarray]:
  """A workdir's training metrics and its evaluations (if any) as `align`ed columns.

  Reads WORKDIR/metrics.jsonl and WORKDIR/eval.jsonl (written by `gan_jax.evaluate`), local
  or gs://; both are keyed on 'step', so FID sits beside the losses of the same step. A line
  that a running job is still writing is left out.
  """
  records = [record for name in ('metrics.jsonl', 'eval.jsonl')
             for record in paths.read_jsonl(paths.path(workdir) / name)]
  if not records:
    raise UserError(f'{workdir} has neither metrics.jsonl nor eval.jsonl: is it a gan_jax '
                    'workdir that has logged a step?')
  return align(records)
