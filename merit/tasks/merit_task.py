"""MeritTask: the joint SE/SER task on ESPnet2's AbsTask and Trainer.

Every swappable part is a ``ClassChoices`` registry, so a YAML config picks it
by name: ``frontend`` (s3prl | dumped), ``integration`` (concat | weighted_sum),
``moe`` (sparse | dense | shared), and one ``<task>_head`` per task of
``merit.tasks.task_specs.TASKS``: ``se_head`` (mask | none), ``ser_head``
(attentive_stats | none).

Data names: ``speech`` (noisy audio, type sound) is required; each task's target
(``speech_ref1``: clean reference, sound; ``emotion``: class label, text, ``utt2emo``)
and ``feats`` (dumped hidden states, npy) are used when the chosen parts need them.

``dynamic_mixing: true`` re-mixes every training example with fresh noise each time it
is drawn (merit.data.dynamic_mixing, with ``dynamic_mixing_conf``: ``noise_scp``,
``snrs``); validation keeps its fixed mixtures. It needs an online frontend (s3prl).
"""
import argparse
import sys
from collections import Counter
from pathlib import Path
from typing import Callable, Collection, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from espnet2.iterators.abs_iter_factory import AbsIterFactory
from espnet2.tasks.abs_task import AbsTask, optim_classes
from espnet2.train.class_choices import ClassChoices
from espnet2.train.distributed_utils import DistributedOption
from espnet2.utils.nested_dict_action import NestedDictAction
from espnet2.utils.types import str2bool, str_or_none

from merit.data.dynamic_mixing import DynamicMixer, EpochIterFactory

from merit.models.abs_frontend import AbsFrontend
from merit.models.abs_integration import AbsIntegration
from merit.models.abs_moe import AbsMoE
from merit.models.espnet_model import MeritModel
from merit.models.frontend import DumpedFrontend, S3PRLFrontend
from merit.models.integration import ConcatIntegration, WeightedSumIntegration
from merit.models.moe import DenseMoE, SharedMLP, SparseMoE
from merit.tasks.collate import PadCollate
from merit.tasks.merit_trainer import MeritTrainer
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


