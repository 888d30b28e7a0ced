"""Packed models: a trained MERIT model as one zip file to hand to someone else, and
the way back to a model dir that ``Speech2Merit`` loads.

    merit-pack exp/sparse_merit_fbank_seed1 model.zip [--include_upstream]
    Speech2Merit.from_pretrained("model.zip")     # or a model dir

The zip has the layout of ESPnet's packed models (``espnet2.main_funcs.pack_funcs``,
what espnet_model_zoo unpacks), so ESPnet's own ``unpack`` reads it too::

    meta.yaml                            files / yaml_files: key -> path in the zip;
                                         timestamp; python, torch, espnet, merit versions;
                                         the checkpoint and its criterion; the upstream
    README.md                            the model card: data, system, classes, scores
    exp/<run>/config.yaml                merit_train_config
    exp/<run>/<phase>.<metric>.best.pth  merit_model_file (or the --checkpoint chosen)
    exp/<run>/classes.txt                merit_classes_file: the classes, in logit order
    exp/<run>/upstream/<file>            upstream_model_file (--include_upstream only)

The config is the trained one, made portable: a dumped frontend's ``feats_info`` (a
file beside the dump) becomes the explicit values it gave (``DumpedFrontend
.explicit_conf``, what a trained config already holds), and a packed upstream
checkpoint is named by its path in the zip (unpacking makes it absolute, as ESPnet's
unpack does). The paths of the training data stay, as a record of what the model was
trained on (ESPnet's packs keep them too): loading a model never reads them.

The upstream a model needs (to compute its features: online, or for a model on dumped
features when it is given audio only) is recorded in meta.yaml and the card: an s3prl
hub name (``wavlm_large``: s3prl downloads it; ``fbank``: computed), a URL, or a local
checkpoint (a relative ``path_or_url`` is taken from the current directory, as training
took it). ``--include_upstream`` packs a local one; asked for without one it is an
error (there is nothing to pack; the card says what a user needs).

Unpacking (``unpack``) extracts into ``<cache>/<sha256 of the zip>``: the cache is
``cache_dir``, else ``$MERIT_CACHE_DIR``, else ``~/.cache/merit/packs``. It extracts
into a ``.<sha256>.partial-*`` dir and renames it into place when complete, so a
killed unpack never looks finished (its leftover can be deleted); a finished one is
reused. Members that would land outside the target (absolute paths, ``..``) are
refused. Every checkpoint is loaded as tensors only: the model's by
``merit.utils.model_loading`` at each load, a packed upstream's here, before s3prl
(whose loaders for some upstreams unpickle fully) ever sees it.
"""
import datetime
import hashlib
import os
import pickle
import re
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import Callable, Optional, Tuple

import yaml

import merit
from merit.utils.best_checkpoint import ESPNET_FIRST_CRITERION, best_checkpoint

META = "meta.yaml"
CARD = "README.md"
CONFIG_KEY, MODEL_KEY = "merit_train_config", "merit_model_file"
CLASSES_KEY, UPSTREAM_KEY = "merit_classes_file", "upstream_model_file"
URL_PREFIXES = ("http://", "https://")


def default_cache_dir() -> Path:
    """``$MERIT_CACHE_DIR``, else ``~/.cache/merit/packs``: where packs are unpacked."""
    return Path(os.environ.get("MERIT_CACHE_DIR") or Path.home() / ".cache" / "merit" / "packs")


