"""Generation engines behind one seam: transformers (CPU or GPU) and vLLM (GPU, imported lazily).

An engine takes decoded evaluation rows (frames already sampled by the sampling contract, so
evaluation sees the same frames as training) and returns one raw text answer per row. vLLM gets
video as video (frames + sampling metadata), never as a list of images.
"""

from __future__ import annotations

from typing import Any, Mapping, Protocol, Sequence

import numpy as np

from videosft import schema as S


class GenerationEngine(Protocol):
    def generate(self, rows: Sequence[Mapping[str, Any]]) -> list[str]: ...


class TransformersEngine:
    """Greedy decoding with a Hugging Face checkpoint; one sample at a time (exact, no pad effects)."""

    def __init__(self, model_path: str, family: str, max_new_tokens: int, device: str = "cpu") -> None:
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        from videosft.models.registry import get_family

        self.torch = torch
        self.family = get_family(family)
        self.processor = AutoProcessor.from_pretrained(model_path)
        dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
        self.model = AutoModelForImageTextToText.from_pretrained(model_path, dtype=dtype).to(device).eval()
        self.device = device
        self.max_new_tokens = max_new_tokens

    def generate(self, rows: Sequence[Mapping[str, Any]]) -> list[str]:
        from videosft.data.preprocess import build_messages
        from videosft.train.collate import collate

        tok = self.processor.tokenizer
        outputs = []
        for row in rows:
            media_type = row[S.MEDIA_TYPE]
            messages = build_messages([{"from": "human", "value": row[S.QUESTION]}], media_type, for_generation=True)
            frames = row.get(S.FRAMES) if media_type != S.MEDIA_TEXT else None
            feats = self.family.encode(
                self.processor, messages, None if frames is None else np.asarray(frames, dtype=np.uint8),
                media_type, sampled_fps=float(row.get(S.SAMPLED_FPS) or 0.0), add_generation_prompt=True,
            )
            inputs = {k: v.to(self.device) for k, v in collate([feats], tok.pad_token_id).items()}
            with self.torch.no_grad():
                out = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False)
            new = out[0, inputs["input_ids"].shape[1]:]
            outputs.append(tok.decode(new, skip_special_tokens=True).strip())
        return outputs


class VLLMEngine:
    """vLLM offline engine (GPU only; extra `vllm`). Video goes in as video with its metadata."""

    def __init__(self, model_path: str, family: str, max_new_tokens: int, tensor_parallel_size: int = 1) -> None:
        from transformers import AutoProcessor
        from vllm import LLM, SamplingParams  # lazy: vllm pins its own CUDA torch

        self.processor = AutoProcessor.from_pretrained(model_path)
        self.llm = LLM(model=model_path, tensor_parallel_size=tensor_parallel_size,
                       limit_mm_per_prompt={"image": 1, "video": 1})
        self.params = SamplingParams(temperature=0.0, max_tokens=max_new_tokens)
        self.family = family

    def generate(self, rows: Sequence[Mapping[str, Any]]) -> list[str]:
        from videosft.data.preprocess import build_messages

        prompts = []
        for row in rows:
            media_type = row[S.MEDIA_TYPE]
            messages = build_messages([{"from": "human", "value": row[S.QUESTION]}], media_type, for_generation=True)
            text = self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            prompt: dict[str, Any] = {"prompt": text}
            frames = row.get(S.FRAMES)
            if media_type == S.MEDIA_IMAGE:
                prompt["multi_modal_data"] = {"image": np.asarray(frames)[0]}
            elif media_type == S.MEDIA_VIDEO:
                meta = {
                    "fps": float(row[S.FPS]), "total_num_frames": int(row[S.NUM_FRAMES]),
                    "frames_indices": [int(i) for i in row[S.FRAME_INDICES]], "do_sample_frames": False,
                }
                prompt["multi_modal_data"] = {"video": (np.asarray(frames), meta)}
            prompts.append(prompt)
        results = self.llm.generate(prompts, self.params, use_tqdm=False)
        return [r.outputs[0].text.strip() for r in results]


def make_engine(kind: str, model_path: str, family: str, max_new_tokens: int, tensor_parallel_size: int = 1) -> GenerationEngine:
    """Engine by registered name (config `eval.engine`)."""
    if kind == "transformers":
        import torch

        return TransformersEngine(model_path, family, max_new_tokens, "cuda" if torch.cuda.is_available() else "cpu")
    if kind == "vllm":
        return VLLMEngine(model_path, family, max_new_tokens, tensor_parallel_size)
    raise ValueError(f"eval.engine: unknown engine {kind!r}; expected 'transformers' or 'vllm'")
