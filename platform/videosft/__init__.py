"""videosft: Ray-distributed Video-SFT of multimodal LLMs, and measurement of what it costs them."""

__version__ = "0.1.0"