def sha256(path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks (about 1 s per GB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_tensors_only(path, what: str) -> None:
    """Load ``path`` with ``torch.load(weights_only=True)``: ValueError ("refused")
    when it holds more than tensors (and plain containers), without running it."""
    import torch

    try:
        torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"{path}: refused: {what} holds more than tensors, and loading it "
                         f"could run code ({reason})") from None


# ---------------------------------------------------------------- packing


def _portable_frontend_conf(config: dict, config_path: Path) -> dict:
    """The config's ``frontend_conf`` with nothing a model build reads from this machine
    but a local upstream checkpoint (handled by ``_upstream``)."""
    conf = dict(config.get("frontend_conf") or {})
    if config.get("frontend") == "dumped" and "feats_info" in conf:
        from merit.models.frontend import DumpedFrontend

        try:
            conf = DumpedFrontend(**conf).explicit_conf()
        except ValueError as err:
            raise ValueError(f"{config_path}: frontend_conf.feats_info: {err}; pack where the "
                             f"dump is, or give num_layers, hidden_size and downsample_rate "
                             f"in frontend_conf instead") from None
    return conf


def _upstream_name(frontend: str, conf: dict) -> Optional[str]:
    """The s3prl upstream of a frontend conf: its ``upstream``, else the s3prl
    frontend's default; None for dumped features whose upstream was not recorded."""
    if "upstream" in conf or frontend != "s3prl":
        return conf.get("upstream")
    import inspect

    from merit.models.frontend import S3PRLFrontend

    return inspect.signature(S3PRLFrontend).parameters["upstream"].default


def upstream_requirement(upstream: dict) -> str:
    """One sentence for meta.yaml and the card: which upstream a user of the model
    must have, and how it is found."""
    name, where = upstream["name"], upstream["path_or_url"]
    use = ("it computes the model's input features from audio" if upstream["frontend"] == "s3prl"
           else "it computes, from audio, the features the model was trained on (dumped)")
    if name is None:
        return ("the upstream that dumped the training features was not recorded: the model "
                "decodes only when given those features (feats)")
    if upstream["packed"]:
        return f"upstream `{name}`, packed in this zip as `{where}`; {use}"
    if where is None:
        return (f"s3prl's hub upstream `{name}` (s3prl fetches a named model on first use; "
                f"feature extractors such as fbank need nothing); {use}")
    if str(where).startswith(URL_PREFIXES):
        return f"upstream `{name}` from {where} (downloaded on first use); {use}"
    digest = f" (sha256 {upstream['sha256']})" if upstream.get("sha256") else ""
    return (f"upstream `{name}` from the local checkpoint `{where}`{digest}, not packed: put "
            f"that file there, or set frontend_conf.path_or_url in the unpacked config.yaml "
            f"to where it is; {use}")


def _upstream(config: dict, conf: dict, config_path: Path, include: bool,
              arcname: Callable[[str], str]) -> Tuple[dict, Optional[Path]]:
    """(the upstream record of meta.yaml, the local checkpoint to pack or None).
    With ``include``, ``conf['path_or_url']`` becomes the checkpoint's path in the zip."""
    frontend = config.get("frontend")
    where = conf.get("path_or_url")
    local = (Path(where) if where is not None and not str(where).startswith(URL_PREFIXES)
             and Path(where).is_file() else None)
    record = dict(name=_upstream_name(frontend, conf), frontend=frontend, path_or_url=where,
                  packed=False)
    if local is not None:
        record["sha256"] = sha256(local)
    if include:
        if local is None:
            found = "none" if where is None else f"{where}, not a file here"
            raise ValueError(f"--include_upstream: {config_path} names no local upstream "
                             f"checkpoint to pack (upstream {record['name']}, frontend_conf."
                             f"path_or_url: {found}); pack without --include_upstream: the "
                             f"model card says which upstream a user needs")
        check_tensors_only(local, "the upstream checkpoint")
        conf["path_or_url"] = record["path_or_url"] = arcname(f"upstream/{local.name}")
        record["packed"] = True
    record["requires"] = upstream_requirement(record)
    return record, (local if include else None)


def _flow(conf: dict) -> str:
    """A mapping as one line of YAML (``{hidden_size: 32, top_k: 1}``)."""
    return yaml.safe_dump(conf, default_flow_style=True, width=1000).strip()


def _scores_table(exp_dir: Path) -> str:
    """The card's scores: the table ``merit.bin.results_md`` makes of the exp dir's
    ``decode_*/scores.json``, or a line saying there are none."""
    from merit.bin.results_md import results_table

    if not any(exp_dir.glob("decode_*/scores.json")):
        return (f"No scores found under `{exp_dir.name}` (no `decode_*/scores.json`: the "
                f"recipe's stages 5 and 6 write them).")
    return ("Noisy input → enhanced output, from `decode_*/scores.json` "
            "(`merit.bin.results_md`):\n\n" + results_table(exp_dir))


def model_card(config: dict, meta: dict, exp_dir: Path, zip_name: str) -> str:
    """The ``README.md`` of a pack: how to use it, classes, checkpoint, system,
    upstream, data and scores."""
    checkpoint, upstream = meta["checkpoint"], meta["upstream"]
    heads = [key for key in config if key.endswith("_head") and config[key] is not None]
    system = [f"- {part.replace('_', ' ')}: `{config.get(part)}` "
              f"{_flow(config.get(f'{part}_conf') or {})}"
              for part in ("frontend", "integration", "moe", *heads)]
    weights = {head[:-len("_head")]: config.get(head.replace("_head", "_loss_weight"))
               for head in heads}
    system.append(f"- loss weights: {_flow(weights)}")
    system.append(f"- trained {config.get('max_epoch')} epochs, optimizer `{config.get('optim')}` "
                  f"{_flow(config.get('optim_conf') or {})}, seed {config.get('seed')}")
    data = []
    for mode in ("train", "valid"):
        for path, name, kind in config.get(f"{mode}_data_path_and_name_and_type") or []:
            data.append(f"- {'training' if mode == 'train' else 'validation'}: `{name}` ({kind}) "
                        f"from `{path}`")
    phase, metric, *mode = checkpoint["criterion"]
    best = "lowest" if mode == ["min"] else "highest"
    criterion = (f"the {best} {phase} {metric}, the config's first best_model_criterion"
                 if checkpoint["chosen_by"] == "best_model_criterion"
                 else f"chosen with --checkpoint (the config's criterion keeps "
                      f"{checkpoint['default']})")
    linked = f" (a link to `{checkpoint['links_to']}`)" if checkpoint.get("links_to") else ""
    classes = config.get("emotion_classes") or []
    return "\n".join([
        f"# MERIT model `{exp_dir.name}`",
        "",
        f"Packed by `merit-pack` (merit {meta['merit']}) from `{exp_dir}`, "
        f"{datetime.datetime.fromtimestamp(meta['timestamp']):%Y-%m-%d %H:%M}: joint speech "
        "enhancement and speech emotion recognition on a shared mixture of experts.",
        "",
        "## Use",
        "",
        "```python",
        "from merit.inference import Speech2Merit",
        f'model = Speech2Merit.from_pretrained("{zip_name}")',
        "result = model(noisy)  # noisy: (samples,) float at 16 kHz",
        "result.enhanced, result.posteriors, result.expert_usage",
        "```",
        "",
        f"or `merit-infer --model {zip_name} file.wav`.",
        "",
        "## Classes",
        "",
        f"{', '.join(f'`{c}`' for c in classes)} (the order of the posteriors; also "
        f"`{meta['files'][CLASSES_KEY]}`)",
        "",
        "## Checkpoint",
        "",
        f"`{checkpoint['file']}`{linked}: {criterion}.",
        "",
        "## System",
        "",
        *system,
        "",
        "## Upstream",
        "",
        f"Needs {upstream['requires']}.",
        "",
        "## Data",
        "",
        *(data or ["(the config names no training data)"]),
        "",
        "## Scores",
        "",
        _scores_table(exp_dir),
        "",
    ])


def _environment() -> dict:
    """ESPnet's meta.yaml fields (timestamp, python, torch, espnet) and merit's version."""
    import espnet
    import torch

    return dict(timestamp=datetime.datetime.now().timestamp(), python=sys.version,
                torch=str(torch.__version__), espnet=espnet.__version__, merit=merit.__version__)


def pack(exp_dir, out_zip, checkpoint: Optional[str] = None,
         include_upstream: bool = False) -> Path:
    """Write the trained model of ``exp_dir`` as a pack ``out_zip`` (module docstring);
    returns ``out_zip``. ``checkpoint``: a file of ``exp_dir`` (default: the one kept
    for the config's first best_model_criterion). The zip appears complete or not at all.

    Raises:
        FileNotFoundError: no config.yaml, or no such checkpoint.
        ValueError: ``out_zip`` is not a .zip; the config is no mapping; the checkpoint
            holds more than tensors; ``include_upstream`` without a local upstream.
    """
    exp_dir, out_zip = Path(exp_dir), Path(out_zip)
    if out_zip.suffix != ".zip":
        raise ValueError(f"{out_zip}: a pack is a zip file: name it <something>.zip")
    config_path = exp_dir / "config.yaml"
    if not config_path.is_file():
        raise FileNotFoundError(f"{config_path}: not found (is {exp_dir} a trained model dir, "
                                f"exp/<run>?)")
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    if not isinstance(config, dict):
        raise ValueError(f"{config_path}: not a model config (a YAML mapping)")
    default = best_checkpoint(config_path)
    weights = exp_dir / (checkpoint or default)
    if not weights.is_file():
        raise FileNotFoundError(f"{weights}: not found (the checkpoint to pack; --checkpoint "
                                f"NAME packs another file of {exp_dir})")
    check_tensors_only(weights, "the checkpoint")

    base = PurePosixPath("exp") / exp_dir.resolve().name

    def arcname(name: str) -> str:
        """The path in the zip of a file of the model dir (ESPnet's packs: exp/<run>/)."""
        return str(base / name)

    frontend_conf = _portable_frontend_conf(config, config_path)
    upstream, upstream_file = _upstream(config, frontend_conf, config_path, include_upstream,
                                        arcname)
    config = dict(config, frontend_conf=frontend_conf)
    classes = list(config.get("emotion_classes") or [])
    members = {arcname("config.yaml"): yaml.safe_dump(config, sort_keys=False).encode(),
               arcname("classes.txt"): "".join(f"{c}\n" for c in classes).encode(),
               arcname(weights.name): weights}
    files = {MODEL_KEY: arcname(weights.name), CLASSES_KEY: arcname("classes.txt")}
    if upstream_file is not None:
        members[upstream["path_or_url"]] = upstream_file
        files[UPSTREAM_KEY] = upstream["path_or_url"]
    criterion = (config.get("best_model_criterion") or [ESPNET_FIRST_CRITERION])[0]
    chosen = dict(file=weights.name, default=default, criterion=list(criterion),
                  chosen_by="best_model_criterion" if weights.name == default else "--checkpoint")
    if weights.is_symlink():
        chosen["links_to"] = Path(os.path.realpath(weights)).name
    meta = dict(files=files, yaml_files={CONFIG_KEY: arcname("config.yaml")}, **_environment(),
                checkpoint=chosen, upstream=upstream)
    card = model_card(config, meta, exp_dir, out_zip.name)

    out_zip.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_zip.with_name(f".{out_zip.name}.{os.getpid()}.tmp")
    try:
        with zipfile.ZipFile(tmp, "w") as archive:
            archive.writestr(META, yaml.safe_dump(meta, sort_keys=False),
                             compress_type=zipfile.ZIP_DEFLATED)
            archive.writestr(CARD, card, compress_type=zipfile.ZIP_DEFLATED)
            for name, source in members.items():
                if isinstance(source, bytes):
                    archive.writestr(name, source, compress_type=zipfile.ZIP_DEFLATED)
                else:  # checkpoints: stored, float weights hardly compress
                    archive.write(source, name, compress_type=zipfile.ZIP_STORED)
        os.replace(tmp, out_zip)
    finally:
        tmp.unlink(missing_ok=True)
    return out_zip


# -------------------------------------------------------------- unpacking


def _member_path(where, name: str) -> PurePosixPath:
    """``name`` (a member of a zip, or a path meta.yaml lists) as a relative path
    inside the unpack dir; ValueError when it could land anywhere else."""
    path = PurePosixPath(name)
    if (not name or path.is_absolute() or "\\" in name or ".." in path.parts
            or re.match(r"[A-Za-z]:", name)):
        raise ValueError(f"{where}: refused: member {name!r} would be written outside the "
                         f"directory it is unpacked into (a pack holds relative paths only)")
    return path


def _check_meta(meta, where, present: Callable[[str], bool]) -> dict:
    """``meta`` (a parsed meta.yaml) if it is a merit pack's whose listed files are all
    ``present``; ValueError naming ``where`` and the problem otherwise."""
    if not isinstance(meta, dict) or not all(isinstance(meta.get(k), dict)
                                             for k in ("files", "yaml_files")):
        raise ValueError(f"{where}: meta.yaml is not a pack's (a mapping with files: and "
                         f"yaml_files:)")
    for group, key in (("yaml_files", CONFIG_KEY), ("files", MODEL_KEY)):
        if key not in meta[group]:
            raise ValueError(f"{where}: meta.yaml has no {group}.{key}: not a merit pack "
                             f"(merit-pack writes one)")
    for key, name in {**meta["yaml_files"], **meta["files"]}.items():
        _member_path(where, str(name))
        if not present(str(name)):
            raise ValueError(f"{where}: meta.yaml lists {key}: {name}, which is missing")
    return meta


def read_meta(pack_dir) -> dict:
    """The meta.yaml of an unpacked pack, checked: ValueError when it is not a merit
    pack's or a file it lists is missing."""
    pack_dir = Path(pack_dir)
    try:
        meta = yaml.safe_load((pack_dir / META).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise ValueError(f"{pack_dir}: cannot read its {META} ({err})") from None
    return _check_meta(meta, pack_dir, lambda name: (pack_dir / name).is_file())


def _rewrite(value, paths: dict):
    """``value`` (parsed YAML) with every string equal to a key of ``paths`` replaced
    by its value (ESPnet's unpack does the same to a pack's yaml files)."""
    if isinstance(value, dict):
        return {k: _rewrite(v, paths) for k, v in value.items()}
    if isinstance(value, list):
        return [_rewrite(v, paths) for v in value]
    return paths.get(value, value) if isinstance(value, str) else value


def _packed_paths(meta: dict, target: Path) -> dict:
    """{path in the zip: absolute path in ``target``} of the packed files."""
    return {name: str(target / name) for name in meta["files"].values()}


def _extract(zip_path: Path, tmp: Path, target: Path) -> None:
    """Extract the pack ``zip_path`` into ``tmp``, its yaml files pointing into
    ``target`` (where ``tmp`` is renamed to), and check a packed upstream."""
    try:
        with zipfile.ZipFile(zip_path) as archive:
            infos = archive.infolist()
            for info in infos:
                _member_path(zip_path, info.filename)
            names = {info.filename for info in infos}
            if META not in names:
                raise ValueError(f"{zip_path}: no {META} in the zip: not a pack written by "
                                 f"merit-pack")
            try:
                meta = yaml.safe_load(archive.read(META))
            except yaml.YAMLError as err:
                raise ValueError(f"{zip_path}: {META} is not YAML ({err})") from None
            _check_meta(meta, zip_path, names.__contains__)
            for info in infos:
                out = tmp / info.filename
                if info.is_dir():
                    out.mkdir(parents=True, exist_ok=True)
                    continue
                out.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(info) as src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
    except zipfile.BadZipFile as err:
        raise ValueError(f"{zip_path}: not a readable zip file ({err})") from None
    paths = _packed_paths(meta, target)
    for name in meta["yaml_files"].values():
        try:
            conf = yaml.safe_load((tmp / name).read_text(encoding="utf-8"))
        except yaml.YAMLError as err:
            raise ValueError(f"{zip_path}: {name} is not YAML ({err})") from None
        (tmp / name).write_text(yaml.safe_dump(_rewrite(conf, paths), sort_keys=False),
                                encoding="utf-8")
    if UPSTREAM_KEY in meta["files"]:
        check_tensors_only(tmp / meta["files"][UPSTREAM_KEY], "the packed upstream checkpoint")


def unpack(zip_path, cache_dir=None) -> Path:
    """The directory a pack is unpacked into (module docstring): reused when a
    complete one is there, else extracted anew.

    Raises:
        FileNotFoundError: no such zip.
        ValueError: not a zip, no or a bad meta.yaml, a listed file missing, a member
            that escapes the target, a packed upstream holding more than tensors.
    """
    zip_path = Path(zip_path)
    if not zip_path.is_file():
        raise FileNotFoundError(f"{zip_path}: no such pack (a .zip written by merit-pack)")
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    key = sha256(zip_path)
    target = root / key
    if target.is_dir():  # a finished unpack: only a complete one is renamed to this name
        try:
            read_meta(target)
            return target
        except ValueError:  # files removed since: unpack again
            shutil.rmtree(target)
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}.partial-", dir=root))
    try:
        _extract(zip_path, tmp, target)
        try:
            os.rename(tmp, target)
        except OSError:
            if not target.is_dir():
                raise
            read_meta(target)  # another process finished the same pack first
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def resolve_model(model) -> Tuple[Path, Optional[str]]:
    """(model dir, checkpoint or None) of a pack (``.zip``: unpacked, see ``unpack``),
    an unpacked pack (a dir with meta.yaml) or a trained model dir (config.yaml; None:
    the config's default checkpoint). The model dir holds the config, the checkpoint
    is relative to it; what ``Speech2Merit(model_dir, checkpoint)`` takes.

    Raises:
        FileNotFoundError: no such file or directory.
        ValueError: anything else (the path and what was expected), or a bad pack.
    """
    path = Path(model)
    if path.is_file():
        if not zipfile.is_zipfile(path):
            raise ValueError(f"{path}: not a packed model (a .zip written by merit-pack); "
                             f"give a pack or a model dir")
        root = unpack(path)
    elif path.is_dir():
        if not (path / META).is_file():
            if (path / "config.yaml").is_file():
                return path, None
            raise ValueError(f"{path}: neither a trained model dir (config.yaml) nor an "
                             f"unpacked pack (meta.yaml)")
        root = path
    else:
        raise FileNotFoundError(f"{path}: no such file or directory (expected a packed model "
                                f".zip or a model dir)")
    meta = read_meta(root)
    config = root / meta["yaml_files"][CONFIG_KEY]
    conf = yaml.safe_load(config.read_text(encoding="utf-8"))
    if _rewrite(conf, _packed_paths(meta, root)) != conf:
        raise ValueError(f"{config}: names packed files by their path in the zip: {root} was "
                         f"unzipped by hand; give the zip itself (from_pretrained unpacks it "
                         f"into the cache, $MERIT_CACHE_DIR)")
    return config.parent, os.path.relpath(root / meta["files"][MODEL_KEY], config.parent)
