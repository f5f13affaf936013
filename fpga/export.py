"""Export ``sdxi_engine.v`` and ``sdxi_engine.json`` for one variant of the engine.

    python -m fpga.export                    # default variant -> build/
    python -m fpga.export --variant w256     # -> build/w256/
    python -m fpga.export --all
"""

import argparse
import json
import sys
from pathlib import Path

from amaranth.back import verilog

from hdl.config import DEFAULT_VARIANT, VARIANTS
from hdl.top import SdxiEngine


__all__ = ["export", "variant_dir", "REPO_ROOT"]

REPO_ROOT = Path(__file__).resolve().parent.parent


def variant_dir(variant, build_root=None):
    root = Path(build_root) if build_root else REPO_ROOT / "build"
    return root if variant == DEFAULT_VARIANT else root / variant


def export(variant=DEFAULT_VARIANT, build_root=None):
    """Write the variant's Verilog and metadata; return the Verilog path.

    Files are rewritten only when their contents change, so simulator builds that depend on
    them stay cached.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; known: {', '.join(VARIANTS)}")
    config = VARIANTS[variant]
    out = variant_dir(variant, build_root)
    out.mkdir(parents=True, exist_ok=True)
    text = verilog.convert(SdxiEngine(config), name="sdxi_engine", emit_src=False)
    metadata = json.dumps(config.metadata(), indent=2) + "\n"
    v_path = out / "sdxi_engine.v"
    for path, content in ((v_path, text), (out / "sdxi_engine.json", metadata)):
        if not path.exists() or path.read_text() != content:
            path.write_text(content)
    return v_path


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
