"""gs:// workdirs: every file a run, gan_jax.sample and gan_jax.evaluate write goes to the bucket.

The bucket is tests/fake_bucket.py's: gs:// served from a local folder through the same
layers as Cloud Storage (fsspec for gan_jax.paths' files, tensorstore for orbax's arrays).
"""
import importlib
import json
import os
import subprocess
import sys

import numpy as np
from PIL import Image
import pytest
from tensorboard.backend.event_processing import event_accumulator

import fake_bucket
from gan_jax import analysis, checkpoints, paths
from gan_jax.errors import UserError
from launch import spec

# One xdist worker runs this module's tests: it builds the module's `bucket_run` once.
pytestmark = pytest.mark.xdist_group(__name__)

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))
WORKDIR = 'gs://bucket/runs/toy'


@pytest.fixture(scope='module')
def bucket_run(tmp_path_factory):
  """(root, outputs): a 2-step toy run in WORKDIR, resumed to step 4, then sampled and evaluated,
  each program with gs:// served from `root` and an empty cwd, HOME and TMPDIR."""
  root = tmp_path_factory.mktemp('buckets')
  local = {name: tmp_path_factory.mktemp(name) for name in ('cwd', 'home', 'tmp')}
  env = {**os.environ, 'HOME': str(local['home']), 'TMPDIR': str(local['tmp']),
         'PYTHONDONTWRITEBYTECODE': '1', 'JAX_DISABLE_MOST_OPTIMIZATIONS': 'true'}
  train = ['gan_jax.main', f'--config={REPO}/experiments/toy_ring.py:smoke', f'--workdir={WORKDIR}',
           '--config.eval_every=2', '--config.eval_num_samples=16',
           '--config.keep_best_checkpoint=True']
  commands = [train, train + ['--config.num_steps=4'],
              ['gan_jax.sample', f'--workdir={WORKDIR}', '--num_samples=20'],
              ['gan_jax.evaluate', f'--workdir={WORKDIR}', '--num_samples=50']]
  outputs = []
  for program, *flags in commands:
    done = subprocess.run([sys.executable, os.path.join(REPO, 'tests', 'fake_bucket.py'),
                           str(root), '-m', program, *flags], cwd=local['cwd'], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    outputs.append(done.stdout)
  return root, local, outputs


@pytest.fixture
def serve(monkeypatch):
  """serve(root): gs:// from `root` in this process, for the test."""
  yield lambda root: fake_bucket.install(str(root), monkeypatch)
  fake_bucket.clear_cached_filesystems()  # before monkeypatch gives gs:// back


def _files(directory):
  return sorted(os.path.relpath(os.path.join(folder, name), directory)
                for folder, _, names in os.walk(directory) for name in names)


def test_every_program_writes_nothing_on_the_local_disk(bucket_run):
  _, local, outputs = bucket_run
  for output in outputs:  # what each program's audit hook saw written outside the bucket
    assert json.loads(output.strip().splitlines()[-1]) == []
  # Writes from C++ (tensorstore) escape the hook; a path taken as local would land here.
  assert {name: _files(folder) for name, folder in local.items()} == {
      'cwd': [], 'home': [], 'tmp': []}


def test_every_file_of_the_workdir_is_in_the_bucket(bucket_run):
  root, _, _ = bucket_run
  workdir = root / 'bucket' / 'runs' / 'toy'
  files = _files(workdir)
  assert _files(root) == [os.path.join('bucket', 'runs', 'toy', f) for f in files]
  outside_checkpoints = [f for f in files
                         if not f.startswith(('checkpoints/', 'best_checkpoint/'))]
  assert [f for f in outside_checkpoints if not f.startswith('events.out.tfevents.')] == [
      'config.json', 'eval.jsonl', 'metrics.jsonl', 'samples.npy', 'samples/step_000002.png',
      'samples/step_000004.png', 'training.gif']
  assert len(outside_checkpoints) == 9  # an event file per training run
  assert {f.split('/')[1] for f in files if f.startswith('checkpoints/')} == {'2', '4'}
  assert any(f.startswith('checkpoints/4/state/') and '/d/' in f for f in files)  # orbax's arrays
  assert any(f.startswith('best_checkpoint/') for f in files)

  metrics = paths.read_jsonl(workdir / 'metrics.jsonl')  # the resumed run appended to it
  assert [row['step'] for row in metrics if 'd_loss' in row] == [1, 2, 3, 4]
  # Evaluated in training at steps 2 and 4, then by gan_jax.evaluate.
  evaluations = paths.read_jsonl(workdir / 'eval.jsonl')
  assert [(row['step'], row['num_samples']) for row in evaluations] == [(2, 16), (4, 16), (4, 50)]
  assert np.load(workdir / 'samples.npy').shape == (20, 2)
  assert Image.open(workdir / 'training.gif').n_frames == 2
  assert json.loads((workdir / 'config.json').read_text())['num_steps'] == 4
  tensorboard = event_accumulator.EventAccumulator(str(workdir), size_guidance={
      event_accumulator.SCALARS: 0, event_accumulator.IMAGES: 0}).Reload()
  assert sorted(event.step for event in tensorboard.Scalars('d_loss')) == [1, 2, 3, 4]
  assert sorted(event.step for event in tensorboard.Images('samples')) == [2, 4]


def test_the_readers_read_the_bucket(bucket_run, serve):
  serve(bucket_run[0])
  assert int(checkpoints.load(WORKDIR).state.step) == 4
  table = analysis.metric_table(WORKDIR)
  np.testing.assert_array_equal(table['step'], [1, 2, 3, 4])
  assert np.isfinite(table['modes_covered']).sum() == 2  # the evaluations' rows
  config, metrics, evaluations = spec.read_workdir(WORKDIR)
  assert config.num_steps == 4 and metrics[-1]['step'] == 4 and len(evaluations) == 3
  # `tensorboard --logdir gs://...`: TensorBoard reaches buckets through fsspec too.
  tensorboard = event_accumulator.EventAccumulator(WORKDIR).Reload()
  assert sorted(event.step for event in tensorboard.Scalars('d_loss')) == [1, 2, 3, 4]


def test_workdir_check_in_a_bucket_writes_and_deletes_one_object(serve, tmp_path, monkeypatch):
  serve(tmp_path / 'buckets')
  monkeypatch.chdir(tmp_path)
  checkpoints.check_workdir('gs://bucket/new/run')
  assert _files(tmp_path) == []


def test_workdir_check_in_a_bucket_that_refuses_the_write_is_one_error(serve, tmp_path):
  serve(tmp_path)
  (tmp_path / 'bucket').mkdir()
  (tmp_path / 'bucket' / 'blocked').write_text('a file, so no key can start with blocked/')
  with pytest.raises(UserError, match=r'^--workdir gs://bucket/blocked/run cannot be written'):
    checkpoints.check_workdir('gs://bucket/blocked/run')


def test_gs_without_gcsfs_says_how_to_install_it(monkeypatch):
  registry = importlib.import_module('fsspec.registry')  # not fsspec.registry, the mapping
  for protocol in fake_bucket.PROTOCOLS:
    monkeypatch.delitem(registry._registry, protocol, raising=False)
    monkeypatch.setitem(registry.known_implementations, protocol,
                        {'class': 'not_installed.GCSFileSystem', 'err': 'Install gcsfs'})
  with pytest.raises(UserError, match=r"pip install 'gan_jax\[gcs\]'"):
    checkpoints.check_workdir('gs://bucket/run')


def test_other_urls_are_refused():
  with pytest.raises(UserError, match='a local path or a gs:// URL'):
    paths.path('s3://bucket/run')


def test_an_object_appended_to_is_uploaded_whole_at_most_every_interval(serve, tmp_path,
                                                                         monkeypatch):
  serve(tmp_path)
  monkeypatch.setattr(paths, 'UPLOAD_EVERY_SECONDS', 3600.0)
  (tmp_path / 'bucket').mkdir()
  (tmp_path / 'bucket' / 'log').write_bytes(b'1\n')  # a resumed run's lines so far
  log = paths.open_append('gs://bucket/log')
  log.write(b'2\n')
  log.flush()  # the first upload
  assert (tmp_path / 'bucket' / 'log').read_bytes() == b'1\n2\n'
  log.write(b'3\n')
  log.flush()  # too soon after the first
  assert (tmp_path / 'bucket' / 'log').read_bytes() == b'1\n2\n'
  log.close()
  assert (tmp_path / 'bucket' / 'log').read_bytes() == b'1\n2\n3\n'
