"""Export ``sdxi_engine.v`` and ``sdxi_engine.json`` for one variant of the engine.

    python -m fpga.export                    # default variant -> build/
    python -m fpga.export --variant w256     # -> build/w256/
    python -m fpga.export --all
"""

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import sys
from pathlib import Path

import amaranth
from amaranth.back import verilog


__all__ = ["export", "exclusive", "variant_dir", "REPO_ROOT"]

REPO_ROOT = Path(__file__).resolve().parent.parent


def _sources_digest():
    h = hashlib.sha256(amaranth.__version__.encode())
    sources = [p for package in ("hdl", "sdxi_defs") for p in (REPO_ROOT / package).rglob("*.py")]
    passes = [Path(__file__).with_name(f"verilog_{name}.py")
              for name in ("nets", "portable", "procedural")]
    for path in sorted(sources) + [Path(__file__)] + passes:
        h.update(path.relative_to(REPO_ROOT).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()


# Hashed before the gateware is imported, so the digest describes the code this process
# converts even if the files change while it runs.
_SOURCES_DIGEST = _sources_digest()

from hdl.config import DEFAULT_VARIANT, VARIANTS  # noqa: E402
from hdl.top import SdxiEngine  # noqa: E402
from fpga.verilog_nets import drop_field_wires, merge_aliases, merge_part_drivers  # noqa: E402
from fpga.verilog_portable import name_trigger, portable_time_zero  # noqa: E402
from fpga.verilog_procedural import procedural_wide_shifts  # noqa: E402
from sdxi_defs.metadata import validate  # noqa: E402


def variant_dir(variant, build_root=None):
    root = Path(build_root) if build_root else REPO_ROOT / "build"
    return root if variant == DEFAULT_VARIANT else root / variant


def _source_digest(variant):
    """Hash of everything the export depends on: gateware and definitions, this file, the
    variant."""
    return hashlib.sha256(f"{_SOURCES_DIGEST}/{variant}/{VARIANTS[variant]!r}".encode()).hexdigest()


def export(variant=DEFAULT_VARIANT, build_root=None, *, log=None):
    """Write the variant's Verilog and metadata; return the Verilog path.

    The Verilog is Amaranth's (through Yosys) with every wire that Yosys drives in parts
    driven by one assignment, without the unread copies of structured signals' fields, and
    with one name for each net inside a module (``fpga.verilog_nets``), and with its wide
    shifts in procedural blocks (``fpga.verilog_procedural``): the same logic, which Icarus
    simulates several times as fast. Its processes start at time zero the same way
    under Verilog-2005 and SystemVerilog (``fpga.verilog_portable``).

    Nothing is regenerated when the gateware sources have not changed since the last export,
    and files are rewritten only when their contents change, so simulator builds that depend
    on them stay cached. Processes exporting at once (parallel test workers) take turns, and a
    file is replaced whole, never seen half written. ``log`` (a callable) hears about work
    actually done.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; known: {', '.join(VARIANTS)}")
    config = VARIANTS[variant]
    out = variant_dir(variant, build_root)
    out.mkdir(parents=True, exist_ok=True)
    v_path = out / "sdxi_engine.v"
    j_path = out / "sdxi_engine.json"
    stamp = out / ".export-digest"
    digest = _source_digest(variant)
    with exclusive(out / ".export.lock"):
        if v_path.exists() and j_path.exists() and stamp.exists() and stamp.read_text() == digest:
            return v_path
        if log:
            log(f"exporting the {variant} variant to {v_path}")
        text, _ = merge_part_drivers(
            verilog.convert(SdxiEngine(config), name="sdxi_engine", emit_src=False))
        text, _ = drop_field_wires(text)
        text, _ = merge_aliases(text)
        text, _ = portable_time_zero(text)
        text, _ = name_trigger(text)
        text, _ = procedural_wide_shifts(text)
        metadata = json.dumps(validate(config.metadata()), indent=2) + "\n"
        for path, content in ((v_path, text), (j_path, metadata), (stamp, digest)):
            if not path.exists() or path.read_text() != content:
                partial = path.with_name(path.name + ".partial")
                partial.write_text(content)
                os.replace(partial, path)
    return v_path


@contextlib.contextmanager
def exclusive(lock_path):
    """Hold an exclusive lock on ``lock_path`` (created if missing) for the ``with`` body."""
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default=DEFAULT_VARIANT, choices=sorted(VARIANTS))
    parser.add_argument("--all", action="store_true", help="export every variant")
    parser.add_argument("--build-dir", default=None, help="output root (default: build/)")
    args = parser.parse_args(argv)
    for variant in (sorted(VARIANTS) if args.all else [args.variant]):
        path = export(variant, args.build_dir)
        print(f"{variant}: {path} and {path.with_suffix('.json').name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
