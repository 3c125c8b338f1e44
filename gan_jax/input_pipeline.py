"""Training data as checkpointable grain iterators: IDX images and 2-D Gaussian mixtures.

Batches are dicts {'data': examples, 'label': int32 classes}: the labels travel with the
examples to the train step, where conditional models use them and others ignore them.

Every data set runs through the same grain pipeline (shard per host, batch, group the
`n_critic` batches of one generator step), so its iterator state checkpoints the same way.
"""
import functools
import sys
from typing import NamedTuple

import grain
import ml_collections
import numpy as np
from PIL import Image

from gan_jax import idx_dataset
from gan_jax.errors import UserError, unknown_name_error


class DatasetInfo(NamedTuple):
  """What the rest of the code needs to know about a data set."""
  shape: tuple[int, ...]  # of one example
  kind: str  # 'image': uint8 pixels scaled to [-1, 1]; 'points': 2-D points as they are
  # Labels come with every example: image classes, or the mode a toy point was drawn from.
  num_classes: int


DATASETS: dict[str, DatasetInfo] = {
    'fashion_mnist': DatasetInfo(shape=(28, 28, 1), kind='image', num_classes=10),
    'mnist': DatasetInfo(shape=(28, 28, 1), kind='image', num_classes=10),
    'ring8': DatasetInfo(shape=(2,), kind='points', num_classes=8),
    'grid25': DatasetInfo(shape=(2,), kind='points', num_classes=25),
}


def _info(name: str) -> DatasetInfo:
  if name not in DATASETS:
    raise unknown_name_error('dataset', name, DATASETS)
  return DATASETS[name]


def num_classes(dataset: str) -> int:
  """How many classes the labels of `dataset` take (0, 1, ..., num_classes - 1)."""
  return _info(dataset).num_classes


def data_shape(config: ml_collections.ConfigDict) -> tuple[int, ...]:
  """The shape of one training example: the data set's, with images resized to
  config.data.image_size when it is set."""
  shape = _info(config.dataset).shape
  if config.data.image_size:
    return (config.data.image_size, config.data.image_size) + shape[2:]
  return shape


def _resize(images: np.ndarray, size: int) -> np.ndarray:
  """Resizes uint8 images [N, H, W, C] to [N, size, size, C], bilinear as torchvision's Resize."""
  squeeze = images.shape[-1] == 1  # PIL takes grey images as 2-D arrays
  resized = [np.asarray(Image.fromarray(image[..., 0] if squeeze else image)
                        .resize((size, size), Image.Resampling.BILINEAR)) for image in images]
  return np.stack(resized)[..., None] if squeeze else np.stack(resized)


def load_examples(config: ml_collections.ConfigDict, split: str = 'train', process_index: int = 0,
                  process_count: int = 1) -> tuple[np.ndarray, np.ndarray]:
  """This host's share of an image data set's split: uint8 images [N, H, W, C], resized as
  configured, and their int32 labels [N].

  Reads from config.data.manual_dir / data_dir in one batched call: reading records one at
  a time costs ~4x more. Training uses only the first config.data.num_examples (if > 0) of
  its split; host i gets examples i, i + n, i + 2n, ... of them for n hosts.
  """
  source = idx_dataset.load_source(config.dataset, split, manual_dir=config.data.manual_dir,
                                   data_dir=config.data.data_dir)
  count = len(source)
  if split == 'train' and config.data.num_examples:
    count = min(config.data.num_examples, count)
  examples = source.__getitems__(range(process_index, count, process_count))
  images = np.stack([example['image'] for example in examples])
  labels = np.array([example['label'] for example in examples], np.int32)
  if config.data.image_size:
    images = _resize(images, config.data.image_size)
  return images, labels


