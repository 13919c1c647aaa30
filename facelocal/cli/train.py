"""``facelocal train``: train or fine-tune RetinaFace on a label.txt or WIDER FACE annotation file."""

from __future__ import annotations

import argparse
from pathlib import Path

from facelocal.cli.common import add_preset_argument
from facelocal.config import DEFAULT_PRESET


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("train", help="train or fine-tune a model", description=__doc__)
    add_preset_argument(parser, default=DEFAULT_PRESET)
    parser.add_argument("--data", required=True, type=Path, help="label.txt, wider_face_*_bbx_gt.txt or a folder")
    parser.add_argument("--images", type=Path, help="image root (default: images/ beside the annotations)")
    parser.add_argument("--out", required=True, type=Path, help="folder for checkpoints and CSV logs")
    parser.add_argument("--epochs", type=int, default=80)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-2, help="learning rate after warm-up")
    parser.add_argument("--warmup-lr", type=float, default=1e-3)
    parser.add_argument("--warmup-epochs", type=float, default=5.0)
    parser.add_argument("--milestones", type=float, nargs="*", default=[55.0, 68.0], help="epochs that divide by 10")
    parser.add_argument("--image-size", type=int, default=640, help="side of the square training crops")
    parser.add_argument("--positive-iou", type=float, default=0.5)
    parser.add_argument("--negative-iou", type=float, default=0.3)
    parser.add_argument("--finetune", type=Path, metavar="WEIGHTS", help="start from these weights")
    parser.add_argument("--resume", type=Path, metavar="CKPT", help="continue a run from its checkpoint")
    parser.add_argument("--save-every", type=int, default=10, metavar="N", help="checkpoint every N epochs")
    parser.add_argument("--workers", type=int, default=4, help="data-loading processes")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--max-iters", type=int, help="stop after this many steps")
    parser.add_argument("--repeat", type=int, default=1, help="passes over the images per epoch (small sets)")
    parser.add_argument(
        "--freeze-bn",
        action=argparse.BooleanOptionalAction,
        help="keep BatchNorm statistics fixed (default: only with --finetune)",
    )
    parser.add_argument("--no-amp", action="store_true", help="train in float32 on CUDA too")
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from facelocal.cli import CommandError
    from facelocal.data.annotations import load_annotations
    from facelocal.data.augment import AugmentConfig
    from facelocal.training.loss import LossConfig
    from facelocal.training.matcher import MatcherConfig
    from facelocal.training.schedule import ScheduleConfig
    from facelocal.training.trainer import TrainConfig, Trainer

    try:
        records = load_annotations(args.data, args.images)
        matcher = MatcherConfig(positive_iou=args.positive_iou, negative_iou=args.negative_iou)
    except (OSError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    missing = [r.path for r in records if not r.path.is_file()]
    if missing:
        raise CommandError(f"{len(missing)} of {len(records)} images are missing, e.g. {missing[0]} (see --images)")
    config = TrainConfig(
        out_dir=args.out,
        model=args.preset,
        batch_size=args.batch_size,
        schedule=ScheduleConfig(
            base_lr=args.lr,
            warmup_lr=args.warmup_lr,
            warmup_epochs=args.warmup_epochs,
            milestones=tuple(args.milestones),
            epochs=args.epochs,
        ),
        loss=replace(LossConfig(), matcher=matcher),
        augment=AugmentConfig(image_size=args.image_size),
        max_iterations=args.max_iters,
        repeat=args.repeat,
        save_every=args.save_every,
        workers=args.workers,
        device=args.device,
        amp=not args.no_amp,
        seed=args.seed,
        finetune=args.finetune,
        resume=args.resume,
        freeze_batchnorm=args.freeze_bn,
    )
    try:
        trainer = Trainer(config, records)
    except (OSError, RuntimeError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    result = trainer.fit()
    print(f"trained {result.epochs} epochs, {result.iterations} steps; checkpoint {result.checkpoint}")
    return 0
