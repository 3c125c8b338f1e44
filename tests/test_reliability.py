"""Runs that are killed, preempted, diverge, or meet a corrupt checkpoint or a full disk."""
import errno
import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from gan_jax import checkpoints, train
from gan_jax.errors import UserError
from test_train import assert_trees_equal, load_experiment

REPO = os.path.join(os.path.dirname(__file__), '..')
TMP_SUFFIX = '.orbax-checkpoint-tmp'


def toy_config(**overrides):
  config = load_experiment(os.path.join(REPO, 'experiments', 'toy_ring.py'), 'smoke')
  config.update(overrides)
  return config


def main_command(workdir, **overrides):
  """`python -m gan_jax.main` on the toy ring's smoke config with `--config.k=v` overrides."""
  return [sys.executable, '-m', 'gan_jax.main', '--config=experiments/toy_ring.py:smoke',
          f'--workdir={workdir}'] + [f'--config.{k}={v}' for k, v in overrides.items()]


def final_params(state):
  return jax.device_get((state.g_params, state.d_params))


def all_finite(tree):
  return all(np.all(np.isfinite(x)) for x in jax.tree.leaves(tree))


def test_sigkill_while_checkpointing_then_rerun_equals_uninterrupted_run(tmp_path):
  overrides = dict(num_steps=40, checkpoint_every=2, log_every=20, sample_every=40)
  workdir = tmp_path / 'killed'
  ckpt_dir = workdir / 'checkpoints'
  command = main_command(workdir, **overrides)

  def steps():
    return sorted(int(name) for name in os.listdir(ckpt_dir) if name.isdigit())

  def writing():  # orbax writes into `<step>.orbax-checkpoint-tmp`, then renames it
    names = os.listdir(ckpt_dir) if ckpt_dir.exists() else []
    return any(name.isdigit() for name in names) and any(TMP_SUFFIX in n for n in names)

  process = subprocess.Popen(command, cwd=REPO, stderr=subprocess.DEVNULL)
  deadline = time.monotonic() + 120
  while not writing():
    assert process.poll() is None, 'the run ended before it could be killed'
    assert time.monotonic() < deadline, 'no checkpoint was written'
    time.sleep(0.001)
  process.kill()
  assert process.wait(timeout=60) == -signal.SIGKILL
  # A half-written checkpoint newer than any finished one must be ignored, not resumed.
  latest = steps()[-1]
  partial = ckpt_dir / f'{latest + 2}{TMP_SUFFIX}'
  shutil.copytree(ckpt_dir / str(latest), partial, dirs_exist_ok=True)
  for path in glob.glob(str(partial / 'state' / 'd' / '*')):
    open(path, 'w').close()

  result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  assert f'Resumed from {workdir} at step {latest}.' in result.stderr
  assert not glob.glob(str(ckpt_dir / f'*{TMP_SUFFIX}*'))  # leftovers are cleaned up
  # Checkpointing does not change the trajectory: the reference saves only at the end.
  reference = train.train_and_evaluate(toy_config(**{**overrides, 'checkpoint_every': 40}),
                                       str(tmp_path / 'reference'))
  resumed = checkpoints.load(str(workdir))
  assert int(resumed.state.step) == 40
  assert_trees_equal(final_params(reference), final_params(resumed.state))


