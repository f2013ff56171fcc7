"""`videosft <verb>`: the same library functions the jobs call, one verb each (videosft/verbs.py).

Configs are validated before any Ray work starts: a bad key fails here, in milliseconds. Each verb
runs under the console (videosft/console.py): one progress display per stage, a short summary,
and Ray's, Tune's and Train's output in a log file under the run dir; `--verbose` shows it here.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from videosft.analysis.attention import attention_markdown
from videosft.config import ConfigError, ExperimentConfig, load_config
from videosft.console import Console
from videosft.data.curate import CurateConfig
from videosft.data.pipeline import TooManyRejects
from videosft.data.synthetic import make_synthetic
from videosft.models.registry import get_family
from videosft.study.demo import DEMO_CONFIG
from videosft.verbs import VERBS


def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="experiment YAML (default: the embedded demo)")
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. train.max_steps=50")


def _config(args: argparse.Namespace) -> ExperimentConfig:
    return load_config(args.config, args.overrides)


def _ints(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _names(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


BUILT = ("cfg", "settings")  # verb parameters built from several flags (see verb_kwargs)


def verb_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of the verb's library function, from its parsed command line.

    Argument names are the function's parameter names; `cfg` is the validated --config + overrides.
    jobs/_args.py builds a job's call with this same function.
    """
    params = inspect.signature(VERBS[args.verb]).parameters
    kwargs = {name: getattr(args, name) for name in params if name not in BUILT}
    if "cfg" in params:
        kwargs["cfg"] = _config(args)
    if "settings" in params:  # `videosft curate`: a CurateConfig from --settings and its flags
        kwargs["settings"] = curate_settings(args)
    return kwargs


def _run(
    args: argparse.Namespace,
    show: Callable[[Any], list[str]],
    run_dir: Callable[[dict[str, Any]], str | Path | None] | None = None,
) -> int:
    """Call the verb's function under the console; `show` turns its result into the summary lines."""
    kwargs = verb_kwargs(args)  # a bad config or argument fails here, before the console or Ray
    where = run_dir(kwargs) if run_dir else (kwargs["cfg"].output_dir if "cfg" in kwargs else None)
    with Console(args.verb, where, verbose=args.verbose) as con:
        if where is not None:
            con.watch(where)
        result = VERBS[args.verb](**kwargs)
        con.summary(show(result))
    return 0


def main_section(markdown: str) -> str:
    """A report's title, intro and first section (the image-vs-video table): what the console shows."""
    lines = markdown.splitlines()
    heads = [i for i, line in enumerate(lines) if line.startswith("## ")]
    return "\n".join(lines[: heads[1]] if len(heads) > 1 else lines).rstrip()


def cmd_demo(args: argparse.Namespace) -> int:
    """Tiny model + synthetic data + a frame-budget sweep + report, on local Ray."""

    def show(report: Path) -> list[str]:
        return [
            main_section(Path(report).read_text()),
            f"report: {report} (all tables; page: {Path(report).with_name('report.html')}, "
            f"plot: {Path(report).with_name('tradeoff.png')})",
        ]

    return _run(args, show)


def cmd_sweep(args: argparse.Namespace) -> int:
    return cmd_demo(args)


def cmd_prepare(args: argparse.Namespace) -> int:
    """Resolve inputs and decode the training set once into the frame cache (resumable)."""

    def show(res: Any) -> list[str]:
        lines = [f"model: {res.inputs.model_path}", f"data: {res.inputs.data_root}"]
        if res.cache is None:
            return lines + ["frame cache off (data.frame_cache=false or sampling.mode=fps)"]
        info = dataclasses.asdict(res.cache)
        return lines + [
            f"frame cache: {info.pop('path')}",
            json.dumps({k: v for k, v in info.items() if k != "parts"}, default=str),
        ]

    return _run(args, show)


def cmd_train(args: argparse.Namespace) -> int:
    """One Video-SFT run at one frame budget."""
    return _run(
        args, lambda t: [f"checkpoint: {t.checkpoint} (rows {t.rows}, rejected {t.rejected})", json.dumps(t.metrics)]
    )


