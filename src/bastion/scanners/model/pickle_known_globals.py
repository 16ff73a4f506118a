"""The known pickle globals: modules and names that are dangerous to import, and the allow-list.

Data only; :mod:`pickle_policy` applies it. A module on the deny-list is dangerous together with
all its submodules. The allow-list holds the reconstructors that torch, numpy, collections,
scikit-learn and pandas pickles legitimately import.
"""

from __future__ import annotations


def _words(text: str) -> tuple[str, ...]:
    """Long name lists are written as space-separated words."""
    return tuple(text.split())


# -- deny-list: module (or package) -> why importing anything from it is dangerous ------------------
DANGEROUS_MODULES: dict[str, str] = {
    "os": "operating-system access (os.system, os.popen, os.exec*)",
    "posix": "operating-system access (posix.system is os.system)",
    "nt": "operating-system access (nt.system is os.system on Windows)",
    "subprocess": "runs external commands",
    "_posixsubprocess": "runs external commands",
    "pty": "spawns a shell (pty.spawn)",
    "commands": "runs shell commands (Python 2)",
    "popen2": "runs shell commands (Python 2)",
    "platform": "platform.popen runs shell commands",
    "shutil": "deletes, moves and copies files",
    "socket": "opens network connections",
    "asyncio": "runs subprocesses and opens connections",
    "http": "network access",
    "urllib": "network access",
    "urllib2": "network access",
    "requests": "network access",
    "httpx": "network access",
    "aiohttp": "network access",
    "ftplib": "network access",
    "smtplib": "network access",
    "telnetlib": "network access",
    "webbrowser": "opens URLs and runs a browser",
    "runpy": "runs Python modules and files",
    "importlib": "imports arbitrary modules",
    "imp": "imports arbitrary modules",
    "zipimport": "imports code from archives",
    "pkgutil": "imports arbitrary modules (pkgutil.resolve_name)",
    "code": "interactive interpreter: runs Python source",
    "codeop": "compiles Python source",
    "ctypes": "calls native code",
    "_ctypes": "calls native code",
    "cffi": "calls native code",
    "multiprocessing": "starts processes",
    "threading": "starts threads running arbitrary callables",
    "_thread": "starts threads running arbitrary callables",
    "signal": "installs signal handlers",
    "sys": "interpreter internals (sys.modules, sys.settrace)",
    "marshal": "loads code objects",
    "types": "builds functions and code objects",
    "pickle": "nested unpickling (pickle.loads) evades the outer scan",
    "_pickle": "nested unpickling (pickle.loads) evades the outer scan",
    "cPickle": "nested unpickling",
    "dill": "unpickles code objects",
    "cloudpickle": "unpickles code objects",
    "shelve": "nested unpickling",
    "timeit": "timeit runs Python source",
    "pdb": "debugger: runs Python source",
    "bdb": "debugger: runs Python source",
    "profile": "profile.run runs Python source",
    "cProfile": "cProfile.run runs Python source",
    "trace": "runs Python source",
    "doctest": "runs Python source",
    "pydoc": "pydoc.pipepager runs shell commands; pydoc.locate imports",
    "inspect": "reaches interpreter internals",
    "gc": "reaches every live object",
    "site": "modifies the import system",
    "venv": "creates environments and runs pip",
    "ensurepip": "runs pip",
    "pip": "installs packages",
    "setuptools": "runs build code",
    "distutils": "runs build code and commands",
    "tempfile": "creates files",
    "glob": "enumerates the file system",
    "fileinput": "reads files",
    "io": "opens files",
    "_io": "opens files",
    "codecs": "codecs.open opens files",
    "linecache": "reads files",
    "tarfile": "extracts archives",
    "zipfile": "extracts archives",
    "sqlite3": "opens databases",
    "logging": "logging.config.listen runs code",
    "operator": "attrgetter/methodcaller reach any attribute (gadget chains)",
    "_operator": "attrgetter/methodcaller reach any attribute (gadget chains)",
    "functools": "partial/reduce build call chains from allowed callables",
    "numpy.testing": "numpy.testing runs subprocesses",
    "numpy.f2py": "compiles and runs code",
    "numpy.distutils": "runs build commands",
    "numpy.lib.npyio": "numpy.load is a nested unpickler",
    "numpy.lib._npyio_impl": "numpy.load is a nested unpickler",
    "numpy.lib._datasource": "opens files and URLs",
    "torch.hub": "downloads and runs code",
    "torch.jit": "loads TorchScript programs",
    "torch._dynamo": "compiles and runs code",
    "torch._inductor": "compiles and runs code",
    "torch.utils.cpp_extension": "compiles and loads native code",
    "torch.serialization": "torch.load is a nested unpickler",
    "torch.package": "loads packaged code",
    "torch.ops": "calls registered native operators",
    "joblib": "joblib.load is a nested unpickler",
    "sklearn.utils._testing": "runs subprocesses",
    "pandas.io": "reads files and nested pickles (pandas.read_pickle)",
    "keras": "deserialises layers that can carry code",
    "tensorflow": "tf.io and tf.py_function reach files and run code",
}