def toy_modes(name: str) -> tuple[np.ndarray, float]:
  """Returns the mode centers [K, 2] and the per-coordinate std of toy data set `name`.

  These are the benchmarks of Unrolled GAN, VEEGAN and PacGAN: 'ring8' has 8 modes on a
  circle of radius 2 with std 0.02, 'grid25' 25 modes on {-4, -2, 0, 2, 4}^2 with std 0.05.
  """
  if _info(name).kind != 'points':
    raise UserError(f'{name!r} is not a toy data set; toy ones: '
                    f'{", ".join(n for n, i in DATASETS.items() if i.kind == "points")}.')
  if name == 'ring8':
    angles = 2 * np.pi * np.arange(8) / 8
    return 2 * np.stack([np.cos(angles), np.sin(angles)], axis=1), 0.02
  axis = np.arange(-4, 5, 2, dtype=np.float64)
  return np.stack(np.meshgrid(axis, axis, indexing='ij'), axis=-1).reshape(-1, 2), 0.05


def _toy_batch(index: int, *, centers: np.ndarray, std: float, seed: int,
               batch_size: int) -> dict[str, np.ndarray]:
  """Draws toy batch number `index` of the whole stream; equal arguments, equal batch.

  Each point's label is the mode it was drawn from.
  """
  # One generator per batch, not per point: seeding costs as much as drawing a whole batch.
  rng = np.random.default_rng([seed, index])
  modes = rng.integers(len(centers), size=batch_size)
  points = centers[modes] + std * rng.standard_normal((batch_size, 2))
  return {'data': points.astype(np.float32), 'label': modes.astype(np.int32)}


def _scale(images: np.ndarray) -> np.ndarray:
  """Maps uint8 pixels to float32 in [-1, 1]."""
  return images.astype(np.float32) / np.float32(127.5) - np.float32(1)


def create_dataset(config: ml_collections.ConfigDict, process_index: int = 0,
                   process_count: int = 1) -> grain.IterDataset:
  """Returns this host's endless stream of training data for one generator step each.

  Args:
    config: reads dataset, data.*, batch_size (global), n_critic and seed.
    process_index: this host's index, `jax.process_index()`.
    process_count: the number of hosts, `jax.process_count()`.
  Returns:
    A dataset of batches {'data': float32 [n_critic, batch_size // process_count, *shape],
    'label': int32 [n_critic, batch_size // process_count]}; its iterator's state goes into
    checkpoints with `grain.checkpoint.CheckpointSave`.
  """
  info = _info(config.dataset)
  if config.batch_size % process_count:
    raise UserError(f'config.batch_size={config.batch_size} does not divide over '
                    f'{process_count} hosts; use a multiple of {process_count}.')
  host_batch_size = config.batch_size // process_count
  # Every batch() drops remainders although the streams are endless: grain computes a
  # batched length in floating point otherwise, which overflows for sys.maxsize.
  if info.kind == 'image':
    # This host's shard, held in memory (47 MB for all of Fashion-MNIST); batches of
    # indices gather their examples, scaled once per batch rather than per image.
    images, labels = load_examples(config, 'train', process_index, process_count)
    if len(images) < host_batch_size:
      raise UserError(f'{len(images)} training images per host cannot fill batches of '
                      f'{host_batch_size}; raise config.data.num_examples or lower batch_size.')
    ds = (grain.MapDataset.range(len(images))
          .shuffle(seed=config.seed)
          .repeat()  # reshuffled every epoch
          .batch(host_batch_size, drop_remainder=True)
          .map(lambda rows: {'data': _scale(images[rows]), 'label': labels[rows]}))
  else:
    # An endless stream of batch indices; host i draws batches i, i + n, i + 2n, ...
    centers, std = toy_modes(config.dataset)
    ds = (grain.MapDataset.range(sys.maxsize)[process_index::process_count]
          .map(functools.partial(_toy_batch, centers=centers, std=std, seed=config.seed,
                                 batch_size=host_batch_size)))
  ds = ds.batch(config.n_critic, drop_remainder=True)
  return ds.to_iter_dataset(grain.ReadOptions(num_threads=config.data.num_threads,
                                              prefetch_buffer_size=config.data.prefetch))
