"""The programs as a user runs them: each error once in one line, quiet logs, a last word."""
import os
import re
import shutil
import stat
import subprocess
import sys

import numpy as np
import pytest

from gan_jax import checkpoints, train
from test_train import load_experiment

# One xdist worker runs this module's tests: it builds the module's `trained` once.
pytestmark = pytest.mark.xdist_group(__name__)

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))
GAN_JAX = os.listdir(os.path.join(REPO, 'gan_jax'))
# absl's log line prefix: `I1201 10:36:03.515910 140664811551616 xla_bridge.py:849] ...`.
LOG_LINE = re.compile(r'^([IWEF])\d{4} [\d:.]+ +\d+ ([^:\]]+):\d+\] ')


def run(program, *args, cwd=REPO):
  """Runs `python -m gan_jax.<program> args`; returns (exit status, stdout + stderr)."""
  done = subprocess.run([sys.executable, '-m', f'gan_jax.{program}', *args], cwd=cwd,
                        capture_output=True, text=True, timeout=300)
  return done.returncode, done.stdout + done.stderr


def main(workdir, *args, config='experiments/toy_ring.py:smoke'):
  return run('main', f'--config={config}', f'--workdir={workdir}', *args)


def assert_one_error(status, output, message):
  """The program failed with `message` (a prefix of the Error line) once, and nothing else."""
  assert status == 1 and 'Traceback' not in output, output[-3000:]
  assert output.count(message) == 1, output[-3000:]
  errors = [line for line in output.splitlines() if 'Error' in line]
  assert len(errors) == 1 and errors[0].startswith(message), output[-3000:]


def other_libraries_info(output):
  """The INFO lines of `output` logged outside gan_jax (jax's backends, orbax's saves)."""
  return [line for line in output.splitlines()
          if (match := LOG_LINE.match(line)) and match[1] == 'I' and match[2] not in GAN_JAX]


def test_missing_config_file_is_named(tmp_path):
  status, output = main(tmp_path, '--config.batch_size=8', config='experiments/nope.py')
  assert_one_error(status, output,
                   f'Error: Config file experiments/nope.py does not exist (in {REPO}).')


@pytest.mark.parametrize('source, message', [
    ('from gan_jax import configs\n\ndef get_config(arg=None):\n  return confgs.default()\n',
     "failed at line 4: NameError: name 'confgs' is not defined"),
    ('def get_config(arg=None)\n  return None\n', "failed at line 1: SyntaxError: expected ':'"),
])
def test_config_file_that_fails_shows_its_own_error(tmp_path, source, message):
  path = tmp_path / 'broken.py'
  path.write_text(source)
  status, output = main(tmp_path / 'run', config=str(path))
  assert_one_error(status, output, f'Error: Config file {path} {message}')


def test_override_typo_reads_as_a_sentence(tmp_path):
  status, output = main(tmp_path, '--config.batch_sise=8')
  assert_one_error(status, output, "Error in a --config override: Unknown field "
                   "'config.batch_sise'. Did you mean 'config.batch_size'?")


def test_nested_override_typo_is_named_in_full(tmp_path):
  status, output = main(tmp_path, '--config.d_optimizer.learning_rte=1e-3')
  assert_one_error(status, output, "Error in a --config override: Unknown field "
                   "'config.d_optimizer.learning_rte'. Did you mean "
                   "'config.d_optimizer.learning_rate'?")


def test_config_file_with_a_nested_typo_is_named_in_full(tmp_path):
  path = tmp_path / 'typo.py'
  path.write_text('from gan_jax import configs\n\n'
                  'def get_config(arg=None):\n'
                  "  config = configs.apply_preset(configs.toy('ring8'), arg)\n"
                  '  config.d_optimizer.learning_rte = 1e-3  # the typo\n'
                  '  return config\n')
  status, output = main(tmp_path / 'run', config=f'{path}:smoke')
  assert_one_error(status, output, "Error: Unknown field 'config.d_optimizer.learning_rte'. "
                   "Did you mean 'config.d_optimizer.learning_rate'?")