DANGEROUS_BUILTINS: dict[str, str] = {
    "eval": "evaluates Python source",
    "exec": "executes Python source",
    "execfile": "executes a Python file",
    "compile": "compiles Python source",
    "__import__": "imports arbitrary modules",
    "getattr": "reaches any attribute (getattr gadget chains)",
    "setattr": "modifies any object",
    "delattr": "modifies any object",
    "open": "opens files",
    "file": "opens files",
    "input": "reads the terminal",
    "breakpoint": "starts a debugger",
    "globals": "exposes interpreter globals",
    "locals": "exposes interpreter locals",
    "vars": "exposes object internals",
    "help": "runs a pager",
    "exit": "exits the process",
    "quit": "exits the process",
    "apply": "calls any callable (Python 2)",
    "reload": "re-imports modules",
    "memoryview": "raw memory access",
    "type": "builds new classes",
    "super": "reaches parent implementations",
    "classmethod": "wraps callables",
    "staticmethod": "wraps callables",
    "property": "wraps callables",
    "map": "applies a callable lazily (gadget chains)",
    "filter": "applies a callable lazily (gadget chains)",
    "print": "writes to the terminal",
}

NESTED_LOADERS: dict[tuple[str, str], str] = {
    ("numpy", "load"): "numpy.load with allow_pickle is a nested unpickler",
    ("numpy", "loadtxt"): "reads files",
    ("numpy", "fromfile"): "reads files",
    ("numpy", "memmap"): "creates and maps files",
    ("numpy", "save"): "writes files",
    ("numpy", "DataSource"): "opens files and URLs",
    ("torch", "load"): "torch.load is a nested unpickler",
    ("torch", "save"): "writes files",
    ("torch.storage", "_load_from_bytes"): "torch.load of embedded bytes (nested unpickler)",
    ("pandas", "read_pickle"): "nested unpickler",
    ("pandas", "read_csv"): "reads files and URLs",
    ("pandas", "HDFStore"): "opens files",
    ("pandas", "ExcelWriter"): "writes files",
}

