"""Graph formats parsed from protobuf without their frameworks: ONNX and TensorFlow SavedModel."""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field

from bastion.domain.findings import Finding, Severity
from bastion.scanners.controls import MODEL_ARCHITECTURE, MODEL_CODE_EXECUTION
from bastion.scanners.model.interface import Deadline, MalformedArtifact, make_finding
from bastion.scanners.model.protowire import LEN, VARINT, fields, text

_ONNX_STANDARD_DOMAINS = frozenset(
    {"", "ai.onnx", "ai.onnx.ml", "ai.onnx.training", "ai.onnx.preview.training"}
)
_ONNX_RUNTIME_DOMAINS = frozenset(
    {"com.microsoft", "com.microsoft.nchwc", "com.ms.internal.nhwc", "org.pytorch.aten"}
)
_MAX_NESTING = 64


@dataclass(slots=True)
class GraphScan:
    findings: list[Finding] = field(default_factory=list)
    ops: dict[str, int] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)


class _Onnx:
    def __init__(self, buf: bytes, location: str, deadline: Deadline) -> None:
        self.buf, self.location, self.deadline = buf, location, deadline
        self.out = GraphScan()
        self.custom_domains: set[str] = set()

    def model(self) -> GraphScan:
        saw_graph = False
        for num, wt, a, b in fields(self.buf):
            if num == 1 and wt == VARINT:
                self.out.metadata["ir_version"] = str(a)
            elif num == 2 and wt == LEN:
                self.out.metadata["producer"] = text(self.buf, a, b)[:100]
            elif num == 7 and wt == LEN:
                saw_graph = True
                self.graph(a, b, 0)
            elif num == 8 and wt == LEN:
                for n2, w2, c, d in fields(self.buf, a, b):
                    if n2 == 1 and w2 == LEN:
                        self.domain(text(self.buf, c, d), "opset import")
            elif num == 25 and wt == LEN:  # FunctionProto
                for n2, w2, c, d in fields(self.buf, a, b):
                    if n2 == 7 and w2 == LEN:
                        self.node(c, d, 1)
        if not saw_graph:
            raise MalformedArtifact("ONNX model has no graph")
        return self.out

    def domain(self, dom: str, where: str) -> None:
        if dom in _ONNX_STANDARD_DOMAINS or dom in self.custom_domains:
            return
        self.custom_domains.add(dom)
        runtime = dom in _ONNX_RUNTIME_DOMAINS
        self.out.findings.append(
            make_finding(
                "onnx.custom_domain",
                Severity.LOW if runtime else Severity.MEDIUM,
                f"{where} uses operator domain {dom!r}"
                + (
                    " (runtime contrib operators)"
                    if runtime
                    else ": custom operators load native code at run time"
                ),
                location=self.location,
                hint="Confirm the operator library is trusted; custom domains need a registered native library.",
                controls=MODEL_ARCHITECTURE,
                metadata={"domain": dom},
            )
        )

    def graph(self, a: int, b: int, depth: int) -> None:
        if depth > _MAX_NESTING:
            raise MalformedArtifact("ONNX subgraphs nested too deeply")
        self.deadline.check()
        for num, wt, c, d in fields(self.buf, a, b):
            if wt != LEN:
                continue
            if num == 1:
                self.node(c, d, depth)
            elif num == 5:
                self.tensor(c, d)
            elif num == 15:
                for n2, w2, e, f in fields(self.buf, c, d):
                    if n2 in (1, 2) and w2 == LEN:
                        self.tensor(e, f)

    def node(self, a: int, b: int, depth: int) -> None:
        op, dom = "", ""
        for num, wt, c, d in fields(self.buf, a, b):
            if wt != LEN:
                continue
            if num == 4:
                op = text(self.buf, c, d)
            elif num == 7:
                dom = text(self.buf, c, d)
            elif num == 5:  # AttributeProto: subgraphs (If/Loop/Scan bodies) and tensors
                for n2, w2, e, f in fields(self.buf, c, d):
                    if w2 != LEN:
                        continue
                    if n2 in (6, 11):
                        self.graph(e, f, depth + 1)
                    elif n2 in (5, 10):
                        self.tensor(e, f)
        key = f"{dom}::{op}" if dom else op
        self.out.ops[key] = self.out.ops.get(key, 0) + 1
        self.domain(dom, f"operator {op!r}")

    def tensor(self, a: int, b: int) -> None:
        name = ""
        for num, wt, c, d in fields(self.buf, a, b):
            if num == 8 and wt == LEN:
                name = text(self.buf, c, d)
            elif num == 13 and wt == LEN:
                key = value = ""
                for n2, w2, e, f in fields(self.buf, c, d):
                    if n2 == 1 and w2 == LEN:
                        key = text(self.buf, e, f)
                    elif n2 == 2 and w2 == LEN:
                        value = text(self.buf, e, f)
                if key == "location" and _escapes(value):
                    self.out.findings.append(
                        make_finding(
                            "onnx.external_data_traversal",
                            Severity.HIGH,
                            f"tensor {name[:80]!r} reads external data from {value[:200]!r}, outside the model directory",
                            location=self.location,
                            hint="External data must be a relative path inside the model directory "
                            "(path traversal reads arbitrary files when the model is loaded).",
                            controls=MODEL_CODE_EXECUTION,
                            metadata={"path": value[:200]},
                        )
                    )


