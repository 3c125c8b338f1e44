"""Checkpoints and the workdir: orbax for the state and the data position, JSON for the config.

`load(workdir)` is the one loader for a finished or running workdir: `sample`,
evaluation and notebooks all go through it, and the training loop resumes with
the same `restore`.
"""
import dataclasses
import json
import os
from typing import Any

import flax.linen as nn
import grain
import jax
import ml_collections
import orbax.checkpoint as ocp
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from gan_jax import input_pipeline, models
from gan_jax.errors import UserError
from gan_jax.state import GANState, create_optimizers, create_state

CONFIG_FILE = 'config.json'
# Fields that change the shapes of the state: a checkpoint cannot be resumed across them.
SHAPE_FIELDS = ('dataset', 'model.name', 'model.latent_dim', 'model.width', 'model.mlp_layers',
                'model.g_batch_norm', 'model.spectral_norm')


def write_config(workdir: str, config: ml_collections.ConfigDict) -> None:
  """Writes the resolved config as WORKDIR/config.json (atomically)."""
  os.makedirs(workdir, exist_ok=True)
  path = os.path.join(workdir, CONFIG_FILE)
  with open(path + '.tmp', 'w') as f:
    f.write(config.to_json(indent=2, sort_keys=True))
  os.replace(path + '.tmp', path)


def read_config(workdir: str) -> ml_collections.ConfigDict | None:
  """The config a workdir was trained with, or None for a new workdir."""
  path = os.path.join(workdir, CONFIG_FILE)
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return ml_collections.ConfigDict(json.load(f))


def _field(config: ml_collections.ConfigDict, dotted: str) -> Any:
  for part in dotted.split('.'):
    config = config[part]
  return config


def check_resumable(saved: ml_collections.ConfigDict, config: ml_collections.ConfigDict,
                    workdir: str) -> None:
  """Raises UserError if `config` changes a shape field of the run saved in `workdir`."""
  for field in SHAPE_FIELDS:
    old, new = _field(saved, field), _field(config, field)
    if old != new:
      raise UserError(
          f'{workdir} holds a run with config.{field}={old!r}, but this config says {new!r}, '
          'which changes the shapes of the checkpointed state; use a fresh --workdir.')


def create_manager(workdir: str, keep: int) -> ocp.CheckpointManager:
  """Orbax manager of WORKDIR/checkpoints/<step>; keeps the last `keep` checkpoints."""
  return ocp.CheckpointManager(
      os.path.abspath(os.path.join(workdir, 'checkpoints')),
      options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True))


def save(manager: ocp.CheckpointManager, state: GANState,
         data_iterator: grain.DatasetIterator) -> None:
  """Saves the state and the data position at state.step (asynchronously)."""
  manager.save(int(state.step), args=ocp.args.Composite(
      state=ocp.args.StandardSave(state), data=grain.checkpoint.CheckpointSave(data_iterator)))


def restore(manager: ocp.CheckpointManager, abstract_state: GANState,
            data_iterator: grain.DatasetIterator | None = None,
            step: int | None = None) -> GANState:
  """Restores the state at `step` (default latest) and, if given, the data iterator in place."""
  step = manager.latest_step() if step is None else step
  args = {'state': ocp.args.StandardRestore(abstract_state)}
  if data_iterator is not None:
    args['data'] = grain.checkpoint.CheckpointRestore(data_iterator)
  return manager.restore(step, args=ocp.args.Composite(**args)).state


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
  """A trained GAN from a workdir: its config, state and modules."""
  config: ml_collections.ConfigDict
  state: GANState
  generator: nn.Module
  discriminator: nn.Module
  data_shape: tuple[int, ...]


def load(workdir: str, step: int | None = None) -> Loaded:
  """Loads a workdir's config and its checkpoint at `step` (default: the latest)."""
  config = read_config(workdir)
  if config is None:
    raise UserError(f'{workdir} has no {CONFIG_FILE}: is it a gan_jax workdir?')
  data_shape = input_pipeline.DATASETS[config.dataset].shape
  generator, discriminator = models.build(config, data_shape)
  manager = create_manager(workdir, config.keep_checkpoints)
  if manager.latest_step() is None:
    raise UserError(f'{workdir} has no checkpoint yet; train longer or check --workdir.')
  if step is not None and step not in manager.all_steps():
    raise UserError(f'{workdir} has no checkpoint at step {step}; it has steps '
                    f'{sorted(manager.all_steps())}.')
  mesh = Mesh(jax.devices(), ('data',))
  state = restore(manager, abstract_state(config, generator, discriminator, data_shape, mesh),
                  step=step)
  manager.close()
  return Loaded(config, state, generator, discriminator, data_shape)
