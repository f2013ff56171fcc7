"""The miniature study: spatial base (stage 1), Video-SFT sweep (stage 2), verdict from the numbers."""
