"""Every model family on a folder of colour images: train, resume, condition on its classes."""
import hashlib
import json
import os
import re
import subprocess

import jax
import numpy as np
import pytest
from PIL import Image

from gan_jax import checkpoints, input_pipeline, sample, train
from gan_jax.data.folder import FolderSource
from gan_jax.errors import UserError
from test_train import assert_trees_equal, killed_after_step_3_and_resumed, load_experiment

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))
EXPERIMENTS = os.path.join(REPO, 'experiments')
CLASSES = ('boots', 'coats', 'shirts')


@pytest.fixture(scope='module')
def folder(tmp_path_factory):
  """A folder of 20 RGB images per class (PNG and JPEG, 20x24: not square) in class
  subfolders, with a corrupt PNG and a text file; each class has its own colour."""
  root = tmp_path_factory.mktemp('images')
  rng = np.random.default_rng(0)
  for k, name in enumerate(CLASSES):
    os.makedirs(root / name)
    for i in range(20):
      colour = np.array([[80, 0, 0], [0, 80, 0], [0, 0, 80]][k])
      pixels = rng.integers(0, 100, (20, 24, 3)) + colour + 40
      extension = 'png' if i % 2 else 'jpg'
      Image.fromarray(pixels.astype(np.uint8)).save(root / name / f'{i}.{extension}')
  (root / 'coats' / 'broken.png').write_bytes(b'\x89PNG not really')
  (root / 'README.txt').write_text('the classes are the subfolders')
  return str(root)


def _config(experiment, folder, data_dir, **data):
  config = load_experiment(os.path.join(EXPERIMENTS, experiment), 'smoke')
  config.dataset = 'image_folder'
  config.data.update(dict(path=folder, data_dir=data_dir, image_size=16, **data))
  return config


@pytest.mark.parametrize('experiment', ['vanilla_gan.py', 'sngan.py', 'resnet_sngan.py',
                                        'biggan.py', 'progan.py', 'stylegan2.py'])
def test_every_family_trains_on_colour_images(experiment, folder, tmp_path, fast_compile):
  config = _config(experiment, folder, str(tmp_path / 'tfds'))
  state = train.train_and_evaluate(config, str(tmp_path / 'run'))
  assert int(state.step) == 2
  loaded = checkpoints.load(str(tmp_path / 'run'))
  assert loaded.data_shape == (16, 16, 3)
  images = sample.sample(loaded, 4, seed=0)
  assert images.shape == (4, 16, 16, 3) and np.all((images >= 0) & (images <= 1))
  grid = np.asarray(Image.open(tmp_path / 'run' / 'samples' / 'step_000002.png'))
  assert grid.ndim == 3 and grid.shape[2] == 3  # colour grids


def test_batches_are_centre_cropped_colour_images_with_their_folder_labels(folder, tmp_path):
  config = _config('sngan.py', folder, str(tmp_path / 'tfds'), folder_labels=True)
  config.batch_size = 60  # every readable image once
  batch = next(iter(input_pipeline.create_dataset(config)))
  images, labels = batch['data'][0], batch['label'][0]
  assert images.shape == (60, 16, 16, 3)
  assert np.bincount(labels).tolist() == [20, 20, 20]  # the broken coat is skipped
  # Each class's own colour channel is the brightest in its images.
  for k in range(3):
    assert np.all(images[labels == k].mean(axis=(1, 2)).argmax(-1) == k)


# A folder bigger than the memory cache (0 MB) streams; `workers` worker processes read it.
STREAMED_BY_A_WORKER = dict(cache_in_memory_mb=0, workers=1)


def test_a_worker_process_reads_the_batches_this_process_would(folder, tmp_path, monkeypatch):
  read_here = []  # calls in this process: a worker's own go unseen
  read = FolderSource.__getitems__
  monkeypatch.setattr(FolderSource, '__getitems__',
                      lambda source, indices: read_here.append(indices) or read(source, indices))
  batches, reader_here = {}, {}
  # The worker first: a closed iterator's reader threads may still finish a read here.
  for workers in (1, 0):
    config = _config('sngan.py', folder, str(tmp_path / 'tfds'), random_flip=True,
                     **{**STREAMED_BY_A_WORKER, 'workers': workers})
    read_here.clear()
    iterator = iter(input_pipeline.create_dataset(config))
    batches[workers] = [next(iterator) for _ in range(10)]  # 80 images: past the first epoch
    iterator.close()
    reader_here[workers] = bool(read_here)
  assert reader_here == {0: True, 1: False}
  for alone, with_worker in zip(batches[0], batches[1], strict=True):
    np.testing.assert_array_equal(alone['data'], with_worker['data'])
    np.testing.assert_array_equal(alone['label'], with_worker['label'])


@pytest.mark.parametrize('reading', [{}, STREAMED_BY_A_WORKER],
                         ids=['in_memory', 'streamed_by_a_worker'])
def test_folder_run_resumes_bit_for_bit(reading, folder, tmp_path):
  config = _config('sngan.py', folder, str(tmp_path / 'tfds'), random_flip=True, **reading)
  config.num_steps, config.checkpoint_every = 4, 2
  uninterrupted = train.train_and_evaluate(config, str(tmp_path / 'a'))
  resumed = killed_after_step_3_and_resumed(config, str(tmp_path / 'b'))
  assert_trees_equal(jax.device_get(uninterrupted), jax.device_get(resumed))


