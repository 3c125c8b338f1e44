"""The real side of FID, KID and precision/recall: features and statistics of real images, cached.

A Reference holds the features of real images in some feature space (the data set's own
classifier, or Inception-v3) with their mean and covariance, or only the mean and
covariance where they come from a published statistics file. Embedding real images costs
as much as embedding samples, so each Reference is computed once and cached in
$GAN_JAX_CACHE (default $XDG_CACHE_HOME/gan_jax, i.e. ~/.cache/gan_jax) under a key made of
the feature weights' sha256, the preprocessing and a hash of the images themselves.
"""
import hashlib
import os
from typing import BinaryIO, Callable, NamedTuple

from absl import logging
import ml_collections
import numpy as np

from gan_jax import data, input_pipeline, metrics, paths
from gan_jax.errors import UserError

# images [N, H, W, C] -> (features [N, D], logits [N, K]); its second argument names them.
Embed = Callable[[np.ndarray, str], tuple[np.ndarray, np.ndarray]]


def cache_dir(override: str = '') -> str:
  """The cache folder: `override`, else $GAN_JAX_CACHE, else $XDG_CACHE_HOME/gan_jax."""
  xdg = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
  return override or os.environ.get('GAN_JAX_CACHE') or os.path.join(xdg, 'gan_jax')


def cache_path(root: str, name: str, *keys: str | bytes) -> str:
  """`root/name_<digest>`: the digest of `keys` changes with the weights or the data."""
  digest = hashlib.sha256()
  for key in keys:
    digest.update(hashlib.sha256(key.encode() if isinstance(key, str) else key).digest())
  return os.path.join(root, f'{name}_{digest.hexdigest()[:16]}')


def write_cache(path: str, write: Callable[[BinaryIO], None]) -> None:
  """`paths.write_atomically`, for a cache: a failure only warns."""
  try:
    paths.write_atomically(path, write)
  except OSError as e:  # a read-only or full cache costs time, not the result
    logging.warning('Could not cache %s: %s', path, e)


class Reference(NamedTuple):
  """Real images' features [N, D] (None: statistics only), mean [D], covariance [D, D] and
  labels [N] (None: unlabelled)."""
  features: np.ndarray | None
  mu: np.ndarray
  sigma: np.ndarray
  labels: np.ndarray | None = None


def _from_features(features: np.ndarray, labels: np.ndarray | None) -> Reference:
  return Reference(features, *map(np.asarray, metrics.feature_statistics(features)), labels)


def _cached(path: str, compute: Callable[[], Reference]) -> Reference:
  """The Reference cached at `path` (.npz), or `compute()`d and cached there."""
  cached = paths.path(path)
  if cached.exists():
    with cached.open('rb') as f, np.load(f) as saved:
      return Reference(saved['features'], saved['mu'], saved['sigma'],
                       saved['labels'] if 'labels' in saved else None)
  reference = compute()
  arrays = {k: v for k, v in reference._asdict().items() if v is not None}
  write_cache(path, lambda f: np.savez(f, **arrays))
  return reference


def of_images(embed: Embed, keys: tuple[str, ...], images: np.ndarray, name: str, cache: str,
              labels: np.ndarray | None = None) -> Reference:
  """The Reference of real `images`, from the cache or embedded and cached.

  Args:
    embed: the feature space.
    keys: what else than the images changes the features (weights' sha256, resizing).
    images: the real images, as `embed` takes them.
    name: names the cache file and the images in progress lines.
    cache: the cache folder.
    labels: their classes, kept for per-class metrics; None if unlabelled.
  """
  path = cache_path(cache, f'{name}_{len(images)}', *keys, images.tobytes(),
                    b'' if labels is None else labels.tobytes()) + '.npz'
  return _cached(path, lambda: _from_features(embed(images, name)[0], labels))


def of_split(embed: Embed, keys: tuple[str, ...], config: ml_collections.ConfigDict, split: str,
             count: int, cache: str, chunk_size: int = 5000) -> Reference:
  """The Reference of the first `count` (0: all) images of a data set's split, as training
  fits them (config.data.image_size, crop, channels), read `chunk_size` at a time so that a
  large data set is never in memory at once.

  The cache key hashes the images: reading them again is quick beside embedding them.
  """
  shape = input_pipeline.data_shape(config)
  source, _ = data.load(config, split)
  count = min(count or len(source), len(source))
  if count < metrics.MIN_SAMPLES:
    raise UserError(f'The {split} split of {config.dataset!r} has {count} images; scoring needs '
                    f'at least {metrics.MIN_SAMPLES}.')

  def chunks():
    for begin in range(0, count, chunk_size):
      examples = source.__getitems__(range(begin, min(begin + chunk_size, count)))
      yield input_pipeline.fit_examples(examples, shape, config.data.crop)

  digest = hashlib.sha256()
  labels = []
  for images, chunk_labels in chunks():
    digest.update(images.tobytes())
    labels.append(chunk_labels)
  labels = np.concatenate(labels)
  name = f'{config.dataset.replace("/", "_")}_{split}_{count}_{"x".join(map(str, shape))}'
  path = cache_path(cache, name, *keys, digest.digest(), labels.tobytes()) + '.npz'

  def compute():
    what = f'{config.dataset} {split} images'
    return _from_features(np.concatenate([embed(images, what)[0] for images, _ in chunks()]),
                          labels)
  return _cached(path, compute)


def of_statistics(path: str) -> Reference:
  """Published statistics: an .npz with `mu` [D] and `sigma` [D, D] (pytorch-fid's, TTUR's)."""
  try:
    with paths.path(path).open('rb') as f, np.load(f) as saved:
      mu, sigma = saved['mu'], saved['sigma']
  except (OSError, ValueError, KeyError) as e:
    raise UserError(f'{path} is not a statistics file with arrays mu [D] and sigma [D, D] '
                    f'({e}).') from e
  if mu.ndim != 1 or sigma.shape != (len(mu), len(mu)):
    raise UserError(f'{path} holds mu {list(mu.shape)} and sigma {list(sigma.shape)}; expected '
                    '[D] and [D, D].')
  return Reference(None, mu.astype(np.float64), sigma.astype(np.float64))
