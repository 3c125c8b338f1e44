"""tfds catalog data sets through training, on examples that tfds.testing.mock_data generates
from each data set's own features: the real tfds code path, offline (`no_network`)."""
import os

import jax
import numpy as np
import pytest

from gan_jax import checkpoints, data, input_pipeline, sample, train
from gan_jax.data.transform import fit_image
from test_train import load_experiment
from tfds_mock import mock_tfds

pytestmark = pytest.mark.usefixtures('no_network')

EXPERIMENTS = os.path.join(os.path.dirname(__file__), '..', 'experiments')
NUM_CLASSES = {'cifar10': 10, 'celeb_a': 0}  # celeb_a has attributes, no 'label'


def _mock_data():
  """Random examples of any catalog data set's features, 20 per split, made by its code."""
  return mock_tfds(num_examples=20)


def _config(experiment, dataset, data_dir):
  config = load_experiment(os.path.join(EXPERIMENTS, experiment), 'smoke')
  config.dataset, config.data.data_dir = dataset, data_dir
  assert config.data.image_size == 16 and config.data.crop == 'center'  # celeb_a is 218x178
  return config


@pytest.mark.parametrize('experiment', ['resnet_sngan.py', 'stylegan2.py'])
@pytest.mark.parametrize('dataset', list(NUM_CLASSES))
def test_catalog_data_set_trains_two_steps(dataset, experiment, tmp_path, fast_compile):
  config = _config(experiment, dataset, str(tmp_path / 'tfds'))
  if dataset == 'celeb_a':  # streamed, as its 200k images are at 64x64 (2.5 GB fitted)
    config.data.cache_in_memory_mb = 0
  with _mock_data():
    state = train.train_and_evaluate(config, str(tmp_path / 'run'))
  assert int(state.step) == 2
  assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves((state.g_params, state.d_params)))
  saved = checkpoints.read_config(str(tmp_path / 'run'))
  assert saved.dataset == dataset and tuple(saved.data.shape) == (16, 16, 3)
  assert saved.data.num_classes == NUM_CLASSES[dataset]
  assert os.path.exists(tmp_path / 'run' / 'samples' / 'step_000002.png')


def test_celeb_a_batches_are_its_images_centre_cropped_streamed_or_in_memory(tmp_path):
  config = _config('resnet_sngan.py', 'celeb_a', str(tmp_path / 'tfds'))
  config.n_critic = 5  # a step's 5 batches of 8: 2 epochs of the 20 images
  batches = []
  with _mock_data():
    source, _ = data.load(config)
    # 218x178: the centred 178x178 square (rows 20..197), shrunk to 16x16.
    fitted = {fit_image(source[i]['image'][20:198], 16, 3).tobytes() for i in range(len(source))}
    for cache_in_memory_mb in (2048, 0):
      config.data.cache_in_memory_mb = cache_in_memory_mb
      batches.append(next(iter(input_pipeline.create_dataset(config))))
  in_memory, streamed = batches
  np.testing.assert_array_equal(streamed['data'], in_memory['data'])
  assert streamed['data'].shape == (5, 8, 16, 16, 3)  # [n_critic, batch, ...]: 2 epochs
  np.testing.assert_array_equal(streamed['label'], np.zeros((5, 8), np.int32))
  pixels = np.round((streamed['data'] + 1) * 127.5).astype(np.uint8).reshape(40, 16, 16, 3)
  assert {image.tobytes() for image in pixels} == fitted


def test_conditional_model_on_cifar10_has_its_10_classes(tmp_path, fast_compile):
  config = _config('cond_sngan.py', 'cifar10', str(tmp_path / 'tfds'))
  assert config.model.conditional
  with _mock_data():
    labels = next(iter(input_pipeline.create_dataset(config)))['label']
    train.train_and_evaluate(config, str(tmp_path / 'run'))
  assert labels.shape == (config.n_critic, 8) and np.all((labels >= 0) & (labels < 10))
  # Sampling needs no data: the workdir keeps the classes.
  loaded = checkpoints.load(str(tmp_path / 'run'))
  assert loaded.config.data.num_classes == 10 and len(loaded.config.data.class_names) == 10
  assert loaded.generator.num_classes == loaded.discriminator.num_classes == 10
  assert sample.sample(loaded, 2, seed=0, label=9).shape == (2, 16, 16, 3)
