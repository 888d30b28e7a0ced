"""The model of a MERIT config, built without ESPnet's training machinery.

The registries of every swappable part (``ClassChoices``: ``frontend``, ``integration``,
``moe``, one ``<task>_head`` per task of ``merit.tasks.task_specs.TASKS``) and
``build_model`` live here, the one source of truth for both users:

* ``MeritTask`` (training, ESPnet's ``AbsTask``) lists these registries for its
  command line and builds its model with ``build_model``;
* inference (``merit.utils.model_loading``, ``Speech2Merit``, ``merit-infer``, stage 5)
  builds a trained model from its ``config.yaml`` with ``build_model`` alone.

This module imports only torch, the model modules and ESPnet's ``ClassChoices``:
``espnet2.tasks.abs_task`` pulls in ESPnet's trainer, text preprocessing (``inflect``)
and adapters (``transformers``), about 10 s of start-up that inference never uses.
"""
import argparse
from collections import Counter
from typing import List, Sequence

from espnet2.train.class_choices import ClassChoices

from merit.models.abs_frontend import AbsFrontend
from merit.models.abs_integration import AbsIntegration
from merit.models.abs_moe import AbsMoE
from merit.models.espnet_model import MeritModel
from merit.models.frontend import DumpedFrontend, S3PRLFrontend
from merit.models.integration import ConcatIntegration, WeightedSumIntegration
from merit.models.moe import DenseMoE, SharedMLP, SparseMoE
from merit.tasks.task_specs import TASKS

frontend_choices = ClassChoices(
    "frontend", classes=dict(s3prl=S3PRLFrontend, dumped=DumpedFrontend),
    type_check=AbsFrontend, default="s3prl")
integration_choices = ClassChoices(
    "integration", classes=dict(concat=ConcatIntegration, weighted_sum=WeightedSumIntegration),
    type_check=AbsIntegration, default="concat")
moe_choices = ClassChoices(
    "moe", classes=dict(sparse=SparseMoE, dense=DenseMoE, shared=SharedMLP),
    type_check=AbsMoE, default="sparse")
#: ``<task>_head`` choices, one per task of ``TASKS`` (``none`` leaves the task out).
head_choices = {
    task.name: ClassChoices(f"{task.name}_head", classes=task.head_classes(),
                            type_check=task.head_type(), default=task.default_head, optional=True)
    for task in TASKS}


