"""The layers of docs/architecture.md hold: each module imports only its own layer and the ones below it.

Read from the source (every import statement, also those inside functions), so a new upward import
fails here before it becomes an import cycle or a core module that drags in a Hydra plugin.
"""
import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"

# bottom up, as in docs/architecture.md; a module belongs to the first layer whose prefix it starts with
LAYERS = [
    ("config and files", ("sweeplab.config", "sweeplab.targets", "sweeplab.errors", "sweeplab.jobfiles",
                          "sweeplab.interpolations")),
    ("training core", ("sweeplab.training",)),
    ("fused engine", ("sweeplab.fused",)),
    ("job lifecycle", ("sweeplab.job",)),
    ("sweep plumbing", ("sweeplab.sweep", "sweeplab.app", "hydra_plugins")),
    ("report", ("sweeplab.report", "sweeplab.cli")),
]


def layer_of(module: str) -> int | None:
    for rank, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return rank
    return None


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> set[str]:
    """The absolute names of the modules ``path`` imports (relative imports resolved)."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def test_no_module_imports_a_layer_above_its_own():
    files = [p for p in SRC.rglob("*.py") if layer_of(module_name(p)) is not None]
    assert len(files) > 40  # the walk found the source tree
    upward = []
    for path in files:
        own = layer_of(module_name(path))
        for name in imported(path):
            rank = layer_of(name)
            if rank is not None and rank > own:
                upward.append(f"{module_name(path)} ({LAYERS[own][0]}) imports {name} ({LAYERS[rank][0]})")
    assert not upward, "\n".join(sorted(upward))

