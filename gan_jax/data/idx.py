"""A TensorFlow-free tfds builder for MNIST and Fashion-MNIST from the standard IDX files.

tfds's own `mnist` and `fashion_mnist` builders need TensorFlow; this one parses the IDX
files with numpy and writes array_record, which grain reads without TensorFlow.
"""
import gzip
import os
import zlib

import numpy as np
import tensorflow_datasets as tfds

from gan_jax.data import prepare
from gan_jax.errors import UserError

# Where Debian's `dataset-*` packages install data sets.
SYSTEM_DIR = '/usr/share/datasets'
_SYSTEM_SUBDIRS = {'fashion_mnist': 'fashion-mnist', 'mnist': 'mnist'}
_URLS = {
    'fashion_mnist': 'http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/',
    'mnist': 'https://storage.googleapis.com/cvdf-datasets/mnist/',
}
# Split -> (images file, labels file), without the optional '.gz'.
_SPLIT_FILES = {
    'train': ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte'),
    'test': ('t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'),
}
_FILE_NAMES = tuple(name for pair in _SPLIT_FILES.values() for name in pair)
_IMAGES_MAGIC, _LABELS_MAGIC = 2051, 2049  # uint8 data with 3 and 1 dimensions
_IMAGE_SIZE, _NUM_CLASSES = 28, 10


def _how_to_get(name: str) -> str:
  """Tells the user how to obtain the IDX files of data set `name`."""
  files = ', '.join(f + '.gz' for f in _FILE_NAMES)
  steps = (f'download {files} from {_URLS[name]} into a folder and pass '
           '--config.data.manual_dir=FOLDER')
  if name == 'fashion_mnist':
    steps = f'run `sudo apt-get install dataset-fashion-mnist`, or {steps}'
  return f'To get the {name} files, {steps}.'


def _find(folder: str) -> tuple[dict[str, str], list[str]]:
  """Returns ({file name: path} of the IDX files found in `folder`, names missing)."""
  found, missing = {}, []
  for name in _FILE_NAMES:
    paths = [p for p in (os.path.join(folder, name + '.gz'), os.path.join(folder, name))
             if os.path.isfile(p)]
    if paths:
      found[name] = paths[0]
    else:
      missing.append(name + '.gz')
  return found, missing


def _read_idx(path: str | os.PathLike[str], magic: int, hint: str) -> np.ndarray:
  """Reads an IDX file of uint8 data, gzipped or not.

  Args:
    path: the file.
    magic: the expected magic number, 2051 for images or 2049 for labels.
    hint: how to get a good copy, appended to any error.
  Returns:
    The data, shaped as the header says.
  """
  def fail(problem):
    raise UserError(f'{os.fspath(path)} is not a valid IDX file: {problem}. {hint}')

  with open(path, 'rb') as f:
    data = f.read()
  if data[:2] == b'\x1f\x8b':  # the gzip magic: files may be stored compressed or not
    try:
      data = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as e:
      fail(f'its gzip stream is damaged or truncated ({e})')
  header_size = 4 + 4 * (magic & 0xff)  # the magic's low byte is the number of dimensions
  if len(data) < header_size:
    fail(f'it is truncated to {len(data)} bytes, shorter than its header')
  found = int.from_bytes(data[:4], 'big')
  if found != magic:
    fail(f'magic number {found}, expected {magic}')
  shape = tuple(int(d) for d in np.frombuffer(data, '>u4', count=magic & 0xff, offset=4))
  if magic == _IMAGES_MAGIC and shape[1:] != (_IMAGE_SIZE, _IMAGE_SIZE):
    fail(f'images are {shape[1]}x{shape[2]}, expected {_IMAGE_SIZE}x{_IMAGE_SIZE}')
  size = header_size + int(np.prod(shape))
  if len(data) != size:
    fail(f'it has {len(data)} bytes, its header says {size}'
         + (' (truncated)' if len(data) < size else ''))
  return np.frombuffer(data, np.uint8, offset=header_size).reshape(shape)


