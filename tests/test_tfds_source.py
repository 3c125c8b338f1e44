"""Tests of gan_jax.data.tfds_source: tfds image data sets by name, without TensorFlow.

Tiny builders of our own go through tfds's real preparation; catalog data sets go through
tfds.testing.mock_data, or (cifar10) through their real builder fed a tiny fake download.
No test touches the network: `no_network` (conftest.py) fails any test that tries.
"""
import contextlib
import importlib.util
import io
import os
import tarfile

import numpy as np
from PIL import Image
import pytest
import tensorflow_datasets as tfds
from tensorflow_datasets.core.data_sources import array_record
from tensorflow_datasets.core.features import image_feature
# tfds's modules hold its lazy `tf` as a global; held as one here, pytest's collection would
# touch it and print tfds's "Failed to import TensorFlow".
from tensorflow_datasets.core.utils import lazy_imports_utils
from tensorflow_datasets.image_classification import cifar

from gan_jax.data import DatasetInfo, tfds_source
from gan_jax.data.tensorflow_stand_in import TensorFlowNeeded, tensorflow_stand_in
from gan_jax.errors import UserError
from tfds_mock import mock_tfds

# One xdist worker runs this module's tests: it prepares the module's `numpy_images` once.
pytestmark = [pytest.mark.xdist_group(__name__), pytest.mark.usefixtures('no_network')]

_HAS_TENSORFLOW = importlib.util.find_spec('tensorflow') is not None
_CHANNELS = {'gray': 1, 'rgb': 3, 'rgba': 4}
_CLASSES = ('cat', 'dog', 'emu')
_SPLIT_SIZES = {'train': 6, 'test': 2}
_CIFAR_CLASSES = ('airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse',
                  'ship', 'truck')


def _numpy_images(split: str, channels: int) -> list[np.ndarray]:
  seed = list(_SPLIT_SIZES).index(split) * 10 + channels
  rng = np.random.default_rng(seed)
  return [rng.integers(0, 256, (5, 7, channels), dtype=np.uint8)
          for _ in range(_SPLIT_SIZES[split])]


class GanJaxTestNumpyImages(tfds.core.GeneratorBasedBuilder):
  """Random 5x7 images that `_generate_examples` yields as numpy arrays, as catalog builders
  do (tfds encodes those with TensorFlow), with a 3-class label."""
  VERSION = tfds.core.Version('1.0.0')
  BUILDER_CONFIGS = [tfds.core.BuilderConfig(name=name) for name in _CHANNELS]

  def _info(self):
    channels = _CHANNELS[self.builder_config.name]
    return tfds.core.DatasetInfo(
        builder=self,
        features=tfds.features.FeaturesDict({
            'image': tfds.features.Image(shape=(5, 7, channels)),
            'label': tfds.features.ClassLabel(names=_CLASSES),
        }),
        disable_shuffling=True)  # example i of a split is image i

  def _split_generators(self, dl_manager):
    return {split: self._generate_examples(split) for split in _SPLIT_SIZES}

  def _generate_examples(self, split):
    for i, image in enumerate(_numpy_images(split, _CHANNELS[self.builder_config.name])):
      yield i, {'image': image, 'label': i % len(_CLASSES)}


class GanJaxTestManualImages(tfds.core.GeneratorBasedBuilder):
  """Images of varying sizes, without labels, from a file the user downloads by hand."""
  VERSION = tfds.core.Version('1.0.0')
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Download images.npz from https://example.org/images
  into the manual folder.
  """

  def _info(self):
    return tfds.core.DatasetInfo(
        builder=self,
        features=tfds.features.FeaturesDict({'image': tfds.features.Image()}),
        disable_shuffling=True)

  def _split_generators(self, dl_manager):
    with np.load(os.fspath(dl_manager.manual_dir / 'images.npz')) as arrays:
      images = [arrays[name] for name in sorted(arrays.files)]
    return {'train': self._generate_examples(images)}

  def _generate_examples(self, images):
    for i, image in enumerate(images):
      yield i, {'image': image}


class GanJaxTestNoImages(tfds.core.GeneratorBasedBuilder):
  """Numbers only: no 'image' feature."""
  VERSION = tfds.core.Version('1.0.0')

  def _info(self):
    return tfds.core.DatasetInfo(
        builder=self, features=tfds.features.FeaturesDict({'value': np.int64}))

  def _split_generators(self, dl_manager):
    raise AssertionError('a data set without images must fail before it is prepared')

  def _generate_examples(self):
    yield from ()


class GanJaxTestWalksWithTensorflow(tfds.core.GeneratorBasedBuilder):
  """Lists its download folder with tf.io.gfile.walk, which the stand-in does not answer."""
  VERSION = tfds.core.Version('1.0.0')

  def _info(self):
    return tfds.core.DatasetInfo(
        builder=self, features=tfds.features.FeaturesDict({'image': tfds.features.Image()}))

  def _split_generators(self, dl_manager):
    tf = lazy_imports_utils.tensorflow
    return {'train': self._generate_examples(list(tf.io.gfile.walk(dl_manager.download_dir)))}

  def _generate_examples(self, walked):
    yield from ()


@pytest.fixture(scope='module')
def numpy_images(tmp_path_factory):
  """The data_dir where 'gan_jax_test_numpy_images/rgb' is prepared."""
  data_dir = str(tmp_path_factory.mktemp('tfds'))
  tfds_source.load('gan_jax_test_numpy_images/rgb', 'train', data_dir=data_dir)
  return data_dir


@contextlib.contextmanager
def _registered_checksums(builder_cls, url_infos):
  """Makes tfds expect `url_infos` for `builder_cls`'s downloads, as if it shipped them."""
  # Set and deleted rather than mock.patch'ed: patching reads the inherited classproperty,
  # which tfds computes from the checksum files it ships.
  builder_cls.url_infos = url_infos
  try:
    yield
  finally:
    del builder_cls.url_infos