def cmd_evaluate(args: argparse.Namespace) -> int:
    def show(scores: dict[str, Any]) -> list[str]:
        return [
            json.dumps(
                {
                    k: {"overall": v.get("overall"), "protocol": f"{v['protocol']} {v['protocol_version']}"}
                    for k, v in scores.items()
                },
                indent=2,
            )
        ]

    return _run(args, show)


def cmd_predict_budgets(args: argparse.Namespace) -> int:
    return _run(args, lambda path: [f"budget manifest: {path}"])


def cmd_alignment(args: argparse.Namespace) -> int:
    """Gradient-alignment probe: cos(image-loss grad, video-loss grad at T frames) per checkpoint."""

    def show(res: Any) -> list[str]:
        lines = []
        for r in res.results:
            means = {t: None if s["mean"] is None else round(s["mean"], 4) for t, s in r["overall"].items()}
            lines.append(
                f"[alignment] {r['label']}: overall cosine by T {means}; first T with cos <= 0: "
                f"{r['first_nonpositive_budget']}"
            )
        return lines + [f"[alignment] wrote {', '.join(str(p) for p in res.paths.values())}"]

    return _run(args, show, run_dir=lambda kw: kw["out"] or kw["cfg"].output_dir)


def cmd_attention(args: argparse.Namespace) -> int:
    """Attention probe: the answer position's attention on the target's visual tokens per checkpoint."""

    def show(res: Any) -> list[str]:
        return [
            attention_markdown(res.results).rstrip(),
            f"[attention] wrote {', '.join(str(p) for p in res.paths.values())}",
        ]

    return _run(args, show, run_dir=lambda kw: kw["out"] or kw["cfg"].output_dir)


def cmd_report(args: argparse.Namespace) -> int:
    return _run(
        args,
        lambda path: [f"report: {path} (self-contained page: {path.with_name('report.html')})"],
        run_dir=lambda kw: None,
    )  # no Ray, nothing to redirect


def cmd_predictors_eval(args: argparse.Namespace) -> int:
    """Score frame-budget predictors against the synthetic set's known minimal budgets."""
    return _run(
        args,
        lambda report: [Path(report).read_text().rstrip(), f"predictor report: {report}"],
        run_dir=lambda kw: kw["out"],
    )


def cmd_study(args: argparse.Namespace) -> int:
    return _run(
        args,
        lambda report: [f"study report: {report}"],
        run_dir=lambda kw: kw["output_dir"] or f"runs/study-{kw['preset']}",
    )


def cmd_make_tiny_model(args: argparse.Namespace) -> int:
    out = get_family(args.family).build_tiny(args.out, seed=args.seed)
    print(f"wrote tiny {args.family} checkpoint to {out}")
    return 0


def cmd_make_synthetic(args: argparse.Namespace) -> int:
    made = make_synthetic(
        args.out,
        seed=args.seed,
        n_train_video=args.n_train_video,
        n_train_image=args.n_train_image,
        n_eval_video=args.n_eval_video,
        n_eval_image=args.n_eval_image,
    )
    print(f"wrote synthetic study set to {args.out}: {made}")
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
    p.add_argument("--source-weights", type=json.loads, help="JSON, e.g. '{\"0_30_s_academic_v0_1\": 2}'")
    p.add_argument("--format-weights", type=json.loads, help='JSON, e.g. \'{"caption": 1, "open_ended": 2}\'')
    p.add_argument(
        "--duration",
        dest="duration_s",
        type=lambda v: [float(x) for x in v.split(",")],
        help="lo,hi seconds (probes every drawn video)",
    )
    p.add_argument("--decodable", action="store_const", const=True, help="drop videos the probe cannot decode")
    p.add_argument("--probe-engine", choices=["ray", "local"])
    p.add_argument("--videos-root", help="where the archives were extracted ({subset} is substituted)")
    p.add_argument("--extract-dir", help="where drawn archive members go (default: <out>/videos)")
    p.add_argument(
        "--merge-formats", action="store_const", const=True, help="append a video's other formats' turns to its row"
    )


