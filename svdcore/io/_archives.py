"""Guards for the zip archives svdscope reads from untrusted files.

- Zip bombs: every archive is sized from its central directory **before** anything is
  unpacked: the declared total must stay under a cap and no large member may be packed
  more densely than `MAX_COMPRESSION_RATIO` (zeros deflate about 1000:1; images and
  arrays rarely beyond 10:1). Readers still count the bytes they unpack, so an archive
  that lies about its sizes is stopped too.
- Names: entries with ``..``, absolute paths, drive letters, backslashes or control
  characters, more than `MAX_ZIP_DEPTH` folders deep, or listed twice are refused.
- PyTorch archives (``torch.save``, ``torch.export.save``) store their members
  uncompressed; a compressed member is refused (it could unpack to far more than the file).
- torch.export archives (``.pt2``): ``torch.export.load`` unpickles with
  ``weights_only=False`` (pickled weights, constants, opaque objects, a fallback for the
  sample inputs), loads AOTInductor shared libraries it finds inside, and generates Python
  source from names stored in the graph. `check_export_archive` refuses every archive that
  could reach one of those paths *before* torch sees it; `check_export_graph` then checks
  every operator of the loaded graph (ATen/prims only, no file I/O, a few control-flow
  operators) before anything runs it.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import IO, Any

from ..exceptions import LoadError

__all__ = [
    "MAX_COMPRESSION_RATIO",
    "MAX_ZIP_DEPTH",
    "MAX_ZIP_ENTRIES",
    "RATIO_MIN_BYTES",
    "check_export_archive",
    "check_export_graph",
    "check_torch_zip",
    "check_zip_sizes",
    "member_path",
    "open_zip",
    "training_mode_ops",
]

MAX_ZIP_ENTRIES = 200_000
"""Most entries (files and folders) one archive may list."""
MAX_COMPRESSION_RATIO = 100
"""Largest unpacked / packed size of one member (above `RATIO_MIN_BYTES` unpacked)."""
RATIO_MIN_BYTES = 1 << 20
"""Members that unpack to less than this are never refused for their ratio."""
MAX_ZIP_DEPTH = 16
"""Most folder levels of an entry name (``a/b/c.png`` has depth 3)."""

_BAD_CHARS = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError)


def open_zip(source: Path | IO[bytes], archive: str) -> zipfile.ZipFile:
    """``zipfile.ZipFile(source)`` with its errors as ``LoadError`` naming ``archive``,
    refusing archives of more than `MAX_ZIP_ENTRIES` entries."""
    try:
        zf = zipfile.ZipFile(source)
    except _ZIP_ERRORS as exc:
        raise LoadError(f"{archive} is not a readable zip archive ({exc}).") from exc
    except Exception as exc:  # zipfile raises struct.error and others on mangled headers
        raise LoadError(
            f"{archive} is not a readable zip archive ({type(exc).__name__}: {exc})."
        ) from exc
    if len(zf.infolist()) > MAX_ZIP_ENTRIES:
        zf.close()
        raise LoadError(
            f"{archive} lists more than {MAX_ZIP_ENTRIES:,} entries; svdscope refuses it."
        )
    return zf


def member_path(name: str, archive: str) -> PurePosixPath:
    """The entry's path, or ``LoadError`` for a name that could escape a folder, hide its
    meaning (control characters) or nest deeper than `MAX_ZIP_DEPTH`."""
    if (
        "\\" in name
        or name.startswith("/")
        or re.match(r"^[A-Za-z]:", name)
        or _BAD_CHARS.search(name)
    ):
        raise LoadError(
            f"{archive} contains an unsafe entry name {name!r} (absolute path, drive, "
            "backslash or control character); re-create the archive from a plain folder."
        )
    path = PurePosixPath(name)
    if any(part == ".." for part in path.parts):
        raise LoadError(
            f"{archive} contains an entry that points outside the archive ({name!r}); "
            "refusing it. Re-create the archive from a plain folder."
        )
    if len(path.parts) > MAX_ZIP_DEPTH:
        raise LoadError(
            f"{archive} nests folders {len(path.parts) - 1} levels deep (at {name[:120]!r}); "
            f"svdscope reads at most {MAX_ZIP_DEPTH - 1} levels."
        )
    return path


def check_zip_sizes(
    members: Iterable[zipfile.ZipInfo], archive: str, *, max_bytes: int, what: str = "data"
) -> int:
    """Refuse ``members`` before unpacking when their declared sizes add up to more than
    ``max_bytes`` or one of them is packed more densely than `MAX_COMPRESSION_RATIO`.
    Returns the declared total."""
    total = 0
    for info in members:
        total += info.file_size
        if total > max_bytes:
            raise LoadError(
                f"{archive} unpacks to more than {max_bytes:,} bytes of {what} (its entries "
                f"declare {total:,} bytes by {info.filename!r}); upload less {what}."
            )
        packed = max(info.compress_size, 1)
        if info.file_size >= RATIO_MIN_BYTES and info.file_size > MAX_COMPRESSION_RATIO * packed:
            raise LoadError(
                f"{archive}: {info.filename!r} is packed {info.file_size / packed:,.0f}:1 "
                f"({info.file_size:,} bytes in {info.compress_size:,}), far denser than real "
                f"{what} (the limit is {MAX_COMPRESSION_RATIO}:1); refusing this zip bomb "
                "before unpacking it."
            )
    return total


def _torch_zip_members(zf: zipfile.ZipFile, archive: str, size: int) -> list[zipfile.ZipInfo]:
    infos = zf.infolist()
    seen: set[str] = set()
    for info in infos:
        member_path(info.filename, archive)
        if info.filename in seen:
            raise LoadError(f"{archive} lists {info.filename!r} twice; refusing it.")
        seen.add(info.filename)
        if info.compress_type != zipfile.ZIP_STORED:
            raise LoadError(
                f"{archive} holds a compressed entry ({info.filename!r}); PyTorch writes its "
                "archives uncompressed, and a compressed entry could unpack to far more "
                "than the file (a zip bomb). Save it again with torch.save."
            )
        if info.file_size > size:
            raise LoadError(
                f"{archive}: {info.filename!r} claims {info.file_size:,} bytes, more than "
                f"the whole file ({size:,} bytes); the file is corrupt."
            )
    return infos


def check_torch_zip(source: Path | bytes, archive: str) -> None:
    """For a PyTorch zip archive (``torch.save`` / ``torch.export.save``): safe, unique,
    uncompressed entries no larger than the file. Other files (legacy pickles) pass."""
    data = source if isinstance(source, bytes) else None
    try:
        if data is None:
            with Path(source).open("rb") as f:
                head = f.read(4)
            size = Path(source).stat().st_size
        else:
            head, size = data[:4], len(data)
    except OSError as exc:
        raise LoadError(f"{archive} cannot be read ({exc.strerror or exc}).") from exc
    if head != b"PK\x03\x04":
        return
    with open_zip(io.BytesIO(data) if data is not None else Path(source), archive) as zf:
        _torch_zip_members(zf, archive, size)


# --------------------------------------------------------------------------- torch.export
# Members of a torch.export archive (below its root folder) that svdscope lets torch read.
_EXPORT_MEMBERS = [
    r"archive_format",
    r"archive_version",
    r"byteorder",
    r"\.data/version",
    r"\.data/serialization_id",
    r"models/\w+\.json",
    r"data/weights/\w+_weights_config\.json",
    r"data/weights/weight_\d+",
    r"data/constants/\w+_constants_config\.json",
    r"data/constants/tensor_\d+",
    r"data/sample_inputs/\w+\.pt",
    r"extra/[\w.-]+",
]
_EXPORT_MEMBER_RE = re.compile("|".join(f"(?:{m})" for m in _EXPORT_MEMBERS))
# Operators an exported graph may call: ATen and prims (minus file I/O), a few
# control-flow operators, and the builtins torch's own verifier allows.
_OP_NAMESPACES = ("aten", "prims")
_DENIED_OPS = {"save", "from_file", "_print", "warn"}
_HIGHER_ORDER = {
    "cond",
    "while_loop",
    "map_impl",
    "scan",
    "wrap_with_set_grad_enabled",
    "wrap_with_autocast",
    "invoke_subgraph",
}
_OPERATOR_FNS = {
    "getitem", "add", "mul", "sub", "truediv", "floordiv", "mod", "pow", "neg", "pos",
    "abs", "eq", "ne", "ge", "le", "gt", "lt", "and_", "or_", "not_", "lshift", "rshift",
}  # fmt: skip
_MATH_FNS = {"ceil", "floor", "trunc", "sqrt"}
_TORCH_FNS = {
    "sym_int", "sym_float", "sym_ite", "sym_max", "sym_min", "sym_not", "sym_sqrt",
    "sym_sum", "_C._set_grad_enabled", "autograd.grad_mode.set_grad_enabled",
}  # fmt: skip
_TARGET_RE = re.compile(
    r"^(?:torch\.ops\.(?P<ns>\w+)\.(?P<op>\w+)(?:\.\w+)?"
    r"|_operator\.(?P<operator>\w+)|math\.(?P<math>\w+)|torch\.(?P<torch>[\w.]+))$"
)
_INSTEAD = (
    "export the model again with torch.export.save (plain tensors, ATen operators), or "
    "save its state_dict as .safetensors"
)


def _read(zf: zipfile.ZipFile, info: zipfile.ZipInfo, archive: str) -> bytes:
    try:
        return zf.read(info)
    except Exception as exc:  # BadZipFile (CRC, headers), zlib.error, bad names ...
        raise LoadError(
            f"{archive}: {info.filename!r} cannot be read ({type(exc).__name__}: {exc}); "
            "the archive is corrupt."
        ) from exc


def _refuse(archive: str, why: str) -> LoadError:
    return LoadError(
        f"{archive} {why}; svdscope runs only plain ATen operators from a file and never "
        f"unpickles: {_INSTEAD}."
    )


def _target_allowed(target: str) -> bool:
    found = _TARGET_RE.match(target)
    if found is None:
        return False
    if found["ns"] is not None:
        if found["ns"] == "higher_order":
            return found["op"] in _HIGHER_ORDER
        return found["ns"] in _OP_NAMESPACES and found["op"] not in _DENIED_OPS
    if found["operator"] is not None:
        return found["operator"] in _OPERATOR_FNS
    if found["math"] is not None:
        return found["math"] in _MATH_FNS
    return found["torch"] in _TORCH_FNS


def _strings(obj: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], str, bool]]:
    """(path of keys, string, whether it is a key) for every key and string in ``obj``."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield path, str(key), True
            yield from _strings(value, (*path, str(key)))
    elif isinstance(obj, list):
        for value in obj:
            yield from _strings(value, path)
    elif isinstance(obj, str):
        yield path, obj, False


