"""Any tfds image data set by name, prepared once as array_record and read without TensorFlow.

`info` reads a data set's shapes and classes from tfds's catalog before anything is prepared;
`load` prepares it on first use (downloading unless it must be downloaded by hand) and returns
a random-access source of {'image', 'label'} examples, as gan_jax/data/__init__.py describes.
"""
import difflib
import urllib.error

from etils import epath
import numpy as np
import requests
import tensorflow_datasets as tfds

from gan_jax.data import DatasetInfo, prepare
from gan_jax.data.tensorflow_stand_in import TensorFlowNeeded, tensorflow_stand_in
from gan_jax.errors import UserError

_CATALOG = 'https://www.tensorflow.org/datasets/catalog/overview'
# What a failed download raises: requests (http), urllib (ftp), tfds (HTTP status, checksum).
_DOWNLOAD_ERRORS = (requests.RequestException, urllib.error.URLError, tfds.download.DownloadError,
                    tfds.download.download_manager.NonMatchingChecksumError)


def _one_line(text: str) -> str:
  return ' '.join(str(text).split())


def catalogue() -> list[str]:
  """The names of the data sets in the installed tfds catalog (offline)."""
  return tfds.list_builders(with_community_datasets=False)


def unknown_name_error(name: str, also_valid: tuple[str, ...] = ()) -> UserError:
  """The UserError for a data set name that neither tfds nor `also_valid` knows: the closest
  names of both."""
  base = name.split(':')[0].partition('/')[0]
  names = list(dict.fromkeys([*also_valid, *catalogue()]))  # fashion_mnist is both
  close = difflib.get_close_matches(base.lower(), names, n=3, cutoff=0.7)
  hint = f' Did you mean {" or ".join(map(repr, close))}?' if close else ''
  built_in = f'{", ".join(also_valid)} or ' if also_valid else ''
  return UserError(f'Unknown data set {base!r}.{hint} Valid: {built_in}the tfds data sets with '
                   f'images listed at {_CATALOG}.')


def _unknown_name_error(name: str, error: Exception) -> UserError:
  """Returns the UserError for a name tfds does not know: the closest data sets or configs."""
  base, _, config = name.split(':')[0].partition('/')
  if base.lower() not in catalogue():
    return unknown_name_error(name)
  configs = [c.name for c in tfds.builder_cls(base.lower()).BUILDER_CONFIGS]
  if config and config not in configs:
    close = difflib.get_close_matches(config, configs, n=1, cutoff=0.7)
    hint = f' Did you mean {base}/{close[0]}?' if close else ''
    return UserError(f'tfds data set {base!r} has no config {config!r}.{hint} '
                     f'Valid: {", ".join(configs) or "none"}.')
  return UserError(f'tfds cannot load {name!r}: {_one_line(error)}')


def _builder(name: str, data_dir: str) -> tfds.core.DatasetBuilder:
  """Returns tfds's builder of `name` ('cifar10', 'lsun/bedroom', 'mnist:3.0.1')."""
  try:
    # array_record, unlike tfds's default tfrecord, is written and read without TensorFlow.
    return tfds.builder(name, data_dir=data_dir or None, file_format='array_record')
  except (tfds.core.DatasetNotFoundError, ValueError, AssertionError) as e:
    # tfds raises ValueError for an unknown config and AssertionError for an unknown version.
    raise _unknown_name_error(name, e) from e


def _image_info(builder: tfds.core.DatasetBuilder) -> DatasetInfo:
  """Returns the DatasetInfo of a builder's 'image' and 'label' features, or a UserError."""
  features = builder.info.features
  name = builder.info.full_name
  if 'image' not in features:
    raise UserError(f'tfds data set {name!r} has no \'image\' feature (its features: '
                    f'{", ".join(features.keys())}); gan_jax trains on image data sets.')
  image = features['image']
  shape = tuple(image.shape)
  if len(shape) != 3 or np.dtype(image.np_dtype) != np.uint8:
    raise UserError(f'tfds data set {name!r} has {np.dtype(image.np_dtype)} images of shape '
                    f'{shape}; gan_jax trains on uint8 [height, width, channels] images.')
  label = features['label'] if 'label' in features else None
  if not isinstance(label, tfds.features.ClassLabel):
    return DatasetInfo(shape=shape, kind='image', num_classes=0)
  return DatasetInfo(shape=shape, kind='image', num_classes=label.num_classes,
                     class_names=tuple(label.names))


def info(name: str, *, data_dir: str = '') -> DatasetInfo:
  """Returns the DatasetInfo of tfds data set `name` without preparing or downloading it.

  Args:
    name: a tfds name, with an optional config and version: 'cifar10', 'lsun/bedroom'.
    data_dir: where tfds keeps prepared data sets; '' for tfds's default.
  Returns:
    Its image shape (H, W, C) (None for sides that vary between images, as in
    'imagenet2012'), kind 'image', and its 'label' classes (0 and () without a 'label').
    Class names are those of tfds's catalog code until the data set is prepared, which may
    read the real ones from its download (cifar10's are '0'..'9' until then).
  """
  return _image_info(_builder(name, data_dir))


def _manual_dir(builder: tfds.core.DatasetBuilder, manual_dir: str) -> epath.Path:
  """Returns the folder tfds reads manual downloads from: `manual_dir` or its default."""
  return epath.Path(manual_dir or builder.data_dir_root / 'downloads' / 'manual').expanduser()


