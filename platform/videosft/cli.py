"""`videosft <verb>`: the same library functions the jobs call, one verb each.

Configs are validated before any Ray work starts: a bad key fails here, in milliseconds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Sequence

from videosft.config import ConfigError, ExperimentConfig, load_config


def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="experiment YAML (default: the embedded demo)")
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. train.max_steps=50")


def _config(args: argparse.Namespace) -> ExperimentConfig:
    return load_config(args.config, args.overrides)


def cmd_demo(args: argparse.Namespace) -> int:
    """Tiny model + synthetic data + a frame-budget sweep + report, on local Ray."""
    from videosft.tune.sweep import run_sweep

    cfg = _config(args)
    t0 = time.perf_counter()
    report = run_sweep(cfg)
    print(Path(report).read_text())
    print(f"[demo] done in {time.perf_counter() - t0:.0f} s; report: {report} (plot: {Path(report).with_name('tradeoff.png')})")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    return cmd_demo(args)


def cmd_make_tiny_model(args: argparse.Namespace) -> int:
    from videosft.models.registry import get_family

    out = get_family(args.family).build_tiny(args.out, seed=args.seed)
    print(f"wrote tiny {args.family} checkpoint to {out}")
    return 0


def cmd_make_synthetic(args: argparse.Namespace) -> int:
    from videosft.data.synthetic import make_synthetic

    made = make_synthetic(args.out, seed=args.seed, n_train_video=args.n_train_video, n_train_image=args.n_train_image,
                          n_eval_video=args.n_eval_video, n_eval_image=args.n_eval_image)
    print(f"wrote synthetic study set to {args.out}: {made}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from videosft.eval.runner import evaluate_model
    from videosft.tune.sweep import ensure_ray

    overrides = list(args.overrides)
    if args.benchmarks:
        overrides.append(f"eval.benchmarks={json.dumps(args.benchmarks.split(','))}")
    if args.protocol:
        overrides.append(f"eval.protocol={args.protocol}")
    cfg = load_config(args.config, overrides)
    ensure_ray()
    out = args.out or str(Path(cfg.output_dir) / "evaluate")
    scores = evaluate_model(cfg, args.model, args.frame_budget, out, args.data_root)
    print(json.dumps({k: {"overall": v.get("overall"), "protocol": f"{v['protocol']} {v['protocol_version']}"}
                      for k, v in scores.items()}, indent=2))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from videosft.analysis.tradeoff import report_from_run_dir

    path = report_from_run_dir(args.run_dir)
    print(f"report: {path} (self-contained page: {path.with_name('report.html')})")
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    """Resolve inputs and decode the training set once into the frame cache (resumable)."""
    import dataclasses

    from videosft.data.manifest import iter_manifest
    from videosft.train.run import prepare_frame_cache
    from videosft.tune.sweep import ensure_ray
    from videosft.workspace import anchored, prepare_inputs, train_manifest

    cfg = anchored(_config(args))
    ensure_ray()
    inputs = prepare_inputs(cfg)
    # Streamed: the driver holds one chunk of rows (and the ids), never the whole manifest.
    info = prepare_frame_cache(cfg, inputs, rows=iter_manifest(train_manifest(cfg, inputs)))
    print(json.dumps(dataclasses.asdict(info), indent=2, default=str) if info else
          "frame cache off (data.frame_cache=false or sampling.mode=fps)")
    return 0


def cmd_predictors_eval(args: argparse.Namespace) -> int:
    """Score frame-budget predictors against the synthetic set's known minimal budgets."""
    from videosft.data.budget_eval import run_predictors_eval
    from videosft.tune.sweep import ensure_ray

    ensure_ray()
    report = run_predictors_eval(args.data_root, args.predictors.split(","),
                                 [int(c) for c in args.candidates.split(",")], args.out,
                                 model_path=args.model_path, family=args.family, limit=args.limit)
    print(Path(report).read_text())
    print(f"predictor report: {report}")
    return 0