def curate_settings(args: argparse.Namespace) -> object:
    """A validated CurateConfig from --settings and the flags; ConfigError names the field."""
    import yaml
    from pydantic import ValidationError

    raw = yaml.safe_load(Path(args.settings).read_text()) if args.settings else {}
    fields = (
        "data_root",
        "out_dir",
        "num_videos",
        "seed",
        "source_weights",
        "format_weights",
        "duration_s",
        "decodable",
        "probe_engine",
        "videos_root",
        "extract_dir",
        "merge_formats",
    )
    raw = {**(raw or {}), **{k: getattr(args, k) for k in fields if getattr(args, k, None) is not None}}
    try:
        return CurateConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"curation settings: {exc}") from None


def cmd_curate(args: argparse.Namespace) -> int:
    """Draw the seeded, stratified LLaVA-Video-178K subset; print its statistics table."""

    def show(result: dict[str, Any]) -> list[str]:
        return [
            Path(result["stats_md"]).read_text().rstrip(),
            f"[curate] manifest: {result['manifest']} (train on it: data.train_sources="
            f'\'[{{"manifest": "{result["manifest"]}"}}]\'); statistics: {result["stats_json"]}',
        ]

    return _run(args, show, run_dir=lambda kw: None if "://" in kw["settings"].out_dir else kw["settings"].out_dir)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="videosft", description=__doc__)
    parser.add_argument(
        "--debug", action="store_true", help="show tracebacks (e.g. for too many rejected rows) instead of a summary"
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="show Ray's, Ray Data's, Tune's and Train's output here instead of in the run's log file",
    )
    common = argparse.ArgumentParser(add_help=False)  # `videosft <verb> --verbose` works too
    common.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="verb", required=True)

    def verb(
        name: str, fn: Callable[[argparse.Namespace], int], text: str, config: bool = True
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=text, parents=[common])
        if config:
            _add_config_args(p)
        p.set_defaults(fn=fn)
        return p

    verb("demo", cmd_demo, "run the embedded laptop demo end to end").set_defaults(config=str(DEMO_CONFIG))
    verb("sweep", cmd_sweep, "run a frame-budget sweep from a config")
    verb("validate-config", cmd_validate, "validate a config and exit")
    verb("prepare", cmd_prepare, "build inputs and decode the training set once into the frame cache")
    p = verb("train", cmd_train, "one Video-SFT run at one frame budget (checkpoint under <output_dir>/runs)")
    p.add_argument("--frame-budget", type=int, required=True)
    p = verb("evaluate", cmd_evaluate, "evaluate one checkpoint on benchmarks")
    p.add_argument("--model", default=None, help="checkpoint dir (default: the experiment's model)")
    p.add_argument("--data-root", default=None, help="default: the experiment's data root")
    p.add_argument("--benchmarks", type=_names, default=None, help="comma-separated names (default: from config)")
    p.add_argument("--frame-budget", type=int, default=None)
    p.add_argument(
        "--protocol",
        choices=["lmms_eval", "vlmevalkit"],
        default=None,
        help="whose rules score the real benchmarks (default: eval.protocol, lmms_eval)",
    )
    p.add_argument("--out", default=None, help="default: <output_dir>/evaluate")
    verb(
        "predict-budgets",
        cmd_predict_budgets,
        "annotate the training manifest with per-sample frame budgets (budget.predictor)",
    )
    p = verb("alignment", cmd_alignment, "gradient-alignment probe: image vs video gradients per frame budget")
    p.add_argument(
        "--model",
        action="append",
        default=[],
        help="HF checkpoint dir (repeat for several; default: the experiment's base model)",
    )
    p.add_argument(
        "--data-root",
        default=None,
        help="manifest dir holding image and video rows (default: the experiment's data root)",
    )
    p.add_argument("--manifest", default="train.json")
    p.add_argument("--family", default=None, help="default: from the checkpoint's config.json")
    p.add_argument("--budgets", type=_ints, default=None, help="comma-separated T (default: sweep.frame_budgets)")
    p.add_argument("--batches", type=int, default=2, help="k image and k video batches (k x k pairs)")
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None, help="default: cuda when train.use_gpu, else cpu")
    p.add_argument(
        "--out", default=None, help="directory for the JSON, alignment.md and .png (default: <output_dir>/alignment)"
    )
    p = verb("attention", cmd_attention, "attention probe: answer-position attention on the target per layer group")
    p.add_argument(
        "--model",
        action="append",
        default=[],
        help="HF checkpoint dir (repeat for several; default: the experiment's base model)",
    )
    p.add_argument("--data-root", default=None, help="dir of the held-out manifests (default: the experiment's)")
    p.add_argument("--family", default=None, help="default: from the checkpoint's config.json (qwen2_5_vl)")
    p.add_argument(
        "--budgets",
        type=_ints,
        default=None,
        help="video frame budgets, comma-separated (default: eval.frame_budget, else the largest fixed)",
    )
    p.add_argument("--items", type=int, default=24, help="held-out items per modality")
    p.add_argument("--layer-groups", type=int, default=3, help="contiguous groups of LLM layers (thirds)")
    p.add_argument("--image-manifest", default="eval_image.json", help="'' for no images")
    p.add_argument("--video-manifest", default="eval_video.json", help="'' for no videos")
    p.add_argument(
        "--boxes",
        default=None,
        help="JSONL of {id, frame_index, box: [x0, y0, x1, y1]} (source px); default: the rows' target_boxes",
    )
    p.add_argument("--device", default=None, help="default: cuda when train.use_gpu, else cpu")
    p.add_argument(
        "--out", default=None, help="directory for the JSON, attention.md and .png (default: <output_dir>/attention)"
    )
    p = verb("report", cmd_report, "re-render a finished run's report from its results.json", config=False)
    p.add_argument("run_dir")
    p = verb("predictors-eval", cmd_predictors_eval, "score frame-budget predictors on the synthetic set", config=False)
    p.add_argument("--data-root", required=True)
    p.add_argument("--predictors", type=_names, default="fixed,fps,similarity,text_classifier,oracle")
    p.add_argument("--candidates", type=_ints, default="1,2,4,8,16")
    p.add_argument("--model-path", default=None, help="VLM for the instruction / oracle-probe predictors")
    p.add_argument("--family", default="qwen2_5_vl")
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--out", default="runs/predictors")
    p = verb("study", cmd_study, "the miniature study: spatial base, Video-SFT sweeps, probe, verdict", config=False)
    p.add_argument("--preset", default="laptop", help="laptop, table1 or smoke (CI)")
    p.add_argument("--output-dir", default=None, help="default: runs/study-<preset>")
    p.add_argument(
        "--replicate",
        action="store_true",
        help="also run the preset's disjoint replicate_seeds on the same base; verdict 'inconclusive' "
        "unless both seed sets agree",
    )
    p = verb("make-tiny-model", cmd_make_tiny_model, "write a random-weight HF checkpoint of a family", config=False)
    p.add_argument("family")
    p.add_argument("out")
    p.add_argument("--seed", type=int, default=0)
    p = verb("make-synthetic", cmd_make_synthetic, "write the synthetic spatial/temporal study set", config=False)
    p.add_argument("out")
    p.add_argument("--seed", type=int, default=0)
    for flag, default in (
        ("--n-train-video", 48),
        ("--n-train-image", 32),
        ("--n-eval-video", 32),
        ("--n-eval-image", 32),
    ):
        p.add_argument(flag, type=int, default=default)
    p = verb(
        "curate", cmd_curate, "draw a seeded, stratified LLaVA-Video-178K subset + its statistics table", config=False
    )
    add_curate_args(p)
    return parser


EXIT_REJECTS = 3  # too many rows failed (data.max_failure_ratio): a data problem, not a bug


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

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
