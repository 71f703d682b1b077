"""Build a :class:`~stkd.deploy.predictor.Predictor` from a run directory or an exported folder.

``stkd.load`` is :func:`load`. From a run directory the model is rebuilt from its safetensors weights
and model card (by default the student with the best validation score: :func:`choose_model`), with the serving spec of
:func:`stkd.deploy.spec.spec_from_run`; from a folder written by ``stkd export`` the exported model runs
as it is (:func:`load_export`).

Loading treats the files as untrusted. Weights are safetensors (no pickle); an ONNX model is data, but
its external-data references must stay inside its folder; a TorchScript ``model.pt`` is CODE (its
forward may call anything TorchScript can, ``torch.from_file`` writing files included), so it loads
only with ``trust_code=True``. Every file an export lists in ``deploy.json`` under ``files`` must match
the SHA-256 recorded at export. A damaged file is one :class:`~stkd.errors.STKDError` line that names
it and says what to do, never a traceback.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import numpy as np
from safetensors import SafetensorError

from stkd import names
from stkd.checkpoint import load_model
from stkd.deploy.backends import EXPORT_EXTRA, OnnxBackend, TorchBackend, TorchScriptBackend
from stkd.deploy.predictor import Predictor
from stkd.deploy.spec import SEASONAL_FILE, SPEC_FILE, ServingSpec, serving_stats, spec_from_run
from stkd.errors import STKDError
from stkd.models.registry import model_class
from stkd.report.tables import servable, served_student
from stkd.runs import load_run

ROLE_PREFERENCE = ("student_kd", "student_plain", "teacher")  # the default model of a run, best first
RUN_INFO_KEYS = ("nodes", "features", "freq", "start", "scaler")  # what serving reads from data.json


def needs_adjacency(card: dict) -> bool:
    """Whether rebuilding the model of this card needs the data's adjacency: the model class says so
    (:meth:`stkd.models.base.STModel.needs_adjacency`: the graph teachers, an STID reading its neighbours)."""
    return model_class(card["name"]).needs_adjacency(card.get("hparams") or {})


def is_export_dir(path: Path) -> bool:
    return (Path(path) / SPEC_FILE).is_file() and not (Path(path) / "config.yaml").is_file()


def read_json_file(path: Path, fix: str) -> dict:
    """A JSON object from ``path``; an STKDError naming the file and ``fix`` when it is missing, not JSON
    or not an object."""
    path = Path(path)
    try:
        d = json.loads(path.read_text())
    except FileNotFoundError:
        raise STKDError(f"{path}: missing; {fix}") from None
    except (OSError, ValueError) as e:  # JSONDecodeError, UnicodeDecodeError
        raise STKDError(f"{path}: not valid JSON ({e}); {fix}") from None
    if not isinstance(d, dict):
        raise STKDError(f"{path}: expected a JSON object, found {type(d).__name__}; {fix}")
    return d


def list_models(run_dir: Path) -> dict[str, dict]:
    """``{name: model card}`` of every trained model in a run directory."""
    out = {}
    for mdir in sorted((Path(run_dir) / "models").glob("*")):
        if (mdir / "model.json").is_file() and (mdir / "model.safetensors").is_file():
            card = read_json_file(mdir / "model.json", "restore it, or re-train the model")
            if not isinstance(card.get("name"), str):
                raise STKDError(f"{mdir / 'model.json'}: no model name (key 'name'); restore it, or re-train")
            out[mdir.name] = card
    return out


def choose_model(run_dir: Path, model: str | None = None) -> tuple[str, dict]:
    """The model to serve: ``model`` by name, else the student with the best validation score (the distilled
    one, unless the same student trained alone scored better on validation: :func:`served_student`), else the
    first of the distilled student, the plain student, the teacher (a student the serving path can feed
    before one it cannot)."""
    cards = list_models(run_dir)
    if not cards:
        raise STKDError(f"{run_dir}: no trained model under models/ (is the run finished?)")
    if model is not None:
        if model not in cards:
            raise STKDError(f"{run_dir}: no model {model!r}; the run has {', '.join(cards)}")
        return model, cards[model]
    best = served_student(cards)
    if best is not None:
        return best, cards[best]
    # students before the teacher, among them those the serving path can feed first (another is refused by
    # check_servable_inputs with what to do), then the role order
    ranked = sorted(((n, c) for n, c in cards.items() if c.get("role") in ROLE_PREFERENCE),
                    key=lambda item: (item[1]["role"] == "teacher", not servable(item[1]),
                                      ROLE_PREFERENCE.index(item[1]["role"])))
    if ranked:
        return ranked[0]
    name = next(iter(cards))
    return name, cards[name]


def check_servable_inputs(name: str, card: dict) -> None:
    """A model that reads a longer history or some features only (``inputs.length`` / ``inputs.features`` in
    its config: a privileged teacher, or a student configured so) cannot be served: the serving path gives a
    model the run's window of every feature, with the lagged channels of ``inputs.lags`` at most. Refused
    with what to do instead."""
    if not servable(card):
        view = card["inputs"].get("view", {})
        student = card.get("role") in names.STUDENT_ROLES
        fix = ("train the student without student.inputs.length and student.inputs.features to serve it" if student
               else "serve a student instead (the default of stkd.load / stkd serve / stkd export is the student "
               "with the best validation score)")
        if "servable" not in card["inputs"]:  # written before stkd marked which views it can feed
            fix = ("its card predates the mark of views the serving path can feed (lags on the run's window "
                   "are served now): re-train the model to serve it, or " + fix)
        raise STKDError(f"model {name!r} reads {view.get('length')} steps, lags {view.get('lags')} (steps) and features "
                        f"{view.get('features')} ({'student' if student else 'teacher'}.inputs in its config); the "
                        "serving path gives a model the run's window of every feature, with lagged channels at "
                        f"most: {fix}")


def load(run_dir: str | Path, model: str | None = None, *, backend: str = "torch",
         threads: int | None = None, trust_code: bool = False) -> Predictor:
    """A :class:`Predictor` for a model of a run directory (or an exported folder).

    Args:
        run_dir: a run directory written by ``stkd run`` / ``stkd distill``, or a folder written by
            ``stkd export`` (then the exported model is used and ``backend`` is ignored).
        model: a model name of the run (``stid_kd``, ``gwnet``, ...); default: the student with the best
            validation score (the distilled one unless the same student trained alone scored better).
        backend: ``torch`` (default), ``onnx`` (exported in memory and run with onnxruntime) or
            ``torchscript``.
        threads: intra-op threads of the onnx backend (default: onnxruntime's choice).
        trust_code: allow an exported TorchScript ``model.pt`` to load. TorchScript is code that runs
            with your permissions: pass True only for a folder from a source you trust.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise STKDError(f"{run_dir}: no such directory (expected an stkd run directory)")
    if is_export_dir(run_dir):
        return load_export(run_dir, threads=threads, trust_code=trust_code)
    info_file = run_dir / "data.json"
    try:
        cfg, info = load_run(run_dir)
    except STKDError:
        raise
    except FileNotFoundError:
        raise STKDError(f"{info_file}: missing; the run did not finish preparing its data (re-run it)") from None
    except (OSError, ValueError) as e:  # data.json: JSONDecodeError, UnicodeDecodeError
        raise STKDError(f"{info_file}: not valid JSON ({e}); restore it, or re-run the run") from None
    if not isinstance(info, dict) or any(k not in info for k in RUN_INFO_KEYS):
        raise STKDError(f"{info_file}: not an stkd data summary (it needs {', '.join(RUN_INFO_KEYS)}); restore it, "
                        "or re-run the run")
    name, card = choose_model(run_dir, model)
    check_servable_inputs(name, card)
    stats = serving_stats(run_dir, cfg, info, need_adjacency=needs_adjacency(card))
    torch_model, card = _load_weights(run_dir / "models" / name, stats.adjacency)
    spec = spec_from_run(run_dir, name, card, stats, info, cfg)
    pred = Predictor(spec, TorchBackend(torch_model), torch_model, run_dir)
    return pred.with_backend(backend, threads) if backend != "torch" else pred


def _load_weights(model_dir: Path, adjacency):
    """``checkpoint.load_model`` with its failures on damaged files as one line that names the file."""
    weights = model_dir / "model.safetensors"
    try:
        return load_model(model_dir, adjacency=adjacency)
    except STKDError:
        raise
    except SafetensorError as e:
        raise STKDError(f"{weights}: not a readable safetensors file ({e}); it is damaged or truncated: restore "
                        "it from a backup, or re-train the model") from None
    except RuntimeError as e:  # load_state_dict: a tensor of another shape
        raise STKDError(f"{weights}: the weights do not fit the model described by model.json "
                        f"({str(e).splitlines()[0][:200]}); restore the pair, or re-train the model") from None
    except (TypeError, KeyError, ValueError) as e:  # a card that does not build a model
        raise STKDError(f"{model_dir / 'model.json'}: does not describe a model stkd can build ({type(e).__name__}: "
                        f"{e}); restore it, or re-train the model") from None


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify_files(export_dir: Path, recorded: dict | None, needed: list[str]) -> None:
    """Each file in ``needed`` must match the SHA-256 that ``stkd export`` recorded in ``deploy.json``."""
    spec_path = export_dir / SPEC_FILE
    if recorded is None:
        warnings.warn(f"{spec_path} records no file hashes (an export by an earlier stkd): the exported files are "
                      "not verified; re-export to record them", stacklevel=3)
        return
    if not isinstance(recorded, dict):
        raise STKDError(f"{spec_path}: 'files' must map file names to SHA-256 hashes; re-export the model")
    for name in needed:
        want = recorded.get(name)
        if not isinstance(want, str):
            raise STKDError(f"{spec_path} records no SHA-256 for {name}: the folder is not as stkd export wrote "
                            "it; re-export the model")
        if sha256_file(export_dir / name) != want:
            raise STKDError(f"{export_dir / name}: its SHA-256 differs from the one recorded in {SPEC_FILE} at "
                            "export: the file was changed after export (damaged or tampered with); refusing to "
                            "load it. Re-export the model")


def check_onnx_external_data(path: Path) -> None:
    """Refuse an ONNX model whose tensors read external data from outside its folder (an absolute path or
    ``..``): onnxruntime would read any file the server can."""
    # imported here: the onnx package costs ~0.9 s at import (measured), and only ONNX files on disk need it
    try:
        import onnx
    except ImportError:
        raise STKDError(f"loading an ONNX export needs the export extra: {EXPORT_EXTRA}") from None

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # noqa: BLE001 - any parser failure is a damaged file
        raise STKDError(f"{path}: not a readable ONNX model ({type(e).__name__}: {str(e)[:200]}); re-export "
                        "it") from None
    folder = path.parent.resolve()
    for tensor in _onnx_tensors(proto.graph):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        location = next((e.value for e in tensor.external_data if e.key == "location"), "")
        target = (folder / location).resolve()
        if Path(location).is_absolute() or not target.is_relative_to(folder):
            raise STKDError(f"{path}: tensor {tensor.name!r} reads its data from {location!r}, outside the model's "
                            "folder; refusing to load it (an ONNX file must keep its data beside it)")


def _onnx_tensors(graph):
    """Every tensor of an ONNX graph: initializers, and tensor attributes of nodes and their subgraphs."""
    yield from graph.initializer
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("g"):
                yield from _onnx_tensors(attr.g)
            for sub in attr.graphs:
                yield from _onnx_tensors(sub)


def load_export(export_dir: str | Path, threads: int | None = None, trust_code: bool = False) -> Predictor:
    """A :class:`Predictor` over an exported folder (``deploy.json`` + ``model.onnx`` or ``model.pt``).

    The files are checked against the SHA-256 hashes ``stkd export`` recorded; a TorchScript model
    needs ``trust_code=True`` (it is code); an ONNX model may not read data from outside its folder.
    """
    export_dir = Path(export_dir)
    fix = "re-export the model (stkd export)"
    d = read_json_file(export_dir / SPEC_FILE, fix)
    if (export_dir / "model.onnx").is_file():
        model_file = "model.onnx"
    elif (export_dir / "model.pt").is_file():
        model_file = "model.pt"
        if not trust_code:
            raise STKDError(f"{export_dir / model_file} is TorchScript, which is code: loading it runs whatever it "
                            "holds. Load it only if you trust where it came from: stkd.load(path, trust_code=True) "
                            "or --trust-code. An ONNX export (stkd export --format onnx) needs no trust")
    else:
        raise STKDError(f"{export_dir}: neither model.onnx nor model.pt; {fix}")
    seasonal_path = export_dir / SEASONAL_FILE
    verify_files(export_dir, d.get("files"), [model_file] + ([SEASONAL_FILE] if seasonal_path.is_file() else []))
    seasonal = None
    if seasonal_path.is_file():
        try:
            seasonal = np.load(seasonal_path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as e:
            raise STKDError(f"{seasonal_path}: not a readable .npy array ({e}); {fix}") from None
    try:
        spec = ServingSpec.from_json(d, seasonal)
    except STKDError as e:
        raise STKDError(f"{export_dir / SPEC_FILE}: {e}; {fix}") from None
    except (TypeError, ValueError, KeyError, AttributeError) as e:
        raise STKDError(f"{export_dir / SPEC_FILE}: a value has the wrong type ({type(e).__name__}: {e}); "
                        f"{fix}") from None
    if model_file == "model.onnx":
        check_onnx_external_data(export_dir / model_file)
    try:
        backend = OnnxBackend(export_dir / model_file, threads) if model_file == "model.onnx" else \
            TorchScriptBackend(export_dir / model_file)
    except STKDError:
        raise
    except Exception as e:  # noqa: BLE001 - onnxruntime's and torch.jit's errors on a damaged model file
        raise STKDError(f"{export_dir / model_file}: the model does not load ({type(e).__name__}: "
                        f"{str(e).splitlines()[0][:200] if str(e) else ''}); {fix}") from None
    return Predictor(spec, backend, None, export_dir)