def cmd_alignment(args: argparse.Namespace) -> int:
    """Gradient-alignment probe: cos(image-loss grad, video-loss grad at T frames) per checkpoint."""
    from videosft.analysis.alignment import AlignmentSettings, checkpoint_labels, run_alignment, write_alignment_report

    cfg = _config(args)
    budgets = [int(b) for b in args.budgets.split(",")] if args.budgets else cfg.sweep.fixed_budgets()
    try:
        settings = AlignmentSettings(budgets=tuple(budgets), batches=args.batches, batch_size=args.batch_size,
                                     manifest=args.manifest, seed=args.seed)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    results = []
    for path, label in zip(args.model, checkpoint_labels(args.model)):
        res = run_alignment(path, args.data_root, settings, family=args.family, contract=cfg.sampling,
                            device=args.device, label=label)
        means = {t: None if s["mean"] is None else round(s["mean"], 4) for t, s in res["overall"].items()}
        print(f"[alignment] {label}: overall cosine by T {means}; first T with cos <= 0: "
              f"{res['first_nonpositive_budget']}")
        results.append(res)
    paths = write_alignment_report(results, args.out)
    print(f"[alignment] wrote {', '.join(str(p) for p in paths.values())}")
    return 0


def cmd_study(args: argparse.Namespace) -> int:
    from videosft.study.presets import get_preset
    from videosft.study.run import run_study

    try:
        preset = get_preset(args.preset)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    report = run_study(preset, args.output_dir or f"runs/study-{preset.name}", replicate=args.replicate)
    print(f"study report: {report}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    cfg = _config(args)
    print(f"ok: {args.config or 'defaults'} (contract {cfg.sampling.contract_id()})")
    return 0


def add_curate_args(p: argparse.ArgumentParser) -> None:
    """`videosft curate` / jobs/curate.py flags: CurateConfig's fields (a --settings YAML, flags win)."""
    p.add_argument("--settings", help="YAML of curation settings (CurateConfig fields); flags override it")
    p.add_argument("--data-root", help="LLaVA-Video-178K root holding the subset folders (path or s3://, gs://)")
    p.add_argument("--out", dest="out_dir", help="output dir: curated.json, curation_stats.{json,md}")
    p.add_argument("--num-videos", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--source-weights", type=json.loads, help='JSON, e.g. \'{"0_30_s_academic_v0_1": 2}\'')
    p.add_argument("--format-weights", type=json.loads, help='JSON, e.g. \'{"caption": 1, "open_ended": 2}\'')
    p.add_argument("--duration", dest="duration_s", type=lambda v: [float(x) for x in v.split(",")],
                   help="lo,hi seconds (probes every drawn video)")
    p.add_argument("--decodable", action="store_const", const=True, help="drop videos the probe cannot decode")
    p.add_argument("--probe-engine", choices=["ray", "local"])
    p.add_argument("--videos-root", help="where the archives were extracted ({subset} is substituted)")
    p.add_argument("--extract-dir", help="where drawn archive members go (default: <out>/videos)")
    p.add_argument("--merge-formats", action="store_const", const=True,
                   help="append a video's other formats' turns to its row")


def curate_settings(args: argparse.Namespace) -> object:
    """A validated CurateConfig from --settings and the flags; ConfigError names the field."""
    import yaml
    from pydantic import ValidationError

    from videosft.data.curate import CurateConfig

    raw = yaml.safe_load(Path(args.settings).read_text()) if args.settings else {}
    fields = ("data_root", "out_dir", "num_videos", "seed", "source_weights", "format_weights", "duration_s",
              "decodable", "probe_engine", "videos_root", "extract_dir", "merge_formats")
    raw = {**(raw or {}), **{k: getattr(args, k) for k in fields if getattr(args, k, None) is not None}}
    try:
        return CurateConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"curation settings: {exc}") from None


def cmd_curate(args: argparse.Namespace) -> int:
    """Draw the seeded, stratified LLaVA-Video-178K subset; print its statistics table."""
    from videosft.data.curate import CurateError, curate
    from videosft.data.manifest import ManifestError

    settings = curate_settings(args)
    if settings.needs_probe() and settings.probe_engine == "ray":
        from videosft.ray_runtime import ensure_ray

        ensure_ray()
    try:
        result = curate(settings)
    except (CurateError, ManifestError) as exc:
        print(f"videosft curate: {exc}", file=sys.stderr)
        return 2
    print(Path(result["stats_md"]).read_text())
    print(f"[curate] manifest: {result['manifest']} (train on it: data.train_sources="
          f"'[{{\"manifest\": \"{result['manifest']}\"}}]'); statistics: {result['stats_json']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="videosft", description=__doc__)
    parser.add_argument("--debug", action="store_true",
                        help="show tracebacks (e.g. for too many rejected rows) instead of a summary")
    sub = parser.add_subparsers(dest="verb", required=True)
    for name, fn, text in (("demo", cmd_demo, "run the embedded laptop demo end to end"),
                           ("sweep", cmd_sweep, "run a frame-budget sweep from a config"),
                           ("validate-config", cmd_validate, "validate a config and exit")):
        p = sub.add_parser(name, help=text)
        _add_config_args(p)
        p.set_defaults(fn=fn)
    p = sub.add_parser("prepare", help="build inputs and decode the training set once into the frame cache")
    _add_config_args(p)
    p.set_defaults(fn=cmd_prepare)
    p = sub.add_parser("predictors-eval", help="score frame-budget predictors on the synthetic set")
    p.add_argument("--data-root", required=True)
    p.add_argument("--predictors", default="fixed,fps,similarity,text_classifier,oracle")
    p.add_argument("--candidates", default="1,2,4,8,16")
    p.add_argument("--model-path", default=None, help="VLM for the instruction / oracle-probe predictors")
    p.add_argument("--family", default="qwen2_5_vl")
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--out", default="runs/predictors")
    p.set_defaults(fn=cmd_predictors_eval)
    p = sub.add_parser("report", help="re-render a finished run's report from its results.json")
    p.add_argument("run_dir")
    p.set_defaults(fn=cmd_report)
    p = sub.add_parser("alignment", help="gradient-alignment probe: image vs video gradients per frame budget")
    p.add_argument("--model", required=True, action="append", help="HF checkpoint dir (repeat for several)")
    p.add_argument("--data-root", required=True, help="manifest dir holding image and video rows")
    p.add_argument("--manifest", default="train.json")
    p.add_argument("--family", default=None, help="default: from the checkpoint's config.json")
    p.add_argument("--budgets", default=None, help="comma-separated T (default: sweep.frame_budgets)")
    p.add_argument("--batches", type=int, default=2, help="k image and k video batches (k x k pairs)")
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default="runs/alignment", help="directory for the JSON, alignment.md and .png")
    _add_config_args(p)
    p.set_defaults(fn=cmd_alignment)
    p = sub.add_parser("study", help="the miniature study: spatial base, Video-SFT sweeps, probe, verdict")
    p.add_argument("--preset", default="laptop", help="laptop, table1 or smoke (CI)")
    p.add_argument("--output-dir", default=None, help="default: runs/study-<preset>")
    p.add_argument("--replicate", action="store_true",
                   help="also run the preset's disjoint replicate_seeds on the same base; verdict 'inconclusive' "
                        "unless both seed sets agree")
    p.set_defaults(fn=cmd_study)
    p = sub.add_parser("make-tiny-model", help="write a random-weight HF checkpoint of a family")
    p.add_argument("family")
    p.add_argument("out")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(fn=cmd_make_tiny_model)
    p = sub.add_parser("make-synthetic", help="write the synthetic spatial/temporal study set")
    p.add_argument("out")
    p.add_argument("--seed", type=int, default=0)
    for flag, default in (("--n-train-video", 48), ("--n-train-image", 32), ("--n-eval-video", 32), ("--n-eval-image", 32)):
        p.add_argument(flag, type=int, default=default)
    p.set_defaults(fn=cmd_make_synthetic)
    p = sub.add_parser("evaluate", help="evaluate one checkpoint on benchmarks")
    p.add_argument("--model", required=True)
    p.add_argument("--benchmarks", help="comma-separated names (default: from config)")
    p.add_argument("--data-root", required=True)
    p.add_argument("--frame-budget", type=int, default=None)
    p.add_argument("--protocol", choices=["lmms_eval", "vlmevalkit"], default=None,
                   help="whose rules score the real benchmarks (default: eval.protocol, lmms_eval)")
    p.add_argument("--out", default=None)
    _add_config_args(p)
    p.set_defaults(fn=cmd_evaluate)
    p = sub.add_parser("curate", help="draw a seeded, stratified LLaVA-Video-178K subset + its statistics table")
    add_curate_args(p)
    p.set_defaults(fn=cmd_curate)
    return parser


EXIT_REJECTS = 3  # too many rows failed (data.max_failure_ratio): a data problem, not a bug


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from videosft.data.pipeline import TooManyRejects

    try:
        return args.fn(args)
    except ConfigError as exc:
        print(f"videosft: {exc}", file=sys.stderr)
        return 2
    except TooManyRejects as exc:  # one readable paragraph; the traceback only with --debug
        if args.debug:
            raise
        print(f"videosft {args.verb}: {exc.summary()}", file=sys.stderr)
        return EXIT_REJECTS


if __name__ == "__main__":
    sys.exit(main())