def _escapes(path: str) -> bool:
    if not path or "\x00" in path:
        return True
    p = path.replace("\\", "/")
    if p.startswith("/") or re.match(r"[A-Za-z]:", p) or "://" in p:
        return True
    norm = posixpath.normpath(p)
    return norm == ".." or norm.startswith("../")


def scan_onnx(data: bytes, location: str, deadline: Deadline) -> GraphScan:
    """Walk an ONNX ModelProto: custom operator domains and external-data paths."""
    return _Onnx(data, location, deadline).model()


# -- TensorFlow SavedModel ----------------------------------------------------------------------
_TF_DANGEROUS_OPS = {
    "ReadFile": "reads any file on the host",
    "WriteFile": "writes any file on the host",
    "MatchingFiles": "lists the file system",
    "PyFunc": "calls a Python function",
    "PyFuncStateless": "calls a Python function",
    "EagerPyFunc": "calls a Python function",
    "ImmutableConst": "memory-maps a host file",
    "DeleteFile": "deletes files",
    "ShellExecute": "runs a command",
}


def scan_saved_model(data: bytes, location: str, deadline: Deadline) -> GraphScan:
    """Walk a SavedModel's graphs and function library for file-system and Python ops."""
    out = GraphScan()
    if b'"class_name": "Lambda"' in data or b'"class_name":"Lambda"' in data:
        out.findings.append(
            make_finding(
                "keras.lambda_layer",
                Severity.CRITICAL,
                "Keras metadata declares a Lambda layer: its serialised Python code runs when the model loads",
                location=location,
                hint="Replace Lambda layers with registered layers; load with safe_mode=True.",
                controls=MODEL_CODE_EXECUTION,
            )
        )
    for num, wt, a, b in fields(data):
        if num == 2 and wt == LEN:  # MetaGraphDef
            for n2, w2, c, d in fields(data, a, b):
                if n2 == 2 and w2 == LEN:
                    _tf_graph(data, c, d, out, location, deadline)
    return out


def _tf_graph(buf: bytes, a: int, b: int, out: GraphScan, location: str, deadline: Deadline) -> None:
    deadline.check()
    for num, wt, c, d in fields(buf, a, b):
        if wt != LEN:
            continue
        if num == 1:
            _tf_node(buf, c, d, out, location)
        elif num == 2:  # FunctionDefLibrary
            for n2, w2, e, f in fields(buf, c, d):
                if n2 == 1 and w2 == LEN:
                    for n3, w3, g, h in fields(buf, e, f):
                        if n3 == 3 and w3 == LEN:
                            _tf_node(buf, g, h, out, location)


def _tf_node(buf: bytes, a: int, b: int, out: GraphScan, location: str) -> None:
    name = op = ""
    for num, wt, c, d in fields(buf, a, b):
        if num == 1 and wt == LEN:
            name = text(buf, c, d)
        elif num == 2 and wt == LEN:
            op = text(buf, c, d)
    out.ops[op] = out.ops.get(op, 0) + 1
    why = _TF_DANGEROUS_OPS.get(op)
    if why:
        out.findings.append(
            make_finding(
                "tensorflow.dangerous_op",
                Severity.CRITICAL if "Py" in op else Severity.HIGH,
                f"graph node {name[:80]!r} uses op {op}: {why}",
                location=location,
                hint="A model graph has no reason to touch the file system or call Python; do not serve it.",
                controls=MODEL_CODE_EXECUTION,
                metadata={"op": op},
            )
        )