def _interrupt(workdir, signum):
  """Runs main until a step is done, sends `signum`; returns the step it stopped after.

  Each step is slow next to the host's dispatch (a 4096-point batch through 512-wide MLPs),
  so a loop that let dispatch run ahead would queue hundreds of steps before the signal.
  """
  process = subprocess.Popen(main_command(workdir, num_steps=1_000_000, log_every=1_000_000,
                                          checkpoint_every=1_000_000, batch_size=4096,
                                          **{'model.width': 512}),
                             stderr=subprocess.PIPE, text=True, cwd=REPO)
  for line in process.stderr:
    if 'First step compiled' in line:
      break
  time.sleep(1.0)  # time for dispatch to run far ahead, if nothing bounds it
  signalled = time.monotonic()
  process.send_signal(signum)
  for line in process.stderr:
    if 'Stopped by' in line:
      break
  seconds_to_stop = time.monotonic() - signalled
  rest = line + process.stderr.read()
  assert process.wait(timeout=120) == 0, rest[-3000:]
  last = rest.strip().splitlines()[-1]  # the last word: no summary or GIF of a finished run
  assert f'Stopped by {signum.name}' in last and 'rerun the same command to resume' in last, rest
  # The step in flight, then the checkpoint: at most 2 steps from the signal to the save.
  steps_after_signal = int(re.search(r'(\d+) steps after the signal', rest).group(1))
  assert 1 <= steps_after_signal <= 2
  assert seconds_to_stop < 10, f'{seconds_to_stop:.1f}s from the signal to the checkpoint'
  return checkpoints.create_manager(str(workdir)).latest_step()


def test_sigint_and_sigterm_save_exit_cleanly_and_resume_exactly(tmp_path):
  stopped_at = _interrupt(tmp_path / 'stopped', signal.SIGINT)
  assert stopped_at >= 1
  stopped_at = _interrupt(tmp_path / 'stopped', signal.SIGTERM)
  assert stopped_at >= 2
  # num_steps changes no step: resuming with a nearer end is the same run, cut shorter.
  config = toy_config(num_steps=stopped_at + 3, log_every=100, sample_every=100,
                      checkpoint_every=100, batch_size=4096, model={'width': 512})
  resumed = train.train_and_evaluate(config, str(tmp_path / 'stopped'))
  uninterrupted = train.train_and_evaluate(config, str(tmp_path / 'uninterrupted'))
  assert int(resumed.step) == stopped_at + 3
  assert_trees_equal(final_params(uninterrupted), final_params(resumed))


def _diverging(workdir, **overrides):
  """Trains 2 good steps in `workdir`; returns a config that resumes them with lr 1e30."""
  train.train_and_evaluate(toy_config(), workdir)  # smoke: 2 steps, a checkpoint at step 2
  return _lr_1e30(**overrides)


def _lr_1e30(**overrides):
  config = toy_config(num_steps=8, log_every=2, checkpoint_every=4, sample_every=100,
                      **overrides)
  config.g_optimizer.learning_rate = config.d_optimizer.learning_rate = 1e30
  return config


def test_divergence_stops_naming_the_steps_and_keeps_the_good_checkpoint(tmp_path):
  config = _diverging(str(tmp_path))
  with pytest.raises(UserError, match=r'diverged within steps \(2, 4\]: the discriminator and '
                     r'generator went NaN or Inf.*last good checkpoint, step 2, is kept.*'
                     r'on_divergence=rollback'):
    train.train_and_evaluate(config, str(tmp_path))
  config = _lr_1e30(on_divergence='rollback', rollback_lr_factor=0.5, max_rollbacks=2)
  with pytest.raises(UserError, match='2 rollbacks to smaller learning rates did not help'):
    train.train_and_evaluate(config, str(tmp_path))
  assert checkpoints.create_manager(str(tmp_path)).all_steps() == [2]
  assert all_finite(final_params(checkpoints.load(str(tmp_path)).state))


@pytest.mark.parametrize('bad, network', [
    ({'d_loss': np.nan, 'g_loss': np.inf}, 'discriminator and generator'),
    ({'g_loss': np.nan, 'd_param_norm': np.nan}, 'discriminator'),  # the params tell
    ({'g_param_norm': np.inf}, 'generator'),
])
def test_divergence_names_the_network_that_broke(bad, network):
  values = {'d_loss': 1.0, 'g_loss': 1.0, 'd_param_norm': 1.0, 'g_param_norm': 1.0, **bad}
  assert f'the {network} went NaN' in train._divergence(values, (10, 20))
  assert train._divergence({'d_loss': 1.0}, (10, 20)) is None


