"""Training and reference data: every data set is a random-access source plus a DatasetInfo.

An image source is a sequence (`len`, `__getitem__`, `__getitems__`) of {'image': uint8
[H, W, C], 'label': int} examples: MNIST and Fashion-MNIST from their IDX files (idx.py),
any tfds image data set by name (tfds_source.py), or a folder or zip of images (folder.py).
input_pipeline.py turns any of them into batches; the toy mixtures are drawn, not read.
"""
import functools
from typing import Any, NamedTuple

import ml_collections

from gan_jax.errors import UserError


class DatasetInfo(NamedTuple):
  """What the rest of the code needs to know about a data set."""
  shape: tuple[int | None, ...]  # of one example (None: a side that varies between images)
  kind: str  # 'image': uint8 pixels scaled to [-1, 1]; 'points': 2-D points as they are
  # Labels come with every example: image classes, or the mode a toy point was drawn from.
  num_classes: int
  class_names: tuple[str, ...] = ()  # where the data set names its classes


TOY_DATASETS = {'ring8': 8, 'grid25': 25}  # name: modes
IDX_DATASETS = ('fashion_mnist', 'mnist')  # read from their IDX files (idx.py)
IMAGE_FOLDER = 'image_folder'
_IDX_INFO = DatasetInfo(shape=(28, 28, 1), kind='image', num_classes=10)
# What `config.dataset` may name besides any tfds image data set (cifar10, celeb_a, ...).
BUILT_IN = (*TOY_DATASETS, *IDX_DATASETS, IMAGE_FOLDER)


def is_toy(name: str) -> bool:
  return name in TOY_DATASETS


def _tfds_source():
  # Imported on use: the catalog's look-ups cost seconds, which toy and IDX runs need not pay.
  from gan_jax.data import tfds_source  # pylint: disable=import-outside-toplevel
  return tfds_source


@functools.lru_cache(maxsize=4)
def _folder(path: str, data_dir: str, image_size: int, channels: int, crop: str,
            folder_labels: bool) -> tuple[Any, DatasetInfo]:
  """folder.load, once per process for the same arguments: validating, resolving and reading
  a config each open the folder's copy, and a large folder takes a while to list."""
  if not path:
    raise UserError('config.dataset=image_folder reads your images from a folder or a .zip: '
                    'pass --config.data.path=DIR_OR_ZIP.')
  from gan_jax.data import folder  # pylint: disable=import-outside-toplevel
  return folder.load(path, data_dir=data_dir, image_size=image_size, channels=channels,
                     crop=crop, folder_labels=folder_labels)


def load(config: ml_collections.ConfigDict, split: str = 'train') -> tuple[Any, DatasetInfo]:
  """Prepares `config.dataset` once (later calls find it prepared) and opens `split`.

  Returns:
    (source, info): the random-access examples as the data set holds them, and its info.
  """
  name = config.dataset
  if is_toy(name):
    raise UserError(f'{name!r} is a toy data set: its points are drawn, not read.')
  if name in IDX_DATASETS:
    from gan_jax.data import idx  # pylint: disable=import-outside-toplevel
    source = idx.load_source(name, split, manual_dir=config.data.manual_dir,
                             data_dir=config.data.data_dir)
    return source, _IDX_INFO
  if name == IMAGE_FOLDER:
    if split != 'train':
      raise UserError(f'An image folder has one split, train; {split!r} was asked for.')
    data = config.data
    return _folder(data.path, data.data_dir, data.image_size, data.channels, data.crop,
                   data.folder_labels)
  loaded = _tfds_source().load(name, split, data_dir=config.data.data_dir,
                               manual_dir=config.data.manual_dir)
  _fitted_info.cache_clear()  # prepared now: class names may come from the data themselves
  return loaded


def source_info(config: ml_collections.ConfigDict) -> DatasetInfo:
  """The info of `config.dataset` as it is stored, read without preparing where possible."""
  name = config.dataset
  if is_toy(name):
    return DatasetInfo(shape=(2,), kind='points', num_classes=TOY_DATASETS[name])
  if name in IDX_DATASETS:
    return _IDX_INFO
  if name == IMAGE_FOLDER:  # a folder's shape is known once it is prepared
    return load(config)[1]
  tfds_source = _tfds_source()
  if name.split(':')[0].partition('/')[0].lower() not in tfds_source.catalogue():
    raise tfds_source.unknown_name_error(name, BUILT_IN)
  return tfds_source.info(name, data_dir=config.data.data_dir)


def _is_resolved(config: ml_collections.ConfigDict) -> bool:
  return config.data.num_classes >= 0 and bool(config.data.shape)


def info(config: ml_collections.ConfigDict) -> DatasetInfo:
  """The info of the examples training sees: images cropped and resized to
  config.data.image_size and given config.data.channels, where those are set.

  A config that `resolve` filled in answers by itself: sampling a workdir needs no data.
  """
  if _is_resolved(config):
    return DatasetInfo(tuple(config.data.shape), 'points' if is_toy(config.dataset) else 'image',
                       config.data.num_classes, tuple(config.data.class_names))
  return _fitted_info(config.dataset, config.data.path, config.data.data_dir,
                      config.data.manual_dir, config.data.image_size, config.data.channels,
                      config.data.crop, config.data.folder_labels)


def resolve(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Fills in config.data's shape, num_classes and class_names from the data set (preparing a
  folder once), in place; the workdir's config.json keeps them."""
  facts = info(config)
  config.data.shape = facts.shape
  config.data.num_classes = facts.num_classes
  config.data.class_names = facts.class_names
  return config


@functools.lru_cache(maxsize=16)
def _fitted_info(dataset: str, path: str, data_dir: str, manual_dir: str, image_size: int,
                 channels: int, crop: str, folder_labels: bool) -> DatasetInfo:
  config = ml_collections.ConfigDict(dict(dataset=dataset, data=dict(
      path=path, data_dir=data_dir, manual_dir=manual_dir, image_size=image_size,
      channels=channels, crop=crop, folder_labels=folder_labels)))
  stored = source_info(config)
  if stored.kind == 'points':
    return stored
  height, width, stored_channels = stored.shape
  size = config.data.image_size
  if not size:
    if height is None or width is None:
      raise UserError(f'The images of {config.dataset!r} differ in size: pass '
                      '--config.data.image_size=SIDE (e.g. 64) to crop and resize them to one.')
    if height != width and config.data.crop != 'center':
      raise UserError(f'The images of {config.dataset!r} are {height}x{width}, not square: '
                      "pass --config.data.image_size=SIDE, or --config.data.crop=center.")
    size = min(height, width)
  return stored._replace(shape=(size, size, config.data.channels or stored_channels))