def _check_program_json(text: bytes, member: str, archive: str) -> None:
    try:
        program = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise LoadError(f"{archive}: {member} is not valid JSON ({exc}).") from exc
    for path, value, is_key in _strings(program):
        if "metadata" in path or path[-1:] in (("in_spec",), ("out_spec",)):
            continue  # debugging text (stack traces) and pytree specs: never become code
        if _BAD_CHARS.search(value):
            raise _refuse(
                archive, f"has a name with a line break or control character ({value[:60]!r})"
            )
        if is_key:
            continue
        key = path[-1] if path else ""
        if key in ("target", "as_operator") and not _target_allowed(value):
            raise _refuse(archive, f"calls {value[:80]!r}, which it may not")
        if key == "name" and "inputs" in path and value and not value.isidentifier():
            raise _refuse(archive, f"names an argument {value[:60]!r}, which is not a name")


def _check_payload_config(text: bytes, member: str, archive: str, prefix: str) -> None:
    try:
        config = json.loads(text)["config"]
        entries = list(config.items())
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise LoadError(f"{archive}: {member} is not a torch.export payload list.") from exc
    for name, entry in entries:
        if not isinstance(entry, dict):
            raise LoadError(f"{archive}: {member} has a malformed entry {name!r}.")
        if entry.get("use_pickle"):
            raise _refuse(archive, f"stores {name!r} as a pickle, which could run code")
        path_name = str(entry.get("path_name", ""))
        if not re.fullmatch(rf"{prefix}\d+", path_name):
            raise _refuse(archive, f"stores {name!r} as {path_name[:60]!r}, a Python object")


