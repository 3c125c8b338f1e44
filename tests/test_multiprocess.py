"""Two local processes of 1 CPU device each, through the real command line.

They train as one process on 2 devices does: the global batches depend on the seed alone,
and each process takes its rows of them; process 0 alone writes the workdir's files; one
checkpoint holds both data positions and resumes both exactly; a SIGTERM to one process
stops both at one step.
Each process runs tests/recorded_main.py, which records its final state and what it read
and wrote.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import numpy as np

from gan_jax import checkpoints, sample

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))
RECORDED_MAIN = os.path.join(os.path.dirname(__file__), 'recorded_main.py')


def _free_port():
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _flags(config, workdir, overrides):
  return [f'--config={config}', f'--workdir={workdir}'] + [
      f'--config.{name}={value}' for name, value in overrides.items()]


def _start(record_dir, flags, process_id, devices, **env):
  """Starts recorded_main.py with `flags` on `devices` CPU devices; stderr goes to a log.

  XLA's optimizations are off, as in flax's examples' tests: compiling takes half the time.
  """
  os.makedirs(record_dir, exist_ok=True)
  with open(os.path.join(record_dir, f'process_{process_id}.log'), 'w') as log:
    return subprocess.Popen(
        [sys.executable, RECORDED_MAIN, str(record_dir), *flags], cwd=REPO, stderr=log,
        env={**os.environ, 'PYTHONPATH': os.pathsep.join([REPO, os.environ.get('PYTHONPATH', '')]),
             'JAX_PLATFORMS': 'cpu', 'JAX_NUM_CPU_DEVICES': str(devices),
             'JAX_DISABLE_MOST_OPTIMIZATIONS': '1', **env})


def _start_two(record_dir, flags):
  port = _free_port()
  return [_start(record_dir, flags + ['--distributed', f'--coordinator_address=127.0.0.1:{port}',
                                      '--num_processes=2', f'--process_id={i}'], i, devices=1)
          for i in range(2)]


def _log(record_dir, process_id):
  with open(os.path.join(record_dir, f'process_{process_id}.log')) as f:
    return f.read()


def _finish(record_dir, processes, timeout=300):
  """Waits for `processes` (killing them all if one fails); returns their logs."""
  deadline = time.monotonic() + timeout
  try:
    for i, process in enumerate(processes):
      status = process.wait(timeout=max(1, deadline - time.monotonic()))
      assert status == 0, f'process {i} exited with {status}:\n' + _log(record_dir, i)[-3000:]
  finally:
    for process in processes:
      if process.poll() is None:
        process.kill()
        process.wait()
  return [_log(record_dir, i) for i in range(len(processes))]


def _run_two(record_dir, flags):
  return _finish(record_dir, _start_two(record_dir, flags))


def _run_one_as_two(record_dir, flags):
  """One process on the two processes' 2 devices."""
  return _finish(record_dir, [_start(record_dir, flags, 0, devices=2)])


def _state(record_dir, process_id):
  with np.load(os.path.join(record_dir, f'process_{process_id}.npz')) as arrays:
    return [arrays[f'arr_{i}'] for i in range(len(arrays.files))]


def _record(record_dir, process_id):
  with open(os.path.join(record_dir, f'process_{process_id}.json')) as f:
    return json.load(f)


def _assert_states_equal(a, b):
  assert len(a) == len(b)
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x, y)


def _assert_trains_as_one_process(two, one):
  """Both processes of run `two` end bit-identical, and as one process `one` ends."""
  _assert_states_equal(_state(two, 0), _state(two, 1))
  for x, y in zip(_state(two, 0), _state(one, 0)):
    # Only the order of the collectives' sums differs.
    np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)


def _assert_only_process_0_wrote(record_dir, num_steps):
  written = _record(record_dir, 0)['written']
  assert {'config.json', 'metrics.jsonl', f'samples/step_{num_steps:06d}.png'} <= set(written)
  assert any(name.startswith('events.out.tfevents.') for name in written), written
  assert _record(record_dir, 1)['written'] == []  # checkpoints/ aside


