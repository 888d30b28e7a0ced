"""MeritTask: the joint SE/SER task on ESPnet2's AbsTask and Trainer.

Every swappable part is a ``ClassChoices`` registry (``merit.tasks.model_builder``,
which also builds the model, so inference needs none of this module), so a YAML config
picks it by name: ``frontend`` (s3prl | dumped), ``integration`` (concat | weighted_sum),
``moe`` (sparse | dense | shared), and one ``<task>_head`` per task of
``merit.tasks.task_specs.TASKS``: ``se_head`` (mask | none), ``ser_head``
(attentive_stats | none).

Data names: ``speech`` (noisy audio, type sound) is required; each task's target
(``speech_ref1``: clean reference, sound; ``emotion``: class label, text, ``utt2emo``)
and ``feats`` (dumped hidden states: ``kaldi_ark`` shards, or ``npy`` files of older
dumps) are used when the chosen parts need them.

``dynamic_mixing: true`` re-mixes every training example with fresh noise each time it
is drawn (merit.data.dynamic_mixing, with ``dynamic_mixing_conf``: ``noise_scp``,
``snrs``); validation keeps its fixed mixtures. It needs an online frontend (s3prl).
"""
import argparse
import sys
from pathlib import Path
from typing import Callable, Collection, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from espnet2.iterators.abs_iter_factory import AbsIterFactory
from espnet2.tasks.abs_task import AbsTask, optim_classes
from espnet2.train.distributed_utils import DistributedOption
from espnet2.utils.nested_dict_action import NestedDictAction
from espnet2.utils.types import str2bool, str_or_none

from merit.data.dynamic_mixing import DynamicMixer, EpochIterFactory
from merit.models.espnet_model import MeritModel
from merit.tasks.collate import PadCollate
from merit.tasks.merit_trainer import MeritTrainer
from merit.tasks.model_builder import (build_model, check_dynamic_mixing, check_emotion_labels,
                                       emotion_classes, frontend_choices, head_choices,
                                       integration_choices, moe_choices)
from merit.tasks.task_specs import TASKS


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
        return emotion_classes(args)

    @classmethod
    def build_model(cls, args: argparse.Namespace) -> MeritModel:
        return build_model(args)

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