def test_a_run_resumes_exactly_however_its_data_are_read(folder, tmp_path):
  config = _config('sngan.py', folder, str(tmp_path / 'tfds'), random_flip=True)
  config.num_steps, config.checkpoint_every = 4, 2
  uninterrupted = train.train_and_evaluate(config, str(tmp_path / 'a'))  # from memory
  config.num_steps = 2
  train.train_and_evaluate(config, str(tmp_path / 'b'))
  config.num_steps = 4
  config.data.update(STREAMED_BY_A_WORKER)  # the data position is the step, nothing else
  resumed = train.train_and_evaluate(config, str(tmp_path / 'b'))
  assert_trees_equal(jax.device_get(uninterrupted), jax.device_get(resumed))


def test_conditional_model_on_folder_classes_samples_a_class_by_name(folder, tmp_path,
                                                                     fast_compile):
  config = _config('cond_sngan.py', folder, str(tmp_path / 'tfds'), folder_labels=True)
  train.train_and_evaluate(config, str(tmp_path / 'run'))
  # Sampling needs neither the folder nor its copy: the workdir keeps the classes.
  os.rename(tmp_path / 'tfds', tmp_path / 'moved')
  loaded = checkpoints.load(str(tmp_path / 'run'))
  assert loaded.config.data.class_names == CLASSES
  assert loaded.generator.num_classes == 3
  by_name = sample.sample(loaded, 3, seed=0, label='coats')
  np.testing.assert_array_equal(by_name, sample.sample(loaded, 3, seed=0, label=1))


def test_the_readmes_own_data_commands_train_and_sample_a_class_by_name(tmp_path):
  """The two commands of the README's "Your own data", word for word but for the preset
  (:smoke for :cpu), on a folder of JPEGs in class subfolders."""
  with open(os.path.join(REPO, 'README.md'), encoding='utf-8') as f:
    section = f.read().split('## Your own data', 1)[1].split('\n## ', 1)[0]
  commands = re.findall(r'^python -m gan_jax\.\S+ .*$', section, re.MULTILINE)
  assert len(commands) == 2 and all('photos' in command for command in commands)
  rng = np.random.default_rng(0)
  for name in ('cats', 'dogs'):
    os.makedirs(tmp_path / 'photos' / name)
    for i in range(10):
      pixels = rng.integers(0, 255, (30, 40, 3)).astype(np.uint8)
      Image.fromarray(pixels).save(tmp_path / 'photos' / name / f'{i}.jpg')
  env = {**os.environ, 'TFDS_DATA_DIR': str(tmp_path / 'tfds'),
         'JAX_DISABLE_MOST_OPTIMIZATIONS': '1'}
  for command in commands:
    command = (command.replace(':cpu', ':smoke').split('  #')[0]
               .replace('runs/photos', str(tmp_path / 'runs' / 'photos'))
               .replace('=photos', f'={tmp_path / "photos"}'))
    result = subprocess.run(command, shell=True, cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
  assert 'class 0 (cats) only' in result.stdout
  assert np.load(tmp_path / 'runs' / 'photos' / 'samples.npy').shape == (10_000, 16, 16, 3)


def test_a_class_smaller_than_a_batch_is_one_line_before_anything_compiles(folder, tmp_path):
  config = _config('cond_sngan.py', folder, str(tmp_path / 'tfds'), folder_labels=True)
  config.batch_size = 24
  with pytest.raises(UserError, match=r"^Class 'boots' of .* has 20 images, fewer than a batch "
                                      'of 24: add images to it, merge it into another class, '
                                      r'or lower config\.batch_size\.$'):
    train.train_and_evaluate(config, str(tmp_path / 'run'))
  assert not os.path.exists(tmp_path / 'run' / 'config.json')  # stopped before training began


def test_colour_runs_are_scored_in_inception_space_against_their_training_images(
    folder, tmp_path, inception_weights, monkeypatch, caplog):
  monkeypatch.setenv('GAN_JAX_INCEPTION_WEIGHTS', inception_weights)
  monkeypatch.setenv('GAN_JAX_CACHE', str(tmp_path / 'cache'))
  config = _config('vanilla_gan.py', folder, str(tmp_path / 'tfds'))
  config.eval_every, config.eval_num_samples, config.eval_reference_count = 2, 10, 40
  with caplog.at_level('INFO'):
    train.train_and_evaluate(config, str(tmp_path / 'run'))
  assert caplog.records[-1].getMessage().endswith(
      f'Evaluate them with: python -m gan_jax.evaluate --workdir {tmp_path}/run')
  with open(tmp_path / 'run' / 'eval.jsonl') as f:
    (result,) = [json.loads(line) for line in f]
  assert {key: result[key] for key in ('step', 'features', 'resize', 'reference')} == {
      'step': 2, 'features': 'inception', 'resize': 'legacy',
      'reference': 'image_folder train[:40]'}  # config.eval_reference_count of the 60
  with open(inception_weights, 'rb') as f:
    assert result['inception_weights'] == hashlib.sha256(f.read()).hexdigest()[:16]
  for name in ('fid', 'kid', 'kid_std', 'precision', 'recall', 'inception_score',
               'inception_score_std'):
    assert np.isfinite(result[name]), name
  assert 'classes_covered' not in result  # ImageNet's classes are not the data set's
