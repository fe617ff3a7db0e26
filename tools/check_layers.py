#!/usr/bin/env python3
"""Keeps the repository one a newcomer can carry on alone. Exits 1, naming what is wrong, on:

1. an import cycle between the host's modules (files), or an import that goes up the
   layers `host/src/lib.rs` lists (config and errors, sandbox, ports, adapters, pipeline,
   entry points);
2. a reference to a path outside the repository (a parent directory, a machine's home or
   work directory) in any tracked text file.

    python3 tools/check_layers.py            # from the repository's root
"""
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "host" / "src"

# The host's layers, bottom first: a module may import its own layer and the ones before.
LAYERS = [
    {"config", "error"},
    {"sandbox"},
    {"ports"},
    {"adapters"},
    {"pipeline"},
    {"lambda", "queue", "cli", "logging", "main", "lib"},
]


def module_of(path):
    """`host/src/adapters/s3.rs` -> `adapters::s3`; `sandbox/mod.rs` -> `sandbox`."""
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "mod":
        parts.pop()
    return "::".join(parts)


def resolve(module, path_text, known):
    """The module a `crate::`, `super::` or `self::` path names (the longest known prefix)."""
    segments = path_text.split("::")
    if segments[0] == "crate":
        base = []
    elif segments[0] in ("super", "self"):
        base = [] if module in ("lib", "main") else module.split("::")
        while segments and segments[0] in ("super", "self"):
            if segments[0] == "super":
                base = base[:-1]
            segments = segments[1:]
        segments = ["crate"] + segments
    else:
        return None
    rest = segments[1:]
    best = None
    for i in range(len(rest), 0, -1):
        candidate = "::".join(base + rest[:i])
        if candidate in known:
            best = candidate
            break
    return best


USE = re.compile(r"\b((?:crate|super|self)(?:::[A-Za-z_][A-Za-z0-9_]*)+)")
USE_GROUP = re.compile(r"\buse\s+((?:crate|super|self)(?:::[A-Za-z_][A-Za-z0-9_]*)*)::\{([^;]*)\};", re.S)


def imports(path, module, known):
    text = path.read_text()
    # Test modules may reach anything; they are not part of the layering.
    text = re.split(r"#\[cfg\(test\)\]\s*mod tests", text)[0]
    found = set()
    for m in USE_GROUP.finditer(text):
        prefix = m.group(1)
        for item in re.split(r",\s*", m.group(2)):
            item = item.strip().split(" as ")[0].split("::{")[0]
            if item and item != "self":
                target = resolve(module, f"{prefix}::{item}", known)
                if target:
                    found.add(target)
            elif item == "self":
                target = resolve(module, prefix, known)
                if target:
                    found.add(target)
    for m in USE.finditer(text):
        target = resolve(module, m.group(1), known)
        if target:
            found.add(target)
    found.discard(module)
    # A module's own children and parents are not imports between layers.
    return {t for t in found if not t.startswith(module + "::")}


def layer(module):
    top = module.split("::")[0]
    for i, names in enumerate(LAYERS):
        if top in names:
            return i
    return None


def check_modules():
    files = sorted(SRC.rglob("*.rs"))
    known = {module_of(f) for f in files}
    graph = {module_of(f): imports(f, module_of(f), known) for f in files}
    problems = []
    for module, targets in sorted(graph.items()):
        if layer(module) is None:
            problems.append(f"{module}: not in any layer (add it to LAYERS and host/src/lib.rs)")
            continue
        for t in sorted(targets):
            if layer(t) is not None and layer(t) > layer(module):
                problems.append(f"{module} imports {t}, a layer above it")
    # Cycles between files, ignoring a parent module's re-exports of its own children.
    def edges(m):
        return {t for t in graph.get(m, ()) if not m.startswith(t + "::")}

    state, stack = {}, []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for t in sorted(edges(m)):
            if state.get(t) == "open":
                cycle = stack[stack.index(t):] + [t]
                problems.append("import cycle: " + " -> ".join(cycle))
            elif t not in state:
                visit(t)
        stack.pop()
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m)
    return problems, graph


# A path that leaves the repository: a machine's own directories, or a relative path that
# climbs out of the repository from the file that names it.
MACHINE = re.compile(r"(/work/|/root/|/home/[a-z]|/Users/|[A-Z]:\\\\Users)")
RELATIVE = re.compile(r"(?:\.\./)+[A-Za-z0-9_.\-/]*")


def leaves_repository(name, token):
    resolved = (ROOT / name).parent.joinpath(token).resolve()
    return not (resolved == ROOT or ROOT in resolved.parents)


def check_paths():
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                            text=True, check=True).stdout.split()
    problems = []
    for name in listed:
        path = ROOT / name
        if not path.is_file() or path.suffix in (".wasm", ".cwasm", ".zip", ".png", ".lock"):
            continue
        if name == "tools/check_layers.py":
            continue
        try:
            text = path.read_text()
        except (UnicodeDecodeError, OSError):
            continue
        for n, line in enumerate(text.splitlines(), 1):
            if MACHINE.search(line) or any(leaves_repository(name, t) for t in RELATIVE.findall(line)):
                problems.append(f"{name}:{n}: refers to a path outside the repository: {line.strip()[:100]}")
    return problems


def main():
    problems, graph = check_modules()
    problems += check_paths()
    if "--graph" in sys.argv:
        for m, ts in sorted(graph.items()):
            print(f"{m} (layer {layer(m)}): {', '.join(sorted(ts))}")
    if problems:
        print("\n".join(problems))
        sys.exit(1)
    print(f"{len(graph)} host modules in {len(LAYERS)} layers, no cycle; no path outside the repository")


if __name__ == "__main__":
    main()
