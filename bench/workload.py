"""Deterministic synthetic Go modules, laid out as a static GOPROXY tree.

Everything derives from one seed, so two runs produce byte-identical trees:
zip entries carry a fixed timestamp and the blob contents come from a seeded
generator.
"""

import json
import os
import random
import zipfile

MODULE_PREFIX = "example.com/bench"
VERSION = "v1.0.0"
INFO_TIME = "2024-01-01T00:00:00Z"
ZIP_DATE = (2024, 1, 1, 0, 0, 0)
# Stored (not deflated) random blobs make zips of an exact size cheaply.
BLOB_CHUNK = 4 << 20


def small_module(i):
    return f"{MODULE_PREFIX}/dep{i:04d}"


def zip_module(size_mb):
    return f"{MODULE_PREFIX}/zip{size_mb}m"


def _write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def _entry(name):
    info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    return info


def _module(root, module, files, blob_bytes=0, rng=None):
    """Writes list, .info, .mod and .zip of `module`@VERSION under `root`."""
    vdir = os.path.join(root, module, "@v")
    gomod = f"module {module}\n\ngo 1.21\n".encode()
    _write(os.path.join(vdir, "list"), f"{VERSION}\n".encode())
    _write(
        os.path.join(vdir, f"{VERSION}.info"),
        json.dumps({"Version": VERSION, "Time": INFO_TIME}).encode(),
    )
    _write(os.path.join(vdir, f"{VERSION}.mod"), gomod)
    prefix = f"{module}@{VERSION}/"
    with zipfile.ZipFile(os.path.join(vdir, f"{VERSION}.zip"), "w") as z:
        z.writestr(_entry(prefix + "go.mod"), gomod)
        for name, body in files.items():
            z.writestr(_entry(prefix + name), body)
        n = 0
        while blob_bytes > 0:
            size = min(BLOB_CHUNK, blob_bytes)
            z.writestr(_entry(f"{prefix}data/blob{n:03d}.bin"), rng.randbytes(size))
            blob_bytes -= size
            n += 1


def generate(out, deps, zip_sizes_mb, seed):
    """Builds `out`/upstream (the GOPROXY tree) and `out`/root (the main module).

    Returns the module paths of the dependency graph and of the zip modules.
    """
    rng = random.Random(seed)
    upstream = os.path.join(out, "upstream")
    graph = []
    for i in range(deps):
        module = small_module(i)
        pkg = f"dep{i:04d}"
        # A few hundred bytes of source that differ per module.
        words = " ".join(f"w{rng.randrange(1 << 30):x}" for _ in range(24))
        src = f"// Package {pkg} is synthetic.\npackage {pkg}\n\n// Words: {words}\nconst N = {i}\n"
        _module(upstream, module, {f"{pkg}.go": src.encode()})
        graph.append(module)
    zips = {}
    for size_mb in zip_sizes_mb:
        module = zip_module(size_mb)
        _module(
            upstream,
            module,
            {"doc.go": b"package blob\n"},
            blob_bytes=size_mb << 20,
            rng=random.Random(seed * 1000 + size_mb),
        )
        zips[size_mb] = module
    root = os.path.join(out, "root")
    requires = "".join(f"\t{m} {VERSION}\n" for m in graph)
    _write(
        os.path.join(root, "go.mod"),
        f"module {MODULE_PREFIX}/root\n\ngo 1.21\n\nrequire (\n{requires})\n".encode(),
    )
    return graph, zips


def artifact_paths(module):
    base = f"/{module}/@v/"
    return [base + "list", base + f"{VERSION}.info", base + f"{VERSION}.mod"]


def zip_path(module):
    return f"/{module}/@v/{VERSION}.zip"


def generate_startup_cache(cache, modules, versions):
    """A cache holding modules*versions versions (.info and .mod each), written
    straight to disk: start-up must not depend on how the cache was filled."""
    for m in range(modules):
        module = f"{MODULE_PREFIX}/many/m{m:05d}"
        vdir = os.path.join(cache, module, "@v")
        os.makedirs(vdir, exist_ok=True)
        gomod = f"module {module}\n".encode()
        names = []
        for v in range(versions):
            version = f"v1.{v}.0"
            names.append(version)
            with open(os.path.join(vdir, version + ".info"), "wb") as f:
                f.write(json.dumps({"Version": version, "Time": INFO_TIME}).encode())
            with open(os.path.join(vdir, version + ".mod"), "wb") as f:
                f.write(gomod)
        with open(os.path.join(vdir, "list"), "w") as f:
            f.write("\n".join(names) + "\n")