# -- allow-list ------------------------------------------------------------------------------------
SAFE_EXACT: frozenset[tuple[str, str]] = frozenset(
    [("collections", n) for n in ("OrderedDict", "defaultdict", "deque", "Counter")]
    + [
        ("builtins", n)
        for n in _words(
            "set frozenset dict list tuple bytearray bytes complex slice range object int "
            "float str bool NoneType Ellipsis NotImplemented"
        )
    ]
    + [
        ("copyreg", "_reconstructor"),
        ("_codecs", "encode"),
        ("datetime", "datetime"),
        ("datetime", "date"),
        ("datetime", "time"),
        ("datetime", "timedelta"),
        ("datetime", "timezone"),
        ("decimal", "Decimal"),
        ("fractions", "Fraction"),
        ("uuid", "UUID"),
        ("pathlib", "PosixPath"),
        ("pathlib", "PurePosixPath"),
        ("pathlib", "WindowsPath"),
        ("pathlib", "PureWindowsPath"),
        ("pathlib", "Path"),
        ("re", "_compile"),
        ("enum", "Enum"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy", "matrix"),
        ("numpy", "recarray"),
        ("numpy.random", "RandomState"),
        ("numpy.random", "Generator"),
        ("torch", "Size"),
        ("torch", "device"),
        ("torch", "dtype"),
        ("torch", "Tensor"),
        ("torch", "layout"),
        ("torch", "memory_format"),
        ("torch", "finfo"),
        ("torch", "iinfo"),
        ("torch._tensor", "_rebuild_from_type_v2"),
        ("torch._tensor", "_rebuild_from_type"),
        ("torch.nn.parameter", "Parameter"),
        ("torch.nn.parameter", "UninitializedParameter"),
        ("torch.nn.parameter", "Buffer"),
        ("torch.storage", "UntypedStorage"),
        ("torch.storage", "TypedStorage"),
        ("torch.serialization", "_get_layout"),
        ("torch.distributed._shard.sharded_tensor", "ShardedTensor"),
        ("torch.ao.quantization.qconfig", "QConfig"),
        ("argparse", "Namespace"),
        ("joblib.numpy_pickle", "NumpyArrayWrapper"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
    ]
)

# Cheap scalar/ufunc names numpy pickles by plain name (``numpy float64``, ``numpy log1p``).
NUMPY_TOP: frozenset[str] = frozenset(
    _words(
        "bool_ bool int8 int16 int32 int64 uint8 uint16 uint32 uint64 intc uintc intp uintp "
        "longlong ulonglong float16 float32 float64 float128 longdouble half single double "
        "complex64 complex128 complex256 clongdouble cdouble csingle str_ bytes_ unicode_ "
        "string_ object_ void datetime64 timedelta64 generic number integer floating inexact "
        "signedinteger unsignedinteger absolute add arccos arccosh arcsin arcsinh arctan "
        "arctan2 arctanh cbrt ceil conjugate cos cosh deg2rad degrees divide exp exp2 expm1 "
        "fabs floor floor_divide fmax fmin fmod hypot isfinite isinf isnan log log10 log1p "
        "log2 logaddexp logaddexp2 maximum minimum multiply negative positive power rad2deg "
        "radians reciprocal remainder rint sign sin sinh sqrt square subtract tan tanh trunc "
        "clip mean median sum amax amin max min std var"
    )
)
TORCH_DTYPES: frozenset[str] = frozenset(
    _words(
        "float float16 float32 float64 bfloat16 half double cfloat cdouble complex32 "
        "complex64 complex128 uint8 uint16 uint32 uint64 int8 int16 int32 int64 short int "
        "long bool qint8 quint8 qint32 quint4x2 float8_e4m3fn float8_e5m2 float8_e4m3fnuz "
        "float8_e5m2fnuz strided sparse_coo sparse_csr sparse_csc sparse_bsr sparse_bsc "
        "_mkldnn contiguous_format channels_last channels_last_3d preserve_format"
    )
)

# Namespaces whose classes (Capitalised names) and reconstructor functions are allowed.
SAFE_NAMESPACES: tuple[str, ...] = (
    "numpy.core.",
    "numpy._core.",
    "numpy.dtypes",
    "numpy.random.",
    "numpy.ma.",
    "numpy.lib._arraysetops_impl",
    "torch._utils",
    "torch.nn.modules.",
    "torch.nn.utils.",
    "torch.optim.",
    "torch.ao.nn.",
    "torch.nn.intrinsic.",
    "torch.distributions.",
    "torch.utils.data.",
    "torch.fx.immutable_collections",
    "torch.torch_version",
    "sklearn.",
    "scipy.sparse.",
    "scipy.stats._distn_infrastructure",
    "pandas.core.",
    "pandas._libs.",
    "pandas.arrays",
    "pandas",
    "xgboost.",
    "lightgbm.",
    "catboost.",
    "tokenizers",
    "transformers.",
)
UNSAFE_CLASS_NAMES: frozenset[str] = frozenset(
    {"HDFStore", "ExcelWriter", "ExcelFile", "DataSource", "Popen", "ZipFile", "TarFile", "memmap"}
)