def check_export_archive(path: Path, archive: str | None = None) -> None:
    """Refuse a ``.pt2`` that could make ``torch.export.load`` run code (see module doc):
    only the members torch.export.save writes for plain tensors, no pickles, no compiled
    code, sample inputs readable with ``weights_only=True``, names that are names and
    ATen/prims operators. ``LoadError`` names what was found."""
    import torch

    archive = archive or path.name
    size = path.stat().st_size
    with path.open("rb") as f:
        f.seek(max(0, size - 22))
        tail = f.read(22)
    if len(tail) < 22 or tail[:4] != b"PK\x05\x06" or tail[20:22] != b"\0\0":
        raise LoadError(
            f"{archive} is not a readable torch.export archive (its zip directory is not at "
            "the end of the file, as torch.export.save writes it); it may be truncated, "
            "altered or of another format."
        )
    with open_zip(path, archive) as zf:
        infos = _torch_zip_members(zf, archive, size)
        roots = {PurePosixPath(i.filename).parts[0] for i in infos if i.filename}
        if len(roots) != 1:
            raise LoadError(
                f"{archive} is not a readable torch.export archive (no single root folder)."
            )
        models = 0
        for info in infos:
            rel = info.filename.split("/", 1)[1] if "/" in info.filename else ""
            if info.is_dir() or not rel:
                continue
            if not _EXPORT_MEMBER_RE.fullmatch(rel):
                raise _refuse(
                    archive,
                    f"contains {rel[:80]!r}, which svdscope does not open (compiled code, "
                    "pickled objects or an unknown part)",
                )
            if rel.startswith("models/"):
                models += 1
                _check_program_json(_read(zf, info, archive), rel, archive)
            elif rel.endswith("_weights_config.json"):
                _check_payload_config(_read(zf, info, archive), rel, archive, "weight_")
            elif rel.endswith("_constants_config.json"):
                _check_payload_config(_read(zf, info, archive), rel, archive, "tensor_")
            elif rel.startswith("data/sample_inputs/"):
                data = _read(zf, info, archive)
                check_torch_zip(data, f"{archive}: {rel}")
                try:
                    torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
                except Exception as exc:
                    found = re.search(r"GLOBAL ([\w.]+)", str(exc))
                    what = found.group(1) if found else type(exc).__name__
                    raise _refuse(
                        archive, f"has sample inputs that are not plain tensors ({what})"
                    ) from exc
        if models == 0:
            raise LoadError(
                f"{archive} holds no exported program (models/*.json); it is not a "
                "torch.export archive or comes from a torch older than 2.6."
            )


