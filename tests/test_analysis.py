"""The notebook API: interpolation, nearest neighbours, metric tables, and the notebook itself."""
import json
import os
import subprocess
import sys

import nbformat
import numpy as np
import pytest

from gan_jax import analysis, sample, train
from conftest import compiled_for_speed_of_compiling
from test_train import load_experiment

ROOT = os.path.join(os.path.dirname(__file__), '..')
NOTEBOOK = os.path.join(ROOT, 'experiments', 'analyze_checkpoint.ipynb')
README = os.path.join(ROOT, 'README.md')
README_WORKDIR = 'runs/sngan_cpu'  # the workdir of the README's commands


@pytest.mark.parametrize('method', ['linear', 'slerp'])
def test_interpolation_starts_and_ends_at_the_endpoints_exactly(method):
  z0, z1 = np.random.default_rng(0).standard_normal((2, 16)).astype(np.float32)
  path = analysis.interpolate(z0, z1, 7, method)
  assert path.shape == (7, 16) and path.dtype == np.float32
  np.testing.assert_array_equal(path[0], z0)
  np.testing.assert_array_equal(path[-1], z1)


def test_linear_midpoint_is_the_mean():
  path = analysis.interpolate(np.array([0.0, 2.0]), np.array([4.0, -2.0]), 3, 'linear')
  np.testing.assert_allclose(path[1], [2.0, 0.0])


def test_slerp_keeps_the_norm_of_equal_norm_endpoints():
  z0, z1 = np.random.default_rng(1).standard_normal((2, 100))
  z1 *= np.linalg.norm(z0) / np.linalg.norm(z1)
  path = analysis.interpolate(z0, z1, 11, 'slerp')
  np.testing.assert_allclose(np.linalg.norm(path, axis=1), np.linalg.norm(z0), rtol=1e-12)
  # The straight line cuts inside the sphere.
  assert np.linalg.norm(analysis.interpolate(z0, z1, 3, 'linear')[1]) < 0.9 * np.linalg.norm(z0)


def test_slerp_follows_the_great_circle():
  path = analysis.interpolate(np.array([1.0, 0.0]), np.array([0.0, 1.0]), 3, 'slerp')
  np.testing.assert_allclose(path[1], [np.sqrt(0.5), np.sqrt(0.5)])  # 45 degrees


@pytest.mark.parametrize('z1', [[2.0, 4.0], [-1.0, -2.0], [0.0, 0.0]],
                         ids=['parallel', 'opposite', 'zero'])
def test_slerp_of_vectors_spanning_no_plane_is_the_straight_line(z1):
  z0 = np.array([1.0, 2.0])
  np.testing.assert_allclose(analysis.interpolate(z0, np.array(z1), 5, 'slerp'),
                             analysis.interpolate(z0, np.array(z1), 5, 'linear'))


def test_unknown_interpolation_method():
  with pytest.raises(ValueError, match='slerp'):
    analysis.interpolate(np.zeros(2), np.ones(2), 3, 'cubic')


def test_nearest_neighbours_by_hand():
  references = np.array([[0.0, 0.0], [3.0, 4.0], [10.0, 0.0], [1.0, 1.0]])
  queries = np.array([[3.0, 4.0], [9.0, 0.0], [0.0, 0.5]])
  indices, distances = analysis.nearest_neighbours(queries, references, k=2)
  np.testing.assert_array_equal(indices, [[1, 3], [2, 1], [0, 3]])
  np.testing.assert_allclose(distances, [[0.0, np.sqrt(13)], [1.0, np.sqrt(52)],
                                         [0.5, np.sqrt(1.25)]], rtol=1e-6)
  assert distances.dtype == np.float32 and distances[0, 0] == 0.0  # a copy is at exactly 0


