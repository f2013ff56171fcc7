"""Column names and row kinds shared by every stage: the contract between pipeline stages.

One row per sample flows manifest -> probe -> budget -> decode -> preprocess -> train/eval.
Stages add columns; they never rename them. Keep names here so a typo is an ImportError,
not a silent empty column.
"""

from __future__ import annotations

# --- manifest (what an annotation row becomes) ---
ID = "id"  # str, unique within a manifest
MEDIA_TYPE = "media_type"  # one of MEDIA_TYPES
MEDIA_PATH = "media_path"  # str, absolute path or URI ("" for text-only rows)
QUESTION = "question"  # str, the human turn with <image>/<video> placeholders removed
ANSWER = "answer"  # str, the assistant turn (training target / reference answer)
TASK = "task"  # str, question kind (e.g. "colour", "direction", "flash_order")
MIN_FRAMES = "min_frames"  # int, minimal sufficient frame budget (-1 when unknown)
SOURCE = "source"  # str, manifest file the row came from (for error messages)

MEDIA_VIDEO = "video"
MEDIA_IMAGE = "image"
MEDIA_TEXT = "text"
MEDIA_TYPES = (MEDIA_VIDEO, MEDIA_IMAGE, MEDIA_TEXT)

# --- probe (container metadata, no full decode) ---
NUM_FRAMES = "num_frames"  # int
FPS = "fps"  # float
DURATION = "duration"  # float seconds
WIDTH = "width"  # int
HEIGHT = "height"  # int
PROBE_NOTE = "probe_note"  # str: metadata the probe corrected from the stream ("" when none)
ROTATION = "rotation"  # int: counter-clockwise degrees (0/90/180/270) the display matrix asks for

# --- budget ---
FRAME_BUDGET = "frame_budget"  # int, frames this sample gets
BUDGET_RAW = "budget_raw"  # str, predictor's raw answer (for audit)

# --- decode ---
FRAMES = "frames"  # uint8 ndarray (T, H, W, 3); images are T == 1
FRAME_INDICES = "frame_indices"  # int64 ndarray (T,)
TIMESTAMPS = "timestamps"  # float64 ndarray (T,) seconds
SAMPLED_FPS = "sampled_fps"  # float, frames sampled per second of source video
CONTRACT_ID = "contract_id"  # str, hash of the sampling contract that chose the frames
ERROR = "error"  # str, "" when the row is fine; else "stage: reason"

# --- evaluation ---
PREDICTION = "prediction"  # str, raw model output
EXTRACTED = "extracted"  # str, answer extracted by fixed rules
CORRECT = "correct"  # bool
MAX_NEW_TOKENS = "max_new_tokens"  # int, generation length for this row (its benchmark's protocol)

# --- conversations (multi-turn LLaVA rows) ---
CONVERSATIONS = "conversations"  # str, JSON list of {"from": "human"|"gpt", "value": str}, placeholders stripped
