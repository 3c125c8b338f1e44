"""Tests of the IDX tfds builder and the grain input pipeline; never touches the network."""
import gzip
import os
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds

from gan_jax import configs, input_pipeline
from gan_jax.data import idx as idx_dataset
from gan_jax.errors import UserError
from idx_files import NUM_TEST, NUM_TRAIN, write_dataset, write_idx

# One xdist worker runs this module's tests: it builds the module's `tiny` once.
pytestmark = pytest.mark.xdist_group(__name__)

_FASHION_DIR = '/usr/share/datasets/fashion-mnist'


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
  """A prepared tiny 'mnist': (manual_dir, data_dir, {split: (images, labels)})."""
  root = tmp_path_factory.mktemp('tiny')
  data = write_dataset(str(root / 'idx'))
  idx_dataset.load_source('mnist', 'train', str(root / 'idx'), str(root / 'tfds'))
  return str(root / 'idx'), str(root / 'tfds'), data


def _config(dataset, tiny=None, **overrides):
  config = configs.default()
  config.dataset = dataset
  if tiny:
    config.data.manual_dir, config.data.data_dir, _ = tiny
  config.batch_size, config.n_critic = 4, 2
  config.update(overrides)
  return config


def _take(iterator, n, field='data'):
  return np.stack([next(iterator)[field] for _ in range(n)])


def _ids(images):
  """Recovers the train index that `write_dataset` put in pixel [0, 0]."""
  return np.rint((images[..., 0, 0, 0] + 1) * 127.5).astype(int).ravel()


@pytest.mark.parametrize('gz', [True, False])
def test_builder_reads_files_back_exactly(tmp_path, gz):
  data = write_dataset(str(tmp_path / 'idx'), gz=gz)
  for split, idx_split in (('train', 'train'), ('test', 't10k')):
    source = idx_dataset.load_source('mnist', split, str(tmp_path / 'idx'), str(tmp_path / 'tfds'))
    images, labels = data[idx_split]
    assert len(source) == len(images)
    for i, example in enumerate(source):
      np.testing.assert_array_equal(example['image'], images[i][..., None])
      assert example['image'].dtype == np.uint8
      assert example['label'] == labels[i]
  assert 'tensorflow' not in sys.modules


