"""Wall-clock budgets and timed checkpoints (run_control.TrainClock), and a budgeted run."""
import json
import re
import signal

import jax
import jax.numpy as jnp
import pytest
from jax.sharding import Mesh

from gan_jax import analysis, checkpoints, run_control, train
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


def _last_line(caplog):
  return caplog.messages[-1]


def test_a_spent_budget_ends_the_run_saved_and_a_larger_one_resumes_it(tmp_path, caplog):
  # A budget far below the start-up time: the run stops after its first step.
  config = _toy_config(num_steps=1000, train_minutes=1e-4, log_every=1000,
                       sample_every=1000, checkpoint_every=1000)
  evaluate = f'python -m gan_jax.evaluate --workdir {tmp_path}'
  with caplog.at_level('INFO'):
    state = train.train_and_evaluate(config, str(tmp_path))
  assert int(state.step) == 1
  # Which limit ended it, in the progress line and the last one.
  assert any(line.startswith('step 1/1000 (0.1%), ') and ' of the 0.0001-minute budget; ' in line
             for line in caplog.messages), caplog.messages
  assert re.fullmatch(
      r'Trained to step 1 of 1000 in \d+s, when the 0.0001-minute budget \(config.train_minutes\) '
      r'ran out \(--config.train_minutes=0.0002 trains further\): samples in .*'
      + re.escape(evaluate), _last_line(caplog)), _last_line(caplog)
  manager = checkpoints.create_manager(str(tmp_path))
  assert manager.all_steps() == [1]
  with open(tmp_path / 'checkpoints' / '1' / 'meta' / 'metadata') as f:
    trained = json.load(f)['train_seconds']
  assert trained > 60 * 1e-4
  assert analysis.load(str(tmp_path)).standing == (
      'step 1 of 1000, where the 0.0001-minute budget (config.train_minutes) ended the run')
  # The same budget again: spent already, so nothing more runs, and the run says so.
  caplog.clear()
  with caplog.at_level('INFO'):
    assert int(train.train_and_evaluate(config, str(tmp_path)).step) == 1
  assert _last_line(caplog).startswith(
      'The 0.0001-minute budget (config.train_minutes) is spent at step 1 of 1000; pass '
      '--config.train_minutes=0.0002 to train 0.0001 minutes more. Samples in ')
  assert _last_line(caplog).endswith(evaluate)
  assert not any(line.startswith('Trained to') for line in caplog.messages)
  config.train_minutes, config.num_steps = 10.0, 3
  caplog.clear()
  with caplog.at_level('INFO'):
    assert int(train.train_and_evaluate(config, str(tmp_path)).step) == 3
  assert re.match(r'Trained to step 3 of 3 in \d+s: samples in ', _last_line(caplog))
  assert any(line.endswith('(step 3 ends the run)') for line in caplog.messages), caplog.messages
  assert (tmp_path / 'samples' / 'step_000001.png').exists()  # the end of a budget samples too
  assert analysis.load(str(tmp_path)).standing == 'step 3 of 3, the end of config.num_steps'
  # Rerun once num_steps is reached: nothing more runs either.
  caplog.clear()
  with caplog.at_level('INFO'):
    assert int(train.train_and_evaluate(config, str(tmp_path)).step) == 3
  assert _last_line(caplog).startswith(
      f'{tmp_path} is trained to step 3 of 3 (config.num_steps) already; pass '
      '--config.num_steps=6 to train further. Samples in ')


@pytest.mark.parametrize('step, minutes, seconds, said', [
    (100, 0.0, 50.0, 'step 100 of 1000 (config.num_steps)'),
    (1000, 0.0, 50.0, 'step 1000 of 1000, the end of config.num_steps'),
    (1000, 15.0, 900.0, 'step 1000 of 1000, the end of config.num_steps'),
    (420, 15.0, 900.5,
     'step 420 of 1000, where the 15-minute budget (config.train_minutes) ended the run'),
    (100, 15.0, 300.0, 'step 100 of 1000 after 5m0s of training; the 15-minute budget '
     '(config.train_minutes) or config.num_steps, whichever comes first, ends the run'),
])
def test_standing_says_which_limit_ends_the_run(step, minutes, seconds, said):
  config = _toy_config(num_steps=1000, train_minutes=minutes)
  assert run_control.standing(config, step, seconds) == said


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
