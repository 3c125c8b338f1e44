"""The one error type for mistakes a user can fix (config, data, workdir)."""
import difflib
from typing import Any, Iterable

import ml_collections


class UserError(Exception):
  """A mistake the user can fix; its message says what was wrong and how to fix it.

  `gan_jax.main` prints the message alone, without a traceback from deep inside.
  """


def unknown_name_error(kind: str, name: Any, valid: Iterable[str]) -> UserError:
  """Returns the UserError for an unknown `name` of `kind`: the closest valid name, then all."""
  valid = sorted(valid)
  # Above difflib's default cutoff of 0.6, which suggests 'uniform' for 'normal'.
  close = difflib.get_close_matches(str(name), valid, n=1, cutoff=0.7)
  hint = f' Did you mean {close[0]!r}?' if close else ''
  return UserError(f'Unknown {kind} {name!r}.{hint} Valid: {", ".join(valid)}.')


def _field_names(config: ml_collections.ConfigDict, prefix: str = '') -> list[str]:
  """The dotted names of every field of `config`, groups included: 'model', 'model.width', ..."""
  names = []
  for key, value in config.items():
    names.append(prefix + key)
    if isinstance(value, ml_collections.ConfigDict):
      names += _field_names(value, f'{prefix}{key}.')
  return names


def has_field(config: ml_collections.ConfigDict, dotted: str) -> bool:
  """Whether `config` has the field `dotted`, e.g. 'd_optimizer.learning_rate'."""
  return dotted in _field_names(config)


def unknown_field_error(dotted: str, config: ml_collections.ConfigDict) -> UserError:
  """The UserError for `config.<dotted>`, a field `config` lacks: its full name, and the field
  probably meant or else the fields of the group where the name went wrong.

  The field meant is the closest one in that group ('d_optimizer.learning_rte' ->
  'd_optimizer.learning_rate', 'd_optimzer.b1' -> 'd_optimizer.b1'), else the fields
  elsewhere of the closest own name ('learning_rte' -> both optimizers' learning_rate).
  """
  parts = dotted.split('.')
  group, known = config, []
  for part in parts[:-1]:
    if not isinstance(group.get(part), ml_collections.ConfigDict):
      break
    group = group[part]
    known.append(part)
  prefix = ''.join(part + '.' for part in known)
  ancestors = {'.'.join(parts[:i]) for i in range(1, len(parts))}
  # Above difflib's default cutoff of 0.6, as errors.unknown_name_error.
  meant = [prefix + name for name in difflib.get_close_matches(
      dotted[len(prefix):], _field_names(group), n=1, cutoff=0.7)]
  if not meant:
    names = [name for name in _field_names(config) if name not in ancestors]
    last = lambda name: name.rsplit('.', 1)[-1]
    close = difflib.get_close_matches(parts[-1], sorted({last(name) for name in names}), n=1,
                                      cutoff=0.7)
    meant = [name for name in names if close and last(name) == close[0]]
  if meant:
    hint = f'Did you mean {" or ".join(repr("config." + name) for name in meant)}?'
  else:
    hint = f'{"config." + prefix[:-1] if prefix else "config"} has: {", ".join(sorted(group))}.'
  return UserError(f'Unknown field {"config." + dotted!r}. {hint}')