def test_nearest_neighbours_are_the_same_in_any_chunks():
  rng = np.random.default_rng(2)
  references = rng.random((50, 4, 4, 1), np.float32)
  queries = rng.random((13, 4, 4, 1), np.float32)
  squared = np.sum((queries.reshape(13, 1, -1) - references.reshape(1, 50, -1))**2, axis=-1)
  expected = np.argsort(squared, axis=1)[:, :3]
  for chunk_size in (1, 4, 13, 256):
    indices, distances = analysis.nearest_neighbours(queries, references, k=3,
                                                     chunk_size=chunk_size)
    np.testing.assert_array_equal(indices, expected)
    np.testing.assert_allclose(distances, np.sqrt(np.take_along_axis(squared, expected, 1)),
                               rtol=1e-5)


def test_tile_rows_lays_out_rows_of_tiles():
  rows = np.zeros((2, 3, 4, 5, 1), np.float32)
  rows[1, 2] = 1.0  # the last tile of the second row is white
  image = analysis.tile_rows(rows)
  assert image.shape == (2 * 4 + 2, 3 * 5 + 2 * 2, 1) and image.dtype == np.uint8  # 2-pixel lines
  assert image[6:, 14:].min() == 255 and image[:4, :5].max() == 0 and image[4:6].min() == 255


def _write_jsonl(path, records):
  with open(path, 'w') as f:
    f.writelines(json.dumps(record) + '\n' for record in records)


def test_metric_table_aligns_training_and_eval_metrics_on_step(tmp_path):
  _write_jsonl(tmp_path / 'metrics.jsonl', [
      {'step': 1, 'd_loss': 1.0, 'g_loss': 2.0},
      {'step': 2, 'd_loss': 0.5, 'g_loss': None},  # a non-finite value, logged as null
      {'step': 3, 'd_loss': 0.4, 'g_loss': 1.0},
      {'step': 2, 'd_loss': 0.6, 'g_loss': 1.5},  # logged again after a resume: this one counts
  ])
  _write_jsonl(tmp_path / 'eval.jsonl', [
      {'step': 4, 'fid': 30.0, 'floor': {'fid': 1.0}, 'feature_net': 'inception'},
      {'step': 2, 'fid': 50.0, 'floor': {'fid': 1.0}, 'feature_net': 'inception'},
  ])
  table = analysis.metric_table(str(tmp_path))
  assert sorted(table) == ['d_loss', 'feature_net', 'fid', 'floor/fid', 'g_loss', 'step']
  np.testing.assert_array_equal(table['step'], [1, 2, 3, 4])
  np.testing.assert_array_equal(table['d_loss'], [1.0, 0.6, 0.4, np.nan])
  np.testing.assert_array_equal(table['g_loss'], [2.0, 1.5, 1.0, np.nan])
  np.testing.assert_array_equal(table['fid'], [np.nan, 50.0, np.nan, 30.0])
  np.testing.assert_array_equal(table['floor/fid'], [np.nan, 1.0, np.nan, 1.0])
  assert list(table['feature_net']) == [None, 'inception', None, 'inception']
  # Without eval.jsonl, the training metrics alone.
  os.remove(tmp_path / 'eval.jsonl')
  assert sorted(analysis.metric_table(str(tmp_path))) == ['d_loss', 'g_loss', 'step']


@pytest.fixture(scope='module')
def workdir(tmp_path_factory, tiny_fashion):
  """A 2-step ns_gan smoke run on the 20 tiny training images."""
  config = load_experiment(os.path.join(ROOT, 'experiments', 'ns_gan.py'), 'smoke')
  config.data.manual_dir, config.data.data_dir = tiny_fashion
  path = str(tmp_path_factory.mktemp('ns_gan_smoke'))
  with compiled_for_speed_of_compiling():  # XLA's optimisations: ~3/4 of this run's time
    train.train_and_evaluate(config, path)
  return path


def test_load_generates_like_the_sample_cli(workdir):
  run = analysis.load(workdir)
  assert run.step == 2 and run.is_image
  samples = run.sample(5, seed=3)
  assert samples.shape == (5, 28, 28, 1) and 0 <= samples.min() and samples.max() <= 1
  np.testing.assert_allclose(samples, sample.sample(run.loaded, 5, seed=3), atol=1e-6)
  np.testing.assert_allclose(run.generate(run.latents(5, seed=3)), samples, atol=1e-6)
  strip = analysis.interpolation_strip(run, *run.latents(2, seed=1), num=4)
  assert strip.shape == (2 * 28 + 2, 4 * 28 + 3 * 2, 1)


