"""Checkpoints and the workdir: orbax for the state (whose step is the data position), JSON for
the config.

`load(workdir)` is the one loader for a finished or running workdir: `sample`,
evaluation and notebooks all go through it, and the training loop resumes with
the same `restore`. A checkpoint that cannot be written or read ends in a UserError
saying what to do.
"""
import dataclasses
import errno
import functools
import json
import logging as std_logging
import os
import sys
import tempfile
import time
from typing import Any, Callable
import uuid

from absl import logging
from etils import epath
import flax.linen as nn
import jax
from jax.experimental import multihost_utils
import ml_collections
import orbax.checkpoint as ocp
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from gan_jax import configs, input_pipeline, models, paths
from gan_jax.errors import UserError
from gan_jax.state import GANState, create_optimizers, create_state, keeps_ema

CONFIG_FILE = 'config.json'
BEST_DIR = 'best_checkpoint'  # config.keep_best_checkpoint's one checkpoint
# What a checkpoint records of the run besides the state, with the values a checkpoint
# written before the field existed means: divergence rollbacks so far, and the seconds of
# training so far (config.train_minutes).
RUN_META = {'rollbacks': 0, 'train_seconds': 0.0}
# Fields that change the shapes of the state: a checkpoint cannot be resumed across them.
SHAPE_FIELDS = ('dataset', 'model.name', 'model.conditional', 'model.latent_dim', 'model.width',
                'model.mlp_layers', 'model.g_batch_norm', 'model.spectral_norm', 'model.d_width',
                'model.width_growth', 'model.d_blocks_without_downsampling',
                'model.attention_resolution', 'model.mapping_layers')


def check_workdir(workdir: str) -> None:
  """Raises UserError unless a file can be created in `workdir`; run it before anything compiles.

  A local workdir that does not exist yet is checked through its nearest existing parent; a
  gs:// one by writing and deleting an object in it (no credentials, no bucket or no
  permission to write fail here, not at the first checkpoint). Leaves nothing behind, so an
  existing workdir's checkpoints stay as they are.
  """
  path = paths.path(workdir)
  if paths.in_bucket(path):
    probe = path / f'.gan_jax-write-check-{uuid.uuid4().hex}'
    try:
      probe.write_bytes(b'')
      probe.unlink()
    except Exception as e:  # pylint: disable=broad-except; gcsfs and google-auth raise their own
      raise UserError(f'--workdir {workdir} cannot be written: creating {probe} failed '
                      f'({type(e).__name__}: {e}). Nothing was written; check the bucket, its '
                      'permissions and your credentials (gcloud auth application-default '
                      'login).') from e
    return
  path = str(path)
  while not os.path.lexists(path):
    path = os.path.dirname(path)
  try:
    if not os.path.isdir(path):
      raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
    with tempfile.TemporaryFile(dir=path):
      pass
  except OSError as e:
    raise UserError(f'--workdir {workdir} cannot be written: creating a file in {path} failed '
                    f'({e.strerror}). Nothing was written; use another --workdir or make it '
                    'writable.') from e


def write_config(workdir: str, config: ml_collections.ConfigDict) -> None:
  """Writes the resolved config as WORKDIR/config.json (atomically)."""
  text = config.to_json(indent=2, sort_keys=True)
  paths.write_atomically(paths.path(workdir) / CONFIG_FILE, lambda f: f.write(text.encode()))


def read_config(workdir: str) -> ml_collections.ConfigDict | None:
  """The config a workdir was trained with, or None for a new workdir.

  A workdir written before a field existed gets the field's default, which by
  convention keeps the behaviour from before the field: older runs stay loadable.
  """
  path = paths.path(workdir) / CONFIG_FILE
  if not path.exists():
    return None
  config = configs.default()
  config.update(json.loads(path.read_text()))
  return config


def _field(config: ml_collections.ConfigDict, dotted: str) -> Any:
  for part in dotted.split('.'):
    config = config[part]
  return config


