"""The inference engines compared, each wrapped to the same two calls: ``prepare()`` before a timed slice and
``run(x)`` returning the output as a flat float32 array.

Every engine gets the same weights: stream-cnn's Model is exported once with stream_cnn.model.onnx_export, and
ONNX Runtime and OpenCV dnn both load those bytes. ONNX Runtime is an optional (test) dependency: it is imported
lazily and, when missing, its engines are reported as missing rather than failing the benchmark.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

ORT_THREADS = (1, 2)
OPENCV_THREADS = (1, 2)


@dataclass
class Engine:
    name: str                 # e.g. "onnxruntime 2t"
    family: str               # "stream-cnn" | "onnxruntime" | "opencv-dnn" | "numpy-reference"
    threads: int
    run: object               # callable(x) -> flat output array
    prepare: object = None    # callable() run before each timed slice (per-engine global settings)
    slow: bool = False        # the NumPy reference: timed with fewer calls
    notes: list = field(default_factory=list)


@dataclass
class Unavailable:
    name: str
    family: str
    threads: int
    reason: str


def stream_cnn_engine(model) -> Engine:
    def run(x):
        return model.forward(x)
    return Engine("stream-cnn", "stream-cnn", 1, run, notes=["Model.forward(x): copy in, fused Numba kernels"])


def reference_engine(model) -> Engine:
    def run(x):
        return np.asarray(model.reference_forward(x), dtype=np.float32).ravel()
    return Engine("numpy-reference", "numpy-reference", 1, run, slow=True,
                  notes=["stream_cnn.model.reference twin on the unfused graph (NumPy's own threads)"])


def onnxruntime_engines(onnx_bytes: bytes, input_shape) -> list:
    try:
        import onnxruntime
    except ImportError:
        reason = "onnxruntime is not installed (pip install onnxruntime, or pip install -e '.[test]')"
        return [Unavailable(f"onnxruntime {n}t", "onnxruntime", n, reason) for n in ORT_THREADS]
    engines = []
    for threads in ORT_THREADS:
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            session = onnxruntime.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])
        except Exception as err:   # an engine that cannot load the model is reported, not fatal
            engines.append(Unavailable(f"onnxruntime {threads}t", "onnxruntime", threads,
                                       f"cannot load the model: {str(err).splitlines()[0]}"))
            continue
        input_name = session.get_inputs()[0].name

        def run(x, session=session, input_name=input_name):
            return session.run(None, {input_name: x.reshape((1,) + x.shape)})[0].ravel()
        engines.append(Engine(f"onnxruntime {threads}t", "onnxruntime", threads, run,
                              notes=[f"onnxruntime {onnxruntime.__version__}, CPU provider, all graph "
                                     f"optimisations, intra-op threads {threads}, default spinning"]))
    return engines


def opencv_engines(onnx_bytes: bytes) -> list:
    import cv2

    default_threads = cv2.getNumThreads()
    engines = []
    for threads in OPENCV_THREADS:
        name = f"opencv-dnn {threads}t"
        try:
            # Default backend and target: OpenCV 5's graph engine warns on (and ignores) explicit CPU targets.
            net = cv2.dnn.readNetFromONNX(np.frombuffer(onnx_bytes, dtype=np.uint8))
        except cv2.error as err:
            engines.append(Unavailable(name, "opencv-dnn", threads,
                                       f"cv2.dnn cannot read the model: {str(err).strip().splitlines()[-1]}"))
            continue

        def prepare(threads=threads):
            cv2.setNumThreads(threads)

        def run(x, net=net):
            net.setInput(x.reshape((1,) + x.shape))
            return net.forward().ravel()
        engines.append(Engine(name, "opencv-dnn", threads, run, prepare=prepare,
                              notes=[f"OpenCV {cv2.__version__} dnn, default backend (CPU), "
                                     f"cv2.setNumThreads({threads}) (process default {default_threads})"]))
    return engines


def restore_opencv_threads(threads: int):
    import cv2
    cv2.setNumThreads(threads)
