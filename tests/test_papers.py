"""The papers' settings: each preset holds its paper's numbers, the README's commands train it
2 steps on tfds's mock data, and launch/sweeps/papers.py runs them all with the papers' scores
beside ours in launch.summary."""
import json
import math
import os
import re
import subprocess
import sys

import pytest

from gan_jax import growth, validation
from gan_jax.errors import UserError
from launch import hyper, spec, summary
from test_train import load_experiment

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))
MOCKED_MAIN = os.path.join(REPO, 'tests', 'mocked_main.py')

# What each paper (and its authors' code) sets, written out by hand from the sources that each
# experiment's header cites: a preset that drifts from its paper fails here.
def ADAM(rate, b1, b2):  # pylint: disable=invalid-name
  return {f'{net}_optimizer.{name}': value for net in 'gd'
          for name, value in (('learning_rate', rate), ('b1', b1), ('b2', b2))}


PAPERS = {
    'wgan_gp.py:cifar10': {  # Gulrajani et al. (2017), Appendix F; gan_cifar_resnet.py
        'dataset': 'cifar10', 'model.name': 'resnet', 'model.conditional': False,
        'model.width': 128, 'model.d_width': 128, 'model.latent_dim': 128,
        'model.spectral_norm': False, 'loss': 'wasserstein', 'gradient_penalty': 10.0,
        'n_critic': 5, 'batch_size': 64, 'num_steps': 100_000, 'lr_schedule': 'linear',
        'g_ema_decay': 0.0, **ADAM(2e-4, 0.0, 0.9)},
    'resnet_sngan.py:cifar10': {  # Miyato et al. (2018), Table 2; sn_cifar10_unconditional.yml
        'dataset': 'cifar10', 'model.name': 'resnet', 'model.conditional': False,
        'model.width': 256, 'model.d_width': 128, 'model.latent_dim': 128,
        'model.spectral_norm': True, 'loss': 'hinge', 'n_critic': 5, 'batch_size': 64,
        'num_steps': 50_000, 'lr_schedule': 'linear', 'g_ema_decay': 0.0,
        **ADAM(2e-4, 0.0, 0.9)},
    'cond_sngan.py:cifar10': {  # Miyato & Koyama (2018); sn_cifar10_conditional.yml
        'dataset': 'cifar10', 'model.name': 'resnet', 'model.conditional': True,
        'model.width': 256, 'model.d_width': 128, 'model.latent_dim': 128,
        'model.spectral_norm': True, 'loss': 'hinge', 'n_critic': 5, 'batch_size': 64,
        'num_steps': 50_000, 'lr_schedule': 'linear', 'g_ema_decay': 0.0,
        **ADAM(2e-4, 0.0, 0.9)},
    'biggan.py:cifar10': {  # BigGAN-PyTorch, scripts/launch_cifar_ema.sh
        'dataset': 'cifar10', 'model.name': 'biggan', 'model.conditional': True,
        'model.width': 256, 'model.d_width': 256, 'model.latent_dim': 128,
        'model.attention_resolution': 0, 'loss': 'hinge', 'n_critic': 4, 'batch_size': 50,
        'num_steps': 500 * 50_000 // (4 * 50), 'orthogonal_reg': 0.0, 'lr_schedule': 'constant',
        'g_ema_decay': 0.9999, 'g_ema_start': 1000, **ADAM(2e-4, 0.0, 0.999)},
    'stylegan2.py:cifar10': {  # stylegan2-ada-pytorch, train.py --cfg=cifar
        'dataset': 'cifar10', 'model.name': 'stylegan2', 'model.width': 512,
        'model.latent_dim': 512, 'model.mapping_layers': 2, 'model.mbstd_group_size': 32,
        'model.style_mixing': 0.0, 'loss': 'non_saturating', 'r1_gamma': 0.01, 'r1_every': 16,
        'pl_weight': 0.0, 'n_critic': 1, 'batch_size': 64, 'num_steps': 100_000 * 1000 // 64,
        'g_ema_decay': 0.0, 'g_ema_kimg': 500, 'g_ema_rampup': 0.05,
        **ADAM(0.0025, 0.0, 0.99)},
    'dcgan64.py:celeb_a': {  # Radford et al. (2016), Section 4 and Figure 1
        'dataset': 'celeb_a', 'data.image_size': 64, 'model.name': 'dcgan', 'model.width': 128,
        'model.latent_dim': 100, 'model.latent_prior': 'uniform', 'model.d_batch_norm': True,
        'loss': 'non_saturating', 'n_critic': 1, 'batch_size': 128,
        'num_steps': math.ceil(25 * 162_770 / 128), 'g_ema_decay': 0.0,
        **ADAM(2e-4, 0.5, 0.999)},
    'progan.py:celeb_a_hq': {  # Karras et al. (2018), Appendix A.1; config.py preset-v1-1gpu
        'dataset': 'celeb_a_hq/1024', 'data.random_flip': True, 'model.name': 'progan',
        'model.width': 512, 'model.latent_dim': 512, 'model.mbstd_group_size': 16,
        'loss': 'wasserstein', 'gradient_penalty': 10.0, 'drift_penalty': 0.001, 'n_critic': 1,
        'growth.fade_images': 800_000, 'growth.stable_images': 800_000, 'batch_size': 16,
        # minibatch_dict {256: 14, 512: 6, 1024: 3} over the stages 4, 8, ..., 1024
        'growth.batch_sizes': (16, 16, 16, 16, 16, 16, 14, 6, 3),
        'num_steps': 3_264_285, 'g_ema_decay': 0.999, **ADAM(0.001, 0.0, 0.99)},
}