class IdxImages(tfds.core.GeneratorBasedBuilder):
  """MNIST or Fashion-MNIST (the builder config) from the four IDX files.

  The files come from the first of: `manual_dir`; Debian's /usr/share/datasets/<name>;
  a download of the official files.
  """
  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'First release.'}
  code_path = None  # tfds looks for a checksums file beside the builder's code: none here
  BUILDER_CONFIGS = [
      tfds.core.BuilderConfig(name='fashion_mnist', description="Zalando's article images."),
      tfds.core.BuilderConfig(name='mnist', description='Handwritten digits.'),
  ]

  def __init__(self, *, manual_dir: str = '', file_format: str = 'array_record', **kwargs):
    """Takes tfds's builder arguments, and `manual_dir`: '' or a folder of the IDX files."""
    # Our own argument, not tfds's DownloadConfig.manual_dir: tfds substitutes a shared
    # default folder for an empty one, and a folder the user named must not be skipped.
    self._manual_dir = manual_dir
    # array_record, unlike tfds's default tfrecord, is written and read without TensorFlow.
    super().__init__(file_format=file_format, **kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description=self.builder_config.description,
        features=tfds.features.FeaturesDict({
            'image': tfds.features.Tensor(shape=(_IMAGE_SIZE, _IMAGE_SIZE, 1), dtype=np.uint8),
            'label': tfds.features.ClassLabel(num_classes=_NUM_CLASSES),
        }),
        supervised_keys=('image', 'label'),
        homepage=_URLS[self.builder_config.name],
        # Keeps record i of the IDX file at index i; grain shuffles at read time.
        disable_shuffling=True,
    )

  def source(self) -> str:
    """Where the IDX files come from: `manual_dir`; else Debian's folder if it holds all four;
    else the official download's URL."""
    name = self.builder_config.name
    if self._manual_dir:
      return self._manual_dir
    system_dir = os.path.join(SYSTEM_DIR, _SYSTEM_SUBDIRS[name])
    return _URLS[name] if _find(system_dir)[1] else system_dir

  def _idx_files(self, dl_manager: tfds.download.DownloadManager) -> dict[str, str]:
    """Returns {file name: path} of the four IDX files, from `source()`."""
    name = self.builder_config.name
    source = self.source()
    if source != _URLS[name]:
      found, missing = _find(source)
      if missing:  # Debian's folder is the source only when complete
        raise UserError(f'config.data.manual_dir={self._manual_dir!r} lacks {", ".join(missing)}. '
                        + _how_to_get(name))
      return found
    try:
      return dl_manager.download({f: _URLS[name] + f + '.gz' for f in _FILE_NAMES})
    except Exception as e:  # pylint: disable=broad-except
      # Downloads fail in many ways (DNS, proxy, HTTP status, checksum); all mean the same.
      raise UserError(f'Could not find or download the {name} IDX files ({e}). '
                      + _how_to_get(name)) from e

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    files = self._idx_files(dl_manager)
    hint = _how_to_get(self.builder_config.name)
    splits = {}
    for split, (images_file, labels_file) in _SPLIT_FILES.items():
      # Parsed here, not in the generator, so a bad file fails before tfds writes anything.
      images = _read_idx(files[images_file], _IMAGES_MAGIC, hint)
      labels = _read_idx(files[labels_file], _LABELS_MAGIC, hint)
      if len(images) != len(labels):
        raise UserError(f'{os.fspath(files[images_file])} has {len(images)} images but '
                        f'{os.fspath(files[labels_file])} has {len(labels)} labels. {hint}')
      if labels.size and labels.max() >= _NUM_CLASSES:
        raise UserError(f'{os.fspath(files[labels_file])} has label {labels.max()}, '
                        f'expected 0..{_NUM_CLASSES - 1}. {hint}')
      splits[split] = self._generate_examples(images, labels)
    return splits

  def _generate_examples(self, images: np.ndarray, labels: np.ndarray):
    for i, (image, label) in enumerate(zip(images, labels)):
      yield i, {'image': image[..., None], 'label': label}


def load_source(name: str, split: str, manual_dir: str = '', data_dir: str = ''):
  """Prepares data set `name` once, then returns a random-access source of `split`.

  Args:
    name: 'fashion_mnist' or 'mnist'.
    split: 'train' or 'test'.
    manual_dir: '' or a folder holding the four IDX files; only read while preparing.
    data_dir: where tfds keeps prepared data sets; '' for tfds's default.
  Returns:
    A sequence of {'image': uint8 [28, 28, 1], 'label': int} dicts.
  """
  if name not in _URLS:
    raise UserError(f'No IDX data set {name!r}; valid names: {", ".join(sorted(_URLS))}.')
  builder = IdxImages(config=name, data_dir=data_dir or None, manual_dir=manual_dir)
  prepare.prepare(builder, f'{name} from {builder.source()}')  # a no-op once it is in data_dir
  return builder.as_data_source(split=split)