@pytest.mark.parametrize('workdir, blocked_at, reason', [
    ('/proc/gan_jax_test/run', '/proc', 'No such file or directory'),
    ('{tmp}/a_file/run', '{tmp}/a_file', 'Not a directory'),  # a file where a folder should be
])
def test_new_workdir_that_cannot_be_written_is_one_line(tmp_path, workdir, blocked_at, reason):
  (tmp_path / 'a_file').write_text('kept')
  workdir, blocked_at = workdir.format(tmp=tmp_path), blocked_at.format(tmp=tmp_path)
  status, output = main(workdir)
  assert_one_error(status, output, f'Error: --workdir {workdir} cannot be written: creating a '
                   f'file in {blocked_at} failed ({reason}). Nothing was written;')
  assert os.listdir(tmp_path) == ['a_file'] and (tmp_path / 'a_file').read_text() == 'kept'


def test_existing_workdir_that_cannot_be_written_keeps_its_checkpoints(tmp_path):
  workdir = tmp_path / 'run'
  train.train_and_evaluate(load_experiment(f'{REPO}/experiments/toy_ring.py', 'smoke'),
                           str(workdir))  # a checkpoint at step 2
  # Root writes through permission bits, not into an immutable folder (ext4, xfs, btrfs).
  if shutil.which('chattr') is None or subprocess.run(['chattr', '+i', workdir]).returncode:
    pytest.skip('chattr +i is not available here')
  try:
    status, output = main(workdir, '--config.num_steps=4')
  finally:
    subprocess.run(['chattr', '-i', workdir], check=True)
  assert_one_error(status, output, f'Error: --workdir {workdir} cannot be written: creating a '
                   f'file in {workdir} failed (Operation not permitted).')
  assert int(checkpoints.load(str(workdir)).state.step) == 2


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
  """(workdir, output) of `gan_jax.main` on the toy ring's 2-step smoke config."""
  workdir = tmp_path_factory.mktemp('cli') / 'run'
  status, output = main(workdir)
  assert status == 0, output[-3000:]
  return workdir, output


def test_training_ends_saying_what_was_done_and_how_to_evaluate(trained):
  workdir, output = trained
  last = output.strip().splitlines()[-1]
  assert re.search(rf'Trained to step 2 of 2 in \d+s: samples in {workdir}/samples/, '
                   rf'checkpoints in {workdir}/checkpoints/\. Evaluate them with: '
                   rf'python -m gan_jax.evaluate --workdir {workdir}$', last), last
  assert output.count('Trained to step') == 1


def test_training_logs_only_its_own_info_lines_by_default(trained):
  _, output = trained
  assert not other_libraries_info(output), other_libraries_info(output)
  assert "Unable to initialize backend 'tpu'" not in output
  assert '[2] d_accuracy=' in output  # the metrics still show


def test_sample_pngs_have_the_usual_permissions(trained):
  workdir, _ = trained
  umask = os.umask(0)
  os.umask(umask)
  mode = stat.S_IMODE(os.stat(workdir / 'samples' / 'step_000002.png').st_mode)
  assert mode == 0o666 & ~umask == stat.S_IMODE(os.stat(workdir / 'config.json').st_mode)


def test_samples_go_into_the_workdir_by_default(trained):
  workdir, _ = trained
  status, output = run('sample', f'--workdir={workdir}', '--num_samples=12', '-v', '1')
  assert status == 0, output[-3000:]
  assert f'from step 2 to {workdir}/samples.npy: untruncated latents.' in output
  assert np.load(workdir / 'samples.npy').shape == (12, 2)
  # -v 1 shows the other libraries' lines too: orbax's, loading the checkpoint.
  assert any('CheckpointManager' in line for line in other_libraries_info(output)), output[-3000:]


def test_evaluate_logs_nothing_but_its_result_by_default(trained, tmp_path):
  workdir, _ = trained
  status, output = run('evaluate', f'--workdir={workdir}', '--num_samples=50',
                       f'--cache_dir={tmp_path}')
  assert status == 0, output[-3000:]
  assert output.strip().startswith('{"step": 2') and len(output.strip().splitlines()) == 1
