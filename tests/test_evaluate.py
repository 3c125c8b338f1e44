"""evaluate: checkpoints and sample files scored beside their floor, and one-line errors."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from gan_jax import checkpoints, evaluate, feature_net, reference, sample, scores, train
from gan_jax.errors import UserError
from test_train import load_experiment

EXPERIMENTS = os.path.join(os.path.dirname(__file__), '..', 'experiments')
# In the data set's own classifier's space (MNIST-like data sets).
IMAGE_METRICS = {'fid', 'kid', 'kid_std', 'precision', 'recall', 'inception_score',
                 'classes_covered'}


def _train_smoke(experiment, workdir, tiny_fashion):
  config = load_experiment(os.path.join(EXPERIMENTS, experiment), 'smoke')
  config.data.manual_dir, config.data.data_dir = tiny_fashion
  train.train_and_evaluate(config, workdir)


def _evaluate_cli(*args, cache):
  return subprocess.run([sys.executable, '-m', 'gan_jax.evaluate', *args], capture_output=True,
                        text=True, env={**os.environ, 'GAN_JAX_CACHE': cache}, check=False)


def test_cli_scores_a_checkpoint_and_appends_to_eval_jsonl(tmp_path, tiny_fashion,
                                                           tiny_weights_dir):
  workdir, cache = str(tmp_path / 'run'), str(tmp_path / 'cache')
  _train_smoke('vanilla_gan.py', workdir, tiny_fashion)  # MLPs: compiles 2x faster than DCGAN
  done = _evaluate_cli('--workdir', workdir, '--num_samples', '20',
                       '--feature_weights_dir', tiny_weights_dir, cache=cache)
  assert done.returncode == 0, done.stderr
  result = json.loads(done.stdout.strip().splitlines()[-1])
  assert set(result) == {'step', 'dataset', 'num_samples', 'features', 'feature_net',
                         'floor'} | IMAGE_METRICS
  assert result['features'] == 'dataset'  # the default for Fashion-MNIST
  assert (result['step'], result['dataset'], result['num_samples']) == (2, 'fashion_mnist', 20)
  assert set(result['floor']) == {'num_samples'} | IMAGE_METRICS
  assert 0 <= result['precision'] <= 1 and 1 <= result['inception_score'] <= 10
  with open(os.path.join(workdir, 'eval.jsonl')) as f:
    assert [json.loads(line) for line in f] == [result]
  # The real test split's features (6 images) and the floor (20 images) are cached.
  assert sorted(name.rsplit('_', 1)[0] for name in os.listdir(cache)) == [
      'fashion_mnist_floor_20', 'fashion_mnist_test_6']


def test_toy_checkpoint_reports_modes(tmp_path, tiny_fashion):
  _train_smoke('toy_grid.py', str(tmp_path), tiny_fashion)
  result = evaluate.evaluate_checkpoint(str(tmp_path), num_samples=200,
                                        options=evaluate.Options(cache=str(tmp_path)))
  assert set(result) == {'step', 'ema', 'dataset', 'num_samples', 'modes_covered', 'num_modes',
                         'high_quality_share', 'floor'}
  assert result['ema'] is True  # toy_grid.py keeps an EMA of G, which sampling uses
  assert result['num_modes'] == 25 and 0 <= result['modes_covered'] <= 25
  assert 0 <= result['high_quality_share'] <= 1
  # 200 points of the mixture itself: nearly all within 3 std, most of the 25 modes hit.
  floor = result['floor']
  assert floor['num_samples'] == 200 and floor['num_modes'] == 25
  assert floor['high_quality_share'] > 0.95 and floor['modes_covered'] >= 20


def _score(samples, tiny_fashion, weights_dir, cache):
  config = evaluate.samples_config('fashion_mnist', samples, *tiny_fashion)
  return evaluate.evaluate_samples(samples, config, options=evaluate.Options(
      feature_weights_dir=weights_dir, cache=cache))


def test_real_training_images_score_their_floor(tmp_path, tiny_fashion, tiny_weights_dir):
  images, _ = feature_net.load_split('fashion_mnist', 'train', *tiny_fashion, limit=12)
  np.save(tmp_path / 'real.npy', images[..., 0])  # uint8 NHW, as well as float NHWC
  cache = tmp_path / 'cache'
  result = _score(evaluate.read_samples(str(tmp_path / 'real.npy')), tiny_fashion,
                  tiny_weights_dir, str(cache))
  floor = result.pop('floor')
  assert floor == {'num_samples': 12, **{name: result[name] for name in IMAGE_METRICS}}
  assert result['features'] == 'dataset'
  cached = {path: path.stat().st_mtime_ns for path in cache.iterdir()}
  floats = _score(images / np.float32(255), tiny_fashion, tiny_weights_dir, str(cache))
  for name in IMAGE_METRICS:
    assert floats[name] == pytest.approx(result[name], rel=1e-4, abs=1e-5)
  assert {path: path.stat().st_mtime_ns for path in cache.iterdir()} == cached  # reused


def test_larger_images_are_resized_to_the_feature_nets_size(tmp_path, tiny_fashion,
                                                            tiny_weights_dir):
  samples = np.random.default_rng(0).uniform(size=(12, 64, 64, 1)).astype(np.float32)
  result = _score(samples, tiny_fashion, tiny_weights_dir, str(tmp_path))
  assert all(np.isfinite(result[name]) for name in IMAGE_METRICS)


@pytest.mark.parametrize('samples, message', [
    (np.zeros((12, 28, 27), np.float32), 'must be square images'),
    (np.zeros((12, 28, 28, 3), np.float32), 'with 1 channel'),
    (np.zeros((12, 2), np.float32), 'must be square images'),
    (np.full((12, 28, 28), -1, np.float32), r'range over \[-1, -1\]. If they are tanh'),
    (np.full((12, 28, 28), np.nan, np.float32), 'NaN'),
    (np.zeros((12, 28, 28), np.int32), 'got int32'),
    (np.zeros((3, 28, 28), np.float32), 'at least 10 samples'),
])
def test_bad_image_samples_are_refused(samples, message, tmp_path, tiny_fashion):
  with pytest.raises(UserError, match=message):
    _score(samples, tiny_fashion, '', str(tmp_path))


def test_bad_points_are_refused():
  with pytest.raises(UserError, match=r'float points \[N, 2\]'):
    evaluate.evaluate_samples(np.zeros((12, 28, 28), np.float32),
                              evaluate.samples_config('ring8', np.zeros((12, 2))))


def test_bad_sample_files_are_refused(tmp_path):
  with pytest.raises(UserError, match='does not exist'):
    evaluate.read_samples(str(tmp_path / 'missing.npy'))
  (tmp_path / 'text.npy').write_text('not an array')
  with pytest.raises(UserError, match='is not a .npy array file'):
    evaluate.read_samples(str(tmp_path / 'text.npy'))
  np.save(tmp_path / 'few.npy', np.zeros((5, 2), np.float32))
  with pytest.raises(UserError, match='holds 5 samples, fewer than --num_samples=6'):
    evaluate.read_samples(str(tmp_path / 'few.npy'), num_samples=6)


def test_cli_errors_end_in_one_line(tmp_path):
  done = _evaluate_cli('--samples', str(tmp_path / 'missing.npy'), '--dataset', 'fashion_mnist',
                       cache=str(tmp_path))
  assert done.returncode == 1
  missing = tmp_path / 'missing.npy'
  assert done.stderr.strip().splitlines()[-1] == f'Error: {missing} does not exist.'
  assert 'Traceback' not in done.stderr


def test_cache_dir_precedence(monkeypatch, tmp_path):
  monkeypatch.setenv('GAN_JAX_CACHE', str(tmp_path / 'env'))
  assert reference.cache_dir(str(tmp_path / 'flag')) == str(tmp_path / 'flag')
  assert reference.cache_dir() == str(tmp_path / 'env')
  monkeypatch.delenv('GAN_JAX_CACHE')
  monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'xdg'))
  assert reference.cache_dir() == str(tmp_path / 'xdg' / 'gan_jax')


def test_class_metrics_score_each_class_against_its_own_test_images():
  rng = np.random.default_rng(0)
  test_labels = np.repeat(np.arange(3), 400)
  # Three classes, far apart in a 4-D feature space.
  centers = 10.0 * np.eye(4)[:3]
  real = (centers[test_labels] + rng.standard_normal((1200, 4))).astype(np.float32)
  real_reference = reference.Reference(real, real.mean(0), np.cov(real, rowvar=False),
                                       test_labels)
  labels = np.repeat(np.arange(3), 400)
  logits = np.eye(3)[labels].astype(np.float32)
  logits[:40] = np.eye(3)[1]  # 40 of class 0's 400 look like class 1
  right = (centers[labels] + rng.standard_normal((1200, 4))).astype(np.float32)
  faithfulness = scores.class_faithfulness(logits, labels)
  assert faithfulness['class_faithfulness'] == pytest.approx(1 - 40 / 1200)
  assert faithfulness['class_faithfulness_per_class'] == pytest.approx([0.9, 1.0, 1.0])
  # each class matches its own images
  assert max(scores.intra_fid(right, labels, real_reference, 3)['intra_fid_per_class']) < 0.2
  # Samples of the right overall mix but every class's features drawn from another class:
  # the overall FID would not see it, intra-class FID does.
  swapped = (centers[(labels + 1) % 3] + rng.standard_normal((1200, 4))).astype(np.float32)
  assert scores.intra_fid(swapped, labels, real_reference, 3)['intra_fid'] > 100


def test_conditional_checkpoint_samples_one_class_and_reports_class_metrics(
    tmp_path, tiny_fashion, tiny_weights_dir, fast_compile):
  workdir = str(tmp_path / 'run')
  _train_smoke('cond_sngan.py', workdir, tiny_fashion)
  output = str(tmp_path / 'samples.npy')
  done = subprocess.run([sys.executable, '-m', 'gan_jax.sample', '--workdir', workdir,
                         '--num_samples', '6', '--label', '3', '--truncation', '0.5',
                         '--output', output], capture_output=True, text=True, check=False)
  assert done.returncode == 0, done.stderr
  assert done.stdout.strip().endswith(
      f'to {output}: class 3 only, latents truncated to [-0.5, 0.5].'), done.stdout
  loaded = checkpoints.load(workdir)
  expected = sample.sample(loaded, 6, seed=0, label=3, truncation=0.5)
  np.testing.assert_allclose(np.load(output), expected, atol=1e-6)
  assert not np.allclose(expected, sample.sample(loaded, 6, seed=0, label=4, truncation=0.5))
  result = evaluate.evaluate_checkpoint(workdir, num_samples=20, options=evaluate.Options(
      feature_weights_dir=tiny_weights_dir, cache=str(tmp_path / 'cache')))
  assert 0 <= result['class_faithfulness'] <= 1
  assert len(result['class_faithfulness_per_class']) == 10
  assert len(result['intra_fid_per_class']) == 10