def _write_cifar10_archive(path: str, rng: np.random.Generator) -> dict[bytes, int]:
  """Writes cifar-10-binary.tar.gz as the real one is laid out, 3 images per batch file.

  Returns:
    {image as HWC bytes: label} of the train split.
  """
  train = {}
  with tarfile.open(path, 'w:gz') as archive:
    def add(name, data):
      member = tarfile.TarInfo('cifar-10-batches-bin/' + name)
      member.size = len(data)
      archive.addfile(member, io.BytesIO(data))

    for name in [f'data_batch_{i}.bin' for i in range(1, 6)] + ['test_batch.bin']:
      labels = rng.integers(0, 10, 3, dtype=np.uint8)
      planes = rng.integers(0, 256, (3, 3, 32, 32), dtype=np.uint8)  # [image, RGB, H, W]
      # Each record: 1 label byte, then the red, green and blue 32x32 planes.
      add(name, b''.join(bytes([label]) + image.tobytes() for label, image in zip(labels, planes)))
      if name != 'test_batch.bin':
        train.update((image.transpose(1, 2, 0).tobytes(), int(label))
                     for label, image in zip(labels, planes))
    add('batches.meta.txt', ('\n'.join(_CIFAR_CLASSES) + '\n\n').encode())
  return train


@pytest.mark.parametrize('config', list(_CHANNELS))
def test_numpy_images_are_prepared_without_tensorflow_and_read_back_exactly(tmp_path, config):
  source, info = tfds_source.load(f'gan_jax_test_numpy_images/{config}', 'train',
                                  data_dir=str(tmp_path))
  channels = _CHANNELS[config]
  assert info == DatasetInfo(shape=(5, 7, channels), kind='image', num_classes=3,
                             class_names=_CLASSES)
  expected = _numpy_images('train', channels)
  assert len(source) == len(expected)
  for i, (example, image) in enumerate(zip(source, expected)):
    assert set(example) == {'image', 'label'}
    assert example['image'].dtype == np.uint8
    np.testing.assert_array_equal(example['image'], image)  # PNG is lossless
    assert example['label'] == i % 3


def test_getitems_matches_getitem_and_reads_the_batch_in_one_call(numpy_images, monkeypatch):
  source, _ = tfds_source.load('gan_jax_test_numpy_images/rgb', 'test', data_dir=numpy_images)
  one_by_one = [source[1], source[0]]

  def read_one(self, key):
    raise AssertionError(f'record {key} read alone, not in its batch')

  monkeypatch.setattr(array_record.ArrayRecordDataSource, '__getitem__', read_one)
  batch = source.__getitems__([1, 0])
  for example, expected in zip(batch, one_by_one, strict=True):
    np.testing.assert_array_equal(example['image'], expected['image'])
    assert example['label'] == expected['label']


def test_split_slices_and_sums(numpy_images):
  name = 'gan_jax_test_numpy_images/rgb'
  assert len(tfds_source.load(name, 'train[:50%]', data_dir=numpy_images)[0]) == 3
  assert len(tfds_source.load(name, 'train+test', data_dir=numpy_images)[0]) == 8


def test_missing_split_lists_the_splits(numpy_images):
  with pytest.raises(UserError, match=r"no split 'validation'\. Valid: train, test\.$"):
    tfds_source.load('gan_jax_test_numpy_images/rgb', 'validation', data_dir=numpy_images)
  with pytest.raises(UserError, match="no split 'tset'"):
    tfds_source.load('gan_jax_test_numpy_images/rgb', 'train+tset[:5]', data_dir=numpy_images)


