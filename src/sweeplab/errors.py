"""Errors a user can fix. Hydra prints a CompactHydraException as its message alone (no traceback
unless HYDRA_FULL_ERROR=1) and exits 1, the same way it reports its own composition errors."""
from hydra.errors import CompactHydraException


class ConfigError(CompactHydraException):
    """A config value out of range or an unknown name; the message names key, value and what is allowed."""


class DataError(CompactHydraException):
    """A dataset that cannot be found or read; the message names each place looked and how to get it."""


class FileError(CompactHydraException):
    """A job file that cannot be written (a full disk, no permission); the message names the file and why."""
