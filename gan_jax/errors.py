"""The one error type for mistakes a user can fix (config, data, workdir)."""
import difflib
from typing import Any, Iterable


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