def _shape_settings(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """What of `config` decides the state's shapes: SHAPE_FIELDS, whether it keeps an EMA, and
  whether Adam's state counts updates for a learning-rate schedule."""
  return {**{field: _field(config, field) for field in SHAPE_FIELDS},
          'g_ema_decay or g_ema_kimg > 0': keeps_ema(config),
          "lr_schedule != 'constant'": config.lr_schedule != 'constant'}


def start_over_if_config_changed(workdir: str, config: ml_collections.ConfigDict) -> None:
  """Refuses to resume `workdir` under a config that changes the state's shapes.

  With config.allow_config_change the run starts over instead: the old checkpoints are
  kept, renamed to `checkpoints.replaced-<time>`, and never deleted.
  """
  saved, directory = read_config(workdir), paths.path(workdir) / 'checkpoints'
  if saved is None or not directory.is_dir():
    return
  saved, wanted = _shape_settings(saved), _shape_settings(config)
  for field, old in saved.items():
    new = wanted[field]
    if old == new:
      continue
    if not config.allow_config_change:
      raise UserError(
          f'{workdir} holds a run with config.{field}: {old!r}, but this config says {new!r}, '
          'which changes the shapes of the checkpointed state. Use a fresh --workdir, or pass '
          '--config.allow_config_change=True to start this workdir over (its old checkpoints '
          'are kept aside).')
    if jax.process_index() == 0:
      aside = f'{directory}.replaced-{time.strftime("%Y%m%d-%H%M%S")}'
      directory.rename(aside)
      logging.warning('config.%s changed from %r to %r: starting over; the old checkpoints are '
                      'in %s.', field, old, new, aside)
    multihost_utils.sync_global_devices('start_over_if_config_changed')
    return


def create_manager(workdir: str, keep: int | None = None, best: bool = False,
                   best_fn: Callable[[dict[str, Any]], float] | None = None
                   ) -> ocp.CheckpointManager:
  """Orbax manager of WORKDIR/checkpoints/<step>, or with `best` of WORKDIR/best_checkpoint/.

  Orbax writes each checkpoint into `<step>.orbax-checkpoint-tmp` and renames it when
  complete, so a killed run leaves at most a temporary directory, which it never reads.
  A training run's manager (`keep` given) keeps the last `keep` checkpoints and deletes
  such leftovers; a loader's (`keep=None`) changes nothing, since a run may be writing.
  With `best_fn` (a score of the metrics passed to `save`, higher is better), the `keep`
  best-scoring checkpoints are kept instead of the latest.
  """
  training = keep is not None
  _drop_abandoned_io_noise()
  return ocp.CheckpointManager(
      paths.path(workdir) / (BEST_DIR if best else 'checkpoints'),
      options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=training,
                                           cleanup_tmp_directories=training, best_fn=best_fn,
                                           best_mode='max'))


def _brief(error: Exception) -> str:
  # Tensorstore appends its whole JSON spec to its messages; the part before says what failed.
  return str(error).split(' [tensorstore_spec')[0]


def _drop_abandoned_io_noise() -> None:
  """Silences the reports of the reads or writes a failed restore or save left in flight.

  Orbax stops at the first failed read or write and closes its event loop. Each read or
  write still in flight then reports its own failure on the way out: an 'Event loop is
  closed' traceback (possibly before orbax's error reaches our code, hence installed with
  the manager) and, at exit, a 'Task exception was never retrieved' log per orbax task.
  They say nothing the UserError does not.
  """
  previous = sys.unraisablehook
  if getattr(previous, 'func', None) is not _unraisablehook:
    sys.unraisablehook = functools.partial(_unraisablehook, previous)
  asyncio_logger = std_logging.getLogger('asyncio')
  if _is_abandoned_orbax_task not in asyncio_logger.filters:
    asyncio_logger.addFilter(_is_abandoned_orbax_task)


def _unraisablehook(previous: Callable[[Any], None], unraisable: Any) -> None:
  error = unraisable.exc_value
  if not (isinstance(error, RuntimeError) and str(error) == 'Event loop is closed'):
    previous(unraisable)


def _is_abandoned_orbax_task(record: std_logging.LogRecord) -> bool:
  """A logging filter: False (drop) for an orbax task whose failure nobody awaited."""
  message = str(record.msg)
  return not (message.startswith('Task exception was never retrieved') and 'orbax' in message)


def _write_error(manager: ocp.CheckpointManager, error: Exception) -> UserError:
  return UserError(
      f'Writing a checkpoint in {manager.directory} failed: {_brief(error)}. The finished '
      'checkpoints are intact; free disk space or fix permissions, then rerun the same '
      'command to resume.')


def save(manager: ocp.CheckpointManager, state: GANState, meta: dict[str, Any] | None = None,
         metrics: dict[str, Any] | None = None) -> None:
  """Saves the state and the run's `meta` (RUN_META's fields) at state.step.

  The data position needs no saving: it is the step (input_pipeline.create_dataset).

  `metrics` are what a best-keeping manager (`create_manager(best_fn=...)`) ranks by.

  The write finishes in the background; orbax reports a failed one (disk full, no
  permission) at the next save or `wait`, both of which raise it as a UserError.
  """
  try:
    manager.save(int(state.step), args=ocp.args.Composite(
        state=ocp.args.StandardSave(state),
        meta=ocp.args.JsonSave({**RUN_META, **(meta or {})})), metrics=metrics)
  except (OSError, ValueError) as e:  # tensorstore raises ValueError for I/O errors
    raise _write_error(manager, e) from e


def wait(manager: ocp.CheckpointManager) -> None:
  """Waits for the checkpoint being written; raises UserError if writing it failed."""
  try:
    manager.wait_until_finished()
  except (OSError, ValueError) as e:
    raise _write_error(manager, e) from e