class EmotionPreprocessor:
    """Maps the ``emotion`` text (a class code) to its index, as an int64 array (1,)."""

    def __init__(self, classes: Sequence[str]):
        self.index = {c: i for i, c in enumerate(classes)}

    def __call__(self, uid: str, data: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        if "emotion" in data:
            label = str(data["emotion"]).strip()
            if label not in self.index:
                raise ValueError(f"utterance {uid}: emotion {label!r} is not one of "
                                 f"{list(self.index)} (--emotion_classes)")
            data["emotion"] = np.array([self.index[label]], dtype=np.int64)
        return data


class MixingPreprocessor:
    """The training data's preprocessing with ``dynamic_mixing: true``: a new mixture
    (``mixer``, a DynamicMixer), then the emotion labels (``labels``). ``set_epoch``
    goes to the mixer."""

    def __init__(self, mixer: DynamicMixer, labels: EmotionPreprocessor):
        self.mixer, self.labels = mixer, labels

    def set_epoch(self, epoch: int) -> None:
        self.mixer.set_epoch(epoch)

    def __call__(self, uid: str, data: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        return self.labels(uid, self.mixer(uid, data))

    def __repr__(self) -> str:
        return f"MixingPreprocessor({self.mixer!r}, then emotion labels)"


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


class MeritTask(AbsTask):
    num_optimizers: int = 1
    class_choices_list = [frontend_choices, integration_choices, moe_choices,
                          *head_choices.values()]
    trainer = MeritTrainer

    @classmethod
    def add_task_arguments(cls, parser: argparse.ArgumentParser):
        group = parser.add_argument_group(description="Task related")
        group.add_argument("--emotion_classes", default="A,S,H,N",
                           help="comma-separated class codes, in the order of the logits")
        group.add_argument("--class_weights", type=str_or_none, default=None,
                           help="an utt2emo file to compute N/(C*count_c) from (the training "
                                "set's), or a comma-separated list; default: all 1")
        for task in TASKS:
            group.add_argument(f"--{task.name}_loss_weight", type=float, default=1.0,
                               help=f"weight of the {task.title} loss")
        group.add_argument("--ssl_lr_scale", type=float, default=0.5,
                           help="learning rate of a fine-tuned upstream, relative to the heads'")
        group.add_argument("--dynamic_mixing", type=str2bool, default=False,
                           help="re-mix each training example with fresh noise every time it "
                                "is drawn (validation keeps its fixed mixtures); needs an "
                                "online frontend (s3prl)")
        group.add_argument("--dynamic_mixing_conf", action=NestedDictAction, default=dict(),
                           help="noise_scp=<train noise pool scp>, snrs=[<dB>,...], optionally "
                                "cache_mb=<MB of decoded noise kept per worker, default 128>")
        for class_choices in cls.class_choices_list:
            class_choices.add_arguments(group)

    @classmethod
    def check_required_command_args(cls, args: argparse.Namespace):
        """ESPnet's checks, then every ``emotion`` file of the training and validation
        data against ``--emotion_classes``: before any process, model or iterator is
        built, instead of mid-epoch in ``EmotionPreprocessor``."""
        super().check_required_command_args(args)
        try:
            check_dynamic_mixing(args)
        except ValueError as err:
            raise SystemExit(f"{Path(sys.argv[0]).name}: error: {err}") from err
        classes = cls.emotion_classes(args)
        for mode in ("train", "valid"):
            for path, name, _ in getattr(args, f"{mode}_data_path_and_name_and_type", None) or []:
                if name != "emotion":
                    continue
                try:
                    check_emotion_labels(path, classes)
                except ValueError as err:
                    raise SystemExit(f"{Path(sys.argv[0]).name}: error: "
                                     f"--{mode}_data_path_and_name_and_type: {err}") from err

    @classmethod
    def build_collate_fn(cls, args: argparse.Namespace, train: bool) -> Callable[
            [Collection[Tuple[str, Dict[str, np.ndarray]]]], Tuple[List[str], Dict[str, torch.Tensor]]]:
        return PadCollate(float_pad=0.0, int_pad=-1, not_sequence=["emotion"])

    @classmethod
    def build_preprocess_fn(cls, args: argparse.Namespace, train: bool) -> Optional[Callable]:
        """Emotion labels to indices; for training with ``dynamic_mixing`` on, a new
        mixture first (``MixingPreprocessor``)."""
        labels = EmotionPreprocessor(cls.emotion_classes(args))
        if not (train and getattr(args, "dynamic_mixing", False)):
            return labels
        check_dynamic_mixing(args)
        return MixingPreprocessor(DynamicMixer.from_conf(args.dynamic_mixing_conf, args.seed),
                                  labels)

    @classmethod
    def build_iter_factory(cls, args: argparse.Namespace, distributed_option: DistributedOption,
                           mode: str, kwargs: Optional[dict] = None) -> AbsIterFactory:
        """ESPnet's factory; with ``dynamic_mixing`` on, the training one tells the mixer
        each epoch before building its iterator (``EpochIterFactory``)."""
        if mode != "train" or not getattr(args, "dynamic_mixing", False):
            return super().build_iter_factory(args, distributed_option, mode, kwargs)
        preprocess = cls.build_preprocess_fn(args, train=True)
        factory = super().build_iter_factory(args, distributed_option, mode,
                                             dict(kwargs or {}, preprocess_fn=preprocess))
        return EpochIterFactory(factory, preprocess)

    @classmethod
    def required_data_names(cls, train: bool = True, inference: bool = False) -> Tuple[str, ...]:
        return ("speech",)

    @classmethod
    def optional_data_names(cls, train: bool = True, inference: bool = False) -> Tuple[str, ...]:
        return tuple(task.target for task in TASKS) + ("feats",)

    @staticmethod
    def emotion_classes(args) -> List[str]:
        classes = args.emotion_classes
        if isinstance(classes, str):
            classes = [c.strip() for c in classes.split(",") if c.strip()]
        return list(classes)

    @classmethod
    def build_model(cls, args: argparse.Namespace) -> MeritModel:
        check_dynamic_mixing(args)
        classes = cls.emotion_classes(args)
        weights = args.class_weights
        if isinstance(weights, str):
            weights = ([float(w) for w in weights.split(",")] if "," in weights
                       else class_weights_from(weights, classes))
        # Keep the config portable: numbers, not paths to this machine's files.
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

    @classmethod
    def build_optimizers(cls, args: argparse.Namespace, model: torch.nn.Module) -> List[torch.optim.Optimizer]:
        """One optimizer; a fine-tuned upstream learns at ``ssl_lr_scale`` × lr."""
        optim_class = optim_classes.get(args.optim)
        if optim_class is None:
            raise ValueError(f"--optim must be one of {list(optim_classes)}: {args.optim}")
        ssl = [p for p in model.frontend.parameters() if p.requires_grad]
        ssl_ids = {id(p) for p in ssl}
        heads = [p for p in model.parameters() if p.requires_grad and id(p) not in ssl_ids]
        groups = [{"params": heads}]
        if ssl:
            if "lr" not in args.optim_conf:
                raise ValueError("fine-tuning the upstream needs optim_conf.lr set explicitly "
                                 "(its learning rate is ssl_lr_scale × lr)")
            groups.append({"params": ssl, "lr": args.optim_conf["lr"] * args.ssl_lr_scale})
        return [optim_class(groups, **args.optim_conf)]
