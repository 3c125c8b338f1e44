"""evaluate in the FID Inception-v3's feature space: sample files against reference images or
published statistics, the two resizings, where the weights come from, and their absence."""
import hashlib
import io
import json
import os
import subprocess

import numpy as np
import pytest

from gan_jax import evaluate, inception, metrics
from gan_jax.errors import UserError
from tfds_mock import mock_tfds

ROOT = os.path.join(os.path.dirname(__file__), '..')
README = os.path.join(ROOT, 'README.md')
INCEPTION_METRICS = {'fid', 'kid', 'kid_std', 'precision', 'recall', 'inception_score',
                     'inception_score_std'}


def _images(count, side, seed):
  """uint8 colour images: smooth colour gradients under noise."""
  rng = np.random.default_rng(seed)
  ramp = np.linspace(0, 1, side)
  smooth = ramp[None, :, None, None] * ramp[None, None, :, None] * rng.random((count, 1, 1, 3))
  return np.clip(255 * (smooth + 0.4 * rng.random((count, side, side, 3))), 0, 255).astype(
      np.uint8)


@pytest.fixture(name='files')
def files_fixture(tmp_path):
  """Samples A (12 uint8 32x32) and reference images B (16 floats 48x48) as .npy files."""
  np.save(tmp_path / 'a.npy', _images(12, 32, seed=0))
  np.save(tmp_path / 'b.npy', _images(16, 48, seed=1).astype(np.float32) / 255)
  return str(tmp_path / 'a.npy'), str(tmp_path / 'b.npy')


def _statistics(features):
  return [np.asarray(x) for x in metrics.feature_statistics(features)]


def _readme_commands():
  """The README's two `evaluate --samples samples.npy --reference ...` commands."""
  with open(README, encoding='utf-8') as f:
    commands = [line.split('#')[0].strip() for line in f
                if line.startswith('python -m gan_jax.evaluate --samples samples.npy --reference')]
  assert len(commands) == 2, commands
  return commands


def test_the_readmes_commands_score_samples_against_images_and_statistics(
    files, tmp_path, inception_weights):
  samples, references = files
  net = inception.load(inception_weights)
  real, _ = inception.embed(net, np.load(references))
  statistics = str(tmp_path / 'stats.npz')
  np.savez(statistics, mu=real.mean(0), sigma=np.cov(real, rowvar=False))  # as pytorch-fid
  against_images, against_statistics = [
      _run_readme_command(command.replace('samples.npy', samples).replace('real.npy', references)
                          .replace('fid_stats_cifar10_train.npz', statistics),
                          inception_weights, tmp_path)
      for command in _readme_commands()]
  with open(inception_weights, 'rb') as f:
    checksum = hashlib.sha256(f.read()).hexdigest()
  assert set(against_images) == {'num_samples', 'features', 'inception_weights', 'resize',
                                 'reference'} | INCEPTION_METRICS
  assert {key: against_images[key] for key in ('num_samples', 'features', 'inception_weights',
                                               'resize', 'reference')} == {
      'num_samples': 12, 'features': 'inception', 'inception_weights': checksum[:16],
      'resize': 'legacy', 'reference': f'{references} (16 images)'}
  # The numbers are the metrics of the network's own features of A and B.
  fake, logits = inception.embed(net, np.load(samples))
  fid = metrics.frechet_distance(*_statistics(fake), *_statistics(real))
  score, score_std = metrics.split_inception_score(logits, 10)
  assert against_images['fid'] == pytest.approx(float(fid), rel=1e-3)
  assert against_images['inception_score'] == pytest.approx(float(score), rel=1e-4)
  assert against_images['inception_score_std'] == pytest.approx(float(score_std), rel=1e-3,
                                                                abs=1e-6)
  assert 0 <= against_images['precision'] <= 1 and 0 <= against_images['recall'] <= 1
  # Published statistics: the same FID and IS; no KID or precision/recall without features.
  assert against_statistics['reference'] == f'{statistics} (statistics)'
  assert against_statistics['fid'] == pytest.approx(against_images['fid'], rel=1e-3)
  assert set(against_statistics) == {'num_samples', 'features', 'inception_weights', 'resize',
                                     'reference', 'fid', 'inception_score',
                                     'inception_score_std'}


def _run_readme_command(command, weights, tmp_path):
  done = subprocess.run(command, shell=True, cwd=ROOT, capture_output=True, text=True,
                        check=False, env={**os.environ, 'GAN_JAX_CACHE': str(tmp_path / 'cache'),
                                          inception.WEIGHTS_ENV: weights})
  assert done.returncode == 0, done.stderr
  return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_resizing_is_recorded_and_changes_the_numbers(files, tmp_path, inception_weights):
  samples = np.load(files[0])
  options = evaluate.Options(reference=files[1], inception_weights=inception_weights,
                             cache=str(tmp_path / 'cache'))
  legacy = evaluate.evaluate_samples(samples, None, options=options)
  clean = evaluate.evaluate_samples(samples, None, options=options._replace(resize='clean'))
  assert (legacy['resize'], clean['resize']) == ('legacy', 'clean')
  assert clean['fid'] != pytest.approx(legacy['fid'], rel=1e-3)