def _field(config, dotted):
  for part in dotted.split('.'):
    config = config[part]
  return config


def _readme_section():
  with open(os.path.join(REPO, 'README.md'), encoding='utf-8') as f:
    return f.read().split("### The papers' settings", 1)[1].split('\n## ', 1)[0]


def _readme_rows():
  """{preset: the cells of its row} of the README's table of the papers' presets."""
  rows = {}
  for line in _readme_section().splitlines():
    cells = [cell.strip() for cell in line.strip('|').split('|')]
    if line.startswith('| `') and len(cells) == 7:
      rows[cells[0].strip('`')] = cells
  return rows


@pytest.mark.parametrize('preset', PAPERS)
def test_each_preset_holds_its_papers_settings(preset):
  path, _, arg = preset.partition(':')
  config = load_experiment(os.path.join(REPO, 'experiments', path), arg)
  validation.validate(config, num_devices=1)
  for field, value in PAPERS[preset].items():
    assert _field(config, field) == pytest.approx(value, rel=1e-12), (preset, field)


def test_progans_steps_show_the_papers_19_million_images_at_its_per_side_batches():
  config = load_experiment(os.path.join(REPO, 'experiments', 'progan.py'), 'celeb_a_hq')
  shown = lambda steps: growth.images_before(config, steps + 1, 1024)  # after `steps` updates
  assert shown(config.num_steps - 1) < 19_000_000 <= shown(config.num_steps)


def test_the_readme_lists_every_preset_with_the_sweeps_numbers_and_none_of_ours():
  rows = _readme_rows()
  assert list(rows) == list(PAPERS)
  sweep = {hyper.experiment_name(run.config): run.published
           for run in spec.load(os.path.join(REPO, 'launch', 'sweeps', 'papers.py')).runs}
  for preset, (_, command, _, published, _, hours, ours) in rows.items():
    assert command == (f'`python -m gan_jax.main --config experiments/{preset} --workdir '
                       f'runs/{hyper.experiment_name(preset)}`')
    scores = {name: [float(value) for value in re.findall(rf'\b{label} (\d+\.\d+)', published)]
              for name, label in (('inception_score', 'IS'), ('fid', 'FID'))}
    for score, value in sweep[hyper.experiment_name(preset)].items():
      assert scores[score][0] == value, (preset, score)  # the first is the one compared
    # The estimate the experiment's header gives, and no score of ours before we measure one.
    with open(os.path.join(REPO, 'experiments', preset.split(':')[0]), encoding='utf-8') as f:
      header = ' '.join(f.read().split('"""')[1].split())
    assert f'about {hours} H100 hours' in header, preset
    assert ours == 'not measured yet'


