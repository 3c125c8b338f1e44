"""A stand-in for the few TensorFlow calls tfds makes while preparing an image data set.

tfds imports TensorFlow lazily, as one shared `tf` object in each of its modules, and its
preparation path touches it in a handful of places: `tf.image.encode_png`/`encode_jpeg` for
numpy images (tensorflow_datasets/core/features/image_feature.py, through
`utils.TFGraphRunner`), `tf.io.gfile` in the archive extractor, the shuffler's spill files and
catalog builders (cifar.py, imagenet_common.py), and `tf.compat.as_text`. Without TensorFlow
each of those raises ModuleNotFoundError. `tensorflow_stand_in()` puts, for the duration of one
preparation, an object answering exactly those calls (PIL, etils.epath) in place of that shared
`tf`; any other TensorFlow call still fails, with a message naming it. Patching tfds's private
image encoder instead would cover numpy images only, not the tf.io.gfile reads of its
extractor and catalog builders.
"""
import contextlib
import importlib.util
import io
import os
import sys
from typing import Any, Callable, Iterator

from etils import epath
import numpy as np
from PIL import Image
from tensorflow_datasets.core.utils import lazy_imports_utils

_JPEG_QUALITY = 95  # tf.image.encode_jpeg's default
# Taken at import: inside `tensorflow_stand_in`, lazy_imports_utils's own name is swapped too.
_LAZY_TENSORFLOW = lazy_imports_utils.tensorflow


class TensorFlowNeeded(ModuleNotFoundError):
  """A TensorFlow call the stand-in does not answer.

  A ModuleNotFoundError, as tfds's lazy `tf` raises without TensorFlow, so code that falls
  back when TensorFlow is missing still does.
  """


class _Namespace:
  """Answers the attributes it holds; any other is a TensorFlowNeeded naming it."""

  def __init__(self, path: str, **members: Any):
    self._path = path
    self.__dict__.update(members)

  def __getattr__(self, name: str) -> Any:
    if name.startswith('__'):  # introspection (copy, pickle, inspect) asks for dunders
      raise AttributeError(name)
    raise TensorFlowNeeded(f'{self._path}.{name} needs TensorFlow, which is not installed')


class _Errors:
  """`tf.errors`: the builtin errors that epath raises, or classes nothing raises."""
  NotFoundError = FileNotFoundError
  AlreadyExistsError = FileExistsError
  PermissionDeniedError = PermissionError
  OpError = OSError

  def __getattr__(self, name: str) -> type[Exception]:
    if name.startswith('__'):
      raise AttributeError(name)
    # `except tf.errors.UnimplementedError:` clauses only need a class to compare with.
    error = type(name, (Exception,), {})
    setattr(self, name, error)
    return error


class _Encoded:
  """What a TensorFlow op returns in eager mode, as far as TFGraphRunner uses it."""

  def __init__(self, data: bytes):
    self._data = data

  def numpy(self) -> bytes:
    return self._data


def _encoder(image_format: str, **options: Any) -> Callable[[np.ndarray], _Encoded]:
  """Returns tf.image.encode_<format> done with PIL: uint8 [H, W, C], or uint16 [H, W, 1]."""
  def encode(image: np.ndarray) -> _Encoded:
    image = np.asarray(image)
    if image.ndim != 3 or (image.dtype, image.shape[-1]) not in (
        *((np.uint8, c) for c in (1, 2, 3, 4)), (np.uint16, 1)):
      raise TensorFlowNeeded(f'encoding a {image.dtype} image of shape {image.shape} as '
                             f'{image_format} needs TensorFlow, which is not installed')
    buffer = io.BytesIO()
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(
        buffer, format=image_format, **options)
    return _Encoded(buffer.getvalue())
  return encode


def _gfile() -> _Namespace:
  """`tf.io.gfile` on etils.epath, which reads local paths and, with gcsfs, gs:// ones."""
  return _Namespace(
      'tf.io.gfile',
      GFile=lambda name, mode='r': epath.Path(name).open(mode),
      exists=lambda path: epath.Path(path).exists(),
      isdir=lambda path: epath.Path(path).is_dir(),
      listdir=lambda path: [child.name for child in epath.Path(path).iterdir()],
      makedirs=lambda path: epath.Path(path).mkdir(parents=True, exist_ok=True),
      remove=lambda path: epath.Path(path).unlink(),
      copy=lambda source, destination, overwrite=False: epath.Path(source).copy(
          destination, overwrite=overwrite),
  )


def _as_text(text: str | bytes, encoding: str = 'utf-8') -> str:
  return text.decode(encoding) if isinstance(text, bytes) else text


def _as_bytes(text: str | bytes, encoding: str = 'utf-8') -> bytes:
  return text.encode(encoding) if isinstance(text, str) else bytes(text)


def _stand_in() -> _Namespace:
  return _Namespace(
      'tf',
      executing_eagerly=lambda: True,  # TFGraphRunner then calls op(input).numpy()
      compat=_Namespace('tf.compat', as_text=_as_text, as_str=_as_text, as_bytes=_as_bytes,
                        path_to_str=os.fspath),
      image=_Namespace('tf.image', encode_png=_encoder('png'),
                       encode_jpeg=_encoder('jpeg', quality=_JPEG_QUALITY)),
      io=_Namespace('tf.io', gfile=_gfile()),
      errors=_Errors(),
  )


def _lazy_tensorflow_references() -> list[tuple[Any, str]]:
  """Returns (module, name) of every loaded module's global bound to tfds's lazy `tf`."""
  this_module = sys.modules[__name__]  # its _LAZY_TENSORFLOW must stay what it is
  return [(module, name) for module in list(sys.modules.values()) if module is not this_module
          for name, value in list(getattr(module, '__dict__', {}).items())
          if value is _LAZY_TENSORFLOW]


def _swap(stack: contextlib.ExitStack, module: Any, name: str, value: Any) -> None:
  """Binds `module.name` to `value` until `stack` closes."""
  stack.callback(setattr, module, name, vars(module)[name])
  setattr(module, name, value)


@contextlib.contextmanager
def tensorflow_stand_in() -> Iterator[None]:
  """Lets tfds prepare image data sets without TensorFlow, within this context.

  A no-op where TensorFlow is installed. Meant for one `download_and_prepare` call: the
  swap covers the modules loaded when the context starts (tfds's own, and the builder's).
  """
  with contextlib.ExitStack() as stack:
    if importlib.util.find_spec('tensorflow') is None:
      stand_in = _stand_in()
      for module, name in _lazy_tensorflow_references():
        _swap(stack, module, name, stand_in)
    yield
