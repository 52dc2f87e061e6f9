"""What machine the numbers came from, and its theoretical fp32 peak.

The peak is derived, not measured: cores x FMA units per core x fp32 lanes per FMA x 2 FLOPs per FMA x clock.
Lanes come from the widest vector flag (AVX-512F: 16, AVX2/FMA: 8, SSE: 4); FMA units per core from a small table
of known cores (an assumption, printed with the result so a reader can check it); the clock from /proc/cpuinfo.
"""
from __future__ import annotations

import os
import platform
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

# Flags that matter for the kernels' code generation; the full flag list is long and mostly noise.
RELEVANT_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16",
                  "avx_vnni", "amx_tile")


@dataclass
class MachineInfo:
    cpu_model: str
    vendor: str
    cpu_family: int | None
    cores: int
    clock_mhz: float | None
    flags: list
    fp32_lanes: int
    fma_units: int
    fma_units_basis: str
    peak_gflops: float | None
    peak_gflops_per_core: float | None
    peak_derivation: str
    load_average: tuple
    python: str
    versions: dict = field(default_factory=dict)
    python_env: str = ""      # where the packages come from: a virtual environment or the interpreter's own

    def to_dict(self) -> dict:
        return asdict(self)


def _cpuinfo() -> dict:
    """First processor block of /proc/cpuinfo as a dict ({} where there is none, e.g. macOS)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {}
    info = {}
    for line in text.split("\n\n")[0].splitlines():
        key, _, value = line.partition(":")
        info[key.strip()] = value.strip()
    return info


def _fma_units(vendor: str, family: int | None, model_name: str, lanes: int) -> tuple[int, str]:
    """FMA pipes per core able to issue a full-width vector FMA each cycle, and why we think so."""
    if "AMD" in vendor.upper():
        if family is not None and family >= 0x1A:
            return 2, "AMD Zen 5 (family 0x1A): 2 FMA pipes with a full 512-bit datapath"
        if family == 0x19 and lanes == 16:
            # Zen 4 executes a 512-bit FMA as two 256-bit halves: 2 x 256-bit = one 512-bit FMA per cycle.
            return 1, "AMD Zen 4 (family 0x19): 512-bit FMAs double-pumped on 2 x 256-bit pipes"
        return 2, f"AMD family {family}: assumed 2 FMA pipes of the widest width"
    if "INTEL" in vendor.upper() or "Intel" in model_name:
        return 2, "Intel server core: assumed 2 FMA ports (ports 0 and 5 for AVX-512 on Xeon Gold/Platinum)"
    return 1, "unknown core: assumed 1 FMA unit"


def _versions() -> dict:
    versions = {}
    for name, module in (("numpy", "numpy"), ("numba", "numba"), ("llvmlite", "llvmlite"), ("opencv", "cv2"),
                         ("onnx", "onnx"), ("onnxruntime", "onnxruntime")):
        try:
            versions[name] = __import__(module).__version__
        except ImportError:
            versions[name] = None
    return versions


def machine_info() -> MachineInfo:
    info = _cpuinfo()
    flags = set(info.get("flags", "").split())
    model_name = info.get("model name") or platform.processor() or platform.machine()
    vendor = info.get("vendor_id", "")
    try:
        family = int(info.get("cpu family", ""))
    except ValueError:
        family = None
    try:
        clock_mhz = float(info.get("cpu MHz", ""))
    except ValueError:
        clock_mhz = None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    lanes = 16 if "avx512f" in flags else 8 if "avx2" in flags or "fma" in flags else 4
    vector = {16: "AVX-512", 8: "AVX2", 4: "SSE"}[lanes]
    units, basis = _fma_units(vendor, family, model_name, lanes)
    if clock_mhz:
        per_core = units * lanes * 2 * clock_mhz / 1000.0
        peak = per_core * cores
        derivation = (f"{cores} cores x {units} FMA units x {lanes} fp32 lanes ({vector}) x 2 FLOPs/FMA x "
                      f"{clock_mhz / 1000:.3f} GHz (cpu MHz in /proc/cpuinfo) = {peak:.0f} GFLOP/s "
                      f"({per_core:.0f} per core); FMA units: {basis}")
    else:
        per_core = peak = None
        derivation = "no clock in /proc/cpuinfo: peak unknown"
    try:
        load = tuple(round(v, 2) for v in os.getloadavg())
    except OSError:
        load = ()
    return MachineInfo(
        cpu_model=model_name, vendor=vendor, cpu_family=family, cores=cores, clock_mhz=clock_mhz,
        flags=[flag for flag in RELEVANT_FLAGS if flag in flags], fp32_lanes=lanes, fma_units=units,
        fma_units_basis=basis, peak_gflops=peak, peak_gflops_per_core=per_core, peak_derivation=derivation,
        load_average=load, python=sys.version.split()[0], versions=_versions(), python_env=_python_env())


def _python_env() -> str:
    """A virtual environment or the interpreter's own site-packages, and how many distributions it holds (what
    else is installed changes start-up: see bench/startup.py)."""
    from importlib import metadata

    count = sum(1 for _ in metadata.distributions())
    kind = f"virtual environment {sys.prefix}" if sys.prefix != sys.base_prefix else f"interpreter's own ({sys.prefix})"
    return f"{kind}, {count} distributions installed"


def current_load() -> tuple:
    try:
        return tuple(round(v, 2) for v in os.getloadavg())
    except OSError:
        return ()


__all__ = ["MachineInfo", "machine_info", "current_load", "RELEVANT_FLAGS"]