def test_training_images_find_themselves(workdir):
  run = analysis.load(workdir)
  images = analysis.training_images(run.config)
  assert images.shape == (20, 28, 28, 1) and images.dtype == np.float32
  # tests/idx_files.py writes pixel [0, 0] of image i as i.
  np.testing.assert_allclose(images[:, 0, 0, 0] * 255, np.arange(20), atol=1e-4)
  indices, distances = analysis.nearest_neighbours(images[[7, 3]], images, k=1)
  np.testing.assert_array_equal(indices[:, 0], [7, 3])
  np.testing.assert_array_equal(distances[:, 0], [0.0, 0.0])


def readme_notebook_commands():
  """The README's commands that execute the notebook and save it, with its HTML page."""
  with open(README, encoding='utf-8') as f:
    return [line.split('   #')[0].strip() for line in f
            if line.startswith(('GAN_JAX_WORKDIR=', 'jupyter nbconvert'))]


@pytest.fixture(scope='module')
def executed_notebook(stylegan2_workdir):
  """Runs the README's notebook commands, word for word but on a StyleGAN2 smoke workdir (the
  one model that uses every cell), once."""
  workdir = stylegan2_workdir
  commands = readme_notebook_commands()
  assert len(commands) == 2 and all(README_WORKDIR in command for command in commands)
  env = {**os.environ, 'JAX_DISABLE_MOST_OPTIMIZATIONS': '1',  # the kernel's compiles, as above
         # `jupyter` as installed beside this interpreter, as `pip install` puts it on PATH.
         'PATH': os.path.dirname(sys.executable) + os.pathsep + os.environ.get('PATH', '')}
  for command in commands:
    result = subprocess.run(command.replace(README_WORKDIR, workdir), shell=True, cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
  return workdir


def test_notebook_shows_the_readme_commands():
  notebook = nbformat.read(NOTEBOOK, as_version=4)
  # The committed file has no outputs, so that it diffs as code.
  assert all(not cell.get('outputs') for cell in notebook.cells)
  assert all(command in notebook.cells[0].source for command in readme_notebook_commands())


def test_executed_notebook_is_saved_in_the_workdir_with_its_figures(executed_notebook):
  notebook = nbformat.read(os.path.join(executed_notebook, 'analyze_checkpoint.ipynb'),
                           as_version=4)
  outputs = [output for cell in notebook.cells for output in cell.get('outputs', [])]
  assert not [output for output in outputs if output.output_type == 'error']
  images = [output for output in outputs if 'image/png' in output.get('data', {})]
  # Curves (one figure), the sample grid, the interpolation strip, style mixing, the line in
  # W, the neighbours.
  assert len(images) >= 6
  printed = ''.join(output.get('text', '') for output in outputs)
  assert f'{executed_notebook}: stylegan2 on fashion_mnist' in printed  # this workdir
  assert 'checkpoint at step 2 of 2, the end of config.num_steps;' in printed  # what ended it
  assert 'python -m gan_jax.evaluate --workdir' in printed  # no eval.jsonl in a fresh run


def test_html_page_holds_the_figures(executed_notebook):
  with open(os.path.join(executed_notebook, 'analyze_checkpoint.html'), encoding='utf-8') as f:
    page = f.read()
  notebook = nbformat.read(os.path.join(executed_notebook, 'analyze_checkpoint.ipynb'),
                           as_version=4)
  figures = [output.data['image/png'] for cell in notebook.cells
             for output in cell.get('outputs', []) if 'image/png' in output.get('data', {})]
  # Embedded, so the page opens anywhere on its own.
  assert page.count('src="data:image/png;base64,') == len(figures) >= 4
  assert all(figure.strip() in page for figure in figures)