def test_info_reads_the_catalog_without_preparing(tmp_path):
  assert tfds_source.info('gan_jax_test_numpy_images/gray', data_dir=str(tmp_path)) == (
      DatasetInfo(shape=(5, 7, 1), kind='image', num_classes=3, class_names=_CLASSES))
  cifar10 = tfds_source.info('cifar10', data_dir=str(tmp_path))
  assert (cifar10.shape, cifar10.kind, cifar10.num_classes) == ((32, 32, 3), 'image', 10)
  assert tfds_source.info('celeb_a', data_dir=str(tmp_path)) == DatasetInfo(
      shape=(218, 178, 3), kind='image', num_classes=0)
  # Sides that vary between images are None: the caller must choose an image size.
  assert tfds_source.info('imagenet2012', data_dir=str(tmp_path)).shape == (None, None, 3)
  assert tfds_source.info('lsun/bedroom', data_dir=str(tmp_path)).shape == (None, None, 3)
  assert not os.listdir(tmp_path)


def test_mock_cifar10_gives_32x32_rgb_images_and_10_classes():
  with mock_tfds(num_examples=5):
    source, info = tfds_source.load('cifar10', 'train')
    examples = list(source)
    batch = source.__getitems__([4, 0, 2])
  assert (info.shape, info.kind, info.num_classes) == ((32, 32, 3), 'image', 10)
  assert len(info.class_names) == 10  # the catalog code's '0'..'9' until really prepared
  assert len(examples) == 5
  for example, index in zip(batch, [4, 0, 2], strict=True):
    np.testing.assert_array_equal(example['image'], examples[index]['image'])
    assert example['label'] == examples[index]['label']
  for example in examples:
    assert set(example) == {'image', 'label'}
    assert example['image'].shape == (32, 32, 3) and example['image'].dtype == np.uint8
    assert 0 <= example['label'] < 10


def test_mock_celeb_a_gives_218x178_images_and_label_0():
  with mock_tfds(num_examples=3):
    source, info = tfds_source.load('celeb_a', 'train')
    examples = list(source)
  assert info == DatasetInfo(shape=(218, 178, 3), kind='image', num_classes=0)
  for example in examples:
    assert set(example) == {'image', 'label'}
    assert example['image'].shape == (218, 178, 3) and example['image'].dtype == np.uint8
    assert example['label'] == 0


def test_real_cifar10_builder_prepares_its_archive_without_tensorflow(tmp_path):
  """tfds's own cifar10 code: extraction (tf.io.gfile in tfds), the builder's reads
  (tf.io.gfile.GFile in cifar.py) and numpy images (tf.image.encode_png)."""
  manual_dir = tmp_path / 'manual'
  manual_dir.mkdir()
  archive = str(manual_dir / 'cifar-10-binary.tar.gz')  # tfds's registered file name
  train = _write_cifar10_archive(archive, np.random.default_rng(0))
  url_info = tfds.download.checksums.compute_url_info(archive)
  url_info = tfds.download.checksums.UrlInfo(
      size=url_info.size, checksum=url_info.checksum, filename='cifar-10-binary.tar.gz')
  url = 'https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz'
  with _registered_checksums(cifar.Cifar10, {url: url_info}):
    source, info = tfds_source.load('cifar10', 'train', data_dir=str(tmp_path / 'tfds'),
                                    manual_dir=str(manual_dir))
  assert info == DatasetInfo(shape=(32, 32, 3), kind='image', num_classes=10,
                             class_names=_CIFAR_CLASSES)  # from batches.meta.txt
  assert len(source) == len(train) == 15
  read = {example['image'].tobytes(): int(example['label']) for example in source}
  assert read == train  # tfds shuffles the order, not the pairs


def test_manual_download_is_required_before_any_work(tmp_path):
  name = 'gan_jax_test_manual_images'
  default_folder = tmp_path / 'downloads' / 'manual'
  with pytest.raises(UserError) as error:
    tfds_source.load(name, 'train', data_dir=str(tmp_path))
  assert str(error.value) == (
      f"tfds data set '{name}/1.0.0' must be downloaded by hand into {default_folder} "
      '(or into another folder passed as --config.data.manual_dir=FOLDER): '
      'Download images.npz from https://example.org/images into the manual folder.')
  empty = tmp_path / 'empty'
  empty.mkdir()
  with pytest.raises(UserError, match=f'by hand into {empty}: Download images.npz'):
    tfds_source.load(name, 'train', data_dir=str(tmp_path), manual_dir=str(empty))
  with pytest.raises(UserError, match=r'ILSVRC2012_img_train\.tar'):
    tfds_source.load('imagenet2012', 'train', data_dir=str(tmp_path), manual_dir=str(empty))
  assert sorted(os.listdir(tmp_path)) == ['empty']  # nothing prepared, nothing downloaded


