"""The training loop: steps, logs, samples, evaluations and checkpoints of one run.

The step itself is train_step.py's; this module decides when each thing happens and
keeps a run's work safe (resume, preemption, divergence).
"""
import functools
import math
import time
from typing import Any, Callable, Sequence

from absl import logging
import flax.linen as nn
import jax
import ml_collections
import numpy as np
import optax
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from gan_jax import (animate, checkpoints, data, evaluate, growth, input_pipeline, losses, models,
                     run_control, sample, toy_plot, validation, writers)
from gan_jax.errors import UserError
from gan_jax.state import GANState, create_optimizers, generate, init_state
from gan_jax.train_step import AXIS, lazy_regularizers_due, make_train_step

@jax.jit
def _param_norms(state: GANState) -> dict[str, jax.Array]:
  """L2 norms of both networks' parameters: NaN or Inf as soon as one parameter is."""
  return {'g_param_norm': optax.tree.norm(state.g_params),
          'd_param_norm': optax.tree.norm(state.d_params)}


def _divergence(values: dict[str, Any], steps: tuple[int, int]) -> str | None:
  """Says which network went NaN or Inf within `steps`, or None if every value is finite."""
  bad = sorted(name for name, value in values.items() if not np.all(np.isfinite(value)))
  if not bad:
    return None
  # A NaN loss may be either network's doing; NaN parameters tell which one broke.
  culprits = [name for name in bad if name.endswith('_param_norm')] or bad
  networks = sorted({'generator' if name.startswith('g_') else 'discriminator'
                     for name in culprits})
  return (f'Training diverged within steps ({steps[0]}, {steps[1]}]: the '
          f'{" and ".join(networks)} went NaN or Inf ({", ".join(culprits)})')


def _diverged_error(problem: str, last_good: int | None, rollbacks: int) -> UserError:
  """The error that stops a diverged run: what broke, what is kept, what to change."""
  kept = ('no checkpoint was written yet' if last_good is None else
          f'the last good checkpoint, step {last_good}, is kept')
  if rollbacks:
    advice = (f'{rollbacks} rollbacks to smaller learning rates did not help: lower them '
              'further or change the loss')
  else:
    advice = 'Lower the learning rates, change the loss, or set --config.on_divergence=rollback'
  return UserError(f'{problem}; {kept}. {advice}.')


def _close_all(closers: Sequence[Callable[[], Any]], quiet: bool = False) -> None:
  """Calls every closer even if some fail, then raises the first failure.

  `quiet` only logs the failures: when the run stops on an error, that error is the one
  to report (a full disk fails the metrics' last writes too).
  """
  errors = []
  for close in closers:
    try:
      close()
    except Exception as e:  # pylint: disable=broad-exception-caught
      errors.append(e)
  for error in errors if quiet else errors[1:]:
    logging.warning('While stopping: %s', error)
  if errors and not quiet:
    raise errors[0]


def _evaluation_score(result: dict[str, Any]) -> float:
  """Higher is better: -FID for images; toy data: modes covered, then high-quality share."""
  if 'fid' in result:
    return -result['fid']
  return result['modes_covered'] + result['high_quality_share']  # the share is at most 1


def save_samples(path: str, samples: np.ndarray, config: ml_collections.ConfigDict,
                 discriminator: nn.Module, state: GANState) -> np.ndarray:
  """Saves a PNG of generated examples: a grid of images, or 2-D points over D's heat map."""
  if samples.ndim == 4:  # a conditional model's grid has one class per row
    image = writers.image_grid(samples, sample.grid_columns(models.num_classes(config),
                                                            len(samples)))
  else:
    image = toy_plot.game_picture(
        samples, config.dataset, discriminator,
        {'params': state.d_params, 'batch_stats': state.d_batch_stats},
        sigmoid=config.loss in losses.SIGMOID_LOSSES)
  writers.save_png(path, image)
  return image


