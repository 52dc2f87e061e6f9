"""Let Numba's LLVM vectorise with the CPU's full 512-bit registers where it has AVX-512.

LLVM tunes Intel's AVX-512 cores (Skylake-X through Sapphire Rapids; the KVM guest this project runs on reports
"rocketlake") with `prefer-256-bit`: the loop vectoriser then picks 8 floats a vector, not 16, to dodge the clock
drop 512-bit instructions caused on the first AVX-512 parts. Our kernels are FMA-bound loops over feature maps, and
ONNX Runtime's MLAS picks its AVX-512 kernels at run time, so at 8 lanes we ran at most half of what the FMA units
can do while ORT ran at full width. Numba builds its target machine from the host's feature string, so we pass
that string with `-prefer-256-bit` appended, through NUMBA_CPU_FEATURES (read once, when numba is imported).
On a CPU without the tuning flag (AMD Zen 4/5, anything without AVX-512) appending it changes nothing.

Numba keys its on-disk cache on the CPU name and this feature string, so code cached under one setting is never
loaded under the other. Set NUMBA_CPU_FEATURES yourself to override, or STREAM_CNN_VECTOR_WIDTH=256 to keep
LLVM's default.
"""
import os
import sys

_FLAG = "-prefer-256-bit"


def wide_vectors() -> bool:
    """True if Numba vectorises 16 floats wide here (the preference is lifted): kernel choices that depend on the
    vector width (how long a row must be to fill whole vectors) read this."""
    return os.environ.get("NUMBA_CPU_FEATURES", "").split(",")[-1] == _FLAG


def prefer_full_width_vectors() -> bool:
    """Set NUMBA_CPU_FEATURES to the host's features without the 256-bit preference; True if it was set here."""
    if "NUMBA_CPU_FEATURES" in os.environ or os.environ.get("STREAM_CNN_VECTOR_WIDTH") == "256" \
            or "numba" in sys.modules:   # too late: numba has read its configuration
        return False
    try:
        import llvmlite.binding as llvm

        features = llvm.get_host_cpu_features().flatten()
    except Exception:   # no llvmlite or no host feature query: leave Numba's defaults
        return False
    if "+avx512f" not in features.split(","):
        return False
    os.environ["NUMBA_CPU_FEATURES"] = f"{features},{_FLAG}"
    return True
