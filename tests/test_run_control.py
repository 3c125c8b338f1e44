"""Wall-clock budgets and timed checkpoints (run_control.TrainClock), and a budgeted run."""
import json
import signal

import jax
import jax.numpy as jnp
import pytest
from jax.sharding import Mesh

from gan_jax import checkpoints, run_control, train
from test_train import _toy_config


class FakeTime:
  def __init__(self):
    self.now = 100.0

  def __call__(self):
    return self.now


def test_budget_counts_the_seconds_trained_before_a_resume():
  time_fn = FakeTime()
  clock = run_control.TrainClock(_toy_config(train_minutes=1.0), trained_before=50.0,
                                 time_fn=time_fn)
  assert not clock.spent_before()
  time_fn.now += 9.0
  assert clock.seconds() == 59.0 and clock.seconds_left() == 1.0 and not clock.out_of_time()
  time_fn.now += 1.0
  assert clock.out_of_time()
  assert run_control.TrainClock(_toy_config(train_minutes=1.0), trained_before=60.0).spent_before()


def test_no_budget_never_runs_out():
  time_fn = FakeTime()
  clock = run_control.TrainClock(_toy_config(), time_fn=time_fn)
  time_fn.now += 1e9
  assert not clock.out_of_time() and not clock.checkpoint_due()
  assert clock.seconds_left() == float('inf')


def test_timed_checkpoints_are_due_once_per_period_and_continue_after_a_resume():
  time_fn = FakeTime()
  clock = run_control.TrainClock(_toy_config(checkpoint_every_minutes=1.0),
                                 trained_before=90.0, time_fn=time_fn)
  assert not clock.checkpoint_due()  # the next is at 120 s
  time_fn.now += 30.0
  assert clock.checkpoint_due() and not clock.checkpoint_due()
  time_fn.now += 150.0  # 270 s: the checkpoints of 180 s and 240 s were missed, one is due
  assert clock.checkpoint_due() and not clock.checkpoint_due()
  time_fn.now += 30.0
  assert clock.checkpoint_due()


def test_a_spent_budget_ends_the_run_saved_and_a_larger_one_resumes_it(tmp_path):
  # A budget far below the start-up time: the run stops after its first step.
  config = _toy_config(num_steps=1000, train_minutes=1e-4, log_every=1000,
                       sample_every=1000, checkpoint_every=1000)
  state = train.train_and_evaluate(config, str(tmp_path))
  assert int(state.step) == 1
  manager = checkpoints.create_manager(str(tmp_path))
  assert manager.all_steps() == [1]
  with open(tmp_path / 'checkpoints' / '1' / 'meta' / 'metadata') as f:
    trained = json.load(f)['train_seconds']
  assert trained > 60 * 1e-4
  # The same budget again: spent already, so nothing more runs.
  assert int(train.train_and_evaluate(config, str(tmp_path)).step) == 1
  config.train_minutes, config.num_steps = 10.0, 3
  assert int(train.train_and_evaluate(config, str(tmp_path)).step) == 3
  assert (tmp_path / 'samples' / 'step_000001.png').exists()  # the end of a budget samples too


def test_the_clock_judges_by_the_seconds_it_is_given():
  time_fn = FakeTime()
  clock = run_control.TrainClock(_toy_config(train_minutes=1.0, checkpoint_every_minutes=0.5),
                                 time_fn=time_fn)
  # Another process's slower clock, agreed by all, decides: this one's has not moved.
  assert clock.out_of_time(60.0) and not clock.out_of_time()
  assert clock.checkpoint_due(31.0) and not clock.checkpoint_due(59.0)


def test_a_stop_says_whose_signal_it_was():
  stop = run_control.StopOnSignal()
  try:
    stop.completed_step = 5
    stop._handle(signal.SIGTERM, None)
    assert stop.stopped_message('SIGTERM', 7).startswith(
        'Stopped by SIGTERM after step 7, 2 steps after the signal, and saved a checkpoint')
    assert stop.stopped_message('SIGINT', 7).startswith(
        'Stopped by SIGINT to another process after step 7, and saved a checkpoint')
  finally:
    stop.restore()


def test_one_process_agrees_with_itself_at_once():
  agree = run_control.agreement(Mesh(jax.devices()[:1], ('data',)))
  assert agree(jnp.zeros((), jnp.int32), 'SIGINT', 12.5) == ('SIGINT', 12.5)


def test_votes_come_a_step_late_about_once_a_second():
  # The vote of several processes, here over the one device of this process.
  vote = run_control._Vote(Mesh(jax.devices()[:1], ('data',)), seconds_between_votes=1.0)
  step = jnp.zeros((), jnp.int32)
  # 10 calls a second; from call 25 on, this process has a signal to offer.
  answers = [vote(step, 'SIGTERM' if call >= 25 else None, 0.1 * call) for call in range(40)]
  assert answers[0] == (None, 0.0)  # the first call waits for its own vote
  # Votes at calls 0, 1, then a second apart, each answered at the call after it.
  changes = [call for call in range(1, 40) if answers[call] != answers[call - 1]]
  assert changes == [2, 12, 22, 32]
  assert answers[31] == (None, pytest.approx(2.1))
  assert answers[32] == ('SIGTERM', pytest.approx(3.1))  # the vote of call 31