def _check_manual_download(builder: tfds.core.DatasetBuilder, manual_dir: str) -> None:
  """Raises a UserError where a data set to prepare needs files nobody has put in place."""
  instructions = builder.MANUAL_DOWNLOAD_INSTRUCTIONS
  if not instructions or builder.data_path.exists():
    return
  folder = _manual_dir(builder, manual_dir)
  if folder.is_dir() and any(folder.iterdir()):
    return  # which files a builder needs is in its instructions; tfds checks them
  where = ('' if manual_dir else
           ' (or into another folder passed as --config.data.manual_dir=FOLDER)')
  raise UserError(f'tfds data set {builder.info.full_name!r} must be downloaded by hand into '
                  f'{folder}{where}: {_one_line(instructions)}')


def _download_hint(builder: tfds.core.DatasetBuilder, manual_dir: str) -> str:
  """Tells how to fetch a builder's files on another machine, where tfds knows their names."""
  urls = {url: url_info.filename for url, url_info in (builder.url_infos or {}).items()
          if url_info.filename}
  if not urls:
    return ''
  folder = _manual_dir(builder, manual_dir)
  files = '; '.join(f'{url} as {folder / filename}' for url, filename in urls.items())
  return f' Without internet, download {files}, then rerun.'


def _tensorflow_needed(error: BaseException) -> TensorFlowNeeded | None:
  """Returns the TensorFlowNeeded behind `error`, if one is: tfds wraps errors of its threads."""
  while error is not None and not isinstance(error, TensorFlowNeeded):
    error = error.__cause__ or error.__context__
  return error


def _prepare(builder: tfds.core.DatasetBuilder, manual_dir: str) -> None:
  """Downloads and prepares a data set once, as array_record, without TensorFlow."""
  name = builder.info.full_name
  config = tfds.download.DownloadConfig(
      manual_dir=manual_dir or None,
      # tfds's prepared copies on GCS are tfrecord, which only TensorFlow reads.
      try_download_gcs=False)
  source = (f' from {_manual_dir(builder, manual_dir)}'
            if builder.MANUAL_DOWNLOAD_INSTRUCTIONS else '')
  try:
    # tfds encodes numpy images and reads downloads through TensorFlow, which gan_jax does not
    # install: the stand-in answers those calls (tensorflow_stand_in.py lists them).
    with tensorflow_stand_in():
      try:
        prepare.prepare(builder, f'tfds data set {name}{source}', download_config=config)
      except _DOWNLOAD_ERRORS as e:
        raise UserError(f'Could not get the files of tfds data set {name!r} '
                        f'({_one_line(e)}).{_download_hint(builder, manual_dir)}') from e
  except UserError:
    raise
  except Exception as e:
    needed = _tensorflow_needed(e)
    if needed is None:
      raise
    raise UserError(f'Preparing tfds data set {name!r} calls TensorFlow ({needed}); install '
                    'tensorflow, or prepare it once on a machine that has it, with '
                    "file_format='array_record', into the same data_dir.") from e


def _check_split(builder: tfds.core.DatasetBuilder, split: str) -> None:
  """Raises a UserError for a split the prepared data set lacks ('train', 'train[:10%]+test')."""
  known = list(builder.info.splits)
  if not known:
    return  # tfds knows no splits (e.g. under tfds.testing.mock_data): it accepts any
  for part in split.split('+'):
    base = part.split('[')[0].strip()
    if base not in known:
      raise UserError(f'tfds data set {builder.info.full_name!r} has no split {base!r}. '
                      f'Valid: {", ".join(known)}.')


class ImageLabelSource:
  """A tfds data source's examples as {'image': uint8 [H, W, C], 'label': int64}.

  Other features are dropped, so examples batch alike for every data set; 'label' is 0 where
  the data set has no ClassLabel 'label'.
  """

  def __init__(self, source, has_label: bool):
    self._source = source
    self._has_label = has_label

  def _example(self, example: dict) -> dict:
    label = example['label'] if self._has_label else 0
    return {'image': example['image'], 'label': np.int64(label)}

  def __len__(self) -> int:
    return len(self._source)

  def __getitem__(self, index: int) -> dict:
    return self._example(self._source[index])

  def __getitems__(self, indices) -> list[dict]:
    # One call for all: ~4x faster than reading one at a time.
    return [self._example(example) for example in self._source.__getitems__(indices)]

  def __iter__(self):
    # Without it, `for` would index until an IndexError, which tfds's sources never raise.
    for index in range(len(self)):
      yield self[index]

  def __repr__(self) -> str:
    return f'ImageLabelSource({self._source!r})'


def load(name: str, split: str, *, data_dir: str = '',
         manual_dir: str = '') -> tuple[ImageLabelSource, DatasetInfo]:
  """Prepares tfds data set `name` once, then returns a random-access source of `split`.

  Args:
    name: a tfds name, with an optional config and version: 'cifar10', 'lsun/bedroom'.
    split: a tfds split: 'train', 'test', 'train[:90%]'.
    data_dir: where tfds keeps prepared data sets (and its downloads, under downloads/);
      '' for tfds's default.
    manual_dir: '' or the folder of files downloaded by hand: for data sets that need it
      ('imagenet2012'), or a catalog download's file under its registered name (see the
      error a failed download raises); '' for tfds's <data_dir>/downloads/manual.
  Returns:
    (source, info): a sequence of {'image': uint8 [H, W, C], 'label': int64} examples, and
    the data set's DatasetInfo (see `info`).
  """
  builder = _builder(name, data_dir)
  _image_info(builder)  # a data set without images fails here, before any download
  _check_manual_download(builder, manual_dir)
  _prepare(builder, manual_dir)
  _check_split(builder, split)
  source = builder.as_data_source(split=split)
  # Preparing may have read the class names from the download (cifar10's batches.meta.txt).
  dataset_info = _image_info(builder)
  return ImageLabelSource(source, has_label=dataset_info.num_classes > 0), dataset_info
