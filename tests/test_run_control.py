"""Wall-clock budgets and timed checkpoints (run_control.TrainClock), and a budgeted run."""
import json

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
