"""Config nodes with a ``_target_``: checked against the target's signature, then built by Hydra.

A group option such as ``optimizer/nadam.yaml`` names a class or function in ``_target_`` and its
arguments beside it, the Hydra way (``hydra.utils.instantiate``). A few keys in a node are ours, not
the target's (``name`` of a built-in optimizer, ``interval`` of a scheduler, the split keys of a
dataset); each builder says which. The builder also passes what only the run knows (the
parameters, the optimizer, the input shape), so those never appear in YAML.
"""
from __future__ import annotations

import importlib
import inspect
from typing import Any, Iterable

from hydra.errors import CompactHydraException, InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from sweeplab.errors import ConfigError

SPECIAL_KEYS = ("_target_", "_partial_", "_recursive_", "_convert_", "_args_")


def arguments(node: DictConfig, ours: Iterable[str] = ()) -> dict[str, Any]:
    """The node as a plain dict (interpolations resolved) without the keys in ``ours``."""
    config = OmegaConf.to_container(node, resolve=True)
    for key in ours:
        config.pop(key, None)
    return config


def build(key: str, node: DictConfig, ours: Iterable[str] = (), **given: Any) -> Any:
    """``instantiate`` on the node at ``key`` without our keys; ``given`` are the run's own arguments.

    An error the target raises is re-raised as is when it is one of ours (already one clear line),
    else as one line naming the key and the target, instead of Hydra's multi-line wrapper.
    """
    try:
        return instantiate(arguments(node, ours), _convert_="all", **given)
    except InstantiationException as exc:
        cause = exc.__cause__
        if isinstance(cause, CompactHydraException):
            raise cause from None
        reason = " ".join(f"{type(cause).__name__}: {cause}".split()) if cause else str(exc)
        raise ConfigError(f"{key}._target_={node._target_}: {reason}") from cause


def locate(path: str) -> Any:
    """The object at a dotted path: the longest importable module prefix, then its attributes.

    (``hydra.utils.get_object`` does the same but logs a multi-line error of its own first.)
    """
    parts = path.split(".")
    for split in range(len(parts), 0, -1):
        module_name = ".".join(parts[:split])
        try:
            obj = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and (module_name + ".").startswith(exc.name + "."):
                continue  # this prefix is not a module: try a shorter one
            raise ImportError(f"importing {module_name}: {exc}") from exc
        except Exception as exc:  # the user's module itself fails to import
            raise ImportError(f"importing {module_name}: {type(exc).__name__}: {exc}") from exc
        for depth in range(split, len(parts)):
            if not hasattr(obj, parts[depth]):
                raise ImportError(f"{'.'.join(parts[:depth])} has no {parts[depth]!r}")
            obj = getattr(obj, parts[depth])
        return obj
    raise ImportError(f"no module named {parts[0]!r}")


def problems(
    key: str, node: DictConfig, ours: Iterable[str] = (), given: Iterable[str] = (), positional: int = 0
) -> list[str]:
    """What is wrong with the ``_target_`` node at ``key``: an import that fails, an argument the
    target does not take, or a required one nobody gives. One line each; no data is touched.

    The builder passes the names in ``given`` as keywords and its first ``positional`` arguments by
    position (an optimizer's parameters, a scheduler's optimizer), whatever the target calls them.
    """
    path = node._target_
    try:
        target = locate(path)
    except ImportError as exc:
        return [f"{key}._target_={path!r}: cannot import it ({exc})"]
    if not callable(target):
        return [f"{key}._target_={path!r}: is a {type(target).__name__}, expected a class or function"]
    try:
        parameters = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return []  # a builtin without a signature: let the call itself decide
    passed = list(parameters)[:positional]
    given = set(given) | set(passed)
    if positional and node.get("_partial_") is not True:  # else torch's "missing 1 required positional argument"
        return [f"{key}: add `_partial_: true` to its config: the run calls {path} with {', '.join(passed)} itself"]
    accepted = {name for name, p in parameters.items() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    takes_any = any(p.kind == p.VAR_KEYWORD for p in parameters.values())
    configured = {k for k in node if k not in SPECIAL_KEYS and k not in set(ours)}
    found = []
    unknown = sorted(configured - accepted) if not takes_any else []
    if unknown:
        found.append(
            f"{key}.{unknown[0]}: not an argument of {path} "
            f"(it takes: {', '.join(sorted(accepted - given)) or 'nothing'})"
            if len(unknown) == 1 else
            f"{key}: {', '.join(unknown)} are not arguments of {path} (it takes: {', '.join(sorted(accepted - given))})"
        )
    missing = [
        name for name, p in parameters.items()
        if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        and name not in configured and name not in given
    ]
    if missing and node.get("_args_") is None:
        them = "it" if len(missing) == 1 else "them"
        found.append(f"{key}: {path} needs {', '.join(missing)}: add {them} to the {key} config")
    return found
