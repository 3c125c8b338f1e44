"""PyTorch state dicts (`.pth` files) read into numpy arrays, without torch.

Published weights of reference networks, such as pytorch-fid's Inception-v3, ship as
`torch.save(model.state_dict())` files: a pickle whose tensors point into raw storages.
Two layouts exist: the zip archive of torch >= 1.6 (`<name>/data.pkl` and one file per
storage under `<name>/data/`) and the older legacy stream (pickles of a magic number, a
protocol version and system info, then the object, then the storage keys, then each
storage as an int64 element count and its bytes). Both are read here. The unpickler
resolves only the few classes a state dict of tensors uses, so a file cannot run code.
"""
import collections
import io
import pickle
import struct
import zipfile
from typing import Any, BinaryIO, Callable

import ml_dtypes
import numpy as np

from gan_jax.errors import UserError

_DTYPES = {
    'FloatStorage': np.float32, 'DoubleStorage': np.float64, 'HalfStorage': np.float16,
    'BFloat16Storage': ml_dtypes.bfloat16, 'LongStorage': np.int64, 'IntStorage': np.int32,
    'ShortStorage': np.int16, 'CharStorage': np.int8, 'ByteStorage': np.uint8,
    'BoolStorage': np.bool_,
}
_LEGACY_MAGIC_NUMBER = 0x1950a86a20f9469cfc6c
_LEGACY_PROTOCOL_VERSION = 1001


class _StorageType:
  """Stands for `torch.FloatStorage` and its kin in the pickle: a numpy dtype."""

  def __init__(self, name: str):
    self.dtype = np.dtype(_DTYPES[name])


def _rebuild_tensor(storage: np.ndarray, offset: int, size: tuple[int, ...],
                    stride: tuple[int, ...], *unused_grad_hooks_and_metadata) -> np.ndarray:
  """torch._utils._rebuild_tensor_v2: a strided view of a storage.

  A view, not a copy: a legacy file's storages are filled in after its pickle is read.
  """
  itemsize = storage.dtype.itemsize
  return np.lib.stride_tricks.as_strided(storage[offset:], size,
                                         [s * itemsize for s in stride])


class _Unpickler(pickle.Unpickler):
  """Unpickles a state dict, loading each storage through `read_storage(key, dtype, numel)`."""

  def __init__(self, file: BinaryIO, read_storage: Callable[[str, np.dtype, int], np.ndarray]):
    super().__init__(file)
    self._read_storage = read_storage
    self.storages = {}

  def find_class(self, module: str, name: str) -> Any:
    if (module, name) == ('collections', 'OrderedDict'):
      return collections.OrderedDict
    if (module, name) == ('torch._utils', '_rebuild_tensor_v2'):
      return _rebuild_tensor
    if module == 'torch' and name in _DTYPES:
      return _StorageType(name)
    raise pickle.UnpicklingError(f'{module}.{name} is not part of a state dict of tensors')

  def persistent_load(self, saved_id: tuple) -> np.ndarray:
    # Zip: ('storage', type, key, location, numel); legacy: (..., numel, view_metadata).
    kind, storage_type, key, _, numel, *view = saved_id
    if kind != 'storage' or any(view):
      raise pickle.UnpicklingError(f'unsupported storage reference {saved_id[:3]}')
    if key not in self.storages:
      self.storages[key] = self._read_storage(str(key), storage_type.dtype, numel)
    return self.storages[key]


def _read_zip(file: BinaryIO) -> Any:
  with zipfile.ZipFile(file) as archive:
    pickle_name = next((n for n in archive.namelist() if n.endswith('/data.pkl')), None)
    if pickle_name is None:
      raise pickle.UnpicklingError('the zip archive holds no data.pkl')
    prefix = pickle_name[:-len('data.pkl')]
    byte_order = '<'
    if prefix + 'byteorder' in archive.namelist():
      byte_order = '<' if archive.read(prefix + 'byteorder') == b'little' else '>'

    def read_storage(key, dtype, numel):
      data = archive.read(f'{prefix}data/{key}')
      return np.frombuffer(data, dtype.newbyteorder(byte_order), numel)

    with archive.open(pickle_name) as pickled:
      return _Unpickler(io.BytesIO(pickled.read()), read_storage).load()


def _read_legacy(file: BinaryIO) -> Any:
  if pickle.load(file) != _LEGACY_MAGIC_NUMBER:
    raise pickle.UnpicklingError('not a PyTorch file: wrong magic number')
  if (version := pickle.load(file)) != _LEGACY_PROTOCOL_VERSION:
    raise pickle.UnpicklingError(f'unknown legacy protocol version {version}')
  byte_order = '<' if pickle.load(file).get('little_endian', True) else '>'
  unpickler = _Unpickler(file, lambda key, dtype, numel: np.empty(numel, dtype))
  result = unpickler.load()
  for key in pickle.load(file):  # the storages follow in this order
    storage = unpickler.storages[key]
    (numel,) = struct.unpack(byte_order + 'q', file.read(8))
    data = file.read(numel * storage.dtype.itemsize)
    if numel != storage.size or len(data) != storage.nbytes:
      raise pickle.UnpicklingError(f'storage {key} is truncated')
    storage[:] = np.frombuffer(data, storage.dtype.newbyteorder(byte_order))
  return result


def read_state_dict(data: bytes, name: str) -> dict[str, np.ndarray]:
  """The tensors of a `torch.save(state_dict)` file's bytes, as {name: numpy array}.

  Args:
    data: the file's contents, zip or legacy layout.
    name: the file's name, for error messages.
  Returns:
    The state dict, in its order; dtypes as saved (int64 for batch norm's
    num_batches_tracked, ml_dtypes.bfloat16 for bfloat16).
  Raises:
    UserError: the file is not a PyTorch state dict of tensors.
  """
  file = io.BytesIO(data)
  is_zip = zipfile.is_zipfile(file)
  file.seek(0)  # is_zipfile read the end
  try:
    state = _read_zip(file) if is_zip else _read_legacy(file)
  except (pickle.UnpicklingError, EOFError, ValueError, KeyError, TypeError, struct.error,
          zipfile.BadZipFile) as e:
    raise UserError(f'{name} is not a PyTorch state dict file ({e}).') from e
  if not isinstance(state, dict) or not all(isinstance(v, np.ndarray) for v in state.values()):
    raise UserError(f'{name} holds a {type(state).__name__}, not a state dict of tensors.')
  return {key: np.array(view) for key, view in state.items()}  # copies own their memory