def test_the_readmes_flops_command_gives_the_headers_count():
  """The README's FLOP count behind the hour estimates, for the cheapest preset to compile:
  the number its header states, from the command as the README gives it."""
  (command,) = re.findall(r'`(python -m gan_jax\.benchmark [^`]*--flops_only)`',
                          ' '.join(_readme_section().split()))
  command = command.replace('NAME.py:PRESET', 'dcgan64.py:celeb_a').split()
  result = subprocess.run([sys.executable, *command[1:]], cwd=REPO, capture_output=True,
                          text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  flops = json.loads(result.stdout.splitlines()[-1])['flops_per_step']
  with open(os.path.join(REPO, 'experiments', 'dcgan64.py'), encoding='utf-8') as f:
    stated = re.search(r'([\d.]+) TFLOP per step', ' '.join(f.read().split()))[1]
  assert flops / 1e12 == pytest.approx(float(stated), abs=0.01)


@pytest.fixture(scope='module')
def manual_dir(tmp_path_factory):
  """A folder with a file in it: CelebA-HQ's manual download as far as the mock is concerned."""
  folder = tmp_path_factory.mktemp('manual')
  (folder / 'data1024x1024.tar').touch()
  return str(folder)


@pytest.mark.parametrize('preset', PAPERS)
def test_the_readmes_command_trains_the_preset_2_steps_on_mock_data(preset, tmp_path, manual_dir):
  """The README's command, word for word, with tfds's mock data (tests/mocked_main.py) for the
  data set and overrides for 2 steps of one D update each at batch 8 (n_critic is checked
  above; unrolled, 4 or 5 D updates take 3-4 times as long to compile): the preset's
  networks, losses and regularisers, compiled and trained."""
  command = _readme_rows()[preset][1].strip('`').split()
  assert command[:3] == ['python', '-m', 'gan_jax.main']
  workdir = str(tmp_path / command[-1])
  overrides = ['--config.num_steps=2', '--config.batch_size=8', '--config.n_critic=1',
               '--config.log_every=1',
               '--config.sample_every=2', '--config.checkpoint_every=2',
               '--config.num_grid_samples=4', f'--config.data.data_dir={tmp_path / "tfds"}',
               f'--config.data.manual_dir={manual_dir}']
  if preset.startswith('progan'):  # a step at 4x4, then one fading 8x8 in, as :smoke grows
    overrides += ['--config.growth.stable_images=8', '--config.growth.fade_images=8']
  result = subprocess.run(
      [sys.executable, MOCKED_MAIN, *command[3:-1], workdir, *overrides], cwd=REPO,
      env={**os.environ, 'JAX_DISABLE_MOST_OPTIMIZATIONS': '1'}, capture_output=True,
      text=True, timeout=900)
  assert result.returncode == 0, result.stderr[-3000:]
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    lines = [json.loads(line) for line in f]
  assert [line['step'] for line in lines] == [1, 2]
  assert all(math.isfinite(line['d_loss']) and math.isfinite(line['g_loss']) for line in lines)
  with open(os.path.join(workdir, 'config.json')) as f:
    saved = json.load(f)
  expected = load_experiment(os.path.join(REPO, 'experiments', preset.split(':')[0]),
                             preset.split(':')[1])
  assert saved['dataset'] == expected.dataset and saved['model'] == expected.model.to_dict()
  assert os.path.exists(os.path.join(workdir, 'samples', 'step_000002.png'))


# --- the sweep and its summary ---

def launch_cli(program, *args):
  return subprocess.run([sys.executable, '-m', f'launch.{program}', *args], cwd=REPO,
                        capture_output=True, text=True, timeout=600)


def test_the_papers_sweep_runs_each_preset_once_named_after_it(monkeypatch):
  monkeypatch.chdir(REPO)
  for arg, overrides in ((None, {}), ('cpu', {'num_steps': 2, 'batch_size': 8})):
    sweep = spec.load('launch/sweeps/papers.py' + (f':{arg}' if arg else ''))
    assert [sweep.experiment(run) for run in sweep.runs] == [
        f'experiments/{preset}' for preset in PAPERS]
    assert [run.name for run in sweep.runs] == [hyper.experiment_name(preset)
                                                for preset in PAPERS]
    assert all(overrides.items() <= run.overrides.items() for run in sweep.runs)
    built = spec.check_runs(sweep)
    assert built['wgan_gp_cifar10'].model.width == 128 and built['biggan_cifar10'].n_critic == 4
  published = {run.name: run.published for run in sweep.runs}
  assert published['dcgan64_celeb_a'] == {}
  assert published['resnet_sngan_cifar10'] == {'inception_score': 8.22, 'fid': 21.7}


def test_a_sweep_of_several_experiments_names_its_runs_after_them():
  points = [{'seed': 0}, {'seed': 1}, {'seed': 0}]
  assert hyper.run_names(points, 'x', ['a', 'a', 'b_cpu']) == ['a,seed=0', 'a,seed=1',
                                                                'b_cpu,seed=0']
  assert hyper.run_names([{'num_steps': 2}, {'num_steps': 2}], 'x', ['a', 'b']) == ['a', 'b']
  assert hyper.experiment_name('experiments/progan.py:celeb_a_hq') == 'progan_celeb_a_hq'
  assert hyper.experiment_name('experiments/progan.py') == 'progan'


def test_a_bad_experiment_in_a_sweep_is_one_error_line(tmp_path):
  path = tmp_path / 'bad.py'
  path.write_text('from launch import hyper\n\n\ndef get_sweep(arg=None):\n'
                  "  return [hyper.Experiment('experiments/ns_gan.py', {'seed': 1})]\n")
  with pytest.raises(UserError, match='a hyper.Experiment holds an experiment path, a list of '
                                      'override dicts and published scores by name'):
    spec.load(str(path))


def _readme_commands(program):
  return [line.split()[3:] for line in _readme_section().splitlines()
          if line.startswith(f'python -m launch.{program} ')]


def test_the_readmes_sweep_command_writes_a_task_per_preset(tmp_path):
  sky = pytest.importorskip('sky')
  (args,) = _readme_commands('sweep')
  assert '--dry_run' in args
  args = [arg.replace('gs://BUCKET', 'gs://bucket') for arg in args]
  result = launch_cli('sweep', *args, f'--root={tmp_path}')
  assert result.returncode == 0, result.stderr
  lines = result.stdout.splitlines()
  assert len(lines) == len(PAPERS)
  for line, preset in zip(lines, PAPERS):
    name = hyper.experiment_name(preset)
    task = sky.Task.from_yaml(line.split()[-1])
    assert (f'-m gan_jax.main --config=experiments/{preset} '
            f'--workdir=gs://bucket/sweeps/papers/{name}') in task.run
    assert spec.read_record(str(tmp_path / 'papers' / name))['config'] == f'experiments/{preset}'


def test_the_readmes_summary_command_puts_the_papers_scores_beside_ours(tmp_path, monkeypatch):
  monkeypatch.chdir(REPO)
  sweep = spec.load('launch/sweeps/papers.py')
  (args,) = _readme_commands('summary')
  assert args == ['runs/sweeps/papers']
  sweep_dir = tmp_path / 'papers'
  for run in sweep.runs:  # as a local sweep leaves its runs: the first two trained and scored
    run_dir = sweep_dir / run.name
    run_dir.mkdir(parents=True)
    record = spec.new_record(sweep, run, str(run_dir), ['python'])
    trained = run.name in ('wgan_gp_cifar10', 'resnet_sngan_cifar10')
    if trained:
      record['attempts'] = [{'seconds': 60.0, 'returncode': 0, 'stopped': False}]
      (run_dir / 'config.json').write_text(json.dumps({'num_steps': 10, 'train_minutes': 0}))
      (run_dir / 'metrics.jsonl').write_text('{"step": 10}\n')
      (run_dir / 'eval.jsonl').write_text(json.dumps({'step': 10, 'fid': 30.5,
                                                      'inception_score': 7.5}) + '\n')
    spec.write_record(str(run_dir), record)
  header, cells = summary.table(summary.read_sweep(str(sweep_dir)))
  assert header == ['run', 'experiment', 'status', 'step', 'wall', 'eval_step', 'fid',
                    'paper_fid', 'inception_score', 'paper_inception_score']
  rows = {row[0]: dict(zip(header, row)) for row in cells}
  assert rows['resnet_sngan_cifar10'] == {
      'run': 'resnet_sngan_cifar10', 'experiment': 'resnet_sngan_cifar10', 'status': 'done',
      'step': 10, 'wall': '1m00s', 'eval_step': 10, 'fid': 30.5, 'paper_fid': 21.7,
      'inception_score': 7.5, 'paper_inception_score': 8.22}
  assert (rows['progan_celeb_a_hq']['paper_fid'], rows['progan_celeb_a_hq']['fid']) == (7.3, None)
  assert rows['dcgan64_celeb_a']['paper_fid'] is None
  result = launch_cli('summary', str(sweep_dir))
  assert result.returncode == 0, result.stderr
  assert result.stdout.splitlines()[0].split() == header[1:]
