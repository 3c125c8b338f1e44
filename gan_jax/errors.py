"""The one error type for mistakes a user can fix (config, data, workdir)."""


class UserError(Exception):
  """A mistake the user can fix; its message says what was wrong and how to fix it.

  `gan_jax.main` prints the message alone, without a traceback from deep inside.
  """