def check_step(manager: ocp.CheckpointManager, step: int) -> None:
  """Raises UserError if there is no checkpoint at `step`."""
  if step not in manager.all_steps():
    raise UserError(f'{manager.directory} has no checkpoint at step {step}; it has steps '
                    f'{sorted(manager.all_steps())}.')


def discard_after(manager: ocp.CheckpointManager, step: int) -> None:
  """Deletes the checkpoints after `step`: a run resumed from `step` writes new ones instead."""
  newer = [s for s in manager.all_steps() if s > step]
  for s in newer:
    manager.delete(s)
  if newer:
    logging.warning('Resuming from step %d: deleted the later checkpoints %s.', step, newer)


def _restore_target(abstract_state: GANState, path: epath.Path) -> GANState | dict[str, Any]:
  """What to restore the state at `path` into: `abstract_state`, or for a checkpoint written
  before some (then empty, e.g. EMA-less) fields of GANState existed, a dict without them."""
  saved = set(ocp.StandardCheckpointHandler().metadata(path).keys())
  fields = {field.name: getattr(abstract_state, field.name)
            for field in dataclasses.fields(abstract_state)}
  if set(fields) <= saved:
    return abstract_state
  return {name: value for name, value in fields.items() if name in saved or value != {}}


def restore(manager: ocp.CheckpointManager, abstract_state: GANState,
            step: int | None = None) -> tuple[GANState, dict[str, Any]]:
  """Restores the state at `step` (default: latest) and the run's meta (RUN_META's fields).

  An unreadable checkpoint raises a UserError naming the older ones to resume from instead.
  Checkpoints of earlier versions hold grain's data position too, which is not read.
  """
  step = manager.latest_step() if step is None else step
  try:
    target = _restore_target(abstract_state, manager.directory / str(step) / 'state')
    restored = manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(target), meta=ocp.args.JsonRestore()))
  except (OSError, ValueError, KeyError) as e:  # a missing or truncated file, per orbax's layer
    others = sorted(s for s in manager.all_steps() if s != step)
    advice = (f'use an older one with --restore_step=N, N in {others}' if others else
              'it is the only one; delete it to start over')
    raise UserError(f'Checkpoint {manager.directory / str(step)} cannot be read, it is corrupt '
                    f'or incomplete ({type(e).__name__}: {_brief(e)}); {advice}.') from e
  state = restored.state
  if isinstance(state, dict):  # fields the checkpoint predates take their (empty) defaults
    state = GANState(**state)
  return state, {**RUN_META, **restored.meta}


def abstract_state(config: ml_collections.ConfigDict, generator: nn.Module,
                   discriminator: nn.Module, data_shape: tuple[int, ...],
                   mesh: Mesh) -> GANState:
  """The state's shapes, dtypes and (replicated) shardings, without computing it."""
  g_tx, d_tx = create_optimizers(config)
  shapes = jax.eval_shape(lambda: create_state(config, generator, discriminator, g_tx, d_tx,
                                               data_shape))
  replicated = NamedSharding(mesh, P())
  return jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=replicated),
                      shapes)


@dataclasses.dataclass(frozen=True)
class Loaded:
  """A trained GAN from a workdir: its config, state and modules, and its checkpoint's run meta
  (RUN_META's fields: the seconds trained tell whether config.train_minutes ended the run)."""
  config: ml_collections.ConfigDict
  state: GANState
  generator: nn.Module
  discriminator: nn.Module
  data_shape: tuple[int, ...]
  meta: dict[str, Any] = dataclasses.field(default_factory=lambda: dict(RUN_META))


def load(workdir: str, step: int | None = None, best: bool = False) -> Loaded:
  """Loads a workdir's config and its checkpoint at `step` (default: the latest).

  With `best`, from WORKDIR/best_checkpoint/: the one that evaluated best during training
  (config.keep_best_checkpoint).
  """
  config = read_config(workdir)
  if config is None:
    raise UserError(f'{workdir} has no {CONFIG_FILE}: is it a gan_jax workdir?')
  data_shape = input_pipeline.data_shape(config)
  generator, discriminator = models.build(config, data_shape)
  manager = create_manager(workdir, best=best)
  if manager.latest_step() is None:
    raise UserError(f'{workdir} has no {"best " if best else ""}checkpoint yet; train longer '
                    f'{"with config.keep_best_checkpoint " if best else ""}or check --workdir.')
  if step is not None:
    check_step(manager, step)
  mesh = Mesh(jax.devices(), ('data',))
  state, meta = restore(manager, abstract_state(config, generator, discriminator, data_shape,
                                                mesh), step=step)
  manager.close()
  return Loaded(config, state, generator, discriminator, data_shape, meta)