def _validated_and_resolved(config: ml_collections.ConfigDict,
                            num_devices: int) -> ml_collections.ConfigDict:
  """A copy of `config`, validated, with the data set's facts filled in (data.resolve).

  The first process prepares the data set (converting a folder, or tfds's download and
  preparation) while the others wait, then they find it prepared: hosts sharing a data_dir
  never write it at once.
  """
  first = jax.process_index() == 0
  if not first:
    multihost_utils.sync_global_devices('gan_jax: data set prepared')
  validation.validate(config, num_devices)
  if (config.eval_every and not data.is_toy(config.dataset)
      and evaluate.feature_space(config.dataset, 'auto') == 'inception'):
    evaluate.inception_net(evaluate.Options())  # its weights, or why not, before any training
  if first and not data.is_toy(config.dataset):
    data.load(config)  # prepared once, before its facts are read: tfds's come from the data
  if first and jax.process_count() > 1:
    multihost_utils.sync_global_devices('gan_jax: data set prepared')
  return data.resolve(config.copy_and_resolve_references())


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                       restore_step: int | None = None) -> GANState:
  """Trains a GAN in `workdir`, resuming from its latest checkpoint if it has one.

  Args:
    config: the experiment's config.
    workdir: where checkpoints, metrics and samples go.
    restore_step: resume from this checkpoint instead of the latest, e.g. when the latest
      is corrupt; the later ones are deleted, since the resumed run writes its own.
  Returns:
    The final state.
  """
  mesh = Mesh(jax.devices(), (AXIS,))
  is_chief = jax.process_index() == 0
  config = _validated_and_resolved(config, mesh.size)
  data_shape = input_pipeline.data_shape(config)
  generator, discriminator = models.build(config, data_shape)

  checkpoints.start_over_if_config_changed(workdir, config)
  manager = checkpoints.create_manager(workdir, config.keep_checkpoints)
  best_manager = (checkpoints.create_manager(workdir, 1, best=True, best_fn=_evaluation_score)
                  if config.keep_best_checkpoint else None)
  def restore_or_init(step: int | None) -> tuple[GANState, Any, dict[str, Any]]:
    """The state, data iterator and run meta (RUN_META) of checkpoint `step`, or new ones.

    The data continue at the step: the same batches whatever the number of processes, data
    workers, or whether the data set is held in memory.
    """
    data_iterator = iter(input_pipeline.create_dataset(
        config, jax.process_index(), jax.process_count(), start_step=step or 0))
    if step is None:
      state = init_state(config, mesh, generator, discriminator, *create_optimizers(config),
                         data_shape)
      return state, data_iterator, dict(checkpoints.RUN_META)
    state, meta = checkpoints.restore(
        manager, checkpoints.abstract_state(config, generator, discriminator, data_shape, mesh),
        step)
    return state, data_iterator, meta

  # Resume is the default: a workdir with a checkpoint continues where it stopped.
  resume_step = manager.latest_step() if restore_step is None else restore_step
  if restore_step is not None:
    checkpoints.check_step(manager, restore_step)
  state, data_iterator, meta = restore_or_init(resume_step)
  rollbacks = meta['rollbacks']
  clock = run_control.TrainClock(config, trained_before=meta['train_seconds'])
  if resume_step is not None:
    checkpoints.discard_after(manager, resume_step)  # only once step N proved readable
    logging.info('Resumed from %s at step %d.', workdir, resume_step)
  if is_chief:
    checkpoints.write_config(workdir, config)

  def make_steps(rollbacks):
    """`train_steps(stage, regularize)`: the step at a growing model's stage (growth.py; None
    for others) that computes the lazy regularisers due (`lazy_regularizers_due`), made and
    compiled on its first use. Each rollback lowers both learning rates."""
    optimizers = create_optimizers(config, config.rollback_lr_factor ** rollbacks)
    return functools.cache(lambda stage, regularize: make_train_step(
        config, mesh, generator, discriminator, *optimizers, regularize=regularize, stage=stage))

  def run_meta():
    return {'rollbacks': rollbacks, 'train_seconds': clock.seconds()}

  train_steps = make_steps(rollbacks)
  generate_grid = jax.jit(lambda state, z, labels: generate(generator, state, z, labels))
  grid_latents = models.sample_latents(jax.random.PRNGKey(config.seed + 1),
                                       (config.num_grid_samples, config.model.latent_dim),
                                       config.model.latent_prior)
  grid_labels = sample.spread_labels(models.num_classes(config), config.num_grid_samples)
  eval_latents = models.sample_latents(jax.random.PRNGKey(config.seed + 2),
                                       (config.eval_num_samples, config.model.latent_dim),
                                       config.model.latent_prior)
  eval_labels = sample.spread_labels(models.num_classes(config), config.eval_num_samples)
  data_sharding = NamedSharding(mesh, P(None, AXIS))
  writer = writers.MetricWriter(workdir, enabled=is_chief)
  step = first_step = last_finite = int(state.step)
  progress = writers.Progress(
      config.num_steps, functools.partial(growth.images_before, config, final_side=data_shape[0]),
      first_step, config.train_minutes)
  # A fresh run makes at least one step, however small its budget.
  done = reached_before = first_step >= config.num_steps or clock.spent_before()
  if not done:
    logging.info('Compiling the first step...')
  start = time.monotonic()
  stop = run_control.StopOnSignal()
  stop.completed_step = step
  agree = run_control.agreement(mesh)
  # Whatever happens, finish the checkpoint in flight and the metrics written so far.
  closers = (stop.restore, lambda: checkpoints.wait(manager), manager.close, writer.close)
  if best_manager:
    closers += (lambda: checkpoints.wait(best_manager), best_manager.close)
  previous_metrics = stopping = None
  try:
    while not done:
      step += 1
      batch = jax.tree.map(lambda rows: jax.make_array_from_process_local_data(data_sharding, rows),
                           next(data_iterator))
      stage = growth.stage_at(config, step - 1, data_shape[0])
      if stage and stage != growth.stage_at(config, step - 2, data_shape[0]):
        logging.info('Growing to %dx%d (stage %d of %d) at step %d; compiling its step...',
                     growth.side(stage), growth.side(stage), stage + 1,
                     growth.num_stages(data_shape[0]), step)
      state, metrics = train_steps(stage, lazy_regularizers_due(config, step))(state, batch)
      if step == first_step + 1:
        jax.block_until_ready(state)
        logging.info('First step compiled and ran in %.1fs.', time.monotonic() - start)
        progress.update(step, clock.seconds_left())
      # Dispatch runs at most one step ahead of the device: waiting for the step before
      # this one keeps a signal from queueing behind dozens of steps (a preempted VM has
      # ~30 s), while the device always has the next step to run.
      jax.block_until_ready(previous_metrics)
      previous_metrics = metrics
      stop.completed_step = step - 1
      # Read once: a signal arriving later in the step must not stop it unsaved. All
      # processes act on the same signal and training time.
      stopping, seconds = agree(state.step, stop.requested, clock.seconds())
      last = step == config.num_steps or clock.out_of_time(seconds)
      log = writers.is_time(step, config.log_every, config.num_steps) or last
      # Asked every step, first: a due timed checkpoint is then counted as done even when a
      # step-count checkpoint coincides, instead of causing a second save one step later.
      timed_checkpoint = clock.checkpoint_due(seconds)
      save = (writers.is_time(step, config.checkpoint_every, config.num_steps) or last
              or timed_checkpoint or stopping)
      if log or save:  # never log or checkpoint a diverged state unnoticed
        values = jax.device_get({**_param_norms(state), **(metrics if log else {})})
        problem = _divergence(values, (last_finite, step))
        if problem and (config.on_divergence != 'rollback' or rollbacks == config.max_rollbacks):
          raise _diverged_error(problem, manager.latest_step(), rollbacks)
        if problem:
          # Back to the last good checkpoint and its data, with smaller steps.
          rollbacks += 1
          state, data_iterator, _ = restore_or_init(manager.latest_step())
          train_steps = make_steps(rollbacks)
          logging.warning('%s; rollback %d/%d to step %d with the learning rates scaled by %g.',
                          problem, rollbacks, config.max_rollbacks, state.step,
                          config.rollback_lr_factor ** rollbacks)
          step = last_finite = int(state.step)
          previous_metrics = None
          continue
        last_finite = step
      if log:
        if config.loss in losses.SIGMOID_LOSSES:
          values['value_function_at_equilibrium'] = -math.log(4.0)
        writer.write_scalars(step, {**values, **progress.update(step, clock.seconds_left())})
      if (writers.is_time(step, config.sample_every, config.num_steps) or last) and is_chief:
        with progress.paused('sample'):
          samples = np.asarray(jax.device_get(generate_grid(state, grid_latents, grid_labels)))
          image = save_samples(f'{workdir}/samples/step_{step:06d}.png', samples, config,
                               discriminator, state)
          writer.write_images(step, {'samples': image})
      if config.eval_every and (writers.is_time(step, config.eval_every, config.num_steps)
                                or last):
        with progress.paused('eval'):
          result = evaluate.evaluate_samples(
              sample.generate_samples(generator, state, eval_latents, eval_labels), config,
              labels=eval_labels, seed=config.seed,
              options=evaluate.Options(reference_count=config.eval_reference_count))
          if is_chief:
            evaluate.append_result(workdir, {'step': step, **result})
            writer.write_scalars(step, {f'eval_{name}': value for name, value in result.items()
                                        if isinstance(value, (int, float))})
          if best_manager:
            checkpoints.save(best_manager, state, run_meta(), metrics=result)
      if save:
        with progress.paused('checkpoint'):
          checkpoints.save(manager, state, run_meta())
      if stopping:
        logging.warning('%s', stop.stopped_message(stopping, step))
        break
      done = last
  except BaseException:
    _close_all(closers, quiet=True)
    raise
  _close_all(closers)
  if is_chief and not stopping:  # a stopped run's last word says how to resume it
    if data.is_toy(config.dataset) and animate.sample_frames(workdir):
      logging.info('The game, step by step: %s', animate.write_gif(workdir))
    logging.info('%s', _last_word(config, workdir, step, clock.seconds(), reached_before))
  return state