def check_emotion_labels(utt2emo, classes: Sequence[str]) -> Counter:
    """Count the classes of an ``utt2emo`` file (``<utt> <class>`` lines), refusing
    any class outside ``classes``.

    Raises ValueError naming the file, the first offending line, its label, how many
    lines are off, and the fix (``--emotion_classes``). About 0.1 s per 100k lines:
    cheap enough to run before every training, where such a label otherwise stops
    it mid-epoch.
    """
    allowed = set(classes)
    counts: Counter = Counter()
    first = None
    try:
        with open(utt2emo, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                fields = line.split()
                if not fields:
                    continue
                if len(fields) != 2:
                    raise ValueError(f"{utt2emo} line {lineno}: expected '<utterance> <class>', "
                                     f"got {line.rstrip()!r}")
                counts[fields[1]] += 1
                if first is None and fields[1] not in allowed:
                    first = (lineno, fields[0], fields[1])
    except OSError as err:
        raise ValueError(f"{utt2emo}: cannot read the emotion labels ({err.strerror})") from err
    if first is not None:
        lineno, utt, label = first
        outside = {c: n for c, n in sorted(counts.items()) if c not in allowed}
        raise ValueError(
            f"{utt2emo} line {lineno}: utterance {utt} has emotion {label!r}, which is not "
            f"one of --emotion_classes {','.join(classes)} ({sum(outside.values())} line(s) "
            f"outside them: {' '.join(f'{c}={n}' for c, n in outside.items())}); add the "
            f"class to --emotion_classes (train_config's emotion_classes) or leave those "
            f"utterances out of the data dir")
    return counts


def class_weights_from(utt2emo, classes: Sequence[str]) -> List[float]:
    """N / (C · count_c) over the utterances of ``utt2emo``; every class must occur,
    and no other (``check_emotion_labels``)."""
    counts = check_emotion_labels(utt2emo, classes)
    missing = [c for c in classes if counts[c] == 0]
    if missing:
        raise ValueError(f"{utt2emo}: no utterance of class(es) {missing}")
    total = sum(counts[c] for c in classes)
    return [round(total / (len(classes) * counts[c]), 6) for c in classes]


def check_dynamic_mixing(args: argparse.Namespace) -> None:
    """With ``dynamic_mixing`` on, refuse what cannot work with it: dumped features
    (they are of stage 2's fixed mixtures) and ESPnet's data cache (it would keep each
    example's first mixture). ValueError saying what to change."""
    if not getattr(args, "dynamic_mixing", False):
        return
    if args.frontend == "dumped":
        raise ValueError(
            "dynamic_mixing: true cannot train on dumped features (frontend: dumped): they "
            "are features of stage 2's fixed mixtures, not of the new ones. Compute them "
            "online: --frontend s3prl --frontend_conf upstream=<upstream> (merit.sh "
            "--ssl_mode online; merit.sh's stage 4 does this by itself for a train config "
            "with dynamic_mixing: true)")
    if getattr(args, "max_cache_size", 0):
        raise ValueError(
            f"dynamic_mixing: true with max_cache_size: {args.max_cache_size:g}: ESPnet's "
            f"data cache keeps preprocessed examples, so an example would keep its first "
            f"mixture; set max_cache_size: 0")


def emotion_classes(args) -> List[str]:
    """``args.emotion_classes`` as a list (a config may hold ``"A,S,H,N"`` or a list)."""
    classes = args.emotion_classes
    if isinstance(classes, str):
        classes = [c.strip() for c in classes.split(",") if c.strip()]
    return list(classes)


def build_model(args: argparse.Namespace) -> MeritModel:
    """The model of a training config (``args``: the parsed command line, or a trained
    model's ``config.yaml`` as a Namespace). ``args.emotion_classes`` and
    ``args.class_weights`` become lists and a dumped frontend's conf explicit, so the
    config ESPnet writes is portable: numbers, not paths to this machine's files."""
    check_dynamic_mixing(args)
    classes = emotion_classes(args)
    weights = args.class_weights
    if isinstance(weights, str):
        weights = ([float(w) for w in weights.split(",")] if "," in weights
                   else class_weights_from(weights, classes))
    args.emotion_classes, args.class_weights = classes, weights

    frontend = frontend_choices.get_class(args.frontend)(**args.frontend_conf)
    if isinstance(frontend, DumpedFrontend):
        args.frontend_conf = frontend.explicit_conf()
    integration = integration_choices.get_class(args.integration)(
        num_layers=frontend.num_layers, hidden_size=frontend.hidden_size,
        **args.integration_conf)
    tasks = [task for task in TASKS if getattr(args, f"{task.name}_head") is not None]
    moe = moe_choices.get_class(args.moe)(
        input_size=integration.output_size, tasks=[task.name for task in tasks],
        **args.moe_conf)
    heads = {}
    for task in tasks:
        conf = dict(getattr(args, f"{task.name}_head_conf"))
        head_class = head_choices[task.name].get_class(getattr(args, f"{task.name}_head"))
        heads[task.name] = head_class(input_size=moe.output_size,
                                      **task.head_kwargs(frontend, len(classes), conf), **conf)
    return MeritModel(frontend, integration, moe, heads,
                      loss_weights={task.name: getattr(args, f"{task.name}_loss_weight")
                                    for task in tasks},
                      num_classes=len(classes), class_weights=weights)