def _break(folder, problem):
  """Damages the tiny data set in `folder`; returns the name of the file to blame."""
  path = os.path.join(folder, 'train-images-idx3-ubyte.gz')
  if problem == 'missing':
    os.remove(path)
  elif problem == 'magic':
    write_idx(path[:-3], np.zeros((NUM_TRAIN, 28, 28)), magic=2049)
  elif problem == 'truncated':
    raw = gzip.decompress(open(path, 'rb').read())
    open(path, 'wb').write(gzip.compress(raw[:-100]))
  elif problem == 'truncated_gzip':
    raw = open(path, 'rb').read()
    open(path, 'wb').write(raw[:len(raw) // 2])
  elif problem == 'count':
    write_idx(os.path.join(folder, 'train-labels-idx1-ubyte'), np.zeros(NUM_TRAIN - 1))
    return 'train-labels-idx1-ubyte.gz'
  return 'train-images-idx3-ubyte.gz'


@pytest.mark.parametrize('problem', ['missing', 'magic', 'truncated', 'truncated_gzip', 'count'])
def test_bad_files_raise_user_error(tmp_path, problem):
  write_dataset(str(tmp_path / 'idx'))
  blamed = _break(str(tmp_path / 'idx'), problem)
  with pytest.raises(UserError, match=blamed):
    idx_dataset.load_source('mnist', 'train', str(tmp_path / 'idx'), str(tmp_path / 'tfds'))


def test_no_files_anywhere_says_how_to_get_them(tmp_path, monkeypatch):
  monkeypatch.setattr(idx_dataset, 'SYSTEM_DIR', str(tmp_path / 'system'))

  def offline(*args, **kwargs):
    raise OSError('network is unreachable')

  monkeypatch.setattr(tfds.download.DownloadManager, 'download', offline)
  with pytest.raises(UserError, match='apt-get install dataset-fashion-mnist.*manual_dir'):
    idx_dataset.load_source('fashion_mnist', 'train', data_dir=str(tmp_path / 'tfds'))


def test_image_batches_are_scaled_exactly_and_carry_their_labels(tiny):
  batch = next(iter(input_pipeline.create_dataset(_config('mnist', tiny))))
  images, labels = batch['data'], batch['label']
  assert images.shape == (2, 4, 28, 28, 1) and images.dtype == np.float32
  assert labels.shape == (2, 4) and labels.dtype == np.int32
  np.testing.assert_array_equal(labels.ravel(), tiny[2]['train'][1][_ids(images)])
  assert (images[..., 0, 1, 0] == -1).all() and (images[..., 0, 2, 0] == 1).all()
  assert images.min() == -1 and images.max() == 1
  train_images = tiny[2]['train'][0]
  for image, i in zip(images.reshape(-1, 28, 28, 1), _ids(images)):
    np.testing.assert_array_equal(image[..., 0], train_images[i] / np.float32(127.5) - 1)


@pytest.mark.parametrize('name', ['ring8', 'grid25'])
def test_toy_data_matches_its_modes(name):
  centers, std = input_pipeline.toy_modes(name)
  batch = next(iter(input_pipeline.create_dataset(_config(name, batch_size=5000, n_critic=1))))
  points = batch['data']
  assert points.shape == (1, 5000, 2) and points.dtype == np.float32
  points = points[0]
  distances = np.abs(points[:, None] - centers[None]).max(-1)
  modes = distances.argmin(-1)
  np.testing.assert_array_equal(batch['label'][0], modes)  # a point's label is its mode
  assert (distances.min(-1) < 5 * std).all()
  assert len(np.unique(modes)) == len(centers)
  for k, center in enumerate(centers):
    mode_points = points[modes == k]
    assert np.abs(mode_points.mean(0) - center).max() < 5 * std / np.sqrt(len(mode_points))
    assert mode_points.std(0) == pytest.approx([std, std], rel=0.5)


def test_toy_modes():
  ring, _ = input_pipeline.toy_modes('ring8')
  np.testing.assert_allclose(np.linalg.norm(ring, axis=1), 2)
  grid, _ = input_pipeline.toy_modes('grid25')
  assert {tuple(c) for c in grid} == {(x, y) for x in range(-4, 5, 2) for y in range(-4, 5, 2)}


@pytest.mark.parametrize('name', ['mnist', 'ring8'])
def test_same_seed_same_batches(tiny, name):
  def first(seed):
    return _take(iter(input_pipeline.create_dataset(_config(name, tiny, seed=seed))), 3)

  np.testing.assert_array_equal(first(0), first(0))
  assert not np.array_equal(first(0), first(1))


@pytest.mark.parametrize('name', ['mnist', 'ring8'])
@pytest.mark.parametrize('in_memory', [True, False])
def test_a_stream_started_at_a_step_continues_the_whole_stream_exactly(tiny, name, in_memory):
  config = _config(name, tiny)
  config.data.random_flip = name == 'mnist'
  config.data.cache_in_memory_mb = 2048 if in_memory else 0
  whole = _take(iter(input_pipeline.create_dataset(config)), 7)
  # 8 images a step: steps 3-6 cross epochs of the 20 images.
  resumed = iter(input_pipeline.create_dataset(config, start_step=3))
  np.testing.assert_array_equal(_take(resumed, 4), whole[3:])
  host1 = iter(input_pipeline.create_dataset(config, 1, 2, start_step=3))
  np.testing.assert_array_equal(_take(host1, 4), whole[3:, :, 2:])


@pytest.mark.parametrize('name', ['mnist', 'ring8'])
@pytest.mark.parametrize('flip', [False, True])
def test_hosts_take_their_rows_of_the_same_global_batches(tiny, name, flip):
  config = _config(name, tiny, n_critic=1)
  config.data.random_flip = flip and name == 'mnist'
  # 4 images a step, 2 per host: 5 steps read the 20 images once.
  one_host = _take(iter(input_pipeline.create_dataset(config)), 5)
  host0, host1 = (_take(iter(input_pipeline.create_dataset(config, i, 2)), 5) for i in range(2))
  assert host0.shape == (5, 1, 2, *input_pipeline.data_shape(config))
  # The global batches do not depend on the number of hosts: a run reproduces at any scale.
  np.testing.assert_array_equal(np.concatenate([host0, host1], axis=2), one_host)
  if name == 'ring8':
    assert not np.isin(host0, host1).any()
  elif not flip:  # `_ids` reads a corner that a flip moves
    ids0, ids1 = _ids(host0), _ids(host1)
    assert not set(ids0) & set(ids1)
    assert sorted([*ids0, *ids1]) == list(range(NUM_TRAIN))


def test_random_flip_mirrors_about_half_the_images_the_same_way_every_time(tiny):
  config = _config('mnist', tiny, n_critic=1, batch_size=20)
  plain = _take(iter(input_pipeline.create_dataset(config)), 10)
  config.data.random_flip = True
  flipped = _take(iter(input_pipeline.create_dataset(config)), 10)
  np.testing.assert_array_equal(flipped, _take(iter(input_pipeline.create_dataset(config)), 10))
  mirrored = np.all(flipped == plain[..., ::-1, :], axis=(3, 4, 5))
  kept = np.all(flipped == plain, axis=(3, 4, 5))
  assert np.all(mirrored | kept)  # each image as it is or mirrored left-right, nothing else
  assert 0.35 < mirrored.mean() < 0.65  # 200 images: half of them, give or take 3 std


def test_num_examples_trains_on_the_first_images_only(tiny):
  config = _config('mnist', tiny, n_critic=1)
  config.data.num_examples = 8
  ids = _ids(_take(iter(input_pipeline.create_dataset(config)), 6))  # 3 epochs of 8
  assert sorted(set(ids)) == list(range(8))
  images, _ = input_pipeline.load_examples(config, 'test')
  assert len(images) == NUM_TEST  # the test split stays whole
  config.data.num_examples = 3
  with pytest.raises(UserError, match='3 training images cannot fill a batch of 4'):
    input_pipeline.create_dataset(config)


def test_config_errors():
  with pytest.raises(UserError, match='divide over 3 hosts'):
    input_pipeline.create_dataset(_config('ring8', batch_size=4), 0, 3)
  with pytest.raises(UserError, match="Unknown .*'cifar1O'.* 'cifar10'"):
    input_pipeline.create_dataset(_config('cifar1O'))


@pytest.mark.skipif(not os.path.isdir(_FASHION_DIR), reason='needs dataset-fashion-mnist')
def test_debian_fashion_mnist(tmp_path):
  data_dir = str(tmp_path / 'tfds')
  assert len(idx_dataset.load_source('fashion_mnist', 'train', data_dir=data_dir)) == 60_000
  assert len(idx_dataset.load_source('fashion_mnist', 'test', data_dir=data_dir)) == 10_000
  assert 'tensorflow' not in sys.modules