def _last_word(config: ml_collections.ConfigDict, workdir: str, step: int, seconds: float,
               reached_before: bool) -> str:
  """The line that ends a run that no signal stopped at `step`, after `seconds` of training in
  all: which limit ended it (config.num_steps or config.train_minutes), where its results
  are, and what to run next.

  `reached_before`: the workdir had reached a limit before this run, which trained nothing.
  """
  results = (f'samples in {workdir}/samples/, checkpoints in {workdir}/checkpoints/. Evaluate '
             f'them with: python -m gan_jax.evaluate --workdir {workdir}')
  budget = run_control.budget_name(config.train_minutes)
  more_minutes = f'--config.train_minutes={2 * config.train_minutes:g}'
  if not reached_before:
    # The loop ends at num_steps or when the budget (by every process's clock) is spent.
    ended = (f', when {budget} ran out ({more_minutes} trains further)'
             if step < config.num_steps else '')
    return (f'Trained to step {step} of {config.num_steps} in '
            f'{writers.format_duration(seconds)}{ended}: {results}')
  results = results[0].upper() + results[1:]
  if step >= config.num_steps:
    return (f'{workdir} is trained to step {step} of {config.num_steps} (config.num_steps) '
            f'already; pass --config.num_steps={2 * config.num_steps} to train further. '
            f'{results}')
  return (f'{budget[0].upper()}{budget[1:]} is spent at step {step} of {config.num_steps}; pass '
          f'{more_minutes} to train {config.train_minutes:g} minutes more. {results}')