def test_manual_download_of_varying_sizes_without_labels(tmp_path):
  rng = np.random.default_rng(1)
  images = [rng.integers(0, 256, shape, dtype=np.uint8) for shape in [(4, 6, 3), (9, 2, 3)]]
  manual_dir = tmp_path / 'manual'
  manual_dir.mkdir()
  np.savez(manual_dir / 'images.npz', **{f'image{i}': image for i, image in enumerate(images)})
  source, info = tfds_source.load('gan_jax_test_manual_images', 'train',
                                  data_dir=str(tmp_path / 'tfds'), manual_dir=str(manual_dir))
  assert info == DatasetInfo(shape=(None, None, 3), kind='image', num_classes=0)
  for example, image in zip(source, images, strict=True):
    np.testing.assert_array_equal(example['image'], image)
    assert example['label'] == 0


@pytest.mark.parametrize('name, message', [
    ('cifar1O', r"^Unknown data set 'cifar1O'\. Did you mean 'cifar10'"),
    ('no_such_thing', r"^Unknown data set 'no_such_thing'\. Valid: the tfds data sets with "),
    ('lsun/bedrom', r"^tfds data set 'lsun' has no config 'bedrom'\. Did you mean lsun/bedroom\?"),
    ('cifar10:9.9.9', r"^tfds cannot load 'cifar10:9\.9\.9': .*only: 3\.0\.2\.$"),
])
def test_unknown_names(tmp_path, name, message):
  with pytest.raises(UserError, match=message):
    tfds_source.load(name, 'train', data_dir=str(tmp_path))
  with pytest.raises(UserError, match=message):
    tfds_source.info(name, data_dir=str(tmp_path))


def test_data_set_without_images(tmp_path):
  with pytest.raises(UserError, match=r"^tfds data set 'gan_jax_test_no_images/1\.0\.0' has no "
                     r"'image' feature \(its features: value\); gan_jax trains on image data"):
    tfds_source.load('gan_jax_test_no_images', 'train', data_dir=str(tmp_path))


@pytest.mark.skipif(_HAS_TENSORFLOW, reason='with TensorFlow, tfds calls it')
def test_tensorflow_calls_beyond_the_stand_in_are_named(tmp_path):
  with pytest.raises(UserError, match=r"^Preparing tfds data set 'gan_jax_test_walks_with_"
                     r"tensorflow/1\.0\.0' calls TensorFlow \(tf\.io\.gfile\.walk needs "):
    tfds_source.load('gan_jax_test_walks_with_tensorflow', 'train', data_dir=str(tmp_path))


@pytest.mark.skipif(_HAS_TENSORFLOW, reason='a no-op where TensorFlow is installed')
def test_stand_in_encodes_pngs_losslessly_and_is_undone():
  rng = np.random.default_rng(2)
  images = [rng.integers(0, 256, (3, 5, c), dtype=np.uint8) for c in (1, 2, 3, 4)]
  images.append(rng.integers(0, 65536, (3, 5, 1), dtype=np.uint16))
  lazy_tensorflow = lazy_imports_utils.tensorflow  # what tfds's modules hold as `tf`
  with tensorflow_stand_in():
    assert image_feature.tf is not lazy_tensorflow
    assert image_feature.tf is cifar.tf is lazy_imports_utils.tensorflow
    for image in images:
      png = image_feature.tf.image.encode_png(image).numpy()
      decoded = np.asarray(Image.open(io.BytesIO(png)))
      np.testing.assert_array_equal(decoded.reshape(image.shape), image)
    with pytest.raises(TensorFlowNeeded, match=r'^tf\.data needs TensorFlow'):
      image_feature.tf.data  # pylint: disable=pointless-statement
    with pytest.raises(ModuleNotFoundError, match='float32 image'):  # what tfds expects
      image_feature.tf.image.encode_png(np.zeros((2, 2, 1), np.float32))
  assert image_feature.tf is cifar.tf is lazy_imports_utils.tensorflow is lazy_tensorflow


def test_catalog_download_with_the_wrong_checksum_says_what_to_fetch(tmp_path):
  """tfds reads cifar10's registered checksum (through importlib.resources) and finds the
  fake archive in manual_dir under the registered name, which fails its checksum."""
  manual_dir = tmp_path / 'manual'
  manual_dir.mkdir()
  _write_cifar10_archive(str(manual_dir / 'cifar-10-binary.tar.gz'), np.random.default_rng(0))
  url = 'https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz'
  with pytest.raises(UserError) as error:
    tfds_source.load('cifar10', 'train', data_dir=str(tmp_path / 'tfds'),
                     manual_dir=str(manual_dir))
  assert str(error.value).startswith(
      "Could not get the files of tfds data set 'cifar10/3.0.2' (Artifact " + url)
  assert str(error.value).endswith(
      f'Without internet, download {url} as {manual_dir}/cifar-10-binary.tar.gz, then rerun.')