def test_two_processes_train_a_toy_as_one_and_resume_exactly(tmp_path):
  overrides = dict(num_steps=50, checkpoint_every=25, log_every=25, sample_every=50)
  flags = _flags('experiments/toy_ring.py:smoke', tmp_path / 'run', overrides)
  _run_two(tmp_path / 'two', flags)
  _run_one_as_two(tmp_path / 'one', _flags('experiments/toy_ring.py:smoke',
                                           tmp_path / 'reference', overrides))
  _assert_trains_as_one_process(tmp_path / 'two', tmp_path / 'one')
  # A run reproduces at any scale: after 50 steps the same samples, up to the collectives'
  # order of summing.
  two, one = (sample.sample(checkpoints.load(str(tmp_path / run)), 1000, seed=0)
              for run in ('run', 'reference'))
  np.testing.assert_allclose(two, one, rtol=1e-4, atol=1e-5)
  _assert_only_process_0_wrote(tmp_path / 'two', 50)
  # Resuming continues exactly (the data continue at the step): as if step 50 had been lost,
  # resume from step 25, now also with checkpoints every 6 ms of training, which the
  # processes must agree on.
  shutil.copytree(tmp_path / 'run', tmp_path / 'resumed')
  shutil.rmtree(tmp_path / 'resumed' / 'checkpoints' / '50')
  logs = _run_two(tmp_path / 'two_resumed', _flags(
      'experiments/toy_ring.py:smoke', tmp_path / 'resumed',
      {**overrides, 'checkpoint_every_minutes': 1e-4}))
  for log in logs:
    assert f'Resumed from {tmp_path / "resumed"} at step 25.' in log
  steps = checkpoints.create_manager(str(tmp_path / 'resumed')).all_steps()
  assert steps[-1] == 50 and any(25 < step < 50 for step in steps), steps  # timed ones
  _assert_states_equal(_state(tmp_path / 'two', 0), _state(tmp_path / 'two_resumed', 0))
  _assert_states_equal(_state(tmp_path / 'two_resumed', 0), _state(tmp_path / 'two_resumed', 1))
  # ... and on one process of 2 devices, as the two-process run ends.
  shutil.copytree(tmp_path / 'run', tmp_path / 'resumed_by_one')
  shutil.rmtree(tmp_path / 'resumed_by_one' / 'checkpoints' / '50')
  _run_one_as_two(tmp_path / 'one_resumed', _flags('experiments/toy_ring.py:smoke',
                                                   tmp_path / 'resumed_by_one', overrides))
  _assert_trains_as_one_process(tmp_path / 'two', tmp_path / 'one_resumed')


def _stopped_step(log):
  last = log.strip().splitlines()[-1]
  match = re.search(r'Stopped by SIGTERM( to another process)? after step (\d+).*rerun the '
                    'same command to resume', last)
  assert match, log[-3000:]
  return int(match.group(2))


def _stop_one_by_sigterm(record_dir, flags):
  """Starts two processes, sends SIGTERM to process 1 once both run; returns their logs."""
  processes = _start_two(record_dir, flags)
  deadline = time.monotonic() + 300
  while not all('First step compiled' in _log(record_dir, i) for i in range(2)):
    assert all(p.poll() is None for p in processes) and time.monotonic() < deadline, (
        _log(record_dir, 0)[-3000:] + _log(record_dir, 1)[-3000:])
    time.sleep(0.1)
  time.sleep(0.5)  # into the run, where votes come about a second apart
  processes[1].send_signal(signal.SIGTERM)
  return _finish(record_dir, processes)


def test_sigterm_to_one_of_two_processes_training_an_image_gan(tmp_path, tiny_fashion):
  manual_dir, _ = tiny_fashion
  data_dir = str(tmp_path / 'tfds')  # not prepared yet: the first process prepares it
  workdir = tmp_path / 'run'
  overrides = {'num_steps': 1_000_000, 'log_every': 1_000_000, 'sample_every': 1_000_000,
               'checkpoint_every': 1_000_000, 'data.manual_dir': manual_dir,
               'data.data_dir': data_dir}
  logs = _stop_one_by_sigterm(tmp_path / 'stopped',
                              _flags('experiments/ns_gan.py:smoke', workdir, overrides))
  # Process 0 prepared the data set while process 1 waited, then found it prepared.
  assert 'Preparing fashion_mnist' in logs[0] and 'Preparing' not in logs[1]
  # Both stop after the same step, saved, and exit 0 (_finish checks).
  stopped_at = _stopped_step(logs[0])
  assert 'to another process' in logs[0] and 'to another process' not in logs[1]
  assert _stopped_step(logs[1]) == stopped_at
  assert checkpoints.create_manager(str(workdir)).all_steps() == [stopped_at]
  # The rerun resumes both from that step; stopped and resumed, the two processes trained as
  # one process on 4 devices does without a stop.
  overrides['num_steps'] = stopped_at + 3
  logs = _run_two(tmp_path / 'two', _flags('experiments/ns_gan.py:smoke', workdir, overrides))
  for log in logs:
    assert f'Resumed from {workdir} at step {stopped_at}.' in log
  _run_one_as_two(tmp_path / 'one', _flags('experiments/ns_gan.py:smoke',
                                           tmp_path / 'reference', overrides))
  _assert_trains_as_one_process(tmp_path / 'two', tmp_path / 'one')
  _assert_only_process_0_wrote(tmp_path / 'two', stopped_at + 3)
  # Each process trained on its rows of the global batches that one process trained on:
  # the resumed run's first 3 batches are the one-process run's after its first stopped_at.
  one = _record(tmp_path / 'one', 0)['images_read']
  two = [_record(tmp_path / 'two', i)['images_read'] for i in range(2)]
  for k in range(3):
    assert np.concatenate([two[0][k], two[1][k]], axis=1).tolist() == one[stopped_at + k]