def test_clean_resizing_quantises_to_uint8_and_antialiases():
  rng = np.random.default_rng(0)
  pixels = rng.integers(0, 256, (2, 20, 20, 3)).astype(np.float32) / 255
  nudged = pixels + rng.uniform(-0.4, 0.4, pixels.shape).astype(np.float32) / 255
  np.testing.assert_array_equal(inception.resize_clean(nudged), inception.resize_clean(pixels))
  # A one-pixel checkerboard at 3x the input side: bicubic with antialiasing averages it to
  # grey; pytorch-fid's bilinear resize without antialiasing samples every third pixel.
  side = 3 * inception.INPUT_SIDE
  board = (np.indices((side, side)).sum(0) % 2).astype(np.float32)
  board = np.repeat(board[None, :, :, None], 3, axis=-1)
  clean = inception.resize_clean(board)[0, 10:-10, 10:-10]
  assert np.abs(clean - 0.5).max() < 0.01
  legacy = np.asarray(inception.resize_legacy(board))[0, 10:-10, 10:-10]
  assert set(np.unique(np.round(legacy, 4))) == {0.0, 1.0}


def test_grey_images_are_seen_as_rgb(inception_weights):
  net = inception.load(inception_weights)
  grey = _images(2, 28, seed=0)[..., 0]
  for ours, as_rgb in zip(inception.embed(net, grey),
                          inception.embed(net, np.repeat(grey[..., None], 3, axis=-1))):
    np.testing.assert_array_equal(ours, as_rgb)


def test_without_weights_offline_one_line_says_where_to_get_them(tmp_path, monkeypatch):
  monkeypatch.delenv(inception.WEIGHTS_ENV, raising=False)
  monkeypatch.setattr(inception, 'WEIGHTS_URL', 'http://127.0.0.1:9/weights.pth')  # refused
  expected = os.path.join(str(tmp_path), inception.WEIGHTS_FILE)
  with pytest.raises(UserError, match=(
      r'^The FID Inception weights are not on this machine and could not be downloaded \(.*\)\. '
      r'Download http://127\.0\.0\.1:9/weights\.pth elsewhere, then pass '
      r'--inception_weights=PATH, set \$GAN_JAX_INCEPTION_WEIGHTS=PATH, or put the file at '
      f'{expected}\\.$')):
    inception.load('', str(tmp_path))
  assert os.listdir(tmp_path) == []
  with pytest.raises(UserError, match=r'^The Inception weights /nowhere\.pth do not exist\.'):
    inception.load('/nowhere.pth', str(tmp_path))


def test_a_download_is_kept_only_when_its_sha256_is_the_standard_ones(
    tmp_path, monkeypatch, inception_weights):
  monkeypatch.delenv(inception.WEIGHTS_ENV, raising=False)
  with open(inception_weights, 'rb') as f:
    served = f.read()
  monkeypatch.setattr(inception.urllib.request, 'urlopen',
                      lambda url, timeout: io.BytesIO(served))
  with pytest.raises(UserError, match=r'has sha256 [0-9a-f]{64}, expected 6726825d.*nothing was '
                                      r'kept'):
    inception.load('', str(tmp_path))
  assert os.listdir(tmp_path) == []
  monkeypatch.setattr(inception, 'WEIGHTS_SHA256', hashlib.sha256(served).hexdigest())
  net = inception.load('', str(tmp_path))  # downloaded once into the cache
  assert os.listdir(tmp_path) == [inception.WEIGHTS_FILE]
  assert net.checksum == inception.WEIGHTS_SHA256


def test_feature_spaces_refuse_what_they_cannot_score(tmp_path):
  colour = _images(12, 28, seed=0)
  config = evaluate.samples_config('fashion_mnist', colour)
  with pytest.raises(UserError, match=r'with 1 channel\(s\)'):
    evaluate.evaluate_samples(colour, config, options=evaluate.Options(features='dataset'))
  folder = evaluate.samples_config('image_folder', colour)
  with pytest.raises(UserError, match=r'^--features=dataset scores .* score image_folder with '
                                      r'--features=inception\.$'):
    evaluate.evaluate_samples(colour, folder, options=evaluate.Options(features='dataset'))
  with pytest.raises(UserError, match=r'^Scoring needs real images: pass --dataset=NAME'):
    evaluate.evaluate_samples(colour, None, options=evaluate.Options(
        inception_weights='/nowhere.pth'))


def test_samples_of_a_tfds_data_set_are_scored_against_its_training_split(
    tmp_path, inception_weights):
  samples = _images(12, 32, seed=0)
  with mock_tfds(num_examples=14):
    config = evaluate.samples_config('cifar10', samples, data_dir=str(tmp_path / 'tfds'))
    result = evaluate.evaluate_samples(samples, config, options=evaluate.Options(
        inception_weights=inception_weights, cache=str(tmp_path / 'cache')))
  assert (result['dataset'], result['features'], result['reference']) == (
      'cifar10', 'inception', 'cifar10 train[:14]')  # auto: a colour data set
  assert np.isfinite(result['fid'])