def _op_allowed(op: Any) -> bool:
    import math
    import operator

    import torch

    if isinstance(op, torch._ops.OpOverload):
        namespace, _, name = op._schema.name.partition("::")
        return namespace in _OP_NAMESPACES and name not in _DENIED_OPS
    if isinstance(op, torch._ops.OpOverloadPacket):
        namespace, _, name = op._qualified_op_name.partition("::")
        return namespace in _OP_NAMESPACES and name not in _DENIED_OPS
    if isinstance(op, torch._ops.HigherOrderOperator):
        return op.name() in _HIGHER_ORDER
    allowed = [getattr(operator, n) for n in _OPERATOR_FNS] + [getattr(math, n) for n in _MATH_FNS]
    allowed += [
        torch.sym_int, torch.sym_float, torch.sym_ite, torch.sym_max, torch.sym_min,
        torch.sym_not, torch.sym_sqrt, torch.sym_sum, torch._C._set_grad_enabled,
        torch.autograd.grad_mode.set_grad_enabled,
    ]  # fmt: skip
    return any(op is fn for fn in allowed)


def _op_name(op: Any) -> str:
    import torch

    if isinstance(op, torch._ops.HigherOrderOperator):
        return f"higher_order.{op.name()}"
    if isinstance(op, torch._ops.OpOverload | torch._ops.OpOverloadPacket):
        return str(op)
    return f"{getattr(op, '__module__', '?')}.{getattr(op, '__qualname__', repr(op))}"