def test_rollback_restores_the_last_good_checkpoint_with_smaller_learning_rates(tmp_path):
  # 1e30 * 1e-33 = 1e-3: after one rollback the run goes on at the toy's usual rate.
  config = _diverging(str(tmp_path / 'rolled_back'), on_divergence='rollback',
                      rollback_lr_factor=1e-33)
  shutil.copytree(tmp_path / 'rolled_back', tmp_path / 'reference')
  rolled_back = train.train_and_evaluate(config, str(tmp_path / 'rolled_back'))
  assert int(rolled_back.step) == 8 and all_finite(rolled_back)
  # Exactly as if steps 3-8 had run from step 2's checkpoint and data at the scaled rate.
  reference_config = _lr_1e30()
  for optimizer in (reference_config.g_optimizer, reference_config.d_optimizer):
    optimizer.learning_rate *= 1e-33
  reference = train.train_and_evaluate(reference_config, str(tmp_path / 'reference'))
  assert_trees_equal(final_params(reference), final_params(rolled_back))


def test_corrupt_checkpoint_names_it_and_the_steps_to_restore(tmp_path):
  config = toy_config(num_steps=6, checkpoint_every=2, sample_every=100)
  train.train_and_evaluate(config, str(tmp_path))
  for path in glob.glob(str(tmp_path / 'checkpoints' / '6' / 'state' / 'd' / '*')):
    with open(path, 'r+b') as f:
      f.truncate(os.path.getsize(path) // 2)
  message = (f'Checkpoint {tmp_path}/checkpoints/6 cannot be read, it is corrupt or '
             'incomplete (ValueError: ')
  advice = 'use an older one with --restore_step=N, N in [2, 4].'
  # The command line says it in one line, without a traceback.
  result = subprocess.run(main_command(tmp_path, num_steps=8, checkpoint_every=2),
                          capture_output=True, text=True, cwd=REPO, timeout=120)
  assert result.returncode == 1 and 'Traceback' not in result.stderr
  error = result.stderr.splitlines()[-1]
  assert error.startswith(f'Error: {message}') and error.endswith(advice), error
  with pytest.raises(UserError, match=re.escape(advice)):
    checkpoints.load(str(tmp_path))
  config.num_steps = 8
  with pytest.raises(UserError, match=r'no checkpoint at step 5; it has steps \[2, 4, 6\]'):
    train.train_and_evaluate(config, str(tmp_path), restore_step=5)
  # Resuming from step 4 replaces the corrupt step 6 with a good one.
  train.train_and_evaluate(config, str(tmp_path), restore_step=4)
  assert checkpoints.create_manager(str(tmp_path)).all_steps() == [4, 6, 8]
  assert all_finite(final_params(checkpoints.load(str(tmp_path), step=6).state))




def test_failed_checkpoint_write_stops_with_one_message_and_keeps_the_last_one(
    tmp_path, monkeypatch):
  train.train_and_evaluate(toy_config(), str(tmp_path))  # a checkpoint at step 2
  real_rename = os.rename

  def rename_on_full_disk(src, dst, **kwargs):
    # Orbax finishes a checkpoint by renaming its temporary directory; here the disk is full.
    if TMP_SUFFIX in os.fspath(src):
      raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), os.fspath(src))
    return real_rename(src, dst, **kwargs)

  monkeypatch.setattr(os, 'rename', rename_on_full_disk)
  with pytest.raises(UserError, match=f'Writing a checkpoint in {tmp_path}/checkpoints failed: '
                     r'.*No space left on device.*rerun the same command to resume'):
    train.train_and_evaluate(toy_config(num_steps=4), str(tmp_path))
  monkeypatch.undo()
  loaded = checkpoints.load(str(tmp_path))
  assert int(loaded.state.step) == 2 and all_finite(final_params(loaded.state))
