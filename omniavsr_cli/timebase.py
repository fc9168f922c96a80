"""The two clocks everything runs on, defined once: 16 kHz mono audio (Whisper's input) and 25 fps video
(AV-HuBERT's, LRS3's). A video frame covers exactly SAMPLES_PER_FRAME samples, so an audio stretch and a video
stretch cut at the same frame bounds are the same time."""

SAMPLE_RATE = 16_000
FPS = 25
SAMPLES_PER_FRAME = SAMPLE_RATE // FPS  # 640
MS_PER_FRAME = 1000 // FPS  # 40