def _callables(value: Any) -> Iterator[Any]:
    import torch

    if isinstance(value, list | tuple):
        for item in value:
            yield from _callables(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _callables(item)
    elif callable(value) and not isinstance(value, torch.fx.Node | torch.nn.Module | type):
        yield value


def check_export_graph(ep: Any, archive: str) -> None:
    """Refuse a loaded ``ExportedProgram`` whose graphs call anything but ATen/prims
    operators (no file I/O), the control-flow operators in `_HIGHER_ORDER` and plain
    arithmetic, or whose attribute / keyword names are not Python names."""
    import torch

    for module in ep.graph_module.modules():
        if not isinstance(module, torch.fx.GraphModule):
            continue
        for node in module.graph.nodes:
            if node.op in ("placeholder", "output"):
                continue
            if node.op in ("get_attr", "call_module"):
                if not all(part.isidentifier() for part in str(node.target).split(".")):
                    raise _refuse(archive, f"refers to {str(node.target)[:60]!r}")
                continue
            if node.op != "call_function":
                raise _refuse(archive, f"has a {node.op} step, which exported graphs never have")
            for op in (node.target, *_callables(node.args), *_callables(node.kwargs)):
                if not _op_allowed(op):
                    raise _refuse(archive, f"calls {_op_name(op)}, which it may not")
            if not all(isinstance(k, str) and k.isidentifier() for k in node.kwargs):
                raise _refuse(archive, "passes an argument under a name that is not a name")


# operator name -> (position of its `training` / `train` argument, what it does in training)
_TRAINING_ARGS = {
    "aten.batch_norm.default": (5, "batch norm normalises by the batch's own statistics"),
    "aten._native_batch_norm_legit.default": (5, "batch norm uses the batch's statistics"),
    "aten._native_batch_norm_legit_functional.default": (
        5,
        "batch norm uses the batch's statistics",
    ),
    "aten.instance_norm.default": (5, "instance norm updates running statistics"),
    "aten.dropout.default": (2, "dropout zeroes random units"),
    "aten.native_dropout.default": (2, "dropout zeroes random units"),
    "aten.feature_dropout.default": (2, "dropout zeroes random channels"),
    "aten.alpha_dropout.default": (2, "alpha dropout perturbs random units"),
}


def training_mode_ops(ep: Any) -> list[str]:
    """What in an ``ExportedProgram`` was traced in training mode (batch norm with batch
    statistics, active dropout), one phrase per kind, empty for an eval-mode export: its
    output for one sample then depends on the other samples of the batch, or on chance."""
    import torch

    found: dict[str, None] = {}
    for module in ep.graph_module.modules():
        if not isinstance(module, torch.fx.GraphModule):
            continue
        for node in module.graph.nodes:
            if node.op != "call_function":
                continue
            spec = _TRAINING_ARGS.get(str(node.target))
            if spec is None:
                continue
            index, what = spec
            name = "training" if "batch_norm" in str(node.target) else "train"
            flag = node.args[index] if len(node.args) > index else node.kwargs.get(name, False)
            if "_functional" in str(node.target) or flag is True:
                found[what] = None
    return list(found)
